"""``python -m sklearn_dropnet``: the same as the ``sklearn-dropnet`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
