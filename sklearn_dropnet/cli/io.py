"""The data files the command line reads: ``.npz`` and ``.csv``.

A ``.npz`` file holds arrays ``X`` and ``y``; a ``.csv`` file numbers, the
label in the last column or in a named column, an optional header row (read
by :mod:`sklearn_dropnet.cli.csv_reader`). Every problem with a file is a
:class:`~sklearn_dropnet.cli.errors.UsageError`, which the command line
reports as one line.
"""

import zipfile
import zlib
from pathlib import Path

import numpy as np

from .csv_reader import non_finite, read_csv
from .errors import UsageError, reason

DATA_EXTENSIONS = (".npz", ".csv")


def existing_file(path, what="data file"):
    path = Path(path).expanduser()
    if not path.exists():
        raise UsageError(f"{what} not found: {path}")
    if not path.is_file():
        raise UsageError(f"{what} is not a file: {path}")
    return path


def _check_extension(path):
    if path.suffix.lower() not in DATA_EXTENSIONS:
        raise UsageError(
            f"cannot read {path}: expected a .npz file (arrays X and y) or a .csv file, "
            f"got {path.suffix or 'no extension'!r}"
        )


# What np.load raises for a damaged archive: a truncated or corrupt zip file,
# a member that does not decompress or is cut short, an unsupported zip feature.
_NPZ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)


def _npz_arrays(path):
    """The arrays of the ``.npz`` archive ``path``, by name."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # np.load read it as a .npy file
            raise UsageError(
                f"{path} holds a single array (a .npy file), not a .npz archive of X and y"
            )
        with archive:
            return {name: archive[name] for name in archive.files}
    except _NPZ_ERRORS as error:
        raise UsageError(f"cannot read {path} as a .npz archive: {reason(error)}") from None


def _npz_labels(y, n_samples, path):
    """Check the array ``y`` of a ``.npz`` file: one finite label per sample."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise UsageError(
            f"y in {path} must be a 1-d array of labels, one per sample; got shape {y.shape}"
        )
    if len(y) != n_samples:
        raise UsageError(f"X and y in {path} have different lengths: {n_samples} and {len(y)}")
    bad = non_finite(y)
    if bad.size:
        raise UsageError(
            f"y in {path} holds NaN or infinite labels: {bad.size} of {len(y)}, "
            f"the first at index {bad[0]}"
        )
    return y


def _npz_features(X, path):
    """The array ``X`` of a ``.npz`` file as float32: real numbers (not
    complex, text or dates), 2 or more dimensions, samples, finite values."""
    if X.dtype.kind == "c":
        raise UsageError(
            f"X in {path} holds complex numbers ({X.dtype}); the features must be real"
        )
    if X.dtype.kind not in "iuf" or X.ndim < 2:
        raise UsageError(
            f"X in {path} must be a numeric array of 2 or more dimensions, got {X.dtype} {X.shape}"
        )
    if len(X) == 0:
        raise UsageError(f"X in {path} has no samples")
    _check_finite(X, path, "NaN or infinite values")
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    _check_finite(X32, path, "values beyond the range of float32 (about 3.4e38)")
    return X32


def _check_finite(X, path, what):
    """Raise, counting the rows, when ``X`` has values that are not finite."""
    bad_rows = np.flatnonzero(~np.isfinite(X).reshape(len(X), -1).all(axis=1))
    if bad_rows.size:
        raise UsageError(
            f"X in {path} holds {what} in {bad_rows.size} of {len(X)} rows, "
            f"the first at index {bad_rows[0]}"
        )


def read_npz(path):
    """``X, y`` from a ``.npz`` file; ``y`` is None when it has no array ``y``."""
    arrays = _npz_arrays(path)
    if "X" not in arrays:
        raise UsageError(f"{path} has no array named 'X' (it has: {', '.join(arrays) or 'none'})")
    X = _npz_features(arrays["X"], path)
    y = arrays.get("y")
    if y is not None:
        y = _npz_labels(y, len(X), path)
    return X, y


def load_data(path, target=None, n_features=None, feature_names=None):
    """Read ``X, y, names`` from a ``.npz`` or ``.csv`` file (``y`` may be
    None; ``names``, of the feature columns, is None but for a ``.csv``
    file with a header, see :func:`~sklearn_dropnet.cli.csv_reader.read_csv`)."""
    path = existing_file(path)
    _check_extension(path)
    if path.suffix.lower() == ".npz":
        if target is not None:
            raise UsageError(
                "--target applies to .csv files only; a .npz file holds arrays X and y"
            )
        return (*read_npz(path), None)
    return read_csv(path, target=target, n_features=n_features, feature_names=feature_names)


def _is_classifier(model):
    """Whether ``model`` is a classifier: scikit-learn says so, or it has ``classes_``."""
    from sklearn.base import is_classifier

    try:
        return is_classifier(model) or hasattr(model, "classes_")
    except Exception:  # an object without scikit-learn's tags
        return hasattr(model, "classes_")


def load_model(path, data=None):
    """The classifier saved with joblib at ``path``.

    ``data``, the command's DATA argument (``predict``'s), makes the error
    for a MODEL that does not load say that MODEL comes first when the two
    look swapped: MODEL a data file (``.csv``, ``.npz``), or DATA a
    ``.joblib`` one.
    """
    import joblib

    path = existing_file(path, "model file")
    try:
        model = joblib.load(path)
    except ModuleNotFoundError as error:  # the user's own network class, say
        raise UsageError(
            f"cannot load a model from {path}: it was saved with code from the module "
            f"{error.name!r}, which Python cannot import here. Run the command where it can: "
            f"PYTHONPATH=<the folder that holds {error.name.split('.')[0]}> sklearn-dropnet ..., or "
            "python -m sklearn_dropnet ... from that folder"
        ) from None
    except Exception as error:  # unpickling can fail in many ways
        swapped = data is not None and (
            path.suffix.lower() in DATA_EXTENSIONS or Path(data).suffix.lower() == ".joblib"
        )
        raise UsageError(
            f"cannot load a model from {path} ({type(error).__name__}: {error}): MODEL is a file "
            "saved by 'prune' or 'ensemble' (joblib)"
            + ("; the order of the arguments is MODEL then DATA" if swapped else "")
        ) from None
    if not hasattr(model, "predict"):
        raise UsageError(
            f"{path} holds a {type(model).__name__}, not a fitted estimator with predict"
        )
    if not _is_classifier(model):
        raise UsageError(f"{path} holds a {type(model).__name__}, not a classifier")
    return model
