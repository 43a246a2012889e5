"""A layer's output split in parts and concatenated again: YOLOv8's C2f block (``chunk``)
and CSPNet's cross-stage block (``split`` by one size). Torch-Pruning 1.6 maps the parts
into the concat wrongly; the units of a ``chunk`` go as many from each part."""

import io

import joblib
import numpy as np
import pytest
import torch
from removal_checks import assert_removal_matches_masking, randomise_batchnorm
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.datasets import load_digits_images
from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner


class ConvAct(nn.Module):
    def __init__(self, n_in, n_out, kernel=1, act=True):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(n_in, n_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(n_out)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.cv1, self.cv2 = ConvAct(channels, channels, 3), ConvAct(channels, channels, 3)

    def forward(self, x):
        return x + self.cv2(self.cv1(x))


class C2f(nn.Module):
    """ultralytics' C2f: ``cv1``'s output in halves, a chain of bottlenecks on the
    second, every one of them concatenated into ``cv2``."""

    def __init__(self, n_in, n_out, n=2, split="chunk"):
        super().__init__()
        self.c, self.split = n_out // 2, split
        self.cv1, self.cv2 = ConvAct(n_in, 2 * self.c), ConvAct((2 + n) * self.c, n_out)
        self.m = nn.ModuleList(Bottleneck(self.c) for _ in range(n))

    def forward(self, x):
        if self.split == "chunk":
            y = list(self.cv1(x).chunk(2, 1))
        else:  # C2f.forward_split: sizes made anew at each call
            y = list(self.cv1(x).split((self.c, self.c), 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class YoloLike(nn.Module):
    def __init__(self, input_shape=(1, 8, 8), n_classes=10, split="chunk"):
        super().__init__()
        self.stem, self.c2f = ConvAct(input_shape[0], 16, 3), C2f(16, 32, split=split)
        self.head = nn.Linear(32, n_classes)

    def forward(self, x):
        return self.head(self.c2f(self.stem(x)).mean((2, 3)))


class CrossStage(nn.Module):
    """timm's CSPNet stage: ``conv_exp`` (no activation) split by one size; a residual
    bottleneck on the second part, a transition, both parts concatenated."""

    def __init__(self, input_shape=(1, 8, 8), n_classes=10):
        super().__init__()
        self.stem, self.conv_exp = ConvAct(input_shape[0], 16, 3), ConvAct(16, 32, act=False)
        self.conv1, self.conv2 = ConvAct(16, 8), ConvAct(8, 16, 3, act=False)
        self.conv_transition_b, self.conv_transition = ConvAct(16, 16), ConvAct(32, 24)
        self.head = nn.Linear(24, n_classes)

    def forward(self, x):
        xs, xb = self.conv_exp(self.stem(x)).split(16, dim=1)
        xb = torch.relu(xb + self.conv2(self.conv1(xb)))
        out = self.conv_transition(torch.cat([xs, self.conv_transition_b(xb)], dim=1))
        return self.head(out.mean((2, 3)))


def network(cls, **params):
    torch.manual_seed(0)
    return randomise_batchnorm(cls(**params)).eval(), torch.randn(16, 1, 8, 8)


def test_the_halves_of_a_c2f_block_are_mapped_into_its_concat_and_lose_as_many_units_each():
    """cv1 was left out: Torch-Pruning mapped its units to channel 95 of its 32."""
    net, x = network(YoloLike)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {
        "stem.conv": 16, "c2f.cv1.conv": 32, "c2f.m.0.cv1.conv": 16, "c2f.m.1.cv1.conv": 16, "c2f.cv2.conv": 32,
    }  # fmt: skip
    cv1 = next(group for group in pruner.units if group.name == "c2f.cv1.conv")
    np.testing.assert_array_equal(cv1.channel_groups, np.repeat([0, 1], 16))
    # The residual stream of the bottlenecks is the second half's units.
    assert [member[0] for member in cv1.members] == ["c2f.cv1.conv", "c2f.m.1.cv2.conv", "c2f.m.0.cv2.conv"]
    np.testing.assert_array_equal(cv1.members[1][2], np.arange(16, 32))
    assert len(pruner.check_removal(x)) == 5
    # Two units of each half: cv2 loses its inputs 1, 4 (first half), 16 + 2, 16 + 7
    # (second half), 32 + 2, 32 + 7 and 48 + 2, 48 + 7 (the bottlenecks' outputs).
    cv2 = net.c2f.cv2.conv.weight.detach().clone()
    assert_removal_matches_masking(net, x, {"c2f.cv1.conv": [1, 4, 18, 23]})
    kept = np.setdiff1d(np.arange(64), [1, 4, 18, 23, 34, 39, 50, 55])
    torch.testing.assert_close(net.c2f.cv2.conv.weight, cv2[:, kept])
    assert net.c2f.cv1.conv.out_channels == 28 and net.c2f.m[1].cv2.conv.out_channels == 14


def test_a_round_takes_as_many_units_from_each_half_of_a_chunk():
    net, x = network(YoloLike)
    pruner = DropNetPruner(net, x[:2])
    scores = pruner.score(lambda: [x])
    scores["c2f.cv1.conv"][:16] -= 100.0  # the first half's units are all the weakest
    drop = pruner.choose(scores, pruner.units_to_drop(0.25))
    cv1 = drop["c2f.cv1.conv"]
    assert len(cv1) > 0 and np.sum(cv1 < 16) == np.sum(cv1 >= 16)
    smaller = pruner.remove(drop)
    assert smaller.c2f.cv1.conv.out_channels == 32 - len(cv1)
    smaller(x)


def test_a_yolo_like_network_fits_prunes_and_survives_joblib_on_the_digits():
    X, y = load_digits_images()
    clf = DropNetClassifier(module=YoloLike, prune_ratio=0.5, max_epochs=2, random_state=0).fit(X[:600], y[:600])
    assert clf.unpruned_layers_ == {}
    cv1 = clf.module_.c2f.cv1.conv.out_channels
    assert cv1 % 2 == 0 and cv1 < 32
    assert clf.module_.c2f.m[0].cv1.conv.in_channels == cv1 // 2
    assert clf.pruning_history_[-1]["units"] == clf.pruning_history_[0]["units"] // 2
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X[600:700]), clf.predict_proba(X[600:700]))


def test_halves_split_by_sizes_made_anew_are_traced_and_their_layer_left_out():
    """The network could not be traced ("IndexError: list index out of range" in
    Torch-Pruning's infer_out_channels_recursively): the second half has three consumers."""
    net, x = network(YoloLike, split="sizes")
    with pytest.warns(UnitRemovalWarning, match=r"layer 'c2f.cv1.conv' unpruned: .*split_with_sizes expects"):
        kept = DropNetPruner(net, x[:2]).check_removal(x)
    assert sorted(group.name for group in kept) == [
        "c2f.cv2.conv", "c2f.m.0.cv1.conv", "c2f.m.1.cv1.conv", "stem.conv",
    ]  # fmt: skip


def test_the_parts_of_a_cross_stage_split_are_mapped_into_its_concat():
    """conv2 (the residual stream of the second part) and conv_transition_b, whose output
    is the concat's second part, were left out: mapped past their widths."""
    net, x = network(CrossStage)
    pruner = DropNetPruner(net, x[:2])
    assert {"conv2.conv", "conv_transition_b.conv"} <= set(pruner.units_per_layer)
    assert len(pruner.check_removal(x)) == len(pruner.units)
    cv = net.conv_transition.conv.weight.detach().clone()
    assert_removal_matches_masking(net, x, {"conv2.conv": [0, 9], "conv_transition_b.conv": [3, 5]})
    # conv2's units are the stream's, conv_exp's channels 16 + 0 and 16 + 9; the stream
    # reaches conv_transition through conv_transition_b, whose units 3 and 5 are its
    # inputs 16 + 3 and 16 + 5. The first part (xs) keeps its 16.
    torch.testing.assert_close(net.conv_transition.conv.weight, cv[:, np.setdiff1d(np.arange(32), [19, 21])])
    assert net.conv_exp.conv.out_channels == 30


class FlattenedC2f(nn.Module):
    """A C2f-like block whose concatenation is flattened into a Linear: Torch-Pruning
    leaves that concat unmapped, and DropNet maps it (see ``_map_channel_concats``)."""

    def __init__(self):
        super().__init__()
        self.stem, self.cv1, self.m = ConvAct(1, 8, 3), ConvAct(8, 8), Bottleneck(4)
        self.head = nn.Linear(12 * 16, 10)

    def forward(self, x):
        y = list(self.cv1(nn.functional.avg_pool2d(self.stem(x), 2)).chunk(2, 1))
        y.append(self.m(y[-1]))
        return self.head(torch.cat(y, 1).flatten(1))


def test_a_concat_of_halves_flattened_into_a_linear_is_mapped_by_its_parts():
    """Sized input by input, the concat asked the chunk for the size of its third
    consumer: IndexError from Torch-Pruning's infer_out_channels_recursively."""
    net, x = network(FlattenedC2f)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {"stem.conv": 8, "cv1.conv": 8, "m.cv1.conv": 4}
    assert len(pruner.check_removal(x)) == 3
    head = net.head.weight.detach().clone()
    assert_removal_matches_masking(net, x, {"cv1.conv": [1, 6]})
    # Channel 1 of the first half is columns 16-31; channel 6 (2 of the second half) is
    # 4 * 16 + 2 * 16 and, through the bottleneck's residual stream, 8 * 16 + 2 * 16.
    lost = np.concatenate([np.arange(16, 32), np.arange(96, 112), np.arange(160, 176)])
    torch.testing.assert_close(net.head.weight, head[:, np.setdiff1d(np.arange(192), lost)])
