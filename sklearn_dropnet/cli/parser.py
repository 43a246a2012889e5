"""The command line's ``argparse`` parser: the types of its options, the
groups of options that mirror an estimator's parameters or that several
commands share, and the parser built from a table of commands.

The choices come from the library itself, so that the command line cannot
drift from what the estimators accept. Each command (``prune.py``,
``ensemble.py``, ``predict.py``) is a :class:`Command`: its texts, the
options it adds to its parser, and what it runs; the table of them is
:data:`sklearn_dropnet.cli.main.COMMANDS`.
"""

import argparse
import difflib
import functools
import inspect
import math
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from ..ensemble._diversity import METRICS

PROG = "sklearn-dropnet"


# ---------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------


def _finite_float(text):
    """``text`` as a float; NaN and infinities are usage errors."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _fraction(low, high, low_open=False, high_open=True):
    def parse(text):
        value = _finite_float(text)
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"{value} is not in {interval}")
        return value

    return parse


def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)

# The seeds NumPy and scikit-learn take: 0 to 2**32 - 1.
_MAX_SEED = 2**32 - 1


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _seed(text):
    """``text`` as a random seed, an integer from 0 to 2**32 - 1."""
    value = _integer(text)
    if not 0 <= value <= _MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"{value} is not a seed: give an integer from 0 to {_MAX_SEED}"
        )
    return value


def _n_jobs(text):
    """``text`` as joblib's number of jobs: positive, or negative for the
    CPU cores but ``-1 - N`` of them; 0 is an error."""
    value = _integer(text)
    if value == 0:
        raise argparse.ArgumentTypeError(
            "0 runs nothing: give a positive number of jobs, or -1 for one per CPU core"
        )
    return value


def _positive_float(text):
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _from_interval(interval):
    """An argparse type for a number in a scikit-learn ``Interval`` constraint."""
    is_int = interval.type is Integral

    def parse(text):
        value = _integer(text) if is_int else _finite_float(text)
        if not interval.is_satisfied_by(value):
            raise argparse.ArgumentTypeError(f"{value} is not {interval}")
        return value

    return parse


def _default(estimator, param):
    return inspect.signature(estimator).parameters[param].default


def estimator_option(group, *flags, estimator, param, **kwargs):
    """Add ``flag`` for ``estimator``'s parameter ``param``: its choices or
    its range from the class's ``_parameter_constraints``, and its default
    from ``__init__`` (unless ``kwargs`` give another)."""
    kwargs.setdefault("default", _default(estimator, param))
    for constraint in estimator._parameter_constraints[param]:
        if isinstance(constraint, StrOptions):
            registry = getattr(constraint, "_registry", None)  # RegistryNames keep their order
            kwargs["choices"] = list(registry) if registry is not None else sorted(constraint.options)
        elif isinstance(constraint, Interval):
            kwargs["type"] = _from_interval(constraint)
    group.add_argument(*flags, **kwargs)


def _layer_sizes(text):
    try:  # commas, spaces or both between the widths; an empty entry ("8,,4") is an error
        sizes = tuple(int(part) for part in re.split(r"\s*,\s*|\s+", text.strip()))
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
# the parser and its commands
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
            # "is", not "in": 0 == False, and a default of 0 means something.
            or any(default is value for value in (None, False, argparse.SUPPRESS))
            or not action.option_strings
        ):
            return text
        if isinstance(default, tuple):
            default = ",".join(str(value) for value in default)
        return f"{text} (default: {str(default).replace('%', '%%')})"


class _Parser(argparse.ArgumentParser):
    """The top-level parser: an option its subcommand does not know is
    reported by that subcommand, with its usage and a hint (see
    :func:`_unrecognized`)."""

    def parse_args(self, args=None, namespace=None):
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            subparser, command = self.commands.get(getattr(args, "command", None), (self, None))
            hints = {} if command is None else command.hints
            subparser.error(_unrecognized(subparser, hints, extras))
        return args


def _unrecognized(parser, hints, extras):
    """The message for arguments ``parser`` does not take, with the hint of
    ``hints`` (option -> what to do instead) for one of them, else the
    closest option."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    for extra in extras:
        hint = hints.get(extra.split("=")[0])
        if hint is not None:
            return f"{message} ({hint})"
    known = [option for action in parser._actions for option in action.option_strings]
    for extra in extras:
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.split("=")[0], known, n=1)
            if close:
                return f"{message} (did you mean {close[0]}?)"
    return message


def data_options(parser):
    """The training data: ``--data``, ``--target``, ``--test-size``."""
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


def dropnet_options(parser, prune_ratio, max_epochs, hidden):
    """The parameters of :class:`~sklearn_dropnet.DropNetClassifier`, with
    the defaults given for ``--prune-ratio``, ``--max-epochs`` and
    ``--hidden-layer-sizes``."""
    from .._dropnet import DropNetClassifier as estimator

    group = parser.add_argument_group("DropNet (see DropNetClassifier)")
    option = functools.partial(estimator_option, group, estimator=estimator)
    option(
        "--prune-ratio",
        param="prune_ratio",
        metavar="FRACTION",
        default=prune_ratio,
        help="fraction of the hidden units to remove, in [0, 1); 0 trains the dense network only",
    )
    option(
        "--drop-fraction",
        param="drop_fraction",
        metavar="FRACTION",
        help="fraction of the surviving units removed per round (the paper's p; 0.2 is its "
        "recommendation)",
    )
    option(
        "--scope",
        param="scope",
        help="'layer' drops that fraction of each layer; 'global' ranks all units together "
        "after dividing each layer's scores by its mean; 'global_raw' ranks raw scores "
        "together, as in the paper",
    )
    option(
        "--round-to",
        param="round_to",
        metavar="N",
        help="keep every layer's units a multiple of N (8 or 16: the channel blocks CPU and GPU "
        "kernels compute fastest); 1 keeps any number",
    )
    option(
        "--unit-score",
        param="unit_score",
        help="how units are ranked, lowest dropped first: 'activation' is DropNet (mean "
        "|post-activation|), 'contribution' that times the norm of the unit's outgoing weights, "
        "'apoz' drops the units most often zero, 'l1' the smallest weight norms, 'random' at "
        "random, 'max' the highest activations (a sanity baseline)",
    )
    option(
        "--reinit",
        param="reinit",
        help="weights the survivors restart from each round: their initial values "
        "(the paper's), fresh random ones, or the trained ones (fine-tuning)",
    )
    option(
        "--distill-weight",
        param="distill_weight",
        metavar="A",
        help="weight of distillation from the dense network in the pruning rounds, in [0, 1]: "
        "the loss is (1 - A) x the labels' cross-entropy + A x the distillation loss",
    )
    option(
        "--distill-temperature",
        param="distill_temperature",
        metavar="T",
        help="temperature of the distillation",
    )
    option(
        "--min-accuracy-ratio",
        param="min_accuracy_ratio",
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
    option(
        "--max-epochs",
        param="max_epochs",
        metavar="N",
        default=max_epochs,
        help="most epochs per round; early stopping on the validation loss usually stops sooner",
    )
    option("--lr", param="lr", metavar="RATE", help="learning rate (Adam)")
    option("--batch-size", param="batch_size", metavar="N", help="mini-batch size")
    option("--patience", param="patience", metavar="N", help="early-stopping patience in epochs")
    option(
        "--validation-fraction",
        param="validation_fraction",
        metavar="FRACTION",
        help="share of the training data held out for early stopping and the validation "
        "accuracy in the table; 0 holds out none: no early stopping, and the table shows "
        "the accuracy on the training data ('train acc')",
    )


def run_options(parser, output_dir):
    """Seed, device, threads and the output of a training command."""
    group = parser.add_argument_group("run")
    group.add_argument(
        "--random-state",
        type=_seed,
        default=0,
        metavar="SEED",
        help="seed (0 to 2**32 - 1) of the test split, the initial weights and the batch order",
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


def hq_options(parser):
    """The parameters of :class:`~sklearn_dropnet.HQEnsembleClassifier`."""
    from ..ensemble import HQEnsembleClassifier as estimator

    group = parser.add_argument_group("ensemble (see HQEnsembleClassifier)")
    option = functools.partial(estimator_option, group, estimator=estimator)
    option("--n-estimators", "-M", param="n_estimators", default=8, metavar="M", help="number of networks trained, M")
    option(
        "--n-select",
        "-S",
        param="n_select",
        default=4,
        metavar="S",
        help="largest team HQ grows, S (the picks for 'greedy', the team size for 'top')",
    )
    option(
        "--method",
        param="method",
        help="'hq': hierarchical pruning by focal diversity; 'greedy': Caruana et al.'s forward "
        "selection; 'top': the S most accurate members; 'all': every member; 'reduced_error', "
        "'complementarity', 'margin_distance': ordered aggregation (Martinez-Munoz et al.); "
        "'error_ambiguity': the S members of lowest log loss plus distance to the pool's mean "
        "probabilities (Jiang et al.)",
    )
    option(
        "--metric",
        param="metric",
        metavar="METRIC",
        help="diversity metric behind the focal diversity: " + ", ".join(METRICS),
    )
    option(
        "--max-teams-per-level",
        param="max_teams_per_level",
        metavar="N",
        help="HQ keeps at most N teams a level (a beam of the most diverse); exact below it",
    )
    option(
        "--final-choice",
        param="final_choice",
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
    option("--voting", param="voting", help="how the team combines predictions")
    option(
        "--selection-fraction",
        param="validation_fraction",
        metavar="FRACTION",
        dest="selection_fraction",
        default=None,  # to tell it given from not, beside --cv
        help="share of the training data held out to choose the team (never the test split) "
        f"(default: {_default(estimator, 'validation_fraction')})",
    )
    group.add_argument(
        "--cv",
        metavar="K",
        type=_int_at_least(2),
        default=None,
        help="choose the team on K-fold out-of-fold predictions instead of "
        "--selection-fraction: each network is trained once per fold, then once on all the "
        "training data (K + 1 trainings each; no row set aside)",
    )
    group.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=1,
        metavar="N",
        help="members trained in parallel, not 0 (-1: one per CPU core, -2: all cores but "
        "one, ...); each member's torch threads are its share of the cores, which overrides "
        "--threads",
    )


@dataclass(frozen=True)
class Command:
    """A subcommand: its texts, its options and what it runs.

    ``add_options(parser)`` adds its options to its ``argparse`` parser;
    ``run(args)`` runs it and returns the exit status, raising
    :class:`~sklearn_dropnet.cli.errors.UsageError` for a user error;
    ``hints`` maps an option it does not take to what to do instead.
    """

    help: str
    description: str
    add_options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    hints: Mapping[str, str] = field(default_factory=dict)


def command_line_parser(commands):
    """The parser of ``sklearn-dropnet`` with the subcommands ``commands``
    (name -> :class:`Command`), in that order; the subcommand's name is
    stored as ``command``."""
    parser = _Parser(
        prog=PROG,
        formatter_class=_Formatter,
        description="DropNet pruning and HQ ensemble pruning from the command line.\n\n"
        "  sklearn-dropnet prune                       # digits, 80% of units removed\n"
        "  sklearn-dropnet prune --data train.csv --prune-ratio 0.5\n"
        "  sklearn-dropnet ensemble --n-estimators 8 --n-select 3\n"
        "  sklearn-dropnet predict dropnet-output/model.joblib new.csv -o labels.csv\n\n"
        "Run 'sklearn-dropnet COMMAND --help' for the options of a command.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=argparse.ArgumentParser
    )
    parser.commands = {}
    for name, command in commands.items():
        subparser = subparsers.add_parser(
            name, formatter_class=_Formatter, help=command.help, description=command.description
        )
        command.add_options(subparser)
        parser.commands[name] = subparser, command
    return parser
