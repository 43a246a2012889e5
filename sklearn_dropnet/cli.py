"""The ``sklearn-dropnet`` command line (also ``python -m sklearn_dropnet``).

Three subcommands:

- ``prune``: train a :class:`~sklearn_dropnet.DropNetClassifier` (an MLP) on
  a data file or on scikit-learn's digits, print the round-by-round table
  and the dense against pruned test accuracy, and write the fitted model,
  the history as CSV and the pruning curve as PNG;
- ``ensemble``: train ``M`` pruned networks and choose ``S`` of them with an
  :class:`~sklearn_dropnet.HQEnsembleClassifier`, then compare the team with
  the full ensemble on a test split;
- ``predict``: load a saved model and predict on a data file.

Data files are ``.npz`` (arrays ``X`` and ``y``) or ``.csv`` (numbers, the
label in the last column or in the column ``--target``, an optional header
row). User errors (a missing file, a bad extension, the wrong number of
features) end with a one-line message and exit status 2.
"""

import argparse
import csv
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

# The choices come from the library itself, so that the CLI cannot drift
# from what the estimators accept (importing this module already loads the
# package, so these imports cost nothing).
from ._dropnet import REINITS
from ._ensemble_selection import FINAL_CHOICES
from ._hq import _METHODS, _VOTING
from ._unit_scores import SCORES
from ._unit_selection import SCOPES
from .diversity import METRICS

__all__ = ["main", "build_parser"]

PROG = "sklearn-dropnet"
DATA_EXTENSIONS = (".npz", ".csv")


class _UsageError(Exception):
    """A user error: reported as one line, exit status 2."""


# ---------------------------------------------------------------------------
# reading and writing data
# ---------------------------------------------------------------------------


def _existing_file(path, what="data file"):
    path = Path(path).expanduser()
    if not path.exists():
        raise _UsageError(f"{what} not found: {path}")
    if not path.is_file():
        raise _UsageError(f"{what} is not a file: {path}")
    return path


def _check_extension(path):
    if path.suffix.lower() not in DATA_EXTENSIONS:
        raise _UsageError(
            f"cannot read {path}: expected a .npz file (arrays X and y) or a .csv file, "
            f"got {path.suffix or 'no extension'!r}"
        )


def _number(text, where):
    try:
        return float(text)
    except ValueError:
        raise _UsageError(f"{where}: {text!r} is not a number") from None


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


def _read_csv(path, target=None, n_features=None):
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
        raise _UsageError(f"cannot read {path}: {error}") from None
    if not rows:
        raise _UsageError(f"{path} is empty")
    header = None
    try:
        [float(cell) for cell in rows[0]]
    except ValueError:
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    if not rows:
        raise _UsageError(f"{path} has a header but no data rows")
    width = len(rows[0])
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise _UsageError(f"{path}, line {number}: {len(row)} columns, expected {width}")
    if header is not None and len(header) != width:
        raise _UsageError(f"{path}: the header has {len(header)} columns, the data {width}")

    if target is not None:
        if header is None:
            raise _UsageError(f"--target {target!r} needs a header row in {path}")
        if target not in header:
            raise _UsageError(
                f"no column {target!r} in {path}; the columns are: {', '.join(header)}"
            )
        label_column = header.index(target)
    elif n_features is not None and width == n_features:
        label_column = None
    elif n_features is not None and width != n_features + 1:
        raise _UsageError(
            f"{path} has {width} columns, but the model expects {n_features} features "
            f"({n_features + 1} columns with a label column)"
        )
    else:
        label_column = width - 1
    if label_column is not None and width < 2:
        raise _UsageError(f"{path} needs at least one feature column besides the label")

    feature_columns = [c for c in range(width) if c != label_column]
    X = np.empty((len(rows), len(feature_columns)), dtype=np.float32)
    for i, row in enumerate(rows):
        line = i + (2 if header else 1)
        for j, column in enumerate(feature_columns):
            X[i, j] = _number(row[column], f"{path}, line {line}, column {column + 1}")
    y = None if label_column is None else _labels([row[label_column].strip() for row in rows])
    return X, y


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise _UsageError(f"cannot read {path} as a .npz archive: {error}") from None
    if "X" not in arrays:
        raise _UsageError(f"{path} has no array named 'X' (it has: {', '.join(arrays) or 'none'})")
    X = arrays["X"]
    if not np.issubdtype(X.dtype, np.number) or X.ndim < 2:
        raise _UsageError(
            f"X in {path} must be a numeric array of 2 or more dimensions, got {X.dtype} {X.shape}"
        )
    y = arrays.get("y")
    if y is not None and len(y) != len(X):
        raise _UsageError(f"X and y in {path} have different lengths: {len(X)} and {len(y)}")
    return X.astype(np.float32), y


def _load_data(path, target=None, n_features=None):
    """Read ``X, y`` from a ``.npz`` or ``.csv`` file (``y`` may be None)."""
    path = _existing_file(path)
    _check_extension(path)
    if path.suffix.lower() == ".npz":
        if target is not None:
            raise _UsageError(
                "--target applies to .csv files only; a .npz file holds arrays X and y"
            )
        return _read_npz(path)
    return _read_csv(path, target=target, n_features=n_features)


def _training_data(args):
    """``X, y, description`` for ``prune`` and ``ensemble``."""
    if args.data is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return (X / 16).astype(np.float32), y, "scikit-learn digits (1797 8x8 images, pixels / 16)"
    X, y = _load_data(args.data, target=args.target)
    if y is None:
        raise _UsageError(f"{args.data} has no labels: a .npz file needs an array y")
    if len(np.unique(y)) < 2:
        raise _UsageError(f"{args.data}: the labels have a single class; need at least 2")
    return X, y, f"{args.data} ({X.shape[0]} samples, {int(np.prod(X.shape[1:]))} features)"


def _split(X, y, test_size, random_state):
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
        raise _UsageError(f"cannot hold out a test split of {test_size}: {error}") from None


def _output_dir(path):
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise _UsageError(f"--output-dir {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _UsageError(f"cannot create --output-dir {path}: {error}") from None
    return path


# ---------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------


def _fraction(low, high, low_open=False, high_open=True):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"{value} is not in {interval}")
        return value

    return parse


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _layer_sizes(text):
    try:
        sizes = tuple(int(part) for part in text.replace(" ", ",").split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 64,32"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one or more positive layer widths, e.g. 64,32"
        )
    return sizes


# ---------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    """Help with the defaults that mean something, and descriptions that keep
    their indented blocks (file lists, examples) as written."""

    def _fill_text(self, text, width, indent):
        paragraphs = []
        for paragraph in text.split("\n\n"):
            if paragraph.startswith("  "):
                paragraphs.append(textwrap.indent(paragraph, indent))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "default:" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        if isinstance(default, tuple):
            default = ",".join(str(value) for value in default)
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _data_options(parser):
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        metavar="PATH",
        help="training data: a .npz file with arrays X (n_samples, n_features...) and y "
        "(n_samples,), or a .csv file of numbers with the label in the last column (or in "
        "--target) and an optional header row. Default: scikit-learn's digits, pixels "
        "scaled to [0, 1]",
    )
    group.add_argument(
        "--target",
        metavar="NAME",
        help="for a .csv file with a header row: the name of the label column "
        "(default: the last column)",
    )
    group.add_argument(
        "--test-size",
        metavar="FRACTION",
        type=_fraction(0, 1),
        default=0.2,
        help="share of the data held out (stratified) to report test accuracy; 0 reports none",
    )


def _dropnet_options(parser, prune_ratio, max_epochs, hidden):
    group = parser.add_argument_group("DropNet (see DropNetClassifier)")
    group.add_argument(
        "--prune-ratio",
        metavar="FRACTION",
        type=_fraction(0, 1),
        default=prune_ratio,
        help="fraction of the hidden units to remove, in [0, 1); 0 trains the dense network only",
    )
    group.add_argument(
        "--drop-fraction",
        metavar="FRACTION",
        type=_fraction(0, 1, low_open=True),
        default=0.2,
        help="fraction of the surviving units removed per round (the paper's p; 0.2 is its "
        "recommendation)",
    )
    group.add_argument(
        "--scope",
        choices=SCOPES,
        default="layer",
        help="'layer' drops that fraction of each layer; 'global' ranks all units together "
        "after dividing each layer's scores by its mean; 'global_raw' ranks raw scores "
        "together, as in the paper",
    )
    group.add_argument(
        "--unit-score",
        choices=SCORES,
        default="activation",
        help="how units are ranked, lowest dropped first: 'activation' is DropNet (mean "
        "|post-activation|), 'apoz' drops the units most often zero, 'l1' the smallest weight "
        "norms, 'random' at random, 'max' the highest activations (a sanity baseline)",
    )
    group.add_argument(
        "--reinit",
        choices=REINITS,
        default="rewind",
        help="weights the survivors restart from each round: their initial values "
        "(the paper's default), fresh random ones, or the trained ones (fine-tuning)",
    )
    group.add_argument(
        "--min-accuracy-ratio",
        type=_fraction(0, 1, low_open=True, high_open=False),
        default=None,
        metavar="KAPPA",
        help="stop early when validation accuracy falls below KAPPA times the dense "
        "accuracy, and keep the last round that met it (default: no such stop)",
    )
    group.add_argument(
        "--hidden-layer-sizes",
        type=_layer_sizes,
        default=hidden,
        metavar="N,N,...",
        help="widths of the MLP's hidden layers, comma-separated (these units are pruned)",
    )
    group.add_argument(
        "--max-epochs",
        metavar="N",
        type=_positive_int,
        default=max_epochs,
        help="most epochs per round; early stopping on the validation loss usually stops sooner",
    )
    group.add_argument(
        "--lr", type=_positive_float, default=1e-3, metavar="RATE", help="learning rate (Adam)"
    )
    group.add_argument(
        "--batch-size", type=_positive_int, default=32, metavar="N", help="mini-batch size"
    )
    group.add_argument(
        "--patience",
        type=_positive_int,
        default=5,
        metavar="N",
        help="early-stopping patience in epochs",
    )
    group.add_argument(
        "--validation-fraction",
        metavar="FRACTION",
        type=_fraction(0, 1),
        default=0.1,
        help="share of the training data held out for early stopping and the validation "
        "accuracy in the table",
    )


def _run_options(parser, output_dir):
    group = parser.add_argument_group("run")
    group.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the test split, the initial weights and the batch order",
    )
    group.add_argument(
        "--device",
        default="cpu",
        metavar="DEVICE",
        help="where to train: 'cpu', 'cuda', 'cuda:1', 'mps', ...",
    )
    group.add_argument(
        "--threads",
        metavar="N",
        type=_positive_int,
        default=1,
        help="torch CPU threads; small networks train fastest on one",
    )
    group.add_argument(
        "--output-dir",
        default=output_dir,
        metavar="DIR",
        help="folder for the output files (created if needed; files in it are overwritten)",
    )
    group.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser():
    """Build the ``argparse`` parser of ``sklearn-dropnet`` and its subcommands.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser; each subcommand stores its function as ``run``.

    Examples
    --------
    >>> from sklearn_dropnet.cli import build_parser
    >>> args = build_parser().parse_args(["prune", "--prune-ratio", "0.5"])
    >>> args.command, args.prune_ratio, args.drop_fraction, args.output_dir
    ('prune', 0.5, 0.2, 'dropnet-output')
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_Formatter,
        description="DropNet pruning and HQ ensemble pruning from the command line.\n\n"
        "  sklearn-dropnet prune                       # digits, 80% of units removed\n"
        "  sklearn-dropnet prune --data train.csv --prune-ratio 0.5\n"
        "  sklearn-dropnet ensemble --n-estimators 8 --n-select 3\n"
        "  sklearn-dropnet predict dropnet-output/model.joblib new.csv -o labels.csv\n\n"
        "Run 'sklearn-dropnet COMMAND --help' for the options of a command.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    prune = commands.add_parser(
        "prune",
        formatter_class=_Formatter,
        help="prune an MLP with DropNet and save it",
        description="Train an MLP with DropNetClassifier, removing units round by round "
        "until --prune-ratio of them are gone. Prints one row per round (round 0 is the "
        "dense network) and the test accuracy of the dense and the pruned network, and "
        "writes to --output-dir:\n\n"
        "  model.joblib          the fitted estimator (load it with joblib.load or\n"
        "                        'sklearn-dropnet predict')\n"
        "  pruning_history.csv   the table, with the units of each layer\n"
        "  pruning_curve.png     validation accuracy against the share of units left",
    )
    _data_options(prune)
    _dropnet_options(prune, prune_ratio=0.8, max_epochs=100, hidden=(256, 128))
    _run_options(prune, output_dir="dropnet-output")
    prune.set_defaults(run=_prune)

    ensemble = commands.add_parser(
        "ensemble",
        formatter_class=_Formatter,
        help="train M pruned networks and choose a team of S with HQ",
        description="Train --n-estimators DropNet networks (each pruned with the DropNet "
        "options below, each with its own seed) and choose a team of at most --n-select "
        "of them with HQEnsembleClassifier, on a held-out part of the training data. "
        "Prints each member's and the team's size and test accuracy against the full "
        "ensemble, and writes to --output-dir:\n\n"
        "  ensemble.joblib       the fitted HQEnsembleClassifier\n"
        "  hq_candidates.png     the teams examined: focal diversity against held-out\n"
        "                        accuracy, the chosen team marked",
    )
    group = ensemble.add_argument_group("ensemble (see HQEnsembleClassifier)")
    group.add_argument(
        "--n-estimators",
        "-M",
        type=_positive_int,
        default=8,
        metavar="M",
        help="number of networks trained, M",
    )
    group.add_argument(
        "--n-select",
        "-S",
        type=_positive_int,
        default=4,
        metavar="S",
        help="largest team HQ grows, S (the picks for 'greedy', the team size for 'top')",
    )
    group.add_argument(
        "--method",
        choices=_METHODS,
        default="hq",
        help="'hq': hierarchical pruning by focal diversity; 'greedy': Caruana et al.'s forward "
        "selection; 'top': the S most accurate members; 'all': every member",
    )
    group.add_argument(
        "--metric",
        choices=METRICS,
        default="generalized_diversity",
        metavar="METRIC",
        help="diversity metric behind the focal diversity: " + ", ".join(METRICS),
    )
    group.add_argument(
        "--final-choice",
        choices=FINAL_CHOICES,
        default="one_se",
        help="how HQ picks its team among the survivors: 'one_se', the largest team within one "
        "standard error of the best held-out accuracy (then the lowest log loss); 'accuracy', "
        "the most accurate (the paper's rule)",
    )
    group.add_argument(
        "--bootstrap",
        action="store_true",
        help="train each member on its own bootstrap sample (bagging: more diverse members, "
        "each weaker)",
    )
    group.add_argument(
        "--voting",
        choices=_VOTING,
        default="soft",
        help="how the team combines predictions",
    )
    group.add_argument(
        "--selection-fraction",
        metavar="FRACTION",
        type=_fraction(0, 1, low_open=True),
        default=0.2,
        help="share of the training data held out to choose the team (never the test split)",
    )
    group.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        metavar="N",
        help="members trained in parallel (-1: one per CPU core); each member's torch "
        "threads are its share of the cores, which overrides --threads",
    )
    _data_options(ensemble)
    _dropnet_options(ensemble, prune_ratio=0.5, max_epochs=30, hidden=(64, 32))
    _run_options(ensemble, output_dir="dropnet-output")
    ensemble.set_defaults(run=_ensemble)

    predict = commands.add_parser(
        "predict",
        formatter_class=_Formatter,
        help="predict with a saved model",
        description="Load a model saved by 'prune' or 'ensemble' (or any scikit-learn "
        "classifier saved with joblib.dump) and predict the class of every sample of a "
        ".npz file (array X; y, when present, is used to report accuracy) or a .csv file "
        "(features only, or features and a label column: the last column, or --target). "
        "Only load model files you trust: joblib files can run code when loaded.",
    )
    predict.add_argument(
        "model", metavar="MODEL", help="the saved model, e.g. dropnet-output/model.joblib"
    )
    predict.add_argument("data", metavar="DATA", help="the samples to predict, a .npz or .csv file")
    predict.add_argument(
        "--target",
        metavar="NAME",
        help="for a .csv file with a header: the label column to leave out",
    )
    predict.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write the predictions to this file, one per line (a .csv gets a header); "
        "default: standard output",
    )
    predict.add_argument(
        "--proba",
        action="store_true",
        help="write the class probabilities (one column per class) instead of the labels",
    )
    predict.set_defaults(run=_predict)
    return parser


# ---------------------------------------------------------------------------
# the commands
# ---------------------------------------------------------------------------


def _configure_torch(args):
    """Set torch's CPU threads; check that ``--device`` exists here."""
    import torch

    torch.set_num_threads(args.threads)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise _UsageError(f"--device {args.device!r} is not a device name") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise _UsageError(f"--device {args.device}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise _UsageError(f"--device {args.device}: MPS is not available on this machine")


def _dropnet(args, verbose):
    from . import DropNetClassifier

    return DropNetClassifier(
        prune_ratio=args.prune_ratio,
        drop_fraction=args.drop_fraction,
        scope=args.scope,
        unit_score=args.unit_score,
        reinit=args.reinit,
        min_accuracy_ratio=args.min_accuracy_ratio,
        max_epochs=args.max_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        patience=args.patience,
        validation_fraction=args.validation_fraction,
        device=args.device,
        random_state=args.random_state,
        verbose=verbose,
        module__hidden_layer_sizes=args.hidden_layer_sizes,
    )


def _fit(estimator, X, y, what):
    try:
        return estimator.fit(X, y)
    except (ValueError, TypeError) as error:
        raise _UsageError(f"cannot train {what}: {error}") from None


def _history_table(history):
    """The round-by-round table, as lines of text."""
    columns = [
        ("round", "{:>5}", "round"),
        ("units", "{:>7}", "units"),
        ("fraction_left", "{:>9.3f}", "fraction"),
        ("params", "{:>10,}", "params"),
        ("macs", "{:>10,}", "MACs"),
        ("valid_accuracy", "{:>10.4f}", "valid acc"),
        ("epochs", "{:>6}", "epochs"),
        ("seconds", "{:>8.1f}", "seconds"),
    ]
    widths = [len(fmt.format(history[0][key])) for key, fmt, _ in columns]
    widths = [max(w, len(title)) for w, (_, _, title) in zip(widths, columns)]
    lines = ["  ".join(title.rjust(w) for (_, _, title), w in zip(columns, widths)) + "  accepted"]
    for record in history:
        cells = [fmt.format(record[key]).rjust(w) for (key, fmt, _), w in zip(columns, widths)]
        lines.append(
            "  ".join(cells)
            + ("  yes" if record.get("accepted", True) else "  no (below --min-accuracy-ratio)")
        )
    return lines


def _write_history_csv(history, path):
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


def _save_plot(draw, path, args):
    """Draw with ``draw(ax)`` and save to ``path``; returns whether it did.

    A bare :class:`~matplotlib.figure.Figure` needs no GUI backend and leaves
    pyplot's state alone.
    """
    if args.no_plot:
        return False
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(
            f"note: matplotlib is not installed, {path.name} was not written "
            "(pip install sklearn-dropnet[plot])",
            file=sys.stderr,
        )
        return False
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    draw(fig.subplots())
    fig.savefig(path, dpi=120)
    return True


def _dump(obj, path):
    import joblib

    try:
        joblib.dump(obj, path)
    except OSError as error:
        raise _UsageError(f"cannot write {path}: {error}") from None


def _prune(args):
    from .plotting import plot_pruning_curve

    _configure_torch(args)
    X, y, description = _training_data(args)
    X_train, X_test, y_train, y_test = _split(X, y, args.test_size, args.random_state)
    output = _output_dir(args.output_dir)
    print(
        f"data: {description}; {len(X_train)} training samples, "
        f"{0 if X_test is None else len(X_test)} test samples"
    )

    # Train the dense network first (prune_ratio=0) to score it on the test
    # split, then prune it further: prune() continues the same run.
    estimator = _dropnet(args, verbose=0)
    target_ratio = estimator.prune_ratio
    estimator.set_params(prune_ratio=0.0)
    print("training the dense network ...", flush=True)
    start = time.perf_counter()
    _fit(estimator, X_train, y_train, "the dense network")
    dense_accuracy = None if X_test is None else estimator.score(X_test, y_test)
    if target_ratio > 0:
        print(f"pruning until {target_ratio:.0%} of the units are removed ...", flush=True)
        estimator.set_params(verbose=0 if args.quiet else 1)
        estimator.prune(X_train, y_train, prune_ratio=target_ratio)
    estimator.set_params(prune_ratio=target_ratio, verbose=0)
    elapsed = time.perf_counter() - start

    history = estimator.pruning_history_
    print()
    print("\n".join(_history_table(history)))
    print()
    final = max((r for r in history if r.get("accepted", True)), key=lambda r: r["round"])
    dense = history[0]
    print(f"units:  {dense['units']} -> {final['units']} ({final['fraction_left']:.1%} left)")
    print(f"params: {dense['params']:,} -> {final['params']:,}")
    print(f"MACs:   {dense['macs']:,} -> {final['macs']:,} per sample")
    if X_test is not None:
        pruned_accuracy = estimator.score(X_test, y_test)
        print(
            f"test accuracy: dense {dense_accuracy:.4f}, pruned {pruned_accuracy:.4f} "
            f"({len(X_test)} samples)"
        )
    print(f"total time: {elapsed:.1f} s")

    model_path = output / "model.joblib"
    _dump(estimator, model_path)
    history_path = output / "pruning_history.csv"
    _write_history_csv(history, history_path)
    written = [model_path, history_path]
    plot_path = output / "pruning_curve.png"

    def draw(ax):
        plot_pruning_curve(
            estimator, ax=ax, label=f"DropNet ({args.unit_score}, {args.scope})", annotate=True
        )
        ax.set_title(f"Pruning curve: {final['fraction_left']:.0%} of units left")

    if _save_plot(draw, plot_path, args):
        written.append(plot_path)
    print("wrote: " + ", ".join(str(path) for path in written))
    return 0


def _ensemble_proba(members, X, voting):
    probas = np.stack([np.asarray(m.predict_proba(X), dtype=float) for m in members])
    if voting == "hard":
        probas = np.eye(probas.shape[2])[probas.argmax(axis=2)]
    return probas.mean(axis=0)


def _ensemble(args):
    from . import HQEnsembleClassifier
    from .plotting import plot_hq_candidates

    _configure_torch(args)
    X, y, description = _training_data(args)
    X_train, X_test, y_train, y_test = _split(X, y, args.test_size, args.random_state)
    output = _output_dir(args.output_dir)
    if args.method != "all" and args.n_select > args.n_estimators:
        raise _UsageError(
            f"--n-select {args.n_select} is larger than --n-estimators {args.n_estimators}"
        )
    if args.method == "hq" and args.n_select < 2:
        raise _UsageError("--method hq needs --n-select of at least 2")
    print(
        f"data: {description}; {len(X_train)} training samples, "
        f"{0 if X_test is None else len(X_test)} test samples"
    )
    print(
        f"training {args.n_estimators} DropNet networks "
        f"(prune ratio {args.prune_ratio}, n_jobs={args.n_jobs}) ...",
        flush=True,
    )
    hq = HQEnsembleClassifier(
        _dropnet(args, verbose=0),
        n_estimators=args.n_estimators,
        n_select=args.n_select,
        method=args.method,
        metric=args.metric,
        final_choice=args.final_choice,
        voting=args.voting,
        validation_fraction=args.selection_fraction,
        bootstrap=args.bootstrap,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
    )
    start = time.perf_counter()
    _fit(hq, X_train, y_train, "the ensemble")
    elapsed = time.perf_counter() - start

    team = [int(i) for i in hq.selected_]
    print()
    header = f"{'member':>6}  {'units':>6}  {'params':>9}  {'test acc':>8}  in team"
    print(header)
    for i, member in enumerate(hq.estimators_):
        record = member.pruning_history_[-1]
        accuracy = (
            ""
            if X_test is None
            else f"{np.mean(hq.classes_[member.predict(X_test)] == y_test):.4f}"
        )
        picked = "yes" + (f" (x{team.count(i)})" if team.count(i) > 1 else "") if i in team else ""
        print(f"{i:>6}  {record['units']:>6}  {record['params']:>9,}  {accuracy:>8}  {picked}")
    print()
    params_all = sum(m.pruning_history_[-1]["params"] for m in hq.estimators_)
    params_team = sum(hq.estimators_[i].pruning_history_[-1]["params"] for i in set(team))
    print(
        f"team ({args.method}, {len(team)} of {len(hq.estimators_)}): members {team}, "
        f"{len(hq.candidates_['team'])} teams examined"
    )
    print(f"params: all members {params_all:,}, team {params_team:,}")
    if X_test is not None:
        full = hq.classes_[_ensemble_proba(hq.estimators_, X_test, args.voting).argmax(axis=1)]
        print(
            f"test accuracy: full ensemble of {len(hq.estimators_)} {np.mean(full == y_test):.4f}, "
            f"team of {len(team)} {hq.score(X_test, y_test):.4f} ({len(X_test)} samples)"
        )
    print(f"total time: {elapsed:.1f} s")

    model_path = output / "ensemble.joblib"
    _dump(hq, model_path)
    written = [model_path]
    plot_path = output / "hq_candidates.png"

    def draw(ax):
        plot_hq_candidates(hq, ax=ax)
        ax.set_title(f"{args.method}: {len(hq.candidates_['team'])} teams examined")

    if _save_plot(draw, plot_path, args):
        written.append(plot_path)
    print("wrote: " + ", ".join(str(path) for path in written))
    return 0


def _load_model(path):
    import joblib

    path = _existing_file(path, "model file")
    try:
        model = joblib.load(path)
    except Exception as error:  # unpickling can fail in many ways
        raise _UsageError(
            f"cannot load a model from {path}: {type(error).__name__}: {error}"
        ) from None
    if not hasattr(model, "predict"):
        raise _UsageError(
            f"{path} holds a {type(model).__name__}, not a fitted estimator with predict"
        )
    return model


def _predict(args):
    model = _load_model(args.model)
    n_features = getattr(model, "n_features_in_", None)
    X, y = _load_data(args.data, target=args.target, n_features=n_features)
    if n_features is not None and X.ndim == 2 and X.shape[1] != n_features:
        raise _UsageError(
            f"{args.data} has {X.shape[1]} feature columns, but the model expects {n_features}"
        )
    try:
        if args.proba:
            if not hasattr(model, "predict_proba"):
                raise _UsageError(f"{type(model).__name__} has no predict_proba; drop --proba")
            result = model.predict_proba(X)
        else:
            result = model.predict(X)
    except ValueError as error:
        raise _UsageError(f"cannot predict on {args.data}: {error}") from None

    classes = list(getattr(model, "classes_", range(np.shape(result)[-1])))
    if args.output is None:
        _write_predictions(sys.stdout, result, classes, args.proba, header=args.proba)
    else:
        path = Path(args.output).expanduser()
        try:
            with open(path, "w", newline="") as file:
                _write_predictions(
                    file, result, classes, args.proba, header=path.suffix.lower() == ".csv"
                )
        except OSError as error:
            raise _UsageError(f"cannot write {path}: {error}") from None
    if y is not None and not args.proba:
        accuracy = np.mean(np.asarray(result).astype(str) == np.asarray(y).astype(str))
        print(
            f"accuracy on the labels in {args.data}: {accuracy:.4f} ({len(y)} samples)",
            file=sys.stderr,
        )
    if args.output is not None:
        print(f"wrote {len(result)} predictions to {args.output}", file=sys.stderr)
    return 0


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


def main(argv=None):
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments, without the program name; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on a user error (printed as one line on standard
        error) or a bad option.

    Examples
    --------
    >>> from sklearn_dropnet.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    sklearn-dropnet ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, --version and usage errors
        return exit.code if isinstance(exit.code, int) else 2
    try:
        return args.run(args)
    except _UsageError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
