"""Weight-normed layers: ``torch.nn.utils.parametrizations.weight_norm`` and the
hook-based ``torch.nn.utils.weight_norm`` (a TCN's convolutions).

Such a layer computes ``weight = g * v / ||v||`` from two parameters, ``g``
(one per output channel) and ``v``: the hook-based form holds them as
``weight_g`` and ``weight_v`` and computes ``weight`` before every forward
call, a plain tensor attribute that Torch-Pruning cannot shrink on its own
(the next call computes it again, at the old size) and that
``copy.deepcopy`` refuses while it is part of an autograd graph; the
parametrized form holds them as ``parametrizations.weight.original0`` and
``original1`` and computes ``weight`` whenever it is read, a property that
Torch-Pruning cannot assign. Here:

- :func:`as_plain_weights` and :func:`refold` wrap Torch-Pruning's surgery:
  the weight is a plain parameter while Torch-Pruning cuts it, then ``v``
  loses the same rows and columns and ``g`` is rescaled so that the layer
  computes exactly the cut weight, in the form it had;
- :func:`redraw_weight_normed` draws new weights for such layers with their
  ``reset_parameters``, and gives them the ``g`` and ``v`` of those;
- :func:`plain_weights` stores every computed weight (weight norms and any
  parametrization) of a copy for export as a plain parameter.

Only a norm over dimension 0 (``weight_norm``'s default: one ``g`` per
output channel) is supported; :func:`unsupported_reason` names the others.
A layer whose only parametrization is such a weight norm is pruned; one
with any other parametrization (``spectral_norm``, ``orthogonal``) is not
(:func:`has_unsupported_parametrizations`).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _WeightNorm
from torch.nn.utils.weight_norm import WeightNorm

from .._pickling import unparametrized_class

__all__ = [
    "as_plain_weights", "has_unsupported_parametrizations", "not_resized", "parametrized_weight_norm",
    "plain_weights", "redraw_weight_normed", "refold", "unsupported_reason", "weight_norm_hook",
]  # fmt: skip


def weight_norm_hook(module):
    """The ``WeightNorm`` hook that computes ``module.weight``, or None."""
    return next(
        (hook for hook in module._forward_pre_hooks.values() if isinstance(hook, WeightNorm) and hook.name == "weight"),
        None,
    )  # fmt: skip


def parametrized_weight_norm(module):
    """The ``parametrizations.weight_norm`` of ``module``'s weight, if that is its only
    parametrization, else None."""
    if not parametrize.is_parametrized(module) or set(module.parametrizations) != {"weight"}:
        return None
    chain = list(module.parametrizations.weight)
    return chain[0] if len(chain) == 1 and isinstance(chain[0], _WeightNorm) else None


def has_unsupported_parametrizations(module):
    """Whether ``module`` has parametrizations other than a weight norm of its weight
    (``spectral_norm``, ``orthogonal``): Torch-Pruning cannot resize it."""
    return parametrize.is_parametrized(module) and parametrized_weight_norm(module) is None


def _dim(norm):
    return "None" if norm.dim == -1 else norm.dim


def not_resized(module):
    """Why the weight of ``module`` (a layer fed by one being pruned) cannot lose its
    inputs, as a clause ("whose ..."), or None when it can."""
    if has_unsupported_parametrizations(module):
        return "whose parametrizations Torch-Pruning does not resize"
    norm = weight_norm_hook(module) or parametrized_weight_norm(module)
    if norm is not None and norm.dim != 0:
        return f"whose weight norm over dim={_dim(norm)} DropNet does not resize"
    return None


# The two forms of weight norm: how to find a layer's, its name, how to remove it.
_FORMS = (
    (weight_norm_hook, "torch.nn.utils.weight_norm", "torch.nn.utils.remove_weight_norm(layer)"),
    (
        parametrized_weight_norm, "torch.nn.utils.parametrizations.weight_norm",
        'torch.nn.utils.parametrize.remove_parametrizations(layer, "weight")',
    ),
)  # fmt: skip


def unsupported_reason(module):
    """Why DropNet cannot prune ``module``'s weight norm, or None when it can (or it has none)."""
    for find, name, fix in _FORMS:
        norm = find(module)
        if norm is not None and norm.dim != 0:
            return (
                f"it has {name} with dim={_dim(norm)}, and DropNet prunes weight-normed layers only "
                f"with dim=0 (the default); {fix} removes it"
            )
    return None


@dataclass
class _Folded:
    """A weight-normed layer during the surgery: its weight norm and parameters before it."""

    layer: nn.Module
    norm: object  # the WeightNorm hook, or the parametrization module (_WeightNorm)
    g: torch.Tensor
    v: torch.Tensor
    parametrized: tuple = ()  # the parametrized form's class and its parametrizations (a ModuleDict)


def _unfold(layer):
    """Make ``layer``'s weight, if weight-normed, a plain parameter; what :func:`_fold` needs."""
    hook = weight_norm_hook(layer)
    if hook is not None:
        g, v = layer.weight_g, layer.weight_v
        with torch.no_grad():
            weight = hook.compute_weight(layer)
        layer.__dict__.pop("weight", None)
        layer.weight = nn.Parameter(weight, requires_grad=v.requires_grad)
        return _Folded(layer, hook, g, v)
    norm = parametrized_weight_norm(layer)
    if norm is None:
        return None
    originals = layer.parametrizations.weight
    g, v = originals.original0, originals.original1
    return _Folded(layer, norm, g, v, _strip_parametrizations(layer, v.requires_grad))


def _strip_parametrizations(layer, requires_grad):
    """Make parametrized ``layer`` a plain one of its own class, each parametrized tensor a
    parameter holding its value; returns its class and parametrizations, to put back.

    ``parametrize.remove_parametrizations`` would delete the tensors' properties
    from the class, which the layer shares with its deep copies: the class is
    only swapped.
    """
    with torch.no_grad():
        values = {name: getattr(layer, name).detach() for name in layer.parametrizations}
    parametrized = (type(layer), layer._modules.pop("parametrizations"))
    layer.__class__ = unparametrized_class(layer)
    for name, value in values.items():
        layer.register_parameter(name, nn.Parameter(value, requires_grad=requires_grad))
    return parametrized


def _fold(item, g, v):
    """Give ``item.layer`` its weight norm back, with ``g`` and ``v`` (its weight's shape)."""
    layer = item.layer
    g = nn.Parameter(g, requires_grad=item.g.requires_grad)
    v = nn.Parameter(v, requires_grad=item.v.requires_grad)
    del layer._parameters["weight"]
    if isinstance(item.norm, WeightNorm):
        layer.weight_g, layer.weight_v = g, v
        with torch.no_grad():  # computed again by the next forward call; copyable till then
            setattr(layer, "weight", item.norm.compute_weight(layer))
    else:
        layer.__class__, layer._modules["parametrizations"] = item.parametrized
        originals = layer.parametrizations.weight
        originals.original0, originals.original1 = g, v


def as_plain_weights(layers):
    """Make each weight-normed layer's weight a plain parameter for Torch-Pruning to cut.

    ``layers`` may hold parameters too: Torch-Pruning cuts a parameter that a
    module uses directly (a layer scale's ``gamma``) with the channels it
    scales. Returns what :func:`refold` needs to put the weight norm back.
    """
    modules = (layer for layer in dict.fromkeys(layers) if isinstance(layer, nn.Module))
    return [item for item in map(_unfold, modules) if item is not None]


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
        with torch.no_grad():
            rows = _kept(item.v.shape[0], removed_outputs.get(item.layer, ()))
            v_rows = item.v.detach()[rows.to(item.v.device)]
            v = cut_inputs(item.layer, v_rows)
            # The rows keep their direction and their weight its size: g scales by what
            # the inputs cut took of each row's norm.
            scale = torch.norm_except_dim(v, 2, 0) / torch.norm_except_dim(v_rows, 2, 0)
            g = item.g.detach()[rows.to(item.g.device)] * scale
        _fold(item, g, v)


def plain_weights(module):
    """Store every computed weight of ``module`` (a copy, for inference) as a plain parameter.

    A hook-based weight norm is removed, and each parametrized tensor
    (``weight_norm``, ``spectral_norm`` in eval mode, ``orthogonal``, a
    user's own) becomes its value: an exported file holds the weights,
    computed once, not the operations that compute them at every call.
    Returns ``module``.
    """
    for layer in list(module.modules()):
        hook = weight_norm_hook(layer)
        if hook is not None:  # as torch.nn.utils.remove_weight_norm does
            hook.remove(layer)
            del layer._forward_pre_hooks[next(k for k, h in layer._forward_pre_hooks.items() if h is hook)]
        if parametrize.is_parametrized(layer):
            _strip_parametrizations(layer, requires_grad=False)
    return module


def redraw_weight_normed(module, reset):
    """Draw new weights for ``module``: ``reset()`` draws them (each layer's
    ``reset_parameters``) while the weight-normed layers' weights are plain
    parameters, which then become their ``v``, with ``g`` their norms."""
    folded = as_plain_weights(module.modules())
    reset()
    for item in folded:
        with torch.no_grad():
            weight = item.layer.weight.detach().clone()
            g = torch.norm_except_dim(weight, 2, item.norm.dim)
        _fold(item, g, weight)
