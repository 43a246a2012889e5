"""What DropNetPruner does with scores, counts and functions of the user's that
cannot be right: a clear error before anything changes, never a silent choice."""

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_dropnet.pruning import UNIT_SCORES, DropNetPruner, register_unit_score


@pytest.fixture
def pruner():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
    x = torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    return pruner, pruner.score(lambda: [x])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("scope", ["layer", "global", "global_raw"])
def test_non_finite_scores_are_refused(pruner, bad, scope):
    pruner, scores = pruner
    scores = {name: values.copy() for name, values in scores.items()}
    scores["0"][3] = bad
    with pytest.raises(ValueError, match=r"The scores of layer '0' hold 1 NaN or infinite values"):
        pruner.choose(scores, 5, scope=scope)


def test_scores_of_other_layers_or_of_some_layers_only_are_refused(pruner):
    pruner, scores = pruner
    with pytest.raises(ValueError, match=r"no scores for \['2'\]"):
        pruner.choose({"0": scores["0"]}, 4)
    with pytest.raises(ValueError, match=r"layers it does not have: \['conv'\]"):
        pruner.choose({**scores, "conv": np.ones(4)}, 4)
    with pytest.raises(TypeError, match=r"scores must be a dict of layer name -> one score per unit.*got list"):
        pruner.choose(list(scores.values()), 4)


def test_more_units_than_can_go_are_refused(pruner):
    pruner, scores = pruner
    assert sum(len(units) for units in pruner.choose(scores, 20).values()) == 20  # each layer keeps one
    with pytest.raises(ValueError, match=r"n_drop=21, but at most 20 of the 22 units of the prunable groups can go"):
        pruner.choose(scores, 21)


def test_a_selection_that_chooses_more_than_n_drop_is_refused(pruner):
    pruner, scores = pruner

    def everything_but_one(scores, n_drop, rng, **context):
        return {name: np.arange(len(values) - 1) for name, values in scores.items()}

    with pytest.raises(ValueError, match=r"scope='everything_but_one' chose 20 units to remove, more than n_drop=3"):
        pruner.choose(scores, 3, scope=everything_but_one)


def test_a_selection_without_the_context_is_named(pruner):
    pruner, scores = pruner
    with pytest.raises(TypeError, match=r"scope, a callable, must take \(scores, n_drop, rng, \*\*context\).*add \*\*context"):
        pruner.choose(scores, 3, scope=lambda scores, n_drop, rng: {})


def test_unit_scores_with_the_wrong_signature_are_named(pruner):
    pruner, _ = pruner
    x = torch.randn(16, 6)
    with pytest.raises(TypeError, match=r"must take three arguments \(layer, statistic, rng\).*'two' 's function"
                                        r" has the signature <lambda>\(layer, a\)".replace(" 's", "'s")):  # fmt: skip
        register_unit_score("two", lambda layer, a: a.mean(0))
    assert "two" not in UNIT_SCORES
    with pytest.raises(TypeError, match=r"unit_score, a callable, must take two arguments \(layer, activations\).*"
                                        r"register it with register_unit_score"):  # fmt: skip
        pruner.score(lambda: [x], lambda layer, statistic, rng: statistic.mean(0))
    scores = pruner.score(lambda: [x], lambda layer, activations: activations.std(0))
    assert {name: len(values) for name, values in scores.items()} == {"0": 12, "2": 10}


def test_a_layer_added_behind_the_pruner_is_named(pruner):
    pruner, _ = pruner
    pruner.module[4] = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(16, 6)
    with pytest.raises(Exception, match=r"The network changed behind the pruner: it has new layers \['4.0', '4.2'\] "
                                        r"and its layers \['4'\] are gone"):  # fmt: skip
        pruner.score(lambda: [x])


def test_a_dtype_changed_behind_the_pruner_is_named_before_any_surgery(pruner):
    pruner, scores = pruner
    drop = pruner.choose(scores, 4)
    pruner.module.double()
    with pytest.raises(Exception, match=r"parameters changed dtype behind the pruner: they are torch.float64, "
                                        r"and were torch.float32.*convert the network first"):  # fmt: skip
        pruner.remove(drop)
    assert pruner.units_per_layer == {"0": 12, "2": 10}


def test_a_network_converted_before_the_pruner_prunes_in_its_dtype():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3)).double()
    x = torch.randn(16, 6, dtype=torch.float64)
    pruner = DropNetPruner(net, x[:2])
    net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 4), restart="rewind")
    assert net[0].weight.dtype == torch.float64 and pruner.units_per_layer == {"0": 8}


def test_a_checkpoint_of_another_pruner_is_refused_and_changes_nothing(pruner):
    pruner, _ = pruner
    torch.manual_seed(1)
    other = DropNetPruner(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)), torch.randn(2, 1, 8, 8))
    units = pruner.units_per_layer
    for checkpoint in (other.checkpoint(), "round 3"):
        with pytest.raises(ValueError, match=r"restore\(\) takes a checkpoint this pruner's checkpoint\(\) made"):
            pruner.restore(checkpoint)
    assert pruner.units_per_layer == units and isinstance(pruner.module[0], nn.Linear)
    assert pruner.restore(pruner.checkpoint()) is pruner.module


@pytest.mark.parametrize("restart", ["none", "rewind", "random"])
def test_remove_keeps_the_modes_of_the_network_it_replaces(pruner, restart):
    pruner, scores = pruner
    pruner.module.eval()
    pruner.module[1].train()
    net = pruner.remove(pruner.choose(scores, 4), restart=restart)
    assert [part.training for part in net] == [False, True, False, False, False]


def test_a_layer_under_torch_nn_utils_prune_is_refused_with_the_fix():
    import torch.nn.utils.prune as torch_prune

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
    torch_prune.l1_unstructured(net[2], "weight", amount=0.3)
    x = torch.randn(16, 6)
    with pytest.raises(Exception, match=r"Layer '2' is under torch.nn.utils.prune: its 'weight' is computed from "
                                        r"'weight_orig' and 'weight_mask'.*prune.remove\(module.get_submodule\('2'\), "
                                        r"'weight'\)"):  # fmt: skip
        DropNetPruner(net, x[:2])
    torch_prune.remove(net[2], "weight")  # the fix: the mask made permanent
    pruner = DropNetPruner(net, x[:2])
    pruner.remove(pruner.choose(pruner.score(lambda: [x]), 4))
    assert sum(pruner.units_per_layer.values()) == 18


def test_an_empty_check_batch_and_empty_scores_are_refused():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(16, 4)
    pruner = DropNetPruner(net, x[:2])
    with pytest.raises(ValueError, match=r"check_removal\(\) got inputs of shape \(0, 4\): it checks the removal"):
        pruner.check_removal(x[:0])  # checked nothing, and said nothing
    with pytest.raises(ValueError, match=r"choose\(\) got no scores, and scope='layer' ranks the units by them"):
        pruner.choose({}, 3)  # chose nothing, and said nothing


class _CountsBuilds(nn.Module):
    built = 0

    def __init__(self, input_shape=(64,), n_classes=10):
        super().__init__()
        type(self).built += 1
        self.hidden, self.act, self.out = nn.Linear(input_shape[0], 8), nn.ReLU(), nn.Linear(8, n_classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


def test_round_to_true_is_refused_before_any_training():
    from sklearn.datasets import load_digits

    from sklearn_dropnet import DropNetClassifier

    X, y = load_digits(return_X_y=True)
    clf = DropNetClassifier(module=_CountsBuilds, round_to=True, max_epochs=1)
    with pytest.raises(ValueError, match=r"round_to must be a whole number, 1 or more .* not True\.$"):
        clf.fit(X[:50], y[:50])
    assert _CountsBuilds.built == 0  # refused before a network was built (it failed after the dense round)
