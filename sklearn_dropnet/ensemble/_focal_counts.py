"""Focal diversity of many teams from counts over pairs and triples of members.

:func:`~sklearn_dropnet.ensemble._diversity.focal_scores` computes each
team's metric sample by sample: its cost grows with the number of held-out
samples ``n`` for every team scored. Every one of the six metrics, seen from
a focal member ``v`` (on the samples ``v`` gets wrong), is a function of a
few counts over those samples:

- ``wrong2[i, v]``: samples both ``i`` and ``v`` get wrong (``wrong2[v, v]``
  is the size of ``v``'s view);
- ``wrong3[i, j, v]``: samples ``i``, ``j`` and ``v`` all get wrong;
- ``same3[i, j, v]``: samples ``v`` gets wrong on which ``i`` and ``j``
  predict the same label;
- ``label2[i, v, k]``: samples ``v`` gets wrong on which ``i`` predicts
  label ``k``.

So the counts are computed once for all members (:func:`count_tables`, one
pass over the samples), and each team is then scored from a few lookups
(:func:`table_focal_scores`), whatever ``n``. The values are those of
``focal_scores`` (the tests compare them); for the pairwise metrics they are
computed by the same expressions on the same counts, hence bit for bit the
same; generalized diversity can differ in the last bit, which can decide a
tie between two teams. So HQ's exact search scores sample by sample, as it
always did, and only its capped levels from the tables. The tables take
``M**3`` integers each: pools of more than :data:`MAX_TABLE_MEMBERS` are
scored sample by sample throughout.

With ``W`` the wrong-sample indicator, ``L`` members in the team and, per
focal view, ``S1 = sum_i wrong2[i, v]`` (the failures summed over the view's
samples) and ``S2 = sum_{i != j} wrong3[i, j, v]`` (the sum of
``f (f - 1)`` over them, ``f`` the team's failures on a sample):

- generalized diversity ``1 - S2 / ((L - 1) S1)``;
- Kohavi-Wolpert variance ``((L - 1) S1 - S2) / (n_v L**2)``;
- per pair ``(i, j)``: ``N00 = wrong3``, ``N10 = wrong2[j] - wrong3``,
  ``N01 = wrong2[i] - wrong3``, ``N11 = n_v - wrong2[i] - wrong2[j] + wrong3``
  for the disagreement and the Q-statistic; ``same3`` and
  ``sum_k label2[i, ., k] label2[j, ., k]`` for Cohen's and Fleiss' kappa.
"""

import numpy as np

from ._diversity import _METRICS, _fleiss_from_counts, _kappa, _pairs, focal_scores

#: Largest pool for which the tables are built: M**3 int32 take 64 MiB for
#: 256 members. Larger pools are scored sample by sample.
MAX_TABLE_MEMBERS = 256

_CHUNK = 1024

# Scored sample by sample, a chunk of teams makes arrays of (teams, team size,
# samples): at most _CHUNK_VALUES of those values at a time (about 100 MB).
_CHUNK_VALUES = 2**22


def focal_scorer(labels, y, metric, from_tables=True):
    """A function of teams giving their per-focal-member scores.

    From count tables if ``from_tables`` and the pool has at most
    :data:`MAX_TABLE_MEMBERS` members, sample by sample otherwise.

    Parameters
    ----------
    labels : ndarray of shape (n_members, n_samples)
        Predicted labels, encoded ``0 .. K - 1``.
    y : ndarray of shape (n_samples,)
        True labels, encoded the same way.
    metric : str
        A name of :data:`~sklearn_dropnet.diversity.METRICS`.
    from_tables : bool, default=True
        Whether to build the tables (worth it when many teams are scored).

    Returns
    -------
    callable
        ``scores = scorer(teams)``: (n_teams, team_size) -> (n_teams,
        team_size), higher = more diverse, NaN where the focal member gets
        no sample wrong.
    """
    if from_tables and labels.shape[0] <= MAX_TABLE_MEMBERS:
        tables = count_tables(labels, y, metric)
        return lambda teams: table_focal_scores(tables, teams, metric)
    return lambda teams: sample_focal_scores(labels, y, teams, metric)


def sample_focal_scores(labels, y, teams, metric):
    """``focal_scores`` computed sample by sample, chunk by chunk of teams
    (fewer teams to a chunk the more held-out samples there are)."""
    teams = np.asarray(teams)
    chunk = max(1, min(_CHUNK, _CHUNK_VALUES // max(1, teams.shape[1] * len(y))))
    return np.concatenate(
        [focal_scores(labels, y, teams[start : start + chunk], metric) for start in range(0, len(teams), chunk)]
    )


def count_tables(labels, y, metric):
    """The counts ``metric`` needs, for every pair and triple of members.

    Parameters
    ----------
    labels : ndarray of shape (n_members, n_samples)
        Predicted labels, encoded ``0 .. K - 1``.
    y : ndarray of shape (n_samples,)
        True labels, encoded the same way.
    metric : str
        A name of :data:`~sklearn_dropnet.diversity.METRICS`.

    Returns
    -------
    dict of ndarray
        ``wrong2`` always; ``wrong3`` for the oracle metrics, ``same3`` and
        ``label2`` for the two kappas. Counted on samples packed 64 to a
        word, by ``popcount`` of their intersections.
    """
    n_members = len(labels)
    wrong = _packed(labels != y)
    tables = {"wrong2": _count_and(wrong, wrong)}
    if metric in _LABEL_METRICS:
        same3 = np.empty((n_members,) * 3, dtype=np.int32)
        for i in range(n_members):  # symmetric in (i, j): count j >= i
            same3[i, i:] = same3[i:, i] = _count_and(_packed(labels[i] == labels[i:]), wrong)
        n_labels = int(max(labels.max(), y.max())) + 1
        said = _packed(labels[:, None, :] == np.arange(n_labels)[:, None])  # (M, K, words)
        label2 = _count_and(said.reshape(n_members * n_labels, -1), wrong)
        tables["same3"] = same3
        tables["label2"] = label2.reshape(n_members, n_labels, n_members).transpose(0, 2, 1)
    else:
        # Symmetric in (i, j, v): count i <= j, v and take the other orders
        # from there (the uncounted entries are 0, the counts >= 0).
        lowest_first = np.zeros((n_members,) * 3, dtype=np.int32)
        for i in range(n_members):
            lowest_first[i, i:, i:] = _count_and(wrong[i] & wrong[i:], wrong[i:])
        tables["wrong3"] = np.maximum(
            lowest_first,
            np.maximum(lowest_first.transpose(1, 0, 2), lowest_first.transpose(1, 2, 0)),
        )
    return tables


def _packed(bits):
    """Boolean arrays (..., n_samples) as (..., n_words) of uint64."""
    packed = np.packbits(bits, axis=-1)
    padding = [(0, 0)] * (packed.ndim - 1) + [(0, -packed.shape[-1] % 8)]
    return np.ascontiguousarray(np.pad(packed, padding)).view(np.uint64)


def _count_and(first, second):
    """Samples set in both, for every row of ``first`` and of ``second``: int32 (n1, n2).

    Rows of ``first`` are taken a block at a time, so that the intersections
    held at once stay near 2**22 words.
    """
    counts = np.empty((len(first), len(second)), dtype=np.int32)
    rows = max(1, 2**22 // max(1, second.size))
    for start in range(0, len(first), rows):
        both = first[start : start + rows, None, :] & second[None, :, :]
        counts[start : start + rows] = _popcount(both).sum(axis=-1)
    return counts


def _popcount(words):
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return np.bitwise_count(words)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=-1)


_BYTE_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)


def table_focal_scores(tables, teams, metric):
    """Per-focal-member scores of each team, as ``focal_scores`` returns them.

    Parameters
    ----------
    tables : dict of ndarray
        From :func:`count_tables`.
    teams : ndarray of shape (n_teams, team_size)
        Member indices.
    metric : str
        A name of :data:`~sklearn_dropnet.diversity.METRICS`.

    Returns
    -------
    ndarray of shape (n_teams, team_size)
        Higher = more diverse; NaN where the focal member gets no sample wrong.
    """
    function, (_, agreement) = _TABLE_METRICS[metric], _METRICS[metric]
    teams = np.asarray(teams)
    scores = np.concatenate(
        [function(tables, teams[start : start + _CHUNK]) for start in range(0, len(teams), _CHUNK)]
    )
    view = tables["wrong2"][teams, teams]  # n_v of each focal member
    scores[view == 0] = np.nan
    return 1.0 - scores if agreement else scores


def _wrong2(tables, teams):
    """``wrong2[i, v]`` for members ``i`` and focal ``v`` of each team: (teams, L, L) floats."""
    return tables["wrong2"][teams[:, :, None], teams[:, None, :]].astype(float)


def _sums(tables, teams):
    """``S1`` and ``S2`` of each team and view: (teams, L) each."""
    s1 = _wrong2(tables, teams).sum(axis=1)
    wrong3 = tables["wrong3"][teams[:, :, None, None], teams[:, None, :, None], teams[:, None, None, :]]
    s2 = wrong3.sum(axis=(1, 2), dtype=float) - s1  # the i == j terms are wrong2
    return s1, s2


def _view_size(tables, teams):
    return tables["wrong2"][teams, teams].astype(float)


def _generalized_diversity(tables, teams):
    s1, s2 = _sums(tables, teams)
    with np.errstate(invalid="ignore", divide="ignore"):
        gd = 1.0 - s2 / ((teams.shape[1] - 1) * s1)
    return np.where(s1 == 0, 0.0, gd)


def _kohavi_wolpert_variance(tables, teams):
    s1, s2 = _sums(tables, teams)
    size = teams.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((size - 1) * s1 - s2) / _view_size(tables, teams) / size**2


def _pair_counts(tables, teams):
    """N11, N10, N01, N00 of every pair and view: (teams, pairs, views) each."""
    first, second = (teams[:, index] for index in _pairs(teams.shape[1]))
    focal = teams[:, None, :]
    both = tables["wrong3"][first[:, :, None], second[:, :, None], focal].astype(float)
    wrong_first = tables["wrong2"][first[:, :, None], focal].astype(float)
    wrong_second = tables["wrong2"][second[:, :, None], focal].astype(float)
    n = _view_size(tables, teams)[:, None, :]
    n10, n01 = wrong_second - both, wrong_first - both
    return n - wrong_first - wrong_second + both, n10, n01, both


def _binary_disagreement(tables, teams):
    _, n10, n01, _ = _pair_counts(tables, teams)
    n = _view_size(tables, teams)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (n10 / n + n01 / n).mean(axis=1)


def _q_statistic(tables, teams):
    n11, n10, n01, n00 = _pair_counts(tables, teams)
    numerator = n11 * n00 - n01 * n10
    denominator = n11 * n00 + n01 * n10
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pair = np.where(denominator == 0, 0.0, numerator / denominator)
    return per_pair.mean(axis=1)  # empty views: NaN, set by the caller


def _label_sums(tables, teams):
    """``label2[i, v, k]`` of each member and view: (teams, views, members, K)."""
    return tables["label2"][teams[:, None, :], teams[:, :, None]].astype(float)


def _cohen_kappa(tables, teams):
    first, second = _pairs(teams.shape[1])
    counts = _label_sums(tables, teams)
    n = _view_size(tables, teams)[:, :, None]  # (teams, views, 1)
    chance = (counts[:, :, first, :] * counts[:, :, second, :]).sum(axis=-1)
    observed = tables["same3"][
        teams[:, first][:, :, None], teams[:, second][:, :, None], teams[:, None, :]
    ].astype(float).transpose(0, 2, 1)  # fmt: skip
    return _kappa(n * observed - chance, n**2 - chance, n).mean(axis=2)


def _fleiss_kappa(tables, teams):
    first, second = _pairs(teams.shape[1])
    agree = tables["same3"][
        teams[:, first][:, :, None], teams[:, second][:, :, None], teams[:, None, :]
    ].astype(float).sum(axis=1)  # fmt: skip
    pooled = _label_sums(tables, teams).sum(axis=2)  # (teams, views, K)
    return _fleiss_from_counts(agree, pooled, _view_size(tables, teams), teams.shape[1])


#: name -> function of the tables and a chunk of teams (the orientation of
#: each metric is that of ``_diversity._METRICS``)
_TABLE_METRICS = {
    "generalized_diversity": _generalized_diversity,
    "kohavi_wolpert_variance": _kohavi_wolpert_variance,
    "binary_disagreement": _binary_disagreement,
    "q_statistic": _q_statistic,
    "cohen_kappa": _cohen_kappa,
    "fleiss_kappa": _fleiss_kappa,
}

_LABEL_METRICS = ("cohen_kappa", "fleiss_kappa")
