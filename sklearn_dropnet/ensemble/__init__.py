"""Ensembles of (pruned) networks: HQ team selection and its diversity metrics.

- :class:`HQEnsembleClassifier` (``_hq.py``) -- the meta-estimator.
- ``_ensemble_selection.py`` -- HQ, greedy and top-S selection as pure
  functions on arrays of member predictions.
- ``_diversity.py`` -- the diversity metrics, public as
  :mod:`sklearn_dropnet.diversity`.
- ``_selection_methods.py`` -- the registry of ``method`` names; HQ's
  search in ``_ensemble_selection.py`` with ``_team_growth.py``,
  ``_team_scores.py`` and ``_focal_counts.py``; the ordered-aggregation
  methods in ``_ordered_aggregation.py``.
- ``_member_fits.py``, ``_parallel.py`` -- fitting members in parallel with
  capped torch threads, errors naming the member.
- ``_forest_members.py`` -- :func:`forest_members`, the trees of a fitted
  forest as members.
"""

from ._forest_members import forest_members
from ._hq import HQEnsembleClassifier

__all__ = ["HQEnsembleClassifier", "forest_members"]
