"""Running a network in eval mode without changing the mode it is left in."""

import contextlib

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(module):
    """``module`` in eval mode inside the block, then back in the mode it was in.

    Scoring, tracing and measuring a network must not leave it in eval mode
    (skorch trains it next) nor in training mode (BatchNorm would update its
    running statistics, Dropout would drop).

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_dropnet._eval_mode import eval_mode
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
