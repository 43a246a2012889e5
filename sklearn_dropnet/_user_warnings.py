"""Warnings that point at the user's code, not at this package's."""

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message, category):
    """``warnings.warn``, attributed to the first caller outside ``sklearn_dropnet``.

    A fixed ``stacklevel`` points at the right line from one call path
    only; a warning raised a few calls deep in a pruning round would name
    a line of this package.

    Examples
    --------
    >>> import warnings
    >>> from sklearn_dropnet._user_warnings import warn
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("careful", UserWarning)
    >>> caught[0].filename.startswith("<doctest")  # this example's line, not warn's
    True
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
