"""Files the command line reads and writes.

Training and prediction data come as ``.npz`` (arrays ``X`` and ``y``) or
``.csv`` (numbers, the label in the last column or in a named column, an
optional header row); models are joblib files; the pruning history and the
predictions are written as CSV. Every problem with a file is a
:class:`UsageError`, which the command line reports as one line.
"""

import csv
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


def read_csv(path, target=None, n_features=None):
    """``X, y`` from a CSV file; ``y`` is None when there is no label column.

    The first row is a header when one of its cells is not a number. The
    label is the ``target`` column (needs a header), else the last column;
    with ``n_features`` given (prediction), a file of exactly ``n_features``
    columns has no label column.
    """
    try:
        with open(path, newline="") as file:
            rows = [row for row in csv.reader(file) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    if not rows:
        raise UsageError(f"{path} is empty")
    header = None
    try:
        [float(cell) for cell in rows[0]]
    except ValueError:
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
    y = None if label_column is None else _labels([row[label_column].strip() for row in rows])
    return X, y


def read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path} as a .npz archive: {error}") from None
    if "X" not in arrays:
        raise UsageError(f"{path} has no array named 'X' (it has: {', '.join(arrays) or 'none'})")
    X = arrays["X"]
    if not np.issubdtype(X.dtype, np.number) or X.ndim < 2:
        raise UsageError(
            f"X in {path} must be a numeric array of 2 or more dimensions, got {X.dtype} {X.shape}"
        )
    y = arrays.get("y")
    if y is not None and len(y) != len(X):
        raise UsageError(f"X and y in {path} have different lengths: {len(X)} and {len(y)}")
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
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(keys + [f"units[{layer}]" for layer in layers])
        for record in history:
            per_layer = record["units_per_layer"]
            writer.writerow(
                [record[key] for key in keys] + [per_layer.get(layer, 0) for layer in layers]
            )


def dump(obj, path):
    import joblib

    try:
        joblib.dump(obj, path)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error}") from None


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
