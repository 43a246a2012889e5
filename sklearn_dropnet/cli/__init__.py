"""The ``sklearn-dropnet`` command line: ``prune``, ``ensemble``, ``predict`` and ``export``.

``main.py`` holds the table of commands and runs them; each command is a
module of its own (``prune.py``, ``ensemble.py``, ``predict.py``, ``export.py``).
``training.py`` holds what the two training commands share, ``parser.py``
the option types and groups, ``io.py`` and ``csv_reader.py`` read data
files, ``outputs.py`` writes files, and ``errors.py`` holds ``UsageError``,
the user error reported as one line.
"""

from .main import build_parser, main

__all__ = ["main", "build_parser"]
