"""Whether a function of the user's (a unit score, a selection) can be called as
the engine calls it, so that a wrong signature is named before the call, not
by Python's TypeError from inside the engine."""

import inspect


def accepts(function, *args, **kwargs):
    """Whether ``function(*args, **kwargs)`` binds to ``function``'s signature
    (True where Python cannot tell: a builtin without a signature).

    Examples
    --------
    >>> from sklearn_dropnet.pruning._signatures import accepts
    >>> accepts(lambda layer, activations: None, 1, 2), accepts(lambda layer: None, 1, 2)
    (True, False)
    >>> accepts(lambda scores, n, rng, **context: None, 1, 2, 3, pruner=4)
    True
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # no signature to read
        return True
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return False
    return True
