"""Checking a ``device`` argument before torch sees it.

Torch reports a bad device name, a missing CUDA driver or a GPU index out
of range from deep inside its first allocation. :func:`check_device` says
what is wrong in one line, before any work starts.
"""

import torch

__all__ = ["check_device"]


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
    return parsed
