"""Ensemble selection on held-out predictions: HQ, greedy, top-S.

Everything here works on arrays computed once per member on the held-out
set, never on models:

- ``labels`` (n_members, n_samples): each member's predicted label, encoded
  ``0 .. K - 1``;
- ``votes`` (n_members, n_samples, K): what a member adds to the team's
  combined prediction -- its class probabilities (soft voting) or the one-hot
  encoding of its label (hard, plurality voting);
- ``y`` (n_samples,): the true labels, encoded the same way.

A team is a row of member indices. Its combined prediction is the class with
the largest sum of its members' votes (ties go to the first class), and a
member listed twice counts twice.
"""

import math

import numpy as np

from ._diversity import focal_scores

# Teams are scored in chunks so that the (teams, members, samples) arrays of
# a level with thousands of teams stay small.
_CHUNK = 1024
_EPS = np.finfo(np.float64).eps


def _tie_key(values):
    """``values`` rounded to 10 decimals, as a sort key for tie-breaking.

    Teams that tie exactly (e.g. copies of one deterministic member) get log
    losses and diversities that differ in the last bits, by the order of the
    floating-point sums; rounded, they tie, and the next rule decides.
    """
    return np.round(values, 10)


def member_votes(probas, voting):
    """Votes of each member: probabilities (``"soft"``) or one-hot labels."""
    if voting == "soft":
        return probas
    return np.eye(probas.shape[2])[probas.argmax(axis=2)]


def team_scores(votes, y, teams):
    """Held-out accuracy and log loss of each team's combined prediction.

    The combined probability of a class is the team's mean vote for it (its
    members' mean probability, or the share of members voting for it); the
    log loss is the mean of ``-log`` of the true class's combined
    probability, clipped at machine epsilon. A team's votes are summed by
    one matrix product: the (teams, members) matrix of how often each member
    is in each team, times the votes.

    Returns
    -------
    accuracy, log_loss : ndarray of shape (n_teams,)
    """
    teams = np.asarray(teams)
    n_members, n_samples, n_classes = votes.shape
    flat_votes = votes.reshape(n_members, -1)
    accuracy, log_loss = np.empty(len(teams)), np.empty(len(teams))
    for start in range(0, len(teams), _CHUNK):
        chunk = teams[start : start + _CHUNK]
        membership = np.zeros((len(chunk), n_members))
        np.add.at(membership, (np.arange(len(chunk))[:, None], chunk), 1.0)
        summed = (membership @ flat_votes).reshape(len(chunk), n_samples, n_classes)
        done = slice(start, start + len(chunk))
        accuracy[done] = (summed.argmax(axis=2) == y).mean(axis=1)
        true_class = summed[:, np.arange(n_samples), y] / chunk.shape[1]
        log_loss[done] = -np.log(np.clip(true_class, _EPS, None)).mean(axis=1)
    return accuracy, log_loss


def team_accuracy(votes, y, teams):
    """Held-out accuracy of each team's combined prediction, shape (n_teams,)."""
    return team_scores(votes, y, teams)[0]


def team_focal_diversity(labels, y, teams, metric, normalize=False):
    """Focal diversity of each team (higher = more diverse), shape (n_teams,).

    The mean over the team's members as focal models (see
    :func:`sklearn_dropnet.diversity.focal_diversity`). With ``normalize``,
    each focal model's scores are first min-max normalised among the given
    teams that contain it, as the published HQ code does, so that no focal
    model dominates the ranking by the scale of its scores.
    """
    scores = _focal_scores(labels, y, np.asarray(teams), metric)
    if normalize:
        scores = _minmax_per_focal_model(scores, teams, labels.shape[0])
    return _nanmean_rows(scores)


def _focal_scores(labels, y, teams, metric):
    """Per-focal-model scores (n_teams, team_size), computed chunk by chunk."""
    return np.concatenate(
        [
            focal_scores(labels, y, teams[start : start + _CHUNK], metric)
            for start in range(0, len(teams), _CHUNK)
        ]
    )


def _minmax_per_focal_model(scores, teams, n_members):
    """Rescale ``scores[t, f]`` to [0, 1] among all entries of model teams[t, f].

    A model whose scores are all equal gets 0.5; NaN (a model with no
    negative sample) stays NaN.
    """
    low = np.full(n_members, np.inf)
    high = np.full(n_members, -np.inf)
    np.fmin.at(low, teams.ravel(), scores.ravel())
    np.fmax.at(high, teams.ravel(), scores.ravel())
    low, span = low[teams], (high - low)[teams]
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(span > 0, (scores - low) / span, 0.5)
    return np.where(np.isnan(scores), np.nan, scaled)


def _nanmean_rows(values):
    """Mean of each row ignoring NaN; NaN for a row of NaN only."""
    present = ~np.isnan(values)
    count = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present, values, 0.0).sum(axis=1) / count


# --- HQ: hierarchical pruning, level by level --------------------------------


def hq_select(
    labels,
    votes,
    y,
    n_select,
    metric="generalized_diversity",
    prune_fraction=0.1,
    normalize=True,
    final_choice="one_se",
):
    """Choose a team of at most ``n_select`` members by HQ ensemble pruning.

    Level 2 holds every pair of members. At each level the teams are ranked
    by focal diversity and the least diverse ``prune_fraction`` of them are
    dropped; the next level only holds teams grown from the survivors, one
    member larger, and only those none of whose sub-teams was dropped (a
    dropped team eliminates every larger team that contains it). The final
    team is chosen among the survivors of every level by ``final_choice``
    (see :func:`_best_team`).

    Returns
    -------
    team : ndarray of int
        Sorted member indices of the chosen team.
    candidates : dict of ndarray
        Every team scored: ``team`` (tuples), ``size``, ``focal_diversity``
        (plain mean, higher = more diverse), ``normalized_diversity`` (the
        score ranked within its level), ``accuracy`` and ``log_loss``
        (held-out) and ``survived`` (not dropped at its level).
    """
    n_members = labels.shape[0]
    levels = []
    teams = _all_pairs(n_members)
    for size in range(2, n_select + 1):
        if len(teams) == 0:
            break
        level = _score_level(labels, votes, y, teams, metric, normalize)
        level["survived"] = _survivors(
            level["normalized_diversity"], level["accuracy"], prune_fraction
        )
        levels.append(level)
        if size < n_select:
            teams = _grow(teams[level["survived"]], n_members)
    candidates = _concatenate_levels(levels)
    return _best_team(candidates, len(y), final_choice), candidates


def _all_pairs(n_members):
    first, second = np.triu_indices(n_members, k=1)
    return np.column_stack([first, second])


def _score_level(labels, votes, y, teams, metric, normalize):
    """Focal diversity and held-out accuracy of every team of one level."""
    scores = _focal_scores(labels, y, teams, metric)
    ranked = _minmax_per_focal_model(scores, teams, len(labels)) if normalize else scores
    accuracy, log_loss = team_scores(votes, y, teams)
    return {
        "team": teams,
        "focal_diversity": _nanmean_rows(scores),
        "normalized_diversity": _nanmean_rows(ranked),
        "accuracy": accuracy,
        "log_loss": log_loss,
    }


def _survivors(diversity, accuracy, prune_fraction):
    """Mask of the teams kept: all but the least diverse ``prune_fraction``.

    Teams are ranked by diversity (a team with no focal view, NaN, ranks as
    most diverse); ties drop the less accurate team first, then the earlier
    one (the sort is stable).
    """
    # Rounded down, as in the published code; 1e-9 absorbs the float error
    # of the product (0.29 * 100 is 28.999999999999996).
    n_drop = math.floor(prune_fraction * len(diversity) + 1e-9)
    ranking = np.lexsort((accuracy, np.nan_to_num(diversity, nan=np.inf)))
    survived = np.ones(len(diversity), dtype=bool)
    survived[ranking[:n_drop]] = False
    return survived


def _grow(survivors, n_members):
    """Teams one member larger whose every sub-team survived.

    Rows are sorted member indices. Each survivor is extended by every member
    with a larger index than its last (so each larger team is built once,
    from its first members), then a new team is kept only if all of its
    sub-teams of the survivors' size are survivors.
    """
    owner, newcomer = np.nonzero(np.arange(n_members) > survivors[:, -1:])
    grown = np.column_stack([survivors[owner], newcomer])
    keep = np.ones(len(grown), dtype=bool)
    surviving_rows = _row_keys(survivors)
    for left_out in range(grown.shape[1]):
        sub_teams = np.delete(grown, left_out, axis=1)
        keep &= np.isin(_row_keys(sub_teams), surviving_rows)
    return grown[keep]


def _row_keys(rows):
    """One hashable/sortable key per row (its bytes), for ``np.isin``."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()


def _concatenate_levels(levels):
    if not levels:
        raise ValueError("HQ scored no team: it needs at least 2 members.")
    team = np.empty(sum(len(level["team"]) for level in levels), dtype=object)
    team[:] = [tuple(int(i) for i in row) for level in levels for row in level["team"]]
    out = {"team": team, "size": np.array([len(t) for t in team])}
    for key in ("focal_diversity", "normalized_diversity", "accuracy", "log_loss", "survived"):
        out[key] = np.concatenate([level[key] for level in levels])
    return out


FINAL_CHOICES = ("one_se", "accuracy")


def _best_team(candidates, n_samples, final_choice="one_se"):
    """The final team among the survivors, by held-out accuracy.

    ``"accuracy"``: the most accurate survivor; ties go to the lower log loss
    (a proper score that still separates equally accurate teams), then to the
    more diverse and then the smaller team.

    ``"one_se"``: accuracies within one standard error of the best,
    ``sqrt(p (1 - p) / n_samples)`` for the best accuracy ``p``, count as
    tied -- on a few hundred held-out samples they differ by a sample or two,
    and the team that wins by that much is mostly lucky (the more teams are
    scored, the luckier). Among the tied teams the largest wins, as more
    members average out more of each member's noise, then the lower log
    loss (the finer measure of the same held-out predictions), then the
    more diverse.
    """
    survived = np.flatnonzero(candidates["survived"])
    accuracy = candidates["accuracy"][survived]
    diversity = _tie_key(np.nan_to_num(candidates["focal_diversity"][survived], nan=np.inf))
    size, log_loss = candidates["size"][survived], _tie_key(candidates["log_loss"][survived])
    if final_choice == "accuracy":
        ranking = np.lexsort((size, -diversity, log_loss, -accuracy))
    else:
        best = accuracy.max()
        tolerance = np.sqrt(best * (1 - best) / n_samples) + 1e-12
        tied = accuracy >= best - tolerance
        ranking = np.lexsort((-diversity, log_loss, -size, ~tied))
    return np.array(candidates["team"][survived[ranking[0]]])


# --- baselines ---------------------------------------------------------------


def greedy_select(votes, y, n_select, return_trials=False):
    """Caruana et al.'s forward selection with replacement (``n_select`` picks).

    Starts from the best single member and adds, one at a time, the member
    (possibly one already picked) that maximises the held-out accuracy of the
    combined prediction; ties go to the lower log loss (see
    :func:`team_scores`), then to the lower index. Returns the picks in
    order, repeats included, and with ``return_trials`` also every team
    tried: for each step, the picks so far plus each member, as a list of
    tuples in the order tried.
    """
    n_members, n_samples = votes.shape[:2]
    picks, trials = [], []
    total = np.zeros(votes.shape[1:])
    for n_picked in range(1, n_select + 1):
        trial = total + votes  # (members, samples, classes): team + each member
        accuracy = (trial.argmax(axis=2) == y).mean(axis=1)
        true_class = trial[:, np.arange(n_samples), y] / n_picked
        log_loss = -np.log(np.clip(true_class, _EPS, None)).mean(axis=1)
        best = int(np.lexsort((_tie_key(log_loss), -accuracy))[0])
        trials += [(*picks, member) for member in range(n_members)]
        picks.append(best)
        total += votes[best]
    picks = np.array(picks)
    return (picks, trials) if return_trials else picks


def top_select(votes, y, n_select):
    """The ``n_select`` members with the best held-out accuracy.

    Ties go to the lower log loss, then to the lower index.
    """
    accuracy, log_loss = team_scores(votes, y, np.arange(votes.shape[0])[:, None])
    return np.lexsort((_tie_key(log_loss), -accuracy))[:n_select]
