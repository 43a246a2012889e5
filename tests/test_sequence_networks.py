"""Temporal convolutional networks as people write them (locuslab's TCN):
causal convolutions cut with a slice (``Chomp1d``), weight norms (the hook-based
``torch.nn.utils.weight_norm`` of the paper's code, and
``torch.nn.utils.parametrizations.weight_norm``, pytorch-tcn's default)."""

import io
import warnings

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.utils import parametrizations, parametrize, weight_norm

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import PruningError, UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._probes import inspect_network

pytestmark = pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")


# How a TCN's convolutions are weight-normed: name -> wrapper.
NORMS = {"hook": weight_norm, "parametrized": parametrizations.weight_norm, "none": lambda layer: layer}


def _g_and_v(layer):
    """A weight-normed layer's ``g`` and ``v``, in either form."""
    if parametrize.is_parametrized(layer):
        return layer.parametrizations.weight.original0, layer.parametrizations.weight.original1
    return layer.weight_g, layer.weight_v


class Chomp1d(nn.Module):
    """TCN's: cut the padding's extra positions off the end."""

    def __init__(self, chomp_size):
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, : -self.chomp_size].contiguous()


def _causal(conv, padding, cut):
    """A causal convolution's output: ``conv`` pads both ends; ``cut`` removes the right end."""
    if cut == "chomp":
        return nn.Sequential(conv, Chomp1d(padding))
    return conv


class TemporalBlock(nn.Module):
    """TCN's block: two causal dilated convolutions, ReLU, dropout, a residual add."""

    def __init__(self, n_in, n_out, dilation, cut="chomp", norm="hook", kernel_size=3):
        super().__init__()
        self.cut, self.padding = cut, (kernel_size - 1) * dilation
        wrap = NORMS[norm]
        pad = 0 if cut == "pad" else self.padding
        self.conv1 = _causal(wrap(nn.Conv1d(n_in, n_out, kernel_size, padding=pad, dilation=dilation)), pad, cut)
        self.conv2 = _causal(wrap(nn.Conv1d(n_out, n_out, kernel_size, padding=pad, dilation=dilation)), pad, cut)
        self.relu1, self.relu2, self.relu = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.dropout1, self.dropout2 = nn.Dropout(0.05), nn.Dropout(0.05)
        self.downsample = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else None

    def _conv(self, conv, x):
        if self.cut == "slice":
            return conv(x)[:, :, : -self.padding]
        if self.cut == "ellipsis":
            return conv(x)[..., : -self.padding].contiguous()
        if self.cut == "pad":
            return conv(F.pad(x, (self.padding, 0)))
        return conv(x)

    def forward(self, x):
        out = self.dropout1(self.relu1(self._conv(self.conv1, x)))
        out = self.dropout2(self.relu2(self._conv(self.conv2, out)))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TCN(nn.Module):
    """TCN's sequence classifier: the last position's channels into a Linear."""

    def __init__(self, input_shape=(8, 8), n_classes=10, channels=(12, 12), cut="chomp", norm="hook"):
        super().__init__()
        blocks, n_in = [], input_shape[0]
        for level, n_out in enumerate(channels):
            blocks.append(TemporalBlock(n_in, n_out, 2**level, cut, norm))
            n_in = n_out
        self.network = nn.Sequential(*blocks)
        self.linear = nn.Linear(n_in, n_classes)

    def forward(self, x):
        return self.linear(self.network(x)[:, :, -1])


def _conv_names(net):
    return sorted(name for name, m in net.named_modules() if isinstance(m, nn.Conv1d))


def _tcn(cut="chomp", norm="hook", seed=0):
    torch.manual_seed(seed)
    return TCN(cut=cut, norm=norm).eval()


@pytest.mark.parametrize("cut", ["chomp", "slice", "ellipsis", "pad"])
def test_every_convolution_of_a_tcn_is_pruned_however_its_causal_cut_is_written(cut):
    net = _tcn(cut)
    structure = inspect_network(net, torch.randn(2, 8, 8))
    assert sorted(structure.probes) == _conv_names(net) and not structure.left_out
    chomp = _tcn("chomp")  # the same weights (the same draws), cut by a Chomp1d module
    x = torch.randn(64, 8, 8)
    np.testing.assert_allclose(net(x).detach(), chomp(x).detach(), atol=1e-5)
    scores, chomp_scores = DropNetPruner(net, x[:2]).score(lambda: [x]), DropNetPruner(chomp, x[:2]).score(lambda: [x])
    for group, chomp_group in zip(scores, chomp_scores):
        np.testing.assert_allclose(scores[group], chomp_scores[chomp_group], rtol=1e-5, atol=1e-7)


class _Sliced(nn.Module):
    """A conv's (n, 6, length) or a Linear's (n, length, 6) output, sliced at ``index`` before its ReLU."""

    def __init__(self, layer, index):
        super().__init__()
        self.index = index
        self.layer = nn.Conv1d(3, 6, 3, padding=2) if layer == "conv" else nn.Linear(3, 6)
        self.out = nn.Linear(self._hidden(torch.zeros(1, 3, 8)).shape[-1], 2)

    def _hidden(self, x):
        if isinstance(self.layer, nn.Conv1d):
            return torch.relu(self.layer(x)[self.index]).mean(2)
        return torch.relu(self.layer(x.transpose(1, 2))[self.index]).mean(1)

    def forward(self, x):
        return self.out(self._hidden(x))


@pytest.mark.parametrize(
    ("layer", "index", "followed"),
    [
        ("conv", (slice(None), slice(None), slice(None, -2)), True),  # the positions
        ("conv", (Ellipsis, slice(1, None)), True),
        ("conv", (slice(None), slice(0, 4)), False),  # the channels
        ("linear", (slice(None), slice(None, -2)), True),  # the positions of (n, length, 6)
        ("linear", (Ellipsis, slice(1, None)), False),  # the Linear's units
    ],
    ids=["conv-positions", "conv-ellipsis-positions", "conv-channels", "linear-positions", "linear-units"],
)
def test_a_slice_is_followed_only_where_it_keeps_the_layers_units(layer, index, followed):
    structure = inspect_network(_Sliced(layer, index).eval(), torch.randn(2, 3, 8))
    if followed:
        assert set(structure.probes) == {"layer"} and not structure.left_out
    else:
        assert not structure.probes
        assert structure.left_out["layer"].startswith(
            "its output reaches no activation: it goes into '<root>: __getitem__' first, which does not keep its "
            "channels whole and in place"
        )


def test_a_pad_that_is_not_zero_is_not_followed():
    class Padded(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value, self.conv, self.out = value, nn.Conv1d(3, 4, 3), nn.Linear(4, 2)

        def forward(self, x):
            return self.out(torch.relu(F.pad(self.conv(x), (2, 0), value=self.value)).mean(2))

    assert set(inspect_network(Padded(0.0).eval(), torch.randn(2, 3, 8)).probes) == {"conv"}
    assert "'<root>: pad'" in inspect_network(Padded(1.0).eval(), torch.randn(2, 3, 8)).left_out["conv"]


def _trained_a_step(net, x):
    """One training step's backward: the weight-normed weights are then part of an autograd graph."""
    net.train()
    net(x).sum().backward()
    return net.eval()


@pytest.mark.parametrize("norm", ["hook", "parametrized"])
def test_weight_normed_layers_are_removed_exactly(norm):
    net = _trained_a_step(_tcn(norm=norm), torch.randn(4, 8, 8))
    x = torch.randn(32, 8, 8)
    pruner = DropNetPruner(net, x[:2])  # deep-copies the network: refused before
    pruner.check_removal(x)  # removal matches switching the units off
    conv = net.network[0].conv1[0]
    before, next_before = conv.weight.detach().clone(), net.network[0].conv2[0].weight.detach().clone()
    drop = {name: [1, 4, 5] for name in pruner.units_per_layer}
    smaller = pruner.remove(drop)
    pruned, next_pruned = smaller.network[0].conv1[0], smaller.network[0].conv2[0]
    kept = [i for i in range(12) if i not in (1, 4, 5)]
    g, v = _g_and_v(pruned)
    assert isinstance(g, nn.Parameter) and isinstance(v, nn.Parameter)
    assert v.shape == (9, 8, 3) and g.shape == (9, 1, 1)
    assert "weight" not in dict(pruned.named_parameters(recurse=False))
    assert parametrize.is_parametrized(pruned) == (norm == "parametrized")
    torch.testing.assert_close(pruned.weight, before[kept])
    # The next layer lost those inputs: its weight is the old one without them, exactly.
    torch.testing.assert_close(next_pruned.weight, next_before[kept][:, kept], rtol=1e-5, atol=1e-6)
    smaller.train()
    smaller(x).sum().backward()  # trains through g and v
    assert g.grad is not None and v.grad.shape == (9, 8, 3)


@pytest.mark.parametrize("norm", ["hook", "parametrized"])
def test_a_random_restart_draws_new_weight_normed_weights(norm):
    net = _tcn(norm=norm)
    x = torch.randn(16, 8, 8)
    pruner = DropNetPruner(net, x[:2])
    trained = net.network[0].conv1[0].weight.detach().clone()
    smaller = pruner.remove({name: [0] for name in pruner.units_per_layer}, restart="random")
    conv = smaller.network[0].conv1[0]
    assert not torch.allclose(conv.weight, trained[1:])
    g, v = _g_and_v(conv)
    torch.testing.assert_close(conv.weight, g * v / torch.norm_except_dim(v, 2, 0))
    torch.testing.assert_close(g, torch.norm_except_dim(conv.weight, 2, 0))
    torch.testing.assert_close(v, conv.weight)


@pytest.mark.parametrize(
    ("norm", "name", "fix"),
    [
        ("hook", "torch.nn.utils.weight_norm", "remove_weight_norm(layer) removes it"),
        ("parametrized", "torch.nn.utils.parametrizations.weight_norm", 'remove_parametrizations(layer, "weight")'),
    ],
)
def test_weight_norm_over_another_dimension_is_left_out_with_the_fix(norm, name, fix):
    normed = NORMS[norm](nn.Linear(4, 8), dim=None)
    net = nn.Sequential(normed, nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.warns(UnitRemovalWarning, match=rf"layer '0' unpruned: it has {name} with dim=None"):
        pruner = DropNetPruner(net, torch.randn(2, 4))
    assert fix in pruner.unpruned["0"]
    assert pruner.units_per_layer == {"2": 8}


@pytest.mark.parametrize("norm", ["hook", "parametrized"])
def test_a_layer_feeding_a_weight_norm_over_another_dimension_is_left_out_with_the_reason(norm):
    """Its inputs cannot be cut (the removal check refused it after training, blaming Torch-Pruning)."""
    normed = NORMS[norm](nn.Linear(8, 8), dim=1)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), normed, nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.warns(UnitRemovalWarning) as caught:
        pruner = DropNetPruner(net, torch.randn(2, 4))
    assert "DropNet leaves layer '0' unpruned: its units feed '2', whose weight norm over dim=1 DropNet does " \
        "not resize." in [str(w.message) for w in caught]  # fmt: skip
    assert pruner.units_per_layer == {"4": 8}
    pruner.check_removal(torch.randn(32, 4))
    assert set(pruner.unpruned) == {"0", "2"}


@pytest.fixture(scope="module")
def sequences():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 8, 8)  # 8 channels (image rows) of 8 steps
    return X[:1200], X[1200:], y[:1200], y[1200:]


@pytest.fixture(scope="module", params=["hook", "parametrized"])
def fitted_tcn(sequences, request):
    X_train, _, y_train, _ = sequences
    clf = DropNetClassifier(
        module=TCN, module__norm=request.param, prune_ratio=0.5, max_epochs=3, batch_size=32, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("error", UnitRemovalWarning)  # no layer left unpruned
        return clf.fit(X_train, y_train)


def test_the_estimator_prunes_a_tcn_and_it_survives_joblib(fitted_tcn, sequences):
    _, X_test, _, y_test = sequences
    dense, pruned = fitted_tcn.pruning_history_[0], fitted_tcn.pruning_history_[-1]
    assert pruned["units"] == dense["units"] // 2 and pruned["params"] < 0.5 * dense["params"]
    assert not fitted_tcn.unpruned_layers_
    buffer = io.BytesIO()
    joblib.dump(fitted_tcn, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), fitted_tcn.predict_proba(X_test))
    assert fitted_tcn.score(X_test, y_test) > 0.4  # learning (10 classes), in three epochs a round


def test_both_forms_of_weight_norm_prune_alike(sequences):
    """The same TCN with torch.nn.utils.parametrizations.weight_norm and with the hook-based
    weight_norm computes the same weights: same scores, same units dropped, same network."""
    X_train, X_test, y_train, _ = sequences
    fitted = {
        norm: DropNetClassifier(
            module=TCN, module__norm=norm, prune_ratio=0.5, max_epochs=2, batch_size=64, random_state=0
        ).fit(X_train[:400], y_train[:400])
        for norm in ("hook", "parametrized")
    }
    hook, parametrized = fitted["hook"], fitted["parametrized"]
    assert [r["units_per_layer"] for r in parametrized.pruning_history_] == [
        r["units_per_layer"] for r in hook.pruning_history_
    ]
    np.testing.assert_allclose(parametrized.predict_proba(X_test), hook.predict_proba(X_test), rtol=0, atol=1e-6)
    conv = parametrized.module_.network[1].conv2[0]
    assert parametrize.is_parametrized(conv, "weight") and conv.out_channels == 6


def test_a_pruned_tcn_exports_and_runs_elsewhere(fitted_tcn, sequences, tmp_path):
    pytest.importorskip("onnxruntime")
    from test_export import export_all, run_elsewhere

    X_test = sequences[1][:200]
    fitted_tcn.module_(torch.as_tensor(X_test[:2]))  # a forward with autograd on: weights in a graph again
    paths = export_all(fitted_tcn, tmp_path)
    got = run_elsewhere(paths, X_test, tmp_path)
    for path in paths:
        np.testing.assert_allclose(got[str(path)], fitted_tcn.predict_proba(X_test), rtol=0, atol=1e-5, err_msg=str(path))


def test_a_weight_normed_network_given_as_an_instance_is_copied(sequences):
    X_train, _, y_train, _ = sequences
    net = TCN()  # weight_norm leaves each weight in an autograd graph, which copy.deepcopy refuses
    clf = DropNetClassifier(module=net, prune_ratio=0.2, max_epochs=1, random_state=0).fit(X_train[:300], y_train[:300])
    assert clf.module_ is not net and clf.pruning_history_[-1]["fraction_left"] < 1


class _ParametrizedBlock(nn.Module):
    """A residual block whose convolutions have a parametrization (spectral_norm, or
    weight_norm as pytorch-tcn's default), beside plain layers coupled to them."""

    def __init__(self, input_shape=(8, 8), n_classes=10, parametrization="spectral_norm"):
        super().__init__()
        wrap = getattr(parametrizations, parametrization)
        self.stem = nn.Conv1d(input_shape[0], 6, 1)  # its units feed 'conv1'
        self.conv1 = wrap(nn.Conv1d(6, 6, 3, padding=1))
        self.conv2 = wrap(nn.Conv1d(6, 6, 3, padding=1))
        self.downsample = nn.Conv1d(6, 6, 1)  # added to 'conv2': coupled to its outputs
        self.out = nn.Linear(6, n_classes)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        out = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.out(torch.relu(out + self.downsample(x)).mean(2))


def test_layers_coupled_to_parametrized_ones_are_refused_before_training(sequences, monkeypatch):
    from sklearn_dropnet._net import DropNetNet

    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(DropNetNet, "train_round", no_training)
    X_train, _, y_train, _ = sequences
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnitRemovalWarning)
        with pytest.raises(PruningError, match="or to one with parametrizations") as error:
            DropNetClassifier(module=_ParametrizedBlock, prune_ratio=0.5, max_epochs=1).fit(X_train, y_train)
    assert "No prunable layer" not in str(error.value)
    reasons = {str(w.message).split("'")[1]: str(w.message) for w in caught if w.category is UnitRemovalWarning}
    assert set(reasons) == {"conv1", "conv2", "stem", "downsample"}
    assert "its units feed 'conv1', whose parametrizations Torch-Pruning does not resize" in reasons["stem"]
    assert "coupled to the output channels of 'conv2', a layer that is never pruned" in reasons["downsample"]
    assert "it has parametrizations (spectral_norm, orthogonal), which Torch-Pruning" in reasons["conv1"]
    assert (
        "(DropNet prunes weight-normed layers: torch.nn.utils.parametrizations.weight_norm and the hook-based "
        "torch.nn.utils.weight_norm)" in reasons["conv1"]
    )


def test_layers_with_parametrized_weight_norms_and_those_coupled_to_them_are_pruned(sequences):
    X_train, _, y_train, _ = sequences
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)  # no layer left unpruned
        clf = DropNetClassifier(
            module=_ParametrizedBlock, module__parametrization="weight_norm", prune_ratio=0.5, max_epochs=1
        ).fit(X_train[:300], y_train[:300])
    assert {clf.module_.stem.out_channels, clf.module_.conv1.out_channels, clf.module_.conv2.out_channels} == {3}
    assert parametrize.is_parametrized(clf.module_.conv1, "weight") and clf.module_.downsample.out_channels == 3


def test_an_estimator_holding_a_weight_normed_instance_is_cloned():
    from sklearn.base import clone

    clf = DropNetClassifier(module=TCN(), prune_ratio=0.3)
    copy = clone(clf)  # a grid search's clone deep-copies the instance: refused before
    assert copy.module is not clf.module and copy.prune_ratio == 0.3
    x = torch.randn(2, 8, 8)
    torch.testing.assert_close(copy.module.eval()(x), clf.module.eval()(x))


class CRNN(nn.Module):
    """Convolutions over the steps, then an nn.LSTM: a CRNN as people write them."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.conv = nn.Conv1d(8, 16, 3, padding=1)
        self.lstm = nn.LSTM(16, 12, batch_first=True)
        self.out = nn.Linear(12, n_classes)

    def forward(self, x):
        steps, _ = self.lstm(F.relu(self.conv(x)).transpose(1, 2))
        return self.out(steps[:, -1])


def test_the_estimator_names_the_lstm_it_keeps_once_and_prunes_the_convolution_into_it(sequences):
    """The LSTM's hidden units are not DropNet's to prune: they were kept without a word
    (the parameter ratio then surprises); the fit names the LSTM once, lists it in
    ``unpruned_layers_``, and removes the convolution's filters with the LSTM's inputs."""
    X_train, X_test, y_train, _ = sequences
    clf = DropNetClassifier(module=CRNN, prune_ratio=0.5, max_epochs=1, batch_size=64, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnitRemovalWarning)
        clf.fit(X_train[:300], y_train[:300])
    named = [str(w.message) for w in caught if w.category is UnitRemovalWarning]
    assert named == [
        "DropNet leaves layer 'lstm' unpruned: it is an nn.LSTM, whose hidden units DropNet keeps "
        "(it prunes nn.Linear and nn.Conv1d/2d/3d layers)."
    ]
    assert list(clf.unpruned_layers_) == ["lstm"]
    assert clf.pruning_history_[-1]["units_per_layer"] == {"conv": 8}
    assert (clf.module_.lstm.input_size, clf.module_.lstm.hidden_size) == (8, 12)
    assert clf.predict(X_test).shape == (len(X_test),)
