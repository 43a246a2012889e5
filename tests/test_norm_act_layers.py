"""Normalization layers that apply their activation, as timm writes them.

timm's networks (EfficientNet, MobileNetV3, RegNet, CSPNet, ...) normalise
and activate in one module, ``BatchNormAct2d``: a ``BatchNorm2d`` subclass
whose forward calls ``F.batch_norm`` and then its child modules ``drop`` and
``act`` (``nn.Identity`` for a projection, ``apply_act=False``). The classes
below are written as timm writes them (``timm/layers/norm_act.py``), so the
tests need no timm. A network built with them prunes as its twin built with
``nn.BatchNorm2d`` and activation modules does, bit for bit.
"""

import io
import warnings

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pruning_twins import ModuleResidual, assert_same_pruning, prune_once, twins
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.datasets import load_digits_images
from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning._probes import inspect_network


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm2d, then ``drop`` and ``act`` child modules (timm's, abridged)."""

    def __init__(self, num_features, apply_act=True, act_layer=nn.ReLU, inplace=True, drop_layer=None):
        super().__init__(num_features)
        self.drop = drop_layer() if drop_layer is not None else nn.Identity()
        self.act = act_layer(inplace=inplace) if apply_act else nn.Identity()

    def forward(self, x):
        x = F.batch_norm(
            x,
            self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )
        return self.act(self.drop(x))


class GroupNormAct(nn.GroupNorm):
    """GroupNorm, then ``drop`` and ``act`` child modules (timm's, abridged)."""

    def __init__(self, num_channels, num_groups=2, act_layer=nn.ReLU):
        super().__init__(num_groups, num_channels)
        self.drop, self.act = nn.Identity(), act_layer(inplace=True)

    def forward(self, x):
        return self.act(self.drop(F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)))


class NormActResidual(ModuleResidual):
    """:class:`ModuleResidual` with each BatchNorm (and the ReLU right after it) a BatchNormAct2d."""

    def __init__(self):
        super().__init__()
        del self.stem_act, self.a1
        self.stem_bn, self.b1 = BatchNormAct2d(8), BatchNormAct2d(8)
        self.b2, self.b3, self.proj_bn = (BatchNormAct2d(n, apply_act=False) for n in (8, 12, 12))

    def forward(self, x):
        x = self.stem_bn(self.stem(x))
        out = self.b2(self.c2(self.b1(self.c1(x))))
        out += x
        x = self.a2(out)
        out = self.b3(self.c3(x))
        out += self.proj_bn(self.proj(x))
        return self.out(self.a3(out).mean(dim=(2, 3)))


class ModuleInvertedResidual(nn.Module):
    """An inverted residual block with SiLU (MobileNetV2's, EfficientNet's without
    squeeze-and-excitation): expand 1x1 -> depthwise 3x3 -> project 1x1, plus the shortcut."""

    def __init__(self):
        super().__init__()
        self.conv_stem, self.bn_stem = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv_pw, self.bn1 = nn.Conv2d(8, 24, 1, bias=False), nn.BatchNorm2d(24)
        self.conv_dw, self.bn2 = nn.Conv2d(24, 24, 3, padding=1, groups=24, bias=False), nn.BatchNorm2d(24)
        self.conv_pwl, self.bn3 = nn.Conv2d(24, 8, 1, bias=False), nn.BatchNorm2d(8)
        self.act_stem, self.act1, self.act2 = nn.SiLU(), nn.SiLU(), nn.SiLU()
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.act_stem(self.bn_stem(self.conv_stem(x)))
        shortcut = x
        x = self.act2(self.bn2(self.conv_dw(self.act1(self.bn1(self.conv_pw(x))))))
        x = self.bn3(self.conv_pwl(x)) + shortcut
        return self.head(x.mean(dim=(2, 3)))


class NormActInvertedResidual(ModuleInvertedResidual):
    """:class:`ModuleInvertedResidual` written as timm writes it, with BatchNormAct2d."""

    def __init__(self):
        super().__init__()
        del self.act_stem, self.act1, self.act2
        self.bn_stem, self.bn1, self.bn2 = (BatchNormAct2d(n, act_layer=nn.SiLU) for n in (8, 24, 24))
        self.bn3 = BatchNormAct2d(8, apply_act=False)

    def forward(self, x):
        x = self.bn_stem(self.conv_stem(x))
        shortcut = x
        x = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        x = self.bn3(self.conv_pwl(x)) + shortcut
        return self.head(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def images():
    X, y = load_digits_images()
    return X[:400], y[:400]


def test_a_batchnorm_that_applies_its_activation_is_where_the_layer_is_read(images):
    x = torch.as_tensor(images[0][:2])
    structure = inspect_network(NormActResidual().eval(), x)
    # read at the module's own output: BatchNorm, then its ReLU
    assert structure.probes["stem"].activation.name == "stem_bn"
    assert structure.probes["c1"].activation.name == "b1"
    assert structure.probes["c2"].activation.name == "a2"  # through b2 (no activation) and the add
    assert structure.probes["c3"].activation.name == "a3"
    assert not structure.left_out


@pytest.mark.parametrize(
    "make, units",
    [
        ((ModuleResidual, NormActResidual), {"stem", "c1", "c3"}),
        # the stem with the projection added to it; the expansion with the depthwise convolution
        ((ModuleInvertedResidual, NormActInvertedResidual), {"conv_stem", "conv_pw"}),
    ],
    ids=["residual", "inverted-residual"],
)
def test_a_network_with_norm_act_layers_prunes_as_its_module_twin(images, make, units):
    x = torch.as_tensor(images[0][:100])
    module_net, norm_act_net = twins(*make)
    module_net.eval(), norm_act_net.eval()
    a, b = prune_once(module_net, x, 0.5), prune_once(norm_act_net, x, 0.5)
    assert_same_pruning(a, b)
    assert set(b[3].units_per_layer) == units
    if make[1] is NormActInvertedResidual:
        assert b[2].conv_dw.groups == b[2].conv_dw.out_channels < 24


def test_a_group_norm_that_applies_its_activation_is_named_as_mixing_channels():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm, self.out = nn.Conv2d(1, 8, 3), GroupNormAct(8), nn.Linear(8, 3)

        def forward(self, x):
            return self.out(self.norm(self.conv(x)).mean(dim=(2, 3)))

    structure = inspect_network(Net().eval(), torch.randn(2, 1, 8, 8))
    assert "GroupNormAct ('norm') first (GroupNormAct mixes the channels)" in structure.left_out["conv"]


def test_the_estimator_prunes_a_norm_act_network_and_it_survives_joblib(images):
    X, y = images
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        clf = DropNetClassifier(
            module=NormActInvertedResidual, prune_ratio=0.5, max_epochs=2, random_state=0
        ).fit(X, y)
    assert clf.unpruned_layers_ == {}
    assert clf.pruning_history_[-1]["fraction_left"] <= 0.5
    assert clf.pruning_history_[-1]["params"] < 0.6 * clf.pruning_history_[0]["params"]
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X[:20]), clf.predict_proba(X[:20]))


class NormWithLayer(nn.BatchNorm1d):
    """A BatchNorm1d subclass that holds a Linear of its own, after the normalization."""

    def __init__(self, num_features):
        super().__init__(num_features)
        self.fc, self.act = nn.Linear(num_features, num_features), nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(super().forward(x)))


def test_a_normalization_holding_a_layer_is_not_one_call():
    """Its Linear is traced, and pruned, as any other; the layer before it is not read
    at the module's output, which the Linear mixes."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden, self.norm, self.out = nn.Linear(6, 8), NormWithLayer(8), nn.Linear(8, 3)

        def forward(self, x):
            return self.out(self.norm(self.hidden(x)))

    structure = inspect_network(Net().eval(), torch.randn(2, 6))
    assert set(structure.probes) == {"norm.fc"} and structure.probes["norm.fc"].activation.name == "norm.act"
    assert "hidden" not in structure.probes
