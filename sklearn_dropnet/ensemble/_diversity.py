"""Ensemble diversity metrics and focal diversity.

Every metric takes the true labels ``y_true`` (n_samples,) and a matrix of
predicted labels ``predictions`` (n_members, n_samples), and returns the
metric's textbook value (Kuncheva & Whitaker, 2003). Pairwise metrics are
averaged over all pairs of members. Orientation differs between metrics,
as in the textbook:

========================  =====================  ===========================
function                  kind                   more diverse when
========================  =====================  ===========================
generalized_diversity     non-pairwise           higher (0 .. 1)
kohavi_wolpert_variance   non-pairwise           higher (0 .. 1/4)
binary_disagreement       pairwise               higher (0 .. 1)
q_statistic               pairwise, agreement    lower (-1 .. 1)
cohen_kappa               pairwise, agreement    lower (1 = identical)
fleiss_kappa              non-pairwise,          lower (1 = identical)
                          agreement
========================  =====================  ===========================

:func:`focal_diversity` turns any of them into one orientation,
*higher = more diverse*: it uses the first three as they are and
``1 - value`` for the three agreement measures.

``cohen_kappa`` and ``fleiss_kappa`` compare the members' predicted labels
with each other and do not use ``y_true``; they take it anyway so that all
metrics share one signature. The other four only look at which members are
right, ``predictions == y_true``.

All metrics are computed for many teams at once by private batched functions
(``_METRICS``), which :class:`~sklearn_dropnet.HQEnsembleClassifier` uses to
score thousands of candidate teams without a Python loop over teams or
samples.

References
----------
L. I. Kuncheva and C. J. Whitaker, "Measures of Diversity in Classifier
Ensembles and Their Relationship with the Ensemble Accuracy", Machine
Learning 51, 2003.

Y. Wu, L. Liu, Z. Xie, K.-H. Chow and W. Wei, "Boosting Ensemble Accuracy by
Revisiting Ensemble Diversity Metrics", CVPR 2021 (focal diversity).
"""


import numpy as np

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

# The batched implementations below all take
#   labels  : int array (n_teams, n_members, n_samples), labels encoded 0 .. K-1
#   correct : bool array of the same shape, labels == y_true
#   weights : float array (n_teams, n_views, n_samples) of 0/1, the samples
#             each "view" of a team uses (e.g. one view per focal model: the
#             samples it gets wrong; the public functions use one view of all)
# and return one value per team and view, (n_teams, n_views). Whatever only
# depends on the team is computed once for all its views, and the sums over
# samples are matrix products. Undefined values (no sample, or 0/0) are
# documented per metric in the public functions.


def _view_sums(values, weights):
    """Sum of ``values`` (teams, items, samples) over each view's samples.

    Returns (teams, items, views). With 0/1 values and weights the sums are
    counts, exact in float64 up to 2**53.
    """
    return values @ weights.transpose(0, 2, 1)


def _view_means(values, weights):
    """Mean of ``values`` (teams, items, samples) over each view's samples.

    Returns (teams, items, views); NaN for a view without samples.
    """
    sums = _view_sums(values, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / weights.sum(axis=2)[:, None, :]


def _weighted_mean(values, weights):
    """Mean of ``values`` (teams, samples) over each view's samples: (teams, views)."""
    return _view_means(values[:, None, :], weights)[:, 0, :]


def _pairs(n_members):
    """Index arrays ``(first, second)`` of all unordered pairs of members."""
    return np.triu_indices(n_members, k=1)


def _generalized_diversity(labels, correct, weights):
    n_members = correct.shape[1]
    failures = n_members - correct.sum(axis=1, dtype=float)  # (teams, samples)
    p1 = _weighted_mean(failures / n_members, weights)
    p2 = _weighted_mean(
        failures * (failures - 1) / (n_members * (n_members - 1)), weights
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        gd = 1.0 - p2 / p1
    return np.where(p1 == 0, 0.0, gd)  # no member ever fails: 0 (see docstring)


def _kohavi_wolpert_variance(labels, correct, weights):
    n_members = correct.shape[1]
    n_right = correct.sum(axis=1, dtype=float)
    return _weighted_mean(n_right * (n_members - n_right), weights) / n_members**2


def _oracle_pair_counts(correct, weights):
    """Counts of samples with N11, N10, N01, N00 for every pair and view.

    Each is (teams, pairs, views); ``N10`` is first member right, second wrong.
    Counts rather than shares, so that "no such sample" is an exact zero.
    """
    first, second = _pairs(correct.shape[1])
    a, b = correct[:, first, :], correct[:, second, :]
    return tuple(
        _view_sums(outcome.astype(float), weights)
        for outcome in (a & b, a & ~b, ~a & b, ~a & ~b)
    )


def _binary_disagreement(labels, correct, weights):
    _, n10, n01, _ = _oracle_pair_counts(correct, weights)
    n = weights.sum(axis=2)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (n10 / n + n01 / n).mean(axis=1)


def _q_statistic(labels, correct, weights):
    n11, n10, n01, n00 = _oracle_pair_counts(correct, weights)
    numerator = n11 * n00 - n01 * n10
    denominator = n11 * n00 + n01 * n10
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pair = np.where(denominator == 0, 0.0, numerator / denominator)
    empty = weights.sum(axis=2)[:, None, :] == 0  # a view without samples: NaN
    return np.where(empty, np.nan, per_pair).mean(axis=1)


def _label_counts(labels, weights):
    """How often each member predicts each label, per view.

    Returns (teams, views, members, K) counts. One ``bincount`` over labels
    offset by (team, view, member) counts them all.
    """
    n_teams, n_members, n_samples = labels.shape
    n_views = weights.shape[1]
    n_labels = int(labels.max()) + 1
    cells = np.arange(n_teams * n_views * n_members).reshape(n_teams, n_views, n_members)
    flat = (labels[:, None, :, :] + n_labels * cells[..., None]).ravel()
    w = np.broadcast_to(weights[:, :, None, :], (n_teams, n_views, n_members, n_samples))
    counts = np.bincount(flat, weights=w.ravel(), minlength=cells.size * n_labels)
    return counts.reshape(n_teams, n_views, n_members, n_labels)


def _pairwise_label_agreement(labels, weights):
    """Samples where a pair predicts the same label: counts (teams, pairs, views)."""
    first, second = _pairs(labels.shape[1])
    same = labels[:, first, :] == labels[:, second, :]
    return _view_sums(same.astype(float), weights)


def _kappa(numerator, denominator, n):
    """``numerator / denominator``, with both scaled to counts; 1 where it is 0/0.

    Kappa is ``(observed - chance) / (1 - chance)``; the callers multiply both
    by a power of the number of samples ``n``, so that they are differences of
    exact integer counts. Chance agreement is then 1 exactly when the
    denominator is 0, and a rare disagreement among a million samples is not
    lost to rounding. NaN for a view without samples.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(denominator == 0, 1.0, numerator / denominator)
    return np.where(n == 0, np.nan, kappa)


def _cohen_kappa(labels, correct, weights):
    first, second = _pairs(labels.shape[1])
    counts = _label_counts(labels, weights)  # (teams, views, members, K)
    n = weights.sum(axis=2)[:, :, None]  # (teams, views, 1)
    # n**2 * chance: the sum over labels of the pair's count products.
    chance = (counts[:, :, first, :] * counts[:, :, second, :]).sum(axis=-1)
    observed = _pairwise_label_agreement(labels, weights).transpose(0, 2, 1)  # n * observed
    return _kappa(n * observed - chance, n**2 - chance, n).mean(axis=2)


def _fleiss_kappa(labels, correct, weights):
    # Fleiss' per-sample agreement P_j = sum_k n_jk (n_jk - 1) / (L (L - 1)) is
    # the share of member pairs that agree on sample j, so its mean over the
    # samples is the mean pairwise agreement: agree / (n_pairs * n). Chance
    # agreement is sum_k (pooled_k / (L * n))**2 = squares / (L * n)**2.
    agree = _pairwise_label_agreement(labels, weights).sum(axis=1)  # (teams, views)
    pooled = _label_counts(labels, weights).sum(axis=2)  # (teams, views, K)
    return _fleiss_from_counts(agree, pooled, weights.sum(axis=2), labels.shape[1])


def _fleiss_from_counts(agree, pooled, n, n_members):
    """Fleiss' kappa of each team and view, from counts.

    ``agree`` (teams, views): member pairs that predict the same label,
    summed over the samples; ``pooled`` (teams, views, K): how often the
    members predict each label; ``n`` (teams, views): the samples.
    """
    n_pairs = n_members * (n_members - 1) // 2
    squares = (pooled**2).sum(axis=-1)
    # Both multiplied by n_pairs * (L * n)**2: integers below 2**53 up to
    # 10 members and a million samples.
    total = n_members * n
    return _kappa(agree * n_members * total - n_pairs * squares, n_pairs * (total**2 - squares), n)


#: name -> (batched implementation, is an agreement measure)
_METRICS = {
    "generalized_diversity": (_generalized_diversity, False),
    "kohavi_wolpert_variance": (_kohavi_wolpert_variance, False),
    "binary_disagreement": (_binary_disagreement, False),
    "q_statistic": (_q_statistic, True),
    "cohen_kappa": (_cohen_kappa, True),
    "fleiss_kappa": (_fleiss_kappa, True),
}

#: Names accepted by ``focal_diversity(metric=...)`` and
#: ``HQEnsembleClassifier(metric=...)``.
METRICS = tuple(_METRICS)


def _check_metric(metric):
    if not isinstance(metric, str) or metric not in _METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
    return metric


def _encode(y_true, predictions):
    """Validate; return labels encoded 0 .. K-1 as (members, samples) and y."""
    y_true = np.asarray(y_true)
    try:
        predictions = np.asarray(predictions)
    except ValueError:
        raise ValueError(
            "predictions must be a 2-d array (n_members, n_samples); its rows have "
            "different lengths."
        ) from None
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-dimensional, got shape {y_true.shape}.")
    if predictions.ndim != 2 or predictions.shape[1] != y_true.shape[0]:
        raise ValueError(
            "predictions must be a 2-d array (n_members, n_samples) with "
            f"n_samples = len(y_true) = {y_true.shape[0]}, got shape "
            f"{predictions.shape}."
        )
    if predictions.shape[0] < 2:
        raise ValueError(
            f"A diversity metric needs at least 2 members, got {predictions.shape[0]}."
        )
    if y_true.shape[0] == 0:
        raise ValueError("Diversity metrics need at least one sample.")
    try:
        _, codes = np.unique(np.concatenate([y_true, predictions.ravel()]), return_inverse=True)
    except TypeError:
        raise TypeError(
            "Labels in y_true and predictions must be of one comparable kind "
            "(all numbers or all strings), without None."
        ) from None
    return codes[y_true.shape[0] :].reshape(predictions.shape), codes[: y_true.shape[0]]


def _score_one_team(metric, y_true, predictions):
    labels, y = _encode(y_true, predictions)
    function, _ = _METRICS[metric]
    weights = np.ones((1, 1, labels.shape[1]))
    return float(function(labels[None], (labels == y)[None], weights)[0, 0])


def focal_scores(labels, y, teams, metric):
    """Focal diversity of many teams, per focal member, higher = more diverse.

    Parameters
    ----------
    labels : ndarray of shape (n_members, n_samples)
        Every member's predicted labels, encoded ``0 .. K - 1``.
    y : ndarray of shape (n_samples,)
        True labels, encoded the same way.
    teams : ndarray of shape (n_teams, team_size)
        Member indices of each team.
    metric : str
        One of :data:`METRICS`.

    Returns
    -------
    scores : ndarray of shape (n_teams, team_size)
        ``scores[t, f]`` is the metric over team ``t`` on the samples that its
        member ``teams[t, f]`` gets wrong, oriented higher = more diverse;
        NaN where that member gets no sample wrong.
    """
    function, agreement = _METRICS[_check_metric(metric)]
    team_labels = labels[teams]  # (teams, size, samples)
    team_correct = team_labels == y
    negatives = (~team_correct).astype(float)  # one view per focal member
    scores = function(team_labels, team_correct, negatives)
    scores[negatives.sum(axis=2) == 0] = np.nan
    return 1.0 - scores if agreement else scores


def generalized_diversity(y_true, predictions):
    """Generalized diversity (Partridge & Krzanowski, 1997).

    With ``p_k`` the share of samples on which exactly ``k`` of the ``L``
    members are wrong, ``P1 = sum_k k / L p_k`` and
    ``P2 = sum_k k (k - 1) / (L (L - 1)) p_k``, the value is
    ``1 - P2 / P1``: 1 when no two members ever fail together, 0 when every
    failure is shared by all. Higher means more diverse. If no member fails
    on any sample ``P1 = 0`` and the value is 0.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    predictions : array-like of shape (n_members, n_samples)
        Predicted labels of each member (at least 2 members).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_dropnet.diversity import generalized_diversity
    >>> y = [0, 0, 0, 0]
    >>> predictions = [[1, 0, 0, 0],
    ...                [0, 1, 0, 0],
    ...                [1, 1, 0, 0]]
    >>> generalized_diversity(y, predictions)
    0.5
    """
    return _score_one_team("generalized_diversity", y_true, predictions)


def kohavi_wolpert_variance(y_true, predictions):
    """Kohavi-Wolpert variance.

    ``KW = 1 / (N L^2) sum_j l_j (L - l_j)`` with ``l_j`` the number of the
    ``L`` members right on sample ``j``; between 0 (members always agree on
    being right or wrong) and 1/4. Higher means more diverse.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    predictions : array-like of shape (n_members, n_samples)
        Predicted labels of each member (at least 2 members).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_dropnet.diversity import kohavi_wolpert_variance
    >>> kohavi_wolpert_variance([0, 1], [[0, 1], [1, 1]])
    0.125
    """
    return _score_one_team("kohavi_wolpert_variance", y_true, predictions)


def binary_disagreement(y_true, predictions):
    """Disagreement measure, averaged over all pairs of members.

    For a pair, ``(N01 + N10) / N``: the share of samples on which exactly one
    of the two is right. Higher means more diverse.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    predictions : array-like of shape (n_members, n_samples)
        Predicted labels of each member (at least 2 members).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_dropnet.diversity import binary_disagreement
    >>> binary_disagreement([0, 0, 0, 0], [[0, 0, 1, 1], [0, 1, 0, 1]])
    0.5
    """
    return _score_one_team("binary_disagreement", y_true, predictions)


def q_statistic(y_true, predictions):
    """Yule's Q-statistic, averaged over all pairs of members.

    For a pair, ``(N11 N00 - N01 N10) / (N11 N00 + N01 N10)`` where ``N11``
    counts the samples both get right, ``N00`` both wrong, ``N10`` and
    ``N01`` only one. It ranges from -1 to 1 and is an *agreement* measure:
    lower means more diverse, 0 is statistically independent. A pair whose
    denominator is 0 counts as 0, as in the published focal diversity code.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    predictions : array-like of shape (n_members, n_samples)
        Predicted labels of each member (at least 2 members).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_dropnet.diversity import q_statistic
    >>> y = [0, 0, 0, 0, 0, 0]
    >>> round(q_statistic(y, [[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 0, 1]]), 4)
    0.5
    """
    return _score_one_team("q_statistic", y_true, predictions)


def cohen_kappa(y_true, predictions):
    """Cohen's kappa between members' predicted labels, averaged over pairs.

    For a pair, ``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the share of samples
    where both predict the same label and ``p_e`` the agreement expected by
    chance from each member's label shares, as
    :func:`sklearn.metrics.cohen_kappa_score`. An *agreement* measure: lower
    means more diverse. A pair that predicts one and the same label
    throughout (``p_e = 1``) counts as 1. ``y_true`` is not used.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (only their number is checked).
    predictions : array-like of shape (n_members, n_samples)
        Predicted labels of each member (at least 2 members).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_dropnet.diversity import cohen_kappa
    >>> cohen_kappa([0, 0, 1, 1], [[0, 0, 1, 1], [0, 1, 1, 1]])
    0.5
    """
    return _score_one_team("cohen_kappa", y_true, predictions)


def fleiss_kappa(y_true, predictions):
    """Fleiss' kappa over all members' predicted labels.

    ``(P - P_e) / (1 - P_e)`` with ``P`` the mean over samples of the share
    of member pairs that predict the same label, and ``P_e = sum_k p_k^2``,
    ``p_k`` being the share of all predictions that are label ``k``. An
    *agreement* measure: lower means more diverse. If every member predicts
    one and the same label throughout (``P_e = 1``) the value is 1.
    ``y_true`` is not used.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (only their number is checked).
    predictions : array-like of shape (n_members, n_samples)
        Predicted labels of each member (at least 2 members).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_dropnet.diversity import fleiss_kappa
    >>> round(fleiss_kappa([0, 0, 1, 1], [[0, 0, 1, 1], [0, 1, 1, 1]]), 4)
    0.4667
    """
    return _score_one_team("fleiss_kappa", y_true, predictions)


def focal_diversity(y_true, predictions, metric="generalized_diversity"):
    """Focal diversity of a team: higher means more diverse.

    Each member in turn is the *focal* model. Its negative samples are those
    it gets wrong; the team's diversity seen from it is ``metric`` computed
    on all members' predictions restricted to those samples (exactly, on all
    of them, not a random subsample). The focal diversity is the mean over
    the focal models. Agreement measures (``q_statistic``, ``cohen_kappa``,
    ``fleiss_kappa``) enter as ``1 - value``, so that for every metric higher
    means more diverse. A member that gets no sample wrong has no view and is
    left out of the mean; if no member gets any sample wrong the result is
    NaN.

    :class:`~sklearn_dropnet.HQEnsembleClassifier` additionally min-max
    normalises each focal model's score among the teams it ranks; this
    function returns the plain mean.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    predictions : array-like of shape (n_members, n_samples)
        Predicted labels of each team member (at least 2 members).
    metric : str, default="generalized_diversity"
        One of ``"generalized_diversity"``, ``"kohavi_wolpert_variance"``,
        ``"binary_disagreement"``, ``"q_statistic"``, ``"cohen_kappa"``,
        ``"fleiss_kappa"``.

    Returns
    -------
    float

    References
    ----------
    Y. Wu, L. Liu, Z. Xie, K.-H. Chow and W. Wei, "Boosting Ensemble Accuracy
    by Revisiting Ensemble Diversity Metrics", CVPR 2021.

    Examples
    --------
    >>> from sklearn_dropnet.diversity import focal_diversity
    >>> y = [0, 0, 0, 0]
    >>> predictions = [[1, 1, 0, 0],
    ...                [0, 0, 1, 1],
    ...                [1, 0, 1, 0]]
    >>> round(focal_diversity(y, predictions), 4)
    0.6111
    """
    _check_metric(metric)
    labels, y = _encode(y_true, predictions)
    team = np.arange(labels.shape[0])[None, :]
    scores = focal_scores(labels, y, team, metric)[0]
    if np.isnan(scores).all():
        return float("nan")
    return float(np.nanmean(scores))
