"""DropNet on digits: accuracy vs units left, size/speed ratios, pruning cost.

Prints, from one run on this machine:

1. test accuracy against the fraction of units left, for ``unit_score`` in
   {activation, random, l1} x ``scope`` in {layer, global} (plus the paper's
   raw global ranking), averaged over seeds;
2. for a wide MLP, the pruned/dense ratio of parameters, of the saved
   weights' bytes, of the activations' bytes per sample, of
   multiply-accumulates and of measured CPU inference time (batch 256);
3. the time of a whole pruning run against rounds x the dense training time;
4. GridSearchCV over ``prune_ratio`` and its ``best_params_``, and the time
   of the same search with ``n_jobs=2`` over ``n_jobs=1`` (workers cap their
   torch threads, so two jobs on two cores should not be slower).

Run: ``python benchmarks/bench_dropnet.py [--seeds 0 1 2] [--quick]``.
"""

import argparse
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.pruning._network_cost import network_costs

SCORES = ["activation", "random", "l1"]
SCOPES = ["layer", "global", "global_raw"]


def digits_split(seed=0):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


def accuracy_curves(seeds, hidden, max_epochs):
    """One pruning run per score/scope/seed, evaluated after each step.

    ``prune()`` continues the same run, so the points of a curve are the
    successive networks of one DropNet run, each retrained.
    """
    X_train, X_test, y_train, y_test = digits_split()
    ratios = [0.0, 0.5, 0.75, 0.9]
    print(f"\n1. Test accuracy vs fraction of units left (digits, MLP {hidden} without BatchNorm, "
          f"mean of {len(seeds)} seeds)")
    header = f"{'score':<11}{'scope':<11}" + "".join(f"{1 - r:>9.2f}" for r in ratios)
    print(header)
    print("-" * len(header))
    for score in SCORES:
        for scope in SCOPES:
            accuracies = np.zeros((len(seeds), len(ratios)))
            for i, seed in enumerate(seeds):
                clf = DropNetClassifier(
                    prune_ratio=0.0,
                    unit_score=score,
                    scope=scope,
                    max_epochs=max_epochs,
                    module__hidden_layer_sizes=hidden,
                    module__batch_norm=False,
                    random_state=seed,
                ).fit(X_train, y_train)
                for j, ratio in enumerate(ratios):
                    if ratio:
                        clf.prune(X_train, y_train, prune_ratio=ratio)
                    accuracies[i, j] = clf.score(X_test, y_test)
            print(f"{score:<11}{scope:<11}" + "".join(f"{a:>9.3f}" for a in accuracies.mean(0)), flush=True)


def size_and_speed(max_epochs):
    X_train, X_test, y_train, y_test = digits_split()
    hidden = (1024, 1024)
    print(f"\n2. Wide MLP {hidden} on digits: pruned / dense (CPU, batch 256, {torch.get_num_threads()} threads)")
    dense = DropNetClassifier(prune_ratio=0, max_epochs=max_epochs, module__hidden_layer_sizes=hidden, random_state=0)
    dense.fit(X_train, y_train)
    batch = torch.as_tensor(np.resize(X_test, (256, X_test.shape[1])))
    base = network_costs(dense.module_, batch, repeats=50)
    print(f"dense: {base['params']:,} parameters, {base['saved'] / 1024:,.0f} KiB saved, "
          f"{base['activations']:,} bytes of activations per sample")  # fmt: skip
    columns = ["params", "saved", "activations", "macs", "seconds"]
    print(f"{'prune_ratio':>11}" + "".join(f"{c:>12}" for c in columns) + f"{'accuracy':>10}")
    print(f"{0.0:>11.2f}" + "".join(f"{1:>12.3f}" for _ in columns) + f"{dense.score(X_test, y_test):>10.3f}")
    for ratio in (0.5, 0.8, 0.9):
        pruned = DropNetClassifier(
            prune_ratio=ratio, max_epochs=max_epochs, module__hidden_layer_sizes=hidden, random_state=0
        ).fit(X_train, y_train)
        cost = network_costs(pruned.module_, batch, repeats=50)
        print(f"{ratio:>11.2f}" + "".join(f"{cost[c] / base[c]:>12.3f}" for c in columns)
              + f"{pruned.score(X_test, y_test):>10.3f}")  # fmt: skip


def pruning_cost(max_epochs):
    X_train, _, y_train, _ = digits_split()
    print("\n3. Cost of a whole pruning run (default MLP, prune_ratio=0.8)")
    start = time.perf_counter()
    clf = DropNetClassifier(prune_ratio=0.8, max_epochs=max_epochs, random_state=0).fit(X_train, y_train)
    total = time.perf_counter() - start
    history = clf.pruning_history_
    dense_seconds = history[0]["seconds"]
    rounds = len(history)
    print(f"trainings (dense + rounds): {rounds}")
    print(f"dense training: {dense_seconds:.2f} s, {history[0]['epochs']} epochs")
    print(f"whole run: {total:.2f} s = {total / (rounds * dense_seconds):.2f} x (trainings x dense training time)")
    print("per round: " + ", ".join(f"{r['seconds']:.2f}s/{r['epochs']}ep" for r in history))


def grid_search(max_epochs):
    from sklearn.model_selection import GridSearchCV

    X_train, X_test, y_train, y_test = digits_split()
    print("\n4. GridSearchCV over prune_ratio (3-fold, n_jobs=2)")
    search = GridSearchCV(
        DropNetClassifier(max_epochs=max_epochs, random_state=0),
        {"prune_ratio": [0.0, 0.5, 0.8]},
        cv=3,
        n_jobs=2,
    ).fit(X_train, y_train)
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"  {params}: mean CV accuracy {score:.3f}")
    print(f"best_params_ = {search.best_params_}, test accuracy {search.score(X_test, y_test):.3f}")
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count())  # what a user's n_jobs=1 run gets
    try:
        seconds = {}
        for n_jobs in (2, 1, 2):  # the first run starts the worker pool
            small = DropNetClassifier(max_epochs=6, lr=0.01, module__hidden_layer_sizes=(64, 32), random_state=0)
            search = GridSearchCV(small, {"prune_ratio": [0.0, 0.3, 0.5, 0.7]}, cv=2, n_jobs=n_jobs)
            start = time.perf_counter()
            search.fit(X_train[:600], y_train[:600])
            seconds[n_jobs] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    print(f"the same search, n_jobs=2 / n_jobs=1 on {os.cpu_count()} cores: {seconds[2] / seconds[1]:.2f} "
          f"({seconds[2]:.1f} s / {seconds[1]:.1f} s)")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and one seed")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    max_epochs = 15 if args.quick else 100
    accuracy_curves(seeds, hidden=(24, 24), max_epochs=max_epochs)
    size_and_speed(max_epochs)
    pruning_cost(max_epochs)
    grid_search(max_epochs)


if __name__ == "__main__":
    main()
