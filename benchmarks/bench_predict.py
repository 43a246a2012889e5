"""What ``predict_proba`` costs over the network it wraps.

Fits, on scikit-learn's digits, the default MLP pruned to ``prune_ratio=0.8``
and ``ModelB`` (two conv blocks of 16 filters, 8 x 8 images) pruned to 0.75,
then times ``predict_proba`` on ``--rows`` rows (the test rows repeated) and
on one row, three ways, taken in turn on each repeat so that they share the
machine's load:

- ``estimator``: ``clf.predict_proba(X)``, the default batches (as large as
  the network's activations allow, at most 8,192 rows);
- ``batch 32``: the same with ``iterator_valid__batch_size=32``, the
  estimator's batches before this release;
- ``network``: the bare torch module on the whole array at once, in eval
  mode under ``torch.inference_mode()``, then a softmax: no checks, no
  batching, the floor.

Prints the medians of ``--repeats`` runs and the ratios to ``network``, and
the largest difference between the estimator's probabilities and those of
batches of 32 (float32 sums in another order: 1e-8, not a result).

Usage::

    python benchmarks/bench_predict.py                 # about 30 s
    python benchmarks/bench_predict.py --rows 100000 --repeats 9
"""

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.models import ModelB


def networks(quick):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    epochs = 2 if quick else 20
    mlp = dict(prune_ratio=0.8, max_epochs=epochs, random_state=0)
    cnn = dict(module=ModelB, module__channels=(16, 16), prune_ratio=0.75, max_epochs=epochs, random_state=0)
    yield "MLP, 80% of units removed", mlp, X_train, y_train, X_test
    images = X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8)
    yield "ModelB 16-16, 75% of filters removed", cnn, images[0], y_train, images[1]


def bare_network(clf):
    module = clf.module_.eval()

    def predict(X):
        with torch.inference_mode():
            return torch.softmax(module(torch.from_numpy(X)), dim=1).numpy()

    return predict


def median_seconds(functions, X, repeats):
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function(X)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 epochs a round, 2,000 rows, 2 repeats (the smoke test)")
    args = parser.parse_args(argv)
    rows, repeats = (2_000, 2) if args.quick else (args.rows, args.repeats)
    torch.set_num_threads(1)
    for title, params, X_train, y_train, X_test in networks(args.quick):
        clf = DropNetClassifier(**params).fit(X_train, y_train)
        in_32 = DropNetClassifier(**params, iterator_valid__batch_size=32).fit(X_train, y_train)
        X = np.ascontiguousarray(np.resize(X_test, (rows, *X_test.shape[1:])))
        functions = {"estimator": clf.predict_proba, "batch 32": in_32.predict_proba, "network": bare_network(clf)}
        print(f"\n{title}: {clf.pruning_history_[-1]['params']:,} parameters, one torch thread")
        print(f"{'rows':>8} {'estimator':>12} {'batch 32':>12} {'network':>12} {'est./net.':>10} {'32/net.':>10} {'32/est.':>10}")
        for n in (rows, 1):
            t = median_seconds(functions, X[:n], repeats if n > 1 else 50 * repeats)
            print(
                f"{n:>8,} {t['estimator'] * 1e3:>10.2f}ms {t['batch 32'] * 1e3:>10.2f}ms {t['network'] * 1e3:>10.2f}ms "
                f"{t['estimator'] / t['network']:>10.1f} {t['batch 32'] / t['network']:>10.1f} "
                f"{t['batch 32'] / t['estimator']:>10.1f}"
            )
        gap = np.abs(clf.predict_proba(X) - in_32.predict_proba(X)).max()
        pairs = zip(clf.module_.state_dict().values(), in_32.module_.state_dict().values())
        same = all(torch.equal(a, b) for a, b in pairs)
        print(f"largest |estimator - batch 32| probability: {gap:.1e}; the two fits' weights equal: {same}")


if __name__ == "__main__":
    main()
