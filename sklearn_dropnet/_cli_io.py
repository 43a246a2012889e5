"""Files the command line reads and writes.

Training and prediction data come as ``.npz`` (arrays ``X`` and ``y``) or
``.csv`` (numbers, the label in the last column or in a named column, an
optional header row); models are joblib files; the pruning history and the
predictions are written as CSV. Every problem with a file is a
:class:`UsageError`, which the command line reports as one line.
"""

import csv
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

DATA_EXTENSIONS = (".npz", ".csv")


class UsageError(Exception):
    """A user error: reported as one line, exit status 2."""


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


def _reason(error):
    """The message of ``error``, or its type's name when it has none."""
    return str(error) or type(error).__name__


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text, where):
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None


def _labels(values):
    """Labels from text: integers when they all are, else the strings."""
    try:
        return np.array([int(v) for v in values])
    except ValueError:
        pass
    try:
        as_float = np.array([float(v) for v in values])
    except ValueError:
        return np.array(values)
    return as_float


def _pandas_names(cells):
    """Whether ``cells`` are the names pandas gives the columns of an unnamed
    data frame: 0, 1, ..., n-1, or 0, 1, ..., n-2 and a name (the label's)."""
    numbered = cells[:-1] == [str(i) for i in range(len(cells) - 1)]
    return numbered and (cells[-1] == str(len(cells) - 1) or not _is_number(cells[-1]))


def _is_header(rows):
    """Whether the first of a CSV file's ``rows`` is a header row.

    It is when one of its cells but the last (the features') is not a
    number; when its last cell is not a number but the second row's is (a
    column name above numeric labels); or, in a file of 3 or more columns,
    when it reads 0, 1, ..., n-1, or 0, 1, ..., n-2 and a name: the column
    names pandas writes for a data frame made from an array. Text labels
    under numeric features are data, from the first row on.
    """
    first = [cell.strip() for cell in rows[0]]
    if not all(_is_number(cell) for cell in first[:-1]):
        return True
    if not _is_number(first[-1]):
        return len(rows) > 1 and _is_number(rows[1][-1].strip())
    return len(first) >= 3 and _pandas_names(first)


def _csv_labels(texts, path, first_line):
    """The label column's cells as labels (see :func:`_labels`); empty, NaN
    and infinite labels are errors naming their line."""
    for i, text in enumerate(texts):
        if not text:
            raise UsageError(f"{path}, line {first_line + i}: the label is empty")
    y = _labels(texts)
    bad = _non_finite(y)
    if bad.size:
        raise UsageError(
            f"{path}, line {first_line + bad[0]}: {texts[bad[0]]!r} is not a label "
            f"(NaN or infinite labels: {bad.size} of {len(y)})"
        )
    return y


def _non_finite(y):
    """Indices of the NaN and infinite values of a numeric ``y``."""
    if y.dtype.kind not in "fc":
        return np.empty(0, dtype=int)
    return np.flatnonzero(~np.isfinite(y))


def read_csv(path, target=None, n_features=None):
    """``X, y`` from a CSV file; ``y`` is None when there is no label column.

    The first row may be a header (see :func:`_is_header`); a UTF-8 byte
    order mark is skipped. The label is the ``target`` column (needs a
    header), else the last column; with ``n_features`` given (prediction),
    a file of exactly ``n_features`` columns has no label column.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = [row for row in csv.reader(file) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    if not rows:
        raise UsageError(f"{path} is empty")
    header = None
    if _is_header(rows):
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    if not rows:
        raise UsageError(f"{path} has a header but no data rows")
    width = len(rows[0])
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise UsageError(f"{path}, line {number}: {len(row)} columns, expected {width}")
    if header is not None and len(header) != width:
        raise UsageError(f"{path}: the header has {len(header)} columns, the data {width}")

    if target is not None:
        if header is None:
            raise UsageError(f"--target {target!r} needs a header row in {path}")
        if target not in header:
            raise UsageError(
                f"no column {target!r} in {path}; the columns are: {', '.join(header)}"
            )
        label_column = header.index(target)
    elif n_features is not None and width == n_features:
        label_column = None
    elif n_features is not None and width != n_features + 1:
        raise UsageError(
            f"{path} has {width} columns, but the model expects {n_features} features "
            f"({n_features + 1} columns with a label column)"
        )
    else:
        label_column = width - 1
    if label_column is not None and width < 2:
        raise UsageError(f"{path} needs at least one feature column besides the label")

    feature_columns = [c for c in range(width) if c != label_column]
    X = np.empty((len(rows), len(feature_columns)), dtype=np.float32)
    for i, row in enumerate(rows):
        line = i + (2 if header else 1)
        for j, column in enumerate(feature_columns):
            X[i, j] = _number(row[column], f"{path}, line {line}, column {column + 1}")
    if label_column is None:
        return X, None
    texts = [row[label_column].strip() for row in rows]
    return X, _csv_labels(texts, path, first_line=2 if header else 1)


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
        raise UsageError(f"cannot read {path} as a .npz archive: {_reason(error)}") from None


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
    bad = _non_finite(y)
    if bad.size:
        raise UsageError(
            f"y in {path} holds NaN or infinite labels: {bad.size} of {len(y)}, "
            f"the first at index {bad[0]}"
        )
    return y


def read_npz(path):
    """``X, y`` from a ``.npz`` file; ``y`` is None when it has no array ``y``."""
    arrays = _npz_arrays(path)
    if "X" not in arrays:
        raise UsageError(f"{path} has no array named 'X' (it has: {', '.join(arrays) or 'none'})")
    X = arrays["X"]
    if not np.issubdtype(X.dtype, np.number) or X.ndim < 2:
        raise UsageError(
            f"X in {path} must be a numeric array of 2 or more dimensions, got {X.dtype} {X.shape}"
        )
    if len(X) == 0:
        raise UsageError(f"X in {path} has no samples")
    y = arrays.get("y")
    if y is not None:
        y = _npz_labels(y, len(X), path)
    return X.astype(np.float32), y


def load_data(path, target=None, n_features=None):
    """Read ``X, y`` from a ``.npz`` or ``.csv`` file (``y`` may be None)."""
    path = existing_file(path)
    _check_extension(path)
    if path.suffix.lower() == ".npz":
        if target is not None:
            raise UsageError(
                "--target applies to .csv files only; a .npz file holds arrays X and y"
            )
        return read_npz(path)
    return read_csv(path, target=target, n_features=n_features)


def training_data(args):
    """``X, y, description`` for ``prune`` and ``ensemble``."""
    if args.data is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return (X / 16).astype(np.float32), y, "scikit-learn digits (1797 8x8 images, pixels / 16)"
    X, y = load_data(args.data, target=args.target)
    if y is None:
        raise UsageError(f"{args.data} has no labels: a .npz file needs an array y")
    if len(np.unique(y)) < 2:
        raise UsageError(f"{args.data}: the labels have a single class; need at least 2")
    return X, y, f"{args.data} ({X.shape[0]} samples, {int(np.prod(X.shape[1:]))} features)"


def split_test(X, y, test_size, random_state):
    from sklearn.model_selection import train_test_split

    if test_size == 0:
        return X, None, y, None
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    try:
        return train_test_split(
            X, y, test_size=test_size, stratify=stratify, random_state=random_state
        )
    except ValueError as error:
        raise UsageError(f"cannot hold out a test split of {test_size}: {error}") from None


def output_dir(path):
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output-dir {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --output-dir {path}: {error}") from None
    return path


def write_history_csv(history, path):
    layers = list(history[0]["units_per_layer"])
    keys = [
        "round",
        "units",
        "fraction_left",
        "params",
        "macs",
        "valid_accuracy",
        "epochs",
        "seconds",
        "train_seconds",
        "accepted",
    ]
    with writing(path), open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(keys + [f"units[{layer}]" for layer in layers])
        for record in history:
            per_layer = record["units_per_layer"]
            writer.writerow(
                [record[key] for key in keys] + [per_layer.get(layer, 0) for layer in layers]
            )


@contextmanager
def writing(path):
    """Report an :class:`OSError` raised while writing ``path`` as ``cannot write PATH``.

    Every output file goes through this, so that a folder in the way, a full
    disk or a missing permission ends the command with one line.

    Parameters
    ----------
    path : pathlib.Path
        The file written in the ``with`` block.

    Yields
    ------
    path : pathlib.Path
        ``path``, unchanged.
    """
    try:
        yield path
    except OSError as error:
        raise UsageError(f"cannot write {path}: {_reason(error)}") from None


def dump(obj, path):
    import joblib

    with writing(path):
        joblib.dump(obj, path)


def load_model(path):
    import joblib

    path = existing_file(path, "model file")
    try:
        model = joblib.load(path)
    except Exception as error:  # unpickling can fail in many ways
        raise UsageError(
            f"cannot load a model from {path}: {type(error).__name__}: {error}"
        ) from None
    if not hasattr(model, "predict"):
        raise UsageError(
            f"{path} holds a {type(model).__name__}, not a fitted estimator with predict"
        )
    return model


def write_predictions(file, result, classes, proba, header):
    writer = csv.writer(file, lineterminator="\n")
    if proba:
        if header:
            writer.writerow([str(c) for c in classes])
        writer.writerows([[f"{p:.6g}" for p in row] for row in result])
    else:
        if header:
            writer.writerow(["prediction"])
        writer.writerows([[label] for label in result])
