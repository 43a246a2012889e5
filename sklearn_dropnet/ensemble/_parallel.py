"""Fitting models in parallel without oversubscribing the CPU.

PyTorch runs every operation on a pool of ``torch.get_num_threads()``
threads, by default one per core. Two joblib workers that each train a
network on all cores fight over them and run slower than one. Loky workers
inherit a reduced ``OMP_NUM_THREADS``, but the threading backend and Dask
workers do not, so the fitting function caps the pool itself, from the
cores of the machine it runs on:

    jobs = jobs_per_host(n_jobs)              # on the client
    ...
    with limit_torch_threads(worker_threads(jobs)):   # in the worker
        estimator.fit(X, y)
"""

import os
import sys
import threading
from contextlib import contextmanager

from joblib import cpu_count, effective_n_jobs
from joblib.parallel import get_active_backend

__all__ = ["jobs_per_host", "limit_torch_threads", "threads_per_worker", "worker_threads"]

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


def jobs_per_host(n_jobs=None):
    """How many jobs run at once on each machine, for :func:`worker_threads`.

    Called on the client. Under joblib's Dask backend, the threads of the
    cluster's workers, summed per host (each runs one job at a time);
    under any other backend the jobs all run on this machine, as many as
    joblib would run at once.

    Parameters
    ----------
    n_jobs : int or None, default=None
        As for :class:`joblib.Parallel`.

    Returns
    -------
    dict
        ``{host: jobs}``; the host ``None`` stands for the client's machine.

    Examples
    --------
    >>> from sklearn_dropnet.ensemble._parallel import jobs_per_host
    >>> jobs_per_host(2)
    {None: 2}
    """
    client = getattr(get_active_backend()[0], "client", None)  # joblib's Dask backend
    if client is None:
        return {None: effective_n_jobs(n_jobs)}
    jobs = {}
    for worker in client.scheduler_info(n_workers=-1)["workers"].values():
        jobs[worker["host"]] = jobs.get(worker["host"], 0) + worker["nthreads"]
    return jobs


def worker_threads(jobs):
    """Torch threads for one job, from the cores of the machine it runs on.

    Called in the worker: the machine's cores (:func:`joblib.cpu_count`,
    which honours CPU affinity and container limits) divided by the jobs
    that run at once on it, at least 1.

    Parameters
    ----------
    jobs : dict
        From :func:`jobs_per_host`.

    Returns
    -------
    int

    Examples
    --------
    >>> from joblib import cpu_count
    >>> from sklearn_dropnet.ensemble._parallel import worker_threads
    >>> worker_threads({None: 1}) == cpu_count()
    True
    """
    host = _dask_worker_host()
    n_jobs = jobs.get(host) or jobs.get(None) or 1
    return max(1, cpu_count() // n_jobs)


def _dask_worker_host():
    """The host of the Dask worker running this code, or None outside one."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        address = distributed.get_worker().address
    except ValueError:  # not in a worker
        return None
    return distributed.comm.get_address_host(address)


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
