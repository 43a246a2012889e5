"""Replay HQ's selection with every metric and final choice on saved pools.

``bench_hq.py --save-predictions DIR`` keeps, per seed, the members'
probabilities on the held-out and the test images. Selection alone takes a
fraction of a second, so every rule can be tried on the same members
without training again. For each diversity ``metric`` and each
``final_choice``, HQ chooses a team of at most S on the held-out
probabilities (soft voting, the default ``prune_fraction``), and the team
is scored on the test images. Per rule it prints, over the seeds: mean test
accuracy and team size; the gap to all M members and to the member that is
best on the test set, each with its one-sided 95% lower bound; and on how
many seeds the issue's two checks held (team >= all - 0.3 points, team >
best member), against the share of all teams of S that pass both (a team
drawn at random).

Usage::

    python benchmarks/bench_hq.py --seeds 0 1 2 --save-predictions preds/
    python benchmarks/replay_hq.py preds/                  # seconds
    python benchmarks/replay_hq.py preds/ --pool unpruned --n-select 3
"""

import argparse
import re
from itertools import combinations
from pathlib import Path

import numpy as np
from bench_hq import mean_gap, passes

from sklearn_dropnet.diversity import METRICS
from sklearn_dropnet.ensemble._ensemble_selection import (
    FINAL_CHOICES,
    hq_select,
    team_accuracy,
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the DIR of bench_hq.py --save-predictions DIR")
    parser.add_argument("--pool", choices=["pruned", "unpruned"], default="pruned")
    parser.add_argument("--n-select", type=int, default=5)
    return parser.parse_args()


def load_pools(folder, pool):
    """{seed: (held-out probas, held-out labels, test probas, test labels)}, by seed."""
    paths = sorted(Path(folder).glob("seed*.npz"), key=lambda p: int(re.sub(r"\D", "", p.stem)))
    if not paths:
        raise SystemExit(f"no seed*.npz in {folder}: run bench_hq.py --save-predictions {folder}")
    pools = {}
    for path in paths:
        saved = np.load(path)
        pools[int(re.sub(r"\D", "", path.stem))] = (
            saved[f"{pool}_held"].astype(np.float64),
            saved["y_held"],
            saved[f"{pool}_test"].astype(np.float64),
            saved["y_test"],
        )
    return pools


def references(test_probas, y_test, n_select):
    """Test accuracy of all members and of the best one; share of random teams passing both."""
    n_members = len(test_probas)
    everyone = team_accuracy(test_probas, y_test, np.arange(n_members)[None])[0]
    best_single = (test_probas.argmax(axis=2) == y_test).mean(axis=1).max()
    teams = np.array(list(combinations(range(n_members), n_select)))
    checks = passes(team_accuracy(test_probas, y_test, teams), everyone, best_single)
    return everyone, best_single, np.mean(np.logical_and(*checks.values()))


def replay(pool, metric, final_choice, n_select):
    """HQ's team on the held-out probabilities: (test accuracy, member indices)."""
    held, y_held, test, y_test = pool
    team, _ = hq_select(
        held.argmax(axis=2), held, y_held, n_select, metric=metric, final_choice=final_choice
    )
    return team_accuracy(test, y_test, np.asarray(team)[None])[0], team


def summarize(results, refs):
    """One rule's line: accuracy, size, gaps with bounds, seeds passing the checks."""
    accuracy = np.array([acc for acc, _ in results])
    size = np.array([len(team) for _, team in results])
    everyone, best_single, _ = np.array(refs).T
    gap_all, gap_best = mean_gap(100 * (accuracy - everyone)), mean_gap(100 * (accuracy - best_single))
    checks = passes(accuracy, everyone, best_single)
    both = np.logical_and(*checks.values())
    counts = "".join(f"{int(ok.sum()):>10}" for ok in [*checks.values(), both])
    return (
        f"{accuracy.mean():>7.4f}{size.mean():>6.2f}"
        f"{gap_all['mean']:>+8.2f}{gap_all['lower_bound']:>+7.2f}"
        f"{gap_best['mean']:>+8.2f}{gap_best['lower_bound']:>+7.2f}{counts}"
    )


def main():
    args = parse_args()
    pools = load_pools(args.folder, args.pool)
    refs = [references(test, y_test, args.n_select) for _, _, test, y_test in pools.values()]
    n_members = len(next(iter(pools.values()))[0])
    print(
        f"{args.pool} pools of {n_members} members, S = {args.n_select}, "
        f"seeds {sorted(pools)}; a team of {args.n_select} drawn at random passes both "
        f"checks on {np.mean([r[2] for r in refs]):.0%} of (seed, team) pairs"
    )
    print(
        f"{'metric':<26}{'final':<10}{'test':>7}{'size':>6}{'-all':>8}{'bound':>7}"
        f"{'-best':>8}{'bound':>7}{'>=all-0.3':>10}{'>best':>10}{'both':>10}"
    )
    for metric in METRICS:
        for final_choice in FINAL_CHOICES:
            results = [replay(pool, metric, final_choice, args.n_select) for pool in pools.values()]
            print(f"{metric:<26}{final_choice:<10}{summarize(results, refs)}")
    print(f"(-all, -best: mean gaps in points with one-sided 95% lower bounds; the last "
          f"three columns count seeds, of {len(pools)})")  # fmt: skip


if __name__ == "__main__":
    main()
