"""Deep copies of networks that ``copy.deepcopy`` alone refuses.

``copy.deepcopy`` refuses a tensor that autograd computed and a module keeps
as a plain attribute: a hook-based weight-normed layer's weight
(``torch.nn.utils.weight_norm``, a TCN's), and whatever else a module caches
from a call made with autograd (timm's LeViT and EfficientFormer keep their
attention biases in eval mode). :func:`deep_copy` copies such a network (the
rewind copy, checkpoints, the removal check, the estimator's ``clone``).
"""

import copy

import torch

from ._weight_norm import weight_norm_hook

__all__ = ["compiled_network", "copyable", "deep_copy"]


def _detached(value):
    """``value`` with the tensors in it (in dicts, lists, tuples) that autograd computed
    detached; dicts and lists in place."""
    if isinstance(value, torch.Tensor):
        return value.detach() if value.grad_fn is not None else value
    if isinstance(value, (dict, list)):
        for key, item in list(value.items() if isinstance(value, dict) else enumerate(value)):
            detached = _detached(item)
            if detached is not item:
                value[key] = detached
        return value
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_detached(item) for item in value)
    return value


def copyable(module):
    """Make ``module`` one that ``copy.deepcopy`` takes; returns it.

    ``copy.deepcopy`` refuses a tensor computed with autograd: a weight-normed
    layer's weight (after a training step, or right after ``weight_norm``),
    computed again here outside autograd, and whatever else a module keeps
    from a call (timm's LeViT and EfficientFormer cache their attention biases
    in eval mode, after the trace ran them with autograd), detached. The next
    call computes them again anyway.
    """
    for layer in module.modules():
        hook = weight_norm_hook(layer)
        if hook is not None:
            with torch.no_grad():
                setattr(layer, "weight", hook.compute_weight(layer))
        for name, value in vars(layer).items():
            detached = value if name in ("_parameters", "_buffers", "_modules") else _detached(value)
            if detached is not value:
                layer.__dict__[name] = detached
    return module


def deep_copy(module):
    """``copy.deepcopy(module)``, also of a network with weight-normed layers."""
    return copy.deepcopy(copyable(module))


def compiled_network(module):
    """The network a ``torch.compile`` wrapper (``OptimizedModule``) holds, or None."""
    inner = getattr(module, "_orig_mod", None)
    return inner if type(module).__name__ == "OptimizedModule" and isinstance(inner, torch.nn.Module) else None
