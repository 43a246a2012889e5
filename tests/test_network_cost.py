"""Bytes a network takes: saved weights and activations per sample."""

import io

import pytest
import torch
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.pruning._network_cost import (
    activation_bytes,
    count_macs,
    count_parameters,
    network_costs,
    peak_cuda_bytes,
    saved_bytes,
)


class _ReluTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear, self.relu = nn.Linear(4, 6), nn.ReLU()

    def forward(self, x):
        return self.relu(self.relu(self.linear(x)) - 1)


def test_activation_bytes_counts_every_leaf_output_of_one_sample():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    # conv 4x8x8, relu 4x8x8, flatten 256, linear 3: 771 float32 values, whatever the batch.
    assert activation_bytes(net, torch.zeros(5, 1, 8, 8)) == 771 * 4
    assert activation_bytes(net.double(), torch.zeros(5, 1, 8, 8, dtype=torch.float64)) == 771 * 8


def test_activation_bytes_counts_a_module_called_twice_twice_and_cleans_up():
    net = _ReluTwice().train()
    assert activation_bytes(net, torch.zeros(3, 4)) == (6 + 6 + 6) * 4
    assert net.training
    assert not net.relu._forward_hooks and not net.linear._forward_hooks


def test_saved_bytes_is_what_torch_save_writes():
    net = nn.Sequential(nn.Linear(300, 200), nn.BatchNorm1d(200), nn.Linear(200, 10))
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    assert saved_bytes(net) == len(buffer.getvalue())
    weights = (count_parameters(net) + 2 * 200) * 4  # + BatchNorm's running mean and variance
    assert weights < saved_bytes(net) < weights + 4096
    assert saved_bytes(net.half()) == pytest.approx(saved_bytes(net.float()) / 2, rel=0.05)


def test_pruning_shrinks_saved_and_activation_bytes(digits):
    X, y = digits
    clf = DropNetClassifier(
        prune_ratio=0.8, max_epochs=2, module__hidden_layer_sizes=(64, 32), random_state=0
    ).fit(X[:300], y[:300])
    example = torch.as_tensor(X[:2])
    dense = clf.initial_module_.__class__(input_shape=(64,), n_classes=10, hidden_layer_sizes=(64, 32))
    left = clf.pruning_history_[-1]["units_per_layer"]
    assert sorted(left.values()) == [6, 13]
    # MLP with BatchNorm: flatten 64, then linear, batch norm and ReLU of each hidden layer, output 10.
    assert activation_bytes(dense, example) == (64 + 3 * (64 + 32) + 10) * 4
    assert activation_bytes(clf.module_, example) == (64 + 3 * (13 + 6) + 10) * 4
    # The file holds the smaller tensors; its overhead (names, zip records) is the same.
    overheads = [saved_bytes(net) - _tensor_bytes(net) for net in (dense, clf.module_)]
    assert overheads[0] > 0 and overheads[1] == pytest.approx(overheads[0], abs=64 * len(dense.state_dict()))  # one zip alignment per tensor
    assert _tensor_bytes(clf.module_) < 0.2 * _tensor_bytes(dense)


def _tensor_bytes(net):
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


def test_network_costs_gathers_every_count_for_one_sample():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    batch = torch.zeros(16, 1, 8, 8)
    costs = network_costs(net, batch, repeats=2)
    assert set(costs) == {"params", "saved", "activations", "macs", "seconds"}
    assert costs["params"] == 4 * 9 + 4 + 256 * 3 + 3
    assert costs["saved"] == saved_bytes(net)
    assert costs["activations"] == 771 * 4
    assert costs["macs"] == count_macs(net, batch[:1]) > 0
    assert costs["seconds"] > 0


def test_count_macs_counts_multiply_accumulates_only():
    # Biases, BatchNorm, ReLU and pooling are element-wise work, not MACs.
    net = nn.Sequential(
        nn.Conv2d(8, 6, 3, groups=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 3 * 3, 5),
    )  # fmt: skip
    x = torch.zeros(4, 8, 8, 8)
    conv = 6 * (6 * 6) * (4 * 3 * 3)  # outputs x positions x inputs per group x kernel
    assert count_macs(net, x) == conv + 54 * 5 == 8046


def test_a_batchnorm_without_running_statistics_is_counted_and_pruned(digits):
    def net(track_running_stats):
        torch.manual_seed(0)
        layers = nn.Linear(64, 32), nn.BatchNorm1d(32, track_running_stats=track_running_stats), nn.ReLU()
        return nn.Sequential(*layers, nn.Linear(32, 10))

    x = torch.zeros(5, 64)
    assert count_macs(net(False), x) == count_macs(net(True), x) == 64 * 32 + 32 * 10
    assert activation_bytes(net(False), x) == activation_bytes(net(True), x) == (32 * 3 + 10) * 4
    X, y = digits
    clf = DropNetClassifier(module=net(False), prune_ratio=0.5, drop_fraction=0.5, max_epochs=1, random_state=0)
    clf.fit(X[:300], y[:300])  # failed after training, counting the MACs of one sample
    assert [r["macs"] for r in clf.pruning_history_] == [64 * 32 + 32 * 10, 64 * 16 + 16 * 10]


def test_peak_cuda_bytes_names_inputs_on_the_cpu():
    with pytest.raises(ValueError, match="measures CUDA memory, but the inputs are on cpu"):
        peak_cuda_bytes(nn.Linear(4, 3), torch.zeros(2, 4))


class _SampleFirst(nn.Module):
    """Takes (n_samples, steps, features), as the estimator gives them, whatever the layer's batch_first."""

    def __init__(self, layer, batch_first):
        super().__init__()
        self.layer, self.batch_first = layer, batch_first

    def forward(self, x):
        out = self.layer(x if self.batch_first else x.transpose(0, 1))
        return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("batch_first", [True, False])
def test_recurrent_layers_and_attention_are_counted_whatever_kernel_runs_them(batch_first):
    """A CPU nn.LSTM's oneDNN kernel, the encoder's fused eval path and the CPU's flash
    attention counted nothing."""
    torch.manual_seed(0)
    steps, n_in, hidden = 8, 24, 32
    lstm = _SampleFirst(nn.LSTM(n_in, hidden, batch_first=batch_first), batch_first)
    assert count_macs(lstm, torch.randn(2, steps, n_in)) == steps * 4 * hidden * (n_in + hidden)
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=batch_first)
    encoder = _SampleFirst(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), batch_first)
    per_layer = steps * (4 * 16 * 16 + 2 * 16 * 32) + 2 * steps * steps * 16  # projections, feed-forward, attention
    assert count_macs(encoder, torch.randn(2, steps, 16)) == 2 * per_layer
    assert torch.backends.mha.get_fastpath_enabled() and torch._C._get_mkldnn_enabled()  # put back
