"""The files the commands write: the output folder, models and plots.

Every output file is written inside :func:`writing`, so that a folder in the
way, a full disk or a missing permission ends the command with one line.
"""

import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError, reason


def output_dir(path, files=()):
    """The folder ``--output-dir``, created if needed and checked to take new
    files (with a probe file, created and deleted) before any training; none
    of the ``files`` the command will write there may be a folder."""
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
            f"cannot write files in --output-dir {path}: {error.strerror or reason(error)}"
        ) from None
    for name in files:
        if (path / name).is_dir():
            raise UsageError(
                f"{path / name} is a folder, where this command writes a file; move it, or "
                "choose another --output-dir"
            )
    return path


@contextmanager
def writing(path):
    """Report an :class:`OSError` raised while writing ``path`` as ``cannot write PATH``.

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
        raise UsageError(f"cannot write {path}: {reason(error)}") from None


def dump(obj, path):
    """Save ``obj`` to ``path`` with joblib; returns ``path``."""
    import joblib

    with writing(path):
        joblib.dump(obj, path)
    return path


def save_plot(draw, path, args):
    """Draw with ``draw(ax)`` and save to ``path``, unless ``--no-plot``;
    returns the files written: ``[path]``, or ``[]``.

    A bare :class:`~matplotlib.figure.Figure` needs no GUI backend and leaves
    pyplot's state alone.
    """
    if args.no_plot:
        return []
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(
            f"note: matplotlib is not installed, {path.name} was not written "
            "(pip install sklearn-dropnet[plot])",
            file=sys.stderr,
        )
        return []
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    draw(fig.subplots())
    with writing(path):
        fig.savefig(path, dpi=120)
    return [path]


def report_written(paths):
    """Print the line that lists the files a command wrote."""
    print("wrote: " + ", ".join(str(path) for path in paths))
