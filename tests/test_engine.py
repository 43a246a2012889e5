"""The public pruning engine, DropNetPruner, on its own and under the estimator."""

import copy
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torchvision
from removal_checks import assert_removal_matches_masking, randomise_batchnorm
from torch import nn
from torch.nn import functional as F

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import PruningError, UnitRemovalWarning
from sklearn_dropnet.pruning import (
    RESTARTS,
    UNIT_SCORES,
    UNIT_SELECTIONS,
    DropNetPruner,
    register_unit_score,
)
from sklearn_dropnet.pruning._probes import inspect_network


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))


def test_the_engine_imports_neither_scikit_learn_nor_skorch():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["sklearn"] = sys.modules["skorch"] = None  # importing either fails
        import numpy as np, torch
        from torch import nn
        from sklearn_dropnet.pruning import DropNetPruner
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        x = torch.randn(16, 4)
        pruner = DropNetPruner(net, x[:2])
        drop = pruner.choose(pruner.score(lambda: [x]), 2, rng=np.random.default_rng(0))
        net = pruner.remove(drop, restart="rewind")
        print(pruner.record()["units"], net[0].out_features)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6", "6"]


def test_units_scores_choice_and_removal():
    net = mlp()
    x = torch.randn(40, 6)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {"0": 10, "2": 8} and pruner.n_units == 18
    assert pruner.unpruned == {}
    scores = pruner.score(lambda: [x[:20], x[20:]], "activation")
    # The DropNet score: mean |post-activation| over the batches given.
    expected = net[1](net[0](x)).abs().mean(0).detach().numpy()
    np.testing.assert_allclose(scores["0"], expected, rtol=1e-5)
    drop = pruner.choose(scores, 4, "layer", np.random.default_rng(0))
    assert sorted(drop["0"].tolist()) == sorted(np.argsort(scores["0"])[:2].tolist())
    kept = [i for i in range(10) if i not in drop["0"]]
    weight = net[0].weight.detach()[kept].clone()
    same = pruner.remove(drop, restart="none")
    assert same is net and net[0].out_features == 8 and net[2].in_features == 8
    torch.testing.assert_close(net[0].weight.detach(), weight)  # the trained weights of the survivors
    assert pruner.initial[0].out_features == 8  # the rewind copy in lock-step
    record = pruner.record(note="after one round")
    assert record["round"] == 0 and record["units"] == 14 and record["note"] == "after one round"
    assert record["params"] == sum(p.numel() for p in net.parameters())


def test_rewind_restarts_the_survivors_from_their_initial_weights():
    net = mlp()
    initial = net[0].weight.detach().clone()
    x = torch.randn(40, 6)
    pruner = DropNetPruner(net, x[:2])
    with torch.no_grad():  # "training"
        for parameter in net.parameters():
            parameter.add_(1.0)
    drop = {"0": np.array([1, 4]), "2": np.array([], dtype=int)}
    rewound = pruner.remove(drop, restart="rewind")
    assert rewound is not net and rewound is pruner.module
    kept = [i for i in range(10) if i not in (1, 4)]
    torch.testing.assert_close(rewound[0].weight.detach(), initial[kept])
    fresh = DropNetPruner(mlp(), x[:2]).remove(drop, restart="random")
    assert not torch.allclose(fresh[0].weight, initial[kept])
    with pytest.raises(ValueError, match="restart must be one of"):
        pruner.remove(drop, restart="lottery")
    assert set(RESTARTS) == {"rewind", "random", "none"}


def test_units_to_drop_follows_the_papers_schedule():
    net = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    x = torch.randn(8, 4)
    pruner = DropNetPruner(net, x[:2])
    pruner.record()
    sizes = []
    while n := pruner.units_to_drop(prune_ratio=0.8, drop_fraction=0.2):
        drop = pruner.choose(pruner.score(lambda: [x], "l1"), n, "layer", np.random.default_rng(0))
        pruner.remove(drop)
        sizes.append(pruner.record()["units"])
    # The estimator's rounds for the default MLP at prune_ratio=0.8 (tests/pins).
    assert sizes == [307, 246, 197, 158, 126, 101, 81, 76]
    assert pruner.history[-1]["fraction_left"] == round(76 / 384, 6)


def test_layers_left_out_are_listed_with_the_reason():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bottleneck = nn.Linear(6, 4)  # no activation after it
            self.hidden = nn.Linear(4, 8)
            self.twice = nn.Linear(8, 8)  # called twice
            self.kept = nn.Linear(8, 5)
            self.out = nn.Linear(5, 3)

        def forward(self, x):
            h = torch.relu(self.hidden(self.bottleneck(x)))
            h = torch.tanh(self.twice(torch.tanh(self.twice(h))))
            return self.out(torch.relu(self.kept(h)))

    with pytest.warns(UnitRemovalWarning) as caught:
        pruner = DropNetPruner(Net(), torch.randn(2, 6))
    assert set(pruner.unpruned) == {"bottleneck", "twice", "hidden"}
    assert pruner.unpruned["bottleneck"].startswith("its output reaches no activation: it goes into Linear ('hidden') first")
    assert pruner.unpruned["twice"] == "it is called 2 times in one forward pass"
    assert "coupled to the output channels of 'twice'" in pruner.unpruned["hidden"]
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["bottleneck", "hidden", "twice"]
    assert pruner.units_per_layer == {"kept": 5}
    with pytest.raises(PruningError, match="No prunable layer"):
        DropNetPruner(nn.Sequential(nn.Linear(3, 2)), torch.randn(2, 3))


def test_checkpoint_and_restore():
    net = mlp()
    x = torch.randn(40, 6)
    pruner = DropNetPruner(net, x[:2])
    saved = pruner.checkpoint()
    pruner.remove(pruner.choose(pruner.score(lambda: [x]), 5, rng=0))
    assert pruner.n_units == 13
    restored = pruner.restore(saved)
    assert restored is pruner.module and pruner.n_units == 18 and restored[0].out_features == 10
    assert pruner.initial[0].out_features == 10


def test_a_registered_unit_score_is_usable_by_name_in_the_engine_and_the_estimator(digits):
    calls = []

    def last_sample_first(layer, activations, rng):
        calls.append(activations.shape)
        return -np.abs(activations[-1])

    register_unit_score("last_sample", last_sample_first)
    try:
        net = mlp()
        x = torch.randn(30, 6)
        pruner = DropNetPruner(net, x[:2])
        scores = pruner.score(lambda: [x], "last_sample")
        expected = -net[1](net[0](x[-1:])).abs()[0].detach().numpy()
        np.testing.assert_allclose(scores["0"], expected, rtol=1e-5)
        X, y = digits
        clf = DropNetClassifier(unit_score="last_sample", prune_ratio=0.3, max_epochs=1,
                                module__hidden_layer_sizes=(12,), random_state=0).fit(X[:200], y[:200])
        assert clf.pruning_history_[-1]["units"] < 12 and len(calls) > 2
        assert calls[-1][1] == clf.pruning_history_[-2]["units"]  # (n_samples, units of that round)
    finally:
        del UNIT_SCORES["last_sample"]
    with pytest.raises(ValueError, match="unit_score"):
        DropNetClassifier(unit_score="last_sample").fit(X[:50], y[:50])


def test_a_unit_selection_is_any_callable_with_the_registrys_signature(digits):
    seen = []

    def first_units(scores, n_drop, rng, **context):
        seen.append(sorted(context))
        name = next(iter(scores))
        return {name: np.arange(n_drop)}

    X, y = digits
    clf = DropNetClassifier(scope=first_units, prune_ratio=0.25, max_epochs=1,
                            module__hidden_layer_sizes=(16,), random_state=0).fit(X[:200], y[:200])
    assert [r["units"] for r in clf.pruning_history_] == [16, 13, 12]
    assert seen[0] == ["channel_groups", "floors", "labelled_batches", "pruner"]
    assert set(UNIT_SELECTIONS) == {"layer", "global", "global_raw"}


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        (None, r"a NoneType, not a dict"),
        ({"nowhere": [0]}, r"groups that do not exist \('nowhere'; the groups are \['0', '2'\]\)"),
        ({"0": [999]}, r"index 999 for '0', which has 8 units"),
        ({"0": [-1]}, r"index -1 for '0', which has 8 units"),
        ({"0": [1, 1]}, r"an index twice for '0'"),
        ({"0": [0.5]}, r"array\(\[0.5\]\) for '0', not a sequence of integer indices"),
        ({"2": list(range(6))}, r"all 6 units of '2'"),
    ],
    ids=["none", "unknown-group", "too-large", "negative", "twice", "float", "every-unit"],
)
def test_a_selection_that_breaks_the_contract_is_named(returned, problem):
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(10, 4)
    pruner = DropNetPruner(net, x[:2])
    scores = pruner.score(lambda: [x])

    def selection(scores, n_drop, rng, **context):
        return returned

    with pytest.raises(ValueError, match=rf"scope=<function .*selection.*> returned {problem}; units to remove are"):
        pruner.choose(scores, 2, selection)


@pytest.mark.parametrize("norm", [nn.LayerNorm(8), nn.GroupNorm(2, 8)], ids=["LayerNorm", "GroupNorm"])
def test_a_norm_over_channels_before_the_activation_is_named_as_the_reason(norm):
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), norm, nn.ReLU(), nn.Linear(8, 3))
    with pytest.warns(UnitRemovalWarning, match=r"layer '2' unpruned: its output reaches no activation"):
        pruner = DropNetPruner(net, torch.randn(4, 4))
    name = type(norm).__name__
    assert pruner.unpruned == {"2": f"its output reaches no activation: it goes into {name} ('3') first ({name} mixes the "
                               "channels), and DropNet follows a unit to its activation only through BatchNorm (frozen "
                               "too) or InstanceNorm, Dropout, pooling, slicing or padding of the positions, a reshape that keeps "
                               "the channels in place, a transpose or permute that moves them between dimension 1 and the "
                               "last, a multiplication by a number or a residual add"}  # fmt: skip
    assert pruner.units_per_layer == {"0": 8}


class _DenseLayers(nn.Module):
    """Two DenseNet layers: each concatenates what came before, then BatchNorm, ReLU, conv."""

    def __init__(self, concatenate):
        super().__init__()
        self.concatenate = concatenate
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.norm1, self.grow1 = nn.BatchNorm2d(4), nn.Conv2d(4, 2, 3, padding=1)
        self.norm2, self.grow2 = nn.BatchNorm2d(6), nn.Conv2d(6, 2, 3, padding=1)
        self.head = nn.Sequential(nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        features = [self.stem(x)]
        features.append(self.grow1(torch.relu(self.norm1(features[0]))))
        features.append(self.grow2(torch.relu(self.norm2(self.concatenate(features)))))
        return self.head(self.concatenate(features))


CONCATENATIONS = {
    "torch.cat": lambda tensors: torch.cat(tensors, 1),
    "torch.concat-by-keyword": lambda tensors: torch.concat(tensors=tensors, dim=1),
}


@pytest.mark.parametrize("concatenate", CONCATENATIONS.values(), ids=CONCATENATIONS)
def test_a_layer_concatenated_before_its_activation_is_read_at_every_activation_it_reaches(concatenate):
    """DenseNet's layers: each unit is read wherever its channel is activated, at its
    place among the concatenation's channels, and scored by the mean of its readings."""
    torch.manual_seed(0)
    net, x = randomise_batchnorm(_DenseLayers(concatenate)).eval(), torch.randn(8, 3, 8, 8)
    structure = inspect_network(net, x[:2])
    readings = {name: [(r.offset, r.width) for r in probe.readings] for name, probe in structure.probes.items()}
    # stem: norm1's ReLU, norm2's (first in the concatenation) and the head's
    assert readings == {"stem": [(0, 4)] * 3, "grow1": [(4, 2), (4, 2)], "grow2": [(6, 2)]}
    assert not structure.left_out
    with torch.no_grad():  # the network's forward, step by step
        stem = net.stem(x)
        grow1 = net.grow1(torch.relu(net.norm1(stem)))
        grow2 = net.grow2(torch.relu(net.norm2(concatenate([stem, grow1]))))
        activations = [net.norm1(stem), net.norm2(concatenate([stem, grow1])), net.head[0](concatenate([stem, grow1, grow2]))]
    after_norm1, after_norm2, in_head = (torch.relu(a).mean(dim=(0, 2, 3)).numpy() for a in activations)
    expected = {
        "stem": (after_norm1 + after_norm2[:4] + in_head[:4]) / 3,
        "grow1": (after_norm2[4:] + in_head[4:6]) / 2,
        "grow2": in_head[6:],
    }
    scores = DropNetPruner(net, x).score(lambda: [x])
    for name, values in expected.items():
        np.testing.assert_allclose(scores[name], values, rtol=1e-5)
    assert_removal_matches_masking(net, x, {"stem": [1], "grow1": [0], "grow2": [1]})
    assert (net.stem.out_channels, net.grow1.out_channels, net.grow2.out_channels) == (3, 1, 1)


def test_a_concatenation_whose_output_reaches_no_activation_is_named_as_the_reason():
    class ConcatenatedIntoAConvolution(nn.Module):
        def __init__(self):
            super().__init__()
            self.left, self.right = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
            self.mix, self.out = nn.Conv2d(8, 4, 1), nn.Linear(4, 3)

        def forward(self, x):
            h = self.mix(torch.cat([self.left(x), self.right(x)], 1))
            return self.out(torch.relu(h).mean((2, 3)))

    structure = inspect_network(ConcatenatedIntoAConvolution().eval(), torch.randn(2, 3, 6, 6))
    assert set(structure.probes) == {"mix"}
    for name in ("left", "right"):
        assert structure.left_out[name].startswith(
            "its output goes into a concatenation ('<root>: cat') before any activation"
        )
        assert "every way the unit's channel goes on from it reaches an activation" in structure.left_out[name]


@pytest.mark.parametrize("inplace", [True, False])
def test_a_layer_concatenated_after_its_activation_is_pruned(inplace):
    # SqueezeNet's Fire module and GoogLeNet's branches: the ReLU (in place or not) comes first.
    class Fire(nn.Module):
        def __init__(self):
            super().__init__()
            self.squeeze, self.left, self.right = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=1)
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            h = F.relu(self.squeeze(x), inplace=inplace)
            h = torch.cat([F.relu(self.left(h), inplace=inplace), F.relu(self.right(h), inplace=inplace)], 1)
            return self.out(h.mean((2, 3)))

    structure = inspect_network(Fire().eval(), torch.randn(2, 3, 6, 6))
    assert set(structure.probes) == {"squeeze", "left", "right"} and not structure.left_out


def test_a_gate_before_the_activation_is_named_as_the_reason():
    class GatedBlock(nn.Module):  # a CBAM-style channel gate on a residual branch
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.norm = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 4))
            self.out = nn.Linear(4, 3)

        def forward(self, x):
            h = self.norm(self.conv2(torch.relu(self.conv1(x))))
            h = h * torch.sigmoid(self.gate(h))[:, :, None, None]
            return self.out(torch.relu(h + x).mean((2, 3)))

    structure = inspect_network(GatedBlock().eval(), torch.randn(2, 4, 6, 6))
    assert "conv1" in structure.probes and "conv2" not in structure.probes
    assert structure.left_out["conv2"].startswith(
        "its output reaches no activation before a product with another tensor: a gate (as in squeeze-and-excitation"
    )


def test_the_attention_projection_is_named_as_used_directly():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
            self.hidden, self.out = nn.Linear(8, 8), nn.Linear(8, 3)

        def forward(self, x):
            h, _ = self.attention(x, x, x)
            return self.out(torch.relu(self.hidden(h.mean(dim=1))))

    with pytest.warns(UnitRemovalWarning, match=r"'attention.out_proj' unpruned: its parent, an nn.MultiheadAttention, "
                      r"uses its weights directly instead of calling it"):  # fmt: skip
        pruner = DropNetPruner(Attention().eval(), torch.randn(2, 5, 8))
    assert pruner.units_per_layer == {"hidden": 8}


def recurrent_net(kind, bidirectional):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = kind(8, 16, batch_first=True, bidirectional=bidirectional)
            self.hidden, self.out = nn.Linear(32 if bidirectional else 16, 12), nn.Linear(12, 3)

        def forward(self, x):
            steps, _ = self.rnn(x)
            return self.out(torch.relu(self.hidden(steps[:, -1])))

    return Net()


@pytest.mark.parametrize(
    ("kind", "bidirectional"), [(nn.LSTM, False), (nn.GRU, False), (nn.GRU, True), (nn.LSTM, True)]
)
def test_the_layers_after_a_recurrent_layer_are_pruned_without_torch_prunings_warnings(kind, bidirectional):
    """The one warning names the recurrent layer, whose hidden units are kept (a
    bidirectional GRU made Torch-Pruning warn hundreds of times; a bidirectional LSTM
    made it fail on the concatenation of its directions, whose sizes it cannot tell,
    and the network was refused)."""
    x = torch.randn(4, 5, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruner = DropNetPruner(recurrent_net(kind, bidirectional), x[:2])
        net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 4))
    reason = f"it is an nn.{kind.__name__}, whose hidden units DropNet keeps (it prunes nn.Linear and nn.Conv1d/2d/3d layers)"
    assert [(w.category, str(w.message)) for w in caught] == [
        (UnitRemovalWarning, f"DropNet leaves layer 'rnn' unpruned: {reason}.")
    ]
    assert pruner.unpruned == {"rnn": reason}
    assert pruner.units_per_layer == {"hidden": 8}
    assert net(x).shape == (4, 3)


class _WithATransposedConv(nn.Module):
    """A convolution, a transposed one and a Linear: only the first and the last have
    units DropNet prunes."""

    def __init__(self, n_classes=3):
        super().__init__()
        self.conv, self.up = nn.Conv2d(1, 6, 3, padding=1), nn.ConvTranspose2d(6, 5, 2, stride=2)
        self.hidden, self.out = nn.Linear(5, 8), nn.Linear(8, n_classes)

    def forward(self, x):
        x = torch.relu(self.up(torch.relu(self.conv(x)))).mean((2, 3))
        return self.out(torch.relu(self.hidden(x)))


def test_a_transposed_convolution_keeps_its_filters_and_is_named_and_the_layer_before_it_is_pruned():
    """A layer of a kind DropNet does not prune (here nn.ConvTranspose2d) was left as
    it was without a word: it is named, and the convolution feeding it loses its
    inputs with its own units, exactly."""
    torch.manual_seed(0)
    net, x = _WithATransposedConv(), torch.randn(16, 1, 4, 4)
    with pytest.warns(UnitRemovalWarning, match=r"layer 'up' unpruned: it is an nn.ConvTranspose2d, whose filters "):
        pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {"conv": 6, "hidden": 8}
    assert set(pruner.unpruned) == {"up"}
    assert [group.name for group in pruner.check_removal(x)] == ["conv", "hidden"]
    net = pruner.remove({"conv": [0, 3], "hidden": [1]})
    assert (net.conv.out_channels, net.up.in_channels, net.up.out_channels) == (4, 4, 5)
    assert net(x).shape == (16, 3)


def test_a_network_whose_only_layers_dropnet_keeps_is_refused_with_their_kind():
    class OnlyRecurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 6, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0][:, -1]

    with pytest.raises(PruningError, match=r"Layers of other kinds keep their units: \['rnn'\] \(nn.LSTM\)"):
        DropNetPruner(OnlyRecurrent(), torch.randn(2, 5, 8))


class IntoRecurrent(nn.Module):
    """A projection whose units feed a recurrent layer (a CRNN's convolutions, say)."""

    def __init__(self, kind):
        super().__init__()
        self.fc, self.rnn = nn.Linear(5, 12), kind(12, 10, batch_first=True)
        self.hidden, self.out = nn.Linear(10, 8), nn.Linear(8, 3)

    def forward(self, x):
        steps, _ = self.rnn(torch.relu(self.fc(x)))
        return self.out(torch.relu(self.hidden(steps[:, -1])))


def test_a_layer_feeding_a_gru_is_left_out_with_the_reason_and_one_feeding_an_lstm_is_pruned():
    torch.manual_seed(0)
    x = torch.randn(64, 6, 5)
    with pytest.warns(UnitRemovalWarning, match=r"layer 'fc' unpruned: Torch-Pruning cannot follow its units into the "
                      r"modules that read them \(.*\); Torch-Pruning 1.6 cannot follow channels into an "
                      r"nn.GRU \('rnn'\)"):  # fmt: skip
        pruner = DropNetPruner(IntoRecurrent(nn.GRU), x[:2])  # was an IndexError from inside Torch-Pruning
    assert pruner.units_per_layer == {"hidden": 8} and "nn.LSTM there loses the matching inputs" in pruner.unpruned["fc"]
    assert "_MappingTooLarge" not in pruner.unpruned["fc"]  # a class of DropNet's own, not the user's concern
    net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 4))
    assert pruner.units_per_layer == {"hidden": 4} and net(x).shape == (64, 3)
    pruner = DropNetPruner(IntoRecurrent(nn.LSTM), x[:2])
    assert pruner.check_removal(x[:32]) and pruner.units_per_layer == {"fc": 12, "hidden": 8}
    net = pruner.remove({"fc": [0, 3, 7]})
    assert net.rnn.input_size == 9 and net(x).shape == (64, 3)


def test_a_layer_feeding_an_rnn_fails_the_removal_check_and_the_warning_names_the_rnn():
    torch.manual_seed(0)
    x = torch.randn(64, 6, 5)
    pruner = DropNetPruner(IntoRecurrent(nn.RNN), x[:2])  # Torch-Pruning builds a group, a wrong one
    with pytest.warns(UnitRemovalWarning, match=r"layer 'fc' unpruned: removing its units does not match switching "
                      r"them off .*, or an RNN \('rnn'\) its units feed: Torch-Pruning 1.6 traces inside an nn.RNN "
                      r"or nn.GRU and cannot remove its inputs, an nn.LSTM's it can\), or removes channels"):  # fmt: skip
        pruner.check_removal(x[:32])
    assert pruner.units_per_layer == {"hidden": 8}


def test_a_network_torch_pruning_fails_on_is_refused_naming_where_it_failed(monkeypatch):
    """Torch-Pruning's tracer failing on a structure DropNet does not know: the error
    names the function of Torch-Pruning it failed in, which a bug report can give."""
    from torch_pruning.dependency import index_mapping

    def fails(graph, node):
        raise RuntimeError("cannot map this split")

    monkeypatch.setattr(index_mapping, "update_split_index_mapping", fails)

    class Split(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))

        def forward(self, x):
            return self.net(torch.cat(self.conv(x).chunk(2, 1), 1))

    with pytest.raises(PruningError) as raised:
        DropNetPruner(Split(), torch.randn(2, 1, 4, 4))
    message = str(raised.value)
    assert "(RuntimeError: cannot map this split), so no layer can be removed physically: its structure" in message
    assert re.search(r"Torch-Pruning fails in its update_index_mapping \(index_mapping\.py:\d+\)", message)


def bn_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))


def test_the_engine_leaves_every_module_in_the_mode_it_was_in():
    net, x = bn_mlp().train(), torch.randn(16, 6)
    net[1].eval()  # a BatchNorm the user keeps frozen
    pruner = DropNetPruner(net, x[:2])  # Torch-Pruning's tracer switches to eval mode
    assert [m.training for m in net.modules()] == [True, True, False, True, True, True, True]
    net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 4))
    assert net.training and not net[1].training
    restored = pruner.restore(pruner.checkpoint())
    assert restored.training and not restored[1].training


def test_a_checkpoint_can_be_restored_more_than_once():
    net, x = bn_mlp(), torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    checkpoint = pruner.checkpoint()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    for _ in range(2):
        net = pruner.restore(checkpoint)
        assert pruner.units_per_layer == {"0": 12, "3": 10}
        assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())
        pruner.remove(pruner.choose(pruner.score(lambda: [x]), 6))  # changes the network, not the checkpoint


@pytest.mark.parametrize(
    ("units", "problem"),
    [
        ({"0": [12]}, r"index 12 for '0', which has 12 units"),
        ({"0": [1, 1]}, r"an index twice for '0'"),
        ({"5": [0]}, r"groups that do not exist \('5'; the groups are \['0', '3'\]\)"),  # the output layer
        ({"0": list(range(12))}, r"all 12 units of '0'"),
        ({"0": [0.5]}, r"array\(\[0\.5\]\) for '0', not a sequence of integer indices"),
    ],
    ids=["out-of-range", "twice", "output-layer", "every-unit", "float"],
)
def test_remove_refuses_units_that_do_not_exist_and_changes_nothing(units, problem):
    net, x = bn_mlp(), torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    for restart in ("none", "rewind"):
        with pytest.raises(ValueError, match=rf"remove\(\) got {problem}; units to remove are"):
            pruner.remove(units, restart=restart)
        assert pruner.units_per_layer == {"0": 12, "3": 10}
        assert [layer.out_features for layer in (pruner.module[0], pruner.initial[0])] == [12, 12]


def test_choose_refuses_a_negative_count_and_stale_scores():
    net, x = bn_mlp(), torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    scores = pruner.score(lambda: [x])
    for n_drop in (-1, 2.5, True):
        with pytest.raises(ValueError, match=r"n_drop must be a whole number, 0 or more"):
            pruner.choose(scores, n_drop)
    pruner.remove(pruner.choose(scores, 4))
    with pytest.raises(ValueError, match=r"got \(scores, units\) \{'0': \(12, 10\), '3': \(10, 8\)\}: score again after remove"):
        pruner.choose(scores, 2)


@pytest.mark.parametrize(
    ("restart", "step", "nth"),
    [("none", "prune", 2), ("none", "prune", 3), ("none", "retrace", 1), ("rewind", "prune", 2), ("rewind", "retrace", 1)],
    ids=["network-second-group", "rewind-copy-after-network", "retrace", "rewind-copy-second-group", "retrace-rewound"],
)
def test_a_failure_inside_the_surgery_leaves_everything_as_it_was(monkeypatch, restart, step, nth):
    from sklearn_dropnet.pruning import _surgery

    net, x = bn_mlp(), torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    pruner.check_removal(x)  # so that remove() goes straight to the surgery
    weights = {name: value.clone() for name, value in net.state_dict().items()}
    initial = {name: value.clone() for name, value in pruner.initial.state_dict().items()}
    parameters = list(net.parameters())  # what an optimizer built before holds
    real = {"prune": (_surgery, "_prune", _surgery._prune), "retrace": (DropNetPruner, "retrace", DropNetPruner.retrace)}
    owner, attribute, function = real[step]
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == nth:
            raise RuntimeError("Torch-Pruning failed here")
        return function(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, failing)
    drop = {"0": [1, 5], "3": [0, 2, 7]}
    with pytest.raises(RuntimeError, match="failed here"):
        pruner.remove(drop, restart=restart)
    assert pruner.module is net and pruner.units_per_layer == {"0": 12, "3": 10}
    assert [net[0].out_features, net[1].num_features, net[3].in_features, net[3].out_features] == [12, 12, 12, 10]
    assert all(torch.equal(net.state_dict()[name], value) for name, value in weights.items())
    assert all(torch.equal(pruner.initial.state_dict()[name], value) for name, value in initial.items())
    assert all(a is b for a, b in zip(net.parameters(), parameters, strict=True))
    monkeypatch.setattr(owner, attribute, function)
    net = pruner.remove(drop, restart=restart)  # and the pruner goes on
    assert pruner.units_per_layer == {"0": 10, "3": 7} and net(x).shape == (16, 3)


def test_a_failed_surgery_leaves_an_lstm_running_as_before(monkeypatch):
    from sklearn_dropnet.pruning import _surgery

    class Recurrent(nn.Module):  # an LSTM keeps its weights in a list too, which surgery updates
        def __init__(self):
            super().__init__()
            self.fc, self.lstm, self.out = nn.Linear(5, 12), nn.LSTM(12, 10, batch_first=True), nn.Linear(10, 3)

        def forward(self, x):
            return self.out(self.lstm(torch.relu(self.fc(x)))[0][:, -1])

    torch.manual_seed(0)
    net, x = Recurrent(), torch.randn(4, 6, 5)
    pruner, expected = DropNetPruner(net, x[:2]), net(x)
    real, calls = _surgery._prune, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 2:  # the rewind copy's surgery, after the network's
            raise RuntimeError("Torch-Pruning failed here")
        return real(*args)

    monkeypatch.setattr(_surgery, "_prune", failing)
    with pytest.raises(RuntimeError, match="failed here"):
        pruner.remove({"fc": [0, 3]})
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
    monkeypatch.setattr(_surgery, "_prune", real)
    assert pruner.remove({"fc": [0, 3]})(x).shape == (4, 3) and net.lstm.input_size == 10


def test_remove_refuses_a_choice_made_for_another_network():
    net, x = bn_mlp(), torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    checkpoint = pruner.checkpoint()
    drop = pruner.choose({"0": np.arange(12.0), "3": np.arange(10.0)}, 4)
    assert isinstance(drop, dict) and {name: list(units) for name, units in drop.items()} == {"0": [0, 1], "3": [0, 1]}
    pruner.remove(drop)
    sizes = pruner.units_per_layer
    with pytest.raises(ValueError, match=r"chose for another network \(by this pruner before its last remove\(\) or "
                                         r"restore\(\)\): removing them now would remove the units that are now"):
        pruner.remove(drop)  # fmt: skip
    assert pruner.units_per_layer == sizes
    pruner.remove({"0": [0]})  # a plain dict is the caller's: positions in the network as it is now
    assert pruner.n_units == sum(sizes.values()) - 1
    drop = pruner.choose(pruner.score(lambda: [x]), 2)
    pruner.restore(checkpoint)
    with pytest.raises(ValueError, match=r"before its last remove\(\) or restore\(\)"):
        pruner.remove(drop)
    other = DropNetPruner(bn_mlp(), x[:2])
    with pytest.raises(ValueError, match=r"chose for another network \(by another pruner\)"):
        other.remove(pruner.choose(pruner.score(lambda: [x]), 2))
    assert other.units_per_layer == {"0": 12, "3": 10}


def test_batches_to_score_on_that_cannot_serve_are_named():
    net, x = bn_mlp(), torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    with pytest.raises(TypeError, match=r"batches must be a function that returns the batches .* not a list"):
        pruner.score([x])
    used = iter([x])
    pruner.score(lambda: used)
    with pytest.raises(ValueError, match=r"held no samples \(an exhausted generator, called again\?\)"):
        pruner.score(lambda: used)
    with pytest.raises(TypeError, match=r"must be input tensors, got a tuple of 2 \(a DataLoader's batch, inputs with "
                       r"their labels\?\): pass lambda: \(x for x, \*_ in loader\)"):  # fmt: skip
        pruner.score(lambda: [(x, torch.zeros(16))])
    with pytest.raises(TypeError, match=r"got a list of 1 .*pass lambda: \(x for \(x,\) in loader\)"):
        pruner.score(lambda: [[x]])  # a DataLoader over TensorDataset(X)
    with pytest.raises(TypeError, match=r"got ndarray: convert them, torch.as_tensor\(batch, dtype=torch.float32\)"):
        pruner.score(lambda: [x.numpy()])
    with pytest.raises(TypeError, match=r"are torch.float64, the network's parameters torch.float32: convert the batches"):
        pruner.score(lambda: [x.double()])


def test_a_network_changed_behind_the_pruner_is_named():
    net, x = bn_mlp(), torch.randn(16, 6)
    pruner = DropNetPruner(net, x[:2])
    net[3], net[5] = nn.Linear(12, 16), nn.Linear(16, 3)  # the caller widens layer '3'
    with pytest.raises(PruningError, match=r"in the network, layer '3' has 16 units, where the pruner has 10"):
        pruner.score(lambda: [x])
    with pytest.raises(PruningError, match=r"in the network, layer '3' has 16 units"):
        pruner.remove({"0": [0]})
    pruner.retrace()  # the units now follow the network, the rewind copy does not
    with pytest.raises(PruningError, match=r"in the rewind copy, layer '3' has 10 units, where the pruner has 16"):
        pruner.remove({"0": [0]}, restart="rewind")
    assert pruner.module[0].out_features == pruner.initial[0].out_features == 12  # nothing removed


def test_example_inputs_and_arguments_the_engine_cannot_use_are_named():
    net, x = bn_mlp(), torch.randn(16, 6)
    for example in (x[0], x[:0]):
        with pytest.raises(ValueError, match=r"example_input must be a small batch of real inputs, shape \(n_samples, \.\.\.\)"):
            DropNetPruner(net, example)
    with pytest.raises(ValueError, match=r"The network failed on example_input \(\(2, 5\), torch.float32\): RuntimeError: "
                       r"mat1 and mat2 shapes cannot be multiplied"):  # fmt: skip
        DropNetPruner(net, torch.randn(2, 5))
    pruner = DropNetPruner(net, x[:2])
    for prune_ratio in (-0.5, 1, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match=r"prune_ratio must be a fraction in \[0, 1\)"):
            pruner.units_to_drop(prune_ratio)
    for drop_fraction in (0, -0.2, 1):
        with pytest.raises(ValueError, match=r"drop_fraction must be a fraction in \(0, 1\)"):
            pruner.units_to_drop(0.5, drop_fraction)
    for round_to in (0, -8, 2.5):
        with pytest.raises(ValueError, match=r"round_to must be a whole number, 1 or more"):
            pruner.choose(pruner.score(lambda: [x]), 2, round_to=round_to)
    with pytest.raises(ValueError, match=r"record\(\) fills \['units'\] itself"):
        pruner.record(units=16)
    assert pruner.record(accuracy=0.5)["units"] == 22


def test_round_to_keeps_every_layers_units_a_multiple(digits):
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10), nn.ReLU(),
                        nn.Linear(10, 3))  # fmt: skip
    x = torch.randn(30, 4)
    pruner = DropNetPruner(net, x[:2])
    scores = pruner.score(lambda: [x])
    drop = pruner.choose(scores, pruner.units_to_drop(0.8), "layer", 0, round_to=16)
    # 64 -> 48 and 40 -> 32 (rounded down: more than the round's share), 10 < 16 stays.
    assert {name: len(units) for name, units in drop.items()} == {"0": 16, "2": 8, "4": 0}
    lowest = np.argsort(scores["0"], kind="stable")[:16]
    assert sorted(drop["0"].tolist()) == sorted(lowest.tolist())
    X, y = digits
    clf = DropNetClassifier(round_to=8, prune_ratio=0.8, max_epochs=1, module__hidden_layer_sizes=(64, 40),
                            random_state=0).fit(X[:300], y[:300])  # fmt: skip
    for record in clf.pruning_history_:
        assert all(units % 8 == 0 for units in record["units_per_layer"].values()), record
    assert clf.pruning_history_[-1]["units"] <= 0.2 * 104 + 8


def test_round_to_meets_the_rounds_share_as_closely_as_the_multiples_allow(digits):
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(30, 4)
    pruner = DropNetPruner(net, x[:2])
    scores = pruner.score(lambda: [x])
    # 6 of 32 to drop, 3 a layer: rounding both down would keep 8 + 8 (16 dropped);
    # one layer keeps 16, so 8 are dropped, the nearest multiple total.
    drop = pruner.choose(scores, 6, "layer", 0, round_to=8)
    assert sorted(len(units) for units in drop.values()) == [0, 8]
    drop = pruner.choose(scores, 3, "layer", 0, round_to=8)
    assert [len(units) for units in drop.values()] == [0, 0]  # 3 is nearer to 0 than to 8
    X, y = digits
    for prune_ratio, kept in ((0.25, 24), (0.5, 16)):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Pruning stopped")
            clf = DropNetClassifier(module__hidden_layer_sizes=(16, 16), round_to=8, prune_ratio=prune_ratio,
                                    max_epochs=1, random_state=0).fit(X[:200], y[:200])  # fmt: skip
        assert clf.pruning_history_[-1]["units"] == kept, clf.pruning_history_


def test_a_round_to_that_leaves_nothing_to_remove_is_warned(digits):
    X, y = digits
    clf = DropNetClassifier(module__hidden_layer_sizes=(16, 8), round_to=32, prune_ratio=0.8, max_epochs=1,
                            random_state=0)  # fmt: skip
    with pytest.warns(UserWarning, match=r"Pruning stopped at 0% of the units removed, short of prune_ratio=0.8: "
                      r"round_to=32 keeps .* Units per layer: \{'layers.1': 16, 'layers.4': 8\}. Lower round_to."):  # fmt: skip
        clf.fit(X[:200], y[:200])
    assert [record["units"] for record in clf.pruning_history_] == [24]


def test_the_estimator_class_is_a_thin_layer():
    import inspect

    lines, _ = inspect.getsourcelines(DropNetClassifier)
    assert len(lines) < 450


def test_a_loop_that_never_records_stops_at_the_ratio_of_the_network_it_started_with():
    """The README's loop: no record, so the ratio counts from the units at the start."""
    torch.manual_seed(0)
    X = torch.randn(64, 4)
    sizes = []
    for records in (False, True):
        net = nn.Sequential(nn.Linear(4, 30), nn.ReLU(), nn.Linear(30, 20), nn.ReLU(), nn.Linear(20, 3))
        pruner = DropNetPruner(net, X[:2])
        if records:
            pruner.record()
        while n_drop := pruner.units_to_drop(prune_ratio=0.8, drop_fraction=0.2):
            pruner.remove(pruner.choose(pruner.score(lambda: [X]), n_drop, rng=np.random.default_rng(0)), restart="none")
        sizes.append(pruner.n_units)
    assert sizes == [10, 10]  # 20% of 50


def test_a_layer_concatenated_and_read_by_another_layer_before_its_activation_is_left_out():
    class GhostModule(nn.Module):
        """GhostNet's: [x1, cheap(x1)] before one activation, each part through an Identity."""

        def __init__(self):
            super().__init__()
            self.primary = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Identity())
            self.cheap = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.BatchNorm2d(4), nn.Identity())
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            x1 = self.primary(x)
            return self.out(torch.relu(torch.cat([x1, self.cheap(x1)], 1)).mean((2, 3)))

    structure = inspect_network(GhostModule().eval(), torch.randn(2, 3, 6, 6))
    # cheap's channels reach the ReLU only through the concatenation, at 4-7; primary's
    # also go into cheap's convolution before any activation.
    assert [(r.offset, r.width) for r in structure.probes["cheap.0"].readings] == [(4, 4)]
    assert structure.left_out["primary.0"].startswith("its output goes into a concatenation")


class _LinearNorm(nn.Module):
    """LeViT's: a Linear and a BatchNorm1d over its channels, the tokens folded into the batch."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear, self.bn = nn.Linear(n_in, n_out, bias=False), nn.BatchNorm1d(n_out)

    def forward(self, x):
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


class _LeViTStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.act, self.b = _LinearNorm(8, 16), nn.Hardswish(), _LinearNorm(16, 8)
        self.conv, self.head = nn.Conv2d(1, 6, 3, padding=1), nn.Linear(8 + 6, 3)

    def forward(self, x):
        tokens = self.b(self.act(self.a(x.reshape(len(x), 4, 8)))).mean(1)
        pixels = F.relu(self.conv(x.reshape(len(x), 1, 4, 8)).flatten(2)).mean(-1)  # (n, channels, positions)
        return self.head(torch.cat([tokens, pixels], 1))


def test_a_unit_is_followed_through_reshapes_that_keep_its_channel_in_place():
    """A Linear's units reach their activation through ``flatten(0, 1)``, a BatchNorm1d
    and ``reshape_as`` (LeViT's blocks), a convolution's through ``flatten(2)``: both
    were left out ("reaches no activation"); they are pruned, and removing their units
    computes what zeroing them computes."""
    torch.manual_seed(0)
    net, x = _LeViTStyle().eval(), torch.randn(16, 32)
    randomise_batchnorm(net)
    with pytest.warns(UnitRemovalWarning, match=r"layer 'b.linear' unpruned: its output reaches no activation"):
        pruner = DropNetPruner(net, x[:4])
    assert pruner.units_per_layer == {"a.linear": 16, "conv": 6}
    assert set(pruner.unpruned) == {"b.linear"}
    assert [group.name for group in pruner.check_removal(x)] == ["a.linear", "conv"]
    assert_removal_matches_masking(net, x, {"a.linear": [0, 5, 9], "conv": [1, 4]})
    assert (net.a.linear.out_features, net.a.bn.num_features, net.b.linear.in_features, net.conv.out_channels) == (13, 13, 13, 4)


class _MixFFN(nn.Module):
    """PVT-v2's and SegFormer's: a Linear over the tokens, a depthwise convolution over
    them laid out as an image, and GELU over the tokens again."""

    def __init__(self, channels, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels, hidden), nn.Linear(hidden, channels)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)

    def forward(self, tokens, size):
        image = self.fc1(tokens).transpose(1, 2).reshape(len(tokens), -1, *size)
        return self.fc2(F.gelu(self.dwconv(image).flatten(2).transpose(1, 2)))


class _TokensAndChannels(nn.Module):
    """Units moved between dimension 1 and the last on the way to their activation: a
    Mix-FFN; a Linear over tokens into a BatchNorm1d over channels (``transpose(1, 2)``);
    a convolution into a channels-last GELU through torchvision's ``Permute`` module."""

    def __init__(self):
        super().__init__()
        self.embed, self.mix = nn.Conv2d(1, 8, 3, padding=1), _MixFFN(8, 16)
        self.tokens, self.bn = nn.Linear(8, 12), nn.BatchNorm1d(12)
        self.conv, self.channels_last, self.act = nn.Conv2d(12, 6, 1), torchvision.ops.Permute([0, 2, 3, 1]), nn.GELU()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = self.embed(x.reshape(len(x), 1, 4, 8))
        tokens = x.flatten(2).transpose(1, 2)  # (n, positions, channels)
        tokens = tokens + self.mix(tokens, (4, 8))
        channels = F.relu(self.bn(self.tokens(tokens).transpose(1, 2)))  # (n, channels, positions)
        pixels = self.act(self.channels_last(self.conv(channels.reshape(len(x), -1, 4, 8))))
        return self.head(pixels.mean((1, 2)))


def test_a_unit_is_followed_through_a_transpose_that_moves_its_channel_to_its_activation():
    """The Mix-FFN's depthwise convolution reaches its GELU after ``flatten(2).transpose(1, 2)``,
    with its units on the last dimension; a Linear's units reach a BatchNorm1d and ReLU on
    dimension 1; a convolution's reach a channels-last GELU through a ``Permute`` module.
    All three were left out (the network had nothing to prune); they are scored and switched
    off along the dimension their units are on at the activation, and removing units
    computes what zeroing them computes."""
    torch.manual_seed(0)
    net, x = _TokensAndChannels().eval(), torch.randn(16, 32)
    randomise_batchnorm(net)
    with pytest.warns(UnitRemovalWarning, match="layer 'embed' unpruned"):
        pruner = DropNetPruner(net, x[:4])
    assert pruner.units_per_layer == {"mix.dwconv": 16, "tokens": 12, "conv": 6}
    probes = pruner.structure.probes
    assert [probes[name].channel_dim for name in ("mix.dwconv", "tokens", "conv")] == [-1, 1, -1]
    # The Linear before the depthwise convolution reaches no activation, but loses its
    # outputs with the convolution's units; they are switched off along its last dimension.
    assert pruner.structure.switch_offs["mix.fc1"].channel_dim == -1
    assert set(pruner.unpruned) == {"embed", "mix.fc2"}
    assert [group.name for group in pruner.check_removal(x)] == ["mix.dwconv", "tokens", "conv"]
    scores = pruner.score(lambda: [x])
    with torch.no_grad():  # the mean absolute GELU output of each filter, over samples and positions
        tokens = net.embed(x.reshape(len(x), 1, 4, 8)).flatten(2).transpose(1, 2)
        filters = F.gelu(net.mix.dwconv(net.mix.fc1(tokens).transpose(1, 2).reshape(len(x), -1, 4, 8)))
    torch.testing.assert_close(torch.as_tensor(scores["mix.dwconv"], dtype=torch.float32), filters.abs().mean((0, 2, 3)))
    assert {name: len(values) for name, values in scores.items()} == pruner.units_per_layer
    assert_removal_matches_masking(net, x, {"mix.dwconv": [0, 5, 9], "tokens": [2, 3], "conv": [1]})
    assert (net.mix.fc1.out_features, net.mix.dwconv.out_channels, net.mix.dwconv.groups, net.mix.fc2.in_features) == (13, 13, 13, 13)
    assert (net.tokens.out_features, net.bn.num_features, net.conv.in_channels, net.conv.out_channels, net.head.in_features) == (10, 10, 10, 5, 5)


@pytest.mark.parametrize(
    ("reorder", "channel_dim"),
    [
        (lambda y: y.permute(0, 2, 3, 1), -1),
        (lambda y: y.movedim(1, -1), -1),
        (lambda y: torch.transpose(y, 1, 3), -1),
        (lambda y: y.transpose(2, 3), 1),  # the positions swapped, the channels in place
        (lambda y: y.permute(0, 2, 3, 1).permute(0, 3, 1, 2), 1),
        (lambda y: y.permute(0, 2, 1, 3), None),  # the channels among the positions
        (lambda y: y.permute(1, 0, 2, 3), None),  # the samples moved
    ],
)
def test_a_reordering_of_dimensions_moves_a_convolutions_units_or_leaves_it_out(reorder, channel_dim):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)

        def forward(self, x):
            return F.relu(reorder(self.conv(x))).sum((1, 2, 3))

    structure = inspect_network(Net().eval(), torch.randn(2, 1, 7, 9))
    if channel_dim is None:
        assert "conv" not in structure.probes
        assert "permute' first, which does not keep its channels whole and in place" in structure.left_out["conv"]
    else:
        assert structure.probes["conv"].channel_dim == channel_dim


class _DualPathBlock(nn.Module):
    """timm's DPN block: one tensor carries a residual path (its first ``n`` channels)
    and a dense path (the rest); each block adds to the first and concatenates to the second."""

    def __init__(self, n_in, n, grow, project):
        super().__init__()
        self.n = n
        self.proj = nn.Conv2d(n_in, n + 2 * grow, 1) if project else None
        self.a, self.c = nn.Conv2d(n_in, 5, 1), nn.Conv2d(5, n + grow, 3, padding=1)

    def forward(self, x):
        paths = x if self.proj is None else self.proj(x)
        out = self.c(F.relu(self.a(x)))
        return torch.cat([paths[:, : self.n] + out[:, : self.n], paths[:, self.n :], out[:, self.n :]], 1)


def test_a_dual_path_network_whose_concatenations_torch_pruning_cannot_size_is_pruned():
    """Seven DPN blocks: Torch-Pruning 1.6 cannot tell the size of the slices its last
    concatenations join (its shape inference stops at a depth), and failed on them with
    "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'" where its code
    means to leave them unmapped; the network was refused ("Torch-Pruning cannot trace"),
    as was timm's dpn68. The concatenations are left unmapped, each block's first
    convolution is pruned, and removing its units computes what zeroing them computes."""
    torch.manual_seed(0)
    blocks = [_DualPathBlock(8, 4, 2, project=True)] + [_DualPathBlock(10 + 2 * i, 4, 2, project=False) for i in range(6)]
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), *blocks, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(22, 3))
    x = torch.randn(8, 1, 6, 6)
    with pytest.warns(UnitRemovalWarning, match="layer '2.c' unpruned"):
        pruner = DropNetPruner(net.eval(), x[:2])
    assert pruner.units_per_layer == {"0": 8, **{f"{i}.a": 5 for i in range(2, 9)}}
    assert [group.name for group in pruner.check_removal(x)] == list(pruner.units_per_layer)
    assert_removal_matches_masking(net, x, {"0": [1, 6], "2.a": [0], "8.a": [2, 4]})
    assert (net[0].out_channels, net[2].a.out_channels, net[8].a.out_channels, net[8].c.in_channels) == (6, 4, 3, 3)


class _PartialAttention(nn.Module):
    """SHViT's single-head attention over the first channels, the rest passed by, then
    the block's MLP. The attention's output is reshaped back to an image."""

    def __init__(self, dim=8, part=4, qk=4):
        super().__init__()
        self.part, self.qk = part, qk
        self.qkv, self.proj = nn.Conv2d(part, 2 * qk + part, 1), nn.Conv2d(dim, dim, 1)
        self.fc1, self.fc2 = nn.Conv2d(dim, 12, 1), nn.Conv2d(12, dim, 1)

    def forward(self, x):
        n, _, h, w = x.shape
        attended, passed = torch.split(x, [self.part, x.shape[1] - self.part], 1)
        q, k, v = self.qkv(attended).flatten(2).split([self.qk, self.qk, self.part], 1)
        weights = ((q.transpose(-1, -2) @ k) * self.qk**-0.5).softmax(-1)
        attended = (v @ weights.transpose(-1, -2)).reshape(n, self.part, h, w)
        x = x + self.proj(torch.cat([attended, passed], 1))
        return x + self.fc2(torch.relu(self.fc1(x)))


def test_a_reshape_torch_pruning_sizes_at_zero_channels_is_left_unmapped_and_the_network_pruned():
    """Torch-Pruning 1.6 infers 0 channels after the attention's reshape and divides by
    them ("ZeroDivisionError: integer division or modulo by zero"): the network, as
    timm's SHViT, was refused ("Torch-Pruning cannot trace"). The reshape is left
    unmapped, the MLPs are pruned, and the stem, whose channels the attention splits at
    a fixed place, is refused by the removal check with the reason."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), _PartialAttention(), _PartialAttention(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()  # fmt: skip
    x = torch.randn(8, 1, 6, 6)
    with pytest.warns(UnitRemovalWarning, match="layer '2.qkv' unpruned: its output goes into a split"):
        pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {"0": 8, "2.fc1": 12, "3.fc1": 12}
    with pytest.warns(UnitRemovalWarning, match="layer '0' unpruned: removing its units does not match switching"):
        assert [group.name for group in pruner.check_removal(x)] == ["2.fc1", "3.fc1"]
    assert_removal_matches_masking(net, x, {"2.fc1": [0, 7], "3.fc1": [3]})
    assert (net[2].fc1.out_channels, net[2].fc2.in_channels, net[3].fc1.out_channels) == (10, 10, 11)


class _MixedConv(nn.Module):
    """timm's MixedConv2d (MixNet): the channels split into parts of the sizes it holds,
    each part through a depthwise convolution of its own kernel size, joined again."""

    def __init__(self, splits, as_tuple=False):
        super().__init__()
        self.splits = tuple(splits) if as_tuple else list(splits)
        self.parts = nn.ModuleList(nn.Conv2d(n, n, 2 * k + 1, padding=k, groups=n) for k, n in enumerate(splits))

    def forward(self, x):
        return torch.cat([conv(part) for conv, part in zip(self.parts, torch.split(x, self.splits, 1))], 1)


def _mixnet(as_tuple=False):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 9, 1), nn.BatchNorm2d(9), nn.ReLU(), _MixedConv([5, 4], as_tuple), nn.BatchNorm2d(9), nn.ReLU(),
        nn.Conv2d(9, 7, 1), nn.ReLU(), _MixedConv([2, 3, 2], as_tuple), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(7, 3),
    ).eval()  # fmt: skip


@pytest.mark.parametrize("as_tuple", [False, True], ids=["list", "tuple"])
def test_units_split_into_parts_of_held_sizes_are_removed_from_the_right_part_and_the_sizes_follow(as_tuple):
    """Torch-Pruning 1.6 maps a split's parts to its consumers in the order it found
    them, backwards: removing a unit of the first part took a channel of the last
    part's convolution out. And the sizes a module holds for torch.split (timm's
    MixedConv2d's list, or a tuple) stayed as they were, so the smaller
    network failed ("split_with_sizes expects split_sizes to sum exactly to 9"): both
    layers were refused by the removal check, as were 24 of timm's mixnet_s's 38. Now
    each unit leaves the part it is in, and the sizes follow."""
    net, x = _mixnet(as_tuple), torch.randn(8, 1, 6, 6)
    pruner = DropNetPruner(net, x[:2])
    assert [group.name for group in pruner.check_removal(x)] == ["0", "6"]
    group = next(group for group in pruner.units if group.name == "0")
    consumers = {name: (idxs.tolist(), root.tolist()) for name, idxs, root in group.consumers}
    assert consumers["3.parts.0"] == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    assert consumers["3.parts.1"] == ([0, 1, 2, 3], [5, 6, 7, 8])
    assert_removal_matches_masking(net, x, {"0": [1, 6, 7], "6": [0, 5]})
    assert list(net[3].splits) == [4, 2] and list(net[8].splits) == [1, 3, 1]
    assert type(net[3].splits) is (tuple if as_tuple else list)
    assert [conv.in_channels for conv in net[8].parts] == [1, 3, 1]


def test_a_split_by_sizes_no_module_holds_is_refused_by_the_removal_check():
    """Sizes made anew at each call cannot follow the channels removed: the smaller
    network fails, and the layer is left out with that reason, not pruned wrongly."""

    class Split(_MixedConv):
        def forward(self, x):
            return torch.cat([conv(part) for conv, part in zip(self.parts, torch.split(x, [5, 4], 1))], 1)

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 9, 1), nn.ReLU(), Split([5, 4]), nn.Conv2d(9, 6, 1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 36, 3),
    ).eval()  # fmt: skip
    x = torch.randn(8, 1, 6, 6)
    pruner = DropNetPruner(net, x[:2])
    with pytest.warns(UnitRemovalWarning, match="layer '0' unpruned: .*split_with_sizes expects split_sizes to sum"):
        assert [group.name for group in pruner.check_removal(x)] == ["3"]


class _LayerScaled(nn.Module):
    """A residual block scaled by a learned per-channel parameter (a layer scale, as in
    ConvNeXt, CaiT and EfficientFormer), which the network uses directly."""

    def __init__(self):
        super().__init__()
        self.stem, self.conv = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        return self.head(F.relu(x + self.gamma * self.conv(x)).mean((2, 3)))


def test_a_layer_scale_coupled_to_a_group_loses_the_units_channels_with_it():
    """Torch-Pruning cuts the layer scale's ``gamma`` with the residual stream's channels.
    The surgery handed it, a parameter, to the weight-norm check, which failed on it:
    the removal check refused every such group ("the smaller network fails:
    AttributeError: 'Parameter' object has no attribute '_forward_pre_hooks'"), here the
    only one, and in timm's EfficientFormer, EfficientFormerV2 and SwiftFormer one each."""
    torch.manual_seed(0)
    x = torch.randn(8, 1, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(_LayerScaled().eval(), x[:2])
        assert [group.name for group in pruner.check_removal(x)] == ["stem"]
    net = assert_removal_matches_masking(_LayerScaled(), x, {"stem": [1, 5]})
    assert (net.stem.out_channels, net.conv.in_channels, net.conv.out_channels, tuple(net.gamma.shape)) == (6, 6, 6, (6, 1, 1))


def test_a_classifier_convolution_flattened_into_the_output_is_an_output_layer_not_a_layer_left_out():
    """DLA's and SqueezeNet's heads: a 1x1 convolution gives the class scores through
    pooling and a flatten. It was named as left unpruned (DLA) or scored and then refused
    by the removal check (SqueezeNet); the flatten now leads to the output, so it is an
    output layer, as a final Linear is."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 3, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(net, torch.randn(2, 1, 6, 6))
    assert pruner.units_per_layer == {"0": 8}
    assert pruner.unpruned == {}
    assert pruner.structure.output_layers == {"2"}


class _ClassTokenSplit(nn.Module):
    """CvT's attention: the class token split off the tokens, the image tokens through
    convolutions, the class token joined to each result again."""

    def __init__(self, dim=8):
        super().__init__()
        self.embed, self.head = nn.Linear(4, dim), nn.Linear(2 * dim, 3)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.key, self.value = nn.Conv2d(dim, dim, 3, padding=1, groups=dim), nn.Conv2d(dim, dim, 1)
        self.fc1, self.fc2 = nn.Linear(dim, 12), nn.Linear(12, dim)

    def forward(self, x):  # x: (samples, 16, 4), the tokens of a 4 x 4 image
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), torch.relu(self.embed(x))], 1)
        cls, image = torch.split(tokens, [1, 16], 1)
        image = image.transpose(1, 2).reshape(len(x), -1, 4, 4)
        key = torch.cat([cls, self.key(image).flatten(2).transpose(1, 2)], 1)
        value = torch.cat([cls, self.value(image).flatten(2).transpose(1, 2)], 1)
        mixed = key + value
        mixed = mixed + self.fc2(F.gelu(self.fc1(mixed)))
        return self.head(torch.cat([mixed[:, 0], mixed[:, 1:].mean(1)], 1))


def test_a_split_with_more_consumers_than_parts_is_traced():
    """Torch-Pruning 1.6 sizes the k-th consumer of a split it found by the k-th part, and
    failed ("IndexError: list index out of range") where the class token split off the
    tokens goes to two concatenations: Hugging Face transformers' CvT was refused with
    "Torch-Pruning cannot trace". Each consumer is sized by the part it reads."""
    torch.manual_seed(0)
    net, x = _ClassTokenSplit().eval(), torch.randn(8, 16, 4)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {"embed": 8, "fc1": 12}
    assert [group.name for group in pruner.check_removal(x)] == ["fc1"]
    assert_removal_matches_masking(net, x, {"fc1": [0, 5]})
    assert (net.fc1.out_features, net.fc2.in_features) == (10, 10)


def test_a_layer_torch_pruning_has_no_node_for_is_named_with_the_reason():
    """A layer whose output autograd does not connect to the network's output (here a
    table computed under no_grad; Swin V2's position bias MLP, which reads constant
    coordinates, in Hugging Face transformers) has no node in Torch-Pruning's graph, and
    the reason said only that Torch-Pruning "cannot follow its units" ("ValueError:
    Module ... is not in the dependency graph")."""

    class Biased(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("coords", torch.randn(5, 2))
            self.bias_fc1, self.bias_fc2 = nn.Linear(2, 6), nn.Linear(6, 1)
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x):  # x: (samples, 5 tokens, 4)
            with torch.no_grad():
                bias = self.bias_fc2(torch.relu(self.bias_fc1(self.coords)))
            return self.fc2(torch.relu(self.fc1(x)) + bias).mean(1)

    torch.manual_seed(0)
    with pytest.warns(UnitRemovalWarning, match="'bias_fc1' unpruned: Torch-Pruning, which traces the network back"):
        pruner = DropNetPruner(Biased().eval(), torch.randn(2, 5, 4))
    assert pruner.units_per_layer == {"fc1": 8}


def test_a_concatenation_is_mapped_again_only_after_its_branches_change(monkeypatch):
    """Torch-Pruning maps every concatenation of the graph again before each group it
    builds; where none of a concatenation's branches lost channels since, the mapping
    comes out the same, and through DenseNet's concatenations it was most of a surgery
    (torchvision's densenet121: 3.5 s, now 1.5 s, for the same pruned weights). Here the
    first group removed (grow2) changes the last concatenation only, so only that one is
    mapped again before the second; and the network is the masked one."""
    from torch_pruning.dependency import index_mapping

    from sklearn_dropnet.pruning._surgery import remove_units

    mapped = []
    update = index_mapping.update_concat_index_mapping

    def counted(graph, node):
        mapped.append((id(node), len(node.inputs)))
        return update(graph, node)

    torch.manual_seed(0)
    net, x = randomise_batchnorm(_DenseLayers(CONCATENATIONS["torch.cat"])).eval(), torch.randn(8, 3, 8, 8)
    expected = assert_removal_matches_masking(copy.deepcopy(net), x, {"grow2": [0], "stem": [1]})
    monkeypatch.setattr(index_mapping, "update_concat_index_mapping", counted)
    remove_units(net, x, {"grow2": [0], "stem": [1]})
    counts = {inputs: mapped.count(inputs) for inputs in mapped}
    assert sorted(counts.values()) == [1, 2]  # first concatenation: once; the last: again after grow2
    assert max(counts, key=counts.get)[1] == 3  # the last joins three branches
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value)


def test_a_layer_feeding_an_rnn_is_left_out_naming_the_rnn():
    """Torch-Pruning maps its channels past the layer's width; the reason named only
    splits, concatenations and reshapes, which the network has none of."""
    torch.manual_seed(0)
    x = torch.randn(64, 6, 5)
    net = IntoRecurrent(nn.RNN)
    net.rnn = nn.RNN(12, 16, batch_first=True)  # more hidden units than inputs
    net.hidden = nn.Linear(16, 8)
    with pytest.warns(UnitRemovalWarning, match=r"layer 'fc' unpruned: .*its mapping into the RNN 'rnn', whose gates "
                      r"Torch-Pruning 1.6 traces one by one, or through a split"):  # fmt: skip
        pruner = DropNetPruner(net, x[:2])
    assert "fc" in pruner.unpruned and pruner.units_per_layer == {"hidden": 8}
