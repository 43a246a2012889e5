"""The ordered-aggregation methods (reduced error, complementarity, margin
distance) and the error-ambiguity ranking, each against a plain-loop
reference written from its paper, and the registry of methods behind
HQEnsembleClassifier(method=...)."""

import math

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from sklearn_dropnet import HQEnsembleClassifier
from sklearn_dropnet.ensemble._member_ranking import (
    error_ambiguity_scores,
    error_ambiguity_select,
)
from sklearn_dropnet.ensemble._ordered_aggregation import (
    MARGIN_DISTANCE_P,
    complementarity_select,
    margin_distance_select,
    reduced_error_select,
)
from sklearn_dropnet.ensemble._selection_methods import SELECTION_METHODS
from sklearn_dropnet.ensemble._team_scores import member_votes


def combined_label(votes, team, sample):
    """The team's combined prediction on one sample: the largest summed vote, first if tied."""
    sums = [sum(votes[m][sample][k] for m in team) for k in range(votes.shape[2])]
    return max(range(len(sums)), key=lambda k: (sums[k], -k))


def reference_reduced_error(votes, y, n_select):
    """Margineantu & Dietterich: add the member that makes the team most accurate."""
    picks = []
    for _ in range(n_select):
        best, best_key = None, None
        for member in range(len(votes)):
            if member in picks:
                continue
            team = [*picks, member]
            right = sum(combined_label(votes, team, i) == y[i] for i in range(len(y)))
            mean_true = [sum(votes[m][i][y[i]] for m in team) / len(team) for i in range(len(y))]
            loss = round(-np.mean(np.log(np.clip(mean_true, np.finfo(float).eps, None))), 10)
            key = (right, -loss)  # more accurate, then lower log loss, then lower index
            if best_key is None or key > best_key:
                best, best_key = member, key
        picks.append(best)
    return picks


def reference_complementarity(votes, labels, y, n_select):
    """Martínez-Muñoz & Suárez: the member right most often where the team is wrong."""
    accuracy = [np.mean(labels[m] == y) for m in range(len(labels))]
    first = max(range(len(labels)), key=lambda m: (accuracy[m], -m))
    picks = [first]
    while len(picks) < n_select:
        best, best_key = None, None
        for member in range(len(labels)):
            if member in picks:
                continue
            count = sum(
                labels[member][i] == y[i] and combined_label(votes, picks, i) != y[i]
                for i in range(len(y))
            )
            key = (count, accuracy[member], -member)
            if best_key is None or key > best_key:
                best, best_key = member, key
        picks.append(best)
    return picks


def reference_margin_distance(labels, y, n_select, p=MARGIN_DISTANCE_P):
    """Martínez-Muñoz & Suárez: the team's mean signature nearest to (p, ..., p)."""
    signatures = [[1 if labels[m][i] == y[i] else -1 for i in range(len(y))] for m in range(len(labels))]
    picks = []
    for size in range(1, n_select + 1):
        best, best_distance = None, None
        for member in range(len(labels)):
            if member in picks:
                continue
            team = [*picks, member]
            mean = [sum(signatures[m][i] for m in team) / size for i in range(len(y))]
            distance = sum((value - p) ** 2 for value in mean)
            if best_distance is None or distance < best_distance - 1e-12:
                best, best_distance = member, distance
        picks.append(best)
    return picks


@pytest.mark.parametrize(
    "select, reference",
    [
        (reduced_error_select, lambda labels, votes, y: reference_reduced_error(votes, y, 5)),
        (complementarity_select, lambda labels, votes, y: reference_complementarity(votes, labels, y, 5)),
    ],
    ids=["reduced_error", "complementarity"],
)
@pytest.mark.parametrize("voting", ["soft", "hard"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ordered_method_matches_reference(select, reference, seed, voting, simulated_members):
    probas, labels, y = simulated_members(9, n_samples=60, n_classes=4, skill=(0.5, 0.8), seed=seed)
    votes = member_votes(probas, voting)  # hard votes tie often: the first class wins
    picks = select(labels, votes, y, 5)
    assert picks.tolist() == reference(labels, votes, y)
    assert len(set(picks.tolist())) == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_margin_distance_matches_reference(seed, simulated_members):
    probas, labels, y = simulated_members(9, n_samples=60, n_classes=4, skill=(0.5, 0.8), seed=seed)
    picks = margin_distance_select(labels, probas, y, 5)
    assert picks.tolist() == reference_margin_distance(labels, y, 5)


def test_complementarity_adds_the_member_that_covers_the_teams_errors():
    y = np.zeros(6, dtype=int)
    labels = np.array(
        [
            [0, 0, 0, 0, 1, 1],  # the most accurate: picked first
            [0, 0, 0, 1, 1, 1],  # more of the same errors
            [1, 1, 0, 0, 0, 0],  # right on the first member's errors
        ]
    )
    votes = member_votes(np.eye(2)[labels], "hard")
    assert complementarity_select(labels, votes, y, 2).tolist() == [0, 2]


@pytest.mark.parametrize("method", ["reduced_error", "complementarity", "margin_distance"])
def test_ordered_methods_in_the_ensemble(method):
    X, y = load_iris(return_X_y=True)
    hq = HQEnsembleClassifier(
        DecisionTreeClassifier(max_depth=2, max_features=1), n_estimators=8, n_select=3,
        method=method, random_state=0,
    ).fit(X, y)  # fmt: skip
    assert len(hq.selected_) == 3 == len(set(hq.selected_.tolist()))
    candidates = hq.candidates_
    # every step tried each member not yet picked, and kept the pick
    assert len(candidates["team"]) == 8 + 7 + 6
    kept = [team for team, survived in zip(candidates["team"], candidates["survived"]) if survived]
    assert kept == [tuple(hq.selected_[: i + 1].tolist()) for i in range(3)]
    assert np.isnan(candidates["focal_diversity"][:8]).all()  # a single member
    assert not np.isnan(candidates["accuracy"]).any()


def test_every_method_of_the_registry_is_accepted():
    X, y = load_iris(return_X_y=True)
    for method in SELECTION_METHODS:
        hq = HQEnsembleClassifier(GaussianNB(), n_estimators=3, n_select=2, method=method, bootstrap=True)
        assert hq.fit(X, y).score(X, y) > 0.8


def reference_error_ambiguity(votes, y, n_select):
    """Jiang et al.: per member, the multi-class logistic loss terms plus the
    squared distance to the pool's mean probabilities, summed sample by
    sample and class by class; the lowest ``n_select``, lower index first."""
    n_members, n_samples, k = votes.shape
    scores = []
    for m in range(n_members):
        total = 0.0
        for i in range(n_samples):
            for c in range(k):
                p = votes[m][i][c]
                if c == y[i]:
                    total += math.exp(-p / k) / k**2
                else:
                    total += math.exp(p / (k * (k - 1))) / (k**2 * (k - 1) ** 2)
                mean = sum(votes[other][i][c] for other in range(n_members)) / n_members
                total += (p - mean) ** 2
        scores.append(total)
    return sorted(range(n_members), key=lambda m: (scores[m], m))[:n_select], scores


@pytest.mark.parametrize("voting", ["soft", "hard"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_ambiguity_matches_reference(seed, voting, simulated_members):
    probas, labels, y = simulated_members(9, n_samples=60, n_classes=4, skill=(0.5, 0.8), seed=seed)
    votes = member_votes(probas, voting)
    picks, scores = reference_error_ambiguity(votes, y, 5)
    np.testing.assert_allclose(error_ambiguity_scores(votes, y), scores, rtol=1e-12)
    assert error_ambiguity_select(labels, votes, y, 5).tolist() == picks


def test_error_ambiguity_adds_the_distance_to_the_pools_mean_to_the_loss():
    y = np.array([0, 1, 0, 1])
    right = np.eye(2)[y]
    votes = np.stack([right, 1 - right, 0.5 * right + 0.25])  # right, wrong, right but unsure
    # loss terms by hand (K = 2): exp(-p_true / 2) / 4 + exp(p_other / 2) / 4 per sample
    loss = [4 * (np.exp(-p / 2) + np.exp((1 - p) / 2)) / 4 for p in (1.0, 0.0, 0.75)]
    mean_true = (1 + 0 + 0.75) / 3  # the pool's mean probability of the true class
    ambiguity = [4 * 2 * (p - mean_true) ** 2 for p in (1.0, 0.0, 0.75)]
    np.testing.assert_allclose(error_ambiguity_scores(votes, y), np.add(loss, ambiguity))
    # the confident member has the lower loss, the unsure one is nearer the mean and wins
    assert loss[0] < loss[2] and error_ambiguity_select(None, votes, y, 3).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="2 or more classes"):
        error_ambiguity_scores(np.ones((2, 3, 1)), np.zeros(3, dtype=int))


def test_error_ambiguity_in_the_ensemble():
    X, y = load_iris(return_X_y=True)
    hq = HQEnsembleClassifier(
        DecisionTreeClassifier(max_depth=2, max_features=1), n_estimators=8, n_select=3,
        method="error_ambiguity", random_state=0,
    ).fit(X, y)  # fmt: skip
    assert len(hq.selected_) == 3 == len(set(hq.selected_.tolist()))
    candidates = hq.candidates_
    assert len(candidates["team"]) == 8 + 1  # each member alone, then the team
    assert candidates["team"][-1] == tuple(hq.selected_.tolist()) and candidates["survived"][-1]



def test_many_examined_teams_are_scored_from_count_tables(monkeypatch, simulated_members):
    from sklearn_dropnet.ensemble import _focal_counts, _selection_methods

    probas, labels, y = simulated_members(40, n_samples=120, seed=0)
    settings = dict(n_select=30, metric="binary_disagreement")
    built, count_tables = [], _focal_counts.count_tables
    monkeypatch.setattr(_focal_counts, "count_tables", lambda *args: built.append(1) or count_tables(*args))
    _, by_table = _selection_methods._greedy(labels, probas, y, settings)  # 30 x 40 = 1,200 teams
    assert built == [1]
    monkeypatch.setattr(_selection_methods, "_MANY_TEAMS", 10**6)
    _, by_sample = _selection_methods._greedy(labels, probas, y, settings)
    assert built == [1]
    np.testing.assert_allclose(by_table["focal_diversity"], by_sample["focal_diversity"], rtol=0, atol=1e-12)
