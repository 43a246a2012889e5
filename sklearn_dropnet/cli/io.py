"""Files the command line reads and writes.

Training and prediction data come as ``.npz`` (arrays ``X`` and ``y``) or
``.csv`` (numbers, the label in the last column or in a named column, an
optional header row); models are joblib files; the pruning history and the
predictions are written as CSV. Every problem with a file is a
:class:`UsageError`, which the command line reports as one line.
"""

import csv
import math
import tempfile
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


def _feature(text, where):
    """The feature cell ``text`` as a float32 number; NaN, infinities and
    numbers beyond float32's range are errors naming ``where``."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: {text!r} is not a finite number")
    with np.errstate(over="ignore"):
        too_large = not np.isfinite(np.float32(value))
    if too_large:
        raise UsageError(f"{where}: {text!r} is beyond the range of float32 (about 3.4e38)")
    return value


def _label_number(text):
    """The label ``text`` as an int or a float when it reads back as written
    ('7', '-2', '0.5', '4.0'; not '01', '1.50', '1e3', '1_000'), or NaN or
    infinity in any spelling (an error later); else None."""
    try:
        value = int(text)
    except ValueError:
        pass
    else:
        return value if str(value) == text else None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if repr(value) == text or not math.isfinite(value) else None


def _float_labels(numbers):
    """``numbers`` (ints and floats) as a float array; None when that would
    change an int or give two labels the same value ('1' and '1.0')."""
    try:
        values = [float(number) for number in numbers]
    except OverflowError:
        return None
    if any(value != number for value, number in zip(values, numbers) if math.isfinite(value)):
        return None
    finite = [number for number in numbers if math.isfinite(number)]
    if len({float(number) for number in finite}) != len({str(number) for number in finite}):
        return None
    return np.array(values)


def _labels(texts):
    """Labels from text: numbers when every label reads back as written (see
    :func:`_label_number`), int64 when they all are integers, else the strings.

    So '01', '1' and '2' stay three text labels, and integers beyond int64
    stay text rather than becoming floats that merge them.
    """
    numbers = [_label_number(text) for text in texts]
    if any(number is None for number in numbers):
        return np.array(texts)
    if all(isinstance(number, int) for number in numbers):
        try:
            return np.array(numbers, dtype=np.int64)
        except OverflowError:
            return np.array(texts)
    values = _float_labels(numbers)
    return np.array(texts) if values is None else values


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


def _csv_labels(texts, path, lines):
    """The label column's cells as labels (see :func:`_labels`); empty, NaN
    and infinite labels are errors naming their line (``lines[i]`` is the
    line of ``texts[i]``)."""
    for text, line in zip(texts, lines):
        if not text:
            raise UsageError(f"{path}, line {line}: the label is empty")
    y = _labels(texts)
    bad = _non_finite(y)
    if bad.size:
        raise UsageError(
            f"{path}, line {lines[bad[0]]}: {texts[bad[0]]!r} is not a label "
            f"(NaN or infinite labels: {bad.size} of {len(y)})"
        )
    return y


def _non_finite(y):
    """Indices of the NaN and infinite values of a numeric ``y``."""
    if y.dtype.kind not in "fc":
        return np.empty(0, dtype=int)
    return np.flatnonzero(~np.isfinite(y))


def _csv_rows(path):
    """The rows of the CSV file ``path`` that are not blank, and the line
    each starts on (a quoted cell may span lines)."""
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            start = 1
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(start)
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    return rows, lines


def _check_columns(rows, lines, header, path):
    """Check that the data ``rows`` have as many columns as the first and
    the ``header`` (None without one), that the last column is not empty on
    every row (trailing commas) and that every column has a name."""
    width = len(rows[0])
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise UsageError(f"{path}, line {line}: {len(row)} columns, expected {width}")
    if header is not None and len(header) != width:
        raise UsageError(f"{path}: the header has {len(header)} columns, the data {width}")
    if all(not row[-1].strip() for row in rows) and (header is None or not header[-1]):
        raise UsageError(
            f"{path}: every row ends with ',' (an empty last column); remove the trailing commas"
        )
    for column, name in enumerate(header or []):
        if not name:
            raise UsageError(
                f"{path}: column {column + 1} has no name in the header row (a row index, as "
                "pandas' df.to_csv() writes? write the file with df.to_csv(index=False))"
            )


def _target_column(header, path, target):
    """The index of the column named ``target`` (``--target``) in ``header``."""
    if target not in header:
        raise UsageError(f"no column {target!r} in {path}; the columns are: {', '.join(header)}")
    return header.index(target)


def _label_column(header, width, path, target, n_features):
    """The index of the label column of a CSV file, or None without one."""
    if target is not None:
        if header is None:
            raise UsageError(f"--target {target!r} needs a header row in {path}")
        label_column = _target_column(header, path, target)
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
    return label_column


def _named_columns(header, feature_names, path, target):
    """``(feature columns, label column or None)`` of a file to predict on,
    matched by name to the model's ``feature_names`` (in the model's order).
    The label is the ``target`` column, else the one column left over."""
    missing = [name for name in feature_names if name not in header]
    if missing:
        raise UsageError(
            f"{path} lacks columns the model was trained on: {', '.join(map(repr, missing[:5]))}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    if target is not None:
        _target_column(header, path, target)  # an error naming the columns if it is not one
    label = target
    others = [name for name in header if name not in feature_names and name != target]
    if others and (target is not None or len(others) > 1):
        raise UsageError(
            f"{path} has columns the model was not trained on: {', '.join(map(repr, others[:5]))}"
            + ("" if target is not None else "; name the label column with --target")
        )
    if label is None and others:
        label = others[0]
    return [header.index(name) for name in feature_names], (
        None if label is None else header.index(label)
    )


def _parse_csv(rows, lines, path, target, n_features, feature_names=None):
    """``X, y, names`` from the rows of a CSV file and their line numbers; see :func:`read_csv`."""
    header = None
    if _is_header(rows):
        header, rows, lines = [cell.strip() for cell in rows[0]], rows[1:], lines[1:]
    if not rows:
        raise UsageError(f"{path} has a header but no data rows")
    _check_columns(rows, lines, header, path)
    width = len(rows[0])
    if header is not None and feature_names is not None:
        feature_columns, label_column = _named_columns(header, feature_names, path, target)
    else:
        label_column = _label_column(header, width, path, target, n_features)
        feature_columns = [c for c in range(width) if c != label_column]
    X = np.empty((len(rows), len(feature_columns)), dtype=np.float32)
    for i, (row, line) in enumerate(zip(rows, lines)):
        for j, column in enumerate(feature_columns):
            X[i, j] = _feature(row[column], f"{path}, line {line}, column {column + 1}")
    names = None if header is None else [header[column] for column in feature_columns]
    if names is not None and len(set(names)) < len(names):
        names = None  # repeated names cannot be matched by name
    if label_column is None:
        return X, None, names
    texts = [row[label_column].strip() for row in rows]
    return X, _csv_labels(texts, path, lines), names


# Separators people use instead of ',', and their names in a message.
_OTHER_SEPARATORS = {";": "';'", "\t": "tabs"}


def _other_separator(rows):
    """The name of a separator of :data:`_OTHER_SEPARATORS` found on every
    row of a CSV file, in a row of one cell or in a cell before the last (a
    text label may hold one), or None."""
    for separator, name in _OTHER_SEPARATORS.items():
        if all(any(separator in cell for cell in row[:-1] or row) for row in rows):
            return name
    return None


def read_csv(path, target=None, n_features=None, feature_names=None):
    """``X, y, names`` from a CSV file; ``y`` is None when there is no label
    column, ``names`` (of the feature columns, in order) without a header
    row or when a name repeats.

    The first row may be a header (see :func:`_is_header`); a UTF-8 byte
    order mark is skipped; blank lines are skipped, and errors name the
    file's own line numbers. The label is the ``target`` column (needs a
    header), else the last column; with ``n_features`` given (prediction),
    a file of exactly ``n_features`` columns has no label column. Features
    must be finite numbers. A file that does not read as comma-separated and
    has ';' or a tab on every row is reported as separated by those. With
    ``feature_names`` (a model's ``feature_names_in_``), a file with a
    header has its columns matched by name (see :func:`_named_columns`).
    """
    rows, lines = _csv_rows(path)
    if not rows:
        raise UsageError(f"{path} is empty")
    try:
        return _parse_csv(rows, lines, path, target, n_features, feature_names)
    except UsageError:
        separator = _other_separator(rows)
        if separator is None:
            raise
        raise UsageError(
            f"{path} looks separated by {separator}: the reader needs commas between cells "
            "(and '.' as the decimal point)"
        ) from None


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
    file with a header, see :func:`read_csv`)."""
    path = existing_file(path)
    _check_extension(path)
    if path.suffix.lower() == ".npz":
        if target is not None:
            raise UsageError(
                "--target applies to .csv files only; a .npz file holds arrays X and y"
            )
        return (*read_npz(path), None)
    return read_csv(path, target=target, n_features=n_features, feature_names=feature_names)


def training_data(args):
    """``X, y, description, names`` for ``prune`` and ``ensemble``: ``names``
    of the feature columns of a ``.csv`` file with a header, else None."""
    if args.data is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        description = "scikit-learn digits (1797 8x8 images, pixels / 16)"
        return (X / 16).astype(np.float32), y, description, None
    X, y, names = load_data(args.data, target=args.target)
    if y is None:
        raise UsageError(f"{args.data} has no labels: a .npz file needs an array y")
    if len(np.unique(y)) < 2:
        raise UsageError(f"{args.data}: the labels have a single class; need at least 2")
    description = f"{args.data} ({X.shape[0]} samples, {int(np.prod(X.shape[1:]))} features)"
    return X, y, description, names


def single_row_classes(y):
    """The classes of ``y`` with a single row: they keep a split from being stratified."""
    classes, counts = np.unique(y, return_counts=True)
    return classes[counts < 2]


def split_test(X, y, test_size, random_state):
    """``X_train, X_test, y_train, y_test``, the test split stratified unless
    a class has a single row (see :func:`single_row_classes`); the test
    parts are None when ``test_size`` is 0."""
    from sklearn.model_selection import train_test_split

    if test_size == 0:
        return X, None, y, None
    stratify = None if single_row_classes(y).size else y
    try:
        return train_test_split(
            X, y, test_size=test_size, stratify=stratify, random_state=random_state
        )
    except ValueError as error:
        raise UsageError(f"cannot hold out a test split of {test_size}: {error}") from None


def output_dir(path):
    """The folder ``--output-dir``, created if needed and checked to take new
    files (with a probe file, created and deleted) before any training."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output-dir {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --output-dir {path}: {error}") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UsageError(
            f"cannot write files in --output-dir {path}: {error.strerror or _reason(error)}"
        ) from None
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
    if not _is_classifier(model):
        raise UsageError(f"{path} holds a {type(model).__name__}, not a classifier")
    return model


def _is_classifier(model):
    """Whether ``model`` is a classifier: scikit-learn says so, or it has ``classes_``."""
    from sklearn.base import is_classifier

    try:
        return is_classifier(model) or hasattr(model, "classes_")
    except Exception:  # an object without scikit-learn's tags
        return hasattr(model, "classes_")


# The files ``predict -o`` writes: a .csv file starts with a header row.
PREDICTION_EXTENSIONS = (".csv", ".txt")


def prediction_output(path):
    """The path of ``predict -o``: a .csv or a .txt file (text, one line per sample)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in PREDICTION_EXTENSIONS:
        raise UsageError(
            f"-o {path}: the predictions are written as text, to a .csv file (with a header "
            f"row) or a .txt file; got {path.suffix or 'no extension'!r}"
        )
    return path


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
