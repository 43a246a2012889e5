"""Grouped and depthwise convolutions, Conv1d and Conv3d filters.

A grouped convolution's channel groups must keep one size: its units go as
many from each channel group, at any positions within them, and the
removal must compute what switching the same units off computes.
"""

import copy
import warnings

import numpy as np
import pytest
import torch
from removal_checks import assert_removal_matches_masking, randomise_batchnorm
from torch import nn
from torch.utils.data import TensorDataset

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner, _surgery
from sklearn_dropnet.pruning._probes import inspect_network
from sklearn_dropnet.pruning._surgery import (
    find_unit_groups,
    trace_unit_groups,
)
from sklearn_dropnet.pruning._unit_selection import choose_units_to_drop


class Grouped(nn.Module):
    """conv -> ReLU -> grouped conv (2 groups) -> BN -> ReLU -> 1x1 conv -> ReLU -> mean -> out."""

    def __init__(self, groups=2):
        super().__init__()
        self.c1, self.a1 = nn.Conv2d(2, 8, 3, padding=1), nn.ReLU()
        self.c2, self.b2, self.a2 = nn.Conv2d(8, 6, 3, padding=1, groups=groups), nn.BatchNorm2d(6), nn.ReLU()
        self.c3, self.a3 = nn.Conv2d(6, 5, 1), nn.ReLU()
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        x = self.a2(self.b2(self.c2(self.a1(self.c1(x)))))
        return self.out(self.a3(self.c3(x)).mean(dim=(2, 3)))


def test_a_grouped_convolutions_units_are_labelled_by_channel_group():
    net, x = Grouped(), torch.randn(2, 2, 6, 6)
    groups = {g.name: g for g in find_unit_groups(net, x, inspect_network(net, x))}
    assert groups["c1"].channel_groups.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # inputs of c2
    assert groups["c2"].channel_groups.tolist() == [0, 0, 0, 1, 1, 1]  # outputs of c2
    assert groups["c3"].channel_groups is None
    assert groups["c1"].n_channel_groups == 2


@pytest.mark.parametrize(
    "drop",
    [{"c1": [1, 6]}, {"c1": [0, 1, 4, 7]}, {"c2": [0, 4]}, {"c1": [3, 5], "c2": [2, 3], "c3": [1]}],
    ids=["inputs-asymmetric", "inputs-two-each", "outputs", "all"],
)
def test_grouped_removal_matches_masking_at_any_positions_within_the_groups(drop):
    # Torch-Pruning alone keeps c2's first input positions: right only when
    # both channel groups lose the same positions ({"c1": [1, 6]} does not).
    torch.manual_seed(0)
    net = randomise_batchnorm(Grouped())
    x = torch.randn(4, 2, 6, 6)
    assert_removal_matches_masking(net, x, drop)
    assert net.c2.groups == 2 and net.c2.weight.shape[1] == net.c1.out_channels // 2


def test_selections_remove_as_many_units_from_each_channel_group():
    labels = np.repeat(np.arange(4), 6)  # 4 channel groups of 6
    rng = np.random.default_rng(0)
    scores = {"grouped": rng.random(24), "plain": rng.random(10)}
    scores["grouped"][:6] -= 1  # the first channel group scores lowest
    for scope in ("layer", "global", "global_raw"):
        drop = choose_units_to_drop(scores, 8, scope, np.random.default_rng(1), {"grouped": labels})
        per_group = np.bincount(labels[drop["grouped"]], minlength=4)
        assert len(set(per_group)) == 1, (scope, per_group)
    drop = choose_units_to_drop(scores, 10, "layer", np.random.default_rng(1), {"grouped": labels})
    assert len(drop["grouped"]) == 8 and len(drop["plain"]) == 2  # 24 / 34 of 10, in steps of 4
    floors = {"grouped": 5}  # each channel group keeps 5 of its 6
    drop = choose_units_to_drop(scores, 20, "layer", np.random.default_rng(1), {"grouped": labels}, floors)
    # grouped takes what its floor lets it (4 of its 14.1); plain its own 5.9
    # rounded up, not grouped's leftover as well (it took 9 of its 10 before)
    assert len(drop["grouped"]) == 4 and len(drop["plain"]) == 6
    # A round that would remove nothing removes one unit per channel group.
    drop = choose_units_to_drop({"grouped": scores["grouped"]}, 1, "layer", rng, {"grouped": labels})
    assert np.bincount(labels[drop["grouped"]], minlength=4).tolist() == [1, 1, 1, 1]


def test_the_pruner_keeps_the_channel_groups_equal_down_to_one_channel():
    # Torch-Pruning takes a convolution with one output per channel group for
    # a depthwise one: c2 keeps two outputs per channel group while it has
    # several inputs per channel group, then becomes depthwise (c1 and c2 one
    # group), then a plain convolution.
    torch.manual_seed(0)
    net, x = Grouped(), torch.randn(40, 2, 6, 6)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.fewest_units == 2 * 1 + 2 * 2 + 1
    sizes = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        while n_drop := pruner.units_to_drop(prune_ratio=0.99, drop_fraction=0.5):
            pruner.remove(pruner.choose(pruner.score(lambda: [x]), n_drop, rng=0))
            pruner.check_removal(x[:32])
            c2 = pruner.module.c2
            sizes.append((c2.in_channels, c2.out_channels, c2.groups))
            assert c2.in_channels % c2.groups == 0 and c2.out_channels % c2.groups == 0
    assert sizes == [(4, 4, 2), (2, 4, 2), (2, 2, 2), (1, 1, 1)]
    assert pruner.units_per_layer == {"c1": 1, "c2": 1, "c3": 1}


class ConcatIntoGrouped(nn.Module):
    """Two branches concatenated into a grouped convolution: each branch is a
    group of its own, but the grouped convolution needs them balanced together."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 4, 3, padding=1)
        self.c, self.out = nn.Conv2d(8, 4, 3, padding=1, groups=2), nn.Linear(4, 2)

    def forward(self, x):
        y = torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], dim=1)
        return self.out(torch.relu(self.c(y)).mean(dim=(2, 3)))


class DepthwiseMultiplier(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.dw, self.out = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1, groups=4), nn.Linear(8, 2)

    def forward(self, x):
        return self.out(torch.relu(self.dw(torch.relu(self.a(x)))).mean(dim=(2, 3)))


def test_channel_groups_that_cannot_stay_equal_are_named():
    net, x = ConcatIntoGrouped(), torch.randn(2, 1, 6, 6)
    groups, refused = trace_unit_groups(net, x, inspect_network(net, x))
    for layer in ("a", "b"):
        assert refused[layer][1].startswith(
            "its units are only some of the input channels of the grouped convolution 'c'"
        )
    assert [g.name for g in groups] == ["c"]


def test_units_that_are_channel_groups_of_their_own_are_named():
    with pytest.warns(UnitRemovalWarning, match=r"layer 'a' unpruned: each of its units is a channel group of its own"):
        pruner = DropNetPruner(DepthwiseMultiplier(), torch.randn(2, 1, 6, 6))
    assert set(pruner.unpruned) == {"a"}
    assert pruner.units_per_layer == {"dw": 8}


def test_a_depthwise_convolution_with_a_multiplier_prunes_its_outputs():
    torch.manual_seed(0)
    net, x = DepthwiseMultiplier(), torch.randn(4, 1, 6, 6)
    groups = {g.name: g for g in find_unit_groups(net, x, inspect_network(net, x))}
    assert groups["dw"].channel_groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert_removal_matches_masking(net, x, {"dw": [1, 2, 5, 6]})
    assert net.dw.out_channels == 4 and net.dw.groups == 4


# ----------------------------------------------------------------------
# Conv1d and Conv3d
# ----------------------------------------------------------------------
class Sequence1d(nn.Module):
    """Conv1d -> BN -> ReLU -> max pool -> residual block (Conv1d -> BN, added) -> ReLU -> mean -> Linear."""

    def __init__(self, channels=1, width=12, n_classes=10):
        super().__init__()
        self.c1, self.b1, self.pool = nn.Conv1d(channels, width, 3, padding=1), nn.BatchNorm1d(width), nn.MaxPool1d(2)
        self.c2, self.b2 = nn.Conv1d(width, width, 3, padding=1), nn.BatchNorm1d(width)
        self.c3, self.b3 = nn.Conv1d(width, 2 * width, 3, padding=1), nn.BatchNorm1d(2 * width)
        self.out = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.b1(self.c1(x))))
        x = torch.relu(x + self.b2(self.c2(x)))
        return self.out(torch.relu(self.b3(self.c3(x))).mean(dim=2))


def test_conv1d_filters_are_removed_exactly():
    torch.manual_seed(0)
    net = randomise_batchnorm(Sequence1d())
    x = torch.randn(5, 1, 8)
    groups = {g.name: g for g in find_unit_groups(net, x, inspect_network(net, x))}
    assert {name: sorted(m[0] for m in g.members) for name, g in groups.items()} == {
        "c1": ["c1", "c2"], "c3": ["c3"],
    }  # fmt: skip
    assert_removal_matches_masking(net, x, {"c1": [0, 3, 4, 9], "c3": [1, 2, 20]})
    assert net.c1.out_channels == net.c2.out_channels == net.b2.num_features == 8
    assert net.c3.in_channels == 8 and net.out.in_features == 21


def test_conv3d_filters_are_removed_exactly():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv3d(1, 6, 3, padding=1), nn.BatchNorm3d(6), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(6, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 2),
    )  # fmt: skip
    assert_removal_matches_masking(randomise_batchnorm(net), torch.randn(3, 1, 4, 4, 4), {"0": [1, 4], "4": [0]})
    assert (net[0].out_channels, net[4].in_channels, net[8].in_features) == (4, 4, 3)


@pytest.fixture(scope="module")
def sequences():
    """Digits as 8-step sequences of 8 values (rows), shaped (n, 8 channels, 8 steps)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32).reshape(-1, 8, 8).transpose(0, 2, 1)
    return np.ascontiguousarray(X[:400]), y[:400]


def test_the_estimator_prunes_conv1d_filters_from_arrays_and_datasets(sequences):
    X, y = sequences
    params = dict(
        module=Sequence1d, module__channels=8, module__width=16, prune_ratio=0.5, max_epochs=2, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        clf = DropNetClassifier(**params).fit(X, y)
    assert clf.input_shape_ == (8, 8)
    assert clf.pruning_history_[-1]["units"] == clf.pruning_history_[0]["units"] // 2
    assert clf.module_.c1.out_channels < 16 and clf.module_.c3.out_channels < 32
    assert clf.predict(X[:5]).shape == (5,)
    dataset = TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    from_dataset = DropNetClassifier(**params).fit(dataset)
    assert [r["units_per_layer"] for r in from_dataset.pruning_history_] == [
        r["units_per_layer"] for r in clf.pruning_history_
    ]
    np.testing.assert_allclose(from_dataset.predict_proba(dataset), clf.predict_proba(X), atol=1e-6)
    copy.deepcopy(clf).predict(X[:2])


class _SplitAndConcatenate(nn.Module):
    """YOLOv8's C2f block: a layer's output split in two with chunk, a conv on one half,
    and all three concatenated again (in ``order``: the halves ``a``, ``b``, the conv's ``c``)."""

    def __init__(self, order="abc"):
        super().__init__()
        self.order = order
        self.stem, self.a0 = nn.Conv2d(1, 8, 3, padding=1), nn.ReLU()
        self.cv1, self.a1 = nn.Conv2d(8, 8, 1), nn.ReLU()
        self.m, self.a2 = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
        self.cv2, self.a3 = nn.Conv2d(12, 8, 1), nn.ReLU()
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        x = self.a0(self.stem(x))
        a, b = self.a1(self.cv1(x)).chunk(2, 1)
        parts = {"a": a, "b": b, "c": self.a2(self.m(b))}
        return self.out(self.a3(self.cv2(torch.cat([parts[k] for k in self.order], 1))).mean(dim=(2, 3)))


@pytest.mark.parametrize("order", ["abc", "acb", "bac", "bca", "cab", "cba"])
def test_a_chunk_concatenated_again_is_pruned_whatever_the_order_of_the_parts(order):
    """Torch-Pruning 1.6 maps cv1's channels through chunk and cat to channels it does not
    have (scoring then failed with an IndexError from NumPy); DropNet maps them right."""
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(_SplitAndConcatenate(order), x[:2])
        assert len(pruner.check_removal(x)) == 4
    assert pruner.units_per_layer == {"stem": 8, "cv1": 8, "m": 4, "cv2": 8}
    net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 8, rng=np.random.default_rng(0)))
    assert len(pruner.check_removal(x)) == 4 and net(x).shape == (16, 3) and net.cv1.out_channels % 2 == 0


def test_a_chunk_concatenated_again_as_torch_pruning_maps_it_is_refused(monkeypatch):
    """Each of DropNet's corrections matters: without the mapping of the parts into the
    concat, a concat that reads the second half first takes the wrong channels out of
    cv1 (the removal check refuses it); without any, Torch-Pruning maps its units past its
    width, and the group is refused at once, naming the channel."""
    torch.manual_seed(0)
    net, x = _SplitAndConcatenate("bac"), torch.randn(16, 1, 8, 8)
    monkeypatch.setattr(_surgery, "map_split_concats", lambda graph: None)
    with pytest.warns(UnitRemovalWarning, match=r"layer 'cv1' unpruned: removing its units does not match switching"):
        assert "cv1" not in {group.name for group in DropNetPruner(net, x[:2]).check_removal(x)}
    monkeypatch.setattr(_surgery, "size_equal_parts", lambda graph: None)
    monkeypatch.setattr(_surgery, "size_concat_of_parts", lambda graph, node, channels_between: None)
    monkeypatch.setattr(_surgery, "chunk_parts", lambda item, chunks: None)
    with pytest.warns(UnitRemovalWarning, match=r"layer 'cv1' unpruned: Torch-Pruning maps its units to channel \d+ of 'cv1', which has 8 "
                      r"\(its mapping through a split, concatenation, reshape or broadcast product \(x \* weights\) of this network is wrong\)"):  # fmt: skip
        pruner = DropNetPruner(_SplitAndConcatenate(), x[:2])
    assert "cv1" not in pruner.units_per_layer and {"stem", "cv2"} <= set(pruner.units_per_layer)


class _CrossStagePartial(nn.Module):
    """CSPNet's cross-stage block (YOLOv4/v5's backbone, timm's cspresnet50): a layer's
    output split in two, a residual block on one half, then both concatenated again.
    ``exp`` reaches no activation, so the residual stream switches it off."""

    def __init__(self):
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.exp, self.exp_bn = nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16)
        self.c1, self.b1 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.trans_b, self.trans_b_bn = nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)
        self.trans, self.trans_bn = nn.Conv2d(16, 12, 1), nn.BatchNorm2d(12)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem(x)))
        xs, xb = self.exp_bn(self.exp(x)).split(8, dim=1)
        xb = torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(xb))))) + xb)
        xb = torch.relu(self.trans_b_bn(self.trans_b(xb)))
        x = torch.relu(self.trans_bn(self.trans(torch.cat([xs, xb], dim=1))))
        return self.out(x.mean(dim=(2, 3)))


def test_the_residual_stream_of_a_cross_stage_block_is_pruned_through_its_split():
    """Torch-Pruning 1.6 maps the residual stream's channels to channels 16-23 of ``exp``,
    which has 16 (switching the units off raised an IndexError from torch; then the group
    was refused); DropNet maps them to the split's second part, as ``trans_b``'s to the
    concat's."""
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    net = randomise_batchnorm(_CrossStagePartial()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(net, x[:2])
        assert len(pruner.check_removal(x)) == 5
    assert pruner.units_per_layer == {"stem": 8, "c1": 8, "c2": 8, "trans_b": 8, "trans": 12}
    net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 8, rng=np.random.default_rng(0)))
    pruner.check_removal(x)
    assert net(x).shape == (16, 3) and sum(pruner.units_per_layer.values()) == 44 - 8
    assert net.exp.out_channels == 8 + pruner.units_per_layer["c2"]  # the first part keeps its 8


def test_a_layer_split_before_its_activation_is_named_with_the_split():
    structure = inspect_network(_CrossStagePartial().eval(), torch.randn(2, 1, 8, 8))
    assert structure.left_out["exp"].startswith("its output goes into a split ('<root>: split') before any activation")


class _ReadAndSplit(nn.Module):
    """A layer's output read by its activation and, unchanged, by a chunk into two parts."""

    def __init__(self, chunk_first):
        super().__init__()
        self.chunk_first = chunk_first
        self.conv, self.bn, self.out = nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Linear(12, 3)

    def forward(self, x):
        x = self.bn(self.conv(x))
        if self.chunk_first:
            parts = x.chunk(2, dim=1)
            h = torch.relu(x)
        else:
            h = torch.relu(x)
            parts = torch.chunk(x, 2, 1)
        return self.out(torch.cat([h.mean(dim=(2, 3)), parts[0].mean(dim=(2, 3))], dim=1))


@pytest.mark.parametrize("chunk_first", [True, False])
def test_a_layer_whose_output_is_also_split_before_its_activation_is_left_out(chunk_first):
    """Switching a unit off at the ReLU cannot zero it in the chunk, which reads it before."""
    structure = inspect_network(_ReadAndSplit(chunk_first).eval(), torch.randn(2, 1, 8, 8))
    assert "conv" not in structure.probes
    assert "goes into a split" in structure.left_out["conv"] and ": chunk')" in structure.left_out["conv"]
