"""Reproduce DropNet's pruning curves: test accuracy against fraction of units left.

Tan & Motani (ICML 2020) train a network, then repeatedly drop 20% of the
surviving nodes or filters and retrain, comparing the metric that chooses
which units go. This script runs those experiments with
:class:`sklearn_dropnet.DropNetClassifier` (units removed physically) and
records the test accuracy after every round, for every metric and seed.

Metrics (names as in the paper; see ``/work/shared/ALGORITHMS.md``):

=============  ===========================  ===============================
metric         unit_score / scope           meaning
=============  ===========================  ===============================
min            activation / global_raw      DropNet, raw scores ranked over
                                            the whole network (the paper)
min_scaled     activation / global          DropNet, each layer's scores
                                            divided by their mean first
                                            (this library's global default)
min_layer      activation / layer           DropNet, 20% of every layer
random         random / global_raw          random units anywhere
random_layer   random / layer               random units, 20% of every layer
max            max / global_raw             the highest scores (sanity
                                            baseline, expected to collapse)
apoz           apoz / layer                 units that are zero most often
l1_layer       l1 / layer                   smallest weight L1 norms (not in
                                            the paper; the usual baseline)
oracle         (greedy, global)             the unit whose removal raises
                                            the training loss least, one at a
                                            time (small networks only)
=============  ===========================  ===============================

Writes ``<out>/<dataset>_<model>.csv`` (one row per metric, seed and round)
and ``<out>/<dataset>_<model>.png`` (mean test accuracy over the seeds
against the fraction of units left, as the paper's figures), and prints a
table of the means.

Data: ``digits`` (scikit-learn's 8x8 digits as images, no files needed;
70/30 stratified split, ``random_state=0``) runs on the CPU in minutes.
``mnist`` and ``cifar10`` are read from ``--data-dir`` (torchvision's
layouts, see :mod:`sklearn_dropnet.datasets`; nothing is downloaded) and are
meant for a GPU (``--device cuda``); their official test sets are used, and
10% of the training set is held out for early stopping (the paper's
54k/6k and 45k/5k splits).

Training settings default to the paper's on MNIST/CIFAR-10 (SGD, lr 0.1,
batch 32, up to 100 epochs a round, early stopping with patience 5, weights
rewound to their initial values every round) and to quicker ones on digits
(Adam, lr 0.01, up to 30 epochs, patience 3; about 12 epochs a round).

Usage::

    python benchmarks/reproduce_paper.py                     # digits, Model B 32-32: ~5 min on 2 cores
    python benchmarks/reproduce_paper.py --model A --metrics min min_layer random oracle
    python benchmarks/reproduce_paper.py --dataset mnist --data-dir ~/data --model B \\
        --channels 64 64 --device cuda --seeds 0 1 2 --out results/
    python benchmarks/reproduce_paper.py --dataset cifar10 --data-dir ~/data --model C \\
        --metrics min min_layer random random_layer max --device cuda
    python benchmarks/reproduce_paper.py --dataset cifar10 --data-dir ~/data \\
        --model resnet18 --metrics min_layer random_layer --min-fraction-left 0.2 --device cuda
"""

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._dropnet import REINITS, _units_per_round
from sklearn_dropnet.datasets import load_cifar10, load_digits_images, load_mnist
from sklearn_dropnet.ensemble._parallel import limit_torch_threads, threads_per_worker
from sklearn_dropnet.models import VGG, ModelA, ModelB, ModelC, ResNet18
from sklearn_dropnet.pruning._oracle import oracle_pruning_path

METRICS = {
    "min": ("activation", "global_raw"),
    "min_scaled": ("activation", "global"),
    "min_layer": ("activation", "layer"),
    "random": ("random", "global_raw"),
    "random_layer": ("random", "layer"),
    "max": ("max", "global_raw"),
    "apoz": ("apoz", "layer"),
    "l1_layer": ("l1", "layer"),
    "oracle": ("oracle", "global_raw"),
}
DEFAULT_METRICS = ["min", "min_scaled", "min_layer", "random", "random_layer", "max", "apoz"]
MODELS = ("A", "B", "C", "resnet18", "vgg16", "vgg19")
COLUMNS = (
    "dataset", "model", "metric", "unit_score", "scope", "reinit", "seed", "round",
    "fraction_left", "units", "params", "macs", "valid_accuracy", "test_accuracy",
    "epochs", "seconds",
)  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=("digits", "mnist", "cifar10"), default="digits")
    parser.add_argument("--data-dir", help="folder holding MNIST/ or cifar-10-batches-py/")
    parser.add_argument("--model", choices=MODELS, default=None, help="default: B, or C on cifar10")
    parser.add_argument(
        "--metrics", nargs="+", choices=sorted(METRICS), help="default: the paper's six and min_scaled, "
        "plus oracle for Models A and B"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", default="results", help="output folder")
    parser.add_argument("--min-fraction-left", type=float, default=0.1, help="stop at this fraction of units")
    parser.add_argument("--drop-fraction", type=float, default=0.2, help="the paper's p")
    parser.add_argument("--reinit", choices=REINITS, default="rewind")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--channels", type=int, nargs="+", help="filters per conv layer (Model B / C)")
    parser.add_argument("--hidden", type=int, nargs="+", help="hidden units (Model A; Model C's dense layers)")
    parser.add_argument("--width", type=float, help="width of ResNet-18 (int) or VGG (multiplier)")
    parser.add_argument("--max-train", type=int, help="use only this many training images (quick runs)")
    parser.add_argument("--oracle-samples", type=int, default=512, help="training images the oracle scores on")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel runs (default: cores on cpu, 1 on cuda)")
    args = parser.parse_args(argv)

    on_digits = args.dataset == "digits"
    if args.model is None:
        args.model = "C" if args.dataset == "cifar10" else "B"
    if args.optimizer is None:
        args.optimizer = "adam" if on_digits else "sgd"
    if args.lr is None:
        args.lr = 0.01 if args.optimizer == "adam" else 0.1
    if args.metrics is None:
        args.metrics = DEFAULT_METRICS + (["oracle"] if args.model in ("A", "B") else [])
    if args.max_epochs is None:
        args.max_epochs = 30 if on_digits else 100
    if args.patience is None:
        args.patience = 3 if on_digits else 5
    if args.n_jobs is None:
        args.n_jobs = 1 if args.device.startswith("cuda") else (os.cpu_count() or 1)
    if not on_digits and args.data_dir is None:
        parser.error(f"--dataset {args.dataset} needs --data-dir, the folder holding the data set.")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda was given, but torch sees no CUDA device.")
    if "oracle" in args.metrics and args.model not in ("A", "B", "C"):
        parser.error("the oracle tries every unit one at a time; use it with Models A, B or C only.")
    return args


def load_data(args):
    """Return ``X_train, X_test, y_train, y_test``; exit with a clear message if files are missing."""
    if args.dataset == "digits":
        X, y = load_digits_images()
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    else:
        loader = load_mnist if args.dataset == "mnist" else load_cifar10
        try:
            X_train, y_train = loader(args.data_dir, train=True, normalize=True)
            X_test, y_test = loader(args.data_dir, train=False, normalize=True)
        except FileNotFoundError as exc:
            sys.exit(f"reproduce_paper.py: error: {exc}")
    if args.max_train and args.max_train < len(y_train):
        keep, _ = train_test_split(
            np.arange(len(y_train)), train_size=args.max_train, stratify=y_train, random_state=0
        )
        X_train, y_train = X_train[keep], y_train[keep]
    return X_train, X_test, y_train, y_test


def module_settings(args):
    """``(module class, module__* parameters)`` for ``args.model``."""
    if args.model == "A":
        return ModelA, {"module__hidden_layer_sizes": tuple(args.hidden or (40, 40))}
    if args.model == "B":
        return ModelB, {"module__channels": tuple(args.channels or (32, 32))}
    if args.model == "C":
        params = {"module__channels": tuple(args.channels or (64, 64, 128, 128))}
        if args.hidden:
            params["module__hidden_layer_sizes"] = tuple(args.hidden)
        return ModelC, params
    if args.model == "resnet18":
        return ResNet18, {"module__width": int(args.width or 64)}
    depth = int(args.model[3:])
    return VGG, {"module__depth": depth, "module__width": float(args.width or 1.0)}


def make_estimator(args, metric, seed):
    module, module_params = module_settings(args)
    unit_score, scope = METRICS[metric]
    return DropNetClassifier(
        module,
        optimizer=torch.optim.SGD if args.optimizer == "sgd" else torch.optim.Adam,
        lr=args.lr,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        patience=args.patience,
        device=args.device,
        prune_ratio=0.0,
        drop_fraction=args.drop_fraction,
        scope=scope,
        unit_score="activation" if unit_score == "oracle" else unit_score,
        reinit=args.reinit,
        random_state=seed,
        **module_params,
    )


def _row(args, metric, seed, round_, clf, record, test_accuracy):
    unit_score, scope = METRICS[metric]
    return {
        "dataset": args.dataset,
        "model": args.model,
        "metric": metric,
        "unit_score": unit_score,
        "scope": scope,
        "reinit": args.reinit,
        "seed": seed,
        "round": round_,
        "fraction_left": record["fraction_left"],
        "units": record["units"],
        "params": record["params"],
        "macs": record["macs"],
        "valid_accuracy": round(record["valid_accuracy"], 6),
        "test_accuracy": round(test_accuracy, 6),
        "epochs": record["epochs"],
        "seconds": round(record["seconds"], 3),
    }


def run_one(args, data, metric, seed, n_threads):
    """All rounds of one metric and seed; returns the CSV rows."""
    X_train, X_test, y_train, y_test = data
    rows = []
    with limit_torch_threads(n_threads):
        estimator = make_estimator(args, metric, seed)
        if metric == "oracle":
            path = oracle_pruning_path(
                estimator, X_train, y_train, args.min_fraction_left, max_samples=args.oracle_samples
            )
            for round_, clf in enumerate(path):
                record = clf.pruning_history_[0]
                rows.append(_row(args, metric, seed, round_, clf, record, clf.score(X_test, y_test)))
            return rows
        clf = estimator.fit(X_train, y_train)
        n_dense = clf.n_units_dense_
        fewest = math.floor(args.min_fraction_left * n_dense + 1e-9)
        while True:
            record = clf.pruning_history_[-1]
            rows.append(_row(args, metric, seed, len(rows), clf, record, clf.score(X_test, y_test)))
            left = record["units"]
            # Exactly one round of drop_fraction, the last one clipped at the target.
            target = max(left - _units_per_round(args.drop_fraction, left), fewest)
            if target >= left:
                return rows
            clf.prune(X_train, y_train, prune_ratio=1 - target / n_dense)
            if clf.pruning_history_[-1]["units"] >= left:  # nothing more could be removed
                return rows


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows, metrics):
    """``{metric: [(round, mean fraction left, mean test accuracy, std, n seeds)]}``."""
    summary = {}
    for metric in metrics:
        by_round = {}
        for row in rows:
            if row["metric"] == metric:
                by_round.setdefault(row["round"], []).append(row)
        summary[metric] = [
            (
                r,
                float(np.mean([x["fraction_left"] for x in rs])),
                float(np.mean([x["test_accuracy"] for x in rs])),
                float(np.std([x["test_accuracy"] for x in rs])),
                len(rs),
            )
            for r, rs in sorted(by_round.items())
        ]
    return summary


def print_table(summary):
    rounds = max(len(v) for v in summary.values())
    metrics = list(summary)
    print("\nMean test accuracy over seeds (fraction of units left in brackets)")
    print("round  " + "  ".join(f"{m:>20}" for m in metrics))
    for r in range(rounds):
        cells = []
        for m in metrics:
            entries = summary[m]
            if r < len(entries):
                _, frac, acc, std, _ = entries[r]
                cells.append(f"{acc:.3f}±{std:.3f} ({frac:.3f})")
            else:
                cells.append("")
        print(f"{r:>5}  " + "  ".join(f"{c:>20}" for c in cells))


def plot(summary, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for metric, entries in summary.items():
        frac = np.array([e[1] for e in entries])
        acc = np.array([e[2] for e in entries])
        std = np.array([e[3] for e in entries])
        (line,) = ax.plot(frac, acc, marker="o", markersize=3, label=metric)
        ax.fill_between(frac, acc - std, acc + std, color=line.get_color(), alpha=0.15)
    smallest = min(e[1] for entries in summary.values() for e in entries)
    ax.set_xscale("log")
    ax.set_xlim(1.08, smallest * 0.92)  # decreasing: the network shrinks to the right
    ticks = [t for t in (1, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02) if t >= smallest * 0.92]
    ax.set_xticks(ticks)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("fraction of units (nodes / filters) left")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    data = load_data(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(metric, seed) for metric in args.metrics for seed in args.seeds]
    n_threads = 1 if args.device.startswith("cuda") else threads_per_worker(args.n_jobs)
    print(
        f"{args.dataset}: {len(data[2])} training / {len(data[3])} test images; model {args.model}; "
        f"{len(jobs)} runs on {args.device} with {args.n_jobs} job(s)",
        flush=True,
    )
    start = time.perf_counter()
    results = Parallel(n_jobs=args.n_jobs, verbose=0)(
        delayed(run_one)(args, data, metric, seed, n_threads) for metric, seed in jobs
    )
    rows = [row for rows in results for row in rows]
    stem = out / f"{args.dataset}_{args.model}"
    write_csv(rows, stem.with_suffix(".csv"))
    summary = summarise(rows, args.metrics)
    print_table(summary)
    title = f"{args.model} on {args.dataset}, mean of {len(args.seeds)} seed(s), reinit={args.reinit}"
    plot(summary, stem.with_suffix(".png"), title)
    print(f"\nwrote {stem.with_suffix('.csv')} and {stem.with_suffix('.png')} "
          f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
