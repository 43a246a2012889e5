"""Layers whose units cannot be removed exactly are left unpruned, and said so."""

import math
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from removal_checks import randomise_batchnorm
from torch import nn

from sklearn_dropnet import DropNetClassifier, models
from sklearn_dropnet._data import EncodedDataset, LabelledData
from sklearn_dropnet._net import DropNetNet
from sklearn_dropnet.datasets import load_digits_images
from sklearn_dropnet.exceptions import PruningError, UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._probes import inspect_network
from sklearn_dropnet.pruning._removal_check import unremovable
from sklearn_dropnet.pruning._surgery import find_unit_groups, remove_units


@pytest.fixture(scope="module")
def images():
    X, y = load_digits_images()
    return X[:300], y[:300]


def fit(module, X, y, **params):
    params = {"prune_ratio": 0.5, "drop_fraction": 0.5, "max_epochs": 1, "random_state": 0, **params}
    return DropNetClassifier(module=module, **params).fit(X, y)


class ChannelsLast(nn.Module):
    """conv -> ReLU -> permute to (n, h, w, c) -> flatten -> hidden Linear -> output."""

    def __init__(self, bias=True, zero_head=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=bias)
        self.conv_act = nn.ReLU()
        self.hidden = nn.Linear(4 * 64, 16)
        self.hidden_act = nn.ReLU()
        self.out = nn.Linear(16, 10)
        if zero_head:  # common practice; the output is constant until trained
            nn.init.zeros_(self.out.weight)

    def forward(self, x):
        x = self.conv_act(self.conv(x)).permute(0, 2, 3, 1).flatten(1)
        return self.out(self.hidden_act(self.hidden(x)))


def test_torch_pruning_maps_channels_last_wrongly():
    # The defect the check guards against: removing a filter that is always
    # 0 after its ReLU must change nothing, and through a permute it does.
    torch.manual_seed(0)
    net, x = ChannelsLast().eval(), torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        net.conv.weight[1], net.conv.bias[1] = 0.0, -1.0
        before = net(x)
    remove_units(net, x, {"conv": [1]})
    with torch.no_grad():
        assert (net(x) - before).abs().max() > 0.01


def test_channels_last_filters_stay_and_the_rest_is_pruned(images):
    X, y = images
    with pytest.warns(UnitRemovalWarning, match=r"layer 'conv' unpruned: .* differs.*by up to") as caught:
        clf = fit(ChannelsLast(), X, y)
    # The explanation names both causes a mismatch has: a mapping, or channels the switch-off misses.
    (message,) = [str(w.message) for w in caught if "'conv' unpruned" in str(w.message)]
    assert "maps its channels otherwise than the network uses them (e.g. a permute before a flatten" in message
    assert "or removes channels that switching the unit off does not zero" in message
    assert clf.module_.conv.out_channels == 4
    assert clf.module_.hidden.out_features == 8
    assert [r["units"] for r in clf.pruning_history_] == [16, 8]  # hidden only


def test_the_check_sees_trained_weights_and_more_than_two_samples(images):
    # A zero-initialised head makes every removal look exact before training;
    # blank first images hide a wrongly mapped filter on two samples.
    X, y = images
    blank = X.copy()
    blank[:2] = 0
    for module, data in ((ChannelsLast(zero_head=True), X), (ChannelsLast(bias=False), blank)):
        with pytest.warns(UnitRemovalWarning, match="layer 'conv' unpruned"):
            clf = fit(module, data, y, reinit="none")
        assert clf.module_.conv.out_channels == 4
        assert clf.pruning_history_[-1]["units_per_layer"] == {"hidden": clf.module_.hidden.out_features}


def test_the_check_sees_inputs_spread_over_sorted_data(images):
    # Sorted data without a validation split: the first 32 training images
    # are blank, and a wrongly mapped filter is 0 on every one of them.
    X, y = images
    order = np.argsort(y, kind="stable")
    blank, labels = X[order].copy(), y[order]
    blank[: len(blank) // 2] = 0
    with pytest.warns(UnitRemovalWarning, match="layer 'conv' unpruned"):
        clf = fit(ChannelsLast(bias=False), blank, labels, validation_fraction=0)
    assert clf.module_.conv.out_channels == 4


@pytest.mark.parametrize("as_dataset", [False, True])
def test_spread_inputs_cover_the_data_evenly(as_dataset):
    X, y = np.arange(100, dtype=np.float32).reshape(100, 1), np.zeros(100, dtype=np.int64)
    if as_dataset:
        X = EncodedDataset(torch.utils.data.TensorDataset(torch.from_numpy(X)), y)
    data = LabelledData(X, y)
    assert data.spread_inputs("cpu", 5).flatten().tolist() == [0, 25, 50, 74, 99]
    assert data.spread_inputs("cpu", 500).flatten().tolist() == list(range(100))


def test_batch_norm_after_the_activation_is_exact_with_trained_statistics(images):
    X, y = images
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.BatchNorm1d(16),
        nn.Linear(16, 12), nn.ReLU(), nn.BatchNorm1d(12), nn.Linear(12, 10),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        clf = fit(net, X, y, prune_ratio=0.75, drop_fraction=0.3, max_epochs=2)
    record = clf.pruning_history_[-1]
    assert record["units"] == clf.module_[1].out_features + clf.module_[4].out_features == 7
    assert record["fraction_left"] == pytest.approx(7 / 28, abs=1e-6)
    bn = clf.module_[3]
    assert bn.num_features == clf.module_[1].out_features
    assert bn.running_mean.abs().max() > 0  # trained statistics: zero is shifted


class Grouped(nn.Module):
    """conv -> ReLU -> conv with 2 groups (or depthwise) -> ReLU -> mean -> hidden -> output."""

    def __init__(self, groups):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.a1 = nn.ReLU()
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=groups)
        self.a2 = nn.ReLU()
        self.hidden = nn.Linear(8, 12)
        self.a3 = nn.ReLU()
        self.out = nn.Linear(12, 10)

    def forward(self, x):
        x = self.a2(self.c2(self.a1(self.c1(x)))).mean(dim=(2, 3))
        return self.out(self.a3(self.hidden(x)))


def test_grouped_convolution_layers_are_pruned_as_many_from_each_channel_group(images):
    X, y = images
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)  # the removal check passed every round
        clf = fit(Grouped(groups=2), X, y, prune_ratio=0.6, drop_fraction=0.3)
    c1, c2 = clf.module_.c1, clf.module_.c2
    assert len(clf.pruning_history_) > 2
    assert c1.out_channels < 8 and c2.out_channels < 8 and c2.groups == 2
    assert c1.out_channels % 2 == 0 and c2.out_channels % 2 == 0
    assert c2.weight.shape == (c2.out_channels, c1.out_channels // 2, 3, 3)
    assert clf.unpruned_layers_ == {}


def test_depthwise_convolution_is_still_pruned(images):
    X, y = images
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        clf = fit(Grouped(groups=8), X, y)
    c1, c2 = clf.module_.c1, clf.module_.c2
    assert c1.out_channels == c2.in_channels == c2.out_channels == c2.groups < 8


def test_activation_after_the_output_layer_keeps_the_class_scores(images):
    X, y = images
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Sigmoid())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        clf = fit(net, X, y)
    assert clf.module_[3].out_features == 10
    assert [r["units"] for r in clf.pruning_history_] == [32, 16]
    assert clf.predict_proba(X[:5]).shape == (5, 10)


class _MeanHead(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))  # a reduction DropNet does not follow, unlike nn.Flatten


@pytest.mark.parametrize("head", ["flatten", "mean"])
def test_class_scores_pooled_to_the_output_are_named_as_such(images, head):
    """SqueezeNet's head: the last convolution gives one channel per class, through a
    ReLU and a pooling. Through ``nn.Flatten`` it is seen as the output layer, as a
    final Linear is; through a reduction DropNet does not follow, the removal check
    refuses it, and the warning says it computes the class scores."""
    X, y = images
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 10, 1), nn.ReLU(),
        *([nn.AdaptiveAvgPool2d(1), nn.Flatten()] if head == "flatten" else [_MeanHead()]),
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = fit(net, X, y)
    messages = [str(w.message) for w in caught if w.category is UnitRemovalWarning]
    assert messages == ([] if head == "flatten" else [
        "DropNet leaves layer '2' unpruned: removing its units does not match switching them "
        "off (the network's output changes shape from (32, 10) to (32, 5)). Its units reach the "
        "network's output without a layer in between (through pooling, say): it computes the "
        "class scores."
    ])  # fmt: skip
    assert (clf.module_[0].out_channels, clf.module_[2].out_channels) == (4, 10)


class Tied(nn.Module):
    """Two hidden layers share one weight; the layer before them would untie it."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(64, 32)
        self.a0 = nn.ReLU()
        self.fa, self.fb = nn.Linear(32, 32), nn.Linear(32, 32)
        self.fb.weight = self.fa.weight
        self.aa, self.ab = nn.ReLU(), nn.ReLU()
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        x = self.a0(self.first(x.flatten(1)))
        return self.out(self.ab(self.fb(self.aa(self.fa(x)))))


def test_tied_weights_stay_tied(images):
    X, y = images
    structure = inspect_network(Tied(), torch.as_tensor(X[:2]))
    assert set(structure.probes) == {"first"}
    assert {"fa", "fb"} <= structure.output_layers
    with pytest.warns(UnitRemovalWarning, match=r"'first' unpruned: .* unties the weights that \[\['fa', 'fb'\]\]"):
        with pytest.raises(PruningError, match=r"None of the prunable layers \['first'\] can be pruned"):
            fit(Tied(), X, y)


class OutputResidual(nn.Module):
    """The only hidden layer's units are added onto the class scores."""

    def __init__(self):
        super().__init__()
        self.hidden, self.act, self.head = nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 10)

    def forward(self, x):
        h = self.act(self.hidden(x.flatten(1)))
        out = self.head(h)
        out += h
        return out


def test_nothing_left_to_prune_is_a_pruning_error_before_training(images, monkeypatch):
    X, y = images
    trained = []
    monkeypatch.setattr(DropNetNet, "train_round", lambda self, data, teacher=None: trained.append(1))
    with pytest.warns(UnitRemovalWarning, match=r"'hidden' unpruned: its units are coupled to the output channels of 'head'"):
        with pytest.raises(PruningError, match=r"None of the prunable layers \['hidden'\] can be pruned"):
            fit(OutputResidual(), X, y)
    assert not trained


class SharedInLoop(nn.Module):
    """``inp`` feeds ``block``, which is applied twice; ``pre`` can be pruned."""

    def __init__(self):
        super().__init__()
        self.pre, self.pre_act = nn.Linear(64, 48), nn.ReLU()
        self.inp, self.inp_act = nn.Linear(48, 32), nn.ReLU()
        self.block, self.block_act = nn.Linear(32, 32), nn.ReLU()
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        h = self.inp_act(self.inp(self.pre_act(self.pre(x.flatten(1)))))
        for _ in range(2):
            h = self.block_act(self.block(h))
        return self.out(h)


def test_a_shared_layer_and_a_layer_coupled_to_it_are_named_once(images):
    X, y = images
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = fit(SharedInLoop(), X, y, prune_ratio=0.6, drop_fraction=0.3)
    messages = [str(w.message) for w in caught if w.category is UnitRemovalWarning]
    assert messages == [
        "DropNet leaves layer 'inp' unpruned: its units are coupled to the output channels of "
        "'block', a layer that is never pruned (it gives the network's output, is called more "
        "than once, shares its weights or has parametrizations).",
        "DropNet leaves layer 'block' unpruned: it is called 2 times in one forward pass.",
    ]
    assert len(clf.pruning_history_) > 2
    assert clf.module_.inp.out_features == 32
    assert clf.pruning_history_[-1]["units_per_layer"] == {"pre": clf.module_.pre.out_features}
    assert set(clf.unpruned_layers_) == {"inp", "block"}


def test_warnings_name_the_callers_line(images):
    X, y = images
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(SharedInLoop(), X, y, prune_ratio=0.6, drop_fraction=0.3)  # structural refusals
        fit(ChannelsLast(), X, y)  # refused by the removal check
    found = [w for w in caught if w.category is UnitRemovalWarning]
    assert len(found) == 3
    assert {w.filename for w in found} == {__file__}


class AuxiliaryHead(nn.Module):
    """Deep supervision: a head on the first block that only training runs."""

    def __init__(self):
        super().__init__()
        self.c1, self.a1 = nn.Conv2d(1, 8, 3, padding=1), nn.ReLU()
        self.c2, self.a2 = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        self.out, self.aux = nn.Linear(8, 10), nn.Linear(8, 10)

    def forward(self, x):
        h = self.a1(self.c1(x))
        out = self.out(self.a2(self.c2(h)).mean(dim=(2, 3)))
        if self.training:
            out = out + 0.3 * self.aux(h.mean(dim=(2, 3)))
        return out


def test_a_branch_only_training_runs_is_checked(images):
    # Torch-Pruning traces in eval mode and leaves the auxiliary head's
    # inputs as they were: training after the removal would fail.
    X, y = images
    with pytest.warns(UnitRemovalWarning, match=r"'c1' unpruned: .* fails in training mode: RuntimeError"):
        clf = fit(AuxiliaryHead(), X, y)
    assert (clf.module_.c1.out_channels, clf.module_.aux.in_features) == (8, 8)
    assert clf.module_.c2.out_channels == 4


def test_the_training_mode_pass_leaves_the_random_state_alone(images):
    X, _ = images
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 10))
    x = torch.as_tensor(X[:32])
    structure = inspect_network(net, x[:2])
    groups = find_unit_groups(net, x[:2], structure)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert unremovable(net, x, structure, groups) == {}
    assert torch.equal(torch.get_rng_state(), before)


def test_a_network_torch_pruning_cannot_trace_fails_before_training(monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.shufflenet_v2_x0_5(weights=None, num_classes=4)
    X, y = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32), np.arange(16) % 4
    trained = []
    monkeypatch.setattr(DropNetNet, "train_round", lambda self, data, teacher=None: trained.append(1))
    with pytest.raises(PruningError, match=r"Torch-Pruning cannot trace .*\(ZeroDivisionError: .*ShuffleNet"):
        fit(net, X, y)
    assert not trained


class AlwaysDropout(nn.Module):
    """F.dropout without training=self.training: it drops in eval mode too."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.b(F.dropout(torch.relu(self.a(x)), 0.5))


def test_a_network_random_in_eval_mode_is_named_before_training(monkeypatch):
    X, y = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32), np.arange(40) % 3
    trained = []
    monkeypatch.setattr(DropNetNet, "train_round", lambda self, data, teacher=None: trained.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)  # it blamed Torch-Pruning for the layer
        with pytest.raises(PruningError, match=r"output in eval mode changes between two calls on the same inputs "
                           r"\(by up to .*\): something random runs in eval mode, such as F.dropout\(x, p\) without "
                           r"training=self.training.*F.dropout\(x, p, training=self.training\)"):  # fmt: skip
            fit(AlwaysDropout(), X, y)
    assert not trained


class ScalesItsInput(nn.Module):
    """Doubles its input in place: every epoch would double the training rows again."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x):
        x.mul_(2)
        return self.b(torch.relu(self.a(x)))


@pytest.mark.parametrize("prune_ratio", [0.5, 0])
def test_a_network_that_changes_its_input_in_place_is_named_before_training(monkeypatch, prune_ratio):
    X, y = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32), np.arange(40) % 3
    trained = []
    monkeypatch.setattr(DropNetNet, "train_round", lambda self, data, teacher=None: trained.append(1))
    original = X.copy()
    with pytest.raises(PruningError, match=r"The network changes its input in place: .*x.mul_\(2\).*"
                                           r"Write it out of place: x = x \* 2"):  # fmt: skip
        fit(ScalesItsInput(), X, y, prune_ratio=prune_ratio)
    assert not trained
    np.testing.assert_array_equal(X, original)


def test_parametrized_layers_are_named_in_the_error(images):
    X, y = images
    net = nn.Sequential(
        nn.Flatten(), nn.utils.parametrizations.spectral_norm(nn.Linear(64, 16)), nn.ReLU(), nn.Linear(16, 10)
    )
    with pytest.raises(PruningError, match=r"layers \['1'\] have parametrizations .*remove_parametrizations") as error:
        fit(net, X, y)
    assert "Left out" not in str(error.value)
    net = nn.Sequential(nn.Flatten(), net[1], nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10))
    with pytest.warns(UnitRemovalWarning, match=r"layer '1' unpruned: it has parametrizations"):
        clf = fit(net, X, y)
    assert (clf.module_[1].out_features, clf.module_[3].out_features) == (16, 8)
    with pytest.raises(PruningError, match=r"Left out: '1': its output reaches no activation"):
        fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Linear(16, 10)), X, y)


@pytest.mark.parametrize(
    "layers, reason",
    [
        ((nn.Linear(64, 32), nn.ReLU(), nn.Unflatten(1, (4, 8)), nn.Flatten(), nn.Linear(32, 10)), "fails: RuntimeError"),
        ((nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.GroupNorm(4, 8), nn.Flatten(), nn.Linear(512, 10)), "differs"),
    ],
)
def test_fixed_widths_and_group_norm_are_named(images, layers, reason):
    X, y = images
    net = nn.Sequential(*layers)
    x = torch.as_tensor(X[:2] if isinstance(layers[0], nn.Conv2d) else X[:2].reshape(2, -1))
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    whys = unremovable(net, x, structure, groups)
    assert list(whys) == ["0"] and reason in whys["0"]


class _Named:
    def __init__(self, name):
        self.name = name


def _search(n, failing, together=False):
    """_failing_alone over n stand-in groups, where a set fails if it holds one
    of ``failing`` (or, with ``together``, any two groups): what it finds, and
    how many checks it took."""
    from sklearn_dropnet.pruning._removal_check import _failing_alone

    groups, checked = [_Named(str(i)) for i in range(n)], []

    def check(part):
        checked.append(len(part))
        bad = [g.name for g in part if int(g.name) in failing]
        return f"fails with {bad}" if bad else ("made up" if together and len(part) > 1 else None)

    return _failing_alone(check, groups, "all fail"), len(checked)


@pytest.mark.parametrize("seed", range(20))
def test_the_search_finds_exactly_the_groups_that_fail_alone(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    failing = set(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False).tolist())
    found, checks = _search(n, failing)
    assert found == {str(i): f"fails with {[str(i)]}" for i in sorted(failing)}  # each with its own reason
    assert checks <= n + math.ceil(math.log2(n)) + 1  # never much over one check a group


@pytest.mark.parametrize("n, failing, most", [(57, {8, 18, 52}, 24), (25, {24}, 6), (64, {0}, 12), (2, {1}, 2)])
def test_few_failures_take_few_checks(n, failing, most):
    """Group by group takes n checks (TResNet-M's pattern first: 3 of 57 groups)."""
    found, checks = _search(n, failing)
    assert set(found) == {str(i) for i in failing}
    assert checks <= most


def test_when_every_group_fails_the_search_checks_group_by_group():
    found, checks = _search(54, set(range(54)))
    assert len(found) == 54 and checks <= 54 + 7


def test_groups_that_fail_only_together_are_not_found_alone():
    found, _ = _search(16, set(), together=True)
    assert found == {}


def test_the_reason_of_a_layer_left_out_by_the_check_is_kept(images):
    """``unpruned_layers_`` holds what the warning says, not a summary."""
    X, y = images
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.GroupNorm(4, 8), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(512, 10),
    )  # fmt: skip
    with pytest.warns(UnitRemovalWarning) as record:
        clf = fit(net, X, y)
    message = next(str(w.message) for w in record if "'0'" in str(w.message))
    assert list(clf.unpruned_layers_) == ["0"]
    assert message == f"DropNet leaves layer '0' unpruned: {clf.unpruned_layers_['0']}."
    assert "differs from the full network's with those units zeroed (by up to" in message


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: models.MLP(input_shape=(64,), n_classes=10), (64,)),
        (lambda: models.ModelB(input_shape=(1, 8, 8), n_classes=10), (1, 8, 8)),
        (lambda: models.ModelC(input_shape=(1, 8, 8), n_classes=10), (1, 8, 8)),
        (lambda: models.VGG(input_shape=(3, 32, 32), n_classes=10, width=0.125), (3, 32, 32)),
        (lambda: models.ResNet18(input_shape=(3, 32, 32), n_classes=10, width=4), (3, 32, 32)),
    ],
)
def test_every_group_of_the_built_in_models_passes(make, shape):
    torch.manual_seed(0)
    net, x = make(), torch.randn(2, *shape)
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    assert unremovable(net, x, structure, groups) == {}
    assert len(groups) > 1
    assert np.all([group.size > 1 for group in groups])


def test_a_layer_refused_in_a_later_round_is_frozen_and_still_counted(images, monkeypatch):
    # Whether a removal is exact can depend on the weights; should a layer
    # that passed fail later, its units stay and stay in the history.
    import sklearn_dropnet.pruning._engine as dropnet

    calls = []

    def refuse_layer_1_from_the_third_check(module, inputs, structure, groups):
        calls.append(1)
        return {"1": "made up"} if len(calls) >= 3 else {}

    monkeypatch.setattr(dropnet, "unremovable", refuse_layer_1_from_the_third_check)
    X, y = images
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 10))
    clf = fit(net, X, y, prune_ratio=0.75, drop_fraction=0.3)
    history = clf.pruning_history_
    sizes = [r["units_per_layer"] for r in history]
    # Refused by the check after round 2: layer 1 keeps its 8 units from then on.
    assert sizes == [{"1": 16, "3": 12}, {"1": 11, "3": 9}, {"1": 8, "3": 6}, {"1": 8, "3": 2}, {"1": 8, "3": 1}]
    assert (clf.module_[1].out_features, clf.module_[3].out_features) == (8, 1)
    # The goal of 7 units is out of reach: pruning stops at 8 + 1.
    assert [r["units"] for r in history] == [28, 20, 14, 10, 9]
    assert history[-1]["fraction_left"] == pytest.approx(9 / 28, abs=1e-6)


def test_the_check_runs_without_tf32_and_restores_the_settings():
    from sklearn_dropnet.pruning import _removal_check

    conv, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(conv, "conv") and hasattr(conv.conv, "fp32_precision"):
        conv, name, full = conv.conv, "fp32_precision", "ieee"
    else:
        name, full = "allow_tf32", False
    before = getattr(conv, name), getattr(matmul, name)
    with _removal_check._full_float32_precision():
        assert (getattr(conv, name), getattr(matmul, name)) == (full, full)
    assert (getattr(conv, name), getattr(matmul, name)) == before


def test_layers_that_only_fail_together_are_left_unpruned_with_a_warning(monkeypatch):
    from sklearn_dropnet.pruning import _removal_check

    monkeypatch.setattr(
        _removal_check, "_mismatch",
        lambda module, x, structure, groups: "made up" if len(groups) > 1 else None,
    )  # fmt: skip
    net, x = models.MLP(input_shape=(64,), n_classes=10), torch.randn(2, 64)
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    whys = unremovable(net, x, structure, groups)
    names = [group.name for group in groups]
    assert list(whys) == names and len(names) > 1
    assert whys[names[0]] == (
        f"removing its units together with those of the layers {names} does not match switching them off "
        "(made up), though each layer's alone does"
    )


def test_samples_with_nan_or_infinite_outputs_do_not_break_the_check(images):
    """Such outputs compare equal (NaN to NaN, inf to inf); the tolerance comes from the finite ones."""
    X, _ = images
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    x = torch.as_tensor(X[:32]).clone()
    x[0] = float("inf")
    structure = inspect_network(net, x[:2])
    groups = find_unit_groups(net, x[1:3], structure)
    assert not torch.isfinite(net(x)[0]).all()
    assert unremovable(net, x, structure, groups) == {}


def test_an_inexact_removal_with_infinite_outputs_names_a_finite_difference(images):
    class AddOne(nn.Module):  # a zeroed unit gives 1, a removed one nothing
        def forward(self, x):
            return x + 1

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), AddOne(), nn.Linear(8, 3))
    x = torch.randn(16, 4)
    x[0] = float("inf")
    structure = inspect_network(net, x[1:3])
    groups = find_unit_groups(net, x[1:3], structure)
    whys = unremovable(net, x, structure, groups)
    assert list(whys) == ["0"] and re.search(r"units zeroed \(by up to [0-9.e+-]+\)", whys["0"])
    assert "nan" not in whys["0"]


class _StaticSamePadding(nn.Conv2d):
    """EfficientNet-PyTorch's Conv2dStaticSamePadding: a Conv2d that pads its input with a child module."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__(in_channels, out_channels, kernel_size)
        self.static_padding = nn.ZeroPad2d(kernel_size // 2)

    def forward(self, x):
        return super().forward(self.static_padding(x))


def test_a_conv_subclass_holding_its_padding_module_is_pruned():
    """It was never recorded (not a leaf), and every layer was said not to run in eval mode."""
    torch.manual_seed(0)
    net = nn.Sequential(_StaticSamePadding(1, 8, 3), nn.BatchNorm2d(8), nn.SiLU(), _StaticSamePadding(8, 6, 3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))  # fmt: skip
    x = torch.randn(16, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(net, x[:2])
        assert pruner.units_per_layer == {"0": 8, "3": 6}
        net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 6, rng=np.random.default_rng(0)))
        pruner.check_removal(x)
    assert net[0].out_channels + net[3].out_channels == 8 and net(x).shape == (16, 3)


class _RepVGGBlock(nn.Module):
    """RepVGG's training-time block: 3x3 conv + BN, 1x1 conv + BN and an identity BN, summed, then ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.dense = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.one = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.identity = nn.BatchNorm2d(channels)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.dense(x) + self.one(x) + self.identity(x))


def test_a_step_after_the_activation_that_others_read_too_does_not_end_the_chain():
    """The next block's identity BatchNorm reads the ReLU's output beside its convolutions:
    switching units off after that BatchNorm left them in what the convolutions read, and
    the removal check refused the layers of a RepVGG."""
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    net = nn.Sequential(stem, _RepVGGBlock(8), _RepVGGBlock(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    randomise_batchnorm(net)
    x = torch.randn(32, 1, 8, 8)
    structure = inspect_network(net.eval(), x[:2])
    assert structure.probes["0.0"].chain_end == structure.probes["0.0"].activation  # the ReLU, not block 1's BatchNorm
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(net, x[:2])
        pruner.check_removal(x)
    assert set(pruner.units_per_layer) == {"0.0"}  # the stem and both blocks: one residual stream


def test_a_channel_shuffle_module_is_named_where_the_removal_check_refuses_a_layer():
    """nn.ChannelShuffle moves a channel to another group; Torch-Pruning takes it for a step
    that keeps channels in place, and the removal check refuses the layer before it. The
    reason names the shuffle (it named a permute, a reshape or a residual add instead)."""
    from sklearn_dropnet.exceptions import UnitRemovalWarning
    from sklearn_dropnet.pruning import DropNetPruner

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ChannelShuffle(2), nn.Conv2d(8, 8, 3, groups=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()  # fmt: skip
    x = torch.randn(8, 3, 8, 8)
    pruner = DropNetPruner(net, x[:2])
    with pytest.warns(UnitRemovalWarning, match=r"layer '0' unpruned: .*the nn.ChannelShuffle \('2'\) of this network"):
        assert [group.name for group in pruner.check_removal(x)] == ["3"]


class ProbabilitiesAndLogits(nn.Module):
    """Returns ``(probabilities, logits)`` in eval mode, as ultralytics' classification head does."""

    def __init__(self, random_in_eval=False):
        super().__init__()
        self.a, self.b = nn.Linear(6, 16), nn.Linear(16, 3)
        self.random_in_eval = random_in_eval

    def forward(self, x):
        logits = self.b(torch.relu(self.a(x)))
        if self.random_in_eval:
            logits = logits + torch.rand_like(logits)
        return {"out": (logits.softmax(1), logits)}


def test_an_output_of_several_tensors_is_compared_tensor_by_tensor():
    # It raised AttributeError ('tuple' object has no attribute 'shape') from the check.
    torch.manual_seed(0)
    pruner = DropNetPruner(ProbabilitiesAndLogits(), torch.randn(4, 6))
    assert [group.name for group in pruner.check_removal(torch.randn(16, 6))] == ["a"]


class TwoHeads(nn.Module):
    """conv -> ReLU, then two heads: pooled -> Linear (mapped right by Torch-Pruning)
    and permuted to channels last -> flatten -> Linear (mapped wrongly)."""

    def __init__(self):
        super().__init__()
        self.conv, self.pooled = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4, 10)
        self.channels_last = nn.Linear(4 * 64, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.pooled(x.mean((2, 3))), [self.channels_last(x.permute(0, 2, 3, 1).flatten(1))]


def test_a_change_in_any_tensor_of_the_output_is_found():
    torch.manual_seed(0)
    with pytest.warns(UnitRemovalWarning, match=r"layer 'conv' unpruned: .*output differs from the full network's"):
        with pytest.raises(PruningError, match="None of the prunable layers"):
            DropNetPruner(TwoHeads(), torch.randn(4, 1, 8, 8)).check_removal(torch.randn(16, 1, 8, 8))


def test_an_output_of_several_tensors_random_in_eval_mode_is_named():
    with pytest.raises(PruningError, match=r"changes between two calls on the same inputs \(by up to "):
        DropNetPruner(ProbabilitiesAndLogits(random_in_eval=True), torch.randn(4, 6)).check_removal(torch.randn(8, 6))
