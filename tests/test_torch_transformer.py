"""torch's own transformer encoder (``nn.TransformerEncoderLayer``), as a user writes a
small sequence classifier with it: its feed-forward block applies the activation as a
function (``F.relu``, ``F.gelu``) or a module, and in eval mode without autograd torch
runs the whole layer as one fused kernel (its "fast path"), which calls neither."""

import io

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._probes import inspect_network


class SequenceTransformer(nn.Module):
    """Rows of an 8 x 8 digit as 8 steps: a Linear embedding, ``layers`` encoder layers,
    the mean over the steps into a Linear."""

    def __init__(self, input_shape=(8, 8), n_classes=10, activation="relu", norm_first=False, batch_first=True):
        super().__init__()
        self.batch_first = batch_first
        self.embed = nn.Linear(input_shape[1], 16)
        layer = nn.TransformerEncoderLayer(
            16, 2, 32, dropout=0.1, activation=activation, norm_first=norm_first, batch_first=batch_first
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.out = nn.Linear(16, n_classes)

    def forward(self, x):
        h = self.embed(x)
        if not self.batch_first:
            return self.out(self.encoder(h.transpose(0, 1)).mean(0))
        return self.out(self.encoder(h).mean(1))


HIDDEN = ["encoder.layers.0.linear1", "encoder.layers.1.linear1"]

# name -> the encoder layer's settings
VARIANTS = {
    "relu": {},
    "gelu": {"activation": "gelu"},
    "GELU module": {"activation": nn.GELU()},
    "norm_first": {"norm_first": True},
    "sequence first": {"batch_first": False},
}


@pytest.fixture(scope="module")
def sequences():
    X, y = load_digits(return_X_y=True)
    return (X / 16).reshape(-1, 8, 8).astype(np.float32), y


@pytest.mark.parametrize("settings", VARIANTS.values(), ids=VARIANTS)
def test_the_feed_forward_units_are_found_and_the_other_layers_named(settings):
    structure = inspect_network(SequenceTransformer(**settings).eval(), torch.randn(2, 8, 8))
    assert sorted(structure.probes) == HIDDEN
    for layer in ("encoder.layers.0.linear2", "encoder.layers.0.self_attn.out_proj", "embed"):
        assert layer in structure.left_out
    assert "nn.MultiheadAttention" in structure.left_out["encoder.layers.0.self_attn.out_proj"]


def _activations(net, x, reduce):
    """``reduce`` of each linear1's activation, by layer name, read with forward hooks
    while autograd is on (torch then runs the layer step by step, not its fused kernel)."""
    read = {}
    for name in HIDDEN:
        layer = net.get_submodule(name.rsplit(".", 1)[0])

        def hook(module, inputs, output, name=name, activation=layer.activation):
            read[name] = reduce(activation(output)).detach().numpy()

        layer.linear1.register_forward_hook(hook)
    with torch.enable_grad():
        net(x)
    return read


@pytest.mark.parametrize("settings", VARIANTS.values(), ids=VARIANTS)
def test_the_scores_are_the_mean_absolute_activations_the_fused_kernel_would_hide(settings):
    torch.manual_seed(0)
    net, x = SequenceTransformer(**settings).eval(), torch.randn(64, 8, 8)
    scores = DropNetPruner(net, x[:2]).score(lambda: [x])
    expected = _activations(net, x, lambda activation: activation.abs().flatten(0, -2).mean(0))
    assert sorted(scores) == HIDDEN
    for name in HIDDEN:
        assert scores[name].shape == (32,) and scores[name].min() >= 0 and scores[name].max() > 0
        np.testing.assert_allclose(scores[name], expected[name], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("settings", [{}, {"activation": "gelu", "norm_first": True}], ids=["relu", "gelu norm_first"])
def test_the_estimator_halves_the_feed_forward_blocks_and_the_network_survives_joblib(sequences, settings):
    X, y = sequences
    clf = DropNetClassifier(
        module=SequenceTransformer,
        **{f"module__{key}": value for key, value in settings.items()},
        prune_ratio=0.5, max_epochs=2, random_state=0,
    )  # fmt: skip
    with pytest.warns(UnitRemovalWarning, match="nn.MultiheadAttention"):
        clf.fit(X[:600], y[:600])
    assert clf.pruning_history_[-1]["units_per_layer"] == dict.fromkeys(HIDDEN, 16)
    assert clf.pruning_history_[-1]["params"] < clf.pruning_history_[0]["params"]
    for layer in clf.module_.encoder.layers:
        assert (layer.linear1.out_features, layer.linear2.in_features) == (16, 16)
    assert "encoder.layers.0.linear2" in clf.unpruned_layers_
    proba = clf.predict_proba(X[600:700])  # eval mode without autograd: torch's fused kernel
    with torch.enable_grad():  # the layer step by step
        stepwise = torch.softmax(clf.module_.eval()(torch.as_tensor(X[600:700])), dim=1).detach().numpy()
    np.testing.assert_allclose(proba, stepwise, atol=1e-5)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X[600:700]), proba)


def test_each_sample_has_its_row_though_the_steps_come_first():
    """Without ``batch_first`` the encoder's activations are ``(steps, samples, units)``:
    a unit score that takes the per-sample matrix gets one row per sample, each the
    mean over that sample's steps, in the order of the samples."""
    torch.manual_seed(0)
    net, x = SequenceTransformer(batch_first=False).eval(), torch.randn(40, 8, 8)
    rows = []

    def keep(layer, matrix):
        rows.append(matrix)
        return matrix.mean(axis=0)

    DropNetPruner(net, x[:2]).score(lambda: x.split(16), keep)  # batches of 16, 16 and 8, the layers in order
    expected = _activations(net, x, lambda activation: activation.mean(0))  # over the steps
    for name, matrix in zip(HIDDEN, rows, strict=True):
        assert matrix.shape == (40, 32)
        np.testing.assert_allclose(matrix, expected[name], rtol=1e-5, atol=1e-6)


class _Folded(nn.Module):
    """Samples and steps folded into one dimension before the activation:
    ``(samples * steps, units)``."""

    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(8, 12), nn.Linear(12, 10)

    def forward(self, x):
        h = torch.relu(self.hidden(x.flatten(0, 1)))  # (samples * 8 steps, 12)
        return self.out(h.reshape(x.shape[0], -1, 12).mean(1))


def test_a_unit_is_scored_by_its_mean_though_the_samples_are_folded_into_the_steps():
    torch.manual_seed(0)
    net, x = _Folded().eval(), torch.randn(30, 8, 8)
    pruner = DropNetPruner(net, x[:2])
    scores = pruner.score(lambda: x.split(7))  # batches of 7 ... and 2: the means are still over every step
    expected = torch.relu(net.hidden(x)).abs().mean(dim=(0, 1)).detach().numpy()
    np.testing.assert_allclose(scores["hidden"], expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"layer 'hidden' has shape \(56, 12\).*no dimension of it is the samples'"):
        pruner.score(lambda: x.split(7), lambda layer, matrix: matrix.mean(axis=0))
