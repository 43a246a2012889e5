"""The user errors of the command line, and the helpers that word its messages.

A :class:`UsageError` ends the command with its message on one line and exit
status 2 (see :mod:`sklearn_dropnet.cli.main`).
"""

import numpy as np

from .._export_messages import first_line as _first_line


class UsageError(Exception):
    """A user error: reported as one line, exit status 2."""


def reason(error):
    """The message of ``error``, or its type's name when it has none."""
    return str(error) or type(error).__name__


def first_line(error):
    """The first line of ``error``'s message (scikit-learn's can run to several), or
    its type's name when it has none."""
    return _first_line(error) or type(error).__name__


def some_labels(labels):
    """The first five distinct ``labels``, for a message."""
    labels = list(dict.fromkeys(np.asarray(labels).tolist()))
    return ", ".join(str(label) for label in labels[:5]) + (", ..." if len(labels) > 5 else "")
