"""The ``sklearn-dropnet`` command line: ``prune``, ``ensemble`` and ``predict``.

``main.py`` runs the commands, ``parser.py`` builds their options and
``io.py`` reads data files and writes models, tables and predictions.
"""

from .main import build_parser, main

__all__ = ["main", "build_parser"]
