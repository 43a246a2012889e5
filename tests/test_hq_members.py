"""Mixed pools: members of different kinds in one HQEnsembleClassifier, the
trees of a fitted forest, members reached by name, progress bars."""

import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    BaggingClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier
from sklearn_dropnet.ensemble import forest_members

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def digits_parts():
    """Train / select / test parts of digits, labels as words."""
    X, y = load_digits(return_X_y=True)
    X, y = (X / 16).astype(np.float32), NAMES[y]
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    X_select, X_test, y_select, y_test = train_test_split(
        X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0
    )
    return (X_train, y_train), (X_select, y_select), (X_test, y_test)


@pytest.fixture(scope="module")
def forest(digits_parts):
    (X_train, y_train), _, _ = digits_parts
    return RandomForestClassifier(n_estimators=12, max_depth=8, random_state=0).fit(X_train, y_train)


# --- the trees of a fitted forest ----------------------------------------------------


def test_forest_members_predict_the_forests_labels(forest, digits_parts):
    _, (X_select, y_select), (X_test, y_test) = digits_parts
    members = forest_members(forest)
    assert [name for name, _ in members] == [f"tree_{i}" for i in range(12)]
    for (_, member), tree in zip(members, forest.estimators_):
        assert isinstance(member, FrozenEstimator)
        assert member.estimator.tree_ is tree.tree_  # shared, not copied
        np.testing.assert_array_equal(member.predict_proba(X_test), tree.predict_proba(X_test))
        np.testing.assert_array_equal(member.predict(X_test), forest.classes_[tree.predict(X_test).astype(int)])
    assert forest.estimators_[0].classes_.tolist() == list(range(10))  # the forest is left alone
    # All of them together are the forest itself (it averages its trees' probabilities).
    hq = HQEnsembleClassifier(estimators=members, method="all").fit(X_select, y_select)
    np.testing.assert_allclose(hq.predict_proba(X_test), forest.predict_proba(X_test))
    np.testing.assert_array_equal(hq.predict(X_test), forest.predict(X_test))


def test_an_hq_team_of_trees(forest, digits_parts):
    _, (X_select, y_select), (X_test, y_test) = digits_parts
    hq = HQEnsembleClassifier(estimators=forest_members(forest), n_select=4).fit(X_select, y_select)
    assert 2 <= len(hq.ensemble_) <= 4
    assert all(isinstance(m, FrozenEstimator) for m in hq.ensemble_)
    single = np.mean([tree.score(X_test, np.searchsorted(forest.classes_, y_test)) for tree in forest.estimators_])
    assert hq.score(X_test, y_test) > single


def test_a_tree_frozen_by_hand_is_pointed_to_forest_members(forest, digits_parts):
    _, (X_select, y_select), _ = digits_parts
    members = [(f"t{i}", FrozenEstimator(tree)) for i, tree in enumerate(forest.estimators_)]
    hq = HQEnsembleClassifier(estimators=members, n_select=3)
    with pytest.raises(ValueError, match=r"Member 't0' predicts the classes \[0.0, .*ensemble\.forest_members\(forest\)"):
        hq.fit(X_select, y_select)


def test_the_members_of_a_fitted_hq_choose_another_team_without_training(digits_parts):
    """They learned the codes 0 .. K-1, as a forest's trees did: frozen as they are,
    they are refused, with the way out; through forest_members they predict the labels."""
    (X_train, y_train), (X_select, y_select), (X_test, y_test) = digits_parts
    member = DropNetClassifier(prune_ratio=0.5, max_epochs=2, module__hidden_layer_sizes=(16,), lr=0.01)
    hq = HQEnsembleClassifier(member, n_estimators=4, n_select=2, random_state=0).fit(X_train, y_train)
    frozen = [(name, FrozenEstimator(m)) for name, m in hq.named_estimators_.items()]
    with pytest.raises(ValueError, match=r"member of a fitted HQEnsembleClassifier, predict the class codes .*forest_members\(hq\)"):
        HQEnsembleClassifier(estimators=frozen, n_select=2).fit(X_select, y_select)
    trained = []
    again = HQEnsembleClassifier(estimators=forest_members(hq, "m"), n_select=2, method="greedy")
    with mock.patch.object(DropNetClassifier, "fit", lambda self, *args, **kwargs: trained.append(1)):
        again.fit(X_select, y_select)
    assert not trained
    np.testing.assert_array_equal(again.classes_, hq.classes_)
    assert set(again.predict(X_test)) <= set(NAMES)
    for name, m in forest_members(hq, "m"):
        np.testing.assert_array_equal(m.predict(X_test[:20]), hq.classes_[hq.estimators_[int(name[2:])].predict(X_test[:20])])


def test_the_members_of_a_fitted_hq_may_be_pipelines(digits_parts):
    """The user guide's mixed pool: a pipeline's classes_ is its last step's, which gets the labels."""
    (X_train, y_train), (X_select, y_select), (X_test, _) = digits_parts
    pool = [
        ("logistic", make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))),
        ("tree", DecisionTreeClassifier(max_depth=6, random_state=0)),
        ("nb", GaussianNB()),
    ]
    hq = HQEnsembleClassifier(estimators=pool, n_select=2, random_state=0).fit(X_train, y_train)
    members = dict(forest_members(hq, "m"))
    for index, fitted in enumerate(hq.estimators_):
        np.testing.assert_array_equal(members[f"m_{index}"].predict(X_test), hq.classes_[fitted.predict(X_test)])
    assert hq.estimators_[0].classes_.tolist() == list(range(10))  # the pool itself is left as it was
    again = HQEnsembleClassifier(estimators=list(members.items()), n_select=2, method="greedy").fit(X_select, y_select)
    assert set(again.predict(X_test)) <= set(NAMES)


def test_forest_members_keep_the_feature_names(digits_parts):
    (X_train, y_train), (X_select, y_select), (X_test, y_test) = digits_parts
    columns = [f"pixel{i}" for i in range(64)]
    frame = pd.DataFrame(X_train, columns=columns)
    forest = RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0).fit(frame, y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X has feature names, but ... fitted without"
        hq = HQEnsembleClassifier(estimators=forest_members(forest), n_select=2)
        hq.fit(pd.DataFrame(X_select, columns=columns), y_select)
        hq.predict(pd.DataFrame(X_test, columns=columns))
    assert hq.feature_names_in_.tolist() == columns


@pytest.mark.parametrize(
    "model, message",
    [
        (GradientBoostingClassifier(n_estimators=2), "forest_members takes a fitted single-output forest"),
        (BaggingClassifier(DecisionTreeClassifier(), n_estimators=2, max_features=0.5), "Tree 0 of the Bagg"),
        # as many columns as X, drawn with replacement: each tree reads other columns than X's
        (BaggingClassifier(DecisionTreeClassifier(), n_estimators=2, bootstrap_features=True), "Tree 0 of the Bagg"),
    ],
)
def test_forest_members_refuses_what_is_not_a_forest_of_whole_trees(model, message, digits_parts):
    (X_train, y_train), _, _ = digits_parts
    with pytest.raises(TypeError, match=message):
        forest_members(model.fit(X_train[:200], y_train[:200]))


# --- a mixed pool ------------------------------------------------------------------------


def mixed_pool(forest, frozen_nb):
    """DropNets of two shapes and prune ratios, a pipeline, a frozen model, two trees."""
    return [
        ("mlp_wide", DropNetClassifier(module__hidden_layer_sizes=(32,), prune_ratio=0.5,
                                       max_epochs=6, lr=0.02, random_state=0)),
        ("mlp_deep", DropNetClassifier(module__hidden_layer_sizes=(16, 16), prune_ratio=0.2,
                                       max_epochs=6, lr=0.02, random_state=1)),
        ("lr", make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))),
        ("nb", frozen_nb),
        *forest_members(forest)[:2],
    ]  # fmt: skip


@pytest.mark.slow
def test_a_mixed_pool_fits_and_each_member_is_reachable_by_name(forest, digits_parts):
    (X_train, y_train), (X_select, y_select), (X_test, y_test) = digits_parts
    frozen_nb = FrozenEstimator(GaussianNB().fit(X_train, y_train))
    X = np.concatenate([X_train, X_select])
    y = np.concatenate([y_train, y_select])
    hq = HQEnsembleClassifier(estimators=mixed_pool(forest, frozen_nb), n_select=3, random_state=0)
    params = hq.get_params()
    assert params["mlp_wide__prune_ratio"] == 0.5
    assert params["mlp_deep__module__hidden_layer_sizes"] == (16, 16)
    assert params["lr__logisticregression__C"] == 0.1
    assert params["nb"] is frozen_nb and params["tree_1"].estimator.classes_ is forest.classes_
    hq.set_params(
        mlp_wide__prune_ratio=0.75, mlp_deep__module__hidden_layer_sizes=(24, 8),
        lr__logisticregression__C=1.0,
    )  # fmt: skip
    hq.fit(X, y)
    fitted = hq.named_estimators_
    assert fitted["mlp_wide"].prune_ratio == 0.75
    assert fitted["mlp_wide"].pruning_history_[-1]["fraction_left"] <= 0.25 + 1e-9
    assert fitted["mlp_deep"].get_params()["module__hidden_layer_sizes"] == (24, 8)
    linear = [m for m in fitted["mlp_deep"].module_.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 3  # two hidden layers and the output
    assert fitted["lr"][-1].C == 1.0
    assert fitted["nb"].estimator is frozen_nb.estimator  # frozen: not refitted
    assert set(np.unique(hq.predict(X_test))) <= set(NAMES)
    assert hq.score(X_test, y_test) > 0.8
    # The frozen members' own parameters stay frozen, as scikit-learn has it.
    with pytest.raises(ValueError, match="cannot set parameters of the inner estimator"):
        hq.set_params(nb__estimator__var_smoothing=1e-3)


@pytest.mark.slow
def test_grid_search_over_a_dropnet_member_of_a_mixed_pool(digits_parts):
    (X_train, y_train), _, _ = digits_parts
    pool = [
        ("mlp", DropNetClassifier(module__hidden_layer_sizes=(16,), max_epochs=4, lr=0.02, random_state=0)),
        ("nb", GaussianNB()),
        ("lr", LogisticRegression(max_iter=300)),
    ]
    search = GridSearchCV(
        HQEnsembleClassifier(estimators=pool, n_select=2, random_state=0),
        {"mlp__prune_ratio": [0.0, 0.9]},
        cv=2,
    ).fit(X_train[:400], y_train[:400])
    assert search.best_estimator_.named_estimators_["mlp"].prune_ratio == search.best_params_["mlp__prune_ratio"]
    assert len(search.cv_results_["mean_test_score"]) == 2


# --- progress --------------------------------------------------------------------------


def test_verbose_shows_progress_over_members_and_levels(capsys, digits_parts):
    (X_train, y_train), _, _ = digits_parts
    hq = HQEnsembleClassifier(GaussianNB(), n_estimators=4, n_select=3, bootstrap=True, verbose=1)
    hq.fit(X_train, y_train)
    err = capsys.readouterr().err
    assert "HQ members" in err and "4/4" in err
    assert "HQ levels" in err and "2/2" in err
    HQEnsembleClassifier(GaussianNB(), n_estimators=4, n_select=3, bootstrap=True).fit(X_train, y_train)
    assert "HQ" not in capsys.readouterr().err  # quiet by default


def test_a_frozen_pool_chosen_on_rows_that_lack_a_class_is_told_to_stratify(digits_parts):
    (X_train, y_train), (X_select, y_select), _ = digits_parts
    pool = [(name, FrozenEstimator(m.fit(X_train, y_train))) for name, m in
            (("tree", DecisionTreeClassifier(random_state=0)), ("nb", GaussianNB()))]  # fmt: skip
    keep = y_select != "nine"
    with pytest.raises(ValueError, match=r"must hold every class the members predict: split them off stratified"):
        HQEnsembleClassifier(estimators=pool, n_select=2).fit(X_select[keep], y_select[keep])


def test_n_estimators_true_is_one_member_as_scikit_learn_reads_it(digits_parts):
    (X_train, y_train), _, _ = digits_parts
    with pytest.raises(ValueError, match=r"An ensemble needs at least 2 members, got 1"):
        HQEnsembleClassifier(DecisionTreeClassifier(), n_estimators=True, n_select=1, method="top").fit(X_train, y_train)


def test_a_multi_output_forest_is_named_as_such(digits_parts):
    from sklearn.ensemble import RandomForestClassifier

    (X_train, y_train), _, _ = digits_parts
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X_train[:200], np.column_stack([y_train[:200]] * 2))
    with pytest.raises(TypeError, match=r"this RandomForestClassifier was fitted on 2 outputs"):
        forest_members(forest)
