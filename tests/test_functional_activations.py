"""A network written with functional activations prunes as its module twin does.

Each network here exists twice with the same layers (and so the same
parameter names and weights): once with activation modules (``nn.ReLU()``),
once with functions (``F.relu``, ``torch.relu``, ``x.relu()``, ``x.relu_()``,
a ReLU after a residual add written ``out + identity``). Scores, the units
dropped and the weights after removal must be identical, bit for bit,
through :class:`DropNetPruner` and through :class:`DropNetClassifier`.
"""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pruning_twins import ModuleResidual, assert_same_pruning, prune_once, twins
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.datasets import load_digits_images
from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._probes import ACTIVATION_TYPES, inspect_network
from sklearn_dropnet.pruning._unit_mask import UnitMask


@pytest.fixture(scope="module")
def images():
    X, y = load_digits_images()
    return X[:400], y[:400]


# ----------------------------------------------------------------------
# Every activation module, and the functions that compute the same
# ----------------------------------------------------------------------
def _prelu(x, net):
    return F.prelu(x, net.act_weight)


FUNCTIONAL_FORMS = {
    nn.ReLU: [
        F.relu, torch.relu, lambda x: x.relu(), F.relu_, lambda x: x.relu_(), lambda x: F.relu(x, inplace=True),
        lambda x: x.clamp(min=0), lambda x: torch.clamp(x, min=0), lambda x: x.clamp_min(0), lambda x: x.clamp_(min=0),
    ],
    nn.ReLU6: [F.relu6, lambda x: F.relu6(x, inplace=True), lambda x: torch.clamp(x, 0, 6), lambda x: torch.clip(x, 0, 6)],
    nn.LeakyReLU: [F.leaky_relu, F.leaky_relu_],
    nn.PReLU: [_prelu],
    nn.RReLU: [F.rrelu, F.rrelu_],
    nn.ELU: [F.elu, lambda x: F.elu(x, inplace=True)],
    nn.SELU: [F.selu, torch.selu],
    nn.CELU: [F.celu],
    nn.GELU: [F.gelu],
    nn.SiLU: [F.silu, lambda x: F.silu(x, inplace=True)],
    nn.Mish: [F.mish],
    nn.Hardswish: [F.hardswish],
    nn.Hardsigmoid: [F.hardsigmoid],
    nn.Hardtanh: [F.hardtanh, F.hardtanh_],
    nn.Sigmoid: [torch.sigmoid, F.sigmoid, lambda x: x.sigmoid(), lambda x: x.sigmoid_(), torch.special.expit],
    nn.Tanh: [torch.tanh, F.tanh, lambda x: x.tanh(), lambda x: x.tanh_()],
    nn.Softplus: [F.softplus],
    nn.Softsign: [F.softsign],
    nn.Tanhshrink: [F.tanhshrink],
    nn.LogSigmoid: [F.logsigmoid],
    nn.Hardshrink: [F.hardshrink],
    nn.Softshrink: [F.softshrink],
    nn.Threshold: [lambda x: F.threshold(x, 0.1, 0.0), lambda x: F.threshold_(x, 0.1, 0.0)],
}

# The arguments of the activation modules that take some.
MODULE_ARGUMENTS = {nn.Threshold: (0.1, 0.0)}


class ModuleMLP(nn.Module):
    """fc1 -> act -> fc2 -> BatchNorm -> act -> out, with activation modules."""

    def __init__(self, activation=nn.ReLU):
        super().__init__()
        self.fc1, self.fc2, self.bn, self.out = nn.Linear(6, 10), nn.Linear(10, 7), nn.BatchNorm1d(7), nn.Linear(7, 3)
        self.act_weight = nn.Parameter(torch.full((1,), 0.25))  # PReLU's, for the functional twin
        arguments = MODULE_ARGUMENTS.get(activation, ())
        self.act1, self.act2 = activation(*arguments), activation(*arguments)
        if isinstance(self.act1, nn.PReLU):
            self.act1.weight, self.act2.weight = self.act_weight, self.act_weight

    def forward(self, x):
        return self.out(self.act2(self.bn(self.fc2(self.act1(self.fc1(x))))))


class FunctionalMLP(ModuleMLP):
    """The same layers, the activation applied by ``function(x)``."""

    def __init__(self, function):
        super().__init__(nn.Identity)
        del self.act1, self.act2
        self.function = function

    def act(self, x):
        return self.function(x, self) if self.function is _prelu else self.function(x)

    def forward(self, x):
        return self.out(self.act(self.bn(self.fc2(self.act(self.fc1(x))))))


def test_every_activation_module_has_functional_forms_here():
    assert set(FUNCTIONAL_FORMS) == set(ACTIVATION_TYPES)


@pytest.mark.parametrize(
    "activation, function",
    [(activation, function) for activation, functions in FUNCTIONAL_FORMS.items() for function in functions],
    ids=[f"{a.__name__}-{i}" for a, functions in FUNCTIONAL_FORMS.items() for i in range(len(functions))],
)
def test_a_functional_activation_scores_and_prunes_as_its_module(activation, function):
    x = torch.randn(100, 6, generator=torch.Generator().manual_seed(1))
    module_net, functional_net = twins(lambda: ModuleMLP(activation), lambda: FunctionalMLP(function))
    module_net.eval(), functional_net.eval()
    assert_same_pruning(prune_once(module_net, x), prune_once(functional_net, x))


# ----------------------------------------------------------------------
# A CNN with BatchNorm and a residual block, with modules and functions
# ----------------------------------------------------------------------
class ModuleCNN(nn.Module):
    """conv -> BN -> max pool -> ReLU -> conv -> BN -> ReLU -> mean -> fc -> ReLU -> out."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool, self.r1 = nn.MaxPool2d(2), nn.ReLU()
        self.c2, self.b2, self.r2 = nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU()
        self.fc, self.r3, self.out = nn.Linear(12, 16), nn.ReLU(inplace=True), nn.Linear(16, 10)

    def forward(self, x):
        x = self.r1(self.pool(self.b1(self.c1(x))))
        x = self.r2(self.b2(self.c2(x))).mean(dim=(2, 3))
        return self.out(self.r3(self.fc(x)))


class FunctionalCNN(ModuleCNN):
    def __init__(self):
        super().__init__()
        del self.r1, self.pool, self.r2, self.r3

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.b1(self.c1(x)), 2))  # pooled before the activation
        x = torch.relu(self.b2(self.c2(x))).mean(dim=(2, 3))
        h = self.fc(x)
        h.relu_()  # in place, its result not used
        return self.out(h)


class FunctionalResidual(ModuleResidual):
    def __init__(self):
        super().__init__()
        del self.stem_act, self.a1, self.a2, self.a3

    def forward(self, x):
        x = self.stem_bn(self.stem(x)).relu()
        out = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        x = torch.relu(x + out)  # the identity first
        out = self.b3(self.c3(x))
        out = out + self.proj_bn(self.proj(x))
        return self.out(F.relu(out, inplace=True).mean(dim=(2, 3)))


TWINS = [(ModuleCNN, FunctionalCNN), (ModuleResidual, FunctionalResidual)]


@pytest.mark.parametrize("make", TWINS, ids=["cnn", "residual"])
def test_the_pruner_prunes_a_functional_network_as_its_module_twin(make, images):
    X, _ = images
    x = torch.as_tensor(X[:100])
    module_net, functional_net = twins(*make)
    module_net.eval(), functional_net.eval()
    a, b = prune_once(module_net, x, 0.5), prune_once(functional_net, x, 0.5)
    assert_same_pruning(a, b)
    assert set(a[3].units_per_layer) == ({"c1", "c2", "fc"} if make[0] is ModuleCNN else {"stem", "c1", "c3"})


def test_the_residual_stream_is_one_group_scored_by_every_layer_adding_into_it(images):
    X, _ = images
    net = FunctionalResidual()
    structure = inspect_network(net, torch.as_tensor(X[:2]))
    pruner = DropNetPruner(net, torch.as_tensor(X[:2]))
    members = {group.name: sorted(m[0] for m in group.members) for group in pruner.units}
    assert members == {"stem": ["c2", "stem"], "c1": ["c1"], "c3": ["c3", "proj"]}
    # Both sides of the projection's add are read after the add's ReLU.
    assert structure.probes["c3"].activation == structure.probes["proj"].activation
    assert structure.probes["c3"].activation.function


def test_units_switched_off_at_a_functional_activation_are_zero_after_it():
    net = FunctionalMLP(lambda x: x.relu_()).eval()
    x = torch.randn(5, 6)
    structure = inspect_network(net, x[:2])
    pruner = DropNetPruner(net, x[:2])
    seen = []
    net.fc2.register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    with UnitMask(net, structure.probes, pruner.units) as mask, torch.no_grad():
        mask.set({"fc1": [1, 4]})
        net(x)
    assert seen[0][:, [1, 4]].abs().max() == 0 and seen[0].abs().max() > 0


@pytest.mark.parametrize("make", TWINS, ids=["cnn", "residual"])
def test_the_estimator_fits_a_functional_network_as_its_module_twin(make, images):
    X, y = images
    params = dict(prune_ratio=0.5, drop_fraction=0.3, max_epochs=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        fits = [DropNetClassifier(module=net, **params).fit(X, y) for net in twins(*make)]
    histories = [[r["units_per_layer"] for r in clf.pruning_history_] for clf in fits]
    assert histories[0] == histories[1] and len(histories[0]) > 2
    state = fits[1].module_.state_dict()
    assert all(torch.equal(state[key], value) for key, value in fits[0].module_.state_dict().items())
    np.testing.assert_array_equal(fits[0].predict_proba(X[:50]), fits[1].predict_proba(X[:50]))


# ----------------------------------------------------------------------
# Activations written out: a gate times the layer's output
# ----------------------------------------------------------------------
class Swish(nn.Module):
    """A custom activation module, a leaf: what it calls belongs to its call."""

    def forward(self, x):
        return x * torch.sigmoid(x)


class HardSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU6()

    def forward(self, x):
        return self.relu(x + 3) / 6


class HardSwish(nn.Module):
    """MobileNetV3's hard swish as many repositories write it: not a leaf, a module activation inside."""

    def __init__(self):
        super().__init__()
        self.sigmoid = HardSigmoid()

    def forward(self, x):
        return x * self.sigmoid(x)


# name -> (the module it computes, the activation written out)
WRITTEN_OUT = {
    "swish": (nn.SiLU, lambda x: x * torch.sigmoid(x)),
    "swish, gate first": (nn.SiLU, lambda x: torch.sigmoid(x).mul(x)),
    "hard swish": (nn.Hardswish, lambda x: x * F.relu6(x + 3) / 6),  # read at the product, times 1/6
    "hard swish, divided twice": (nn.Hardswish, lambda x: x * F.relu6(x + 3) / 3 * 0.5),
    "hard swish, gate divided": (nn.Hardswish, lambda x: x * (F.relu6(x + 3) / 6)),
    "hard sigmoid": (nn.Hardsigmoid, lambda x: F.relu6(x + 3) / 6),  # read at relu6, times 1/6
    "mish": (nn.Mish, lambda x: x * torch.tanh(F.softplus(x))),
    "swish module": (nn.SiLU, Swish()),
    "hard swish module": (nn.Hardswish, HardSwish()),
    "hard sigmoid module": (nn.Hardsigmoid, HardSigmoid()),  # its nn.ReLU6, then / 6
}


@pytest.mark.parametrize("name", WRITTEN_OUT)
def test_an_activation_written_out_is_scored_and_pruned_as_its_module(name):
    activation, written_out = WRITTEN_OUT[name]
    x = torch.randn(100, 6, generator=torch.Generator().manual_seed(1))
    module_net, written_net = twins(lambda: ModuleMLP(activation), lambda: FunctionalMLP(written_out))
    module_net.eval(), written_net.eval()
    (scores_a, drop_a, net_a, pruner_a), (scores_b, drop_b, net_b, pruner_b) = (
        prune_once(module_net, x), prune_once(written_net, x)
    )
    # Read after the gate and the numbers that scale it: the post-activation, not the
    # gate (the sigmoid, the relu6) nor six times the post-activation
    for layer in scores_a:  # the same values, computed in another order
        np.testing.assert_allclose(scores_b[layer], scores_a[layer], rtol=1e-5)
        np.testing.assert_array_equal(drop_a[layer], drop_b[layer])
    assert pruner_a.units_per_layer == pruner_b.units_per_layer == {"fc1": 6, "fc2": 5}
    for key, value in net_a.state_dict().items():
        assert torch.equal(value, net_b.state_dict()[key]), key


def test_a_gated_linear_unit_is_scored_by_the_product_the_next_layer_reads():
    """SwiGLU, w2(F.silu(w1(x)) * w3(x)): the unit's post-activation is the product, and w3's
    units go with w1's (one group); it was scored by the silu alone."""

    class SwiGLU(nn.Module):
        def __init__(self):
            super().__init__()
            self.w1, self.w3, self.w2 = nn.Linear(6, 12), nn.Linear(6, 12), nn.Linear(12, 3)

        def forward(self, x):
            return self.w2(F.silu(self.w1(x)) * self.w3(x))

    torch.manual_seed(0)
    net, x = SwiGLU().eval(), torch.randn(64, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnitRemovalWarning)  # w3 reaches no activation of its own
        pruner = DropNetPruner(net, x[:2])
    assert pruner.structure.probes["w1"].activation.name == "<root>: product"
    with torch.no_grad():
        expected = (F.silu(net.w1(x)) * net.w3(x)).abs().mean(dim=0).double().numpy()
    np.testing.assert_allclose(pruner.score(lambda: [x])["w1"], expected, rtol=1e-5)
    net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 4, rng=np.random.default_rng(0)))
    pruner.check_removal(x)
    assert (net.w1.out_features, net.w3.out_features, net.w2.in_features) == (8, 8, 8)


def test_a_gate_computed_from_another_tensor_is_not_taken_for_an_activation_written_out():
    class Gated(nn.Module):  # squeeze-and-excitation: the gate comes from other layers
        def __init__(self):
            super().__init__()
            self.conv, self.squeeze, self.excite = nn.Conv2d(1, 8, 3), nn.Linear(8, 4), nn.Linear(4, 8)
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean(dim=(2, 3))))))
            return self.out((x * gate[:, :, None, None]).mean(dim=(2, 3)))

    structure = inspect_network(Gated(), torch.randn(2, 1, 8, 8))
    assert structure.probes["conv"].activation.name == "<root>: relu"
    assert structure.probes["squeeze"].activation.name == "<root>: relu"
    assert structure.probes["excite"].activation.name == "<root>: sigmoid"


class _Scaled(nn.Module):
    """A layer's output scaled by a number before or after its activation."""

    def __init__(self, where):
        super().__init__()
        self.where = where
        self.hidden, self.out = nn.Linear(6, 12), nn.Linear(12, 3)
        if where == "gated":
            self.gate = nn.Linear(6, 12)

    def forward(self, x):
        if self.where == "before":
            return self.out(torch.relu(self.hidden(x) * 2))
        if self.where == "divided":
            return self.out(F.relu(self.hidden(x) / 4))
        if self.where == "after":
            return self.out(0.5 * torch.relu(self.hidden(x)))
        return self.out(torch.relu(self.hidden(x) * torch.sigmoid(self.gate(x))))  # a gate: not a number


@pytest.mark.parametrize("where", ["before", "divided", "after"])
def test_a_layer_scaled_by_a_number_on_its_way_to_the_activation_is_pruned(where):
    from sklearn_dropnet.pruning import DropNetPruner

    torch.manual_seed(0)
    x = torch.randn(32, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(_Scaled(where), x[:2])
        assert pruner.units_per_layer == {"hidden": 12}
        net = pruner.remove(pruner.choose(pruner.score(lambda: [x]), 4))
        pruner.check_removal(x)  # switching units off there computes what removing them does
    assert net.hidden.out_features == 8 and net(x).shape == (32, 3)


def test_a_product_of_two_layers_is_not_followed_as_a_scaling():
    from sklearn_dropnet.pruning import DropNetPruner

    pruner = DropNetPruner(_Scaled("gated"), torch.randn(2, 6))
    assert "hidden" not in pruner.structure.probes  # its activation is reached through another layer's gate


# ----------------------------------------------------------------------
# Reading function sites with module hooks (no function mode) when scoring
# ----------------------------------------------------------------------
class _OutputChangedInPlace(nn.Module):
    """fc1 -> relu, whose output is changed in place before fc2, the next module, reads it."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 10), nn.Linear(10, 3)

    def forward(self, x):
        a = torch.relu(self.fc1(x))
        a.add_(1.0)  # fc2 reads relu's output + 1: not the post-activation
        return self.fc2(a)


class _InputChangedInPlace(_OutputChangedInPlace):
    """fc1's output changed in place before its relu, whose output fc2 reads through a function."""

    def forward(self, x):
        h = self.fc1(x)
        h.mul_(-1.0)  # the relu reads -fc1's output
        return self.fc2(torch.relu(h).clone())


class _BothChangedInPlace(nn.Module):
    """The two above in turn: fc1's relu is read from fc1's output, fc2's only in the mode."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(6, 10), nn.Linear(10, 7), nn.Linear(7, 3)

    def forward(self, x):
        a = torch.relu(self.fc1(x))
        a.add_(1.0)
        h = self.fc2(a)
        h.mul_(-1.0)
        return self.out(torch.relu(h).clone())


def test_function_sites_are_all_read_in_the_mode_when_one_has_no_reading(monkeypatch):
    # A relu computed in fc1's hook while the mode is on would be numbered as a site.
    torch.manual_seed(0)
    net = _BothChangedInPlace().eval()
    x = torch.randn(100, 6)
    structure = inspect_network(net, x[:2])
    assert [structure.probes[name].activation in structure.readings for name in ("fc1", "fc2")] == [True, False]
    _, scores = _scores(net, x, structure.readings)
    with torch.no_grad():
        a = torch.relu(net.fc1(x))
        expected = {"fc1": a.mean(0), "fc2": torch.relu(-net.fc2(a + 1.0)).mean(0)}
    for name, values in expected.items():
        np.testing.assert_allclose(scores[name], values.double().numpy(), rtol=1e-5, atol=1e-7)


def _mode_entries(monkeypatch):
    from sklearn_dropnet.pruning import _sites

    entries = []
    enter = _sites._ActivationCounter.__enter__
    monkeypatch.setattr(_sites._ActivationCounter, "__enter__", lambda self: entries.append(self) or enter(self))
    return entries


def _scores(net, x, readings):
    structure = inspect_network(net, x[:2])
    pruner = DropNetPruner(net, x[:2])
    from sklearn_dropnet.pruning._unit_scores import score_units

    batches = lambda: [x[:50], x[50:]]  # noqa: E731
    return structure, score_units(net, pruner.units, structure.probes, "activation", batches, None, readings)


@pytest.mark.parametrize("make", [lambda: FunctionalMLP(F.relu), FunctionalCNN], ids=["mlp", "cnn"])
def test_function_sites_read_by_module_hooks_score_as_with_the_function_mode(make, images, monkeypatch):
    torch.manual_seed(0)
    net = make().eval()
    x = torch.randn(100, 6) if isinstance(net, FunctionalMLP) else torch.as_tensor(images[0][:100])
    structure, by_mode = _scores(net, x, readings={})
    assert set(structure.readings) == {probe.activation for probe in structure.probes.values()}
    entries = _mode_entries(monkeypatch)
    _, by_hooks = _scores(net, x, structure.readings)
    scoring_entries = entries[2:]  # the two probe passes record with the mode
    assert not scoring_entries, "every function site has a reading: the scoring pass runs without the mode"
    assert by_mode.keys() == by_hooks.keys()
    for name in by_mode:
        np.testing.assert_array_equal(by_mode[name], by_hooks[name])


@pytest.mark.parametrize(
    "make, sign, reading",
    [(_OutputChangedInPlace, 1.0, "fc1's output"), (_InputChangedInPlace, -1.0, None)],
    ids=["output-changed", "input-changed"],
)
def test_a_tensor_changed_in_place_is_not_where_a_function_site_is_read(make, sign, reading, monkeypatch):
    torch.manual_seed(0)
    net = make().eval()
    x = torch.randn(100, 6)
    structure = inspect_network(net, x[:2])
    site = structure.probes["fc1"].activation
    if reading is None:  # neither fc1's output nor fc2's input is the relu's input or output
        assert site not in structure.readings
    else:  # fc2's input is not the relu's output, but fc1's output is its input
        assert not structure.readings[site].at_input and structure.readings[site].site.name == "fc1"
    entries = _mode_entries(monkeypatch)
    _, scores = _scores(net, x, structure.readings)
    assert len(entries) == 2 + (reading is None)  # the probe passes, then the scoring pass if in the mode
    with torch.no_grad():
        expected = torch.relu(sign * net.fc1(x)).mean(0).double().numpy()
    np.testing.assert_allclose(scores["fc1"], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "gelu",
    [
        lambda x: x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
        lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0)))),
    ],
    ids=["erf", "tanh"],
)
def test_a_gelu_written_out_is_named_with_the_function_to_use(gelu):
    net = FunctionalMLP(gelu).eval()
    x = torch.randn(8, 6)
    np.testing.assert_allclose(gelu(x), F.gelu(x), atol=1e-3)  # GELU's formula (the tanh form within 1e-3)
    structure = inspect_network(net, x[:2])
    assert set(structure.left_out) == {"fc1", "fc2"}
    for reason in structure.left_out.values():
        assert reason.startswith("its output reaches no activation before a product with another tensor")
        assert "F.gelu(x, approximate='tanh')" in reason
