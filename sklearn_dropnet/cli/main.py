"""The ``sklearn-dropnet`` command line (also ``python -m sklearn_dropnet``):
its table of commands, the parser built from it, and :func:`main`.

Each command is a module (``prune.py``, ``ensemble.py``, ``predict.py``)
holding a :class:`~sklearn_dropnet.cli.parser.Command`: its help texts, the
options it takes and the function that runs it. A new command is one more
such module and one more entry in :data:`COMMANDS`.

Data files are ``.npz`` (arrays ``X`` and ``y``) or ``.csv`` (numbers, the
label in the last column or in the column ``--target``, an optional header
row). User errors (a missing file, a bad extension, the wrong number of
features) end with a one-line message and exit status 2.
"""

import contextlib
import os
import sys
import warnings

from . import ensemble, export, predict, prune
from .errors import UsageError
from .parser import PROG, command_line_parser

__all__ = ["main", "build_parser"]

#: The commands, by name (-> :class:`~sklearn_dropnet.cli.parser.Command`),
#: in the order ``--help`` lists them.
COMMANDS = {
    "prune": prune.COMMAND,
    "ensemble": ensemble.COMMAND,
    "predict": predict.COMMAND,
    "export": export.COMMAND,
}


def build_parser():
    """Build the ``argparse`` parser of ``sklearn-dropnet`` and its subcommands.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser; the subcommand's name is stored as ``command``.

    Examples
    --------
    >>> from sklearn_dropnet.cli import build_parser
    >>> args = build_parser().parse_args(["prune", "--prune-ratio", "0.5"])
    >>> args.command, args.prune_ratio, args.drop_fraction, args.output_dir
    ('prune', 0.5, 0.2, 'dropnet-output')
    """
    return command_line_parser(COMMANDS)


def _silence_stdout():
    """Point standard output at the null device after a reader closed its pipe.

    The recipe of Python's "Note on SIGPIPE" (the :mod:`signal` docs): the
    output still buffered then goes nowhere at exit, instead of failing again
    with an "Exception ignored ... BrokenPipeError" message.
    """
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced, e.g. by a test's capture
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


@contextlib.contextmanager
def _one_line_warnings():
    """Warnings printed as ``sklearn-dropnet: warning: ...``, one line each, not
    Python's form with the file, line and source of wherever they were raised
    (the console script's own ``sys.exit(main())``, or joblib's worker code)."""
    saved = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{PROG}: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = saved


def _run(argv):
    """Parse ``argv`` and run its command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, --version and usage errors
        return exit.code if isinstance(exit.code, int) else 2
    try:
        with _one_line_warnings():
            return COMMANDS[args.command].run(args)
    except UsageError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


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
        error) or a bad option, 1 when the reader of standard output closed
        it (``sklearn-dropnet ... | head``), 130 on Ctrl-C.

    Examples
    --------
    >>> from sklearn_dropnet.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    sklearn-dropnet ...
    0
    """
    try:
        status = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return 1
    return status
