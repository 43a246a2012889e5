"""Group coupled units and remove them physically with Torch-Pruning.

A *unit group* is the set of output channels that must go together: one
prunable layer's units and every channel coupled to them (the BatchNorm after
it, the next layer's inputs, both sides of a residual add). Torch-Pruning's
``DependencyGraph`` finds the coupling; the graph is rebuilt for every
operation and never kept, because it cannot be pickled and goes stale as soon
as the network changes shape.
"""

from dataclasses import dataclass

import numpy as np
import torch_pruning as tp


@dataclass(frozen=True)
class UnitGroup:
    """The units of one prunable layer and the layers scored with them.

    Attributes
    ----------
    name : str
        Qualified name of the root layer; its output channels are the units.
    size : int
        Number of units.
    members : tuple of (str, numpy.ndarray, numpy.ndarray)
        ``(layer name, layer channel indices, root unit indices)`` for every
        prunable layer whose output channels are coupled to the root's
        (the root itself first). A unit's score is the mean over members.
    """

    name: str
    size: int
    members: tuple


class PruningError(ValueError):
    """Raised when a network offers nothing that DropNet can prune."""


def _dependency_graph(module, example_input):
    return tp.DependencyGraph().build_dependency(module, example_inputs=example_input, verbose=False)


def _out_channel_items(graph, group):
    for item in group:
        if graph.is_out_channel_pruning_fn(item.dep.handler):
            yield item


def find_unit_groups(module, example_input, structure):
    """List the unit groups of ``module``, in execution order.

    Parameters
    ----------
    module : nn.Module
    example_input : torch.Tensor
    structure : NetworkStructure
        From :func:`sklearn_dropnet._probes.inspect_network`.

    Returns
    -------
    list of UnitGroup
    """
    graph = _dependency_graph(module, example_input)
    names = {m: n for n, m in module.named_modules()}
    modules = dict(module.named_modules())
    covered = set()
    groups = []
    for name in structure.probes:
        if name in covered:
            continue
        layer = modules[name]
        pruner = graph.get_pruner_of_module(layer)
        size = pruner.get_out_channels(layer)
        group = graph.get_pruning_group(layer, pruner.prune_out_channels, list(range(size)))
        members = []
        blocked = False
        for item in _out_channel_items(graph, group):
            target = names.get(item.dep.target.module)
            if target in structure.output_layers:
                blocked = True
            if target in structure.probes:
                members.append(
                    (target, np.asarray(item.idxs, dtype=int), np.asarray(item.root_idxs, dtype=int))
                )
                covered.add(target)
        if blocked:
            continue
        members.sort(key=lambda member: member[0] != name)  # root first
        groups.append(UnitGroup(name=name, size=size, members=tuple(members)))
    return groups


def remove_units(module, example_input, units_to_drop):
    """Remove units from ``module`` in place.

    Parameters
    ----------
    module : nn.Module
    example_input : torch.Tensor
        A small batch on the module's device, used to trace the graph.
    units_to_drop : dict of str -> sequence of int
        For each root layer name, the indices of its units to remove.
    """
    graph = _dependency_graph(module, example_input)
    modules = dict(module.named_modules())
    for name, idxs in units_to_drop.items():
        idxs = sorted(int(i) for i in idxs)
        if not idxs:
            continue
        layer = modules[name]
        pruner = graph.get_pruner_of_module(layer)
        group = graph.get_pruning_group(layer, pruner.prune_out_channels, idxs)
        group.prune()
