"""The exception and the warning that DropNet raises about a network's structure."""

__all__ = ["PruningError", "UnitRemovalWarning"]


class PruningError(ValueError):
    """A network offers nothing that DropNet can prune.

    Raised by :meth:`~sklearn_dropnet.DropNetClassifier.fit` when no hidden
    ``nn.Linear`` or ``nn.Conv1d/2d/3d`` layer reaches an activation (a
    module or a function), when every such layer must be left unpruned (see
    :class:`UnitRemovalWarning`), or when Torch-Pruning cannot trace the
    network at all (ShuffleNet's channel shuffle, which the message names).
    A subclass of ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from sklearn_dropnet import DropNetClassifier
    >>> from sklearn_dropnet.exceptions import PruningError
    >>> X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2
    >>> try:
    ...     DropNetClassifier(module=nn.Linear(4, 2), max_epochs=1).fit(X, y)
    ... except PruningError as error:
    ...     print(str(error)[:33])
    No prunable layer found in the mo
    """


class UnitRemovalWarning(UserWarning):
    """A layer is left unpruned, and why.

    DropNet removes a layer's units only where the smaller network computes
    what the full one computes with those units switched off. Where
    Torch-Pruning cannot map a structure channel by channel (a ``permute``
    before a flatten, a ``reshape`` to a fixed width), the layer keeps all
    its units and this warning names it and the reason. So it does for
    every other hidden layer left as it is: one whose output reaches no
    activation, one called twice or sharing its weights, one that only
    training runs. ``unpruned_layers_`` lists them after ``fit``.

    Examples
    --------
    >>> import warnings
    >>> from sklearn_dropnet.exceptions import UnitRemovalWarning
    >>> warnings.simplefilter("error", UnitRemovalWarning)  # fail instead of warn
    """
