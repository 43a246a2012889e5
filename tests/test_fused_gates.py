"""Gated linear units computed by one layer (timm's GluMlp, a fused SwiGLU): ``a, g =
fc1(x).chunk(2, -1); fc2(a * act(g))``. A unit is a channel of the product: two
channels of ``fc1`` (``j`` and ``j + n / 2``) and one input of ``fc2``."""

import io

import joblib
import numpy as np
import pytest
import torch
from removal_checks import assert_removal_matches_masking
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._probes import inspect_network


class GluMlp(nn.Module):
    """A stem, then a gated MLP whose first layer computes both halves of the gate."""

    def __init__(self, n_in=6, hidden=5, n_out=3, conv=False, gate_last=True, split="chunk"):
        super().__init__()
        layer = (lambda i, o: nn.Conv2d(i, o, 1)) if conv else nn.Linear
        self.stem, self.fc1, self.fc2 = layer(n_in, 8), layer(8, 2 * hidden), layer(hidden, n_out)
        self.dim, self.gate_last, self.split = 1 if conv else -1, gate_last, split

    def halves(self, x):
        x = self.fc1(torch.relu(self.stem(x)))
        if self.split == "chunk":
            return x.chunk(2, dim=self.dim)
        return torch.split(x, x.shape[self.dim] // 2, dim=self.dim)

    def forward(self, x):
        a, g = self.halves(x)
        gated = a * F.silu(g) if self.gate_last else F.silu(a) * g
        return self.fc2(gated)


SHAPES = {"linear": (False, (32, 6)), "tokens": (False, (32, 4, 6)), "conv": (True, (32, 6, 3, 3))}


@pytest.mark.parametrize("gate_last", [True, False], ids=["a*act(g)", "act(a)*g"])
@pytest.mark.parametrize("split", ["chunk", "split"])
@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_a_gate_fused_into_one_layer_is_scored_by_the_product_and_loses_both_halves(shape, split, gate_last):
    """Such a layer was left out ("its output goes into a split before any activation"),
    as were timm's EVA-02 and gMixer MLPs. Its units are the product's channels: each is
    scored by the mean absolute product, and removing it takes both of its channels out
    of fc1 and its input out of fc2, as switching it off does."""
    conv, size = SHAPES[shape]
    torch.manual_seed(0)
    net, x = GluMlp(conv=conv, gate_last=gate_last, split=split).eval(), torch.randn(*size)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {"stem": 8, "fc1": 5}
    assert pruner.structure.probes["fc1"].parts == 2
    assert pruner.structure.probes["fc1"].activation.name == "<root>: product"
    with torch.no_grad():
        a, g = net.halves(x)
        product = a * F.silu(g) if gate_last else F.silu(a) * g
        means = product.abs().movedim(1 if conv else -1, -1).reshape(-1, 5).mean(0).double().numpy()
    np.testing.assert_allclose(pruner.score(lambda: [x])["fc1"], means, rtol=1e-5)
    assert [group.name for group in pruner.check_removal(x)] == ["stem", "fc1"]
    assert_removal_matches_masking(net, x, {"fc1": [0, 3], "stem": [2]})
    widths = [(layer.weight.shape[0], layer.weight.shape[1]) for layer in (net.stem, net.fc1, net.fc2)]
    assert widths == [(7, 6), (6, 7), (3, 3)]


@pytest.mark.parametrize("restart", ["none", "rewind"])
def test_the_units_of_a_fused_gate_go_with_both_their_channels_in_the_network_and_the_rewind_copy(restart):
    """Unit j of fc1 (10 channels, 5 units) is its rows j and j + 5, and fc2's column j."""
    torch.manual_seed(0)
    net, x = GluMlp().eval(), torch.randn(32, 6)
    pruner = DropNetPruner(net, x[:2])
    source = pruner.initial if restart == "rewind" else net
    fc1, fc2 = source.fc1.weight.detach().clone(), source.fc2.weight.detach().clone()
    smaller = pruner.remove({"fc1": np.array([1, 4])}, restart=restart)
    kept = [0, 2, 3]
    torch.testing.assert_close(smaller.fc1.weight, fc1[kept + [k + 5 for k in kept]])
    torch.testing.assert_close(smaller.fc2.weight, fc2[:, kept])
    assert pruner.units_per_layer == {"stem": 8, "fc1": 3}
    assert pruner.initial.fc1.out_features == 6


def test_a_fused_gate_network_fits_prunes_and_survives_joblib_on_the_digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    clf = DropNetClassifier(
        module=GluMlp, module__n_in=64, module__hidden=24, module__n_out=10,
        prune_ratio=0.5, max_epochs=4, lr=0.05, random_state=0,
    ).fit(X, y)  # fmt: skip
    assert clf.pruning_history_[0]["units"] == 8 + 24
    assert clf.pruning_history_[-1]["units"] == 16
    fc1, fc2 = clf.module_.fc1, clf.module_.fc2
    assert fc1.out_features == 2 * fc2.in_features
    assert "fc1" not in clf.unpruned_layers_
    assert clf.score(X, y) > 0.5
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X), clf.predict_proba(X))


def test_halves_taken_by_slicing_are_left_out_with_the_reason():
    """Only a split (chunk, split) is followed to a fused gate; slices of the channels
    are not, and the layer is named."""

    class Sliced(GluMlp):
        def halves(self, x):
            x = self.fc1(torch.relu(self.stem(x)))
            return x[:, :5], x[:, 5:]

    torch.manual_seed(0)
    with pytest.warns(UnitRemovalWarning, match="'fc1' unpruned: its output reaches no activation"):
        pruner = DropNetPruner(Sliced().eval(), torch.randn(2, 6))
    assert pruner.units_per_layer == {"stem": 8}


def test_a_split_into_unequal_parts_is_not_taken_for_a_fused_gate():
    class Unequal(GluMlp):
        def halves(self, x):
            return torch.split(self.fc1(torch.relu(self.stem(x))), [4, 6], dim=-1)

        def forward(self, x):
            a, g = self.halves(x)
            return self.fc2(torch.cat([a * F.silu(g[:, :4]), g[:, 4:5]], 1))

    torch.manual_seed(0)
    structure = inspect_network(Unequal().eval(), torch.randn(2, 6))
    assert "fc1" not in structure.probes
    assert structure.left_out["fc1"].startswith("its output goes into a split ('<root>: split')")


def test_a_fused_gate_behind_a_position_embedding_is_mapped_to_its_halves():
    """Torch-Pruning turns the mapping of every split off where a 3-d parameter (a ViT's
    position embedding) is upstream, and then handed fc1's channel 9 to fc2, which has 5:
    EVA-02's MLPs were refused so. A split of a Linear's channels is mapped anyway."""

    class Positioned(GluMlp):
        def __init__(self):
            super().__init__()
            self.position = nn.Parameter(torch.randn(1, 4, 8))

        def halves(self, x):
            return self.fc1(torch.relu(self.stem(x)) + self.position).chunk(2, dim=-1)

    torch.manual_seed(0)
    net, x = Positioned().eval(), torch.randn(16, 4, 6)
    pruner = DropNetPruner(net, x[:2])
    # The stem's units are not zero after the embedding is added: refused, rightly.
    with pytest.warns(UnitRemovalWarning, match="'stem' unpruned: removing its units does not match"):
        assert [group.name for group in pruner.check_removal(x)] == ["fc1"]
    assert_removal_matches_masking(net, x, {"fc1": [1, 2]})
    assert (net.fc1.out_features, net.fc2.in_features) == (6, 3)


class _GluConv(nn.Module):
    """A Conformer's convolution module on sequences: a pointwise convolution into a
    gated linear unit (nn.GLU or F.glu over the channels), a depthwise convolution,
    BatchNorm, SiLU, a pointwise convolution back, a residual add."""

    def __init__(self, channels=6, module=True, n_in=4, n_out=3):
        super().__init__()
        self.stem = nn.Conv1d(n_in, channels, 3, padding=1)
        self.pointwise1, self.glu = nn.Conv1d(channels, 2 * channels, 1), nn.GLU(dim=1) if module else None
        self.depthwise = nn.Conv1d(channels, channels, 3, padding=1, groups=channels)
        self.norm, self.pointwise2 = nn.BatchNorm1d(channels), nn.Conv1d(channels, channels, 1)
        self.head = nn.Linear(channels, n_out)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        h = self.pointwise1(x)
        h = self.glu(h) if self.glu is not None else F.glu(h, dim=1)
        x = x + self.pointwise2(F.silu(self.norm(self.depthwise(h))))
        return self.head(x.mean(-1))


@pytest.mark.parametrize("module", [True, False], ids=["nn.GLU", "F.glu"])
def test_a_gated_linear_unit_is_read_as_the_activation_of_units_of_two_channels(module):
    """nn.GLU and F.glu halve their input: the layer before was left out ("it goes into
    GLU first"). Its units are now the GLU's output channels, each two of the layer's:
    scored by the GLU's mean absolute output, removed with both channels and with the
    depthwise convolution's channel after it (Torch-Pruning handed the next layer
    channel i + h of h, taking the GLU for an element-wise step)."""
    torch.manual_seed(0)
    net, x = _GluConv(module=module).eval(), torch.randn(16, 4, 10)
    net.norm.running_mean.normal_(), net.norm.running_var.uniform_(0.5, 2.0)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.units_per_layer == {"stem": 6, "pointwise1": 6}
    assert pruner.structure.probes["pointwise1"].parts == 2
    with torch.no_grad():
        gated = F.glu(net.pointwise1(torch.relu(net.stem(x))), dim=1)
        depthwise = F.silu(net.norm(net.depthwise(gated)))
    # The depthwise convolution's units go with the GLU's: a unit is scored by the mean of
    # both layers' readings, each layer once (the GLU's layer holds two channels of it).
    means = (gated.abs().mean((0, 2)) + depthwise.abs().mean((0, 2))).double().numpy() / 2
    np.testing.assert_allclose(pruner.score(lambda: [x])["pointwise1"], means, rtol=1e-5)
    assert [group.name for group in pruner.check_removal(x)] == ["stem", "pointwise1"]
    assert_removal_matches_masking(net, x, {"pointwise1": [1, 4]})
    assert (net.pointwise1.out_channels, net.depthwise.out_channels, net.pointwise2.in_channels) == (8, 4, 4)


def test_a_glu_sequence_network_fits_prunes_and_survives_joblib_on_the_digits_rows():
    """The digits as sequences of 8 rows of 8 features: the estimator's rounds retrace,
    remove and rewind through the GLU."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32).reshape(-1, 8, 8)
    clf = DropNetClassifier(
        module=_GluConv, module__channels=16, module__n_in=8, module__n_out=10,
        prune_ratio=0.5, max_epochs=3, lr=0.05, random_state=0,
    ).fit(X, y)  # fmt: skip
    net = clf.module_
    assert clf.pruning_history_[0]["units"] == 32 and clf.pruning_history_[-1]["units"] == 16
    assert net.pointwise1.out_channels == 2 * net.depthwise.out_channels < 32
    assert "pointwise1" not in clf.unpruned_layers_
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X), clf.predict_proba(X))


def test_a_glu_after_an_activation_ends_the_units_chain_there():
    """conv -> ReLU -> GLU: the conv's units are read at the ReLU, and their chain must
    not run on into the GLU, which has half the channels (switching a unit off there
    raised "IndexError: index 6 is out of bounds for dimension 1 with size 4"). One of
    the pair a GLU output needs cannot go alone: the removal check refuses the conv."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv1d(4, 8, 3, padding=1), nn.ReLU(), nn.GLU(dim=1), nn.Conv1d(4, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 3),
    ).eval()  # fmt: skip
    x = torch.randn(8, 4, 10)
    pruner = DropNetPruner(net, x[:2])
    assert pruner.structure.probes["0"].chain_end.name == "1"
    assert pruner.structure.probes["0"].parts == 1
    with torch.no_grad():
        expected = torch.relu(net[0](x)).abs().mean((0, 2)).double().numpy()
    np.testing.assert_allclose(pruner.score(lambda: [x])["0"], expected, rtol=1e-5)
    with pytest.warns(UnitRemovalWarning, match="'0' unpruned: removing its units does not match"):
        assert [group.name for group in pruner.check_removal(x)] == ["3"]
