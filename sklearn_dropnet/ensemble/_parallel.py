"""Fitting models in parallel without oversubscribing the CPU.

PyTorch runs every operation on a pool of ``torch.get_num_threads()``
threads, by default one per core. Two joblib workers that each train a
network on all cores fight over them and run slower than one. Loky workers
inherit a reduced ``OMP_NUM_THREADS``, but the threading backend and Dask
workers do not, so the fitting function caps the pool itself:

    with limit_torch_threads(threads_per_worker(n_jobs)):
        estimator.fit(X, y)
"""

import os
import sys
import threading
from contextlib import contextmanager

from joblib import effective_n_jobs

__all__ = ["limit_torch_threads", "threads_per_worker"]

# Threads of one process share torch's thread setting, so concurrent
# ``limit_torch_threads`` blocks (threading backend, in-process Dask workers)
# count themselves: the first one in saves the setting, the last one out
# restores it.
_lock = threading.Lock()
_active = 0
_saved = None


def threads_per_worker(n_jobs=None):
    """Number of torch threads each of ``n_jobs`` parallel workers should use.

    The CPU count divided by the number of workers joblib would really run
    (:func:`joblib.effective_n_jobs`, which honours the active backend and
    ``n_jobs=-1``), at least 1.

    Parameters
    ----------
    n_jobs : int or None, default=None
        As for :class:`joblib.Parallel`.

    Returns
    -------
    int

    Examples
    --------
    >>> import os
    >>> from sklearn_dropnet.ensemble._parallel import threads_per_worker
    >>> threads_per_worker(1) == os.cpu_count()
    True
    >>> threads_per_worker(10**6)
    1
    """
    return max(1, (os.cpu_count() or 1) // effective_n_jobs(n_jobs))


@contextmanager
def limit_torch_threads(n_threads):
    """Cap torch's intra-op thread pool at ``n_threads`` inside the block.

    The setting is only ever lowered, never raised above what it was, and
    is restored when the block exits. Safe to nest and to use from several
    threads at once. If torch has not been imported, nothing is capped and
    torch is not imported (models that use torch import it when they are
    unpickled in a worker, before they are fitted).

    Parameters
    ----------
    n_threads : int
        Maximum number of torch threads inside the block.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.ensemble._parallel import limit_torch_threads
    >>> before = torch.get_num_threads()
    >>> with limit_torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    global _active, _saved
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    with _lock:
        if _active == 0:
            _saved = torch.get_num_threads()
        _active += 1
        torch.set_num_threads(max(1, min(int(n_threads), _saved)))
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                torch.set_num_threads(_saved)
