"""Layers under ``torch.nn.utils.weight_norm``, the hook-based form (a TCN's convolutions).

Such a layer holds ``weight_g`` and ``weight_v`` as parameters and computes
``weight = weight_g * weight_v / ||weight_v||`` before every forward call, a
plain tensor attribute that Torch-Pruning cannot shrink on its own (the
next call computes it again, at the old size) and that ``copy.deepcopy``
refuses while it is part of an autograd graph. Here:

- :func:`copyable` computes every such weight again without autograd, so
  that the network can be deep-copied (:func:`deep_copy`: the rewind copy,
  checkpoints, the removal check);
- :func:`as_plain_weights` and :func:`refold` wrap Torch-Pruning's surgery:
  the weight is a plain parameter while Torch-Pruning cuts it, then
  ``weight_v`` loses the same rows and columns and ``weight_g`` is rescaled
  so that the layer computes exactly the cut weight;
- :func:`redraw` gives a layer whose ``reset_parameters`` drew a new weight
  the ``weight_g`` and ``weight_v`` of that weight.

Only a norm over dimension 0 (``weight_norm``'s default: one ``g`` per
output channel) is supported; :func:`unsupported_reason` names the others.
"""

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.weight_norm import WeightNorm

__all__ = ["as_plain_weights", "copyable", "deep_copy", "redraw", "refold", "unsupported_reason", "weight_norm_hook"]


def weight_norm_hook(module):
    """The ``WeightNorm`` hook that computes ``module.weight``, or None."""
    return next(
        (hook for hook in module._forward_pre_hooks.values() if isinstance(hook, WeightNorm) and hook.name == "weight"),
        None,
    )  # fmt: skip


def unsupported_reason(module):
    """Why DropNet cannot prune ``module``'s weight norm, or None when it can."""
    hook = weight_norm_hook(module)
    if hook is None or hook.dim == 0:
        return None
    dim = "None" if hook.dim == -1 else hook.dim
    return (
        f"it has torch.nn.utils.weight_norm with dim={dim}, and DropNet prunes weight-normed "
        "layers only with dim=0 (the default); torch.nn.utils.remove_weight_norm(layer) removes it"
    )


def copyable(module):
    """Compute the weights of ``module``'s weight-normed layers again, outside autograd.

    ``copy.deepcopy`` refuses a weight computed with autograd (after a
    training step, or right after ``weight_norm``); the next forward call
    computes it again anyway. Returns ``module``.
    """
    for layer in module.modules():
        hook = weight_norm_hook(layer)
        if hook is not None:
            with torch.no_grad():
                setattr(layer, "weight", hook.compute_weight(layer))
    return module


def deep_copy(module):
    """``copy.deepcopy(module)``, also of a network with weight-normed layers."""
    return copy.deepcopy(copyable(module))


@dataclass
class _Folded:
    """A weight-normed layer during the surgery: its hook and parameters before it."""

    layer: nn.Module
    hook: WeightNorm
    g: torch.Tensor
    v: torch.Tensor


def as_plain_weights(layers):
    """Make each weight-normed layer's weight a plain parameter for Torch-Pruning to cut.

    Returns what :func:`refold` needs to put the weight norm back.
    """
    folded = []
    for layer in dict.fromkeys(layers):
        hook = weight_norm_hook(layer)
        if hook is None:
            continue
        g, v = layer.weight_g, layer.weight_v
        with torch.no_grad():
            weight = hook.compute_weight(layer)
        layer.__dict__.pop("weight", None)
        layer.weight = nn.Parameter(weight, requires_grad=v.requires_grad)
        folded.append(_Folded(layer, hook, g, v))
    return folded


def _kept(size, removed):
    return torch.as_tensor(np.setdiff1d(np.arange(size), np.asarray(removed, dtype=int)), dtype=torch.long)


def refold(folded, removed_outputs, cut_inputs):
    """Put each layer's weight norm back around the weight Torch-Pruning cut.

    Parameters
    ----------
    folded : list of _Folded
        From :func:`as_plain_weights`.
    removed_outputs : dict of nn.Module -> array of int
        The output channels each layer lost.
    cut_inputs : callable
        ``cut_inputs(layer, tensor)``: ``tensor`` (shaped as the layer's
        weight before the surgery, less the output channels removed)
        without the input channels the layer lost, as its weight was cut.
    """
    for item in folded:
        layer = item.layer
        with torch.no_grad():
            rows = _kept(item.v.shape[0], removed_outputs.get(layer, ()))
            v_rows = item.v.detach()[rows.to(item.v.device)]
            v = cut_inputs(layer, v_rows)
            # The rows keep their direction and their weight its size: g scales by what
            # the inputs cut took of each row's norm.
            scale = torch.norm_except_dim(v, 2, 0) / torch.norm_except_dim(v_rows, 2, 0)
            g = item.g.detach()[rows.to(item.g.device)] * scale
        del layer._parameters["weight"]
        layer.weight_g = nn.Parameter(g, requires_grad=item.g.requires_grad)
        layer.weight_v = nn.Parameter(v, requires_grad=item.v.requires_grad)
        with torch.no_grad():  # computed again by the next forward call; copyable till then
            setattr(layer, "weight", item.hook.compute_weight(layer))


def redraw(layer):
    """After ``layer.reset_parameters()`` drew a new weight, make it the weight norm's."""
    hook = weight_norm_hook(layer)
    if hook is None:
        return
    with torch.no_grad():
        weight = layer.weight.detach().clone()
        layer.weight_v.copy_(weight)
        layer.weight_g.copy_(torch.norm_except_dim(weight, 2, hook.dim))
        setattr(layer, "weight", hook.compute_weight(layer))
