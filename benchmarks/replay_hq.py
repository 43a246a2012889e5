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

``--save-teams FILE`` writes every team chosen (per pool, metric, final
choice and seed) to a JSON file; ``--same-teams-as FILE`` compares the teams
chosen now with such a file, seed by seed, and lists every difference: run
it once with one version of the package (``PYTHONPATH``) and once with
another to check that a change of the selection code leaves the teams alone.

Usage::

    python benchmarks/bench_hq.py --seeds 0 1 2 --save-predictions preds/
    python benchmarks/replay_hq.py preds/                  # seconds
    python benchmarks/replay_hq.py preds/ --pool unpruned --n-select 3
    python benchmarks/replay_hq.py preds/ --save-teams before.json   # old version
    python benchmarks/replay_hq.py preds/ --same-teams-as before.json
"""

import argparse
import json
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
    parser.add_argument("--pool", choices=["pruned", "unpruned", "both"], default="pruned")
    parser.add_argument("--n-select", type=int, default=5)
    parser.add_argument(
        "--max-teams-per-level",
        type=int,
        help="HQ's cap on the teams of a level (default: the package's default)",
    )
    parser.add_argument("--save-teams", metavar="FILE", help="write the chosen teams to FILE (JSON)")
    parser.add_argument(
        "--same-teams-as", metavar="FILE", help="compare the chosen teams with FILE, seed by seed"
    )
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


def replay(pool, metric, final_choice, n_select, max_teams_per_level=None):
    """HQ's team on the held-out probabilities: (test accuracy, member indices)."""
    held, y_held, test, y_test = pool
    # Passed only when given, so that the script also runs against versions
    # of the package from before the cap (to compare their teams).
    cap = {} if max_teams_per_level is None else {"max_teams_per_level": max_teams_per_level}
    team, _ = hq_select(
        held.argmax(axis=2), held, y_held, n_select, metric=metric, final_choice=final_choice, **cap
    )
    return team_accuracy(test, y_test, np.asarray(team)[None])[0], team


def compare_teams(teams, path):
    """Print how many chosen teams equal those saved in ``path``, and each that does not."""
    saved = json.loads(Path(path).read_text())
    common = sorted(set(saved) & set(teams))
    different = [key for key in common if saved[key] != teams[key]]
    print(
        f"\nteams compared with {path}: {len(common)} (pool/metric/final choice/seed), "
        f"{len(common) - len(different)} the same, {len(different)} different"
    )
    for key in different:
        print(f"   {key}: {saved[key]} before, {teams[key]} now")
    missing = sorted(set(saved) ^ set(teams))
    if missing:
        print(f"   in only one of the two: {len(missing)} ({', '.join(missing[:5])} ...)")


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
    teams = {}
    for pool_name in ("pruned", "unpruned") if args.pool == "both" else (args.pool,):
        teams.update(replay_pool(args, pool_name))
    if args.save_teams:
        Path(args.save_teams).write_text(json.dumps(teams, indent=0, sort_keys=True))
        print(f"\n{len(teams)} teams written to {args.save_teams}")
    if args.same_teams_as:
        compare_teams(teams, args.same_teams_as)


def replay_pool(args, pool_name):
    """Print the table for one pool; return its teams by "pool/metric/final choice/seed"."""
    pools = load_pools(args.folder, pool_name)
    refs = [references(test, y_test, args.n_select) for _, _, test, y_test in pools.values()]
    n_members = len(next(iter(pools.values()))[0])
    print(
        f"{pool_name} pools of {n_members} members, S = {args.n_select}, "
        f"seeds {sorted(pools)}; a team of {args.n_select} drawn at random passes both "
        f"checks on {np.mean([r[2] for r in refs]):.0%} of (seed, team) pairs"
    )
    print(
        f"{'metric':<26}{'final':<10}{'test':>7}{'size':>6}{'-all':>8}{'bound':>7}"
        f"{'-best':>8}{'bound':>7}{'>=all-0.3':>10}{'>best':>10}{'both':>10}"
    )
    teams = {}
    for metric in METRICS:
        for final_choice in FINAL_CHOICES:
            results = [
                replay(pool, metric, final_choice, args.n_select, args.max_teams_per_level)
                for pool in pools.values()
            ]
            print(f"{metric:<26}{final_choice:<10}{summarize(results, refs)}")
            for seed, (_, team) in zip(pools, results):
                teams[f"{pool_name}/{metric}/{final_choice}/{seed}"] = np.asarray(team).tolist()
    print(f"(-all, -best: mean gaps in points with one-sided 95% lower bounds; the last "
          f"three columns count seeds, of {len(pools)})")  # fmt: skip
    return teams


if __name__ == "__main__":
    main()
