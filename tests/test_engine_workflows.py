"""DropNetPruner inside the torch workflows users have: tied and frozen weights,
inference mode, torch.compile, channels-last, saving a pruner with its checkpoint."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import PruningError, UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._surgery import UntiedWeights, remove_units


class SharedHead(nn.Module):
    """Two heads that share one weight, both reading layer ``a``."""

    def __init__(self):
        super().__init__()
        self.a, self.act = nn.Linear(6, 12), nn.ReLU()
        self.b1, self.b2 = nn.Linear(12, 3), nn.Linear(12, 3)
        self.b2.weight = self.b1.weight

    def forward(self, x):
        h = self.act(self.a(x))
        return self.b1(h) + self.b2(h)


def drop(pruner, x, n=4, restart="none"):
    return pruner.remove(pruner.choose(pruner.score(lambda: [x]), n), restart=restart)


@pytest.mark.parametrize("restart", ["none", "rewind"])
def test_tied_weights_stay_tied_without_check_removal(restart):
    torch.manual_seed(0)
    x = torch.randn(16, 6)
    pruner = DropNetPruner(SharedHead(), x[:2])
    net = drop(pruner, x, restart=restart)
    assert net.a.out_features == 8 and net.b1.weight is net.b2.weight
    assert len(list(net.parameters())) == 5  # a.weight, a.bias, the shared weight, two biases


class TwoInputsSharedHead(nn.Module):
    """b1 reads a1 and b2 reads a2, with one weight: removing a unit of a1 cuts only b1's copy."""

    def __init__(self):
        super().__init__()
        self.a1, self.a2, self.act = nn.Linear(6, 12), nn.Linear(6, 12), nn.ReLU()
        self.b1, self.b2 = nn.Linear(12, 3), nn.Linear(12, 3)
        self.b2.weight = self.b1.weight

    def forward(self, x):
        return self.b1(self.act(self.a1(x))) + self.b2(self.act(self.a2(x)))


def test_a_removal_that_would_untie_weights_is_refused_and_undone():
    torch.manual_seed(0)
    x = torch.randn(16, 6)
    pruner = DropNetPruner(TwoInputsSharedHead(), x[:2])
    if "a1" not in pruner.units_per_layer:
        pytest.skip("the tracer already leaves a1 out")
    with pytest.warns(UnitRemovalWarning, match=r"'a1' unpruned: .*it unties the weights that \[\['b1', 'b2'\]\] share\)\. Torch-Pruning cuts each "
                                                 r"module's copy of a shared weight on its own"):
        with pytest.raises(PruningError, match=r"remove\(\) checked the removal, as check_removal\(\) has not run"):
            pruner.remove({"a1": [0, 1]})
    net = pruner.module
    assert net.a1.out_features == 12 and net.b1.weight is net.b2.weight
    assert "a1" not in pruner.units_per_layer  # left out, with the reason
    smaller = copy.deepcopy(net)  # the surgery itself refuses to cut the copies differently
    with pytest.raises(UntiedWeights, match=r"unties the weights that \['b1.weight', 'b2.weight'\] share"):
        remove_units(smaller, x[:2], {"a1": [0, 1]})


@pytest.mark.parametrize("restart", ["none", "rewind"])
def test_frozen_parameters_stay_frozen(restart):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))
    net[1].requires_grad_(False)
    net[4].weight.requires_grad_(False)
    x = torch.randn(16, 1, 8, 8)
    pruner = DropNetPruner(net, x[:2])
    net = drop(pruner, x, 2, restart)
    assert net[0].out_channels == 6
    frozen = {name for name, p in net.named_parameters() if not p.requires_grad}
    assert frozen == {"1.weight", "1.bias", "4.weight"}


def test_a_layer_frozen_after_the_pruner_is_kept_frozen_or_named():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
    x = torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    net[2].requires_grad_(False)  # a middle layer: cut, and still frozen
    net = drop(pruner, x, 4, "rewind")
    assert not net[2].weight.requires_grad and net[0].weight.requires_grad
    net[2].requires_grad_(True)
    net[0].requires_grad_(False)  # the first layer: Torch-Pruning cannot cut it
    choice = pruner.choose(pruner.score(lambda: [x]), 4)
    with pytest.raises(PruningError, match=r"Layers \['0'\] were frozen \(requires_grad=False\) after the pruner"):
        pruner.remove({"0": choice["0"]})
    assert pruner.units_per_layer["0"] == net[0].out_features


def test_the_memory_format_of_channels_last_weights_is_kept():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).to(memory_format=torch.channels_last)  # fmt: skip
    x = torch.randn(8, 3, 6, 6).to(memory_format=torch.channels_last)
    pruner = DropNetPruner(net, x[:2])
    net = drop(pruner, x, 4)
    assert net[2].weight.shape == (6, 6, 3, 3)
    assert net[2].weight.is_contiguous(memory_format=torch.channels_last) and not net[2].weight.is_contiguous()


def test_every_step_works_inside_inference_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
    with torch.inference_mode():
        x = torch.randn(16, 6)  # an inference tensor
        pruner = DropNetPruner(net, x[:2])
        checkpoint = pruner.checkpoint()
        pruner.check_removal(x)
        assert pruner.units_per_layer == {"0": 12, "2": 10}
        drop(pruner, x, 4)
        assert sum(pruner.units_per_layer.values()) == 18
        pruner.restore(checkpoint)
    assert pruner.units_per_layer == {"0": 12, "2": 10}


def test_a_pruner_saved_with_its_checkpoint_restores_it_after_loading():
    torch.manual_seed(0)
    x = torch.randn(16, 6)
    pruner = DropNetPruner(nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3)), x[:2])
    checkpoint = pruner.checkpoint()
    choice = pruner.choose(pruner.score(lambda: [x]), 4)
    pruner, checkpoint, choice = pickle.loads(pickle.dumps((pruner, checkpoint, choice)))
    pruner.remove(choice)  # the choice of the same pruner, made before saving
    assert pruner.units_per_layer == {"0": 8}
    pruner.restore(checkpoint)
    assert pruner.units_per_layer == {"0": 12}
    other = DropNetPruner(nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3)), x[:2])
    with pytest.raises(ValueError, match=r"by another pruner"):
        other.remove(pruner.choose(pruner.score(lambda: [x]), 4))


def test_a_compiled_network_is_pruned_inside_its_wrapper():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    x = torch.randn(8, 1, 6, 6)
    with pytest.warns(UserWarning, match=r"module is a torch.compile'd network: the pruner prunes the network inside it"):
        pruner = DropNetPruner(torch.compile(net), x[:2])
    assert pruner.module is net
    assert drop(pruner, x, 2) is net and net[0].out_channels == 6


def test_a_network_of_two_inputs_is_named_with_the_fix():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 12), nn.Linear(12, 3)

        def forward(self, x, mask):
            return self.b(torch.relu(self.a(x * mask)))

    x = torch.randn(4, 6)
    with pytest.raises(ValueError, match=r"missing 1 required positional argument: 'mask'.*DropNet prunes networks "
                                         r"of one input tensor"):  # fmt: skip
        DropNetPruner(TwoInputs(), (x[:2], torch.ones(2, 6)))


def test_batches_of_dicts_are_named_with_the_key_to_take():
    torch.manual_seed(0)
    x = torch.randn(16, 6)
    pruner = DropNetPruner(nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3)), x[:2])
    with pytest.raises(TypeError, match=r"got a dict with keys \['label', 'pixels'\].*batch\['pixels'\] for batch in loader"):
        pruner.score(lambda: [{"pixels": x, "label": torch.zeros(16)}])


class NormAfterActivation(nn.Module):
    """GroupNorm after the activation: a unit switched off still counts in its group's statistics."""

    def __init__(self):
        super().__init__()
        self.conv, self.act, self.norm = nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.GroupNorm(2, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.norm(self.act(self.conv(x))).mean((2, 3)))


def test_remove_checks_the_removal_where_check_removal_did_not_run(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(16, 1, 6, 6)
    net = NormAfterActivation()
    pruner = DropNetPruner(net, x[:2])
    choice = pruner.choose(pruner.score(lambda: [x]), 2)
    with pytest.warns(UnitRemovalWarning, match=r"'conv' unpruned: .*as the GroupNorm \('norm'\) of this network"):
        with pytest.raises(PruningError, match=r"remove\(\) checked the removal, as check_removal\(\) has not run on "
                                               r"this network: removing units of \['conv'\] does not compute"):  # fmt: skip
            pruner.remove(choice)
    assert net.conv.out_channels == 8 and "conv" in pruner.unpruned
    # After check_removal, remove() does not check again: the check is the caller's, once a round.
    exact = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    pruner = DropNetPruner(exact, x[:2])
    pruner.check_removal(x)
    calls = []
    from sklearn_dropnet.pruning import _engine

    original = _engine.unremovable
    monkeypatch.setattr(_engine, "unremovable", lambda *args: calls.append(1) or original(*args))
    pruner.remove(pruner.choose(pruner.score(lambda: [x]), 2))
    assert calls == [] and exact[0].out_channels == 6
    pruner.remove(pruner.choose(pruner.score(lambda: [x]), 2))  # not checked on this network: checked now
    assert calls == [1] and exact[0].out_channels == 4


def test_lazy_layers_get_their_shapes_before_the_rewind_copy_is_taken():
    torch.manual_seed(0)
    net = nn.Sequential(nn.LazyLinear(12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.initial[0].weight.shape == (12, 6)
    net = drop(pruner, x, 4, "rewind")
    assert net[0].weight.shape == (8, 6)


class ChannelMultiplier(nn.Module):
    """A depthwise convolution with a channel multiplier of 2 between two convolutions."""

    def __init__(self):
        super().__init__()
        self.c1, self.a1 = nn.Conv2d(1, 8, 3, padding=1), nn.ReLU()
        self.dw, self.a2 = nn.Conv2d(8, 16, 3, padding=1, groups=8), nn.ReLU()
        self.pw, self.a3, self.fc = nn.Conv2d(16, 16, 1), nn.ReLU(), nn.Linear(16, 10)

    def forward(self, x):
        x = self.a2(self.dw(self.a1(self.c1(x))))
        return self.fc(self.a3(self.pw(x)).mean((2, 3)))


def test_a_layer_cut_to_one_unit_per_channel_group_stays_and_counts():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 6, 6)
    with pytest.warns(UnitRemovalWarning):  # c1 feeds the channel groups: left out
        pruner = DropNetPruner(ChannelMultiplier(), x[:2])
    assert pruner.record()["units_per_layer"] == {"dw": 16, "pw": 16}
    pruner.check_removal(x)
    with pytest.warns(UnitRemovalWarning, match=r"'dw' unpruned: pruning brought it to one unit per channel group"):
        net = pruner.remove({"dw": list(range(0, 16, 2))})
    record = pruner.record()
    assert net.dw.out_channels == 8
    assert record["units"] == 24 and record["units_per_layer"] == {"pw": 16, "dw": 8}
    assert record["fraction_left"] == pytest.approx(0.75)


def test_scope_layer_does_not_give_a_grouped_layers_share_to_the_others():
    # dw goes in steps of 8 channels (one per channel group); its share of a
    # round is less than a step, so it is left over, and pw loses its own
    # share only (before, pw took dw's share too: 16 -> 10 -> ...).
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnitRemovalWarning)
        clf = DropNetClassifier(
            module=ChannelMultiplier, prune_ratio=0.5, drop_fraction=0.2, max_epochs=1, random_state=0
        ).fit(X, y[:300])
    pw = [record["units_per_layer"]["pw"] for record in clf.pruning_history_]
    assert pw[:3] == [16, 13, 10]
    assert all(before - after <= int(np.ceil(0.2 * before)) for before, after in zip(pw, pw[1:]))


def test_an_optimizer_built_before_remove_is_warned_at_its_next_step():
    # It steps the replaced tensors, and the cut layers never train again.
    torch.manual_seed(0)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    pruner = DropNetPruner(net, x[:2])
    stale = torch.optim.SGD(net.parameters(), lr=0.1)
    pruner.check_removal(x)
    net = pruner.remove({"0": [0, 1, 2]})
    nn.functional.cross_entropy(net(x), y).backward()
    with pytest.warns(UserWarning, match=r"This SGD holds 3 parameter tensors that DropNetPruner.remove\(\) replaced"):
        stale.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stale.step()  # said once per removal
        fresh = torch.optim.SGD(net.parameters(), lr=0.1)
        fresh.step()  # a new optimizer: nothing to say
