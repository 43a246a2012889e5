"""The dense baseline of a grid over ``prune_ratio``: with ``prune_ratio=0``,
``fit`` trains a network DropNet cannot prune (no hidden layer whose units
reach an activation, a layer called twice, layers the removal check refuses)
and records it, instead of raising the pruner's ``PruningError``.
"""

from .exceptions import PruningError
from .pruning._copies import deep_copy
from .pruning._engine import DropNetPruner
from .pruning._network_cost import count_macs, count_parameters
from .pruning._removal_check import check_deterministic


def first_pruner(module, example, prune_ratio):
    """The network's pruner; with ``prune_ratio=0``, a :class:`_DenseNetwork` for a
    network DropNet cannot prune (the dense baseline of a grid over ``prune_ratio``)."""
    try:
        return DropNetPruner(module, example)
    except PruningError:
        if prune_ratio:
            raise
        check_deterministic(module, example)  # a network random in eval mode is refused all the same
        return _DenseNetwork(module, example, deep_copy(module).cpu())


def checked_pruner(pruner, inputs, prune_ratio):
    """``pruner`` once its removal check ran on the trained weights; with
    ``prune_ratio=0``, a :class:`_DenseNetwork` if the check leaves nothing to prune."""
    try:
        pruner.check_removal(inputs)
    except PruningError:
        if prune_ratio:
            raise
        return _DenseNetwork(pruner.module, pruner.example, pruner.initial, pruner.unpruned)
    return pruner


class _DenseNetwork:
    """What ``fit`` needs of a pruner, for a network with nothing to prune fitted
    with ``prune_ratio=0``: it records the dense network, with no units, and runs
    no round. ``prune`` on the estimator raises the pruner's PruningError."""

    n_units = 0

    def __init__(self, module, example, initial, unpruned=None):
        self.module, self.example, self.initial, self.history = module, example, initial, []
        self.unpruned = dict(unpruned or {})
        self.units_per_layer, self.frozen = {}, {}  # no units, none of them frozen

    def check_removal(self, inputs):
        return []

    def target_units(self, prune_ratio):
        return 0

    def units_to_drop(self, prune_ratio, drop_fraction):
        return 0

    def checkpoint(self):
        return None

    def restore(self, checkpoint):
        return self.module

    def record(self, **fields):
        record = {"round": 0, "units": 0, "units_per_layer": {}, "fraction_left": 1.0}
        record.update(params=count_parameters(self.module), macs=count_macs(self.module, self.example), **fields)
        self.history.append(record)
        return record
