"""HQ's cap on the teams per level: what it changes, what it costs.

1. Small pools (M <= 12), where the exact search is cheap: for each cap, on
   how many pools the capped search chose the exact search's team, the
   mean test accuracy of the chosen teams, the teams scored and the
   selection time. The pools are random forests of M = 8, 10 and 12 trees
   on digits (one split per seed: test 50%, then 20% of the rest held out
   to choose the team, the forest trained on the remaining 40%), and with
   ``--predictions DIR`` also the pruned and unpruned pools that
   ``bench_hq.py --save-predictions DIR`` saved (M = 10).
2. Large pools: the selection time of HQ for M = 20 .. 128 simulated
   members on 2,000 held-out samples (10 classes, members right 60-85% of
   the time), S = 8 (S = 5 for M = 20, the paper's setting), with caps
   around the default; CPU seconds of this process as well as wall-clock
   seconds, since other processes share the machine.

Usage::

    python benchmarks/bench_hq_scale.py                      # a few minutes
    python benchmarks/bench_hq_scale.py --predictions preds/ --seeds 0 1 2
    python benchmarks/bench_hq_scale.py --quick              # smoke run
"""

import argparse
import re
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from sklearn_dropnet.ensemble._ensemble_selection import (
    MAX_TEAMS_PER_LEVEL,
    hq_select,
    team_accuracy,
)

SMALL_CAPS = [None, 200, 100, 50, 20, 10, 5]
LARGE = [(20, 5), (32, 8), (64, 8), (128, 8)]
LARGE_CAPS = [1000, 2000, MAX_TEAMS_PER_LEVEL, 10_000]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--predictions", metavar="DIR", help="also the pools of bench_hq.py")
    parser.add_argument("--n-samples", type=int, default=2000, help="held-out samples, part 2")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.n_samples = [0], 300
    return args


# --- pools ------------------------------------------------------------------------


def forest_pools(seeds):
    """{name: (held probas, held labels, test probas, test labels, S)} of forests' trees."""
    X, y = load_digits(return_X_y=True)
    pools = {}
    for seed in seeds:
        X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
        X_fit, X_held, y_fit, y_held = train_test_split(
            X_rest, y_rest, test_size=0.2, stratify=y_rest, random_state=seed
        )
        for n_trees, n_select in ((8, 5), (10, 5), (12, 6)):
            forest = RandomForestClassifier(n_trees, random_state=seed).fit(X_fit, y_fit)
            held, test = (np.stack([t.predict_proba(X_) for t in forest.estimators_]) for X_ in (X_held, X_test))
            pools[f"forest M={n_trees} seed {seed}"] = (held, y_held, test, y_test, n_select)
    return pools


def saved_pools(folder, seeds):
    """The pools of ``bench_hq.py --save-predictions``, S = 5."""
    pools = {}
    for path in sorted(Path(folder).glob("seed*.npz")):
        seed = int(re.sub(r"\D", "", path.stem))
        if seed not in seeds:
            continue
        saved = np.load(path)
        for pool in ("pruned", "unpruned"):
            pools[f"{pool} MLPs M=10 seed {seed}"] = (
                saved[f"{pool}_held"].astype(np.float64),
                saved["y_held"],
                saved[f"{pool}_test"].astype(np.float64),
                saved["y_test"],
                5,
            )
    return pools


def simulated_members(n_members, n_samples, n_classes=10, seed=0, skill=(0.6, 0.85)):
    """Class probabilities of members that are right ~60-85% of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    probas = rng.dirichlet(np.ones(n_classes), size=(n_members, n_samples))
    skill = rng.uniform(*skill, size=(n_members, 1))
    right = rng.random((n_members, n_samples)) < skill
    probas[right, np.broadcast_to(y, right.shape)[right]] += 1.5
    probas /= probas.sum(axis=2, keepdims=True)
    return probas, y


# --- 1. small pools ----------------------------------------------------------------------


def timed_select(held, y_held, n_select, cap):
    start, cpu = time.perf_counter(), time.process_time()
    team, candidates = hq_select(held.argmax(axis=2), held, y_held, n_select, max_teams_per_level=cap)
    return team, candidates, time.perf_counter() - start, time.process_time() - cpu


def small_pools(pools):
    print(f"1. Capped against exact search on {len(pools)} pools of M <= 12 members")
    print(
        f"{'max_teams_per_level':>20}{'same team':>12}{'test acc':>10}{'largest level':>15}"
        f"{'teams scored':>14}{'cpu s':>8}{'wall s':>8}"
    )
    exact = {}
    for cap in SMALL_CAPS:
        same, accuracy, largest, scored, cpu, wall = 0, [], 0, 0, 0.0, 0.0
        for name, (held, y_held, test, y_test, n_select) in pools.items():
            team, candidates, seconds, cpu_seconds = timed_select(held, y_held, n_select, cap)
            exact.setdefault(name, team.tolist())
            same += team.tolist() == exact[name]
            accuracy.append(team_accuracy(test, y_test, team[None])[0])
            levels = np.bincount(candidates["size"])
            largest, scored = max(largest, levels[3:].max(initial=0)), scored + len(candidates["team"])
            cpu, wall = cpu + cpu_seconds, wall + seconds
        label = "None (exact)" if cap is None else str(cap)
        print(
            f"{label:>20}{f'{same} of {len(pools)}':>12}{np.mean(accuracy):>10.4f}{largest:>15}"
            f"{scored / len(pools):>14.0f}{cpu:>8.2f}{wall:>8.2f}"
        )
    print("(test acc: mean over the pools; largest level: the most teams a grown level held;")
    print(" teams scored: mean per pool; seconds: all pools together)")


# --- 2. large pools ---------------------------------------------------------------------


def large_pools(n_samples):
    print(f"\n2. Selection time for large pools, {n_samples} held-out samples, 10 classes")
    print(f"{'M':>5}{'S':>4}{'max_teams_per_level':>21}{'levels (teams)':>44}{'cpu s':>8}{'wall s':>8}")
    for n_members, n_select in LARGE:
        probas, y = simulated_members(n_members, n_samples, seed=n_members)
        for cap in LARGE_CAPS:
            team, candidates, seconds, cpu_seconds = timed_select(probas, y, n_select, cap)
            levels = " ".join(str(n) for n in np.bincount(candidates["size"])[2:])
            print(f"{n_members:>5}{n_select:>4}{cap:>21}{levels:>44}{cpu_seconds:>8.2f}{seconds:>8.2f}")
    print(f"(the default cap is {MAX_TEAMS_PER_LEVEL}; level 2 always holds every pair)")


def main():
    args = parse_args()
    pools = forest_pools(args.seeds)
    if args.predictions:
        pools.update(saved_pools(args.predictions, set(args.seeds)))
    small_pools(pools)
    large_pools(args.n_samples)


if __name__ == "__main__":
    main()
