"""HQEnsembleClassifier and the selection algorithms behind it."""

import io
import os
import pickle
import re
import sys
import threading
import time
import warnings
from itertools import combinations
from math import comb

import joblib
import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    ShuffleSplit,
    cross_val_predict,
    train_test_split,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier
from sklearn_dropnet.ensemble._ensemble_selection import (
    _minmax_per_focal_model,
    _survivors,
    greedy_select,
    hq_select,
    member_votes,
    team_accuracy,
    team_scores,
    top_select,
)
from sklearn_dropnet.ensemble._parallel import limit_torch_threads, threads_per_worker
from sklearn_dropnet.ensemble._team_growth import grow_exact
from sklearn_dropnet.models import ModelB

# --- held-out predictions for the pure selection tests -----------------------



def all_teams(n_members, sizes):
    return [t for s in sizes for t in combinations(range(n_members), s)]


# --- team accuracy, votes, normalisation -------------------------------------


def test_team_accuracy_soft_and_hard_votes_by_hand():
    y = np.array([0, 1, 1])
    probas = np.array(
        [
            [[0.9, 0.1], [0.6, 0.4], [0.6, 0.4]],  # labels 0 0 0
            [[0.4, 0.6], [0.1, 0.9], [0.45, 0.55]],  # labels 1 1 1
            [[0.8, 0.2], [0.7, 0.3], [0.3, 0.7]],  # labels 0 0 1
        ]
    )
    soft = member_votes(probas, "soft")
    hard = member_votes(probas, "hard")
    # soft (0, 1): sums [1.3, .7] [.7, 1.3] [1.05, .95] -> 0 1 0 -> 2/3
    # soft (0, 1, 1): member 1 counts twice -> 0? [1.7,1.3] no: 1; 1; 1 -> 2/3
    assert team_accuracy(soft, y, [[0, 1]]) == pytest.approx([2 / 3])
    assert team_accuracy(soft, y, [[0, 1, 1]]) == pytest.approx([2 / 3])
    assert team_accuracy(soft, y, [[1, 2]]) == pytest.approx([1.0])
    # hard (0, 1): every sample ties 1-1 -> first class 0 -> only sample 0 right
    assert team_accuracy(hard, y, [[0, 1]]) == pytest.approx([1 / 3])
    # hard (0, 1, 2): votes 0: 2-1, 0: 2-1, 1: 2-1 -> 0 0 1 -> 2/3
    assert team_accuracy(hard, y, [[0, 1, 2]]) == pytest.approx([2 / 3])


def test_minmax_normalisation_is_per_focal_model():
    teams = np.array([[0, 1], [0, 2], [1, 2]])
    scores = np.array([[1.0, 10.0], [3.0, 30.0], [20.0, np.nan]])
    normalised = _minmax_per_focal_model(scores, teams, n_members=3)
    # model 0: 1, 3 -> 0, 1; model 1: 10, 20 -> 0, 1; model 2: 30, NaN -> 0.5, NaN
    expected = np.array([[0.0, 0.0], [1.0, 0.5], [1.0, np.nan]])
    np.testing.assert_allclose(normalised, expected)


# --- HQ levels ----------------------------------------------------------------


@pytest.mark.parametrize("fraction, n_teams, n_dropped", [(0.1, 9, 0), (0.1, 45, 4), (0.29, 100, 29), (0.58, 50, 29)])
def test_the_dropped_share_of_teams_is_rounded_down_exactly(fraction, n_teams, n_dropped):
    survived = _survivors(np.arange(n_teams, dtype=float), np.zeros(n_teams), fraction)
    assert (~survived).sum() == n_dropped
    assert not survived[:n_dropped].any()  # the least diverse go


def test_grow_keeps_exactly_the_teams_whose_subteams_all_survived():
    rng = np.random.default_rng(0)
    n_members = 7
    triples = np.array(all_teams(n_members, [3]))
    survivors = triples[rng.random(len(triples)) < 0.7]
    grown = {tuple(t) for t in grow_exact(survivors, n_members)[0]}
    surviving = {tuple(t) for t in survivors}
    expected = {
        t
        for t in all_teams(n_members, [4])
        if all(sub in surviving for sub in combinations(t, 3))
    }
    assert grown == expected
    assert len(expected) > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_hq_levels_only_grow_from_survivors(seed, simulated_members):
    probas, labels, y = simulated_members(9, seed=seed)
    _, cand = hq_select(labels, probas, y, n_select=5, prune_fraction=0.2)
    teams = [frozenset(t) for t in cand["team"]]
    dropped = [t for t, ok in zip(teams, cand["survived"]) if not ok]
    survivors = {t for t, ok in zip(teams, cand["survived"]) if ok}
    assert set(teams[: comb(9, 2)]) == {frozenset(p) for p in combinations(range(9), 2)}
    # a dropped team eliminates every larger team that contains it ...
    assert not any(d < t for d in dropped for t in teams)
    # ... and every team whose sub-teams one smaller all survived is scored
    for size in range(3, 6):
        for team in map(frozenset, combinations(range(9), size)):
            subs = {team - {m} for m in team}
            assert (team in teams) == subs.issubset(survivors)
    # each level drops its least diverse 20% (rounded down)
    for size in range(2, 6):
        at_level = cand["size"] == size
        n_dropped = np.sum(~cand["survived"][at_level])
        assert n_dropped == int(0.2 * at_level.sum())
        kept = cand["normalized_diversity"][at_level & cand["survived"]]
        gone = cand["normalized_diversity"][at_level & ~cand["survived"]]
        assert gone.max(initial=-np.inf) <= kept.min()


def test_hq_final_team_is_the_most_accurate_survivor(simulated_members):
    probas, labels, y = simulated_members(8, n_samples=60, seed=2)
    team, cand = hq_select(labels, probas, y, n_select=4, final_choice="accuracy")
    survived = cand["survived"]
    best = cand["accuracy"][survived].max()
    chosen = cand["team"].tolist().index(tuple(team))
    assert survived[chosen]
    assert cand["accuracy"][chosen] == best
    assert team_accuracy(probas, y, [team])[0] == best
    # accuracy ties are broken by the held-out log loss
    tied = survived & (cand["accuracy"] == best)
    assert tied.sum() > 1
    assert cand["log_loss"][chosen] == cand["log_loss"][tied].min()


def test_hq_one_se_choice_is_the_largest_near_best_team_of_lowest_log_loss(simulated_members):
    probas, labels, y = simulated_members(8, n_samples=60, seed=0, skill=(0.35, 0.55))
    team, cand = hq_select(labels, probas, y, n_select=4)  # final_choice="one_se"
    survived = cand["survived"]
    best = cand["accuracy"][survived].max()  # 0.95, by a team of 3
    standard_error = np.sqrt(best * (1 - best) / 60)  # 0.028: about 2 samples
    tied = survived & (cand["accuracy"] >= best - standard_error)
    chosen = cand["team"].tolist().index(tuple(team))
    assert tied[chosen]
    assert cand["accuracy"][chosen] < best  # 0.933: not the paper's choice here
    paper_choice, _ = hq_select(labels, probas, y, n_select=4, final_choice="accuracy")
    assert len(paper_choice) == 3
    assert cand["size"][chosen] == cand["size"][tied].max() == 4
    largest = tied & (cand["size"] == 4)
    assert largest.sum() > 1
    assert cand["log_loss"][chosen] == cand["log_loss"][largest].min()
    # A team better by more than one standard error still wins, whatever its size.
    probas[[0, 1]] = np.eye(probas.shape[2])[y] * 0.9 + 0.02  # two perfect members
    team, cand = hq_select(probas.argmax(axis=2), probas, y, n_select=4)
    assert {0, 1} <= set(team.tolist())
    assert team_accuracy(probas, y, [team])[0] == 1.0


def test_hq_without_pruning_is_exhaustive_search(simulated_members):
    probas, labels, y = simulated_members(7, seed=3)
    team, cand = hq_select(
        labels, probas, y, n_select=4, prune_fraction=0.0, final_choice="accuracy"
    )
    every_team = all_teams(7, [2, 3, 4])
    assert len(cand["team"]) == len(every_team)
    accuracies = team_accuracy(probas, y, [list(t) for t in every_team[:21]])
    assert team_accuracy(probas, y, [team])[0] == pytest.approx(
        max(
            accuracies.max(),
            *(team_accuracy(probas, y, [list(t)])[0] for t in every_team[21:]),
        )
    )


def test_hq_scores_far_fewer_teams_than_all_subsets(simulated_members):
    probas, labels, y = simulated_members(20, n_samples=360, n_classes=10, seed=4)
    team, cand = hq_select(labels, probas, y, n_select=5)
    n_all = sum(comb(20, s) for s in range(2, 6))  # 21679
    n_scored = len(cand["team"])
    assert 2 <= len(team) <= 5
    assert n_scored < n_all / 2
    assert np.bincount(cand["size"])[2] == 190


def test_hq_indices_beyond_ten_members(simulated_members):
    probas, labels, y = simulated_members(14, seed=5)
    probas[12] = probas[13] = np.eye(5)[y] * 0.6 + 0.08  # two perfect members
    team, _ = hq_select(probas.argmax(axis=2), probas, y, n_select=3)
    assert {12, 13} <= set(team.tolist())


# --- baselines -------------------------------------------------------------------


def reference_greedy(votes, y, n_picks):
    picks, total = [], np.zeros(votes.shape[1:])
    for n_picked in range(1, n_picks + 1):
        best_key, best = None, None
        for m in range(len(votes)):
            trial = total + votes[m]
            mean_vote = trial / n_picked
            key = (
                np.mean(trial.argmax(axis=1) == y),
                -log_loss(y, mean_vote, labels=range(votes.shape[2])),
            )
            if best_key is None or key > best_key:
                best_key, best = key, m
        picks.append(best)
        total += votes[best]
    return picks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_matches_reference(seed, simulated_members):
    probas, _, y = simulated_members(10, seed=seed)
    assert greedy_select(probas, y, 6).tolist() == reference_greedy(probas, y, 6)


def test_greedy_picks_with_replacement():
    y = np.array([0, 0, 1, 1])
    probas = np.array(  # dyadic numbers: sums and ties are exact
        [
            [[0.875, 0.125], [0.875, 0.125], [0.125, 0.875], [0.625, 0.375]],
            [[0.25, 0.75]] * 4,  # always 1
            [[0.625, 0.375]] * 4,  # always 0
        ]
    )
    # 1st: member 0 alone is right 3/4 (the others 2/4).
    # 2nd: 0 + 1 is right 4/4; 0 + 0 and 0 + 2 still miss sample 3.
    # 3rd: + 1 gets samples 0, 1 wrong (2/4); + 0 and + 2 tie sample 3
    #      (1.5 vs 1.5 -> class 0), both 3/4. Mean true-class probabilities:
    #      + 0: 2/3, 2/3, 5/6, 1/2; + 2: 7/12, 7/12, 2/3, 1/2 -> + 0 has the
    #      lower log loss: member 0 is picked again.
    assert greedy_select(probas, y, 3).tolist() == [0, 1, 0]


def test_top_is_best_single_members_in_order(simulated_members):
    probas, _, y = simulated_members(6, seed=6)
    single, loss = team_scores(probas, y, np.arange(6)[:, None])
    top = top_select(probas, y, 3)
    assert sorted(single[top], reverse=True) == single[top].tolist()
    assert single[top].min() >= np.delete(single, top).max()
    np.testing.assert_allclose(loss, [log_loss(y, p, labels=range(5)) for p in probas])


# --- the estimator ----------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X[:900], y[:900], random_state=0, stratify=y[:900])


def tree_ensemble(**params):
    params = {"n_estimators": 10, "n_select": 4, "random_state": 0, **params}
    return HQEnsembleClassifier(DecisionTreeClassifier(max_features=8), **params)


@pytest.fixture(scope="module")
def fitted_trees(digits):
    X_train, _, y_train, _ = digits
    return tree_ensemble().fit(X_train, y_train)


def test_fitted_attributes(fitted_trees):
    hq = fitted_trees
    assert len(hq.estimators_) == 10
    assert list(hq.named_estimators_) == [f"estimator_{i}" for i in range(10)]
    assert 2 <= len(hq.selected_) <= 4
    assert hq.ensemble_ == [hq.estimators_[i] for i in hq.selected_]
    np.testing.assert_array_equal(hq.classes_, np.arange(10))
    assert hq.n_features_in_ == 64
    seeds = {m.random_state for m in hq.estimators_}
    assert len(seeds) == 10  # every clone has its own seed
    cand = hq.candidates_
    assert {len(v) for v in cand.values()} == {len(cand["team"])}
    assert tuple(hq.selected_) in set(cand["team"])
    assert np.all((cand["accuracy"] >= 0) & (cand["accuracy"] <= 1))


def test_hq_team_beats_best_single_member(digits, fitted_trees):
    _, X_test, _, y_test = digits
    team = fitted_trees.score(X_test, y_test)  # 0.884 with 4 trees
    singles = [m.score(X_test, y_test) for m in fitted_trees.estimators_]  # best 0.831
    assert team > max(singles) + 0.04


@pytest.mark.parametrize(
    "method, n_members",
    [("greedy", 4), ("top", 4), ("all", 10)],
)
def test_baseline_methods(digits, method, n_members):
    X_train, X_test, y_train, y_test = digits
    hq = tree_ensemble(method=method).fit(X_train, y_train)
    assert len(hq.selected_) == n_members
    assert hq.score(X_test, y_test) > 0.8


def frozen_trees(X, y, n_members):
    trees = [
        DecisionTreeClassifier(max_features=8, random_state=seed).fit(X, y)
        for seed in range(n_members)
    ]
    return [(f"t{i}", FrozenEstimator(tree)) for i, tree in enumerate(trees)]


def soft_vote_accuracy(members, team, X, y):
    proba = sum(members[i][1].predict_proba(X) for i in team)
    return accuracy_score(y, proba.argmax(axis=1))


@pytest.mark.parametrize("method", ["greedy", "top", "all"])
def test_baseline_candidates_are_the_teams_tried(digits, method):
    """candidates_ lists what each baseline examined, with true held-out scores."""
    X_train, X_held, y_train, y_held = digits
    members = frozen_trees(X_train, y_train, 6)
    hq = HQEnsembleClassifier(estimators=members, method=method, n_select=3).fit(X_held, y_held)
    cand = hq.candidates_
    teams, kept = list(cand["team"]), cand["survived"]
    if method == "greedy":
        # 3 steps x 6 members; each step tries the picks so far plus each member.
        assert len(teams) == 18 and kept.sum() == 3
        assert [t for t, k in zip(teams, kept) if k] == [
            tuple(hq.selected_[:n]) for n in (1, 2, 3)
        ]
        assert teams[6:12] == [(hq.selected_[0], m) for m in range(6)]
    elif method == "top":
        assert teams[:6] == [(m,) for m in range(6)] and teams[6] == tuple(hq.selected_)
        assert np.flatnonzero(kept[:6]).tolist() == sorted(hq.selected_) and kept[6]
        # The kept singles are the most accurate ones.
        assert cand["accuracy"][:6][kept[:6]].min() >= cand["accuracy"][:6][~kept[:6]].max()
    else:
        assert teams == [tuple(range(6))] and kept.tolist() == [True]
    for team, accuracy in zip(teams, cand["accuracy"]):
        assert accuracy == pytest.approx(soft_vote_accuracy(members, team, X_held, y_held))
    distinct = np.array([len(set(t)) for t in teams])
    assert np.isnan(cand["focal_diversity"][distinct == 1]).all()
    assert (cand["focal_diversity"][distinct > 1] > 0).all()


def test_all_members_soft_vote_is_mean_probability(digits):
    X_train, X_test, y_train, _ = digits
    hq = tree_ensemble(method="all", n_estimators=3).fit(X_train, y_train)
    expected = np.mean([m.predict_proba(X_test) for m in hq.estimators_], axis=0)
    np.testing.assert_allclose(hq.predict_proba(X_test), expected)


def test_greedy_repeats_weigh_members(digits):
    X_train, X_test, y_train, _ = digits
    hq = tree_ensemble(method="greedy", n_select=6, n_estimators=6, random_state=1)
    hq.fit(X_train, y_train)
    members, counts = np.unique(hq.selected_, return_counts=True)
    assert len(members) > 1 and counts.max() > 1  # [2 5 1 3 0 1]
    expected = sum(
        c * hq.estimators_[m].predict_proba(X_test) for m, c in zip(members, counts)
    ) / 6
    np.testing.assert_allclose(hq.predict_proba(X_test), expected)


def test_hard_voting(digits):
    X_train, X_test, y_train, y_test = digits
    hq = tree_ensemble(voting="hard").fit(X_train, y_train)
    assert not hasattr(hq, "predict_proba")
    with pytest.raises(AttributeError) as error:
        hq.predict_proba(X_test)
    # scikit-learn's available_if raises its own AttributeError from ours, which the traceback shows
    assert re.search(r"predict_proba is not available when voting='hard'.*Use voting='soft'", str(error.value.__cause__))
    votes = np.array([m.predict(X_test) for m in hq.ensemble_])
    plurality = np.array([np.bincount(v, minlength=10).argmax() for v in votes.T])
    np.testing.assert_array_equal(hq.predict(X_test), plurality)


def test_frozen_members_are_not_refit_and_all_of_X_is_held_out():
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0, stratify=y)
    fitted = [
        make_pipeline(StandardScaler(), LogisticRegression(C=0.01)).fit(X_train, y_train),
        GaussianNB().fit(X_train, y_train),
        DecisionTreeClassifier(max_depth=2, random_state=0).fit(X_train, y_train),
    ]
    before = [m.predict_proba(X_val) for m in fitted]
    hq = HQEnsembleClassifier(
        estimators=[(f"m{i}", FrozenEstimator(m)) for i, m in enumerate(fitted)],
        n_select=2,
    ).fit(X_val, y_val)
    for member, proba in zip(hq.estimators_, before):
        np.testing.assert_array_equal(member.predict_proba(X_val), proba)
    chosen = hq.candidates_["team"].tolist().index(tuple(hq.selected_))
    assert hq.candidates_["accuracy"][chosen] == accuracy_score(y_val, hq.predict(X_val))


def test_string_labels():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    hq = HQEnsembleClassifier(GaussianNB(), n_estimators=3, n_select=2, random_state=0)
    hq.fit(X, names[y])
    np.testing.assert_array_equal(hq.classes_, names)
    assert set(hq.predict(X)) <= set(names)
    assert hq.score(X, names[y]) > 0.9


def test_same_random_state_same_result(digits):
    X_train, X_test, y_train, _ = digits
    a = tree_ensemble(n_estimators=5).fit(X_train, y_train)
    b = tree_ensemble(n_estimators=5).fit(X_train, y_train)
    np.testing.assert_array_equal(a.selected_, b.selected_)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))


# --- errors -----------------------------------------------------------------------


def iris():
    return load_iris(return_X_y=True)


def test_error_n_select_larger_than_members():
    with pytest.raises(ValueError, match=r"n_select=4 is larger than the number of members \(3\)"):
        HQEnsembleClassifier(GaussianNB(), n_estimators=3, n_select=4).fit(*iris())


def test_error_single_member():
    with pytest.raises(ValueError, match="at least 2 members, got 1"):
        HQEnsembleClassifier(
            estimators=[("only", GaussianNB())], n_select=1, method="top"
        ).fit(*iris())


def test_error_member_without_predict_proba():
    members = [("nb", GaussianNB()), ("svm", LinearSVC())]
    with pytest.raises(TypeError, match="Member 'svm' \\(LinearSVC\\) has no predict_proba"):
        HQEnsembleClassifier(estimators=members, n_select=2).fit(*iris())


def test_error_mismatched_classes():
    X, y = iris()
    two_classes = GaussianNB().fit(X[y < 2], y[y < 2])
    members = [
        ("all", FrozenEstimator(GaussianNB().fit(X, y))),
        ("two", FrozenEstimator(two_classes)),
    ]
    message = r"Member 'two' predicts the classes \[0, 1\], but y has the classes \[0, 1, 2\]"
    with pytest.raises(ValueError, match=message):
        HQEnsembleClassifier(estimators=members, n_select=2).fit(X, y)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"method": "best"}, ValueError, r"The 'method' parameter .* must be a str among .*'hq'.* Got 'best'"),
        ({"voting": "mean"}, ValueError, r"The 'voting' parameter .* must be a str among \{'(hard|soft)', '(hard|soft)'\}"),
        ({"metric": "entropy"}, ValueError, r"The 'metric' parameter .*'generalized_diversity'"),
        ({"final_choice": "best"}, ValueError, r"The 'final_choice' parameter .* must be a str among"),
        ({"n_select": 0}, ValueError, r"The 'n_select' parameter .* int in the range \[1, inf\). Got 0"),
        ({"n_select": 1}, ValueError, "n_select == 1, must be >= 2 for method='hq'.* use method='top'"),
        ({"prune_fraction": 1.0}, ValueError, r"The 'prune_fraction' parameter .* range \[0.0, 1.0\). Got 1.0"),
        ({"max_teams_per_level": 0}, ValueError, r"The 'max_teams_per_level' parameter .* \[1, inf\) or None"),
        ({"validation_fraction": 0.0}, ValueError, r"The 'validation_fraction' parameter .* range \(0.0, 1.0\)"),
        ({"cv": 1}, ValueError, r"The 'cv' parameter .* int in the range \[2, inf\), an object implementing 'split'"),
        ({"n_jobs": "2"}, TypeError, "The 'n_jobs' parameter .* instance of 'int' or None. Got '2'"),
        ({"n_jobs": 0}, ValueError, "n_jobs == 0 runs nothing"),
        ({"cv": True}, TypeError, "The 'cv' parameter .* Got True instead"),
        ({"cv": "five"}, ValueError, "The 'cv' parameter .* Got 'five' instead"),
        ({"verbose": "yes"}, ValueError, "The 'verbose' parameter"),
        ({"cv": ShuffleSplit(3, random_state=0)}, ValueError, "only works for partitions"),
        ({"cv": 3, "bootstrap": True}, ValueError, "bootstrap=True cannot be combined with cv"),
        ({"estimators": [("nb", GaussianNB())] * 2}, ValueError, "either estimator or estimators"),
        (
            {"estimator": None, "estimators": [GaussianNB(), GaussianNB()]},
            TypeError,
            r"list of \(name, estimator\)",
        ),
        (  # a two-step pipeline unpacks into two "pairs"
            {"estimator": None, "estimators": [make_pipeline(StandardScaler(), GaussianNB())] * 2},
            TypeError,
            r"estimators must be a list of \(name, estimator\) tuples, as in VotingClassifier; got Pipeline",
        ),
        ({"estimator": None, "estimators": []}, ValueError, r"An ensemble needs at least 2 members, got 0\.$"),
        (
            {"estimator": None, "estimators": [("a", GaussianNB()), ("a", GaussianNB())]},
            ValueError,
            "not unique",
        ),
        (
            {"estimator": None, "estimators": [(1, GaussianNB()), (2, GaussianNB())]},
            TypeError,
            r"Member names must be strings, got \[1, 2\]",
        ),
        ({"prune_fraction": float("nan")}, ValueError, r"The 'prune_fraction' parameter .* Got nan"),
        ({"validation_fraction": float("nan")}, ValueError, r"The 'validation_fraction' .* Got nan"),
        (
            {"validation_fraction": 0.01},
            ValueError,
            r"validation_fraction=0.01 of 150 rows leaves 2 held out, fewer than the 3 classes",
        ),
        (
            {"validation_fraction": 0.99},
            ValueError,
            r"validation_fraction=0.99 of 150 rows leaves 1 left to train on, fewer than the 3",
        ),
    ],
)
def test_invalid_parameters(params, error, message):
    hq = HQEnsembleClassifier(GaussianNB(), n_estimators=3, n_select=2).set_params(**params)
    with pytest.raises(error, match=message):
        hq.fit(*iris())


@pytest.mark.parametrize("params", [{}, {"cv": 3}], ids=["held-out", "cv"])
def test_empty_data_is_refused_as_scikit_learn_refuses_it(params):
    # not with the held-out split's error about test_size and train_size
    X, y = iris()
    hq = HQEnsembleClassifier(GaussianNB(), n_estimators=3, n_select=2, **params)
    message = r"Found array with 0 sample\(s\) \(shape=\(0, 4\)\) while a minimum of 1 is required by HQEnsembleClassifier\."
    with pytest.raises(ValueError, match=message):
        hq.fit(X[:0], y[:0])


def test_a_class_with_one_row_is_named_before_the_held_out_split():
    X, y = iris()
    y = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    y[0] = "lonely"
    hq = HQEnsembleClassifier(GaussianNB(), n_estimators=3, n_select=2, random_state=0)
    with pytest.raises(ValueError, match=r"at least 2 rows of each class .* have 1: \['lonely'\]"):
        hq.fit(X, y)


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HQEnsembleClassifier(GaussianNB()).predict(iris()[0])


# --- scikit-learn integration --------------------------------------------------------


def lr_ensemble(**params):
    params = {"n_estimators": 4, "n_select": 2, "random_state": 0, **params}
    return HQEnsembleClassifier(LogisticRegression(max_iter=1000), **params)


def test_clone_and_nested_params():
    hq = lr_ensemble(metric="cohen_kappa")
    params = hq.get_params(deep=True)
    assert params["estimator__C"] == 1.0
    copy = clone(hq.set_params(estimator__C=0.5))
    assert copy.get_params()["estimator__C"] == 0.5
    assert copy.metric == "cohen_kappa"
    assert copy.estimator is not hq.estimator


def test_named_members_are_reachable_with_set_params():
    hq = HQEnsembleClassifier(
        estimators=[("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB())],
        n_select=2,
    )
    assert hq.get_params()["lr__C"] == 1.0
    hq.set_params(lr__C=0.01, nb=LogisticRegression(C=5.0, max_iter=1000))
    assert hq.estimators[0][1].C == 0.01
    assert isinstance(hq.estimators[1][1], LogisticRegression)
    hq.fit(*iris())
    assert hq.named_estimators_["lr"].C == 0.01
    assert hq.named_estimators_["nb"].C == 5.0
    # A grid over a named member's parameter refits with each value.
    search = GridSearchCV(
        HQEnsembleClassifier(
            estimators=[("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB())],
            n_select=2, random_state=0,
        ),
        {"lr__C": [1e-4, 1.0]},
        cv=3,
    ).fit(*iris())  # fmt: skip
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"lr__C": 1.0}
    assert scores[1] > scores[0]


@pytest.mark.parametrize(
    "name, message",
    [("n_select", "conflict with constructor arguments"), ("a__b", "must not contain __")],
)
def test_member_names_that_would_break_set_params(name, message):
    hq = HQEnsembleClassifier(estimators=[(name, GaussianNB()), ("nb", GaussianNB())], n_select=2)
    with pytest.raises(ValueError, match=message):
        hq.fit(*iris())


def test_grid_search_over_n_select_and_nested_params():
    X, y = load_wine(return_X_y=True)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), lr_ensemble(method="top")),
        {
            "hqensembleclassifier__n_select": np.array([1, 3]),
            "hqensembleclassifier__estimator__C": [0.001, 1.0],
        },
        cv=3,
    ).fit(X, y)
    assert search.best_params_["hqensembleclassifier__estimator__C"] == 1.0
    assert search.best_score_ > 0.9


def test_members_get_x_as_it_is():
    # As with VotingClassifier, a DataFrame reaches the members with its
    # columns, and missing values reach members that handle them.
    pytest.importorskip("pandas")
    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.assign(size=np.where(X["alcohol"] > 13, "large", "small"))
    member = make_pipeline(
        make_column_transformer(
            (StandardScaler(), ["alcohol", "malic_acid", "flavanoids"]),
            (OneHotEncoder(), ["size"]),
        ),
        LogisticRegression(max_iter=1000),
    )
    hq = HQEnsembleClassifier(member, n_estimators=3, n_select=2, random_state=0).fit(X, y)
    assert list(hq.feature_names_in_) == list(X.columns)
    assert hq.score(X, y) > 0.85
    assert isinstance(hq.predict_proba(X.iloc[:5]), np.ndarray)

    X_nan = X.drop(columns="size").to_numpy(copy=True)
    X_nan[::7, 0] = np.nan
    gaps = HQEnsembleClassifier(
        HistGradientBoostingClassifier(max_iter=20), n_estimators=3, n_select=2,
        random_state=0,
    ).fit(X_nan, y)  # fmt: skip
    assert gaps.score(X_nan, y) > 0.9
    assert get_tags(gaps).input_tags.allow_nan
    assert not get_tags(HQEnsembleClassifier()).input_tags.allow_nan  # DropNetClassifier

    with pytest.raises(TypeError, match="DropNetClassifier takes dense X, and X is a sparse"):  # DropNet says so
        HQEnsembleClassifier(
            DropNetClassifier(max_epochs=1), n_estimators=2, n_select=2
        ).fit(csr_matrix(X_nan[1::7]), y[1::7])


def test_frozen_members_fitted_on_a_dataframe_see_its_feature_names():
    pytest.importorskip("pandas")
    X, y = load_wine(return_X_y=True, as_frame=True)
    frozen = [
        (f"nb{i}", FrozenEstimator(GaussianNB(var_smoothing=v).fit(X, y)))
        for i, v in enumerate([1e-9, 1e-3])
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "X does not have valid feature names" before
        hq = HQEnsembleClassifier(estimators=frozen, n_select=2).fit(X, y)
        hq.predict(X)


def test_every_random_state_in_a_member_is_seeded():
    X, y = iris()
    member = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_features=1))

    def fit(random_state, tree_seed=None):
        member.set_params(decisiontreeclassifier__random_state=tree_seed)
        return HQEnsembleClassifier(
            member, n_estimators=4, n_select=2, method="all", random_state=random_state
        ).fit(X, y)

    seeds = [m[-1].random_state for m in fit(0).estimators_]
    assert len(set(seeds)) == 4  # each member its own tree seed
    assert seeds == [m[-1].random_state for m in fit(0).estimators_]  # reproducible
    np.testing.assert_array_equal(fit(0).predict_proba(X), fit(0).predict_proba(X))
    # A seed fixed in the template is replaced, as BaggingClassifier does:
    # otherwise all members would be the same tree.
    assert len({m[-1].random_state for m in fit(0, tree_seed=0).estimators_}) == 4
    # The member's own random_state is still the ensemble's draw for it.
    nb = HQEnsembleClassifier(LogisticRegression(), n_estimators=3, n_select=2, random_state=0)
    drawn = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=3)
    assert [m.random_state for m in nb.fit(X, y).estimators_] == drawn.tolist()


def test_replacing_a_member_of_a_tuple_by_name():
    X, y = iris()
    hq = HQEnsembleClassifier(
        estimators=(("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB())),
        n_select=2, method="all",
    )  # fmt: skip
    hq.set_params(nb=DecisionTreeClassifier(random_state=0))
    assert "nb" not in vars(hq)  # not a stray attribute
    assert isinstance(hq.fit(X, y).named_estimators_["nb"], DecisionTreeClassifier)
    hq.set_params(nb__max_depth=1)
    assert hq.get_params()["nb__max_depth"] == 1


def test_a_member_set_to_drop_is_left_out_as_in_voting_classifier():
    from sklearn.ensemble import VotingClassifier

    X, y = iris()
    members = [
        ("lr", LogisticRegression(max_iter=1000)),
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(random_state=0)),
    ]
    hq = HQEnsembleClassifier(estimators=members, n_select=2, method="all").set_params(tree="drop")
    hq.fit(X, y)
    voting = VotingClassifier(members, voting="soft").set_params(tree="drop").fit(X, y)
    assert [type(m).__name__ for m in hq.estimators_] == ["LogisticRegression", "GaussianNB"]
    assert hq.named_estimators_["tree"] == voting.named_estimators_["tree"] == "drop"
    mean = np.mean([member.predict_proba(X) for member in hq.estimators_], axis=0)
    np.testing.assert_allclose(hq.predict_proba(X), mean)
    with pytest.raises(ValueError, match=r"at least 2 members, got 1 \(2 set to 'drop'\)"):
        hq.set_params(nb="drop").fit(X, y)
    with pytest.raises(TypeError, match=r"Member 'nb' is the string 'gnb'; a member is a classifier, or 'drop'"):
        hq.set_params(nb="gnb").fit(X, y)


def test_parameters_of_a_default_member_need_the_member():
    with pytest.raises(ValueError, match="Cannot set estimator__max_epochs: estimator is None; pass estimator=DropNetClassifier"):
        HQEnsembleClassifier().set_params(estimator__max_epochs=1)
    hq = HQEnsembleClassifier().set_params(
        estimator=DropNetClassifier(), estimator__max_epochs=1
    )
    assert hq.estimator.max_epochs == 1
    with pytest.raises(ValueError, match="set a member of estimators as <name>__<parameter>"):
        HQEnsembleClassifier(estimators=[("nb", GaussianNB())]).set_params(estimator__C=1)


def test_exact_ties_go_to_the_smaller_team():
    # Copies of one member tie exactly on every team; their log losses
    # differ in the last bits only, and must not decide.
    X, y = iris()
    copy = FrozenEstimator(GaussianNB().fit(X, y))
    hq = HQEnsembleClassifier(
        estimators=[("a", copy), ("b", copy), ("c", copy)], n_select=3,
        final_choice="accuracy",
    ).fit(X, y)  # fmt: skip
    assert len(hq.selected_) == 2
    hq = HQEnsembleClassifier(
        LogisticRegression(max_iter=1000), n_estimators=8, n_select=5,
        final_choice="accuracy", random_state=0,
    ).fit(X, y)  # fmt: skip
    assert len(hq.selected_) == 2


def test_joblib_round_trip(digits):
    X_train, X_test, y_train, _ = digits
    hq = tree_ensemble(n_estimators=4, n_select=3).fit(X_train, y_train)
    buffer = io.BytesIO()
    joblib.dump(hq, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.selected_, hq.selected_)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), hq.predict_proba(X_test))


# No check fails at present; a failing check would be listed here with its reason.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [lr_ensemble(), lr_ensemble(voting="hard", method="greedy"), lr_ensemble(cv=2)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# --- parallel fitting -------------------------------------------------------------------


class ThreadProbe(DummyClassifier):
    """Records, while it is fitted, torch's thread count and where it ran."""

    def fit(self, X, y):
        self.torch_threads_ = torch.get_num_threads()
        self.thread_name_ = threading.current_thread().name
        return super().fit(X, y)


class RowRecorder(DummyClassifier):
    """Records the rows it was fitted on (the first feature holds a row id)."""

    def fit(self, X, y):
        self.rows_ = np.asarray(X)[:, 0].astype(int)
        return super().fit(X, y)


class FoldRecorder(RowRecorder):
    """A RowRecorder that also lists, across clones, every set of rows fitted."""

    seen = []

    def fit(self, X, y):
        super().fit(X, y)
        FoldRecorder.seen.append(self.rows_)
        return self


def test_bootstrap_gives_each_member_its_own_stratified_sample():
    y = np.repeat([0, 1, 2], [40, 40, 20])
    X = np.column_stack([np.arange(100), np.zeros(100)])

    def fit(**params):
        params = {"n_estimators": 4, "n_select": 2, "random_state": 0, **params}
        return HQEnsembleClassifier(RowRecorder(), validation_fraction=0.2, **params).fit(X, y)

    plain, bagged = fit(), fit(bootstrap=True)
    held_out = set(range(100)) - set(plain.estimators_[0].rows_)
    assert len(held_out) == 20
    for member in plain.estimators_:  # without bootstrap: the same 80 rows each
        assert sorted(member.rows_) == sorted(set(range(100)) - held_out)
    samples = [member.rows_ for member in bagged.estimators_]
    for rows in samples:
        assert len(rows) == 80 and len(set(rows)) < 80  # drawn with replacement
        assert not set(rows) & held_out  # never the held-out rows
        np.testing.assert_array_equal(np.bincount(y[rows]), [32, 32, 16])  # stratified
    assert len({tuple(sorted(rows)) for rows in samples}) == 4  # one sample each
    again = [member.rows_ for member in fit(bootstrap=True).estimators_]
    for rows, same in zip(samples, again):
        np.testing.assert_array_equal(rows, same)


def test_cv_chooses_the_team_on_out_of_fold_predictions():
    X, y = load_wine(return_X_y=True)
    members = [
        ("lr", make_pipeline(StandardScaler(), LogisticRegression(C=0.01))),
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
        ("stump", DecisionTreeClassifier(max_depth=1, random_state=0)),
    ]
    folds = KFold(4, shuffle=True, random_state=0)
    hq = HQEnsembleClassifier(estimators=members, n_select=3, cv=folds).fit(X, y)
    # By hand: each member's out-of-fold probabilities on every row ...
    probas = np.stack(
        [cross_val_predict(m, X, y, cv=folds, method="predict_proba") for _, m in members]
    )
    team, candidates = hq_select(probas.argmax(axis=2), probas, y, 3)
    np.testing.assert_array_equal(hq.selected_, team)
    np.testing.assert_allclose(hq.candidates_["accuracy"], candidates["accuracy"])
    assert len(set(np.round(candidates["accuracy"] * len(y)))) > 3  # teams do differ
    # ... and then each member fitted on all rows.
    for member, (_, unfitted) in zip(hq.estimators_, members):
        np.testing.assert_allclose(
            member.predict_proba(X), clone(unfitted).fit(X, y).predict_proba(X)
        )


def test_cv_trains_every_member_on_every_row_and_folds_on_the_rest():
    y = np.repeat([0, 1, 2], [40, 40, 20])
    X = np.column_stack([np.arange(100), np.zeros(100)])
    FoldRecorder.seen = []
    hq = HQEnsembleClassifier(
        FoldRecorder(), n_estimators=3, n_select=2, cv=4, random_state=0
    ).fit(X, y)
    for member in hq.estimators_:  # no row set aside for the final members
        np.testing.assert_array_equal(member.rows_, np.arange(100))
    fold_rows = [rows for rows in FoldRecorder.seen if len(rows) < 100]
    assert len(fold_rows) == 3 * 4
    for fold in range(4):  # the same stratified folds for every member
        rows = fold_rows[fold]
        assert len(rows) == 75
        np.testing.assert_array_equal(np.bincount(y[rows]), [30, 30, 15])
        for member in range(1, 3):
            np.testing.assert_array_equal(fold_rows[member * 4 + fold], rows)
    held_out = [set(range(100)) - set(rows) for rows in fold_rows[:4]]
    assert set().union(*held_out) == set(range(100))  # every row held out once
    assert sum(map(len, held_out)) == 100


def test_cv_splits_by_the_groups_given_to_fit():
    X, y = load_wine(return_X_y=True)
    groups = np.arange(len(y)) % 6  # rows of one group never on both sides
    members = [("nb", GaussianNB()), ("tree", DecisionTreeClassifier(max_depth=2, random_state=0))]
    hq = HQEnsembleClassifier(estimators=members, n_select=2, cv=GroupKFold(3))
    hq.fit(X, y, groups=groups)
    probas = np.stack(
        [
            cross_val_predict(m, X, y, groups=groups, cv=GroupKFold(3), method="predict_proba")
            for _, m in members
        ]
    )
    _, candidates = hq_select(probas.argmax(axis=2), probas, y, 2)
    np.testing.assert_allclose(hq.candidates_["accuracy"], candidates["accuracy"])


def test_groups_reach_the_ensemble_in_a_search_with_metadata_routing():
    import sklearn

    X, y = load_wine(return_X_y=True)
    members = [("nb", GaussianNB()), ("tree", DecisionTreeClassifier(max_depth=2, random_state=0))]
    groups = np.arange(len(y)) % 6
    with sklearn.config_context(enable_metadata_routing=True):
        hq = HQEnsembleClassifier(estimators=members, n_select=2, cv=GroupKFold(3)).set_fit_request(groups=True)
        search = GridSearchCV(hq, {"voting": ["soft", "hard"]}, cv=KFold(2)).fit(X, y, groups=groups)
    assert search.best_estimator_.selected_.shape == (2,)
    with pytest.raises(ValueError, match=r"no groups were given.*enable_metadata_routing=True\) and "
                                         r"hq.set_fit_request\(groups=True\)"):  # fmt: skip
        GridSearchCV(clone(hq), {"voting": ["soft"]}, cv=KFold(2), error_score="raise").fit(X, y)


def test_groups_are_asked_for_by_a_group_splitter_and_refused_without_cv():
    X, y = load_wine(return_X_y=True)
    members = [("nb", GaussianNB()), ("lr", LogisticRegression(max_iter=50))]
    with pytest.raises(ValueError, match=r"no groups were given: pass them to fit"):
        HQEnsembleClassifier(estimators=members, n_select=2, cv=GroupKFold(3)).fit(X, y)
    with pytest.raises(ValueError, match=r"groups is used only with cv.*cv=GroupKFold"):
        HQEnsembleClassifier(estimators=members, n_select=2).fit(X, y, groups=np.zeros(len(y)))
    with pytest.raises(ValueError, match=r"one label per row of X: 178 rows, but groups has shape \(5,\)"):
        HQEnsembleClassifier(estimators=members, n_select=2, cv=GroupKFold(3)).fit(
            X, y, groups=np.arange(5)
        )


def test_a_refit_that_fails_leaves_no_team_of_the_last_fit():
    X, y = load_wine(return_X_y=True)
    members = [("lr", make_pipeline(StandardScaler(), LogisticRegression())), ("nb", GaussianNB())]
    hq = HQEnsembleClassifier(estimators=members, n_select=2, random_state=0).fit(X, y)
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        hq.fit(X_bad, np.array(["c", "b", "a"])[y])  # new labels, and a member fails
    for method in (hq.predict, hq.predict_proba):
        with pytest.raises(NotFittedError):
            method(X)
    assert not [name for name in vars(hq) if name.endswith("_")]  # nor this fit's classes_, n_features_in_
    fresh = HQEnsembleClassifier(estimators=members, n_select=2)
    with pytest.raises(ValueError):
        fresh.fit(X_bad, y)
    with pytest.raises(NotFittedError):  # not an AttributeError on selected_
        fresh.predict(X)


def test_one_class_is_named_by_its_label():
    X, _ = load_wine(return_X_y=True)
    members = [("nb", GaussianNB()), ("lr", LogisticRegression())]
    with pytest.raises(ValueError, match=r"HQEnsembleClassifier needs samples of at least 2 classes in y; "
                                         r"got 1 class: 'only'\."):  # fmt: skip
        HQEnsembleClassifier(estimators=members, n_select=2).fit(X, np.full(len(X), "only"))


def test_cv_leaves_frozen_members_alone():
    X, y = load_wine(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0, stratify=y)
    nb = GaussianNB().fit(X_train, y_train)
    hq = HQEnsembleClassifier(
        estimators=[
            ("frozen", FrozenEstimator(nb)),
            ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
        ],
        n_select=2,
        cv=3,
    ).fit(X_val, y_val)
    np.testing.assert_array_equal(hq.estimators_[0].predict_proba(X), nb.predict_proba(X))
    assert hq.estimators_[0].estimator is nb


def test_bootstrap_must_be_a_bool():
    with pytest.raises(TypeError, match="The 'bootstrap' parameter .* instance of 'bool'"):
        HQEnsembleClassifier(GaussianNB(), n_estimators=3, n_select=2, bootstrap="yes").fit(*iris())


def test_threads_per_worker():
    cores = os.cpu_count()
    assert threads_per_worker(None) == cores
    assert threads_per_worker(2) == max(1, cores // 2)
    assert threads_per_worker(-1) == 1


def test_limit_torch_threads_restores_and_never_raises():
    before = torch.get_num_threads()
    with limit_torch_threads(1):
        assert torch.get_num_threads() == 1
        with limit_torch_threads(before + 4):
            assert torch.get_num_threads() == before  # capped, never raised
    assert torch.get_num_threads() == before


def test_members_fit_with_capped_torch_threads_in_threads():
    expected = max(1, min(torch.get_num_threads(), os.cpu_count() // 2))
    before = torch.get_num_threads()
    with joblib.parallel_config(backend="threading"):
        hq = HQEnsembleClassifier(ThreadProbe(), n_estimators=4, n_select=2, n_jobs=2).fit(*iris())
    assert [m.torch_threads_ for m in hq.estimators_] == [expected] * 4
    assert all(m.thread_name_ != threading.main_thread().name for m in hq.estimators_)
    assert torch.get_num_threads() == before


def test_parallel_fit_gives_the_same_ensemble(digits):
    X_train, X_test, y_train, _ = digits
    one = tree_ensemble(n_estimators=6, n_jobs=1).fit(X_train, y_train)
    two = tree_ensemble(n_estimators=6, n_jobs=2).fit(X_train, y_train)
    np.testing.assert_array_equal(one.selected_, two.selected_)
    np.testing.assert_array_equal(one.predict_proba(X_test), two.predict_proba(X_test))


def test_dask_backend(digits):
    distributed = pytest.importorskip("distributed")
    X_train, X_test, y_train, _ = digits
    expected = tree_ensemble(n_estimators=6).fit(X_train, y_train)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        hq = tree_ensemble(n_estimators=6, n_jobs=2).fit(X_train, y_train)
        probe = HQEnsembleClassifier(ThreadProbe(), n_estimators=2, n_select=2, n_jobs=2)
        probe.fit(*iris())
    np.testing.assert_array_equal(hq.selected_, expected.selected_)
    np.testing.assert_array_equal(hq.predict_proba(X_test), expected.predict_proba(X_test))
    assert all("Dask" in m.thread_name_ for m in probe.estimators_)
    expected = max(1, min(torch.get_num_threads(), os.cpu_count() // 2))
    assert [m.torch_threads_ for m in probe.estimators_] == [expected] * 2


# --- DropNetClassifier members ----------------------------------------------------------


@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X[:600], y[:600], random_state=0, stratify=y[:600])


def tiny_dropnet(**params):
    params = {
        "max_epochs": 4,
        "lr": 0.01,
        "prune_ratio": 0.5,
        "drop_fraction": 0.5,
        "validation_fraction": 0.0,
        "module__hidden_layer_sizes": (16,),
        **params,
    }
    return DropNetClassifier(**params)


def test_default_estimator_is_a_seeded_dropnet():
    members = HQEnsembleClassifier(n_estimators=3)._seeded_clones(np.random.RandomState(0))
    assert all(type(m) is DropNetClassifier for m in members)
    assert len({m.random_state for m in members}) == 3


def test_dropnet_members_grid_search_over_prune_ratio(small_digits):
    X_train, X_test, y_train, y_test = small_digits
    search = GridSearchCV(
        HQEnsembleClassifier(tiny_dropnet(), n_estimators=3, random_state=0, n_jobs=2),
        {"n_select": [2, 3], "estimator__prune_ratio": [0.0, 0.5]},
        cv=2,
    ).fit(X_train, y_train)
    hq = search.best_estimator_
    assert all(isinstance(m, DropNetClassifier) for m in hq.ensemble_)
    assert hq.estimators_[0].prune_ratio == search.best_params_["estimator__prune_ratio"]
    assert hq.score(X_test, y_test) > 0.7


def test_fitting_dropnet_members_leaves_the_random_state_alone(small_digits):
    X_train, _, y_train, _ = small_digits
    torch.manual_seed(0)
    before = torch.get_rng_state()
    HQEnsembleClassifier(tiny_dropnet(max_epochs=1), n_estimators=2, n_select=2, random_state=0).fit(X_train, y_train)
    HQEnsembleClassifier(tiny_dropnet(max_epochs=1), n_estimators=2, n_select=2, cv=2, random_state=0).fit(X_train, y_train)
    assert torch.equal(torch.get_rng_state(), before)


class _ScriptNet(torch.nn.Module):
    """Stands for a network class defined in the script being run."""

    def __init__(self, input_shape=(64,), n_classes=10, hidden_layer_sizes=(8,)):
        torch.nn.Module.__init__(self)  # not super(): pickled by value, the class is a copy
        width = hidden_layer_sizes[0]
        self.hidden, self.act = torch.nn.Linear(input_shape[0], width), torch.nn.ReLU()
        self.out = torch.nn.Linear(width, n_classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


def test_a_network_class_of_the_script_comes_back_from_the_workers(small_digits, monkeypatch):
    """The workers get the script's class by value and send the fitted network back the
    same way (it was refused: pickle names a class, which a worker cannot do for it)."""
    X_train, X_test, y_train, _ = small_digits
    monkeypatch.setattr(_ScriptNet, "__module__", "__main__")  # the workers' __main__ does not hold it
    monkeypatch.setattr(sys.modules["__main__"], "_ScriptNet", _ScriptNet, raising=False)  # the script's does
    hq = HQEnsembleClassifier(
        tiny_dropnet(module=_ScriptNet, max_epochs=1), n_estimators=2, n_select=2, n_jobs=2, random_state=0
    ).fit(X_train, y_train)
    assert all(type(member.module_) is _ScriptNet for member in hq.estimators_)  # the caller's own class
    buffer = io.BytesIO()
    joblib.dump(hq, buffer)  # in the caller, whose __main__ holds the class: by name
    buffer.seek(0)
    again = joblib.load(buffer)
    np.testing.assert_array_equal(again.predict_proba(X_test), hq.predict_proba(X_test))


def test_cross_validate_returns_the_estimators_of_a_script_network_class(small_digits, monkeypatch):
    """scikit-learn's tools with n_jobs=2 send the fitted estimator back: by value."""
    from sklearn.model_selection import cross_validate

    X_train, _, y_train, _ = small_digits
    monkeypatch.setattr(_ScriptNet, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "_ScriptNet", _ScriptNet, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nor is it warned as unpicklable
        result = cross_validate(
            tiny_dropnet(module=_ScriptNet, max_epochs=1), X_train, y_train, cv=2, n_jobs=2, return_estimator=True
        )
    assert all(type(clf.module_) is _ScriptNet for clf in result["estimator"])


class _Handle:
    """Stands for what cannot be pickled nor copied (an open file, a device handle), kept
    by reference in the network's copies."""

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("a _Handle cannot be pickled")


def test_a_network_holding_what_cannot_be_copied_is_pruned(small_digits):
    """The state kept to roll a failed removal back copies the containers only."""
    X_train, X_test, y_train, _ = small_digits
    with pytest.warns(UserWarning, match="The network cannot be pickled"):
        clf = tiny_dropnet(module=_NetWithHandle, max_epochs=1, prune_ratio=0.5).fit(X_train, y_train)
    assert clf.module_.hidden.out_features == 8 and isinstance(clf.module_.handle, _Handle)  # of 16
    assert clf.predict(X_test).shape == (len(X_test),)


class _NetWithHandle(_ScriptNet):
    def __init__(self, input_shape=(64,), n_classes=10, hidden_layer_sizes=(8,)):
        super().__init__(input_shape, n_classes, hidden_layer_sizes)
        self.handle = _Handle()


def test_a_member_workers_cannot_send_back_is_named(small_digits):
    X_train, _, y_train, _ = small_digits
    hq = HQEnsembleClassifier(
        tiny_dropnet(module=_NetWithHandle, max_epochs=1), n_estimators=2, n_select=2, n_jobs=2, random_state=0
    )
    message = (
        r"The fitted member ([01]) \('estimator_\1', DropNetClassifier\) cannot be sent back from its "
        r"worker process: TypeError: a _Handle cannot be pickled. .* keep it out of the network's attributes"
    )
    with pytest.raises(pickle.PicklingError, match=message):  # the workers warned at their fits
        hq.fit(X_train, y_train)


def test_convolutional_dropnet_members_on_images(small_digits):
    X_train, X_test, y_train, y_test = small_digits
    images = X_train.reshape(-1, 1, 8, 8)
    member = DropNetClassifier(
        module=ModelB, module__channels=(4, 4), max_epochs=4, lr=0.01,
        prune_ratio=0.5, drop_fraction=0.5, validation_fraction=0.0,
    )  # fmt: skip
    hq = HQEnsembleClassifier(member, n_estimators=2, n_select=2, random_state=0)
    hq.fit(images, y_train)
    assert hq.predict(X_test.reshape(-1, 1, 8, 8)).shape == y_test.shape
    assert all(m.module_.features[0].out_channels == 2 for m in hq.estimators_)
    # n_features_in_ counts the channels (1): flat rows are named by their shape, not as 64 features for 1
    for wrong in (X_test, X_test.reshape(-1, 1, 4, 16)):
        shape = re.escape(str(wrong.shape[1:]))
        with pytest.raises(ValueError, match=rf"X has samples of shape {shape}, but HQEnsembleClassifier was fitted on samples of shape \(1, 8, 8\)\."):
            hq.predict(wrong)


def test_images_given_to_an_ensemble_fitted_on_rows_are_named_by_their_shape():
    X, y = load_wine(return_X_y=True)
    hq = HQEnsembleClassifier(estimators=[("nb", GaussianNB()), ("lr", LogisticRegression())], n_select=2).fit(X, y)
    with pytest.raises(ValueError, match=r"X has samples of shape \(13, 1\), but HQEnsembleClassifier was fitted "
                                         r"on samples of shape \(13,\)\."):  # fmt: skip
        hq.predict(X.reshape(-1, 13, 1))


def test_parallel_fit_is_not_slower(small_digits):
    """Two workers with torch capped are not slower than one (ratio only).

    Each setting is timed three times, alternately, and the fastest run
    counts, so that a burst of load from other processes does not decide.
    """
    X_train, _, y_train, _ = small_digits
    ensemble = HQEnsembleClassifier(
        tiny_dropnet(max_epochs=20, prune_ratio=0.0), n_estimators=4, n_select=2, random_state=0
    )
    ensemble.set_params(n_jobs=2).fit(X_train, y_train)  # start the workers once

    def seconds_to_fit(n_jobs):
        start = time.perf_counter()
        ensemble.set_params(n_jobs=n_jobs).fit(X_train, y_train)
        return time.perf_counter() - start

    one_job, two_jobs = np.inf, np.inf
    for _ in range(3):
        one_job = min(one_job, seconds_to_fit(1))
        two_jobs = min(two_jobs, seconds_to_fit(2))
    assert two_jobs <= 1.5 * one_job


def _hq_of_pruned_dropnets_on_digits(seed):
    """The issue's setting on one split of digits, end to end.

    M = 10 DropNets (128-64 units) pruned 80%, a team of S <= 5 chosen on
    the held-out 20% of the training half. Returns the fitted ensemble and,
    on the test half (899 images), the team's accuracy, all 10 members'
    (soft voting) and each member's.
    """
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=seed
    )
    member = DropNetClassifier(
        prune_ratio=0.8, lr=0.01, batch_size=64, max_epochs=30,
        module__hidden_layer_sizes=(128, 64),
        reinit="rewind", iterator_train__shuffle=False,  # the members these figures were measured with
    )  # fmt: skip
    hq = HQEnsembleClassifier(
        member, n_estimators=10, n_select=5, n_jobs=2, random_state=seed
    ).fit(X_train, y_train)
    probas = np.stack([m.predict_proba(X_test) for m in hq.estimators_])
    everyone = accuracy_score(y_test, probas.mean(axis=0).argmax(axis=1))
    singles = [m.score(X_test, y_test) for m in hq.estimators_]
    return hq, hq.score(X_test, y_test), everyone, singles


@pytest.mark.slow
def test_hq_team_of_pruned_dropnets_on_digits():
    """The issue's check, in the mean over the first five splits (seeds 0-4).

    The HQ team is at least as accurate as all 10 members together minus
    0.3 points, and above the best single member -- the one best on the test
    set itself. One test image is 0.11 points, so on a single split either
    check can fail by test noise alone: benchmarks/bench_hq.py (40 seeds)
    measures both in the mean with a 95% confidence bound, and how often
    each holds per split (both on about three splits in four). On seed 0's
    split (the README's example) both hold by themselves as well.
    """
    gaps_to_all, gaps_to_best = [], []
    for seed in range(5):
        hq, team, everyone, singles = _hq_of_pruned_dropnets_on_digits(seed)
        for m in hq.estimators_:  # every member pruned 80%: 38 of 192 units left
            assert m.pruning_history_[-1]["fraction_left"] <= 0.2 + 1e-9
        assert 2 <= len(np.unique(hq.selected_)) <= 5
        assert team > np.mean(singles)
        gaps_to_all.append(100 * (team - everyone))
        gaps_to_best.append(100 * (team - max(singles)))
        if seed == 0:  # both bars hold on this split by itself too
            assert team >= everyone - 0.003  # 0.9789 against 0.9755
            assert team > max(singles)  # against 0.9722
    # Measured: to all 10   +0.33 -0.56 +0.11 -0.33 +0.11 (mean -0.07);
    #           to the best +0.67 +1.00 +0.44 +0.33 +0.44 (mean +0.58).
    assert np.mean(gaps_to_all) >= -0.3
    assert np.mean(gaps_to_best) > 0
