"""Helpers of the tests that prune one network written two ways and compare.

A network with activation modules and its twin with the same layers (and so
the same parameter names and weights) written otherwise: with functional
activations (``test_functional_activations.py``), or with normalization
layers that apply their activation (``test_norm_act_layers.py``); and the
residual network both write twice. Imported by those tests (pytest puts this
folder on ``sys.path``); not a test module itself.
"""

import warnings

import numpy as np
import torch
from torch import nn

from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.pruning import DropNetPruner


def twins(make_module, make_functional, seed=0):
    """The module network and its twin written otherwise, with the same weights."""
    torch.manual_seed(seed)
    module_net = make_module()
    functional_net = make_functional()
    with torch.no_grad():  # BatchNorm statistics and shifts that are not trivial
        for bn in (m for m in module_net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.5)
    functional_net.load_state_dict(module_net.state_dict(), strict=False)
    return module_net, functional_net


def prune_once(net, x, fraction=0.4, seed=0):
    """Score, choose and remove with the pruner; the scores, the choice and the smaller network."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)
        pruner = DropNetPruner(net, x[:2])
        pruner.check_removal(x[:32])  # masking at the activation must match removal
    scores = pruner.score(lambda: [x[:50], x[50:]], "activation")
    n_drop = int(fraction * pruner.n_units)
    drop = pruner.choose(scores, n_drop, scope="layer", rng=np.random.default_rng(seed))
    return scores, drop, pruner.remove(drop), pruner


def assert_same_pruning(a, b):
    (scores_a, drop_a, net_a, pruner_a), (scores_b, drop_b, net_b, pruner_b) = a, b
    assert scores_a.keys() == scores_b.keys()
    for name in scores_a:
        np.testing.assert_array_equal(scores_a[name], scores_b[name])
        np.testing.assert_array_equal(drop_a[name], drop_b[name])
    assert pruner_a.units_per_layer == pruner_b.units_per_layer
    state_a, state_b = net_a.state_dict(), net_b.state_dict()
    for key in state_b:  # the module twin has no extra parameters
        assert torch.equal(state_a[key], state_b[key]), key


class ModuleResidual(nn.Module):
    """stem conv -> BN -> ReLU; block conv -> BN -> ReLU -> conv -> BN, added to the
    stem (identity) and to a projection, then ReLU; mean -> out."""

    def __init__(self):
        super().__init__()
        self.stem, self.stem_bn, self.stem_act = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.c1, self.b1, self.a1 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.c2, self.b2, self.a2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.c3, self.b3 = nn.Conv2d(8, 12, 3, padding=1, stride=2), nn.BatchNorm2d(12)
        self.proj, self.proj_bn, self.a3 = nn.Conv2d(8, 12, 1, stride=2), nn.BatchNorm2d(12), nn.ReLU()
        self.out = nn.Linear(12, 10)

    def forward(self, x):
        x = self.stem_act(self.stem_bn(self.stem(x)))
        out = self.b2(self.c2(self.a1(self.b1(self.c1(x)))))
        out += x
        x = self.a2(out)
        out = self.b3(self.c3(x))
        out += self.proj_bn(self.proj(x))
        return self.out(self.a3(out).mean(dim=(2, 3)))
