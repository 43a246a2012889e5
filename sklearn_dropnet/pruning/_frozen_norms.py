"""Batch norms frozen into buffers: followed like a ``BatchNorm``, and cut with the channels.

torchvision's detection backbones, and timm's on request, replace each
``BatchNorm2d`` by a ``FrozenBatchNorm2d``: the same per-channel affine
map, with its ``weight``, ``bias``, ``running_mean`` and ``running_var``
as buffers, no parameters, and no subclass of torch's batch norms. DropNet
did not follow a unit through one, and a ResNet built with them
(``resnet18(norm_layer=FrozenBatchNorm2d)``) had "No prunable layer found";
nor does Torch-Pruning 1.6 cut its buffers. Any module shaped so is taken
for one (:func:`is_frozen_batch_norm`), and :func:`frozen_norm_pruners`
gives Torch-Pruning a pruner for each such class.
"""

import torch

try:  # Torch-Pruning's base class of a layer's pruner (1.6.x layout)
    from torch_pruning.pruner.function import BasePruningFunc
except ImportError:  # pragma: no cover - another layout
    from torch_pruning.pruner import BasePruningFunc

__all__ = ["frozen_norm_pruners", "is_frozen_batch_norm"]

_BUFFERS = ("weight", "bias", "running_mean", "running_var")


def is_frozen_batch_norm(module):
    """Whether ``module`` is a batch norm frozen into buffers: no parameters of its
    own, and ``weight``, ``bias``, ``running_mean`` and ``running_var`` buffers of
    one size each (torchvision's and timm's ``FrozenBatchNorm2d``).

    >>> from torchvision.ops.misc import FrozenBatchNorm2d
    >>> is_frozen_batch_norm(FrozenBatchNorm2d(4)), is_frozen_batch_norm(torch.nn.BatchNorm2d(4))
    (True, False)
    """
    if next(module.parameters(recurse=False), None) is not None:
        return False
    buffers = dict(module.named_buffers(recurse=False))
    shapes = {tuple(buffers[name].shape) if name in buffers else None for name in _BUFFERS}
    return len(shapes) == 1 and None not in shapes and len(next(iter(shapes))) == 1


class _FrozenBatchNormPruner(BasePruningFunc):
    """Cuts a frozen batch norm's buffers with the channels it loses."""

    def prune_out_channels(self, layer, idxs):
        removed = set(int(i) for i in idxs)
        keep = [i for i in range(layer.running_mean.shape[0]) if i not in removed]
        for name in _BUFFERS:
            buffer = getattr(layer, name)
            setattr(layer, name, buffer[torch.as_tensor(keep, dtype=torch.long, device=buffer.device)])
        if isinstance(getattr(layer, "num_features", None), int):
            layer.num_features = len(keep)
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer):
        return layer.running_mean.shape[0]

    get_in_channels = get_out_channels


_PRUNER = _FrozenBatchNormPruner()


def frozen_norm_pruners(module):
    """Torch-Pruning's ``customized_pruners`` for the frozen batch norms of ``module``, by class."""
    return {type(part): _PRUNER for part in module.modules() if is_frozen_batch_norm(part)}
