"""Layers coupled to a pruned layer that reach no activation, and gates at 1 x 1 positions.

Removing a unit removes every channel coupled to it, also those of layers
that are not scored because they reach no activation: a linear projection
added into a residual stream (MobileNetV3's and EfficientNet's blocks), a
depthwise convolution whose output goes into a squeeze-and-excitation gate
(MobileNetV3 as d-li14 writes it). Switching the unit off must zero those
channels too, after their ``BatchNorm``, or a trained network (whose
``BatchNorm`` shifts are not zero) fails the removal check and is left
unpruned. And a squeeze-and-excitation gate where the positions are 1 x 1
has the activation's shape, but is no gated linear unit: the activation is
read before it.
"""

import warnings

import numpy as np
import pytest
import torch
from removal_checks import assert_removal_matches_masking, randomise_batchnorm
from torch import nn

from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._probes import inspect_network


def conv_bn(cin, cout, kernel=1, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))


class SqueezeExcitation(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.pool, self.fc1, self.fc2 = nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, 4, 1), nn.Conv2d(4, channels, 1)

    def forward(self, x):
        return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(self.pool(x)))))


class LinearBottleneck(nn.Module):
    """stem -> BN -> ReLU; x + project(SE(dw(expand(x)))); the dw conv's BN goes
    into the gate without an activation (``se_first``) or after a hardswish."""

    def __init__(self, se_first, stride=1):
        super().__init__()
        self.se_first, self.stride = se_first, stride
        self.stem = conv_bn(1, 8, 3)
        self.expand, self.dw = conv_bn(8, 16), conv_bn(16, 16, 3, stride, groups=16)
        self.se, self.project = SqueezeExcitation(16), conv_bn(16, 8)
        self.head, self.out = conv_bn(8, 12), nn.Linear(12, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        h = torch.relu(self.expand(x))
        h = nn.functional.hardswish(self.se(self.dw(h))) if self.se_first else self.se(nn.functional.hardswish(self.dw(h)))
        if self.stride == 1:  # a linear bottleneck: no activation after the add
            x = x + self.project(h)
        else:
            x = self.project(h)
        return self.out(torch.relu(self.head(x)).mean(dim=(2, 3)))


def pruner_without_warnings(net, x):
    """The pruner, after a removal check that leaves no layer out (a layer that reaches
    no activation is named, and is not pruned by itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        warnings.filterwarnings("ignore", ".*reaches no activation", UnitRemovalWarning)
        pruner = DropNetPruner(net, x[:2])
        pruner.check_removal(x)
    return pruner


@pytest.mark.parametrize("se_first", [False, True], ids=["activation-then-gate", "gate-then-activation"])
def test_a_projection_into_a_residual_stream_is_switched_off_with_the_stream(se_first):
    torch.manual_seed(0)
    net, x = randomise_batchnorm(LinearBottleneck(se_first)).eval(), torch.randn(16, 1, 6, 6)
    structure = inspect_network(net, x[:2])
    assert "project.0" not in structure.probes  # it reaches no activation
    assert structure.switch_offs["project.0"].chain_end.name == "project.1"  # zeroed after its BatchNorm
    pruner = pruner_without_warnings(net, x)  # was: "leaves layer 'stem.0' unpruned"
    groups = {group.name: group for group in pruner.units}
    assert [m[0] for m in groups["stem.0"].unscored] == ["project.0"]
    assert [m[0] for m in groups["expand.0"].unscored] == (["dw.0"] if se_first else [])
    assert_removal_matches_masking(net, x, {"stem.0": [1, 4, 6], "expand.0": np.arange(0, 16, 3)})
    assert (net.stem[0].out_channels, net.project[0].out_channels, net.dw[0].out_channels) == (5, 5, 10)


def test_a_gate_at_one_by_one_positions_is_not_taken_for_a_gated_linear_unit():
    # The dw conv's stride leaves 1 x 1 positions: the gate has the activation's shape.
    torch.manual_seed(0)
    net, x = randomise_batchnorm(LinearBottleneck(se_first=False, stride=2)).eval(), torch.randn(16, 1, 2, 2)
    structure = inspect_network(net, x[:2])
    assert structure.probes["dw.0"].activation.name == "<root>: hardswish"  # was the gate's product
    pruner_without_warnings(net, x)
    assert_removal_matches_masking(net, x, {"expand.0": np.arange(0, 16, 3)})


class ConcatenatedResidual(nn.Module):
    """relu(cat([b(h), c(h)]) + shortcut(h)): b's and c's channels are halves of the stream's.

    With ``side=True`` the concatenation also goes, before any activation, into a
    convolution of its own that gives class scores: b and c then reach no
    activation every way, and are not scored, but their channels go with the
    stream's units.
    """

    def __init__(self, side=False):
        super().__init__()
        self.stem, self.shortcut = conv_bn(1, 8, 3), conv_bn(8, 8)
        self.b, self.c, self.out = conv_bn(8, 4, 3), conv_bn(8, 4, 3), nn.Linear(8, 3)
        self.side = nn.Conv2d(8, 3, 1) if side else None

    def forward(self, x):
        h = torch.relu(self.stem(x))
        joined = torch.cat([self.b(h), self.c(h)], 1)
        y = self.out(torch.relu(joined + self.shortcut(h)).mean(dim=(2, 3)))
        return y if self.side is None else y + self.side(joined).mean(dim=(2, 3))


def test_the_inputs_of_a_concatenation_into_a_residual_stream_are_units_of_their_own():
    # Each reaches the activation through the concatenation, at its half of the stream's
    # channels, and is a group of its own coupled to that half of the shortcut's.
    torch.manual_seed(0)
    net, x = randomise_batchnorm(ConcatenatedResidual()).eval(), torch.randn(4, 1, 6, 6)
    structure = inspect_network(net, x[:2])
    assert [(r.offset, r.width) for r in structure.probes["b.0"].readings] == [(0, 4)]
    assert [(r.offset, r.width) for r in structure.probes["c.0"].readings] == [(4, 4)]
    pruner = pruner_without_warnings(net, x)
    groups = {group.name: group for group in pruner.units}
    assert sorted(groups) == ["b.0", "c.0", "stem.0"]
    assert [(name, channels.tolist()) for name, channels, _ in groups["c.0"].members] == [
        ("c.0", [0, 1, 2, 3]), ("shortcut.0", [4, 5, 6, 7])
    ]  # fmt: skip
    assert_removal_matches_masking(net, x, {"b.0": [1, 3], "c.0": [0, 2]})
    assert (net.b[0].out_channels, net.c[0].out_channels, net.shortcut[0].out_channels) == (2, 2, 4)


def test_units_on_one_side_of_a_concatenation_are_switched_off():
    # Unit 1 of the stream is b's channel 1, and none of c's: c has nothing to zero
    # (an empty index once crashed index_fill_).
    from sklearn_dropnet.pruning._surgery import find_unit_groups
    from sklearn_dropnet.pruning._unit_mask import UnitMask

    torch.manual_seed(0)
    net, x = randomise_batchnorm(ConcatenatedResidual(side=True)).eval(), torch.randn(4, 1, 6, 6)
    structure = inspect_network(net, x[:2])
    groups = find_unit_groups(net, x[:2], structure)
    stream = next(group for group in groups if group.name == "shortcut.0")
    assert sorted(member[0] for member in stream.unscored) == ["b.0", "c.0"]
    seen = []
    net.out.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    with torch.no_grad(), UnitMask(net, structure.probes, groups, structure.switch_offs) as mask:
        net(x)
        mask.set({"shortcut.0": [1]})
        net(x)
    dense, switched_off = seen
    assert dense[:, 1].abs().max() > 0 and switched_off[:, 1].abs().max() == 0
    others = [0, *range(2, 8)]
    torch.testing.assert_close(switched_off[:, others], dense[:, others])


def test_every_input_of_a_concatenation_keeps_a_channel():
    torch.manual_seed(0)
    net, x = randomise_batchnorm(ConcatenatedResidual(side=True)).eval(), torch.randn(4, 1, 6, 6)
    pruner = DropNetPruner(net, x[:2])
    stream = next(group for group in pruner.units if group.name == "shortcut.0")
    assert {name: root.tolist() for name, root in stream.branches} == {"b.0": [0, 1, 2, 3], "c.0": [4, 5, 6, 7]}
    assert stream.fewest == 2
    # c's units score lowest: the 5 lowest would empty c; c keeps its best (6), and the
    # next-lowest of b's (1) goes instead, so 5 still go.
    scores = {name: values + 100 for name, values in pruner.score(lambda: [x]).items()}
    scores["shortcut.0"] = np.array([5.0, 6.0, 7.0, 8.0, 1.0, 2.0, 4.0, 3.0])
    drop = pruner.choose(scores, 5, scope="global_raw")  # the 5 lowest: 4, 5, 7, 6 (all of c's) and 0
    assert drop["shortcut.0"].tolist() == [0, 1, 4, 5, 7]
    with pytest.raises(ValueError, match=r"leave layer 'c.0' without channels: it holds only units \[4, 5, 6, 7\]"):
        pruner.remove({"shortcut.0": [4, 5, 6, 7]})
    net = pruner.remove(drop)
    assert (net.b[0].out_channels, net.c[0].out_channels) == (2, 1)
    pruner.check_removal(x)


def test_the_estimator_prunes_a_concatenation_in_a_residual_stream_to_its_floor():
    from sklearn_dropnet import DropNetClassifier
    from sklearn_dropnet.datasets import load_digits_images

    X, y = load_digits_images()
    X, y = X[y < 3][:150], y[y < 3][:150]
    for seed in range(3):  # a round removed all of c's channels, and the fit crashed, for some seeds
        clf = DropNetClassifier(
            ConcatenatedResidual, module__side=True, prune_ratio=0.9, max_epochs=1, random_state=seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnitRemovalWarning)  # the concatenated layers reach no activation
            clf.fit(X, y)
        assert (clf.module_.b[0].out_channels, clf.module_.c[0].out_channels) == (1, 1)
