"""Ranking methods: each member scored once, alone, and the best kept.

Unlike ordered aggregation (``_ordered_aggregation.py``), a ranking scores
every member against the held-out data and the whole pool once and keeps the
``n_select`` best, without looking at the members picked before. The arrays
are those of ``_ensemble_selection.py``: ``votes`` (members, samples, K),
``labels`` (members, samples) and ``y``.

- :func:`error_ambiguity_select` -- Jiang et al.'s generalized ambiguity
  decomposition of the multi-class logistic loss (the ranking PyPruning
  calls ``error_ambiguity``).

References
----------
Z. Jiang, H. Liu, B. Fu and Z. Wu, "Generalized Ambiguity Decompositions for
Classification with Applications in Active Learning and Unsupervised
Ensemble Pruning", AAAI 2017.

J. Zhu, H. Zou, S. Rosset and T. Hastie, "Multi-class AdaBoost", Statistics
and Its Interface 2(3), 2009 (the multi-class logistic loss).
"""

import numpy as np

__all__ = ["error_ambiguity_scores", "error_ambiguity_select"]


def error_ambiguity_scores(votes, y):
    """Each member's loss term plus its ambiguity; lower is better.

    With ``K`` classes and a member's class probabilities ``p`` on a
    held-out sample of class ``t``, the loss term is
    ``exp(-p_t / K) / K**2`` plus, for every other class ``c``,
    ``exp(p_c / (K (K - 1))) / (K**2 (K - 1)**2)``: the multi-class
    logistic loss of Zhu et al. as Jiang et al. expand it. The ambiguity is
    the squared distance between the member's probabilities and the pool's
    mean ones. Both are summed over the samples.

    Parameters
    ----------
    votes : ndarray of shape (n_members, n_samples, n_classes)
        The members' class probabilities (one-hot rows under hard voting).
    y : ndarray of shape (n_samples,)
        Encoded labels.

    Returns
    -------
    ndarray of shape (n_members,)
    """
    n_members, n_samples, n_classes = votes.shape
    if n_classes < 2:
        raise ValueError(f"error_ambiguity ranks members of a classification with 2 or more classes, got {n_classes}.")
    true_class = np.zeros((n_samples, n_classes), dtype=bool)
    true_class[np.arange(n_samples), y] = True
    k = float(n_classes)
    loss = np.where(
        true_class,
        np.exp(-votes / k) / k**2,
        np.exp(votes / (k * (k - 1))) / (k**2 * (k - 1) ** 2),
    )
    ambiguity = (votes - votes.mean(axis=0)) ** 2
    return loss.sum(axis=(1, 2)) + ambiguity.sum(axis=(1, 2))


def error_ambiguity_select(labels, votes, y, n_select):
    """The ``n_select`` members with the lowest :func:`error_ambiguity_scores`.

    In order of their scores; ties go to the lower index. ``labels`` is not
    used (the scores need the probabilities).
    """
    scores = error_ambiguity_scores(np.asarray(votes, dtype=float), y)
    return np.argsort(scores, kind="stable")[:n_select]
