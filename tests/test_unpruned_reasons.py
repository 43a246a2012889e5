"""Units DropNet does not prune are named, each with its own reason: weights a
network applies with a function, attention projections, frozen layers."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import UnitRemovalWarning


class MyLinear(nn.Module):
    """A layer of the user's own class that applies its weight with F.linear."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in**0.5)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class FunctionalWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(32, 64) / 8)
        self.custom = MyLinear(32, 24)
        self.fc = nn.Linear(24, 16)
        self.w_out = nn.Parameter(torch.randn(10, 16) / 4)

    def forward(self, x):
        x = torch.relu(F.linear(x, self.w1))
        x = torch.relu(self.custom(x))
        return F.linear(torch.relu(self.fc(x)), self.w_out)  # class scores: not a hidden layer


def _fit(module, X, y, **params):
    params = {"max_epochs": 2, "prune_ratio": 0.5, "random_state": 0, **params}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = DropNetClassifier(module=module, **params).fit(X, y)
    return clf, [str(w.message) for w in caught if w.category is UnitRemovalWarning]


def test_weights_applied_with_a_function_are_named(digits):
    X, y = digits
    clf, messages = _fit(FunctionalWeights, X[:300], y[:300])
    assert list(clf.unpruned_layers_) == ["w1", "custom.weight"]
    assert clf.unpruned_layers_["w1"].startswith("it is the weight of linear in forward, not of an nn.Linear")
    assert "self.fc = nn.Linear(...)" in clf.unpruned_layers_["custom.weight"]
    assert [m for m in messages if "'w1'" in m] == [f"DropNet leaves layer 'w1' unpruned: {clf.unpruned_layers_['w1']}."]
    assert clf.module_.fc.out_features == 8 and clf.module_.w1.shape == (32, 64)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.fc = nn.Linear(16, 12)
        self.out = nn.Linear(12, 10)

    def forward(self, x):
        h = self.embed(x)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        return self.out(torch.relu(self.fc(h.mean(1))))


def test_the_projection_nn_multihead_attention_applies_itself_is_named(digits):
    X, y = digits
    clf, _ = _fit(Attention, X[:300].reshape(-1, 8, 8), y[:300])
    assert "attn.in_proj_weight" in clf.unpruned_layers_ and "attn.out_proj" in clf.unpruned_layers_
    assert "query, key and value projection of an nn.MultiheadAttention" in clf.unpruned_layers_["attn.in_proj_weight"]
    assert clf.module_.fc.out_features == 6


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(64, 32), nn.Linear(32, 16), nn.Linear(16, 10)
        self.a.requires_grad_(False)

    def forward(self, x):
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


def test_a_frozen_layer_is_named_as_frozen(digits):
    X, y = digits
    clf, _ = _fit(Frozen, X[:300], y[:300])
    assert list(clf.unpruned_layers_) == ["a"]
    assert clf.unpruned_layers_["a"].startswith("its parameters are frozen (requires_grad=False)")
    assert "layer.requires_grad_(True)" in clf.unpruned_layers_["a"]
    assert clf.module_.b.out_features == 8


class FunctionalHead(nn.Module):
    def __init__(self, head="linear"):
        super().__init__()
        self.head = head
        self.fc = nn.Linear(64, 16)
        self.w = nn.Parameter(torch.randn(10, 16) / 4)

    def forward(self, x):
        h = torch.relu(self.fc(x))
        return F.linear(h, self.w) if self.head == "linear" else torch.matmul(h, self.w.T)


@pytest.mark.parametrize("head", ["linear", "matmul"])
def test_a_functional_output_layer_is_not_named(digits, head):
    """Its units are the classes, as an nn.Linear output layer's are."""
    X, y = digits
    clf, messages = _fit(FunctionalHead, X[:300], y[:300], module__head=head)
    assert clf.unpruned_layers_ == {} and messages == []
    assert clf.module_.fc.out_features == 8 and clf.module_.w.shape == (10, 8)


class LayerNormMLP(nn.Module):
    """Pre-activation LayerNorm: no unit reaches its activation through steps DropNet follows."""

    def __init__(self):
        super().__init__()
        self.fc1, self.ln1, self.fc2, self.ln2 = nn.Linear(64, 32), nn.LayerNorm(32), nn.Linear(32, 16), nn.LayerNorm(16)
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        return self.out(F.gelu(self.ln2(self.fc2(F.gelu(self.ln1(self.fc1(x)))))))


def test_the_steps_dropnet_follows_are_listed_once_when_nothing_can_be_pruned(digits):
    from sklearn_dropnet.exceptions import PruningError

    X, y = digits
    with pytest.raises(PruningError, match=r"No prunable layer found") as error:
        DropNetClassifier(module=LayerNormMLP, max_epochs=1, prune_ratio=0.5).fit(X[:200], y[:200])
    message = str(error.value)
    assert message.count("a multiplication by a number or a residual add") == 1
    assert "'fc1': its output reaches no activation: it goes into LayerNorm ('ln1') first" in message
    assert message.count("only through the steps above") == 2


class LearnedScale(nn.Module):
    """A per-unit scale and shift of the user's own before the activation."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(64, 32), nn.Linear(32, 16), nn.Linear(16, 10)
        self.scale, self.shift = nn.Parameter(torch.ones(32)), nn.Parameter(torch.zeros(32))

    def forward(self, x):
        x = torch.relu(self.fc1(x) * self.scale + self.shift)
        return self.out(torch.relu(self.fc2(x)))


def test_a_learned_scale_before_the_activation_is_named(digits):
    X, y = digits
    clf, _ = _fit(LearnedScale, X[:300], y[:300])
    assert list(clf.unpruned_layers_) == ["fc1"]
    assert clf.unpruned_layers_["fc1"].startswith("its output is multiplied by the parameter 'scale' (shape (32,)) before any activation")
    assert "gate" not in clf.unpruned_layers_["fc1"]


class BufferMask(nn.Module):
    """A buffer with one value per unit of fc1, which Torch-Pruning does not cut."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(64, 32), nn.Linear(32, 16), nn.Linear(16, 10)
        self.register_buffer("unit_mask", torch.ones(32))

    def forward(self, x):
        x = torch.relu(self.fc1(x)) * self.unit_mask
        return self.out(torch.relu(self.fc2(x)))


def test_a_buffer_with_one_value_per_unit_is_named_where_removal_fails(digits):
    X, y = digits
    clf, _ = _fit(BufferMask, X[:300], y[:300])
    assert list(clf.unpruned_layers_) == ["fc1"]
    assert "the smaller network fails" in clf.unpruned_layers_["fc1"]
    assert "The buffers ['unit_mask'] have a dimension of 32, as many as the layer's units" in clf.unpruned_layers_["fc1"]
