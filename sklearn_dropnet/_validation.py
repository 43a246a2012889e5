"""Parameter constraints of DropNetClassifier, in scikit-learn's style.

:data:`DROPNET_CONSTRAINTS` is ``DropNetClassifier._parameter_constraints``,
checked by scikit-learn's ``_validate_params`` in ``fit`` and ``prune``; the
command line derives its option choices and ranges from the same entries.
The checks scikit-learn's constraints cannot express (a device this machine
has, skorch callbacks) follow in :func:`check_dropnet_params`.
"""

import functools
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from skorch.callbacks import Callback

from ._device import check_device
from .pruning._engine import RESTARTS
from .pruning._unit_scores import UNIT_SCORES
from .pruning._unit_selection import UNIT_SELECTIONS

__all__ = [
    "DROPNET_CONSTRAINTS",
    "Described",
    "RegistryNames",
    "check_dropnet_params",
    "check_two_classes",
    "forget_fit",
    "unfitted_on_failure",
]


class Described(HasMethods):
    """A constraint given by a predicate, and the words its error message uses.

    (A ``HasMethods`` only because scikit-learn's validation takes no other
    kind of constraint object.)
    """

    def __init__(self, predicate, description):
        super().__init__([])
        self.predicate = predicate
        self.description = description

    def is_satisfied_by(self, val):
        return bool(self.predicate(val))

    def __str__(self):
        return self.description


class RegistryNames(StrOptions):
    """The names of a registry (name -> function), read when checked: a name
    registered after the estimator class was defined is valid too."""

    def __init__(self, registry):
        self._registry = registry
        super().__init__(set(registry))

    @property
    def options(self):
        return set(self._registry)

    @options.setter
    def options(self, value):  # StrOptions.__init__ assigns it; the registry is the truth
        pass

    def __str__(self):
        return f"a str among {{{', '.join(repr(name) for name in sorted(self._registry))}}}"


DROPNET_CONSTRAINTS = {
    "module": [None, Described(callable, "a torch.nn.Module class or instance, or a callable that returns one")],
    "criterion": [Described(callable, "a torch loss class such as torch.nn.CrossEntropyLoss")],
    "optimizer": [Described(callable, "a torch optimizer class such as torch.optim.Adam")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device, None],
    "callbacks": [list, tuple, None],
    "prune_ratio": [Interval(Real, 0, 1, closed="left")],
    "drop_fraction": [Interval(Real, 0, 1, closed="neither")],
    "scope": [RegistryNames(UNIT_SELECTIONS), callable],
    "round_to": [Interval(Integral, 1, None, closed="left")],
    "unit_score": [RegistryNames(UNIT_SCORES), callable],
    "reinit": [RegistryNames(RESTARTS)],
    "distill_weight": [Interval(Real, 0, 1, closed="both")],
    "distill_temperature": [Interval(Real, 0, None, closed="neither")],
    "min_accuracy_ratio": [Interval(Real, 0, 1, closed="right"), None],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "patience": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def _check_callbacks(callbacks):
    """Raise ``TypeError`` unless ``callbacks`` holds what skorch takes.

    skorch takes callback instances and classes, and ``(name, callback)`` pairs.
    """
    for item in callbacks or ():
        named = isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
        callback = item[1] if named else item
        is_class = isinstance(callback, type) and issubclass(callback, Callback)
        if not (is_class or isinstance(callback, Callback)):
            raise TypeError(
                "callbacks must hold skorch callbacks (instances or classes of "
                f"skorch.callbacks.Callback) or (name, callback) pairs, got {item!r}."
            )


def check_dropnet_params(estimator):
    """What the constraints cannot say: a device this machine has, skorch callbacks,
    and a ``round_to`` that is a bool (an int to scikit-learn, which the pruning
    engine refuses, after the dense network has trained)."""
    check_device(estimator.device)
    _check_callbacks(estimator.callbacks)
    if isinstance(estimator.round_to, bool):
        raise ValueError(
            f"round_to must be a whole number, 1 or more (8 or 16 for the channel blocks of CPU kernels), "
            f"not {estimator.round_to}."
        )


def check_two_classes(estimator):
    """Refuse a fit whose ``classes_`` hold one class, naming it by its label."""
    if len(estimator.classes_) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes in y; "
            f"got 1 class: {estimator.classes_.tolist()[0]!r}."
        )


def forget_fit(estimator):
    """Remove the fitted attributes (names ending in ``_``) of ``estimator``."""
    for name in [name for name in vars(estimator) if name.endswith("_") and not name.startswith("__")]:
        delattr(estimator, name)


def unfitted_on_failure(fit):
    """``fit`` that, failing while the estimator is not fitted, leaves none of its
    fitted attributes (``classes_``, a half-trained ``net_``, ...) behind. An
    estimator fitted already when it fails (a DropNet fit interrupted in a
    pruning round keeps the last completed round) stays as it is."""

    @functools.wraps(fit)
    def fit_or_forget(estimator, *args, **kwargs):
        try:
            return fit(estimator, *args, **kwargs)
        except BaseException:
            if not estimator.__sklearn_is_fitted__():
                forget_fit(estimator)
            raise

    return fit_or_forget
