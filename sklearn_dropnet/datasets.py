"""Image data sets as NumPy arrays, shaped for the convolutional models.

Every loader returns ``(X, y)``: ``X`` is float32 shaped ``(n, C, H, W)`` with
pixel values scaled to [0, 1], ``y`` is int64. These arrays go straight into
:class:`~sklearn_dropnet.DropNetClassifier` with any model of
:mod:`sklearn_dropnet.models`.

- :func:`load_digits_images` -- scikit-learn's bundled 8x8 digits; needs no
  files.
- :func:`load_mnist` and :func:`load_cifar10` -- read a copy the user keeps in
  a local folder. Nothing is downloaded unless ``download=True`` is passed.
"""

import os
import pickle
from pathlib import Path

import numpy as np

__all__ = ["load_digits_images", "load_mnist", "load_cifar10"]

# Per-channel mean and standard deviation of the training sets' pixels in
# [0, 1], used by ``normalize=True``.
_MNIST_MEAN, _MNIST_STD = (0.1307,), (0.3081,)
_CIFAR10_MEAN, _CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR10_TEST_FILES = ("test_batch",)


def _to_float_images(images, mean=None, std=None):
    """uint8 ``(n, C, H, W)`` -> float32 in [0, 1], optionally standardised."""
    X = images.astype(np.float32)
    X /= 255.0
    if mean is not None:
        X -= np.asarray(mean, dtype=np.float32)[:, None, None]
        X /= np.asarray(std, dtype=np.float32)[:, None, None]
    return X


def load_digits_images(*, n_class=10):
    """Load scikit-learn's handwritten digits as 8x8 one-channel images.

    The data ship with scikit-learn (:func:`sklearn.datasets.load_digits`),
    so nothing is read from disk elsewhere or downloaded. Pixel values, 0 to
    16 in the original, are divided by 16.

    Parameters
    ----------
    n_class : int, default=10
        Number of classes to return, between 0 and 10 (digits ``0`` to
        ``n_class - 1``).

    Returns
    -------
    X : ndarray of shape (n_samples, 1, 8, 8), dtype float32
        Images with values in [0, 1]; 1797 of them with ``n_class=10``.
    y : ndarray of shape (n_samples,), dtype int64
        The digit shown in each image.

    See Also
    --------
    sklearn.datasets.load_digits : The same data as flat features in [0, 16].

    Examples
    --------
    >>> from sklearn_dropnet.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, X.dtype, y.dtype
    ((1797, 1, 8, 8), dtype('float32'), dtype('int64'))
    >>> float(X.min()), float(X.max())
    (0.0, 1.0)
    """
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=n_class)
    X = digits.images.astype(np.float32)[:, None, :, :] / np.float32(16.0)
    y = digits.target.astype(np.int64)
    return X, y


def _folder(root):
    """``root`` as an expanded Path; a clear TypeError for anything that is not a path."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be the path of a folder (str or path-like), got {root!r}.")
    return Path(root).expanduser()


def load_mnist(root, train=True, *, download=False, normalize=False):
    """Load MNIST from a local folder, with torchvision's file layout.

    The files are read by :class:`torchvision.datasets.MNIST`: the four
    uncompressed IDX files in ``<root>/MNIST/raw/``::

        <root>/MNIST/raw/train-images-idx3-ubyte
        <root>/MNIST/raw/train-labels-idx1-ubyte
        <root>/MNIST/raw/t10k-images-idx3-ubyte
        <root>/MNIST/raw/t10k-labels-idx1-ubyte

    torchvision wants all four present, whichever split is loaded.

    Parameters
    ----------
    root : str or path-like
        Folder that holds the ``MNIST`` folder (``~`` is expanded).
    train : bool, default=True
        Load the 60,000 training images if True, the 10,000 test images
        otherwise.
    download : bool, default=False
        If True, let torchvision fetch the files into ``root`` when they are
        missing (about 12 MB; needs internet access). Never done unless
        asked.
    normalize : bool, default=False
        If True, standardise the pixels with the training set's mean 0.1307
        and standard deviation 0.3081; ``X`` is then no longer in [0, 1].

    Returns
    -------
    X : ndarray of shape (n_samples, 1, 28, 28), dtype float32
        Images, values in [0, 1] unless ``normalize=True``.
    y : ndarray of shape (n_samples,), dtype int64
        Labels, 0 to 9.

    Raises
    ------
    FileNotFoundError
        If the files are missing and ``download`` is False; the message
        names the folder and the missing files.

    See Also
    --------
    load_cifar10 : The same for CIFAR-10.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_dropnet.datasets import load_mnist
    >>> X, y = load_mnist("~/data")  # doctest: +SKIP
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     load_mnist(empty)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    FileNotFoundError: MNIST files not found in '.../MNIST/raw': missing ...
    """
    from torchvision.datasets import MNIST

    root = _folder(root)
    try:
        dataset = MNIST(root, train=train, download=download)
    except RuntimeError as exc:
        # torchvision says "Dataset not found" with a RuntimeError.
        raw = root / "MNIST" / "raw"
        missing = [name for name in _MNIST_FILES if not (raw / name).is_file()]
        if download or not missing:
            raise
        raise FileNotFoundError(
            f"MNIST files not found in '{raw}': missing {', '.join(missing)}. "
            f"Put the four uncompressed IDX files there (gunzip the .gz files "
            f"of the MNIST distribution), or pass download=True to fetch them "
            f"(about 12 MB)."
        ) from exc
    images = dataset.data.numpy()[:, None, :, :]
    mean, std = (_MNIST_MEAN, _MNIST_STD) if normalize else (None, None)
    X = _to_float_images(images, mean, std)
    y = dataset.targets.numpy().astype(np.int64)
    return X, y


def load_cifar10(root, train=True, *, download=False, normalize=False):
    """Load CIFAR-10 from a local folder, with torchvision's file layout.

    The data are the "python version" of CIFAR-10, extracted from
    ``cifar-10-python.tar.gz``: pickled batches in
    ``<root>/cifar-10-batches-py/``::

        <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5  (train)
        <root>/cifar-10-batches-py/test_batch                      (test)

    Each batch is a pickled dict whose ``"data"`` is a uint8 array of shape
    ``(n, 3072)`` (the red, green, then blue planes of a 32x32 image) and
    whose ``"labels"`` is a list of ints. The batches are read here, the
    way :class:`torchvision.datasets.CIFAR10` reads them, but without its
    MD5 check of all six files on every load (torchvision does check them
    when it downloads). Only the batches of the requested split must be
    present.

    Parameters
    ----------
    root : str or path-like
        Folder that holds ``cifar-10-batches-py`` (``~`` is expanded).
    train : bool, default=True
        Load the 50,000 training images if True, the 10,000 test images
        otherwise.
    download : bool, default=False
        If True, let :class:`torchvision.datasets.CIFAR10` fetch and extract
        the archive into ``root`` when it is missing (about 170 MB; needs
        internet access). Never done unless asked.
    normalize : bool, default=False
        If True, standardise each channel with the training set's mean
        (0.4914, 0.4822, 0.4465) and standard deviation (0.2470, 0.2435,
        0.2616); ``X`` is then no longer in [0, 1].

    Returns
    -------
    X : ndarray of shape (n_samples, 3, 32, 32), dtype float32
        Images, values in [0, 1] unless ``normalize=True`` (600 MB for the
        training set).
    y : ndarray of shape (n_samples,), dtype int64
        Labels, 0 to 9.

    Raises
    ------
    FileNotFoundError
        If a batch of the split is missing and ``download`` is False; the
        message names the folder and the missing files.

    See Also
    --------
    load_mnist : The same for MNIST.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_dropnet.datasets import load_cifar10
    >>> X, y = load_cifar10("~/data")  # doctest: +SKIP
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     load_cifar10(empty)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    FileNotFoundError: CIFAR-10 files not found in '.../cifar-10-batches-py': ...
    """
    root = _folder(root)
    folder = root / _CIFAR10_FOLDER
    names = _CIFAR10_TRAIN_FILES if train else _CIFAR10_TEST_FILES
    missing = [name for name in names if not (folder / name).is_file()]
    if missing and download:
        from torchvision.datasets import CIFAR10

        CIFAR10(root, train=train, download=True)
        missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 files not found in '{folder}': missing "
            f"{', '.join(missing)}. Extract cifar-10-python.tar.gz (the python "
            f"version of CIFAR-10) into '{root}', or pass download=True to "
            f"fetch it (about 170 MB)."
        )
    data, labels = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        data.append(batch["data"])
        labels.extend(batch["labels"])
    images = np.vstack(data).reshape(-1, 3, 32, 32)
    mean, std = (_CIFAR10_MEAN, _CIFAR10_STD) if normalize else (None, None)
    X = _to_float_images(images, mean, std)
    y = np.asarray(labels, dtype=np.int64)
    return X, y
