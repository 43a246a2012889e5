"""The pieces under DropNetClassifier: finding, scoring, choosing, removing units."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_dropnet.pruning._probes import inspect_network
from sklearn_dropnet.pruning._sites import Site
from sklearn_dropnet.pruning._surgery import find_unit_groups, remove_units
from sklearn_dropnet.pruning._unit_scores import (
    collect_activation_statistics,
    score_units,
)
from sklearn_dropnet.pruning._unit_selection import _layer_quotas, choose_units_to_drop


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 8),
        nn.ReLU(),
        nn.Linear(8, 5),
        nn.BatchNorm1d(5),
        nn.Dropout(0.1),
        nn.Tanh(),
        nn.Linear(5, 3),
    )


class Residual(nn.Module):
    """conv -> bn -> relu, then two blocks sharing the stream by in-place add."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(6)
        self.stem_act = nn.ReLU()
        self.inner = nn.Conv2d(6, 4, 3, padding=1)
        self.inner_act = nn.ReLU()
        self.outer = nn.Conv2d(4, 6, 3, padding=1)
        self.outer_bn = nn.BatchNorm2d(6)
        self.block_act = nn.ReLU()
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        x = self.stem_act(self.stem_bn(self.stem(x)))
        out = self.outer_bn(self.outer(self.inner_act(self.inner(x))))
        out += x
        out = self.block_act(out)
        return self.head(out.mean(dim=(2, 3)))


def test_inspect_network_finds_hidden_layers_and_output_layer():
    structure = inspect_network(mlp(), torch.randn(4, 6))
    assert set(structure.probes) == {"0", "2"}
    assert structure.probes["0"].activation == Site("1", 0)
    # Through BatchNorm and Dropout to the Tanh module.
    assert structure.probes["2"].activation == Site("5", 0)
    assert structure.output_layers == {"6"}


def test_a_functional_activation_is_a_probe():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = nn.Linear(4, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.out(torch.relu(self.hidden(x)))

    structure = inspect_network(Functional(), torch.randn(2, 4))
    assert structure.probes["hidden"].activation == Site("<root>: relu", 0, function=True)
    assert structure.output_layers == {"out"}


def test_residual_stream_is_one_group_with_both_sides_scored():
    net = Residual().eval()
    x = torch.randn(3, 1, 8, 8)
    structure = inspect_network(net, x)
    assert set(structure.probes) == {"stem", "inner", "outer"}
    groups = {g.name: g for g in find_unit_groups(net, x, structure)}
    # "outer" adds into the stem's channels: one group, scored by both layers.
    assert set(groups) == {"stem", "inner"}
    assert {m[0] for m in groups["stem"].members} == {"stem", "outer"}
    assert groups["stem"].size == 6


def test_remove_units_shrinks_coupled_layers_and_keeps_the_rest():
    net = Residual().eval()
    x = torch.randn(3, 1, 8, 8)
    before = net(x)
    structure = inspect_network(net, x)
    remove_units(net, x, {"stem": [0, 5], "inner": [1]})
    assert net.stem.out_channels == 4 and net.stem_bn.num_features == 4
    assert net.outer.out_channels == 4 and net.outer_bn.num_features == 4
    assert net.inner.in_channels == 4 and net.inner.out_channels == 3
    assert net.outer.in_channels == 3
    assert net.head.in_features == 4 and net.head.out_features == 2
    assert net(x).shape == before.shape
    assert structure.output_layers == {"head"}


def test_pruned_weights_are_the_surviving_rows():
    net = mlp()
    weight = net[0].weight.detach().clone()
    next_weight = net[2].weight.detach().clone()
    remove_units(net, torch.randn(2, 6), {"0": [1, 4, 7]})
    keep = [0, 2, 3, 5, 6]
    torch.testing.assert_close(net[0].weight, weight[keep])
    torch.testing.assert_close(net[2].weight, next_weight[:, keep])


def test_activation_statistics_match_a_direct_computation():
    net = mlp().eval()
    x = torch.randn(50, 6)
    structure = inspect_network(net, x)
    stats = collect_activation_statistics(
        net, [x[:20], x[20:]], structure.probes, wanted=("mean_abs", "nonzero_fraction", "matrix")
    )
    with torch.no_grad():
        hidden = torch.relu(net[0](x))
        second = net[5](net[3](net[2](hidden)))
    np.testing.assert_allclose(stats.mean_abs("0"), hidden.abs().mean(0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(stats.mean_abs("2"), second.abs().mean(0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(stats.nonzero_fraction("0"), (hidden != 0).float().mean(0).numpy())
    np.testing.assert_allclose(stats.matrix("2"), second.numpy(), rtol=1e-6)


def test_filter_statistics_average_each_sample_over_positions_then_samples():
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 25, 2)).eval()
    x = torch.randn(12, 2, 5, 5)
    probes = inspect_network(net, x).probes
    wanted = ("mean_abs", "nonzero_fraction", "matrix")
    stats = collect_activation_statistics(net, [x[:5], x[5:]], probes, wanted=wanted)
    with torch.no_grad():
        maps = torch.relu(net[0](x)).double()  # (12, 3, 5, 5)
    np.testing.assert_allclose(stats.mean_abs("0"), maps.abs().mean(dim=(0, 2, 3)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(stats.nonzero_fraction("0"), (maps != 0).double().mean(dim=(0, 2, 3)).numpy())
    np.testing.assert_allclose(stats.matrix("0"), maps.mean(dim=(2, 3)).numpy(), rtol=1e-5)


def test_only_the_wanted_statistics_are_gathered():
    net = mlp().eval()
    x = torch.randn(8, 6)
    probes = inspect_network(net, x).probes
    stats = collect_activation_statistics(net, [x], probes)
    assert set(stats.abs_sum) == {"0", "2"} and stats.nonzero_sum == {}
    assert all(matrices == [] for matrices in stats.matrices.values())
    stats = collect_activation_statistics(net, [x], probes, wanted=("nonzero_fraction",))
    assert stats.abs_sum == {} and set(stats.nonzero_sum) == {"0", "2"}
    with pytest.raises(ValueError, match="unknown activation statistics: \\['mean'\\]"):
        collect_activation_statistics(net, [x], probes, wanted=("mean",))


def test_filter_score_averages_spatial_positions():
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 2))
    x = torch.randn(10, 1, 4, 4)
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    scores = score_units(net, groups, structure.probes, "activation", lambda: [x], None)
    with torch.no_grad():
        expected = torch.relu(net[0](x)).abs().mean(dim=(0, 2, 3)).numpy()
    np.testing.assert_allclose(scores["0"], expected, rtol=1e-5)


def test_scores_l1_max_and_callable():
    net = mlp().eval()
    x = torch.randn(30, 6)
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    l1 = score_units(net, groups, structure.probes, "l1", None, None)
    np.testing.assert_allclose(l1["0"], net[0].weight.abs().sum(1).detach().numpy(), rtol=1e-6)
    act = score_units(net, groups, structure.probes, "activation", lambda: [x], None)
    high = score_units(net, groups, structure.probes, "max", lambda: [x], None)
    np.testing.assert_allclose(high["2"], -act["2"])
    custom = score_units(
        net, groups, structure.probes, lambda layer, a: a.std(axis=0), lambda: [x], None
    )
    assert custom["0"].shape == (8,)
    with pytest.raises(ValueError, match="one score per unit"):
        score_units(net, groups, structure.probes, lambda layer, a: a, lambda: [x], None)


def test_layer_quotas_split_in_proportion_and_keep_one_unit():
    assert _layer_quotas([100, 50], 30).tolist() == [20, 10]
    assert _layer_quotas([3, 3], 10).tolist() == [2, 2]
    assert _layer_quotas([10, 5, 1], 7).sum() == 7


def test_layer_quotas_leave_over_what_a_layer_cannot_take():
    # A layer in steps of 32 cannot take its 12.7; the other takes its own
    # 6.3 rounded up, not the whole round.
    assert _layer_quotas([32, 64], 19, steps=[1, 32]).tolist() == [7, 0]
    # A layer at its floor leaves its share over too.
    assert _layer_quotas([20, 10], 15, floors=[1, 10], steps=[1, 1]).tolist() == [10, 0]


def test_global_scope_normalises_layer_scales():
    rng = np.random.default_rng(0)
    # Layer "b" has 100x smaller activations but the same relative spread.
    a = np.linspace(1, 2, 10) * 100
    b = np.linspace(1, 2, 10)
    raw = choose_units_to_drop({"a": a, "b": b}, 6, "global_raw", rng)
    normalised = choose_units_to_drop({"a": a, "b": b}, 6, "global", rng)
    assert len(raw["a"]) == 0 and len(raw["b"]) == 6
    assert len(normalised["a"]) == 3 and len(normalised["b"]) == 3
    assert normalised["a"].tolist() == [0, 1, 2]


def test_global_scope_never_empties_a_layer():
    drop = choose_units_to_drop({"a": np.zeros(4), "b": np.ones(4)}, 5, "global_raw", np.random.default_rng(0))
    assert len(drop["a"]) == 3 and len(drop["b"]) == 2


def test_ties_are_broken_at_random():
    picks = {
        tuple(choose_units_to_drop({"a": np.zeros(10)}, 1, "layer", np.random.default_rng(seed))["a"])
        for seed in range(20)
    }
    assert len(picks) > 3


def test_a_unit_group_mapped_to_more_positions_than_the_network_has_is_refused(monkeypatch):
    """Through some reshapes (timm's CoAtNet) Torch-Pruning maps a layer's units to ever
    longer index lists until memory runs out; a step longer than the bound refuses the
    layer with the reason instead. Shown here with a bound made small enough for a
    flatten, whose conv units are 4 x 64 input positions of the Linear."""
    from torch_pruning.dependency.group import Group

    from sklearn_dropnet.exceptions import UnitRemovalWarning
    from sklearn_dropnet.pruning import DropNetPruner, _surgery

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 2)
    ).eval()
    add_dep = Group.add_dep
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        assert DropNetPruner(net, torch.randn(2, 1, 8, 8)).units_per_layer == {"0": 4, "3": 16}
    monkeypatch.setattr(_surgery, "_BOUND_FACTOR", 0)
    monkeypatch.setattr(_surgery, "_BOUND_FLOOR", 16)
    with pytest.warns(UnitRemovalWarning) as caught:
        pruner = DropNetPruner(net, torch.randn(2, 1, 8, 8))
    assert pruner.units_per_layer == {"3": 16}
    assert "it maps them to 256 channel positions of" in pruner.unpruned["0"]
    assert "more than the network's tensors have (16 at most)" in str(caught[0].message)
    assert Group.add_dep is add_dep  # Torch-Pruning's own again


def test_a_unit_group_mapped_to_more_positions_in_all_than_the_bound_is_refused(monkeypatch):
    """Each step below the bound, the steps together above it (torchvision's maxvit_t held
    13 GiB after fifteen minutes): the layer is refused with the reason. Shown with bounds
    made small enough for the flatten of the test above."""
    from sklearn_dropnet.exceptions import UnitRemovalWarning
    from sklearn_dropnet.pruning import DropNetPruner, _surgery

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 2)
    ).eval()
    monkeypatch.setattr(_surgery, "_BOUND_FACTOR", 0)
    monkeypatch.setattr(_surgery, "_BOUND_FLOOR", 256)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        assert DropNetPruner(net, torch.randn(2, 1, 8, 8)).units_per_layer == {"0": 4, "3": 16}
    monkeypatch.setattr(_surgery, "_POSITIONS_IN_ALL", 1)
    with pytest.warns(UnitRemovalWarning, match="channel positions in all, of the modules they reach, more than 256"):
        pruner = DropNetPruner(net, torch.randn(2, 1, 8, 8))
    assert pruner.units_per_layer == {"3": 16}
    assert "0" in pruner.unpruned


class _RunawayGroup(BaseException):
    """Raised past the steps a group may take; a BaseException, so that no
    ``except Exception`` of the library swallows it."""


def test_a_unit_group_going_round_a_cycle_of_the_graph_is_cut_short(monkeypatch):
    """Through MaxViT's attention (query and key meet in an einsum, then a position
    bias is added) Torch-Pruning goes round the same cycle of the graph with new
    indices each step, and each step compares itself with every earlier one: a
    two-block MaxViT was still being traced after ten minutes; this one attention
    took 14,902 steps and 24 s. The group is now cut short (at 4,096 steps plus 4 per
    dependency of the graph, or here at 16 times the one-step bound of positions in
    all: after 3,873 steps since the query-key-value chunk's parts are mapped in
    order, 4,143 before), and the layers come out as before. The pruner asks only
    whether the attention's layers feed another layer, and stops at the first step
    that does; the whole group, as a layer the pruner scores would build, is cut short."""
    from torch_pruning.dependency.group import Group
    from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

    from sklearn_dropnet.exceptions import UnitRemovalWarning
    from sklearn_dropnet.pruning import DropNetPruner, _surgery

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(4, 16)
            self.attn = RelativePositionalMultiHeadAttention(16, 8, 4)
            self.fc, self.head = nn.Linear(16, 16), nn.Linear(16, 3)

        def forward(self, x):
            h = self.attn(torch.relu(self.embed(x.reshape(-1, 1, 4, 4))))
            return self.head(torch.relu(self.fc(h.mean((1, 2)))))

    add_dep, steps = Group.add_dep, []

    def counted(group, dep, idxs):
        steps.append(len(group) + 1)
        if len(group) >= 10_000:
            raise _RunawayGroup(f"{len(group)} steps")
        return add_dep(group, dep, idxs)

    monkeypatch.setattr(Group, "add_dep", counted)
    torch.manual_seed(0)
    net, x = Net().eval(), torch.randn(2, 16)
    with pytest.warns(UnitRemovalWarning):
        pruner = DropNetPruner(net, x)
    assert pruner.units_per_layer == {"embed": 16, "fc": 16}
    assert set(pruner.unpruned) == {"attn.to_qkv", "attn.merge"}
    assert "goes into a split ('attn: chunk')" in pruner.unpruned["attn.to_qkv"]
    assert max(steps) < 4096
    steps.clear()
    graph = _surgery._dependency_graph(net, x)
    with pytest.raises(_surgery._MappingTooLarge, match="channel positions in all"):
        _surgery._pruning_group(graph, net.attn.to_qkv, list(range(net.attn.to_qkv.out_features)))
    assert 3000 < max(steps) < 5000


def test_a_retrace_does_not_ask_again_whether_a_layer_left_out_feeds_another(monkeypatch):
    """Whether a layer left out (here one that reaches no activation) feeds another layer
    is a question for Torch-Pruning's whole group, most of the trace's time in a Swin; it
    is asked when the pruner is built and its answer kept, not asked again at every round."""
    from sklearn_dropnet.pruning import DropNetPruner, _surgery

    asked = []
    feeds_a_layer = _surgery._feeds_a_layer
    monkeypatch.setattr(_surgery, "_feeds_a_layer", lambda graph, layer: asked.append(layer) or feeds_a_layer(graph, layer))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    with pytest.warns(UserWarning, match="'2' unpruned: its output reaches no activation"):
        pruner = DropNetPruner(net, torch.randn(2, 4))
    assert asked == [net[2]]
    reason = pruner.unpruned["2"]
    pruner.remove({"0": np.array([0]), "3": np.array([1])})
    assert asked == [net[2]]
    assert pruner.units_per_layer == {"0": 7, "3": 5}
    assert pruner.unpruned == {"2": reason}


def test_asking_whether_a_layer_feeds_another_stops_at_the_first_layer_it_reaches(monkeypatch):
    """The question needs only the first layer the group reaches: building the rest
    (through an attention's reshapes, most of EfficientFormerV2's trace) is skipped,
    and the answers stay what the whole group gives."""
    from torch_pruning.dependency.group import Group

    from sklearn_dropnet.pruning import _surgery

    steps = []
    add_dep = Group.add_dep
    monkeypatch.setattr(Group, "add_dep", lambda group, dep, idxs: steps.append(dep) or add_dep(group, dep, idxs))
    net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    graph = _surgery._dependency_graph(net, torch.randn(2, 4))
    whole = _surgery._pruning_group(graph, net[0], list(range(8)))
    assert any(graph.is_in_channel_pruning_fn(item.dep.handler) and item.dep.target.module is net[1] for item in whole)
    steps_of_the_whole = len(steps)
    steps.clear()
    assert _surgery._feeds_a_layer(graph, net[0])
    assert 0 < len(steps) < steps_of_the_whole
    assert not _surgery._feeds_a_layer(graph, net[5])  # the output layer feeds none


def test_a_graphs_group_bounds_are_kept_until_a_group_is_pruned():
    """The bounds read every parameter of the network: once per graph, not once per
    group; pruning a group changes the parameters, and the bounds follow."""
    from sklearn_dropnet.pruning import _surgery

    net = nn.Sequential(nn.Linear(4, 5000), nn.ReLU(), nn.Linear(5000, 3))
    graph = _surgery._dependency_graph(net, torch.randn(2, 4))
    first = _surgery._bounds(graph)
    assert first[0] == 16 * 5000 and _surgery._bounds(graph) is first
    _surgery._prune(graph, _surgery._pruning_group(graph, net[0], list(range(4000))))
    assert net[0].out_features == 1000
    assert _surgery._bounds(graph) == (1 << 16, first[1], first[2])  # the floor, and the same graph


class _TwoBranchConcat(nn.Module):
    """Two convolutions concatenated, flattened into a Linear: Torch-Pruning's index
    mappings (the concat's offsets, the flatten's strides) are what its groups depend on."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 3, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(7 * 16, 10), nn.Linear(10, 3)

    def forward(self, x):
        x = torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], 1).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def test_a_group_looks_each_modules_pruner_up_once(monkeypatch):
    """Torch-Pruning looks a module's pruner up at every step of its channel inference
    (1.4 million times in fitting a small CoAtNet): inside a group, once per module, and
    the graph is left as Torch-Pruning made it."""
    import torch_pruning as tp

    from sklearn_dropnet.pruning import _surgery

    looked_up = []
    lookup = tp.DependencyGraph.get_pruner_of_module
    monkeypatch.setattr(
        tp.DependencyGraph, "get_pruner_of_module", lambda graph, module: looked_up.append(module) or lookup(graph, module)
    )
    torch.manual_seed(0)
    net = _TwoBranchConcat()
    graph = _surgery._dependency_graph(net, torch.randn(2, 1, 4, 4))
    assert len(looked_up) == len(set(looked_up))
    looked_up.clear()
    group = _surgery._pruning_group(graph, net.a, [0, 1])
    assert looked_up and len(looked_up) == len(set(looked_up))
    assert "get_pruner_of_module" not in vars(graph)
    assert {item.dep.target.module for item in group} >= {net.a, net.fc1}
    with _surgery._pruners_looked_up_once(graph):  # one inside another: the outer's lookups serve
        outer = graph.get_pruner_of_module
        with _surgery._pruners_looked_up_once(graph):
            assert graph.get_pruner_of_module is outer
        assert graph.get_pruner_of_module is outer
    assert "get_pruner_of_module" not in vars(graph)


def test_a_trace_computes_the_index_mappings_once_not_before_every_group(monkeypatch):
    """Torch-Pruning recomputes every reshape's and concat's index mapping before each
    group it builds (most of a Swin's or CoAtNet's trace); nothing is pruned during a
    trace, so the pruner maps once, and the groups still map the second branch's units
    past the first branch's channels. Removals, which change the channel counts between
    groups, map again before each group, and stay exact."""
    from torch_pruning.dependency import index_mapping

    from sklearn_dropnet.pruning import DropNetPruner

    calls = []
    update = index_mapping.update_index_mapping
    monkeypatch.setattr(index_mapping, "update_index_mapping", lambda graph: calls.append(graph) or update(graph))
    torch.manual_seed(0)
    net, x = _TwoBranchConcat(), torch.randn(8, 1, 4, 4)
    pruner = DropNetPruner(net, x)
    assert [group.name for group in pruner.units] == ["a", "b", "fc1"]
    assert len(calls) == 2  # building the graph, and once before its three groups
    consumers = {group.name: dict((name, idxs) for name, idxs, _ in group.consumers) for group in pruner.units}
    np.testing.assert_array_equal(consumers["b"]["fc1"], np.arange(4 * 16, 7 * 16))
    np.testing.assert_array_equal(consumers["a"]["fc1"], np.arange(0, 4 * 16))
    pruner.check_removal(x)  # so that remove() goes straight to the surgery
    calls.clear()
    pruner.remove({"a": np.array([0]), "b": np.array([2])})
    # The network and its rewind copy: each surgery builds a graph and maps before each
    # of its two groups (3), and the retrace maps twice, as the first trace did.
    assert len(calls) == 2 * 3 + 2
    assert [group.name for group in pruner.check_removal(x)] == ["a", "b", "fc1"]
    assert pruner.units_per_layer == {"a": 3, "b": 2, "fc1": 10}


class _CachedBias(nn.Module):
    """Adds a bias it computes from a parameter, cached in eval mode as timm's LeViT and
    EfficientFormer cache their attention biases (a tensor autograd computed)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 10)
        self.scale = nn.Parameter(torch.ones(1))
        self.cache = {}

    def train(self, mode=True):
        if mode:
            self.cache = {}
        return super().train(mode)

    def forward(self, x):
        if self.training:
            bias = self.scale * 0.1
        else:
            bias = self.cache.setdefault("bias", self.scale * 0.1)
        return self.fc2(torch.relu(self.fc1(x) + bias))


def test_a_network_caching_a_computed_tensor_is_copied_and_pruned(digits):
    """copy.deepcopy refused the cache ("Only Tensors created explicitly by the user ...
    support the deepcopy protocol"): the trace ran the network in eval mode with autograd."""
    from sklearn_dropnet import DropNetClassifier
    from sklearn_dropnet.pruning import DropNetPruner

    X, y = digits
    net = _CachedBias().eval()
    before = net(torch.as_tensor(X[:50]))  # the cache now holds a tensor with a grad_fn
    assert DropNetPruner(net, torch.as_tensor(X[:2])).units_per_layer == {"fc1": 16}
    torch.testing.assert_close(net(torch.as_tensor(X[:50])), before, rtol=0, atol=0)
    net(torch.as_tensor(X[:2]))
    clf = DropNetClassifier(module=net, prune_ratio=0.5, max_epochs=2, random_state=0).fit(X[:600], y[:600])
    assert clf.module_.fc1.out_features == 8 and not clf.unpruned_layers_


class _FocalModulation(nn.Module):
    """timm's FocalNet modulation: one 1x1 convolution split into query, context and
    gates; the context goes through depthwise convolutions, each level gated."""

    def __init__(self, dim=8, levels=2):
        super().__init__()
        self.dim, self.levels = dim, levels
        self.f = nn.Conv2d(dim, 2 * dim + levels + 1, 1)
        self.focal = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, groups=dim), nn.GELU()) for _ in range(levels)
        )
        self.h, self.proj = nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        q, ctx, gates = torch.split(self.f(x), (self.dim, self.dim, self.levels + 1), 1)
        context = 0
        for level, layer in enumerate(self.focal):
            ctx = layer(ctx)
            context = context + ctx * gates[:, level : level + 1]
        context = context + torch.nn.functional.gelu(ctx.mean((2, 3), keepdim=True)) * gates[:, self.levels :]
        return x + self.proj(q * self.h(context))  # in a residual block


def test_a_group_finds_its_steps_by_lookup_not_by_comparing_with_every_earlier_one(monkeypatch):
    """Torch-Pruning asks of each step whether the group holds it already by comparing
    it with every earlier step: quadratic in the group's length. Through FocalNet's
    modulations (about 7,000 steps a group) building the pruner took 162 s, 4 s by
    lookup. The groups are the ones Torch-Pruning builds, step for step, and its
    comparison is never run."""
    from torch_pruning.dependency.group import Group

    from sklearn_dropnet.pruning import _surgery

    compared = []
    has_pruning_op = Group.has_pruning_op
    monkeypatch.setattr(Group, "has_pruning_op", lambda *args: compared.append(1) or has_pruning_op(*args))
    torch.manual_seed(0)
    blocks = [_FocalModulation() for _ in range(3)]
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), *blocks).eval()
    x = torch.randn(2, 1, 6, 6)
    graph = _surgery._dependency_graph(net, x)
    group = _surgery._pruning_group(graph, net[0], list(range(8)))
    assert not compared
    plain = graph.get_pruning_group(net[0], graph.get_pruner_of_module(net[0]).prune_out_channels, list(range(8)))
    assert len(compared) >= 10  # Torch-Pruning's own way compares each step with the earlier ones
    steps = [(item.dep.target, item.dep.handler, list(item.idxs), list(item.root_idxs)) for item in group]
    assert steps == [(item.dep.target, item.dep.handler, list(item.idxs), list(item.root_idxs)) for item in plain]
