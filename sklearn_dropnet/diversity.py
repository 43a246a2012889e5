"""Ensemble diversity metrics and focal diversity (Kuncheva & Whitaker, 2003; Wu & Liu).

The public home of the metrics that :class:`~sklearn_dropnet.HQEnsembleClassifier`
ranks teams by; they are implemented in ``sklearn_dropnet/ensemble/_diversity.py``
and documented there (orientation, focal diversity, batched computation).
"""

from .ensemble._diversity import (
    METRICS,
    binary_disagreement,
    cohen_kappa,
    fleiss_kappa,
    focal_diversity,
    generalized_diversity,
    kohavi_wolpert_variance,
    q_statistic,
)

__all__ = [
    "generalized_diversity",
    "kohavi_wolpert_variance",
    "binary_disagreement",
    "q_statistic",
    "cohen_kappa",
    "fleiss_kappa",
    "focal_diversity",
    "METRICS",
]
