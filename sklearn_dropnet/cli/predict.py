"""``sklearn-dropnet predict``: load a saved model and predict on a data file,
to standard output or to a ``.csv`` or ``.txt`` file; the accuracy, when the
file holds labels, goes to standard error."""

import csv
import sys
import warnings
from pathlib import Path

import numpy as np

from .errors import UsageError, first_line, some_labels
from .io import load_data, load_model
from .outputs import writing
from .parser import PROG, Command

# The files ``predict -o`` writes: a .csv file starts with a header row.
PREDICTION_EXTENSIONS = (".csv", ".txt")


def _add_options(parser):
    parser.add_argument(
        "model", metavar="MODEL", help="the saved model, e.g. dropnet-output/model.joblib"
    )
    parser.add_argument("data", metavar="DATA", help="the samples to predict, a .npz or .csv file")
    parser.add_argument(
        "--target",
        metavar="NAME",
        help="for a .csv file with a header: the label column to leave out",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write the predictions to this file, one sample per line: a .csv file (with a "
        "header row) or a .txt file (without); other extensions are refused. Default: "
        "standard output",
    )
    parser.add_argument(
        "--proba",
        action="store_true",
        help="write the class probabilities (one column per class) instead of the labels",
    )


def _prediction_output(path):
    """The path of ``predict -o``: a .csv or a .txt file (text, one line per sample)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in PREDICTION_EXTENSIONS:
        raise UsageError(
            f"-o {path}: the predictions are written as text, to a .csv file (with a header "
            f"row) or a .txt file; got {path.suffix or 'no extension'!r}"
        )
    return path


def _sample_shape(model):
    """The shape of one sample ``model`` takes, e.g. ``(64,)`` or ``(1, 8, 8)``; None if unknown.

    :class:`~sklearn_dropnet.DropNetClassifier` records it as ``input_shape_``
    (an ensemble's members do); other estimators only ``n_features_in_``.
    """
    members = getattr(model, "estimators_", None)
    candidates = [model, *members[:1]] if isinstance(members, list) else [model]
    for candidate in candidates:
        shape = getattr(candidate, "input_shape_", None)
        if shape is not None:
            return tuple(shape)
    n_features = getattr(model, "n_features_in_", None)
    return None if n_features is None else (n_features,)


def model_data(model, data, target=None):
    """``X, y`` of the data file ``data`` (``predict``'s DATA, ``export --data``),
    checked against the samples ``model`` takes; ``target``: a .csv file's label column."""
    shape = _sample_shape(model)
    if shape is not None and len(shape) > 1 and Path(data).suffix.lower() == ".csv":
        raise UsageError(
            f"the model takes samples of shape {shape}, and a .csv file holds flat rows: "
            f"give a .npz file with X of shape (n_samples, {', '.join(map(str, shape))})"
        )
    n_features = None if shape is None else shape[0]
    names = getattr(model, "feature_names_in_", None)
    X, y, _ = load_data(
        data,
        target=target,
        n_features=n_features,
        feature_names=None if names is None else [str(name) for name in names],
    )
    if shape is None or X.shape[1:] == shape:
        return X, y
    if len(shape) == 1 and X.ndim == 2:
        raise UsageError(
            f"{data} has {X.shape[1]} feature columns, but the model expects {shape[0]}"
        )
    raise UsageError(
        f"{data} has samples of shape {X.shape[1:]}, but the model expects samples "
        f"of shape {shape}"
    )


def _comparable(labels, other):
    """``labels`` in a form for ``==`` against ``other``'s: numbers when one of
    the two is numeric and both are (or read as) numbers, else text."""
    labels, other = np.asarray(labels), np.asarray(other)
    if labels.dtype.kind in "biuf" or other.dtype.kind in "biuf":
        try:
            return labels.astype(np.float64), other.astype(np.float64)
        except (TypeError, ValueError):
            pass
    return labels.astype(str), other.astype(str)


def _accuracy_note(predicted, y, classes, data):
    """The line ``predict`` reports on standard error about the labels of ``data``."""
    known_classes, y_as_classes = _comparable(classes, y)
    if not np.isin(y_as_classes, known_classes).any():
        return (
            f"no accuracy: none of the labels in {data} ({some_labels(np.unique(y))}) is one of "
            f"the model's classes ({some_labels(classes)})"
        )
    predicted, y = _comparable(predicted, y)
    return f"accuracy on the labels in {data}: {np.mean(predicted == y):.4f} ({len(y)} samples)"


def _write_predictions(file, result, classes, proba, header):
    writer = csv.writer(file, lineterminator="\n")
    if proba:
        if header:
            writer.writerow([str(c) for c in classes])
        writer.writerows([[f"{p:.6g}" for p in row] for row in result])
    else:
        if header:
            writer.writerow(["prediction"])
        writer.writerows([[label] for label in result])


def _run(args):
    output = None if args.output is None else _prediction_output(args.output)
    model = load_model(args.model, data=args.data)
    X, y = model_data(model, args.data, args.target)
    if args.proba and not hasattr(model, "predict_proba"):
        raise UsageError(f"{type(model).__name__} has no predict_proba; drop --proba")
    try:
        with warnings.catch_warnings():
            # The columns were matched by name (or by position, for a file
            # with no header): X, an array, need not be warned of for having none.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            result = model.predict_proba(X) if args.proba else model.predict(X)
    except ValueError as error:
        raise UsageError(f"cannot predict on {args.data}: {first_line(error)}") from None

    classes = list(getattr(model, "classes_", range(np.shape(result)[-1])))
    if output is None:
        _write_predictions(sys.stdout, result, classes, args.proba, header=args.proba)
    else:
        with writing(output), open(output, "w", newline="") as file:
            _write_predictions(
                file, result, classes, args.proba, header=output.suffix.lower() == ".csv"
            )
    if y is not None and not args.proba:
        print(_accuracy_note(result, y, classes, args.data), file=sys.stderr)
    if args.output is not None:
        print(f"wrote {len(result)} predictions to {args.output}", file=sys.stderr)
    return 0


COMMAND = Command(
    help="predict with a saved model",
    description="Load a model saved by 'prune' or 'ensemble' (or any scikit-learn "
    "classifier saved with joblib.dump) and predict the class of every sample of a "
    ".npz file (array X; y, when present, is used to report accuracy) or a .csv file "
    "(features only, or features and a label column: the last column, or --target). "
    "A model trained on a .csv file with a header knows its columns by name: a file "
    "with a header then has them matched by name, in any order, and the column left "
    "over is the label. "
    "Only load model files you trust: joblib files can run code when loaded.",
    add_options=_add_options,
    run=_run,
    hints={
        "--data": "predict takes the data file as its second argument, without --data: "
        f"{PROG} predict MODEL DATA"
    },
)
