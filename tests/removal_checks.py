"""Helpers of the tests that check physical removal against masking.

Imported by ``test_conv_pruning.py`` and ``test_grouped_and_conv1d.py``
(pytest puts this folder on ``sys.path``); not a test module itself.
"""

import torch
from torch import nn

from sklearn_dropnet.pruning._probes import inspect_network
from sklearn_dropnet.pruning._surgery import find_unit_groups, remove_units
from sklearn_dropnet.pruning._unit_mask import UnitMask


def randomise_batchnorm(net, seed=0):
    """Give every BatchNorm non-trivial statistics and affine parameters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(n, generator=generator) * 0.5)
    return net


def assert_removal_matches_masking(net, x, drop):
    """Remove ``drop`` from ``net`` in place; its output must equal the masked dense output."""
    net.eval()
    structure = inspect_network(net, x)
    groups = find_unit_groups(net, x, structure)
    with torch.no_grad(), UnitMask(net, structure.probes, groups, structure.switch_offs) as mask:
        mask.set(drop)
        expected = net(x).clone()
        mask.set({})
        dense = net(x).clone()
    # The masked units matter: without the masks the output differs.
    assert not torch.allclose(expected, dense, atol=1e-4)
    remove_units(net, x, drop)
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=1e-4, atol=1e-5)
    return net
