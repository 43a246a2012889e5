"""DropNet and HQ on a CUDA device; skipped where torch sees none (as in CI).

These run on a lent GPU machine: every step that moves tensors (probes,
unit scores, Torch-Pruning's trace, the surgery, rewinding to the initial
weights, early stopping's checkpoint, pickling) must keep the module and
its inputs on one device.
"""

import io

import joblib
import numpy as np
import pytest
import torch

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier
from sklearn_dropnet.cli import main
from sklearn_dropnet.exceptions import PruningError
from sklearn_dropnet.models import ModelB, ResNet18
from sklearn_dropnet.pruning import RESTARTS, UNIT_SCORES
from sklearn_dropnet.pruning._network_cost import count_parameters, peak_cuda_bytes

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def on_cuda(module):
    return all(p.is_cuda for p in module.parameters())


def mlp(**params):
    defaults = dict(
        max_epochs=10, lr=0.01, module__hidden_layer_sizes=(64, 32), device="cuda", random_state=0
    )
    return DropNetClassifier(**{**defaults, **params})


def test_mlp_fits_prunes_and_predicts_on_cuda(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = mlp(prune_ratio=0.8).fit(X_train, y_train)
    assert on_cuda(clf.module_)
    history = clf.pruning_history_
    assert history[0]["units"] == 96 and history[-1]["units"] <= 20
    assert history[-1]["params"] == count_parameters(clf.module_) < history[0]["params"] / 4
    assert all(0 < record["train_seconds"] <= record["seconds"] for record in history)
    proba = clf.predict_proba(X_test)
    assert isinstance(proba, np.ndarray) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert clf.score(X_test, y_test) > 0.9


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_a_module_instance_already_on_cuda_is_rewound_from_the_cpu(digits_split, device):
    from sklearn_dropnet.models import MLP

    X_train, X_test, y_train, y_test = digits_split
    module = MLP(input_shape=(64,), n_classes=10, hidden_layer_sizes=(64, 32)).cuda()
    clf = DropNetClassifier(
        module=module, device=device, prune_ratio=0.5, max_epochs=3, lr=0.01, random_state=0
    ).fit(X_train, y_train)
    assert all(p.device.type == "cpu" for p in clf.initial_module_.parameters())
    assert all(p.device.type == device for p in clf.module_.parameters())
    assert clf.pruning_history_[-1]["units"] == 48
    assert clf.score(X_test, y_test) > 0.8


def test_same_random_state_same_network_on_cuda(digits_split):
    X_train, X_test, y_train, _ = digits_split
    first = mlp(prune_ratio=0.5, max_epochs=3).fit(X_train, y_train)
    second = mlp(prune_ratio=0.5, max_epochs=3).fit(X_train, y_train)
    assert [r["units_per_layer"] for r in first.pruning_history_] == [
        r["units_per_layer"] for r in second.pruning_history_
    ]
    np.testing.assert_allclose(first.predict_proba(X_test), second.predict_proba(X_test), atol=1e-5)


def test_fit_and_prune_leave_the_cuda_generator_as_they_found_it(digits_split):
    X_train, _, y_train, _ = digits_split
    torch.cuda.manual_seed(123)
    expected = torch.rand(3, device="cuda")
    torch.cuda.manual_seed(123)
    clf = mlp(prune_ratio=0.5).fit(X_train, y_train)
    clf.prune(X_train, y_train)
    torch.testing.assert_close(torch.rand(3, device="cuda"), expected)


def test_predicting_leaves_the_cpu_and_cuda_generators_alone(digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = mlp(prune_ratio=0.2, max_epochs=2).fit(X_train, y_train)
    torch.manual_seed(123)
    cpu, cuda = torch.get_rng_state(), torch.cuda.get_rng_state()
    clf.predict_proba(X_test)
    assert torch.equal(torch.get_rng_state(), cpu) and torch.equal(torch.cuda.get_rng_state(), cuda)


class _AuxiliaryHead(torch.nn.Module):
    """Deep supervision: a head on the first convolution that only training runs."""

    def __init__(self):
        super().__init__()
        self.c1, self.a1 = torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU()
        self.out, self.aux = torch.nn.Linear(8, 10), torch.nn.Linear(8 * 64, 10)

    def forward(self, x):
        h = self.a1(self.c1(x))
        out = self.out(h.mean(dim=(2, 3)))
        return out + self.aux(h.flatten(1)) if self.training else out


def test_a_branch_only_training_runs_is_checked_on_cuda(digits_split):
    X_train, _, y_train, _ = digits_split
    clf = DropNetClassifier(module=_AuxiliaryHead(), device="cuda", max_epochs=1, prune_ratio=0.5, random_state=0)
    with pytest.warns(UserWarning, match=r"'c1' unpruned: .* fails in training mode"):
        with pytest.raises(PruningError, match=r"None of the prunable layers \['c1'\]"):
            clf.fit(X_train.reshape(-1, 1, 8, 8), y_train)


@pytest.mark.parametrize("unit_score", sorted(UNIT_SCORES))
@pytest.mark.parametrize("reinit", sorted(RESTARTS))
def test_every_unit_score_and_reinit_on_cuda(digits_split, unit_score, reinit):
    X_train, X_test, y_train, _ = digits_split
    clf = mlp(prune_ratio=0.5, max_epochs=2, unit_score=unit_score, reinit=reinit, scope="global")
    clf.fit(X_train, y_train)
    assert on_cuda(clf.module_)
    assert clf.pruning_history_[-1]["fraction_left"] <= 0.5
    assert clf.predict(X_test).shape == (len(X_test),)


def test_distillation_on_cuda(digits_split):
    """The teacher's log-probabilities are computed on the GPU, kept on the CPU, and
    each batch's are moved to the GPU for the loss."""
    X_train, X_test, y_train, y_test = digits_split
    clf = mlp(prune_ratio=0.5, max_epochs=2, distill_weight=0.5).fit(X_train, y_train)
    assert on_cuda(clf.module_)
    assert clf.pruning_history_[-1]["fraction_left"] <= 0.5
    assert clf.score(X_test, y_test) > 0.5


def test_callable_unit_score_on_cuda(digits_split):
    """The callable gets the layer (on the GPU) and its activations as a NumPy array."""
    X_train, _, y_train, _ = digits_split
    seen = []

    def mean_activation(layer, activations):
        seen.append((layer.weight.device.type, type(activations)))
        return np.abs(activations).mean(axis=0)

    clf = mlp(prune_ratio=0.5, max_epochs=2, unit_score=mean_activation).fit(X_train, y_train)
    assert seen and set(seen) == {("cuda", np.ndarray)}
    assert clf.pruning_history_[-1]["fraction_left"] <= 0.5


def test_conv_filters_removed_on_cuda(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = DropNetClassifier(
        ModelB, module__channels=(16, 16), prune_ratio=0.5, max_epochs=5, lr=0.003,
        device="cuda", random_state=0,
    ).fit(X_train.reshape(-1, 1, 8, 8), y_train)  # fmt: skip
    assert on_cuda(clf.module_)
    assert [c.out_channels for c in clf.module_.features if isinstance(c, torch.nn.Conv2d)] == [8, 8]
    assert clf.score(X_test.reshape(-1, 1, 8, 8), y_test) > 0.8


def test_resnet_residual_groups_pruned_on_cuda():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3, 32, 32)).astype(np.float32)
    y = np.arange(64) % 4
    clf = DropNetClassifier(
        ResNet18, module__width=8, prune_ratio=0.5, max_epochs=1, batch_size=32,
        validation_fraction=0.0, device="cuda", random_state=0,
    ).fit(X, y)  # fmt: skip
    assert on_cuda(clf.module_)
    assert clf.pruning_history_[-1]["units"] <= clf.n_units_dense_ / 2
    assert clf.pruning_history_[-1]["macs"] < clf.pruning_history_[0]["macs"] / 2
    assert clf.predict_proba(X).shape == (64, 4)


def test_prune_again_on_cuda(digits_split):
    X_train, _, y_train, _ = digits_split
    clf = mlp(prune_ratio=0.2, max_epochs=2).fit(X_train, y_train)
    clf.prune(X_train, y_train, prune_ratio=0.6)
    assert on_cuda(clf.module_)
    assert clf.pruning_history_[-1]["fraction_left"] == pytest.approx(0.4, abs=0.02)


def test_joblib_round_trip_on_cuda_and_onto_a_cpu_machine(digits_split, monkeypatch):
    X_train, X_test, y_train, _ = digits_split
    clf = mlp(prune_ratio=0.5, max_epochs=3).fit(X_train, y_train)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert on_cuda(loaded.module_)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))

    # A machine without CUDA: skorch maps the weights to the CPU, with a warning.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    buffer.seek(0)
    with pytest.warns(UserWarning, match="no CUDA devices"):
        on_cpu = joblib.load(buffer)
    assert not on_cuda(on_cpu.module_)
    np.testing.assert_allclose(on_cpu.predict_proba(X_test), clf.predict_proba(X_test), atol=1e-4)


@pytest.mark.parametrize("suffix", [".onnx", ".pt2", ".pt"])
def test_a_cnn_fitted_on_cuda_exports_and_runs_on_the_cpu(digits_split, tmp_path, suffix):
    """The file computes on the CPU in float32; predict_proba on the GPU uses TF32
    convolutions, so the check compares the file with the network's CPU copy."""
    pytest.importorskip("onnxruntime")
    X_train, X_test, y_train, _ = digits_split
    images, test = X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8)[:64]
    clf = DropNetClassifier(
        ModelB, module__channels=(16, 16), prune_ratio=0.5, max_epochs=3, device="cuda", random_state=0
    ).fit(images, y_train)
    path = clf.export(tmp_path / f"model{suffix}", X=test)
    assert on_cuda(clf.module_)  # export works on a copy
    if suffix == ".onnx":
        import onnxruntime

        proba, _ = onnxruntime.InferenceSession(str(path)).run(None, {"input": test})
    else:
        run = torch.export.load(path).module() if suffix == ".pt2" else torch.jit.load(path)
        with torch.no_grad():
            proba, _ = run(torch.from_numpy(test))
    np.testing.assert_allclose(np.asarray(proba, dtype=np.float64), clf.predict_proba(test), atol=5e-3)


def test_a_gpu_index_this_machine_lacks_is_named(digits_split):
    X_train, _, y_train, _ = digits_split
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"this machine has {count} CUDA device"):
        mlp(device=f"cuda:{count}").fit(X_train, y_train)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_hq_of_cuda_members(digits_split, n_jobs):
    X_train, X_test, y_train, y_test = digits_split
    hq = HQEnsembleClassifier(
        mlp(prune_ratio=0.5, max_epochs=5), n_estimators=4, n_select=3, n_jobs=n_jobs, random_state=0
    ).fit(X_train, y_train)
    assert all(on_cuda(member.module_) for member in hq.estimators_)
    assert 2 <= len(hq.selected_) <= 3
    assert hq.score(X_test, y_test) > 0.9


def test_cli_prune_on_cuda(tmp_path, capsys):
    argv = ["prune", "--device", "cuda", "--max-epochs", "3", "--hidden-layer-sizes", "16,8",
            "--no-plot", "--output-dir", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "model.joblib").exists()
    assert on_cuda(joblib.load(tmp_path / "model.joblib").module_)


def test_peak_cuda_bytes_measures_the_activations_alive_at_once():
    # 256 x 1000 float32 values are 1,024,000 bytes, a whole number of the allocator's 512-byte blocks.
    linear = torch.nn.Linear(4, 1000).cuda()
    inputs = torch.zeros(256, 4, device="cuda")
    assert peak_cuda_bytes(linear, inputs) == 1_024_000
    # Sequential keeps the linear layer's output until the ReLU's exists: two at once, then the
    # small logits beside the ReLU's output alone.
    net = torch.nn.Sequential(linear, torch.nn.ReLU(), torch.nn.Linear(1000, 3)).cuda().train()
    assert peak_cuda_bytes(net, inputs) == 2_048_000
    assert net.training
