"""sklearn-dropnet: DropNet pruning and HQ ensemble pruning for scikit-learn.

The public API at a glance:

- :class:`DropNetClassifier` -- a skorch/PyTorch classifier that removes the
  units with the lowest mean absolute post-activation, round by round
  (Tan & Motani, ICML 2020), physically shrinking the network.
- :class:`HQEnsembleClassifier` -- picks a small, diverse team of
  classifiers by hierarchical pruning with focal diversity (Wu & Liu,
  ICDM 2021); :mod:`sklearn_dropnet.diversity` holds the diversity metrics.
- :class:`DropNetPruner` (:mod:`sklearn_dropnet.pruning`) -- the pruning
  engine on its own, for any torch training loop; it imports neither
  scikit-learn nor skorch.
- :class:`PruningCurveDisplay`, :class:`HQCandidatesDisplay` -- plots of a
  pruning run and of HQ's candidate teams (needs matplotlib).
- ``export(path)`` on both estimators writes the fitted network, or the
  team, as one ONNX, ``torch.export`` or TorchScript file.
- :mod:`sklearn_dropnet.models` -- the paper's architectures.

The names are imported when first used, so that ``from
sklearn_dropnet.pruning import DropNetPruner`` does not import scikit-learn
and skorch.
"""

import importlib

__version__ = "0.1.0.dev0"

# public name -> the module that defines it
_PUBLIC = {
    "DropNetClassifier": "._dropnet",
    "HQEnsembleClassifier": ".ensemble",
    "DropNetPruner": ".pruning",
    "PruningCurveDisplay": ".plotting",
    "HQCandidatesDisplay": ".plotting",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value  # once imported, a plain attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_PUBLIC})
