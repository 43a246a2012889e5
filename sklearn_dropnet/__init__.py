"""sklearn-dropnet: DropNet pruning and HQ ensemble pruning for scikit-learn.

The public API at a glance:

- :class:`DropNetClassifier` -- a skorch/PyTorch classifier that removes the
  units with the lowest mean absolute post-activation, round by round
  (Tan & Motani, ICML 2020), physically shrinking the network.
- :class:`HQEnsembleClassifier` -- picks a small, diverse team of
  classifiers by hierarchical pruning with focal diversity (Wu & Liu,
  ICDM 2021); :mod:`sklearn_dropnet.diversity` holds the diversity metrics.
- :class:`PruningCurveDisplay`, :class:`HQCandidatesDisplay` -- plots of a
  pruning run and of HQ's candidate teams (needs matplotlib).
- ``export(path)`` on both estimators writes the fitted network, or the
  team, as one ONNX, ``torch.export`` or TorchScript file.
- :mod:`sklearn_dropnet.models` -- the paper's architectures.
"""

from ._dropnet import DropNetClassifier
from .ensemble import HQEnsembleClassifier
from .plotting import HQCandidatesDisplay, PruningCurveDisplay

__version__ = "0.1.0.dev0"

__all__ = [
    "DropNetClassifier",
    "HQCandidatesDisplay",
    "HQEnsembleClassifier",
    "PruningCurveDisplay",
    "__version__",
]
