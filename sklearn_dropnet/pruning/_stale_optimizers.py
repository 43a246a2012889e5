"""A warning for an optimizer that still holds parameters ``remove()`` replaced.

Removing units gives the cut layers new parameter tensors (and ``"rewind"``
or ``"random"`` a new network). An optimizer built before
:meth:`~sklearn_dropnet.pruning.DropNetPruner.remove` still holds the old
tensors: it steps them, and the network's new parameters never train,
without an error. ``remove`` marks the tensors it replaced, and a step
pre-hook that torch calls for every optimizer (registered at the first
removal) warns at the first step of an optimizer holding any of them. An
optimizer is checked once after each removal, so a step costs one lookup.
"""

import warnings
import weakref

from torch.optim.optimizer import register_optimizer_step_pre_hook

__all__ = ["mark_replaced"]

_REPLACED = "_dropnet_replaced"  # the attribute that marks a replaced tensor
_removals = 0  # removals that replaced tensors, in this process
_checked = weakref.WeakKeyDictionary()  # optimizer -> _removals when it was last checked
_hook = None


def mark_replaced(before, network):
    """Mark the tensors of ``before`` (parameters) that ``network`` no longer holds.

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._stale_optimizers import mark_replaced
    >>> net = nn.Linear(2, 2)
    >>> old = list(net.parameters())
    >>> net.weight = nn.Parameter(net.weight[:1].detach().clone())
    >>> mark_replaced(old, net)
    1
    """
    global _removals, _hook
    kept = {id(parameter) for parameter in network.parameters()}
    replaced = [parameter for parameter in before if id(parameter) not in kept]
    for parameter in replaced:
        setattr(parameter, _REPLACED, True)
    if replaced:
        _removals += 1
        if _hook is None:
            _hook = register_optimizer_step_pre_hook(_warn_if_stale)
    return len(replaced)


def _warn_if_stale(optimizer, args, kwargs):
    if _checked.get(optimizer) == _removals:
        return None
    _checked[optimizer] = _removals
    stale = sum(getattr(p, _REPLACED, False) for group in optimizer.param_groups for p in group["params"])
    if stale:
        warnings.warn(
            f"This {type(optimizer).__name__} holds {stale} parameter tensors that DropNetPruner.remove() "
            "replaced: they are no longer the network's, and stepping them trains nothing of the layers "
            "it cut. Build the optimizer anew from model.parameters() after each remove().",
            UserWarning,
            stacklevel=3,
        )
    return None
