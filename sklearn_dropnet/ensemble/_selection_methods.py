"""The team-selection methods of ``HQEnsembleClassifier(method=...)``, by name.

Each method takes the held-out arrays (``labels``, ``votes``, ``y``; see
``_ensemble_selection.py``) and the ensemble's selection settings, and
returns the team (member indices, repeats allowed) and ``candidates``, the
teams it examined, as ``HQEnsembleClassifier.candidates_`` documents them.
A new method is a function added to :data:`SELECTION_METHODS`.
"""

from functools import partial

import numpy as np

from ._ensemble_selection import (
    _nanmean_rows,
    greedy_select,
    hq_select,
    team_scores,
    top_select,
)
from ._focal_counts import focal_scorer
from ._member_ranking import error_ambiguity_select
from ._ordered_aggregation import (
    complementarity_select,
    margin_distance_select,
    reduced_error_select,
)

__all__ = ["SELECTION_METHODS"]

# More teams than this are scored from count tables (see describe_teams).
_MANY_TEAMS = 1000


def _hq(labels, votes, y, settings):
    return hq_select(
        labels,
        votes,
        y,
        settings["n_select"],
        metric=settings["metric"],
        prune_fraction=settings["prune_fraction"],
        final_choice=settings["final_choice"],
        max_teams_per_level=settings["max_teams_per_level"],
        verbose=settings["verbose"],
    )


def _greedy(labels, votes, y, settings):
    team, tried = greedy_select(votes, y, settings["n_select"], return_trials=True)
    chosen = [trial == tuple(team[: len(trial)]) for trial in tried]
    return team, describe_teams(tried, chosen, labels, votes, y, settings["metric"])


def _ordered(select, labels, votes, y, settings):
    """An ordered-aggregation method: its picks, and every team each step tried."""
    team = select(labels, votes, y, settings["n_select"])
    tried, chosen = [], []
    for step in range(len(team)):
        picked = team[:step].tolist()
        for member in range(len(labels)):
            if member not in picked:
                tried.append((*picked, member))
                chosen.append(member == team[step])
    return team, describe_teams(tried, chosen, labels, votes, y, settings["metric"])


def _top_members(labels, votes, y, n_select):
    """The ``n_select`` members of best held-out accuracy (a ranking)."""
    return top_select(votes, y, n_select)


def _ranked(select, labels, votes, y, settings):
    """A ranking method (top, error ambiguity): every member scored alone, then the team of the best."""
    team = select(labels, votes, y, settings["n_select"])
    n_members = len(labels)
    tried = [(i,) for i in range(n_members)] + [tuple(team)]
    chosen = [i in team for i in range(n_members)] + [True]
    return team, describe_teams(tried, chosen, labels, votes, y, settings["metric"])


def _all(labels, votes, y, settings):
    team = np.arange(len(labels))
    return team, describe_teams([tuple(team)], [True], labels, votes, y, settings["metric"])


def describe_teams(teams, chosen, labels, votes, y, metric):
    """``candidates_`` of a method other than HQ: the teams it examined.

    ``survived`` marks what the method kept (``chosen``). Focal diversity is
    over a team's distinct members (NaN for one); ``normalized_diversity``
    is NaN (HQ alone ranks by it).
    """
    n_teams = len(teams)
    accuracy, log_loss = np.empty(n_teams), np.empty(n_teams)
    diversity = np.full(n_teams, np.nan)
    distinct = [np.unique(team) for team in teams]
    # Count tables pay once there are many teams (greedy's S x M trials): 6x
    # faster for pair metrics at M=100, S=50 (5,000 teams), equal results.
    focal = focal_scorer(labels, y, metric, from_tables=n_teams > _MANY_TEAMS)
    for size in {len(members) for members in distinct} - {1}:
        rows = [i for i, members in enumerate(distinct) if len(members) == size]
        diversity[rows] = _nanmean_rows(focal(np.array([distinct[i] for i in rows])))
    for size in {len(team) for team in teams}:
        rows = [i for i, team in enumerate(teams) if len(team) == size]
        accuracy[rows], log_loss[rows] = team_scores(votes, y, np.array([teams[i] for i in rows]))
    team_column = np.empty(n_teams, dtype=object)
    team_column[:] = [tuple(int(i) for i in team) for team in teams]
    return {
        "team": team_column,
        "size": np.array([len(team) for team in teams]),
        "focal_diversity": diversity,
        "normalized_diversity": np.full(n_teams, np.nan),
        "accuracy": accuracy,
        "log_loss": log_loss,
        "survived": np.array(chosen, dtype=bool),
    }


#: name -> method(labels, votes, y, settings) -> (team, candidates)
SELECTION_METHODS = {
    "hq": _hq,
    "greedy": _greedy,
    "top": partial(_ranked, _top_members),
    "all": _all,
    "reduced_error": partial(_ordered, reduced_error_select),
    "complementarity": partial(_ordered, complementarity_select),
    "margin_distance": partial(_ordered, margin_distance_select),
    "error_ambiguity": partial(_ranked, error_ambiguity_select),
}
