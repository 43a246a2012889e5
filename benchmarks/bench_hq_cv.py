"""HQ on a held-out split against HQ on out-of-fold predictions (``cv``), on digits.

For each seed (a new split: half of digits, 899 images, for testing), fits two
``HQEnsembleClassifier`` of M = 10 DropNet MLPs (128-64 hidden units, pruned
80%), S = 5, from the same member and ``random_state``, through the public API:

- ``held-out``: ``validation_fraction=0.2``; the members train on 718 rows
  and the team is chosen on the other 180;
- ``cv=K`` (5 by default): each member trains once per fold and predicts the
  fold it did not see, then trains on all 898 rows; the team is chosen on
  the out-of-fold predictions of all 898. K + 1 trainings per member.

It prints, per seed and as means over the seeds: the test accuracy of HQ's
team, of all ten members together (soft vote) and of the member that is
best on the test set; the issue's two checks (team >= all - 0.3 points,
team > that member) with the share of all teams of S that pass them (a team
drawn at random); and the fit time of ``cv`` against the held-out split,
measured in the same run.

Usage::

    python benchmarks/bench_hq_cv.py               # about 5 minutes per seed on 2 cores
    python benchmarks/bench_hq_cv.py --seeds 0 1 2 --cv 3
    python benchmarks/bench_hq_cv.py --quick       # smoke run, seconds
"""

import argparse
import time

import numpy as np
from bench_hq import every_team_accuracy, network, passes
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_dropnet import HQEnsembleClassifier


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--cv", type=int, default=5, help="folds of the cv ensemble")
    parser.add_argument("--n-members", type=int, default=10)
    parser.add_argument("--n-select", type=int, default=5)
    parser.add_argument("--prune-ratio", type=float, default=0.8)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.cv, args.n_members, args.n_select, args.max_epochs = [0], 2, 3, 2, 2
    return args


def fit_and_score(args, seed, train, test, **params):
    """Fit one ensemble; its team's, all members' and the best member's test accuracy."""
    member = network(args.hidden, args.prune_ratio, args.max_epochs, None)
    hq = HQEnsembleClassifier(
        member,
        n_estimators=args.n_members,
        n_select=args.n_select,
        n_jobs=args.n_jobs,
        random_state=seed,
        **params,
    )
    start = time.perf_counter()
    hq.fit(*train)
    seconds = time.perf_counter() - start
    X_test, y_test = test
    probas = np.stack([m.predict_proba(X_test) for m in hq.estimators_]).astype(np.float64)
    singles = (hq.classes_[probas.argmax(axis=2)] == y_test).mean(axis=1)
    everyone = np.mean(hq.classes_[probas.mean(axis=0).argmax(axis=1)] == y_test)
    team, best_single = hq.score(X_test, y_test), singles.max()
    every_team = every_team_accuracy(hq.estimators_, (X_test, y_test), args.n_select)
    random_checks = passes(every_team, everyone, best_single)
    return {
        "team": team,
        "members": len(np.unique(hq.selected_)),
        "all": everyone,
        "best single": best_single,
        "mean single": singles.mean(),
        "random team": every_team.mean(),
        "checks": passes(team, everyone, best_single),
        "random share": {name: float(np.mean(held)) for name, held in random_checks.items()},
        "seconds": seconds,
    }


def run_seed(args, seed):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=seed
    )
    train, test = (X_train, y_train), (X_test, y_test)
    results = {
        "held-out": fit_and_score(args, seed, train, test, validation_fraction=0.2),
        f"cv={args.cv}": fit_and_score(args, seed, train, test, cv=args.cv),
    }
    print(f"\n=== seed {seed}: {len(y_train)} training rows, {len(y_test)} test images")
    print(f"{'':<10}{'team':>8}{'members':>9}{'all':>8}{'best 1':>8}{'random':>8}"
          f"{'>= all-0.3':>12}{'> best 1':>10}{'fit s':>8}")  # fmt: skip
    for name, r in results.items():
        within, above = r["checks"].values()
        print(f"{name:<10}{r['team']:>8.4f}{r['members']:>9}{r['all']:>8.4f}"
              f"{r['best single']:>8.4f}{r['random team']:>8.4f}{str(within):>12}"
              f"{str(above):>10}{r['seconds']:>8.0f}")  # fmt: skip
    return results


def print_summary(args, runs):
    n = len(runs)
    print(f"\nSummary over {n} seeds {args.seeds}: means (standard error)")
    for name in runs[0]:
        rows = [run[name] for run in runs]
        means = {key: np.mean([r[key] for r in rows]) for key in
                 ("team", "members", "all", "best single", "mean single", "random team")}  # fmt: skip
        print(f"  {name}: team {means['team']:.4f} ({means['members']:.2f} members), all "
              f"{means['all']:.4f}, best single {means['best single']:.4f}, mean single "
              f"{means['mean single']:.4f}, random team {means['random team']:.4f}")  # fmt: skip
        for check in rows[0]["checks"]:
            held = sum(bool(r["checks"][check]) for r in rows)
            share = np.mean([r["random share"][check] for r in rows])
            print(f"    {check}: {held} of {n} seeds (all teams of {args.n_select}: {share:.0%})")
        both = sum(all(r["checks"].values()) for r in rows)
        print(f"    both checks: {both} of {n} seeds")
    cv, held_out = f"cv={args.cv}", "held-out"
    for key in ("team", "all", "mean single"):
        gaps = 100 * np.array([run[cv][key] - run[held_out][key] for run in runs])
        error = gaps.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
        print(f"  {cv} - held-out, {key}: {gaps.mean():+.2f} points ({error:.2f}); "
              f"ahead on {np.sum(gaps > 0)}, behind on {np.sum(gaps < 0)} of {n}")  # fmt: skip
    ratio = np.sum([run[cv]["seconds"] for run in runs]) / np.sum(
        [run[held_out]["seconds"] for run in runs]
    )
    print(f"  fit time, {cv} / held-out: {ratio:.1f}x")


def main():
    args = parse_args()
    print(
        f"digits; M = {args.n_members}, S = {args.n_select}, hidden {tuple(args.hidden)}, "
        f"prune_ratio {args.prune_ratio}, max_epochs {args.max_epochs}, n_jobs {args.n_jobs}"
    )
    # Start joblib's workers with a tiny ensemble first, so that no fit time
    # below includes their start (the same call, so the same workers are reused).
    X, y = load_digits(return_X_y=True)
    HQEnsembleClassifier(
        network(args.hidden, 0.0, 1, None), n_estimators=2, n_select=2, n_jobs=args.n_jobs
    ).fit((X[:200] / 16).astype(np.float32), y[:200])
    runs = [run_seed(args, seed) for seed in args.seeds]
    print_summary(args, runs)


if __name__ == "__main__":
    main()
