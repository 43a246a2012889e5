"""sklearn_dropnet.plotting: the plots draw what the fitted estimators hold."""

import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, load_wine  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier  # noqa: E402
from sklearn_dropnet.plotting import (  # noqa: E402
    HQCandidatesDisplay,
    PruningCurveDisplay,
    plot_hq_candidates,
    plot_pruning_curve,
    plot_units_per_layer,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(accepted_last=True):
    units = [{"a": 10, "b": 6}, {"a": 8, "b": 5}, {"a": 6, "b": 4}, {"a": 5, "b": 3}]
    return [
        {
            "round": i,
            "units": sum(u.values()),
            "units_per_layer": u,
            "fraction_left": sum(u.values()) / 16,
            "params": 100 - 10 * i,
            "macs": 90 - 10 * i,
            "valid_accuracy": 0.9 - 0.05 * i,
            "epochs": 5,
            "seconds": 0.1,
            "accepted": accepted_last or i < 3,
        }
        for i, u in enumerate(units)
    ]


@pytest.fixture(scope="module")
def pruned(digits_split):
    X_train, _, y_train, _ = digits_split
    return DropNetClassifier(
        prune_ratio=0.5, max_epochs=2, module__hidden_layer_sizes=(16, 8), random_state=0
    ).fit(X_train[:300], y_train[:300])


def test_pruning_curve_plots_every_round(pruned):
    ax = plot_pruning_curve(pruned, label="DropNet")
    (line,) = ax.get_lines()
    history = pruned.pruning_history_
    np.testing.assert_allclose(line.get_xdata(), [r["fraction_left"] for r in history])
    np.testing.assert_allclose(line.get_ydata(), [r["valid_accuracy"] for r in history])
    assert ax.xaxis_inverted()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["DropNet"]


@pytest.mark.parametrize("x", ["fraction_left", "units", "params", "macs"])
def test_pruning_curve_x_axes(x):
    ax = plot_pruning_curve(history(), x=x)
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [r[x] for r in history()])
    assert ax.xaxis_inverted()


def test_two_curves_on_one_axes_keep_the_axis_inverted():
    ax = plot_pruning_curve(history(), label="a")
    plot_pruning_curve(history(), ax=ax, label="b", annotate=True)
    assert len(ax.get_lines()) == 2
    assert ax.xaxis_inverted()
    assert [t.get_text() for t in ax.texts] == ["0", "1", "2", "3"]


def test_rejected_round_is_an_open_marker():
    ax = plot_pruning_curve(history(accepted_last=False), label="run")
    accepted, rejected = ax.get_lines()
    assert len(accepted.get_xdata()) == 3
    assert list(rejected.get_xdata()) == [8 / 16]
    assert rejected.get_markerfacecolor() == "none"
    display = PruningCurveDisplay.from_history(history(accepted_last=False), marker="s", ls="none")
    assert display.rejected_line_.get_marker() == "s"  # the line's own marker


def test_estimator_inside_a_pipeline_or_a_search(pruned):
    pipeline = make_pipeline(FunctionTransformer(), pruned)
    ax = plot_pruning_curve(pipeline)
    assert len(ax.get_lines()[0].get_xdata()) == len(pruned.pruning_history_)

    class Search:
        best_estimator_ = pipeline

    ax = plot_units_per_layer(Search())
    assert len(ax.patches) == 2 * len(pruned.pruning_history_[0]["units_per_layer"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="x must be one of"):
        plot_pruning_curve(history(), x="epochs")
    with pytest.raises(TypeError, match="pruning_history_"):
        plot_pruning_curve(DecisionTreeClassifier())
    with pytest.raises(ValueError, match="empty"):
        plot_pruning_curve([])
    with pytest.raises(ValueError, match="No such rounds"):
        plot_units_per_layer(history(), rounds=[0, 7])
    with pytest.raises(TypeError, match="HQEnsembleClassifier"):
        plot_hq_candidates(DropNetClassifier())


def test_units_per_layer_no_rounds_is_a_clear_error():
    with pytest.raises(ValueError, match=r"rounds is empty; .*history: \[0, 1, 2, 3\]"):
        plot_units_per_layer(history(), rounds=[])


def test_units_per_layer_default_is_dense_and_last_accepted():
    ax = plot_units_per_layer(history(accepted_last=False))
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [10, 6, 6, 4]  # dense a, b; round 2 a, b
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dense", "round 2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_units_per_layer_chosen_rounds(pruned):
    ax = plot_units_per_layer(pruned, rounds=[0, 1, 2])
    layers = pruned.pruning_history_[0]["units_per_layer"]
    assert len(ax.patches) == 3 * len(layers)
    expected = [
        pruned.pruning_history_[r]["units_per_layer"][name] for r in (0, 1, 2) for name in layers
    ]
    assert [bar.get_height() for bar in ax.patches] == expected


@pytest.fixture(scope="module")
def hq(digits):
    X, y = digits
    return HQEnsembleClassifier(
        DecisionTreeClassifier(max_features=8), n_estimators=6, n_select=3, random_state=0
    ).fit(X, y)


def test_hq_candidates_one_point_per_team_and_the_star(hq):
    ax = plot_hq_candidates(hq)
    candidates = hq.candidates_
    survived = np.asarray(candidates["survived"])
    collections = ax.collections
    assert len(collections[0].get_offsets()) == survived.sum()
    n_dropped = (~survived).sum()
    if n_dropped:
        assert len(collections[1].get_offsets()) == n_dropped
    star = collections[-1].get_offsets()
    chosen = [tuple(t) == tuple(hq.selected_) for t in candidates["team"]]
    index = int(np.flatnonzero(chosen)[0])
    np.testing.assert_allclose(
        star[0], [candidates["focal_diversity"][index], candidates["accuracy"][index]]
    )
    assert "chosen team" in ax.get_legend().get_texts()[-1].get_text()


def test_hq_candidates_other_methods(digits):
    X, y = digits
    hq = HQEnsembleClassifier(
        DecisionTreeClassifier(max_features=8), n_estimators=4, n_select=2, method="all",
        random_state=0,
    ).fit(X, y)  # fmt: skip
    ax = plot_hq_candidates(hq)
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(hq.candidates_["accuracy"][0])


def test_the_y_axis_says_training_accuracy_without_a_validation_split(pruned, digits_split):
    assert PruningCurveDisplay.from_estimator(pruned).ax_.get_ylabel() == "validation accuracy"
    X_train, _, y_train, _ = digits_split
    unvalidated = clone(pruned).set_params(validation_fraction=0).fit(X_train[:300], y_train[:300])
    for drawn in (
        PruningCurveDisplay.from_estimator(unvalidated).ax_,
        PruningCurveDisplay.from_estimator(make_pipeline(FunctionTransformer(), unvalidated).fit(X_train[:300], y_train[:300])).ax_,
        plot_pruning_curve(unvalidated),
    ):
        assert drawn.get_ylabel() == "training accuracy (validation_fraction=0)"
    assert PruningCurveDisplay.from_history(unvalidated.pruning_history_).ax_.get_ylabel() == "validation accuracy"


def test_hq_candidates_all_members_line_is_a_team_of_every_member_only():
    X, y = load_wine(return_X_y=True)
    stumps = DecisionTreeClassifier(max_depth=1, max_features=2)
    for seed in range(200):  # a greedy run whose teams of 4 repeat a member, as greedy's may
        hq = HQEnsembleClassifier(stumps, n_estimators=4, n_select=4, method="greedy", random_state=seed).fit(X, y)
        if not any(len(set(team)) == 4 for team in hq.candidates_["team"]):
            break
    display = HQCandidatesDisplay.from_estimator(hq)
    assert not [line for line in display.ax_.get_lines() if line.get_label().startswith("all 4")]
    every = HQEnsembleClassifier(stumps, n_estimators=4, n_select=4, method="all", random_state=seed).fit(X, y)
    line = [line for line in HQCandidatesDisplay.from_estimator(every).ax_.get_lines() if line.get_label() == "all 4 members"]
    assert line[0].get_ydata()[0] == pytest.approx(every.candidates_["accuracy"][0])


def test_hq_candidates_of_members_that_never_err_say_so():
    X, y = load_iris(return_X_y=True)
    easy = (y < 2)  # setosa against versicolor: every member is right on every held-out row
    hq = HQEnsembleClassifier(DecisionTreeClassifier(), n_estimators=4, n_select=3, random_state=0).fit(X[easy], y[easy])
    assert np.isnan(hq.candidates_["focal_diversity"]).all()
    with pytest.warns(UserWarning, match=r"draws nothing: no team in candidates_ has a focal diversity .* because no "
                                         r"member errs on the held-out rows"):  # fmt: skip
        HQCandidatesDisplay.from_estimator(hq)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install sklearn-dropnet\[plot\]"):
        plot_pruning_curve(history())


# --- the displays ---------------------------------------------------------------


def test_pruning_curve_display_from_estimator_keeps_its_artists(pruned):
    display = PruningCurveDisplay.from_estimator(pruned, name="DropNet")
    history = pruned.pruning_history_
    assert display.ax_ is display.line_.axes and display.figure_ is display.ax_.figure
    np.testing.assert_allclose(display.line_.get_xdata(), [r["fraction_left"] for r in history])
    np.testing.assert_allclose(display.line_.get_ydata(), [r["valid_accuracy"] for r in history])
    assert display.rejected_line_ is None
    assert display.ax_.get_xscale() == "linear" and display.ax_.xaxis_inverted()
    assert [t.get_text() for t in display.ax_.get_legend().get_texts()] == ["DropNet"]


@pytest.mark.parametrize("x, scale", [("params", "log"), ("macs", "log"), ("units", "linear")])
def test_pruning_curve_display_log_axis_for_parameters(pruned, x, scale):
    display = PruningCurveDisplay.from_estimator(pruned, x=x)
    assert display.ax_.get_xscale() == scale
    np.testing.assert_allclose(display.line_.get_xdata(), [r[x] for r in pruned.pruning_history_])
    assert display.ax_.xaxis_inverted()
    assert PruningCurveDisplay.from_estimator(pruned, x=x, log_x=False).ax_.get_xscale() == "linear"


def test_pruning_curve_display_from_history_and_redrawn_elsewhere():
    display = PruningCurveDisplay.from_history(history(accepted_last=False), name="run")
    first_ax = display.ax_
    assert list(display.rejected_line_.get_xdata()) == [8 / 16]
    _, ax = plt.subplots()
    assert display.plot(ax=ax, x="params").ax_ is ax is not first_ax
    assert ax.get_xscale() == "log" and len(ax.get_lines()) == 2


def test_pruning_curve_display_bad_inputs(pruned):
    with pytest.raises(TypeError, match="from_history"):
        PruningCurveDisplay.from_estimator(history())
    with pytest.raises(ValueError, match="x must be one of"):
        PruningCurveDisplay.from_estimator(pruned, x="epochs")
    with pytest.raises(ValueError, match="empty"):
        PruningCurveDisplay.from_history([])


def test_plot_pruning_curve_is_the_display(pruned):
    ax = plot_pruning_curve(pruned, x="params")
    display = PruningCurveDisplay.from_estimator(pruned, x="params")
    np.testing.assert_array_equal(ax.get_lines()[0].get_xydata(), display.line_.get_xydata())
    assert ax.get_xscale() == display.ax_.get_xscale() == "log"


def test_hq_candidates_display_keeps_its_artists(hq):
    display = HQCandidatesDisplay.from_estimator(hq)
    survived = np.asarray(hq.candidates_["survived"])
    assert len(display.survived_.get_offsets()) == survived.sum()
    assert (display.dropped_ is None) == survived.all()
    chosen = [tuple(t) == tuple(hq.selected_) for t in hq.candidates_["team"]]
    index = int(np.flatnonzero(chosen)[0])
    np.testing.assert_allclose(
        display.chosen_.get_offsets()[0],
        [hq.candidates_["focal_diversity"][index], hq.candidates_["accuracy"][index]],
    )
    assert display.colorbar_.ax.get_ylabel() == "team size"
    assert display.figure_ is display.ax_.figure
    # The same data drawn again on other axes.
    _, ax = plt.subplots()
    assert display.plot(ax=ax).ax_ is ax and len(ax.collections) == len(display.ax_.collections)


def test_hq_candidates_display_from_its_data(hq):
    display = HQCandidatesDisplay(hq.candidates_, hq.selected_, n_members=6, method="hq").plot()
    assert display.ax_.get_ylabel() == "held-out accuracy"
    with pytest.raises(TypeError, match="HQEnsembleClassifier"):
        HQCandidatesDisplay.from_estimator(DropNetClassifier())


def test_displays_are_public():
    import sklearn_dropnet

    assert {"PruningCurveDisplay", "HQCandidatesDisplay"} <= set(sklearn_dropnet.__all__)
    assert sklearn_dropnet.PruningCurveDisplay is PruningCurveDisplay


def test_displays_of_unfitted_estimators_raise_not_fitted_error():
    # As scikit-learn's displays do; a wrong type stays a TypeError.
    with pytest.raises(NotFittedError, match="DropNetClassifier instance is not fitted"):
        PruningCurveDisplay.from_estimator(DropNetClassifier())
    with pytest.raises(NotFittedError, match="DropNetClassifier"):
        plot_pruning_curve(make_pipeline(FunctionTransformer(), DropNetClassifier()))
    with pytest.raises(NotFittedError, match="GridSearchCV"):
        plot_units_per_layer(GridSearchCV(DropNetClassifier(), {"prune_ratio": [0.5]}))
    with pytest.raises(NotFittedError, match="HQEnsembleClassifier instance is not fitted"):
        HQCandidatesDisplay.from_estimator(HQEnsembleClassifier(DecisionTreeClassifier()))
    with pytest.raises(TypeError, match="pruning_history_"):
        PruningCurveDisplay.from_estimator(DecisionTreeClassifier())
    with pytest.raises(TypeError, match="pruning_history_"):
        PruningCurveDisplay.from_estimator(GridSearchCV(DecisionTreeClassifier(), {}))


def test_pruning_curve_label_is_the_name(pruned):
    # scikit-learn's displays take name= and pass matplotlib's options on,
    # label among them: both name the curve.
    display = PruningCurveDisplay.from_estimator(pruned, label="run A")
    assert [t.get_text() for t in display.ax_.get_legend().get_texts()] == ["run A"]
    display = PruningCurveDisplay.from_history(history(accepted_last=False), label="run B")
    assert display.line_.get_label() == "run B"
    assert display.rejected_line_.get_label() == "run B (rejected)"
    assert display.plot(label="run C").line_.get_label() == "run C"
    ax = plot_pruning_curve(history(), name="run D")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run D"]
    same = PruningCurveDisplay.from_history(history(), name="E", label="E")  # not a conflict
    assert same.line_.get_label() == "E"
    with pytest.raises(TypeError, match="name='a' and label='b'.*give one of them"):
        PruningCurveDisplay.from_history(history(), name="a", label="b")
    with pytest.raises(TypeError, match="give one of them"):
        PruningCurveDisplay(history()).plot(name="a", label="b")
    with pytest.raises(TypeError, match="give one of them"):
        plot_pruning_curve(history(), label="a", name="b")


@pytest.mark.parametrize(
    "kwargs", [{"marker": None}, {"marker": ""}, {"marker": "None", "linestyle": "--"}]
)
def test_rejected_round_keeps_a_visible_marker(kwargs):
    # A plain line for the accepted rounds; the rejected one is still an open circle.
    display = PruningCurveDisplay.from_history(history(accepted_last=False), **kwargs)
    rejected = display.rejected_line_
    assert rejected.get_marker() == "o"
    assert rejected.get_markerfacecolor() == "none"
    assert list(rejected.get_xdata()) == [8 / 16]


def test_hq_display_of_one_member_teams_warns(digits, hq):
    X, y = digits
    single = HQEnsembleClassifier(
        DecisionTreeClassifier(max_depth=3), n_estimators=3, n_select=1, method="top",
        random_state=0,
    ).fit(X, y)  # fmt: skip
    with pytest.warns(UserWarning, match="every team in candidates_ has one member"):
        display = HQCandidatesDisplay.from_estimator(single)
    assert display.ax_.get_legend() is None
    with pytest.warns(UserWarning, match="has no focal diversity"):
        plot_hq_candidates(single)
    with warnings.catch_warnings():  # teams of several members: no such warning
        warnings.filterwarnings("error", message="HQCandidatesDisplay draws nothing")
        assert HQCandidatesDisplay.from_estimator(hq).ax_.get_legend() is not None


def test_a_history_that_is_not_a_list_of_records_and_a_search_without_refit_are_named(digits_split):
    with pytest.raises(TypeError, match=r"got one dict: pass \[record\] for a single round"):
        PruningCurveDisplay.from_history({"round": 0})
    with pytest.raises(TypeError, match=r"one dict per round.*got a list of \['str'\]"):
        PruningCurveDisplay.from_history(["round"])
    X_train, _, y_train, _ = digits_split
    search = GridSearchCV(
        DropNetClassifier(max_epochs=1, module__hidden_layer_sizes=(8,)), {"prune_ratio": [0.3]}, cv=2, refit=False
    ).fit(X_train[:200], y_train[:200])
    with pytest.raises(ValueError, match=r"fitted with refit=False, so it holds no fitted estimator to draw"):
        PruningCurveDisplay.from_estimator(search)
