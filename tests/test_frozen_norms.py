"""Batch norms frozen into buffers (torchvision's FrozenBatchNorm2d, as detection
backbones build ResNets; timm's FrozenBatchNorm2d and FrozenBatchNormAct2d)."""

import warnings

import numpy as np
import pytest
import torch
import torchvision
from removal_checks import assert_removal_matches_masking
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.pruning import DropNetPruner


def _randomised(net):
    """``net`` with its frozen norms' statistics and affine maps drawn at random
    (as loaded from a checkpoint), so that a norm left uncut shows."""
    for part in net.modules():
        if isinstance(part, (FrozenBatchNorm2d, _FrozenBatchNormAct)):
            part.running_mean.normal_()
            part.running_var.uniform_(0.5, 2.0)
            part.weight.normal_()
            part.bias.normal_()
    return net.eval()


class _FrozenBatchNormAct(nn.Module):
    """timm's FrozenBatchNormAct2d: the norm in buffers, then an activation module."""

    def __init__(self, n):
        super().__init__()
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((n,), value))
        self.act = nn.ReLU()

    def forward(self, x):
        x = nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, 1e-5)
        return self.act(x)


def test_a_resnet_with_frozen_batch_norms_prunes_as_with_batch_norms():
    """resnet18(norm_layer=FrozenBatchNorm2d) had "No prunable layer found": DropNet did
    not follow a unit through the frozen norm, and Torch-Pruning does not cut its
    buffers. It now has the units and groups of the same ResNet with BatchNorm2d,
    every group passes the removal check, and the norms lose the units' channels."""
    torch.manual_seed(0)
    frozen = _randomised(torchvision.models.resnet18(num_classes=3, norm_layer=FrozenBatchNorm2d))
    plain = torchvision.models.resnet18(num_classes=3).eval()
    x = torch.randn(4, 3, 32, 32)
    pruner = DropNetPruner(frozen, x[:2])
    assert pruner.units_per_layer == DropNetPruner(plain, x[:2]).units_per_layer
    assert len(pruner.check_removal(x)) == len(pruner.units) == 12
    assert_removal_matches_masking(frozen, x, {"conv1": [0, 5], "layer1.0.conv1": [3], "layer3.1.conv1": [7, 8]})
    assert frozen.bn1.running_mean.shape == frozen.bn1.weight.shape == (62,)
    assert frozen.layer1[0].bn1.running_var.shape == (63,) and frozen.layer3[1].bn1.bias.shape == (254,)


def test_a_frozen_norm_that_applies_its_activation_is_read_as_the_activation():
    """timm's FrozenBatchNormAct2d (what freeze_batch_norm_2d makes of BatchNormAct2d,
    in EfficientNet and MobileNetV3) calls F.batch_norm and then its activation: it is
    recorded as one call, and its output is the units' post-activation."""
    torch.manual_seed(0)
    net = _randomised(nn.Sequential(
        nn.Conv2d(3, 8, 3), _FrozenBatchNormAct(8), nn.Conv2d(8, 6, 3), _FrozenBatchNormAct(6),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2),
    ))  # fmt: skip
    x = torch.randn(8, 3, 8, 8)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.structure.probes["0"].activation.name == "1"
    with torch.no_grad():
        expected = net[1](net[0](x)).abs().mean((0, 2, 3)).double().numpy()
    np.testing.assert_allclose(pruner.score(lambda: [x])["0"], expected, rtol=1e-5)
    assert [group.name for group in pruner.check_removal(x)] == ["0", "2"]
    assert_removal_matches_masking(net, x, {"0": [2, 3], "2": [5]})
    assert net[1].running_mean.shape == (6,) and net[3].weight.shape == (5,)


def test_a_frozen_batch_norm_resnet_fits_and_prunes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3, 16, 16)).astype(np.float32)
    y = (X[:, 0].mean((1, 2)) > 0).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = DropNetClassifier(
            module=torchvision.models.resnet18, module__norm_layer=FrozenBatchNorm2d,
            prune_ratio=0.5, max_epochs=1, batch_size=32, random_state=0,
        ).fit(X, y)  # fmt: skip
    assert clf.pruning_history_[-1]["units"] == clf.pruning_history_[0]["units"] // 2
    assert clf.module_.bn1.weight.shape[0] == clf.module_.conv1.out_channels < 64
    assert clf.predict(X).shape == (64,)


@pytest.mark.parametrize(
    "module, frozen",
    [(FrozenBatchNorm2d(4), True), (_FrozenBatchNormAct(4), True), (nn.BatchNorm2d(4), False), (nn.LayerNorm(4), False)],
    ids=["torchvision", "with activation", "BatchNorm2d", "LayerNorm"],
)
def test_what_is_taken_for_a_frozen_batch_norm(module, frozen):
    from sklearn_dropnet.pruning._frozen_norms import is_frozen_batch_norm

    assert is_frozen_batch_norm(module) is frozen
