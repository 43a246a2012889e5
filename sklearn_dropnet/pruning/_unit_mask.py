"""Switching units off without removing them: the reference for a removal.

The oracle baseline (``_oracle``) scores a unit by the loss with the unit
switched off, and the removal check (``_removal_check``) requires a removal
to compute what the network computes with the units switched off.
"""

import numpy as np
import torch

__all__ = ["UnitMask"]


class UnitMask:
    """Switch chosen units off with temporary forward hooks.

    A unit is switched off by zeroing it at the end of its probe's
    per-channel chain (``Probe.chain_end``): its post-activation, or the
    output of a ``BatchNorm`` that follows the activation (which would turn
    a zero into its shift). That is exactly the network with the unit
    removed physically.

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

    def __init__(self, module, probes, groups):
        self.module = module
        self.probes = probes
        self.groups = {group.name: group for group in groups}
        self._channels = {}  # probe layer name -> LongTensor of channels to zero
        self._handles = []

    def set(self, dropped):
        """Zero the units ``dropped`` (dict of group name -> root unit indices)."""
        channels = {}
        for name, units in dropped.items():
            units = np.asarray(list(units), dtype=int)
            if units.size == 0:
                continue
            for layer, layer_channels, root_units in self.groups[name].members:
                chosen = layer_channels[np.isin(root_units, units)]
                channels.setdefault(layer, []).extend(chosen.tolist())
        self._channels = {layer: torch.as_tensor(sorted(set(c))) for layer, c in channels.items()}

    def __enter__(self):
        modules = dict(self.module.named_modules())
        by_module = {}
        for probe in self.probes.values():
            by_module.setdefault(probe.chain_end, {})[probe.chain_end_call] = probe
        counters = dict.fromkeys(by_module, 0)

        def reset_counters(mod, inputs):
            for key in counters:
                counters[key] = 0

        self._handles.append(self.module.register_forward_pre_hook(reset_counters))
        for name, by_call in by_module.items():

            def hook(mod, inputs, output, name=name, by_call=by_call):
                probe = by_call.get(counters[name])
                counters[name] += 1
                if probe is None or probe.layer not in self._channels:
                    return None
                channels = self._channels[probe.layer].to(output.device)
                output = output.clone()
                output.index_fill_(probe.channel_dim % output.dim(), channels, 0)
                return output

            self._handles.append(modules[name].register_forward_hook(hook))
        return self

    def __exit__(self, *exc_info):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return False
