"""Where pruning stops short of prune_ratio it says so; the progress bar counts the rounds
run; prune_ratio=0 trains a network that DropNet cannot prune."""

import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from tqdm.auto import tqdm

import sklearn_dropnet._dropnet as dropnet_module
from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import PruningError


def _fit(X, y, **params):
    params = {"max_epochs": 1, "random_state": 0, **params}
    return DropNetClassifier(**params).fit(X, y)


def _stopped(caught):
    return [str(w.message) for w in caught if str(w.message).startswith("Pruning stopped")]


@pytest.mark.parametrize(
    "params, message",
    [
        # Nothing removed of 50%: the shortfall (24 units) is under round_to / 2.
        (
            dict(module__hidden_layer_sizes=(32, 16), round_to=64, prune_ratio=0.5),
            r"Pruning stopped at 0% of the units removed, short of prune_ratio=0.5: round_to=64 keeps .* "
            r"48 of the 48 units are left, where prune_ratio=0.5 leaves 24\. .* Lower round_to\.",
        ),
        # A round of 2 units that the multiples of 8 round to none.
        (
            dict(module__hidden_layer_sizes=(16, 16), round_to=8, prune_ratio=0.1, drop_fraction=0.05),
            r"Pruning stopped at 0% .* 32 of the 32 units are left, where prune_ratio=0.1 leaves 28\.",
        ),
    ],
    ids=["round_to-over-the-layers", "short-by-less-than-half-a-multiple"],
)
def test_a_round_to_that_stops_pruning_short_is_always_warned(digits, params, message):
    X, y = digits
    with pytest.warns(UserWarning, match=message):
        clf = _fit(X[:200], y[:200], **params)
    assert [record["round"] for record in clf.pruning_history_] == [0]


def test_a_prune_ratio_below_every_layers_last_unit_is_warned_once_per_call(digits):
    X, y = digits
    X, y = X[:200], y[:200]
    floor = (
        r"Pruning stopped at fraction_left=0.167 \(2 of the 12 units left\), short of prune_ratio={}, which "
        r"leaves {}: every layer keeps at least one unit .* The fewest units per layer: "
        r"\{{'layers.1': 1, 'layers.4': 1\}}. Set prune_ratio to at most 0.833"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = _fit(X, y, module__hidden_layer_sizes=(8, 4), prune_ratio=0.99)
    assert clf.pruning_history_[-1]["units"] == 2
    assert len(_stopped(caught)) == 1 and re.search(floor.format(0.99, 0), _stopped(caught)[0])
    rounds = len(clf.pruning_history_)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.prune(X, y)  # one more round: none can run
    assert len(clf.pruning_history_) == rounds
    assert len(_stopped(caught)) == 1 and "(2 of the 12 units left)" in _stopped(caught)[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Pruning stopped")
        clf.prune(X, y, prune_ratio=0.83)  # reached already: nothing to say


@pytest.mark.parametrize(
    "params",
    [dict(prune_ratio=0.5), dict(prune_ratio=0.6), dict(prune_ratio=0.5, round_to=4)],
    ids=["0.5", "0.6", "round_to"],
)
def test_the_progress_bar_counts_the_rounds_run(digits, monkeypatch, params):
    bars = []

    class Recorded(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.estimated = self.total
            bars.append(self)

    monkeypatch.setattr(dropnet_module, "tqdm", Recorded)
    X, y = digits
    clf = _fit(X[:200], y[:200], module__hidden_layer_sizes=(32, 16), verbose=1, **params)
    rounds = len(clf.pruning_history_) - 1
    (bar,) = bars
    assert bar.n == bar.total == rounds
    if "round_to" not in params:  # the estimate is right from the start
        assert bar.estimated == rounds


class _Logistic(nn.Module):
    """No hidden layer at all."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        return self.out(x.flatten(1))


class _SharedLayer(nn.Module):
    """A hidden layer called twice, and one coupled to it: none can be pruned."""

    def __init__(self):
        super().__init__()
        self.inp, self.shared, self.out = nn.Linear(64, 16), nn.Linear(16, 16), nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.inp(x.flatten(1)))
        return self.out(torch.relu(self.shared(torch.relu(self.shared(x)))))


class _ChannelsLast(nn.Module):
    """A filter whose removal Torch-Pruning maps wrongly: the removal check after training leaves it."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 64, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x.reshape(-1, 1, 8, 8))).permute(0, 2, 3, 1).flatten(1))


@pytest.mark.parametrize(
    "module, error",
    [
        (_Logistic, r"No prunable layer found in the module"),
        (_SharedLayer, r"None of the prunable layers \['inp'\] can be pruned"),
        (_ChannelsLast, r"None of the prunable layers \['conv'\] can be pruned"),
    ],
    ids=["no-hidden-layer", "shared-layer", "removal-check"],
)
def test_prune_ratio_0_trains_a_network_with_nothing_to_prune(digits, module, error):
    X, y = digits
    X, y = X[:200], y[:200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the layers left unpruned are named
        clf = _fit(X, y, module=module, prune_ratio=0)
        dense = _fit(X, y, module__hidden_layer_sizes=(4,), prune_ratio=0).pruning_history_[0]
    (record,) = clf.pruning_history_
    assert record.keys() == dense.keys()
    assert (record["round"], record["units"], record["units_per_layer"], record["fraction_left"]) == (0, 0, {}, 1.0)
    assert record["params"] == sum(p.numel() for p in clf.module_.parameters()) and record["macs"] > 0
    assert record["accepted"] and 0 <= record["valid_accuracy"] <= 1 and record["epochs"] == 1
    assert clf.n_units_dense_ == 0 and clf.net_.train_split is None
    assert np.isin(clf.predict(X[:5]), clf.classes_).all()
    for prune_ratio in (0.5, None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(PruningError, match=error):
                clf.prune(X, y, prune_ratio=prune_ratio)
    assert len(clf.pruning_history_) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(PruningError, match=error):
            _fit(X, y, module=module, prune_ratio=0.5)


class _AlwaysDropout(_Logistic):
    """F.dropout without training=self.training: random in eval mode too."""

    def forward(self, x):
        return self.out(nn.functional.dropout(x.flatten(1), 0.5))


def test_prune_ratio_0_refuses_a_network_random_in_eval_mode_all_the_same(digits):
    X, y = digits
    assert _fit(X[:100], y[:100], module=_Logistic, prune_ratio=0).pruning_history_[0]["units"] == 0
    with pytest.raises(PruningError, match=r"output in eval mode changes between two calls"):
        _fit(X[:100], y[:100], module=_AlwaysDropout, prune_ratio=0)


def test_a_drop_fraction_too_small_for_round_to_takes_one_multiple_a_round(digits):
    # A round of 1 unit (0.05 of 24) rounds back to none with multiples of 4;
    # it stopped the pruning at 0%, blaming round_to.
    X, y = digits
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Pruning stopped")
        clf = _fit(X[:200], y[:200], module__hidden_layer_sizes=(16, 8), round_to=4, drop_fraction=0.05,
                   prune_ratio=0.5)  # fmt: skip
    assert [record["units"] for record in clf.pruning_history_] == [24, 20, 16, 12]
    assert all(units % 4 == 0 for units in clf.pruning_history_[-1]["units_per_layer"].values())


def test_a_scope_that_chooses_nothing_is_named_not_round_to(digits):
    X, y = digits

    def nothing(scores, n_drop, rng, **context):
        return {}

    with pytest.warns(UserWarning, match=r"short of prune_ratio=0.5: scope='nothing' chose no unit to remove\.$"):
        clf = _fit(X[:200], y[:200], module__hidden_layer_sizes=(16, 8), scope=nothing, prune_ratio=0.5)
    assert [record["round"] for record in clf.pruning_history_] == [0]


@pytest.mark.parametrize(
    "sizes, round_to, drop_fraction, left",
    [((64, 32), 8, 0.2, (32, 16)), ((128, 64), 16, 0.1, (64, 32))],
)
def test_round_to_keeps_the_layers_shares_even_with_scope_layer(digits, sizes, round_to, drop_fraction, left):
    # Going up a multiple by the largest remainder in units favoured the large
    # layer round after round: 64-32 at half ended 40-8, and 128-64 48-48
    # (a round's 10% of 64 is under half a multiple of 16: only the share of
    # the first units, not of the round's, brings the small layer down).
    X, y = digits
    clf = _fit(X[:200], y[:200], module__hidden_layer_sizes=sizes, round_to=round_to, drop_fraction=drop_fraction,
               prune_ratio=0.5)  # fmt: skip
    assert tuple(clf.pruning_history_[-1]["units_per_layer"].values()) == left
