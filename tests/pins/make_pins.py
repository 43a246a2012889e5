"""Record the results that refactors must keep (``tests/test_pins.py``).

Run ``python tests/pins/make_pins.py`` only when a change is *meant* to
change results (a new default, say), and say so in the commit: the pins
exist to show that moving code changed nothing. Each case fits on the
test suite's split of digits with one torch thread, as the tests do.

The last bits depend on the CPU's instruction set (torch picks its kernels
by it), so the pins are kept per kind of CPU (``AVX512``, ``AVX2``, ...).
A run replaces the pins of every other kind too, which a change of results
makes stale: run it again on a machine of each other kind to pin those.
``--add-kind`` instead adds this machine's kind and keeps the others, for a
new kind of machine when the results have not changed. Two CPUs of one kind
can still differ in the last bits (the math library picks its kernels by
the processor's model too: an AVX-512 Xeon with AMX does): ``--add-variant
LABEL``, on such a machine and with results unchanged, keeps its pins as
another variant of its kind, under ``"KIND LABEL"``; the tests accept any
variant of their kind.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.models import ModelB

HERE = Path(__file__).parent
PINS = HERE / "pins.json"

# name -> (estimator parameters, whether X is given as images)
CASES = {
    # The estimator's defaults at prune_ratio=0.8 (since this release: rows
    # reshuffled every epoch, survivors fine-tuned).
    "defaults": (dict(prune_ratio=0.8, random_state=0), False),
    # The paper's retraining (rewind to the initial weights, rows in one
    # fixed order, no distillation): the defaults before this release.
    "paper_settings": (
        dict(prune_ratio=0.8, random_state=0, reinit="rewind", iterator_train__shuffle=False),
        False,
    ),
    # Random scores and the global scope draw from the round's generator.
    "random_global": (
        dict(
            prune_ratio=0.7, unit_score="random", scope="global", max_epochs=10,
            module__hidden_layer_sizes=(48, 24), random_state=1,
        ),
        False,
    ),
    # Filters of a CNN with BatchNorm-free conv blocks, fine-tuned.
    "conv_filters": (
        dict(
            module=ModelB, module__channels=(16, 16), prune_ratio=0.75, max_epochs=6,
            reinit="none", random_state=2,
        ),
        True,
    ),
}


def digits_split():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def run_case(name):
    """Fit case ``name``; return its history (without times) and predictions."""
    params, images = CASES[name]
    X_train, X_test, y_train, _ = digits_split()
    if images:
        X_train, X_test = X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8)
    # Predictions in batches of 32 rows, as when the pins were made: a cheap
    # network now predicts in larger batches, whose last bits may differ
    # on other CPUs; the fit is the same either way (validation's batches
    # are batch_size=32 rows by default).
    clf = DropNetClassifier(**params, iterator_valid__batch_size=32).fit(X_train, y_train)
    history = [
        {key: value for key, value in record.items() if key not in ("seconds", "train_seconds")}
        for record in clf.pruning_history_
    ]
    proba = clf.predict_proba(X_test)
    return {
        "history": history,
        "predictions": clf.predict(X_test).tolist(),
        # Every bit of the float64 probabilities.
        "proba_sha256": hashlib.sha256(np.ascontiguousarray(proba, dtype=np.float64).tobytes()).hexdigest(),
    }


def main(argv):
    variant = argv[argv.index("--add-variant") + 1] if "--add-variant" in argv else None
    add_kind = "--add-kind" in argv or variant is not None
    names = [name for name in argv if name in CASES] or list(CASES)
    torch.set_num_threads(1)
    kind = torch.backends.cpu.get_cpu_capability() + ("" if variant is None else f" {variant}")
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    if not add_kind:
        pins = {kind: pins.get(kind, {})}
    pins.setdefault(kind, {})
    for name in names:
        pins[kind][name] = run_case(name)
        print(kind, name, pins[kind][name]["history"][-1])
    PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
