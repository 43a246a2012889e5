"""Ensembles of (pruned) networks: HQ team selection and its diversity metrics.

- :class:`HQEnsembleClassifier` (``_hq.py``) -- the meta-estimator.
- ``_ensemble_selection.py`` -- HQ, greedy and top-S selection as pure
  functions on arrays of member predictions.
- ``_diversity.py`` -- the diversity metrics, public as
  :mod:`sklearn_dropnet.diversity`.
- ``_parallel.py`` -- fitting members in parallel with capped torch threads.
"""

from ._hq import HQEnsembleClassifier

__all__ = ["HQEnsembleClassifier"]
