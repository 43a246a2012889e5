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

The pieces HQ is built from live beside this module: scoring teams
(``_team_scores.py``), focal diversity from count tables
(``_focal_counts.py``) and growing a level from the one below
(``_team_growth.py``).
"""

import math

import numpy as np
from tqdm.auto import tqdm

from ._focal_counts import focal_scorer
from ._team_growth import all_pairs, grow_beam, grow_exact
from ._team_scores import (
    _EPS,
    _tie_key,
    extended_team_scores,
    member_votes,
    team_accuracy,
    team_scores,
)

# member_votes, team_accuracy and team_scores are imported from here by the
# command line and the benchmarks.
__all__ = [
    "FINAL_CHOICES",
    "MAX_TEAMS_PER_LEVEL",
    "greedy_select",
    "hq_select",
    "member_votes",
    "team_accuracy",
    "team_scores",
    "top_select",
]


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

#: Default ``max_teams_per_level``. The exact search stays within it for the
#: paper's pools (M = 20, S = 5: at most about 2,800 teams a level); M = 128,
#: S = 8 on 2,000 held-out samples takes a few seconds with it.
MAX_TEAMS_PER_LEVEL = 5_000


def hq_select(
    labels,
    votes,
    y,
    n_select,
    metric="generalized_diversity",
    prune_fraction=0.1,
    normalize=True,
    final_choice="one_se",
    max_teams_per_level=MAX_TEAMS_PER_LEVEL,
    verbose=False,
):
    """Choose a team of at most ``n_select`` members by HQ ensemble pruning.

    Level 2 holds every pair of members. At each level the teams are ranked
    by focal diversity and the least diverse ``prune_fraction`` of them are
    dropped; the next level only holds teams grown from the survivors, one
    member larger, and only those none of whose sub-teams was dropped (a
    dropped team eliminates every larger team that contains it). The final
    team is chosen among the survivors of every level by ``final_choice``
    (see :func:`_best_team`).

    A level holds at most ``max_teams_per_level`` teams (None: no cap). As
    long as growing every survivor stays within the cap, the search is the
    exact one above. From the first level where it would not, the search
    is a beam: the survivors grow in order of diversity, the most diverse
    first, each by every member it lacks, the most accurate first (held-out
    accuracy, then log-loss), until the next level is full (see
    :func:`~sklearn_dropnet.ensemble._team_growth.grow_beam`), so that the
    order the members are listed in matters only where teams tie.

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
    # Sample by sample while the search is exact, as it always was (to the
    # last bit, so that ties fall as before); from count tables once capped.
    focal = focal_scorer(labels, y, metric, from_tables=False)
    levels, exact = [], True
    member_order = _most_accurate_first(votes, y)
    teams, origin = all_pairs(n_members)
    with tqdm(total=n_select - 1, desc="HQ levels", unit="level", disable=not verbose) as bar:
        for size in range(2, n_select + 1):
            if len(teams) == 0:
                break
            level = _score_level(focal, votes, y, teams, origin, normalize)
            level["survived"] = _survivors(
                level["normalized_diversity"], level["accuracy"], prune_fraction
            )
            levels.append(level)
            bar.set_postfix(teams=len(teams), refresh=False)
            bar.update()
            if size < n_select:
                (teams, origin), still_exact = _next_level(
                    level, n_members, max_teams_per_level, exact, member_order
                )
                if exact and not still_exact:
                    focal = focal_scorer(labels, y, metric, from_tables=True)
                exact = still_exact
    candidates = _concatenate_levels(levels)
    return _best_team(candidates, len(y), final_choice), candidates


def _score_level(focal, votes, y, teams, origin, normalize):
    """Focal diversity and held-out accuracy of every team of one level."""
    scores = focal(teams)
    ranked = _minmax_per_focal_model(scores, teams, len(votes)) if normalize else scores
    accuracy, log_loss = extended_team_scores(votes, y, *origin)
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
    survived = np.ones(len(diversity), dtype=bool)
    survived[_ranking(diversity, accuracy)[:n_drop]] = False
    return survived


def _ranking(diversity, accuracy):
    """Teams from the least to the most diverse (see :func:`_survivors`)."""
    return np.lexsort((accuracy, np.nan_to_num(diversity, nan=np.inf)))


def _most_accurate_first(votes, y):
    """Members by held-out accuracy, then log-loss (each a team of one), best
    first (then by index: members tied on both predict alike)."""
    accuracy, log_loss = team_scores(votes, y, np.arange(len(votes))[:, None])
    return np.lexsort((log_loss, -accuracy))


def _next_level(level, n_members, max_teams, exact, member_order=None):
    """The next level's teams and their origin, and whether the search is still exact.

    While it is exact, every survivor grows, as long as that gives at most
    ``max_teams`` teams. Otherwise, and at every later level (a sub-team
    left out by the cap was not dropped, so the exact rule would wrongly
    eliminate the teams that contain it), the most diverse survivors grow
    until the level is full.
    """
    survived = level["survived"]
    if exact:
        grown = grow_exact(level["team"][survived], n_members, max_teams)
        if grown is not None:
            return grown, True
    most_diverse_first = _ranking(level["normalized_diversity"], level["accuracy"])[::-1]
    most_diverse_first = most_diverse_first[survived[most_diverse_first]]
    grown = grow_beam(
        level["team"][most_diverse_first], level["team"][~survived], n_members, max_teams, member_order
    )
    return grown, False


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


def greedy_select(votes, y, n_select, return_trials=False, replacement=True):
    """Caruana et al.'s forward selection with replacement (``n_select`` picks).

    Starts from the best single member and adds, one at a time, the member
    (possibly one already picked) that maximises the held-out accuracy of the
    combined prediction; ties go to the lower log loss (see
    :func:`team_scores`), then to the lower index. Returns the picks in
    order, repeats included, and with ``return_trials`` also every team
    tried: for each step, the picks so far plus each member, as a list of
    tuples in the order tried. With ``replacement=False`` a member is picked
    at most once (reduced-error ordering) and only the members not yet
    picked are tried.
    """
    n_members, n_samples = votes.shape[:2]
    picks, trials = [], []
    total = np.zeros(votes.shape[1:])
    for n_picked in range(1, n_select + 1):
        trial = total + votes  # (members, samples, classes): team + each member
        accuracy = (trial.argmax(axis=2) == y).mean(axis=1)
        true_class = trial[:, np.arange(n_samples), y] / n_picked
        log_loss = -np.log(np.clip(true_class, _EPS, None)).mean(axis=1)
        tried = np.ones(n_members, dtype=bool)
        if not replacement:
            tried[picks] = False
            accuracy[~tried] = -np.inf
        best = int(np.lexsort((_tie_key(log_loss), -accuracy))[0])
        trials += [(*picks, member) for member in np.flatnonzero(tried).tolist()]
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
