"""Fitting one member of an ensemble in a joblib worker, and saying which.

What runs in the worker, for each member:

- torch's threads are capped from the cores of the worker's machine
  (:func:`~sklearn_dropnet.ensemble._parallel.worker_threads`);
- an error of the member's fit comes back naming the member, by its index
  and name;
- in a worker process other than the caller's, the fitted member is
  pickled once before it is returned. Under Dask a result that cannot be
  pickled is only logged by the worker, and the caller waits for it
  forever; this way the caller gets an error naming the member and the fix
  instead.
"""

import os
import pickle
from dataclasses import dataclass

from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import cross_val_predict
from sklearn.utils import _safe_indexing

from ._parallel import limit_torch_threads, worker_threads

try:  # a dependency of joblib >= 1.5, which vendored it before
    import cloudpickle
except ImportError:  # pragma: no cover
    from joblib.externals import cloudpickle

__all__ = ["MemberTask", "UnreturnableMemberError", "fit_member", "fit_member_out_of_fold"]


class UnreturnableMemberError(pickle.PicklingError):
    """A fitted member cannot be pickled back from its worker process."""


@dataclass(frozen=True)
class MemberTask:
    """Which member a job fits, and what the worker needs to know of the caller."""

    index: int
    name: str
    jobs_per_host: dict
    caller_pid: int

    def describe(self, estimator):
        return f"member {self.index} ({self.name!r}, {type(estimator).__name__})"


def fit_member(task, estimator, X, y, X_held, rows=None):
    """``(member fitted on X, its probabilities on X_held)``.

    ``rows``: the member's bootstrap sample (row indices), or None for all.
    A frozen member's ``fit`` does nothing.
    """

    def fit():
        X_fit, y_fit = (X, y) if rows is None else (_safe_indexing(X, rows), y[rows])
        estimator.fit(X_fit, y_fit)
        return estimator, estimator.predict_proba(X_held)

    return _run(task, estimator, fit)


def fit_member_out_of_fold(task, estimator, X, y, folds):
    """``(member fitted on all of X, its out-of-fold probabilities on X)``.

    One clone of the member is fitted per fold and predicts the rows it did
    not see (:func:`~sklearn.model_selection.cross_val_predict`); then the
    member itself is fitted on every row. A frozen member is not fitted and
    predicts all of ``X``.
    """

    def fit():
        if isinstance(estimator, FrozenEstimator):
            return estimator, estimator.predict_proba(X)
        proba = cross_val_predict(estimator, X, y, cv=folds, method="predict_proba")
        return estimator.fit(X, y), proba

    return _run(task, estimator, fit)


def _run(task, estimator, fit):
    with limit_torch_threads(worker_threads(task.jobs_per_host)):
        try:
            fitted, proba = fit()
        except Exception as exc:
            raise _naming(exc, f"Fitting {task.describe(estimator)} failed") from exc
    if os.getpid() != task.caller_pid:
        _check_returnable(task, fitted)
    return fitted, proba


def _check_returnable(task, fitted):
    """Raise a clear error if the fitted member cannot be pickled back."""
    try:
        cloudpickle.dumps(fitted)
    except Exception as exc:
        raise UnreturnableMemberError(
            f"The fitted {task.describe(fitted)} cannot be sent back from its worker "
            f"process: {type(exc).__name__}: {exc}. Fitted members travel by pickle "
            "(cloudpickle), and something the member holds cannot be pickled (a lock, an "
            "open file, a generator or a C object stored on the network, say): keep it out "
            "of the network's attributes, or use n_jobs=1."
        ) from None


def _naming(exc, context):
    """``exc`` again, its message prefixed by ``context``: same type where it can be."""
    message = f"{context}: {exc}"
    try:
        named = type(exc)(message)
        pickle.loads(pickle.dumps(named))  # it must travel back from a worker
    except Exception:
        named = RuntimeError(f"{context}: {type(exc).__name__}: {exc}")
    return named
