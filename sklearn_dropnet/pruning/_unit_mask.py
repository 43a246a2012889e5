"""Switching units off without removing them: the reference for a removal.

The oracle baseline (``_oracle``) scores a unit by the loss with the unit
switched off, and the removal check (``_removal_check``) requires a removal
to compute what the network computes with the units switched off.
"""

import functools

import numpy as np
import torch

from ._sites import site_hooks

__all__ = ["UnitMask"]


class UnitMask:
    """Switch chosen units off, inside a ``with`` block.

    A unit is switched off by zeroing it at the end of its probe's
    per-channel chain (``Probe.chain_end``): its post-activation, or the
    output of a ``BatchNorm`` that follows the activation (which would turn
    a zero into its shift), whether a module or a function computes it
    (see :func:`~sklearn_dropnet.pruning._sites.site_hooks`); a unit read after
    concatenations (``Probe.readings``) is zeroed at the end of each of its
    readings, at its place among the channels there. The channels
    of the layers coupled to the unit that reach no activation (a group's
    ``unscored`` layers) are zeroed too, at their ``switch_offs`` site. That
    is exactly the network with the unit removed physically.

    Use as a context manager; the hooks are removed on exit. While inside,
    assign :attr:`dropped` (or call :meth:`set`) to change which units are
    zeroed without re-registering hooks.

    Parameters
    ----------
    module : nn.Module
        The network.
    probes : dict of str -> Probe
        From :func:`sklearn_dropnet.pruning._probes.inspect_network`.
    groups : list of UnitGroup
        From :func:`sklearn_dropnet.pruning._surgery.find_unit_groups`.
    switch_offs : dict of str -> SwitchOff, optional
        ``NetworkStructure.switch_offs``; without it, the unscored layers'
        channels are left on.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._unit_mask import UnitMask
    >>> from sklearn_dropnet.pruning._probes import inspect_network
    >>> from sklearn_dropnet.pruning._surgery import find_unit_groups
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> x = torch.ones(1, 2)
    >>> structure = inspect_network(net, x)
    >>> groups = find_unit_groups(net, x, structure)
    >>> with UnitMask(net, structure.probes, groups) as mask:
    ...     mask.set({"0": [0, 1, 2]})
    ...     torch.equal(net(x), net[2].bias.reshape(1, 1))
    True
    """

    def __init__(self, module, probes, groups, switch_offs=None):
        self.module = module
        self.probes = probes
        self.switch_offs = switch_offs or {}
        self.groups = {group.name: group for group in groups}
        self._channels = {}  # probe layer name -> LongTensor of channels to zero
        self._hooks = None

    def set(self, dropped):
        """Zero the units ``dropped`` (dict of group name -> root unit indices)."""
        channels = {}
        for name, units in dropped.items():
            units = np.asarray(list(units), dtype=int)
            if units.size == 0:
                continue
            group = self.groups[name]
            for layer, layer_channels, root_units in (*group.members, *group.unscored):
                chosen = layer_channels[np.isin(root_units, units)]
                if chosen.size:  # a coupled layer may hold none of the units (one side of a concatenation)
                    channels.setdefault(layer, set()).update(chosen.tolist())
        self._channels = {layer: torch.as_tensor(sorted(c), dtype=torch.long) for layer, c in channels.items()}

    def __enter__(self):
        by_site = {}
        readings = [reading for probe in self.probes.values() for reading in probe.readings]
        for probe in (*readings, *self.switch_offs.values()):
            by_site.setdefault(probe.chain_end, []).append(probe)
        actions = {site: functools.partial(self._zero, probes) for site, probes in by_site.items()}
        self._hooks = site_hooks(self.module, actions)
        self._hooks.__enter__()
        return self

    def _zero(self, probes, output):
        """``output`` with the units switched off of the ``probes`` read there."""
        chosen = [probe for probe in probes if probe.layer in self._channels]
        if not chosen:
            return None
        output = output.clone()
        for probe in chosen:
            dim = probe.channel_dim % output.dim()
            channels = self._channels[probe.layer].to(output.device)
            if probe.parts > 1:  # the layer's channels of a unit are one channel here (a fused gate's)
                channels = torch.unique(channels % output.shape[dim])
            output.index_fill_(dim, channels + probe.offset, 0)
        return output

    def __exit__(self, *exc_info):
        hooks, self._hooks = self._hooks, None
        return hooks.__exit__(*exc_info)
