"""Filter pruning of convolutional networks: coupled layers, paper models, image data.

Most tests check one equivalence: removing units physically gives exactly
the output of the dense network with those units' post-activations zeroed
(:class:`sklearn_dropnet.pruning._oracle.UnitMask`). Every layer coupled to a
removed filter -- the BatchNorm after it, the next conv's input channels,
the ``Linear`` after a flatten, both sides of a residual add, a projection
shortcut, a concatenation -- has to lose exactly the matching slice for the
outputs to agree.
"""

import copy

import numpy as np
import pytest
import torch
import torch_pruning as tp
from removal_checks import assert_removal_matches_masking, randomise_batchnorm
from sklearn.model_selection import train_test_split
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.datasets import load_digits_images
from sklearn_dropnet.models import VGG, ModelB, ModelC, ResNet18
from sklearn_dropnet.pruning import DropNetPruner, OracleSelection
from sklearn_dropnet.pruning._network_cost import count_macs, count_parameters
from sklearn_dropnet.pruning._oracle import oracle_units_to_drop
from sklearn_dropnet.pruning._probes import inspect_network
from sklearn_dropnet.pruning._surgery import (
    _dependency_graph,
    _pruning_group,
    find_unit_groups,
    remove_units,
)
from sklearn_dropnet.pruning._unit_mask import UnitMask
from sklearn_dropnet.pruning._unit_scores import score_units
from sklearn_dropnet.pruning._unit_selection import choose_units_to_drop


def groups_of(net, x):
    return {g.name: g for g in find_unit_groups(net, x, inspect_network(net, x))}


def random_drop(groups, fraction, seed=0):
    """About ``fraction`` of every group's units, at random, at least one kept."""
    rng = np.random.default_rng(seed)
    return {
        name: np.sort(rng.choice(g.size, size=min(g.size - 1, max(1, round(fraction * g.size))), replace=False))
        for name, g in groups.items()
    }


# ----------------------------------------------------------------------
# Small networks, one coupled structure each
# ----------------------------------------------------------------------
class ConvBNFlattenLinear(nn.Module):
    """conv -> BN -> ReLU -> conv -> BN -> ReLU -> pool -> flatten -> Linear -> ReLU -> Linear."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()
        self.conv2, self.bn2, self.act2 = nn.Conv2d(6, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU()
        self.pool, self.flat = nn.MaxPool2d(2), nn.Flatten()
        self.fc1, self.act3 = nn.Linear(5 * 3 * 3, 7), nn.ReLU()
        self.fc2 = nn.Linear(7, 3)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.pool(self.act2(self.bn2(self.conv2(x))))
        return self.fc2(self.act3(self.fc1(self.flat(x))))


class Concat(nn.Module):
    """Two conv branches concatenated, then either a conv or flatten -> Linear."""

    def __init__(self, head="linear", dim=1):
        super().__init__()
        self.head_type, self.dim = head, dim
        self.a, self.a_bn, self.a_act = nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU()
        self.b, self.b_act = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()
        if head == "conv":
            self.c, self.c_act = nn.Conv2d(7, 5, 3, padding=1), nn.ReLU()
            self.head = nn.Linear(5, 2)
        else:
            self.flat = nn.Flatten()
            self.head = nn.Linear(7 * 4 * 4, 2)

    def forward(self, x):
        y = torch.cat([self.a_act(self.a_bn(self.a(x))), self.b_act(self.b(x))], dim=self.dim)
        if self.head_type == "conv":
            return self.head(self.c_act(self.c(y)).mean(dim=(2, 3)))
        return self.head(self.flat(y))


def test_batchnorm_next_conv_and_flatten_linear_follow_the_removed_filters():
    torch.manual_seed(0)
    net = randomise_batchnorm(ConvBNFlattenLinear())
    dense = copy.deepcopy(net)
    x = torch.randn(6, 2, 6, 6)
    assert set(groups_of(net, x)) == {"conv1", "conv2", "fc1"}
    assert_removal_matches_masking(net, x, {"conv1": [0, 4], "conv2": [1, 2], "fc1": [3]})
    assert net.conv1.out_channels == net.bn1.num_features == net.conv2.in_channels == 4
    assert net.conv2.out_channels == net.bn2.num_features == 3
    # The Linear after the flatten keeps exactly the 3x3 columns of filters 0, 3 and 4.
    columns = [c * 9 + k for c in (0, 3, 4) for k in range(9)]
    torch.testing.assert_close(net.fc1.weight, dense.fc1.weight[[0, 1, 2, 4, 5, 6]][:, columns])
    torch.testing.assert_close(net.bn2.running_var, dense.bn2.running_var[[0, 3, 4]])


def test_sync_batchnorm_is_followed_and_removed_with_its_filters():
    """A network converted for DistributedDataParallel (nn.SyncBatchNorm.convert_sync_batchnorm),
    used without a process group, as BatchNorm2d computes it."""
    torch.manual_seed(0)
    net = ConvBNFlattenLinear()
    net.bn1 = nn.SyncBatchNorm(6)
    randomise_batchnorm(net)
    x = torch.randn(6, 2, 6, 6)
    assert set(groups_of(net, x)) == {"conv1", "conv2", "fc1"}
    assert_removal_matches_masking(net, x, {"conv1": [0, 4], "conv2": [1]})
    assert net.conv1.out_channels == net.bn1.num_features == net.conv2.in_channels == 4


class ConvInstanceNorm(nn.Module):
    """conv -> InstanceNorm -> ReLU -> conv -> InstanceNorm -> torch.relu -> mean -> out."""

    def __init__(self, **norm):
        super().__init__()
        self.c1, self.n1, self.a1 = nn.Conv2d(2, 8, 3, padding=1), nn.InstanceNorm2d(8, **norm), nn.ReLU()
        self.c2, self.n2 = nn.Conv2d(8, 6, 3, padding=1), nn.InstanceNorm2d(6, **norm)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.n2(self.c2(self.a1(self.n1(self.c1(x))))))
        return self.out(x.mean(dim=(2, 3)))


@pytest.mark.parametrize("affine", [False, True], ids=["plain", "affine"])
@pytest.mark.parametrize("track_running_stats", [False, True], ids=["batch-stats", "running-stats"])
def test_instancenorm_before_the_activation_is_followed_and_removed_with_its_filters(affine, track_running_stats):
    torch.manual_seed(0)
    net = ConvInstanceNorm(affine=affine, track_running_stats=track_running_stats)
    with torch.no_grad():
        for norm in (net.n1, net.n2):
            if affine:
                norm.weight.uniform_(0.5, 1.5), norm.bias.normal_(0, 0.5)
            if track_running_stats:
                norm.running_mean.normal_(0, 0.5), norm.running_var.uniform_(0.5, 1.5)
    dense = copy.deepcopy(net)
    x = torch.randn(6, 2, 6, 6)
    assert set(groups_of(net, x)) == {"c1", "c2"}
    assert_removal_matches_masking(net, x, {"c1": [0, 4, 7], "c2": [1, 2]})
    assert net.n1.num_features == net.c2.in_channels == 5 and net.n2.num_features == net.out.in_features == 4
    if track_running_stats:
        torch.testing.assert_close(net.n1.running_var, dense.n1.running_var[[1, 2, 3, 5, 6]])
        torch.testing.assert_close(net.n2.running_mean, dense.n2.running_mean[[0, 3, 4, 5]])
    net.train()(x)  # training mode updates the running statistics: their sizes must match


def test_filter_scores_read_the_post_batchnorm_activation_and_average_residual_members():
    torch.manual_seed(0)
    net = randomise_batchnorm(ConvBNFlattenLinear()).eval()
    x = torch.randn(20, 2, 6, 6)
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    scores = score_units(net, groups, structure.probes, "activation", lambda: [x[:7], x[7:]], None)
    with torch.no_grad():
        expected = net.act1(net.bn1(net.conv1(x))).abs().mean(dim=(0, 2, 3))
    np.testing.assert_allclose(scores["conv1"], expected.numpy(), rtol=1e-5)

    # A residual stream's filter: the mean of its score in every layer adding into it.
    net = randomise_batchnorm(ResNet18(input_shape=(3, 8, 8), n_classes=2, width=4)).eval()
    x = torch.randn(6, 3, 8, 8)
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    scores = score_units(net, groups, structure.probes, "activation", lambda: [x], None)
    outputs = {}
    hooks = [
        net.stem[2].register_forward_hook(lambda m, i, o: outputs.__setitem__("stem", o)),
        net.layer1[0].relu2.register_forward_hook(lambda m, i, o: outputs.__setitem__("b0", o)),
        net.layer1[1].relu2.register_forward_hook(lambda m, i, o: outputs.__setitem__("b1", o)),
    ]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    expected = sum(outputs[k].abs().mean(dim=(0, 2, 3)) for k in ("stem", "b0", "b1")) / 3
    np.testing.assert_allclose(scores["stem.0"], expected.numpy(), rtol=1e-5)


def test_concat_then_conv():
    torch.manual_seed(0)
    net = randomise_batchnorm(Concat(head="conv"))
    x = torch.randn(5, 1, 4, 4)
    groups = groups_of(net, x)
    assert {name: g.size for name, g in groups.items()} == {"a": 3, "b": 4, "c": 5}
    assert_removal_matches_masking(net, x, {"a": [1], "b": [0, 3], "c": [2]})
    assert (net.a.out_channels, net.b.out_channels, net.c.in_channels) == (2, 2, 4)


@pytest.mark.parametrize("dim", [1, -3])
def test_concat_flatten_linear_is_fixed(dim):
    """Torch-Pruning 1.6 couples the branches of a concat that feeds flatten -> Linear.

    It checks that a concat joins channels by comparing the channel count
    with the next layer's input size, which behind the flatten is the
    Linear's in_features (channels x 16): the check fails, and the concat is
    treated as element-wise, so dropping filter i of branch b also drops
    filter i of branch a and the wrong Linear columns.
    """
    torch.manual_seed(0)
    net = randomise_batchnorm(Concat(head="linear", dim=dim))
    dense = copy.deepcopy(net)
    x = torch.randn(5, 1, 4, 4)
    groups = groups_of(net, x)
    # Each branch is a group of its own (unfixed, "b"'s group swallows "a").
    assert {name: g.size for name, g in groups.items()} == {"a": 3, "b": 4}
    assert [m[0] for m in groups["b"].members] == ["b"]

    assert_removal_matches_masking(net, x, {"b": [1, 3]})
    assert (net.a.out_channels, net.b.out_channels, net.head.in_features) == (3, 2, 5 * 16)
    kept = [0, 1, 2, 3 + 0, 3 + 2]  # concat channels that survive
    columns = [c * 16 + k for c in kept for k in range(16)]
    torch.testing.assert_close(net.head.weight, dense.head.weight[:, columns])

    assert_removal_matches_masking(net, x, {"a": [0]})
    assert (net.a.out_channels, net.b.out_channels, net.head.in_features) == (2, 2, 4 * 16)

    # Both branches in one call: the second group is taken from a graph whose
    # concat offsets changed when the first group was removed.
    net = copy.deepcopy(dense)
    assert_removal_matches_masking(net, x, {"a": [0, 2], "b": [3]})
    assert (net.a.out_channels, net.b.out_channels, net.head.in_features) == (1, 3, 4 * 16)


def test_unpatched_torch_pruning_gets_concat_flatten_linear_wrong():
    """Documents the upstream bug that ``_surgery`` works around."""
    torch.manual_seed(0)
    net = Concat(head="linear")
    x = torch.randn(5, 1, 4, 4)
    graph = tp.DependencyGraph().build_dependency(net, example_inputs=x)
    group = graph.get_pruning_group(net.b, tp.prune_conv_out_channels, [1])
    if net.a not in {item.dep.target.module for item in group}:
        pytest.skip("This Torch-Pruning handles concat -> flatten -> Linear itself; the workaround is inert.")
    fixed = _pruning_group(_dependency_graph(net, x), net.b, [1])
    assert net.a not in {item.dep.target.module for item in fixed}


def test_projection_and_identity_shortcuts_in_resnet18():
    torch.manual_seed(0)
    net = randomise_batchnorm(ResNet18(input_shape=(3, 16, 16), n_classes=4, width=4))
    x = torch.randn(4, 3, 16, 16)
    groups = groups_of(net, x)
    members = {name: {m[0] for m in g.members} for name, g in groups.items()}
    # The residual stream of each stage is one group, scored by every conv adding into it
    # (a projection shortcut's too: it reaches the block's activation through the add).
    assert members["stem.0"] == {"stem.0", "layer1.0.conv2", "layer1.1.conv2"}
    for stage in (2, 3, 4):
        assert members[f"layer{stage}.0.conv2"] == {
            f"layer{stage}.0.conv2", f"layer{stage}.0.shortcut.0", f"layer{stage}.1.conv2"
        }
    assert len(groups) == 4 + 8  # one stream group per stage + every block's conv1
    drop = random_drop(groups, 0.5)
    assert_removal_matches_masking(net, x, drop)
    for stage in (1, 2, 3, 4):
        for block in (0, 1):
            b = getattr(net, f"layer{stage}")[block]
            assert b.conv2.out_channels == b.bn2.num_features
            if isinstance(b.shortcut, nn.Sequential):  # projection: both sides of the add
                assert b.shortcut[0].out_channels == b.shortcut[1].num_features == b.conv2.out_channels
                assert b.shortcut[0].in_channels == b.conv1.in_channels
    assert net.layer1[0].conv2.out_channels == net.stem[0].out_channels == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: ModelB(input_shape=(1, 8, 8), n_classes=10, channels=(6, 5)),
        lambda: ModelC(input_shape=(3, 16, 16), n_classes=10, channels=(4, 4, 6, 6), hidden_layer_sizes=(8,)),
        lambda: VGG(input_shape=(3, 16, 16), n_classes=10, depth=11, width=1 / 16),
    ],
    ids=["ModelB", "ModelC", "VGG11"],
)
def test_paper_models_prune_exactly(make):
    torch.manual_seed(0)
    net = randomise_batchnorm(make())
    channels = net.features[0].in_channels
    size = 8 if channels == 1 else 16
    x = torch.randn(4, channels, size, size)
    assert_removal_matches_masking(net, x, random_drop(groups_of(net, x), 0.4))


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResNet18(input_shape=(3, 32, 32), n_classes=10, width=8),
        lambda: VGG(input_shape=(3, 32, 32), n_classes=10, depth=16, width=1 / 8),
    ],
    ids=["ResNet18", "VGG16"],
)
def test_80_percent_of_filters_removed_costs_under_10_percent_of_macs(make):
    torch.manual_seed(0)
    net = make().eval()
    dense = copy.deepcopy(net)
    x = torch.randn(2, 3, 32, 32)
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    n_dense = sum(g.size for g in groups)
    rng = np.random.default_rng(0)
    scores = {g.name: rng.random(g.size) for g in groups}
    remove_units(net, x, choose_units_to_drop(scores, round(0.8 * n_dense), "layer", rng))
    left = find_unit_groups(net, x, inspect_network(net, x))
    assert sum(g.size for g in left) / n_dense == pytest.approx(0.2, abs=0.01)
    assert net(x).shape == (2, 10)
    assert count_macs(net, x) <= 0.10 * count_macs(dense, x)
    assert count_parameters(net) <= 0.10 * count_parameters(dense)


class TwoBranches(nn.Module):
    """Two conv branches concatenated, pooled, flattened into the head (a class
    at the top level: the estimator keeps it, and must be picklable)."""

    def __init__(self):
        super().__init__()
        self.a, self.a_act = nn.Conv2d(1, 6, 3, padding=1), nn.ReLU()
        self.b, self.b_act = nn.Conv2d(1, 4, 5, padding=2), nn.ReLU()
        self.pool, self.flat, self.head = nn.MaxPool2d(2), nn.Flatten(), nn.Linear(10 * 16, 10)

    def forward(self, x):
        y = torch.cat([self.a_act(self.a(x)), self.b_act(self.b(x))], dim=1)
        return self.head(self.flat(self.pool(y)))


def test_dropnet_classifier_on_a_concat_network(digits):
    X, y = digits
    X = X.reshape(-1, 1, 8, 8)[:400]
    clf = DropNetClassifier(TwoBranches, prune_ratio=0.5, max_epochs=2, random_state=0).fit(X, y[:400])
    assert clf.pruning_history_[-1]["units_per_layer"] == {"a": 3, "b": 2}
    assert clf.module_.head.in_features == 5 * 16
    assert clf.predict(X[:5]).shape == (5,)


# ----------------------------------------------------------------------
# The oracle
# ----------------------------------------------------------------------
def test_oracle_drops_the_unit_whose_removal_costs_least():
    torch.manual_seed(0)
    net = ModelB(input_shape=(1, 8, 8), n_classes=3, channels=(4, 3)).eval()
    x, y = torch.randn(30, 1, 8, 8), torch.randint(0, 3, (30,))
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    criterion = nn.CrossEntropyLoss()
    losses = {}
    with torch.no_grad(), UnitMask(net, structure.probes, groups) as mask:
        for g in groups:
            for unit in range(g.size):
                mask.set({g.name: [unit]})
                losses[g.name, unit] = float(criterion(net(x), y))
    name, unit = min(losses, key=losses.get)
    drop = oracle_units_to_drop(net, x, y, 1)
    assert {k: v.tolist() for k, v in drop.items() if len(v)} == {name: [unit]}
    # Greedy, layer-wise: quotas are kept and every layer keeps a unit.
    drop = oracle_units_to_drop(net, x, y, 3, scope="layer")
    assert {k: len(v) for k, v in drop.items()} == {"features.0": 2, "features.3": 1}
    drop = oracle_units_to_drop(net, x, y, 5)
    assert all(len(drop[g.name]) < g.size for g in groups)


def test_the_oracle_plugs_in_as_the_estimators_scope(digits):
    X, y = digits
    clf = DropNetClassifier(
        ModelB, module__channels=(4, 4), max_epochs=2, reinit="none", random_state=0,
        scope=OracleSelection(max_samples=100), prune_ratio=0.5,
    ).fit(X.reshape(-1, 1, 8, 8)[:300], y[:300])  # fmt: skip
    assert [r["fraction_left"] for r in clf.pruning_history_] == [1.0, 0.75, 0.625, 0.5]
    assert clf.module_.features[0].out_channels + clf.module_.features[3].out_channels == 4


def test_the_oracle_chooses_what_it_would_choose_alone(digits):
    """Through the pruner, the selection is oracle_units_to_drop on a sample of the training rows."""
    X, y = digits
    net = ModelB(input_shape=(1, 8, 8), n_classes=10, channels=(4, 3))
    X, y = torch.from_numpy(X[:120].reshape(-1, 1, 8, 8)), torch.from_numpy(y[:120])
    pruner = DropNetPruner(net, X[:2])
    oracle = OracleSelection(max_samples=120)  # every row: the draw only orders them
    drop = pruner.choose({}, 3, oracle, np.random.default_rng(0), labelled_batches=lambda: [(X[:50], y[:50]), (X[50:], y[50:])])
    alone = oracle_units_to_drop(net, X, y, 3, rng=np.random.default_rng(0))
    assert {k: v.tolist() for k, v in drop.items()} == {k: v.tolist() for k, v in alone.items()}
    with pytest.raises(TypeError, match="labelled training data"):
        pruner.choose({}, 3, oracle, np.random.default_rng(0))


def test_the_oracle_scores_on_training_rows_only(digits, monkeypatch):
    import sklearn_dropnet.pruning._oracle as oracle

    X, y = digits
    X = (X[:200] + np.arange(200)[:, None] * 1e-3).astype(np.float32)  # rows told apart by X
    y = y[:200]
    seen = []
    alone = oracle.oracle_units_to_drop

    def spy(module, X_sample, y_sample, n_drop, scope="global", **kwargs):
        seen.append(X_sample.cpu().numpy())
        return alone(module, X_sample, y_sample, n_drop, scope, **kwargs)

    monkeypatch.setattr(oracle, "oracle_units_to_drop", spy)
    clf = DropNetClassifier(
        max_epochs=1, module__hidden_layer_sizes=(8,), validation_fraction=0.5, random_state=0,
        scope=OracleSelection(), prune_ratio=0.25,
    ).fit(X, y)  # fmt: skip
    _, valid_rows = train_test_split(np.arange(200), test_size=100, stratify=y, random_state=clf._seed)
    rows = {tuple(row) for sample in seen for row in sample}
    assert len(seen) == len(clf.pruning_history_) - 1 and len(rows) == 100
    assert rows.isdisjoint(tuple(row) for row in X[valid_rows])


# ----------------------------------------------------------------------
# The paper's claim on Model B, with digits as images
# ----------------------------------------------------------------------
@pytest.mark.slow
def test_model_b_keeps_accuracy_with_90_percent_of_filters_removed():
    """The paper's Model B claim on digits: 90% of the filters removed.

    The dense network is trained first and scored, then pruned to 10% of its
    128 filters (12 left), fine-tuned between rounds with the rows
    reshuffled every epoch (the defaults). Seeds 0-5 gave gaps (dense minus
    pruned, points) of 2.96, 3.89, 1.67, 2.41, 1.67 and 3.15 on an AVX-512
    CPU, and 4.26, 2.41, 2.22, 2.41, 0.74 and 2.04 on an AVX2 one (float32
    sums differ in the last bits between the two, and the fits drift apart):
    one seed says little, so this guards the mean of seeds 0-2 (2.84 and
    2.96 on those CPUs) against a regression: at most 3.5 points, every
    pruned network above 0.94 (the lowest seen, 0.952).
    (Real MNIST: ``benchmarks/reproduce_paper.py --dataset mnist5k``.)
    """
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    gaps = []
    for seed in range(3):
        clf = DropNetClassifier(
            ModelB,
            module__channels=(64, 64),
            lr=0.003,
            batch_size=64,
            max_epochs=40,
            patience=5,
            reinit="none",
            prune_ratio=0.0,
            random_state=seed,
        ).fit(X_train, y_train)
        dense_accuracy = clf.score(X_test, y_test)
        clf.prune(X_train, y_train, prune_ratio=0.9)
        pruned_accuracy = clf.score(X_test, y_test)
        assert clf.pruning_history_[-1]["fraction_left"] <= 0.1
        assert clf.module_.features[0].out_channels + clf.module_.features[3].out_channels == 12
        assert dense_accuracy >= 0.98, (seed, dense_accuracy)
        assert pruned_accuracy >= 0.94, (seed, pruned_accuracy)
        gaps.append(100 * (dense_accuracy - pruned_accuracy))
    assert np.mean(gaps) <= 3.5, gaps
