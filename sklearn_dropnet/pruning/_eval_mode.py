"""Running a network in eval mode without changing the mode it is left in."""

import contextlib

import torch

__all__ = ["eval_mode", "evaluate"]


@contextlib.contextmanager
def eval_mode(module):
    """``module`` in eval mode inside the block, then back in the mode it was in.

    Scoring, tracing and measuring a network must not leave it in eval mode
    (skorch, or the user's loop, trains it next) nor in training mode
    (BatchNorm would update its running statistics, Dropout would drop).
    Each submodule gets its own mode back (a BatchNorm kept frozen in eval
    mode inside a network in training mode stays so).

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._eval_mode import eval_mode
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training, net[1].training
    (True, True)
    """
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for submodule, training in modes:
            submodule.training = training


def evaluate(module, inputs, hooks=()):
    """``module(inputs)`` in eval mode without gradients; then remove ``hooks``.

    ``hooks`` are the handles of forward hooks registered for this one pass;
    they are removed even when the pass fails.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._eval_mode import evaluate
    >>> net = nn.Linear(2, 1)
    >>> seen = []
    >>> handle = net.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    >>> evaluate(net, torch.zeros(3, 2), [handle]).requires_grad, seen
    (False, [torch.Size([3, 1])])
    >>> _ = net(torch.zeros(1, 2)); seen  # the hook is gone
    [torch.Size([3, 1])]
    """
    try:
        with eval_mode(module), torch.no_grad():
            return module(inputs)
    finally:
        for handle in hooks:
            handle.remove()


def float_dtype(module):
    """The dtype of ``module``'s first floating-point parameter (the inputs it
    computes in), or None."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), None)
