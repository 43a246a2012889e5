"""Checking a ``device`` argument before torch sees it.

Torch reports a bad device name, a missing CUDA driver or a GPU index out
of range from deep inside its first allocation. :func:`check_device` says
what is wrong in one line, before any work starts. :func:`seeded_generators`
seeds the generators a fit on that device draws from, and only those, and
restores them after.
"""

import contextlib
import os
import threading

import torch

__all__ = ["check_device", "preserved_generators", "seeded_generators"]


def check_device(device):
    """Return ``torch.device(device)``, or raise ``ValueError`` naming the problem.

    ``None`` is passed through: skorch then leaves the module where it is.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...

    Returns
    -------
    torch.device or None

    Raises
    ------
    ValueError
        If ``device`` is not a device name, or names a CUDA or MPS device
        that this machine does not have.

    Examples
    --------
    >>> from sklearn_dropnet._device import check_device
    >>> check_device("cpu")
    device(type='cpu')
    >>> check_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device='gpu' is not a torch device name; use 'cpu', 'cuda', 'cuda:1', 'mps', ...
    """
    if device is None:
        return None
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a torch device name; use 'cpu', 'cuda', 'cuda:1', 'mps', ..."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: CUDA is not available on this machine; use device='cpu'.")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(
                f"device={device!r}: this machine has {count} CUDA device(s), "
                f"numbered 0 to {count - 1}."
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}: MPS is not available on this machine; use device='cpu'.")
    if parsed.type not in ("cpu", "cuda", "mps"):
        is_available = getattr(getattr(torch, parsed.type, None), "is_available", None)
        if is_available is None or not is_available():
            raise ValueError(
                f"device={device!r}: no {parsed.type!r} device is available to train on "
                "with this torch; use 'cpu', 'cuda' or 'mps'."
            )
    return parsed


# Torch has one random generator per device and process: fits in threads of
# one process (joblib's threading backend, a Dask worker's threads) would
# draw from and reseed each other's. They take turns instead.
_GENERATORS_LOCK = threading.RLock()


def _new_lock_in_child():
    # A process forked while a thread of its parent fits would inherit the
    # lock held, by a thread that does not exist in the child.
    global _GENERATORS_LOCK
    _GENERATORS_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_new_lock_in_child)


@contextlib.contextmanager
def seeded_generators(seed, device):
    """Seed the CPU generator and ``device``'s, and restore both on exit.

    Other threads' :func:`seeded_generators` wait until the block ends.

    ``torch.manual_seed`` seeds every device, and ``torch.random.fork_rng``
    restores only those it is told of. Here the CPU generator (weights are
    initialised and batches shuffled on the CPU) and, for a CUDA device, that
    device's generator (dropout on the GPU) are seeded and restored; the
    generators of devices the fit does not use are left alone. An MPS
    device's generator is seeded but not restored: torch offers no fork of it.

    Parameters
    ----------
    seed : int
        The seed.
    device : str, torch.device or None
        Where the fit runs, as accepted by :func:`check_device`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet._device import seeded_generators
    >>> before = torch.get_rng_state()
    >>> with seeded_generators(0, "cpu"):
    ...     first = torch.rand(2)
    >>> with seeded_generators(0, "cpu"):
    ...     second = torch.rand(2)
    >>> torch.equal(first, second), torch.equal(torch.get_rng_state(), before)
    (True, True)
    """
    parsed = torch.device("cpu" if device is None else device)
    with preserved_generators(device) as cuda_devices:
        torch.random.default_generator.manual_seed(seed)
        for index in cuda_devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        if parsed.type == "mps":
            torch.mps.manual_seed(seed)
        yield


@contextlib.contextmanager
def preserved_generators(device):
    """Restore the CPU generator and a CUDA ``device``'s on exit.

    Holds the lock that makes fits in threads take turns (see
    :func:`seeded_generators`; it is reentrant, so a fit may use this block
    too). Yields the indices of the CUDA devices restored.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet._device import preserved_generators
    >>> before = torch.get_rng_state()
    >>> with preserved_generators("cpu"):
    ...     _ = torch.rand(2)
    >>> torch.equal(torch.get_rng_state(), before)
    True
    """
    parsed = torch.device("cpu" if device is None else device)
    cuda_devices = []
    if parsed.type == "cuda":
        cuda_devices = [torch.cuda.current_device() if parsed.index is None else parsed.index]
    with _GENERATORS_LOCK, torch.random.fork_rng(devices=cuda_devices, device_type="cuda"):
        yield cuda_devices
