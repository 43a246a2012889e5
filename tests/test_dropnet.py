"""DropNetClassifier end to end."""

import io
import os
import pickle
import threading
import time
import warnings

import joblib
import numpy as np
import pytest
import torch
from item_datasets import Items
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, EpochScoring
from torch import nn
from torch.utils.data import TensorDataset

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.models import MLP, ModelB


def small(**params):
    """A quick estimator for tests: few epochs, a small MLP."""
    defaults = dict(
        max_epochs=8,
        lr=0.01,
        patience=3,
        module__hidden_layer_sizes=(32, 16),
        random_state=0,
    )
    if "module" in params:
        del defaults["module__hidden_layer_sizes"]
    defaults.update(params)
    return DropNetClassifier(**defaults)


def linear_sizes(module):
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.fixture(scope="module")
def pruned(digits_split):
    X_train, _, y_train, _ = digits_split
    return small(prune_ratio=0.75).fit(X_train, y_train)


def test_fit_removes_units_physically(pruned):
    # 48 units in total, 75% removed -> 12 left, split 8/4 layer-wise.
    assert linear_sizes(pruned.module_) == [8, 4, 10]
    history = pruned.pruning_history_
    assert [r["units"] for r in history] == [48, 38, 30, 24, 19, 15, 12]
    assert history[-1]["fraction_left"] == 0.25
    # Parameters and multiply-accumulates shrink every round.
    params = [r["params"] for r in history]
    macs = [r["macs"] for r in history]
    assert params == sorted(params, reverse=True) and len(set(params)) == len(params)
    assert macs == sorted(macs, reverse=True)
    assert params[-1] == sum(p.numel() for p in pruned.module_.parameters())
    assert history[-1]["units_per_layer"] == {"layers.1": 8, "layers.4": 4}
    assert all(r["epochs"] >= 1 and 0 < r["train_seconds"] < r["seconds"] for r in history)
    assert pruned.module_ is pruned.net_.module_


def test_train_seconds_leave_out_the_scoring_pass(digits):
    """``seconds`` is the whole round; ``train_seconds`` only its training epochs."""
    X, y = digits
    pause = 0.25

    def slow_magnitude(layer, activations):
        time.sleep(pause)
        return np.abs(activations).mean(axis=0)

    clf = small(prune_ratio=0.5, unit_score=slow_magnitude, max_epochs=2).fit(X[:300], y[:300])
    history = clf.pruning_history_
    assert len(history) == 4  # the dense round and three rounds of pruning
    # Two layers scored a round: at least two pauses in each round's seconds, none in its training.
    for record in history[1:]:
        assert record["seconds"] - record["train_seconds"] >= 2 * pause
    assert 0 < history[0]["train_seconds"] <= history[0]["seconds"]


def test_pruned_model_is_accurate(pruned, digits_split):
    _, X_test, _, y_test = digits_split
    assert pruned.score(X_test, y_test) > 0.85
    proba = pruned.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(pruned.predict(X_test), pruned.classes_[proba.argmax(1)])


def test_string_labels(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = small(prune_ratio=0.3).fit(X[:600], names[y[:600]])
    assert set(clf.classes_) == set(names)
    assert set(clf.predict(X[600:700])) <= set(names)
    assert clf.score(X[600:900], names[y[600:900]]) > 0.7


def test_same_random_state_same_model(digits):
    X, y = digits
    a = small(prune_ratio=0.5).fit(X[:500], y[:500])
    b = small(prune_ratio=0.5).fit(X[:500], y[:500])
    np.testing.assert_array_equal(a.predict_proba(X[500:600]), b.predict_proba(X[500:600]))
    assert [r["units_per_layer"] for r in a.pruning_history_] == [
        r["units_per_layer"] for r in b.pruning_history_
    ]


def test_fit_leaves_torch_global_random_state_alone(digits):
    X, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    small(prune_ratio=0.2, max_epochs=2).fit(X[:200], y[:200])
    torch.testing.assert_close(torch.rand(3), expected)


def test_fits_in_threads_of_one_process_are_reproducible(digits):
    # Torch has one CPU generator per process: fits in threads (joblib's
    # threading backend, Dask's threads) used to reseed each other's.
    X, y = digits
    estimator = small(module__dropout=0.3, prune_ratio=0.5, max_epochs=3)
    expected = clone(estimator).fit(X[:300], y[:300]).predict_proba(X[300:400])
    torch.manual_seed(0)
    before = torch.get_rng_state()
    with joblib.parallel_config(backend="threading", n_jobs=3):
        fitted = joblib.Parallel()(joblib.delayed(clone(estimator).fit)(X[:300], y[:300]) for _ in range(3))
    for clf in fitted:
        np.testing.assert_array_equal(clf.predict_proba(X[300:400]), expected)
    assert torch.equal(torch.get_rng_state(), before)


def test_predicting_does_not_wait_for_fits_in_other_threads(pruned, digits, monkeypatch):
    # Only seeded fits take turns; a prediction touches no global generator.
    import sklearn_dropnet._device as device

    class Taken:
        def __enter__(self):
            raise AssertionError("predict waited for the lock of fits")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(device, "_GENERATORS_LOCK", Taken())
    X, y = digits
    assert pruned.score(X[:100], y[:100]) > 0.8


def test_a_forked_child_does_not_inherit_the_lock_of_a_fit():
    import multiprocessing

    import sklearn_dropnet._device as device

    def take_the_lock():
        with device._GENERATORS_LOCK:
            pass

    holding, release = threading.Event(), threading.Event()

    def fit_in_a_thread():
        with device._GENERATORS_LOCK:
            holding.set()
            release.wait()

    thread = threading.Thread(target=fit_in_a_thread)
    thread.start()
    holding.wait()
    child = multiprocessing.get_context("fork").Process(target=take_the_lock)
    try:
        child.start()
        child.join(120)  # a deadlock guard, not a time limit: the child takes milliseconds
        assert child.exitcode == 0
    finally:
        release.set()
        thread.join()
        if child.is_alive():
            child.kill()


def test_predicting_leaves_the_random_state_alone(pruned, digits):
    # skorch's DataLoader draws a seed from torch's generator on every pass.
    X, _ = digits
    torch.manual_seed(0)
    before = torch.get_rng_state()
    pruned.predict_proba(X[:50])
    pruned.score(X[:50], _[:50])
    assert torch.equal(torch.get_rng_state(), before)


def test_prune_uses_the_parameters_set_after_fit(digits):
    X, y = digits
    clf = small(prune_ratio=0.25, max_epochs=2).fit(X[:300], y[:300])
    assert {r["epochs"] for r in clf.pruning_history_} == {2}
    clf.set_params(max_epochs=4, patience=50, lr=0.02, batch_size=64)
    clf.prune(X[:300], y[:300])
    assert clf.pruning_history_[-1]["epochs"] == 4
    assert (clf.net_.max_epochs, clf.net_.lr, clf.net_.batch_size) == (4, 0.02, 64)
    assert clf.score(X[300:600], y[300:600]) > 0.5


def test_prune_takes_iterator_and_optimizer_parameters_set_after_fit(digits):
    X, y = digits
    clf = small(prune_ratio=0.25, max_epochs=2).fit(X[:300], y[:300])
    clf.set_params(
        iterator_train__shuffle=True, iterator_valid__batch_size=16,
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, lr=0.05,
    )  # fmt: skip
    clf.prune(X[:300], y[:300])
    optimizer = clf.net_.optimizer_
    assert type(optimizer) is torch.optim.SGD
    assert (optimizer.defaults["momentum"], optimizer.defaults["lr"]) == (0.9, 0.05)
    assert clf.net_.get_iterator(clf.net_.get_dataset(X[:40]), training=False).batch_size == 16
    assert clf.score(X[300:600], y[300:600]) > 0.3  # 2 epochs of SGD from the rewound weights


def test_a_failed_prune_keeps_the_last_completed_round(digits):
    X, y = digits
    clf = small(prune_ratio=0.3, max_epochs=2).fit(X[:300], y[:300])
    history = [dict(r) for r in clf.pruning_history_]
    sizes, score = linear_sizes(clf.module_), clf.score(X[300:600], y[300:600])
    clf.set_params(batch_size=1)  # BatchNorm cannot train on it
    with pytest.raises(ValueError, match="one value per channel"):
        clf.prune(X[:300], y[:300], prune_ratio=0.6)
    assert clf.pruning_history_ == history
    assert linear_sizes(clf.module_) == sizes and linear_sizes(clf.initial_module_) == sizes
    assert clf.score(X[300:600], y[300:600]) == score
    clf.set_params(batch_size=32).prune(X[:300], y[:300])
    assert clf.pruning_history_[-1]["units"] == history[-1]["units"] - round(0.2 * history[-1]["units"])


def test_batch_norm_cannot_train_on_one_sample_and_says_so(digits):
    X, y = digits
    message = r"A BatchNorm layer got one value per channel to train on: a batch of one sample \(batch_size={}, {} training"
    with pytest.raises(ValueError, match=message.format(1, 36) + r".*; use batch_size >= 2\.$"):
        small(batch_size=1).fit(X[:40], y[:40])
    with pytest.raises(ValueError, match=message.format(32, 1) + r".*; give it at least 2 training samples\.$"):
        small().fit(X[:2], [0, 1])
    clf = small(batch_size=1, module__batch_norm=False, max_epochs=1, prune_ratio=0.2).fit(X[:40], y[:40])
    assert clf.pruning_history_[-1]["fraction_left"] < 1
    # A BatchNorm2d normalises over the pixels too: one image is enough.
    conv = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )  # fmt: skip
    clf = small(module=conv, batch_size=1, max_epochs=1, prune_ratio=0.5).fit(X[:60].reshape(-1, 1, 8, 8), y[:60])
    assert clf.module_[0].out_channels == 4


def test_a_fit_inside_no_grad_prunes(digits):
    # Torch-Pruning reads the network's graph off autograd.
    X, y = digits
    with torch.no_grad():
        clf = small(prune_ratio=0.5, max_epochs=2).fit(X[:200], y[:200])
    assert clf.pruning_history_[-1]["fraction_left"] == 0.5


def test_float64_default_dtype_of_the_caller(digits):
    X, y = digits
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        clf = small(prune_ratio=0.5, max_epochs=2).fit(X[:200], y[:200])
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(saved)
    assert {p.dtype for p in clf.module_.parameters()} == {torch.float32}
    assert clf.pruning_history_[-1]["fraction_left"] == 0.5
    with pytest.raises(ValueError, match=r"parameters are torch.float64, .* float32 inputs: pass module.float\(\)"):
        small(module=nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10)).double()).fit(X[:50], y[:50])


def test_a_cpu_fit_leaves_the_gpu_generators_alone(digits, monkeypatch):
    # torch.manual_seed would also seed every CUDA device, and fork_rng(devices=[])
    # would not restore them; a fit on the CPU must not touch them at all.
    X, y = digits
    calls = []
    for name in ["manual_seed", "manual_seed_all"]:
        monkeypatch.setattr(torch.cuda, name, lambda seed, name=name: calls.append(name))
    clf = small(prune_ratio=0.2, max_epochs=2, device="cpu").fit(X[:200], y[:200])
    clf.prune(X[:200], y[:200])
    assert calls == []


def test_prune_continues_a_fitted_estimator(digits):
    X, y = digits
    clf = small(prune_ratio=0.2).fit(X[:600], y[:600])
    assert clf.pruning_history_[-1]["units"] == 38
    clf.prune(X[:600], y[:600], prune_ratio=0.5)
    assert clf.pruning_history_[-1]["units"] == 24
    assert linear_sizes(clf.module_)[-1] == 10
    clf.prune(X[:600], y[:600])  # one more round of drop_fraction
    assert clf.pruning_history_[-1]["units"] == 19


@pytest.mark.parametrize("unit_score", ["activation", "apoz", "l1", "random", "max"])
@pytest.mark.parametrize("scope", ["layer", "global", "global_raw"])
def test_every_score_and_scope_reaches_the_target(digits, unit_score, scope):
    X, y = digits
    clf = small(prune_ratio=0.5, unit_score=unit_score, scope=scope, max_epochs=2).fit(X[:300], y[:300])
    assert clf.pruning_history_[-1]["units"] == 24
    assert all(n >= 1 for n in clf.pruning_history_[-1]["units_per_layer"].values())


def test_callable_score_is_used(digits):
    X, y = digits
    seen = []

    def variance(layer, activations):
        seen.append((layer.out_features, activations.shape))
        return activations.var(axis=0)

    small(prune_ratio=0.2, unit_score=variance, max_epochs=2, validation_fraction=0).fit(X[:200], y[:200])
    assert seen == [(32, (200, 32)), (16, (200, 16))]


def test_rewind_restarts_survivors_from_their_initial_weights(digits):
    X, y = digits
    clf = small(prune_ratio=0.25, max_epochs=1).fit(X[:300], y[:300])
    initial = clf.initial_module_
    assert linear_sizes(initial) == linear_sizes(clf.module_)
    # The pruned initial weights are rows of a fresh module with the same seed.
    torch.manual_seed(clf._seed)
    dense = MLP(input_shape=(64,), n_classes=10, hidden_layer_sizes=(32, 16))
    rows = dense.layers[1].weight.detach()
    for row in initial.layers[1].weight.detach():
        assert torch.isclose(rows, row).all(dim=1).any()


def test_reinit_options_differ(digits):
    X, y = digits
    results = {
        reinit: small(prune_ratio=0.25, reinit=reinit, max_epochs=3).fit(X[:300], y[:300]).predict_proba(X[300:350])
        for reinit in ["rewind", "random", "none"]
    }
    assert not np.allclose(results["rewind"], results["random"])
    assert not np.allclose(results["rewind"], results["none"])


def test_min_accuracy_ratio_keeps_the_last_good_round(digits):
    X, y = digits
    with pytest.warns(UserWarning, match=r"Round \d+ reached a validation accuracy of .*, below min_accuracy_ratio=1 "
                      r"times the dense network's .*: the estimator keeps round \d+'s network .*accepted=False") as record:  # fmt: skip
        clf = small(prune_ratio=0.95, min_accuracy_ratio=1.0, max_epochs=3).fit(X[:400], y[:400])
    history = clf.pruning_history_
    assert history[-1]["accepted"] is False
    assert all(r["accepted"] for r in history[:-1])
    kept = history[-2]
    assert sum(p.numel() for p in clf.module_.parameters()) == kept["params"]
    assert history[-1]["valid_accuracy"] < history[0]["valid_accuracy"]
    assert f"keeps round {kept['round']}'s network ({kept['units']} units, {kept['params']:,} parameters)" in str(
        [str(w.message) for w in record]
    )

    # One more round starts from the units kept, not from the round undone.
    clf.set_params(min_accuracy_ratio=None).prune(X[:400], y[:400])
    assert clf.pruning_history_[-1]["units"] == kept["units"] - round(0.2 * kept["units"])


def test_min_accuracy_ratio_without_a_validation_split_says_the_accuracy_is_on_training_rows(digits):
    X, y = digits
    with pytest.warns(UserWarning, match=r"Round \d+ reached a training accuracy \(validation_fraction=0\) of "):
        small(prune_ratio=0.95, min_accuracy_ratio=1.0, max_epochs=3, validation_fraction=0).fit(X[:400], y[:400])


@pytest.fixture(scope="module")
def half_pruned(digits):
    X, y = digits
    return small(prune_ratio=0.5, max_epochs=2).fit(X[:300], y[:300])


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((), {"prune_ratio": 1.0}, ValueError, r"'prune_ratio' parameter of prune must be a float in the range \[0.0, 1.0\)"),
        ((), {"prune_ratio": "0.9"}, TypeError, r"'prune_ratio' parameter of prune must be .*\. Got '0.9'"),
        ((), {"prune_ratio": 0.3}, ValueError, "keeps 33 of the 48 units, but only 24 are left"),
        ((None,), {}, ValueError, "prune needs the labels y"),
        (("short y",), {}, ValueError, "inconsistent numbers of samples"),
        (("2d y",), {}, ValueError, "y should be a 1d array"),
        ((), {"prune_ratio": float("nan")}, ValueError, r"'prune_ratio' parameter of prune .*\. Got nan instead\."),
    ],
)
def test_prune_arguments_are_checked(digits, half_pruned, args, kwargs, error, message):
    X, y = digits
    labels = {"short y": y[:200], "2d y": np.eye(10)[y[:300]]}
    y_arg = labels.get(args[0], args[0]) if args else y[:300]
    before = len(half_pruned.pruning_history_)
    with pytest.raises(error, match=message):
        half_pruned.prune(X[:300], y_arg, **kwargs)
    assert len(half_pruned.pruning_history_) == before


def test_prune_to_the_ratio_already_reached_changes_nothing(digits, half_pruned):
    X, y = digits
    history = list(half_pruned.pruning_history_)
    half_pruned.prune(X[:300], y[:300], prune_ratio=0.5)
    assert half_pruned.pruning_history_ == history


class InterruptInRound(Callback):
    """Simulates Ctrl-C during the third training run (pruning round 2)."""

    def __init__(self):
        self.trainings = 0

    def on_train_begin(self, net, **kwargs):
        self.trainings += 1

    def on_epoch_end(self, net, **kwargs):
        if self.trainings == 3:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_the_last_completed_round_and_stops(digits):
    X, y = digits
    clf = small(prune_ratio=0.8, callbacks=[InterruptInRound()])
    # It still stops the caller (a grid search, an ensemble), not only the round.
    with pytest.raises(KeyboardInterrupt, match=r"the last completed round \(1; 0 is the dense"):
        clf.fit(X[:400], y[:400])
    assert len(clf.pruning_history_) == 2
    assert linear_sizes(clf.module_) == [25, 13, 10]
    assert clf.score(X[400:800], y[400:800]) > 0.5


def test_ctrl_c_during_dense_training_propagates(digits):
    class Interrupt(Callback):
        def on_epoch_end(self, net, **kwargs):
            raise KeyboardInterrupt

    X, y = digits
    with pytest.raises(KeyboardInterrupt):
        small(callbacks=[Interrupt()]).fit(X[:100], y[:100])


def test_image_arrays_and_torch_datasets(digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    clf = small(prune_ratio=0.3).fit(images[:400], y[:400])
    assert clf.input_shape_ == (1, 8, 8)
    from_arrays = clf.predict(images[400:500])
    dataset = TensorDataset(torch.as_tensor(images[:400]), torch.as_tensor(y[:400]))
    clf_ds = small(prune_ratio=0.3).fit(dataset)
    assert clf_ds.input_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(clf_ds.classes_, np.arange(10))
    test_set = TensorDataset(torch.as_tensor(images[400:500]), torch.as_tensor(y[400:500]))
    assert clf_ds.predict(test_set).shape == (100,)
    # Same data, same seed: the Dataset path trains the same network.
    np.testing.assert_array_equal(clf_ds.predict(images[400:500]), from_arrays)


def test_scoring_passes_read_the_training_rows_with_the_iterator_valid_settings(digits, monkeypatch):
    """A user who sets small batches (large images, a small GPU) gets them in the scoring
    passes too, and a Dataset's items are read with the DataLoader settings given."""
    from sklearn_dropnet._data import LabelledData

    real, passes = LabelledData.input_batches, []

    def recording(self, device, batch_size=None, loader=None):
        sizes = []
        if batch_size is None:  # a pass over all the training rows (not the 2-sample example)
            passes.append(sizes)
        for x in real(self, device, batch_size, loader):
            sizes.append(len(x))
            yield x

    monkeypatch.setattr(LabelledData, "input_batches", recording)
    X, y = digits
    params = dict(prune_ratio=0.5, drop_fraction=0.5, max_epochs=2, validation_fraction=0)
    default = small(**params).fit(X[:300], y[:300])
    assert passes and all(sizes == [256, 44] for sizes in passes)
    passes.clear()
    seven = small(iterator_valid__batch_size=7, **params).fit(X[:300], y[:300])
    assert passes and all(sizes == [7] * 42 + [6] for sizes in passes)
    np.testing.assert_allclose(seven.predict_proba(X[300:400]), default.predict_proba(X[300:400]), atol=1e-5)
    collated = []

    def collate(items):
        collated.append(len(items))
        return torch.utils.data.default_collate(items)

    passes.clear()
    dataset = TensorDataset(torch.as_tensor(X[:300]), torch.as_tensor(y[:300]))
    small(iterator_valid__batch_size=50, iterator_valid__collate_fn=collate, **params).fit(dataset)
    assert passes and all(sizes == [50] * 6 for sizes in passes) and collated.count(50) >= 6 * len(passes)


class _TorchvisionStyle(torch.utils.data.Dataset):
    """Labels kept in ``targets`` (maybe transformed on reading); reads and index types counted."""

    def __init__(self, X, y, target_transform=None):
        self.X, self.targets, self.target_transform = X, [int(label) for label in y], target_transform
        self.reads, self.index_types = 0, set()

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        self.reads += 1
        self.index_types.add(type(index))
        label = self.targets[index]
        return torch.as_tensor(self.X[index]), label if self.target_transform is None else self.target_transform(label)


def test_labels_are_read_off_targets_through_subsets_unless_transformed(digits):
    from torch.utils.data import Subset

    from sklearn_dropnet._data import dataset_labels

    X, y = digits
    dataset = _TorchvisionStyle(X[:300], y[:300])
    np.testing.assert_array_equal(dataset_labels(Subset(Subset(dataset, range(10, 300)), [5, 2, 9])), y[[15, 12, 19]])
    assert dataset.reads == 3  # only the items that check targets (all 3 of this Subset), not every item
    shifted = _TorchvisionStyle(X[:300], y[:300], target_transform=lambda label: 9 - label)
    np.testing.assert_array_equal(dataset_labels(shifted), 9 - y[:300])  # targets alone would be wrong
    small(prune_ratio=0.3, max_epochs=2).fit(Subset(dataset, range(250)))
    assert dataset.index_types == {int}  # numpy.int64 broke a user's torch.Generator().manual_seed(index)


def test_training_holds_no_copy_of_all_the_rows(digits, monkeypatch):
    """float64 rows are converted to float32; the converted copy of every row must not live on
    beside the training and validation splits (their own copies) while the rounds train."""
    import gc
    import weakref

    from sklearn_dropnet import _dropnet
    from sklearn_dropnet._net import DropNetNet

    X, y = digits
    converted, alive = [], []
    real_round = DropNetNet.train_round

    def keeping_a_reference(real):
        def read(estimator, X, y):
            data = real(estimator, X, y)
            converted.append(weakref.ref(data.X))
            return data

        return read

    def checking(self, *args, **kwargs):
        gc.collect()
        alive.append(converted[-1]() is not None)
        return real_round(self, *args, **kwargs)

    for name in ("training_data", "labelled_for_prune"):
        monkeypatch.setattr(_dropnet, name, keeping_a_reference(getattr(_dropnet, name)))
    monkeypatch.setattr(DropNetNet, "train_round", checking)
    clf = small(prune_ratio=0.3, max_epochs=1).fit(X[:200].astype(np.float64), y[:200])
    clf.prune(X[:200].astype(np.float64), y[:200], prune_ratio=0.6)
    assert len(converted) == 2 and len(alive) > 3 and not any(alive)


def test_get_set_params_and_clone_route_prefixed_parameters():
    clf = DropNetClassifier(module__hidden_layer_sizes=(8,), optimizer__weight_decay=1e-4)
    params = clf.get_params()
    assert params["module__hidden_layer_sizes"] == (8,)
    assert params["optimizer__weight_decay"] == 1e-4
    clf.set_params(module__hidden_layer_sizes=(4, 4), prune_ratio=0.7, iterator_train__shuffle=False)
    copy = clone(clf)
    assert copy.module__hidden_layer_sizes == (4, 4)
    assert copy.iterator_train__shuffle is False
    assert copy.prune_ratio == 0.7


def test_prefixed_parameters_reach_skorch_and_the_module(digits):
    X, y = digits
    clf = small(prune_ratio=0, optimizer=torch.optim.SGD, optimizer__momentum=0.9, max_epochs=1)
    clf.fit(X[:100], y[:100])
    assert clf.net_.optimizer_.param_groups[0]["momentum"] == 0.9
    assert linear_sizes(clf.module_) == [32, 16, 10]


def test_optimizer_is_rebuilt_on_the_pruned_parameters(pruned):
    optimised = {id(p) for group in pruned.net_.optimizer_.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in pruned.module_.parameters()}


def test_pipeline_and_cross_validation(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), small(prune_ratio=0.5, max_epochs=4))
    scores = cross_val_score(pipe, X[:600], y[:600], cv=3)
    assert scores.shape == (3,) and scores.min() > 0.7


def test_grid_search_over_prune_ratio(digits):
    X, y = digits
    search = GridSearchCV(small(max_epochs=4), {"prune_ratio": [0.0, 0.5, 0.8]}, cv=2, n_jobs=2)
    search.fit(X[:600], y[:600])
    assert search.best_params_["prune_ratio"] in (0.0, 0.5, 0.8)
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert search.best_estimator_.score(X[600:900], y[600:900]) > 0.7


class _RefuseTensors(pickle.Pickler):
    """A pickler that fails on any tensor or storage it meets."""

    def reducer_override(self, obj):
        if isinstance(obj, (torch.Tensor, torch.UntypedStorage, torch.TypedStorage)):
            raise AssertionError(f"a {type(obj).__name__} is pickled outside skorch's device mapping")
        return NotImplemented


@pytest.mark.parametrize("module", [None, ModelB])
def test_every_tensor_is_pickled_through_skorchs_device_mapping(digits, module):
    """A model fitted on a GPU must load on a machine without one.

    skorch writes the attributes in ``cuda_dependent_attributes_`` with
    ``torch.save`` and maps them to the CPU on load where CUDA is missing;
    a tensor anywhere else in the pickle is restored on its old device, and
    the load fails. (tests/test_cuda.py checks the load on a GPU machine.)
    """
    X, y = digits
    X = X[:200] if module is None else X[:200].reshape(-1, 1, 8, 8)
    clf = small(module=module, prune_ratio=0.5, max_epochs=2).fit(X, y[:200])
    state = clf.net_.__getstate__()
    assert state.pop("__cuda_dependent_attributes__")
    _RefuseTensors(io.BytesIO()).dump(state)


def test_joblib_round_trip_and_smaller_file(tmp_path, digits):
    X, y = digits
    dense = small(prune_ratio=0, module__hidden_layer_sizes=(256, 128), max_epochs=2).fit(X[:300], y[:300])
    pruned = small(prune_ratio=0.8, module__hidden_layer_sizes=(256, 128), max_epochs=2).fit(X[:300], y[:300])
    sizes = {}
    for name, clf in [("dense", dense), ("pruned", pruned)]:
        path = tmp_path / f"{name}.joblib"
        joblib.dump(clf, path)
        sizes[name] = os.path.getsize(path)
        loaded = joblib.load(path)
        np.testing.assert_array_equal(loaded.predict_proba(X[300:400]), clf.predict_proba(X[300:400]))
    # The file holds the trained and the initial (rewind) weights, and Adam's
    # moments: all shrink with the network, to about a tenth of the parameters.
    assert pruned.pruning_history_[-1]["params"] < 0.15 * dense.pruning_history_[-1]["params"]
    assert sizes["pruned"] < 0.35 * sizes["dense"]


def test_bad_input_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match="NaN"):
        small().fit(np.where(np.arange(X[:50].size).reshape(50, 64) == 3, np.nan, X[:50]), y[:50])
    with pytest.raises(ValueError, match="infinity"):
        small().fit(np.full((20, 4), np.inf), np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"at least 2 classes in y; got 1 class: 0\.0\."):
        small().fit(X[:20], np.zeros(20))
    with pytest.raises(ValueError, match=r"got 1 class: 'only'\."):  # the label, not np.str_('only')
        small().fit(X[:20], np.full(20, "only"))
    with pytest.raises(NotFittedError):
        small().predict(X[:5])
    fitted = small(prune_ratio=0, max_epochs=1).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match="64 features"):
        fitted.predict(X[:5, :10])
    with pytest.raises(ValueError, match="samples of shape"):
        fitted.predict(X[:5].reshape(5, 1, 8, 8))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"prune_ratio": 1.0}, r"'prune_ratio' parameter of DropNetClassifier must be a float in the range \[0.0, 1.0\)\. Got 1.0"),
        ({"prune_ratio": -0.1}, r"'prune_ratio' .* must be a float in the range \[0.0, 1.0\)"),
        ({"drop_fraction": 0}, r"'drop_fraction' .* must be a float in the range \(0.0, 1.0\)"),
        ({"unit_score": "magic"}, r"'unit_score' .* must be a str among \{'activation', 'apoz', .*\} or a callable"),
        ({"scope": "everywhere"}, r"'scope' .* must be a str among \{'global', 'global_raw', 'layer'\} or a callable"),
        ({"reinit": "sometimes"}, r"'reinit' .* must be a str among \{'none', 'random', 'rewind'\}"),
        ({"min_accuracy_ratio": 1.5}, r"'min_accuracy_ratio' .* must be a float in the range \(0.0, 1.0\] or None"),
        ({"module": "resnet"}, r"'module' .* must be None or a torch.nn.Module class or instance, or a callable that returns one\. Got 'resnet'"),
        ({"device": "gpu"}, "device='gpu' is not a torch device name"),
        ({"optimizer": "adam"}, r"'optimizer' .* must be a torch optimizer class such as torch.optim.Adam\. Got 'adam'"),
        ({"criterion": "cross_entropy"}, r"'criterion' .* must be a torch loss class such as torch.nn.CrossEntropyLoss"),
        ({"device": 3.5}, r"'device' .* must be an instance of 'str', an instance of 'torch.device' or None\. Got 3.5"),
        ({"device": "meta"}, "device='meta': no 'meta' device is available to train on"),
    ],
)
def test_bad_parameters_are_named(digits, params, message):
    X, y = digits
    with pytest.raises((ValueError, TypeError), match=message):
        small(**params).fit(X[:40], y[:40])


@pytest.mark.skipif(not hasattr(torch, "xpu") or torch.xpu.is_available(), reason="XPU is available")
def test_xpu_without_one_is_named(digits):
    X, y = digits
    with pytest.raises(ValueError, match="device='xpu': no 'xpu' device is available to train on"):
        small(device="xpu").fit(X[:40], y[:40])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_named(digits):
    X, y = digits
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=f"device='{device}': CUDA is not available on this machine"):
            small(device=device).fit(X[:40], y[:40])


class _Fixed(nn.Module):
    """A network of fixed widths, whatever the data: 10 inputs, ``n_out`` outputs."""

    def __init__(self, n_out=10):
        super().__init__()
        self.hidden, self.relu, self.out = nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, n_out)

    def forward(self, x):
        return self.out(self.relu(self.hidden(x)))


def test_a_module_that_cannot_take_the_data_is_named(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"The module failed on training samples of shape \(64,\) \(given as float32 tensors\): RuntimeError"):
        small(module=_Fixed()).fit(X[:100], y[:100])  # no word of nn.Embedding, which it has not


class _Tokens(nn.Module):
    """A bag of 64 token ids: embedding, mean, ReLU layer, class scores."""

    def __init__(self, convert=False):
        super().__init__()
        self.convert = convert
        self.embed, self.hidden, self.relu, self.out = nn.Embedding(17, 8), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 10)

    def forward(self, x):
        x = self.embed(x.long() if self.convert else x).mean(dim=1)
        return self.out(self.relu(self.hidden(x)))


def test_integer_inputs_reach_the_module_as_float32(digits):
    X, y = digits
    tokens = X[:100].astype(np.int64)
    with pytest.raises(ValueError, match=r"given as float32 tensors; a module that needs integers, for nn.Embedding, must convert them in forward\): RuntimeError"):
        small(module=_Tokens()).fit(tokens, y[:100])
    clf = small(module=_Tokens(convert=True), prune_ratio=0.5).fit(tokens, y[:100])
    assert clf.module_.hidden.out_features == 4


def test_a_dict_of_inputs_is_named(digits, pruned):
    X, y = digits
    with pytest.raises(TypeError, match=r"not a dict: .*skorch's dict of several inputs is not supported"):
        small().fit({"a": X[:50], "b": X[:50]}, y[:50])
    with pytest.raises(TypeError, match=r"not a dict"):
        pruned.predict({"a": X[:50]})
    pairs = [({"a": torch.as_tensor(x)}, int(label)) for x, label in zip(X[:50], y[:50])]
    with pytest.raises(TypeError, match=r"whose x is a tensor or an array of numbers; item 0's x is a dict"):
        small().fit(Items(pairs))
    with pytest.raises(TypeError, match=r"item 0's x is a dict"):
        pruned.predict(Items(pairs))


@pytest.mark.parametrize("n_out", [3, 12])
def test_a_module_with_the_wrong_number_of_outputs_is_named(digits, n_out):
    """Too few outputs would fail inside the loss; too many would train and predict 12 columns."""
    X, y = digits
    message = rf"shape \(n_samples, 10\) for the 10 classes in y; for 32 samples it returned \(32, {n_out}\)"
    with pytest.raises(ValueError, match=message):
        small(module=_Fixed(n_out)).fit(X[:100, :10], y[:100])


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="hidden_layer_sizes"):
        DropNetClassifier(hidden_layer_sizes=(3,))


def test_module_with_nothing_prunable(digits):
    X, y = digits
    with pytest.raises(ValueError, match="No prunable layer"):
        small(module=nn.Sequential(nn.Linear(64, 10))).fit(X[:40], y[:40])


def test_user_module_instance_and_class(digits):
    X, y = digits
    net = nn.Sequential(nn.Linear(64, 20), nn.ReLU(), nn.Linear(20, 10))
    clf = small(module=net, prune_ratio=0.5, max_epochs=2).fit(X[:200], y[:200])
    assert linear_sizes(clf.module_) == [10, 10]
    assert linear_sizes(net) == [20, 10], "the module parameter must not be changed by fit"


def test_verbose_shows_a_progress_bar(digits, capsys):
    X, y = digits
    small(prune_ratio=0.3, max_epochs=1, verbose=1).fit(X[:100], y[:100])
    assert "DropNet rounds" in capsys.readouterr().err


def test_no_hooks_left_behind(pruned):
    for module in pruned.module_.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


@pytest.mark.slow
def test_default_estimator_prunes_80_percent_without_real_loss(digits_split):
    """The issue's acceptance check: within 1 point of dense, <= 35% of params."""
    X_train, X_test, y_train, y_test = digits_split
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        dense = DropNetClassifier(prune_ratio=0, random_state=0).fit(X_train, y_train)
        pruned = DropNetClassifier(prune_ratio=0.8, random_state=0).fit(X_train, y_train)
    dense_accuracy = dense.score(X_test, y_test)
    pruned_accuracy = pruned.score(X_test, y_test)
    assert dense_accuracy > 0.97
    assert pruned_accuracy >= dense_accuracy - 0.01
    params = pruned.pruning_history_[-1]["params"] / dense.pruning_history_[-1]["params"]
    assert params <= 0.35


def test_grid_search_workers_cap_torch_threads():
    """Each loky worker runs torch on cpu_count // n_jobs threads."""
    from joblib import Parallel, delayed

    def threads_in_worker(_):
        import torch

        return torch.get_num_threads()

    counts = Parallel(n_jobs=2)(delayed(threads_in_worker)(i) for i in range(2))
    assert counts == [max(1, os.cpu_count() // 2)] * 2


def test_prune_without_ratio_runs_exactly_one_round(digits):
    X, y = digits
    clf = small(prune_ratio=0.5, max_epochs=2).fit(X[:300], y[:300])
    rounds = len(clf.pruning_history_)
    for _ in range(4):
        left = clf.pruning_history_[-1]["units"]
        clf.prune(X[:300], y[:300])
        assert len(clf.pruning_history_) == rounds + 1
        assert clf.pruning_history_[-1]["units"] == left - max(1, round(0.2 * left))
        rounds += 1


def test_network_is_traced_once_per_round(digits, monkeypatch):
    # Tracing builds Torch-Pruning's dependency graph, the costly part of a
    # round on large networks: once for the dense network, once after each
    # round's surgery, and once more for each call to prune().
    import sklearn_dropnet.pruning._engine as dropnet_module

    traces = []
    original = dropnet_module.trace_unit_groups

    def counting(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(dropnet_module, "trace_unit_groups", counting)
    X, y = digits
    clf = small(prune_ratio=0.5, max_epochs=2).fit(X[:300], y[:300])
    rounds = len(clf.pruning_history_) - 1
    assert rounds == 3
    assert len(traces) == 1 + rounds
    traces.clear()
    clf.prune(X[:300], y[:300])  # one round more
    assert len(traces) == 1 + 1


@pytest.mark.parametrize("reinit, surgeries_per_round", [("rewind", 1), ("random", 1), ("none", 2)])
def test_only_the_network_the_next_round_starts_from_is_cut(digits, monkeypatch, reinit, surgeries_per_round):
    # With rewind or random, the next round starts from initial_module_:
    # cutting the trained network too would be thrown away.
    import sklearn_dropnet.pruning._engine as dropnet_module

    cut = []
    original = dropnet_module.remove_units
    monkeypatch.setattr(dropnet_module, "remove_units", lambda module, *args: cut.append(module) or original(module, *args))
    X, y = digits[0][:300], digits[1][:300]
    clf = small(prune_ratio=0.5, max_epochs=2, reinit=reinit).fit(X, y)
    rounds = len(clf.pruning_history_) - 1
    assert len(cut) == surgeries_per_round * rounds
    assert linear_sizes(clf.module_) == linear_sizes(clf.initial_module_)
    assert clf.score(X, y) > 0.5


def test_training_state_is_released_after_every_round(half_pruned):
    # Adam's moments, the gradients and early stopping's best weights would
    # otherwise stay alive (3-4 times the parameters) and be pickled.
    net = half_pruned.net_
    assert len(net.optimizer_.state) == 0
    assert all(p.grad is None for p in net.module_.parameters())
    assert dict(net.callbacks_)["dropnet_early_stopping"].best_model_weights_ is None
    # and the per-batch records, which grow with the rows times the epochs (13 times the
    # network's own bytes in a pickle on 1,200 rows); the per-epoch ones stay
    assert len(net.history) > 1 and all(epoch["batches"] == [] for epoch in net.history)
    assert all(np.isfinite(net.history[:, "train_loss"])) and "valid_acc" in net.history[-1]


class _CrossEntropy(nn.Module):
    """Cross-entropy as a user might write it: not a subclass of nn.CrossEntropyLoss."""

    def forward(self, logits, target):
        return nn.functional.cross_entropy(logits, target)


class _Scores(nn.Module):
    """64 inputs, 16 ReLU units, 10 logits, or 10 probabilities (for NLLLoss, as skorch has it)."""

    def __init__(self, probabilities=False):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
        if probabilities:
            self.layers.append(nn.Softmax(dim=1))

    def forward(self, x):
        return self.layers(x)


@pytest.fixture(scope="module")
def cross_entropy_fit(digits):
    X, y = digits
    return small(module=_Scores, prune_ratio=0.25, max_epochs=15).fit(X[:300], y[:300])


@pytest.mark.parametrize("criterion, probabilities", [(_CrossEntropy, False), (nn.NLLLoss, True)])
def test_probabilities_follow_the_module_whatever_the_criterion(
    digits, cross_entropy_fit, criterion, probabilities
):
    """skorch applies a softmax by itself only for nn.CrossEntropyLoss.

    With nn.NLLLoss skorch takes the log of the module's output, which is
    then the probabilities already.
    """
    X, y = digits
    clf = small(
        module=_Scores, module__probabilities=probabilities, criterion=criterion, prune_ratio=0.25, max_epochs=15
    ).fit(X[:300], y[:300])
    with torch.no_grad():
        output = clf.module_.eval()(torch.as_tensor(X[300:600]))
    proba = clf.predict_proba(X[300:600])
    expected = output if probabilities else torch.softmax(output, dim=1)
    np.testing.assert_allclose(proba, expected.numpy(), rtol=1e-5, atol=1e-7)
    assert proba.min() >= 0 and proba.max() <= 1
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X[300:600]), output.argmax(dim=1).numpy())
    # The same loss, written another way: as good as nn.CrossEntropyLoss on logits.
    reference = cross_entropy_fit.score(X[300:600], y[300:600])
    assert reference > 0.75
    assert clf.score(X[300:600], y[300:600]) == pytest.approx(reference, abs=0.03)
    assert [r["valid_accuracy"] for r in clf.pruning_history_] == pytest.approx(
        [r["valid_accuracy"] for r in cross_entropy_fit.pruning_history_], abs=0.04
    )


class _BatchSizes(Callback):
    """Records the size of every training batch."""

    def __init__(self, marker=None):
        self.marker = marker

    def initialize(self):
        self.sizes = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.sizes.append(len(batch[0]))


def batch_sizes(clf):
    """The batch sizes recorded by the net's copy of the ``_BatchSizes`` callback."""
    return dict(clf.net_.callbacks_)["_BatchSizes"].sizes


def test_a_last_batch_of_one_sample_joins_the_batch_before(digits):
    """BatchNorm cannot train on one sample: 97 = 3 * 32 + 1 training samples used to fail."""
    X, y = digits
    sizes = _BatchSizes()
    clf = DropNetClassifier(max_epochs=1, random_state=0, callbacks=[sizes]).fit(X[:108], y[:108])
    rounds = len(clf.pruning_history_)
    assert [r["units"] for r in clf.pruning_history_] == [384, 307, 246, 197, 192]
    assert batch_sizes(clf) == [32, 32, 33] * rounds  # 11 of the 108 held out
    clf.prune(X[:108], y[:108])
    assert len(clf.pruning_history_) == rounds + 1
    assert batch_sizes(clf) == [32, 32, 33] * (rounds + 1)
    assert not hasattr(sizes, "sizes")  # the callback given is left as it was


@pytest.mark.parametrize("with_y", [True, False])
@pytest.mark.parametrize("loader, kwargs", [("training", {}), ("training", {"shuffle": True}), ("inference", {})])
def test_array_batches_are_what_per_sample_loading_gives(digits, with_y, loader, kwargs):
    from skorch.dataset import Dataset as SkorchDataset

    from sklearn_dropnet._data import ArrayBatches, inference_loader, training_loader

    X, y = digits[0][:97].astype(np.float32), digits[1][:97].astype(np.int64)
    dataset = SkorchDataset(X, y if with_y else None)
    make = training_loader if loader == "training" else inference_loader
    torch.manual_seed(0)
    fast = make(dataset, batch_size=32, **kwargs)
    fast_batches = list(fast)
    torch.manual_seed(0)
    slow_batches = list(make(dataset, batch_size=32, collate_fn=torch.utils.data.default_collate, **kwargs))
    assert isinstance(fast.dataset, ArrayBatches)
    assert [len(xb) for xb, _ in fast_batches] == ([32, 32, 33] if loader == "training" else [32, 32, 32, 1])
    for (fx, fy), (sx, sy) in zip(fast_batches, slow_batches, strict=True):
        assert fx.dtype == sx.dtype and fy.dtype == sy.dtype and fy.shape == sy.shape
        assert torch.equal(fx, sx) and torch.equal(fy, sy)


@pytest.mark.parametrize(
    "params, batches",
    [({}, [33]), ({"iterator_train__shuffle": True}, [33]), ({"iterator_train__drop_last": True}, [32])],
)
def test_one_sample_batches_without_a_validation_split(digits, params, batches):
    X, y = digits
    sizes = _BatchSizes()
    clf = small(validation_fraction=0, prune_ratio=0.4, max_epochs=2, callbacks=[sizes], **params)
    clf.fit(X[:33], y[:33])
    assert [r["units"] for r in clf.pruning_history_] == [48, 38, 30, 28]
    assert batch_sizes(clf) == batches * sum(r["epochs"] for r in clf.pruning_history_)


@pytest.mark.parametrize("shuffle", [False, True])
def test_training_loader_keeps_every_sample_in_every_epoch(shuffle):
    from sklearn_dropnet._data import training_loader

    loader = training_loader(TensorDataset(torch.arange(65)), batch_size=32, shuffle=shuffle)
    assert len(loader) == 2
    for _ in range(2):
        batches = [batch.tolist() for (batch,) in loader]
        assert [len(batch) for batch in batches] == [32, 33]
        assert sorted(sum(batches, [])) == list(range(65))
    full = training_loader(TensorDataset(torch.arange(66)), batch_size=32, shuffle=shuffle)
    assert [len(batch) for (batch,) in full] == [32, 32, 2]


def test_numpy_integer_parameters(digits):
    """A GridSearchCV grid of a NumPy array gives np.int64 values, which torch's samplers reject."""
    X, y = digits
    clf = small(batch_size=np.int64(16), max_epochs=np.int64(2), patience=np.int64(2), prune_ratio=0.2)
    clf.fit(X[:200], y[:200])
    assert type(clf.net_.batch_size) is int and clf.net_.batch_size == 16
    assert [r["epochs"] for r in clf.pruning_history_] == [2, 2]
    search = GridSearchCV(small(max_epochs=2, prune_ratio=0.2), {"batch_size": np.array([16, 32])}, cv=2)
    search.fit(X[:200], y[:200])
    assert search.best_params_["batch_size"] in (16, 32)
    assert search.cv_results_["mean_test_score"].min() > 0.2  # chance is 0.1


@pytest.mark.parametrize(
    "name, value, interval",
    [
        ("prune_ratio", float("nan"), r"\[0.0, 1.0\)"),
        ("drop_fraction", float("nan"), r"\(0.0, 1.0\)"),
        ("validation_fraction", float("nan"), r"\[0.0, 1.0\)"),
        ("min_accuracy_ratio", float("nan"), r"\(0.0, 1.0\] or None"),
        ("lr", float("nan"), r"\(0.0, inf\)"),
        ("lr", float("inf"), r"\(0.0, inf\)"),
    ],
)
def test_nan_and_infinite_parameters_are_named(digits, name, value, interval):
    X, y = digits
    with pytest.raises(ValueError, match=rf"'{name}' parameter of DropNetClassifier must be a float in the range {interval}\. Got {value} instead\."):
        small(**{name: value}).fit(X[:40], y[:40])


def test_predict_on_a_dataset_of_float64_inputs(digits, pruned):
    X, y = digits
    dataset = TensorDataset(torch.as_tensor(X[:100], dtype=torch.float64), torch.as_tensor(y[:100]))
    np.testing.assert_array_equal(pruned.predict_proba(dataset), pruned.predict_proba(X[:100]))
    np.testing.assert_array_equal(pruned.predict(dataset), pruned.predict(X[:100]))
    assert pruned.score(dataset, y[:100]) == pruned.score(X[:100], y[:100]) > 0.85


def test_a_dataset_of_the_wrong_shape_is_named(pruned):
    dataset = TensorDataset(torch.zeros(5, 10), torch.zeros(5, dtype=torch.int64))
    message = r"X has samples of shape \(10,\), but DropNetClassifier was fitted on samples of shape \(64,\)"
    before = len(pruned.pruning_history_)
    for method in (pruned.predict, pruned.predict_proba, pruned.prune):
        with pytest.raises(ValueError, match=message):
            method(dataset)
    assert len(pruned.pruning_history_) == before


@pytest.mark.parametrize(
    "params, message",
    [
        ({"callbacks": "x"}, r"'callbacks' .* must be an instance of 'list', an instance of 'tuple' or None\. Got 'x'"),
        ({"callbacks": 5}, r"'callbacks' .* must be an instance of 'list', an instance of 'tuple' or None\. Got 5"),
        ({"callbacks": [1]}, r"callbacks must hold skorch callbacks .* got 1\."),
        ({"callbacks": [("sizes", 1)]}, r"callbacks must hold skorch callbacks .* got \('sizes', 1\)"),
        ({"callbacks": [Callback, nn.ReLU]}, r"callbacks must hold .* got <class 'torch.nn.*ReLU'>"),
        ({"verbose": "x"}, r"'verbose' .* must be an int in the range \[0, inf\).*\. Got 'x'"),
        ({"verbose": 1.5}, r"'verbose' .* must be an int in the range \[0, inf\).*\. Got 1.5"),
    ],
)
def test_bad_callbacks_and_verbose_are_named(digits, params, message):
    X, y = digits
    with pytest.raises(TypeError, match=message):
        small(prune_ratio=0, max_epochs=1, **params).fit(X[:40], y[:40])


def test_callbacks_as_instances_classes_and_named_pairs(digits):
    X, y = digits
    train_accuracy = EpochScoring("accuracy", on_train=True, name="train_acc")
    callbacks = (_BatchSizes, ("sizes", _BatchSizes()), train_accuracy)
    clf = small(prune_ratio=0, max_epochs=1, verbose=True, callbacks=callbacks).fit(X[:100], y[:100])
    named = dict(clf.net_.callbacks_)
    assert named["_BatchSizes"].sizes == named["sizes"].sizes == [32, 32, 26]  # 10 of the 100 held out
    assert 0 <= clf.net_.history[-1, "train_acc"] <= 1


@pytest.mark.parametrize("params", [{"prune_ratio": "high"}, {"callbacks": [object()]}], ids=["constraint", "callbacks"])
def test_a_refit_with_invalid_parameters_leaves_the_fitted_estimator_as_it_was(digits, params):
    X, y = digits
    clf = small(prune_ratio=0.2, max_epochs=1).fit(X[:60], y[:60])
    before = clf.predict_proba(X[:10])
    with pytest.raises((ValueError, TypeError)):
        clf.set_params(**params).fit(X[:60], y[:60])
    np.testing.assert_array_equal(clf.predict_proba(X[:10]), before)


def test_a_callback_parameter_reaches_its_callback_and_a_misspelt_name_is_refused(digits):
    X, y = digits
    sizes = ("sizes", _BatchSizes())
    clf = small(prune_ratio=0, max_epochs=1, callbacks=[sizes], callbacks__sizes__marker=7).fit(X[:40], y[:40])
    assert dict(clf.net_.callbacks_)["sizes"].marker == 7
    with pytest.raises(ValueError, match=r"callbacks__size__\* sets a parameter of a callback named 'size', but "
                       r"there is none: the callbacks are \[.*'sizes'.*\]"):  # fmt: skip
        clf.set_params(callbacks__size__marker=8).fit(X[:40], y[:40])
    clf = small(prune_ratio=0, max_epochs=1, callbacks=[sizes]).fit(X[:40], y[:40])
    with pytest.raises(ValueError, match=r"callback named 'size', but there is none"):
        clf.set_params(callbacks__size__marker=8).prune(X[:40], y[:40], prune_ratio=0.2)


def test_rows_sorted_by_class_train_as_well_as_shuffled_rows_without_a_validation_split():
    """Batches in the order given would each hold one class: the rows are put in a seeded order."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)  # sorted by class
    X = StandardScaler().fit_transform(X)
    params = dict(lr=0.01, max_epochs=20, prune_ratio=0.0, validation_fraction=0.0, patience=20)
    params.update(module__hidden_layer_sizes=(16,), random_state=0)
    as_given = DropNetClassifier(**params).fit(X, y).score(X, y)
    shuffled = np.random.RandomState(0).permutation(len(y))
    assert as_given > 0.9 and DropNetClassifier(**params).fit(X[shuffled], y[shuffled]).score(X, y) > 0.9
    # The order is drawn from random_state: the same seed, the same network.
    again = DropNetClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), DropNetClassifier(**params).fit(X, y).predict_proba(X))


def test_fit_leaves_the_callbacks_given_untouched(digits):
    """scikit-learn's rule: fit must not change a parameter, callbacks included."""
    from sklearn.utils.estimator_checks import check_estimators_overwrite_params

    scoring = EpochScoring("accuracy", on_train=True, name="train_acc")
    check_estimators_overwrite_params(
        "DropNetClassifier", small(max_epochs=2, prune_ratio=0.3, callbacks=[scoring, _BatchSizes()])
    )
    X, y = digits
    clf = small(max_epochs=2, prune_ratio=0.3, callbacks=[("acc", scoring)]).fit(X[:100], y[:100])
    assert not hasattr(scoring, "y_trues_") and not hasattr(scoring, "best_score_")
    assert dict(clf.net_.callbacks_)["acc"] is not scoring
    # Callbacks set since fit still reach prune; unchanged ones keep their state.
    kept = dict(clf.net_.callbacks_)["acc"]
    clf.prune(X[:100], y[:100], prune_ratio=0.4)
    assert dict(clf.net_.callbacks_)["acc"] is kept
    clf.set_params(callbacks=[_BatchSizes()]).prune(X[:100], y[:100], prune_ratio=0.5)
    assert batch_sizes(clf) == [32, 32, 26] * clf.pruning_history_[-1]["epochs"]
    assert "acc" not in dict(clf.net_.callbacks_)


class _FileLog(Callback):
    """Writes a line per epoch to an open file: a callback that cannot be copied."""

    def __init__(self, file):
        self.file = file

    def on_epoch_end(self, net, **kwargs):
        self.file.write("epoch\n")


def test_a_callback_that_cannot_be_copied_is_run_itself(digits, tmp_path):
    X, y = digits
    with open(tmp_path / "log.txt", "w") as file:
        log = _FileLog(file)
        clf = small(max_epochs=2, prune_ratio=0.3, callbacks=[log]).fit(X[:100], y[:100])
    assert dict(clf.net_.callbacks_)["_FileLog"] is log
    epochs = sum(record["epochs"] for record in clf.pruning_history_)
    assert (tmp_path / "log.txt").read_text() == "epoch\n" * epochs


def test_a_validation_fraction_that_leaves_too_few_to_stratify(digits):
    """7 training samples cannot hold the 10 classes: the split is not stratified."""
    X, y = digits
    sizes = _BatchSizes()
    clf = small(validation_fraction=0.95, prune_ratio=0.2, max_epochs=2, callbacks=[sizes])
    clf.fit(X[:150], y[:150])
    assert batch_sizes(clf) == [7] * sum(r["epochs"] for r in clf.pruning_history_)
    held_out = [r["valid_accuracy"] * 143 for r in clf.pruning_history_]
    np.testing.assert_allclose(held_out, np.round(held_out), atol=1e-9)


def test_read_only_arrays_give_no_warning(digits, monkeypatch):
    """torch warns once per process that it cannot share a read-only array: a spy sees every time."""
    as_tensor = torch.as_tensor

    def writable_only(data, *args, **kwargs):
        assert not isinstance(data, np.ndarray) or data.flags.writeable, "torch got a read-only array"
        return as_tensor(data, *args, **kwargs)

    monkeypatch.setattr(torch, "as_tensor", writable_only)
    X, y = digits
    X = X[:150].copy()
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = small(prune_ratio=0.2, max_epochs=2, validation_fraction=0).fit(X, y[:150])
        clf.prune(X, y[:150])
        assert clf.predict_proba(X).shape == (150, 10)
    assert not X.flags.writeable


def test_float32_arrays_with_negative_strides_fit_and_prune(digits):
    """torch refuses a view like X[::-1]; it is copied, and fits as the reversed copy does."""
    X, y = digits
    X = X[:150].astype(np.float32)
    reversed_view, reversed_copy = X[::-1], np.ascontiguousarray(X[::-1])
    params = dict(prune_ratio=0.2, max_epochs=2, validation_fraction=0)
    clf = small(**params).fit(reversed_view, y[:150][::-1])
    clf.prune(reversed_view, y[:150][::-1], prune_ratio=0.3)
    reference = small(**params).fit(reversed_copy, y[:150][::-1])
    reference.prune(reversed_copy, y[:150][::-1], prune_ratio=0.3)
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))


@pytest.mark.parametrize(
    "params, scale, dense_trains",
    [
        ({}, 3e38, False),
        # the dense round stays finite, a rewound pruning round diverges
        ({"optimizer": torch.optim.SGD, "lr": 1e6, "reinit": "rewind", "iterator_train__shuffle": False}, 1.0, True),
    ],
    ids=["huge inputs", "huge learning rate"],
)
def test_training_that_diverges_is_a_clear_error(digits, params, scale, dense_trains):
    X, y = digits
    clf = small(max_epochs=2, prune_ratio=0.5, **params)
    with pytest.raises(ValueError, match=r"Training diverged: .* NaN or infinite\. Lower the learning rate"):
        clf.fit(X[:150] * scale, y[:150])
    if dense_trains:  # a pruning round diverged: the last completed round stays
        assert len(clf.pruning_history_) >= 1
        assert np.isfinite(clf.predict_proba(X[:2])).all()
    else:  # the dense round diverged: no network to predict NaN with
        with pytest.raises(NotFittedError):
            clf.predict_proba(X[:2])
        # and a refit that fails so leaves none either
        refitted = small(max_epochs=2, prune_ratio=0.5).fit(X[:150], y[:150]).set_params(**params)
        with pytest.raises(ValueError, match="Training diverged"):
            refitted.fit(X[:150] * scale, y[:150])
        with pytest.raises(NotFittedError):
            refitted.predict(X[:2])
        with pytest.raises(NotFittedError):  # nor the last fit's network
            refitted.module_


class _MaskedClass(nn.Module):
    """Logits with class 2 ruled out (-inf) where feature 5 is negative."""

    def __init__(self, input_shape=(6,), n_classes=3):
        super().__init__()
        self.hidden, self.act, self.out = nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, n_classes)

    def forward(self, x):
        z = self.out(self.act(self.hidden(x)))
        mask = torch.zeros_like(z)
        mask[:, 2] = torch.where(x[:, 5] < 0, float("-inf"), 0.0)
        return z + mask


def test_logits_of_minus_infinity_on_purpose_are_not_divergence():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 6).astype(np.float32)
    y = np.where(X[:, 5] >= 0, 2, (X[:, 0] > 0).astype(int))
    clf = DropNetClassifier(module=_MaskedClass, prune_ratio=0.3, max_epochs=5, lr=0.01, random_state=0)
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert np.all(proba[X[:, 5] < 0, 2] == 0) and clf.score(X, y) > 0.8


def test_refit_on_a_dataset_forgets_the_feature_names_of_a_dataframe(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    X, y = X[:150], y[:150]
    clf = small(max_epochs=1).fit(pd.DataFrame(X, columns=[f"p{i}" for i in range(64)]), y)
    assert len(clf.feature_names_in_) == 64
    clf.fit(TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y)))
    assert not hasattr(clf, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(X[:5])


def test_a_users_early_stopping_ends_a_round_not_the_fit(digits):
    # skorch's EarlyStopping stops training with a KeyboardInterrupt; only a
    # Ctrl-C (no early stopping out of patience) may stop the fit.
    from skorch.callbacks import EarlyStopping

    X, y = digits
    mine = EarlyStopping(monitor="train_loss", patience=1, threshold=1.0)
    clf = small(max_epochs=50, patience=20, prune_ratio=0.5, callbacks=[("mine", mine)])
    clf.fit(X[:200], y[:200])
    assert clf.pruning_history_[-1]["fraction_left"] <= 0.5
    assert all(record["epochs"] == 2 for record in clf.pruning_history_)  # mine stopped each


def test_huge_integer_parameters_do_not_overflow():
    DropNetClassifier(max_epochs=10**400, batch_size=10**400)._validate_params()


class _OverflowsAbove(nn.Module):
    """NaN outputs for rows whose first feature is huge, as a network that overflows gives."""

    def __init__(self, input_shape=(64,), n_classes=10):
        super().__init__()
        self.hidden, self.out = nn.Linear(input_shape[0], 16), nn.Linear(16, n_classes)

    def forward(self, x):
        logits = self.out(torch.relu(self.hidden(x)))
        return torch.where(x[:, :1] > 1e30, torch.full_like(logits, float("nan")), logits)


def test_probabilities_that_overflow_to_nan_are_warned(digits):
    """predict would give such rows the first class without a word."""
    X, y = digits
    clf = small(module=_OverflowsAbove, max_epochs=1, prune_ratio=0.0).fit(X[:100], y[:100])
    rows = X[:3].astype(np.float32)
    rows[1:, 0] = 1e38
    with pytest.warns(UserWarning, match=r"The network's probabilities are NaN for 2 of 3 rows: .* Scale X"):
        proba = clf.predict_proba(rows)
    assert np.isnan(proba[1:]).all() and np.isfinite(proba[0]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict_proba(X[:5])  # finite: no warning
