"""sklearn-dropnet: DropNet pruning and HQ ensemble pruning for scikit-learn.

The public API at a glance:

- :class:`DropNetClassifier` -- a skorch/PyTorch classifier that removes the
  units with the lowest mean absolute post-activation, round by round
  (Tan & Motani, ICML 2020), physically shrinking the network.
- :mod:`sklearn_dropnet.models` -- the paper's architectures.
"""

from ._dropnet import DropNetClassifier

__version__ = "0.1.0.dev0"

__all__ = ["DropNetClassifier", "__version__"]
