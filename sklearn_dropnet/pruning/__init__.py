"""The DropNet pruning engine: find a network's units, score them, remove them.

It works on any ``torch.nn.Module`` and imports neither scikit-learn nor
skorch. :class:`DropNetPruner` offers each step of a DropNet round as one
call, for any training loop; :class:`~sklearn_dropnet.DropNetClassifier` is
the scikit-learn estimator built on it.

Extension points are registries (name -> function):

- :data:`UNIT_SCORES` -- how units are ranked (``"activation"``,
  ``"contribution"``, ``"apoz"``, ``"l1"``, ``"random"``, ``"max"``); add one with
  :func:`register_unit_score`.
- :data:`UNIT_SELECTIONS` -- how the units to drop are chosen from the
  scores (``"layer"``, ``"global"``, ``"global_raw"``); any callable with
  their signature chooses too, such as :class:`OracleSelection`.
- :data:`RESTARTS` -- the weights the survivors start the next round from
  (``"rewind"``, ``"random"``, ``"none"``).
"""

from ._engine import RESTARTS, DropNetPruner, redraw_weights
from ._oracle import OracleSelection
from ._unit_scores import UNIT_SCORES, UnitScore, register_unit_score
from ._unit_selection import UNIT_SELECTIONS

__all__ = [
    "DropNetPruner",
    "OracleSelection",
    "RESTARTS",
    "UNIT_SCORES",
    "UNIT_SELECTIONS",
    "UnitScore",
    "redraw_weights",
    "register_unit_score",
]
