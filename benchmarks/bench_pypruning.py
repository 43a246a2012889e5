"""PyPruning's benchmark protocol: a random forest of 128 trees pruned to 8.

The setting of the PyPruning library's digits benchmark, as issue 21 states
it: scikit-learn's digits; 20% of the rows for testing; of the rest, 20%
for pruning (choosing the team) and the remainder to train a random forest
of 128 trees of depth at most 20; the forest is pruned to 8 trees. One
split and one forest per seed (``random_state`` 42, 43, ...), 5 seeds.

Every method chooses its team with
:class:`~sklearn_dropnet.HQEnsembleClassifier` on the pruning rows, over the
forest's trees (:func:`~sklearn_dropnet.ensemble.forest_members`): HQ with
each diversity metric, greedy (Caruana, with replacement), top 8,
reduced-error ordering, complementarity, margin distance, and all 128.
"Random 8" is the mean of 1,000 teams of 8 drawn at random. Per method it
prints the mean test accuracy and its range over the seeds, the team size
and the selection time (``fit`` on the pruning rows: the trees predict them
once, then the method chooses), next to the figures PyPruning reports.

Then it shows what the pruning rows can tell about a team of 8:

- over the random teams, how their accuracy on the pruning rows predicts
  their test accuracy (correlation, and the test accuracy of the random
  team that was best on the pruning rows);
- for each method, its team's accuracy on the pruning rows against on the
  test rows (how much of what it found there was luck);
- reduced-error ordering run on the *test* rows themselves: the most a
  team of 8 trees with equal votes could reach on them, an upper bound for
  any method that chooses on other rows.

With ``--pypruning DIR`` (a checkout of https://github.com/sbuschjaeger/PyPruning;
it is not on PyPI) PyPruning's own methods run on the same splits and
forests, side by side: its greedy reduced-error and its error-ambiguity
ranking, and its ``ProxPruningClassifier`` with the hard-L0 constraint of
8 trees in every configuration listed in ``PROX_CONFIGS`` (its defaults, the
settings of its own digits test, and other step sizes and optimisers); then
the paired difference, seed by seed, of HQ's teams against each Prox
configuration.

Usage::

    python benchmarks/bench_pypruning.py            # a few minutes
    python benchmarks/bench_pypruning.py --quick    # smoke run
    python benchmarks/bench_pypruning.py --pypruning ~/src/PyPruning --seeds $(seq 42 61)
"""

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from sklearn_dropnet import HQEnsembleClassifier
from sklearn_dropnet.diversity import METRICS
from sklearn_dropnet.ensemble import forest_members
from sklearn_dropnet.ensemble._ensemble_selection import team_accuracy
from sklearn_dropnet.ensemble._ordered_aggregation import reduced_error_select

# row name: HQEnsembleClassifier parameters
METHODS = {
    **{f"hq ({metric})": {"method": "hq", "metric": metric} for metric in METRICS},
    "hq (generalized_diversity, final_choice='accuracy')": {"method": "hq", "final_choice": "accuracy"},
    "greedy (Caruana)": {"method": "greedy"},
    "top 8": {"method": "top"},
    "reduced_error": {"method": "reduced_error"},
    "complementarity": {"method": "complementarity"},
    "margin_distance": {"method": "margin_distance"},
    "error_ambiguity": {"method": "error_ambiguity"},
    "all 128": {"method": "all"},
}

# As quoted in issue 21 (PyPruning's reported figures on digits), in percent.
# PyPruning's greedy is reduced-error ordering (without replacement).
PYPRUNING = {
    "all 128": "97.3-98.0",
    "random 8": "93.8-95.1",
    "reduced_error": "95.6 (greedy-8)",
    "error_ambiguity": "96.0 (rank-8)",
}
NOT_HERE = {  # reported methods this library does not have
    "Prox-8 (learned weights, proximal gradient)": 96.4,
}
PROX_8 = NOT_HERE["Prox-8 (learned weights, proximal gradient)"]


# PyPruning's ProxPruningClassifier, always with ensemble_regularizer="hard-L0"
# and l_ensemble_reg=8 (exactly 8 trees): its defaults (cross-entropy, Adam,
# step 0.1, batch 256, one epoch); the settings of its tests/test_digits.py
# (25 epochs, step 1e-3, batch 32, normalised weights, mse or cross-entropy,
# Adam); and larger steps and plain SGD. Every configuration tried is listed.
PROX_CONFIGS = {
    "defaults": {},
    **{
        f"{loss}, {optimizer} {step:g}, 25 epochs": dict(
            loss=loss, optimizer=optimizer, step_size=step, epochs=25, batch_size=32, normalize_weights=True
        )
        for loss in ("mse", "cross-entropy")
        for optimizer, step in (("adam", 1e-3), ("adam", 1e-2), ("sgd", 1e-2), ("sgd", 1e-1))
    },
}


def import_pypruning(path):
    """PyPruning's classes from a checkout at ``path``.

    PyPruning imports ``sklearn.utils.axis0_safe_slice``, which scikit-learn
    has since removed and PyPruning never calls; a placeholder lets the
    import succeed. Its ``MIQPPruningClassifier`` (needs cvxpy) is not used.
    """
    import sklearn.utils

    if not hasattr(sklearn.utils, "axis0_safe_slice"):
        sklearn.utils.axis0_safe_slice = None
    sys.path.insert(0, str(path))
    from PyPruning.GreedyPruningClassifier import GreedyPruningClassifier, reduced_error
    from PyPruning.ProxPruningClassifier import ProxPruningClassifier
    from PyPruning.RankPruningClassifier import RankPruningClassifier, error_ambiguity

    def pruners(n_select):
        yield "greedy reduced_error", GreedyPruningClassifier(metric=reduced_error, n_estimators=n_select)
        yield "rank error_ambiguity", RankPruningClassifier(metric=error_ambiguity, n_estimators=n_select)
        for name, config in PROX_CONFIGS.items():
            prox = ProxPruningClassifier(ensemble_regularizer="hard-L0", l_ensemble_reg=n_select, **config)
            yield f"Prox-{n_select} ({name})", prox

    return pruners


def pypruning_rows(pruners, forest, prune, test, n_select, seed):
    """PyPruning's methods on the forest's trees: its ``prune`` on the pruning rows."""
    rows = {}
    for name, pruner in pruners(n_select):
        np.random.seed(seed)  # Prox shuffles its batches with NumPy's global generator
        start, cpu = time.perf_counter(), time.process_time()
        pruner.prune(*prune, copy.deepcopy(forest.estimators_))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows[f"PyPruning: {name}"] = {
            "test": float(np.mean(pruner.predict(test[0]) == test[1])),
            "prune": float(np.mean(pruner.predict(prune[0]) == prune[1])),
            "size": len(pruner.estimators_),
            "wall": wall,
            "cpu": cpu,
        }
    return rows


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    parser.add_argument("--n-trees", type=int, default=128)
    parser.add_argument("--n-select", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument(
        "--pypruning", metavar="DIR", help="a checkout of PyPruning: run its methods side by side"
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.n_trees = [42], 16
    return args


def split(seed):
    """Train / pruning / test rows of digits, PyPruning's way (not stratified)."""
    X, y = load_digits(return_X_y=True)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
    X_train, X_prune, y_train, y_prune = train_test_split(X_rest, y_rest, test_size=0.2, random_state=seed)
    return (X_train, y_train), (X_prune, y_prune), (X_test, y_test)


def run_seed(seed, args, pruners=None):
    train, prune, test = split(seed)
    forest = RandomForestClassifier(args.n_trees, max_depth=20, random_state=seed).fit(*train)
    members = forest_members(forest)
    rows = {}
    for name, params in METHODS.items():
        hq = HQEnsembleClassifier(estimators=members, n_select=args.n_select, **params)
        start, cpu = time.perf_counter(), time.process_time()
        hq.fit(*prune)
        rows[name] = {
            "test": hq.score(*test),
            "prune": hq.score(*prune),
            "size": len(hq.selected_),
            "wall": time.perf_counter() - start,
            "cpu": time.process_time() - cpu,
        }
    rows["random 8"], why = random_teams(forest, prune, test, args.n_select, seed)
    if pruners is not None:
        rows.update(pypruning_rows(pruners, forest, prune, test, args.n_select, seed))
    print(
        f"seed {seed}: {len(train[1])} train / {len(prune[1])} pruning / {len(test[1])} test rows; "
        + ", ".join(f"{name} {row['test']:.4f}" for name, row in rows.items() if name.startswith(("hq (g", "all")))
    )
    return rows, why


def random_teams(forest, prune, test, n_select, seed, n_teams=1000):
    """The mean random team, and what the pruning rows tell about teams."""
    probas = {
        part: np.stack([tree.predict_proba(X) for tree in forest.estimators_]).astype(np.float64)
        for part, (X, _) in (("prune", prune), ("test", test))
    }
    codes = {part: np.searchsorted(forest.classes_, y) for part, (_, y) in (("prune", prune), ("test", test))}
    rng = np.random.default_rng(seed)
    teams = np.sort([rng.choice(len(forest.estimators_), n_select, replace=False) for _ in range(n_teams)], axis=1)
    on_prune = team_accuracy(probas["prune"], codes["prune"], teams)
    on_test = team_accuracy(probas["test"], codes["test"], teams)
    best_on_prune = np.flatnonzero(on_prune == on_prune.max())
    oracle = reduced_error_select(None, probas["test"], codes["test"], n_select)
    why = {
        "correlation": np.corrcoef(on_prune, on_test)[0, 1],
        "best random on pruning rows": on_test[best_on_prune].mean(),
        "random test sd": on_test.std(),
        "oracle": team_accuracy(probas["test"], codes["test"], oracle[None])[0],
    }
    row = {"test": on_test.mean(), "prune": on_prune.mean(), "size": n_select, "wall": np.nan, "cpu": np.nan}
    return row, why


def summarize(results, args):
    names = list(results[0][0])
    print(f"\nTest accuracy over seeds {args.seeds} (mean, range), team size, selection seconds")
    print(
        f"{'method':<52}{'mean':>7}{'range':>16}{'size':>6}{'prune':>8}{'cpu s':>7}{'wall s':>7}"
        f"   PyPruning reports"
    )
    for name in names:
        test = 100 * np.array([rows[name]["test"] for rows, _ in results])
        prune = 100 * np.mean([rows[name]["prune"] for rows, _ in results])
        size = np.mean([rows[name]["size"] for rows, _ in results])
        cpu = np.mean([rows[name]["cpu"] for rows, _ in results])
        wall = np.mean([rows[name]["wall"] for rows, _ in results])
        print(
            f"{name:<52}{test.mean():>7.2f}{f'{test.min():.2f}-{test.max():.2f}':>16}{size:>6.1f}"
            f"{prune:>8.2f}{cpu:>7.2f}{wall:>7.2f}   {PYPRUNING.get(name, '')}"
        )
    print(
        "PyPruning also reports, for methods this library does not have: "
        + "; ".join(f"{name} {reported}" for name, reported in NOT_HERE.items())
    )
    print("(prune: the team's accuracy on the pruning rows it was chosen on; seconds: mean per seed)")

    print("\nWhat the pruning rows tell about a team of 8 (mean over the seeds)")
    why = {key: np.mean([w[key] for _, w in results]) for key in results[0][1]}
    print(
        f"   1,000 random teams: correlation of pruning-row and test accuracy {why['correlation']:+.2f}; "
        f"test sd {100 * why['random test sd']:.2f} points"
    )
    print(
        f"   the random team best on the pruning rows: test {100 * why['best random on pruning rows']:.2f}"
    )
    print(
        f"   reduced-error ordering on the test rows themselves (the best a team of 8 equal "
        f"votes reaches there): {100 * why['oracle']:.2f}"
    )
    ours = [n for n in names if n not in ("all 128", "random 8") and not n.startswith("PyPruning")]
    best = max(ours, key=lambda n: np.mean([rows[n]["test"] for rows, _ in results]))
    mean_best = 100 * np.mean([rows[best]["test"] for rows, _ in results])
    print(f"   best method with a team of 8: {best}, {mean_best:.2f} against Prox-8's reported {PROX_8}")
    prox = [n for n in names if n.startswith("PyPruning: Prox")]
    if prox:
        paired_against_prox(results, ours, prox)


def paired_against_prox(results, ours, prox):
    """Each method here against PyPruning's Prox-8 on the same seeds.

    The reference is the Prox configuration with the highest mean test
    accuracy: chosen on the test rows, so the comparison favours PyPruning.
    """
    test = {name: 100 * np.array([rows[name]["test"] for rows, _ in results]) for name in ours + prox}
    reference = max(prox, key=lambda name: test[name].mean())
    print(
        f"\nPaired against PyPruning's best Prox configuration on these seeds, {reference} "
        f"({test[reference].mean():.2f}): difference in points, mean +- standard error, seeds ahead / level"
    )
    for name in ours:
        diff = test[name] - test[reference]
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
        print(
            f"   {name:<52}{diff.mean():>+7.2f} +- {se:.2f}   "
            f"{int(np.sum(diff > 0))} / {int(np.sum(diff == 0))} of {len(diff)}"
        )


def main():
    args = parse_args()
    if args.pypruning and not (Path(args.pypruning) / "PyPruning" / "ProxPruningClassifier.py").is_file():
        sys.exit(
            f"--pypruning {args.pypruning}: no PyPruning/ProxPruningClassifier.py there; give the folder of "
            "a checkout of https://github.com/sbuschjaeger/PyPruning (the one holding PyPruning/)"
        )
    pruners = import_pypruning(args.pypruning) if args.pypruning else None
    results = [run_seed(seed, args, pruners) for seed in args.seeds]
    summarize(results, args)


if __name__ == "__main__":
    main()
