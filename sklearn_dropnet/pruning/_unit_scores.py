"""Score every unit: the lower the score, the sooner the unit is dropped.

The DropNet score is a unit's mean absolute post-activation over the
training data (for a filter, |activation| is first averaged over spatial
positions). It is collected in one forward pass with temporary hooks on the
activation modules; the hooks are always removed afterwards.
"""

from contextlib import contextmanager

import numpy as np
import torch

from ._eval_mode import eval_mode

SCORES = ("activation", "apoz", "l1", "random", "max")


# The statistic each built-in score reads; a callable score reads the matrix.
_STATISTIC_OF_SCORE = {"activation": "mean_abs", "max": "mean_abs", "apoz": "nonzero_fraction"}


class _ActivationStatistics:
    """Per-unit running sums of post-activation statistics, one per layer.

    Only the ``wanted`` statistics are gathered: ``"mean_abs"``,
    ``"nonzero_fraction"`` and ``"matrix"`` (each sample's mean activation
    per unit). A sample's statistic of a filter is its mean over the
    filter's spatial positions.
    """

    def __init__(self, probes, wanted):
        unknown = set(wanted) - {"mean_abs", "nonzero_fraction", "matrix"}
        if unknown:
            raise ValueError(f"unknown activation statistics: {sorted(unknown)}")
        self.probes = probes
        self.wanted = frozenset(wanted)
        self.n_samples = 0
        self.abs_sum = {}
        self.nonzero_sum = {}
        self.matrices = {name: [] for name in probes}

    def add(self, probe, activation):
        values = activation.detach().float()
        unit_dim = probe.channel_dim % values.dim()
        positions = tuple(d for d in range(1, values.dim()) if d != unit_dim)

        def per_sample(tensor):  # mean over a unit's positions; (samples, units)
            return tensor.mean(dim=positions) if positions else tensor

        name = probe.layer
        if "mean_abs" in self.wanted:
            self.abs_sum[name] = self.abs_sum.get(name, 0) + per_sample(values.abs()).double().sum(0)
        if "nonzero_fraction" in self.wanted:
            nonzero = per_sample((values != 0).float())
            self.nonzero_sum[name] = self.nonzero_sum.get(name, 0) + nonzero.double().sum(0)
        if "matrix" in self.wanted:
            self.matrices[name].append(per_sample(values).cpu())

    def mean_abs(self, name):
        return (self.abs_sum[name] / self.n_samples).cpu().numpy()

    def nonzero_fraction(self, name):
        return (self.nonzero_sum[name] / self.n_samples).cpu().numpy()

    def matrix(self, name):
        return torch.cat(self.matrices[name]).numpy()


@contextmanager
def _probe_hooks(module, probes, statistics):
    """Hook the activation modules named by ``probes``; remove the hooks after."""
    by_activation = {}
    for probe in probes.values():
        by_activation.setdefault(probe.activation, {})[probe.call] = probe
    modules = dict(module.named_modules())
    counters = dict.fromkeys(by_activation, 0)

    def reset_counters(mod, inputs):
        for key in counters:
            counters[key] = 0

    handles = [module.register_forward_pre_hook(reset_counters)]
    for act_name, by_call in by_activation.items():

        def hook(mod, inputs, output, act_name=act_name, by_call=by_call):
            probe = by_call.get(counters[act_name])
            counters[act_name] += 1
            if probe is not None:
                statistics.add(probe, output)

        handles.append(modules[act_name].register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def collect_activation_statistics(module, batches, probes, wanted=("mean_abs",)):
    """One pass over ``batches`` (an iterable of input tensors on the device).

    ``wanted`` names the statistics to gather (see ``_ActivationStatistics``).
    """
    statistics = _ActivationStatistics(probes, wanted)
    with eval_mode(module), _probe_hooks(module, probes, statistics), torch.no_grad():
        for batch in batches:
            module(batch)
            statistics.n_samples += len(batch)
    return statistics


def _l1_norms(layer):
    weight = layer.weight.detach()
    return weight.abs().reshape(weight.shape[0], -1).sum(dim=1).cpu().double().numpy()


def _layer_scores(score, name, layer, statistics):
    if score == "activation":
        return statistics.mean_abs(name)
    if score == "max":
        return -statistics.mean_abs(name)
    if score == "apoz":
        # APoZ drops the units that are zero most often: score = 1 - APoZ.
        return statistics.nonzero_fraction(name)
    if score == "l1":
        return _l1_norms(layer)
    values = np.asarray(score(layer, statistics.matrix(name)), dtype=float)
    n_units = layer.weight.shape[0]
    if values.shape != (n_units,):
        raise ValueError(
            f"The score callable returned shape {values.shape} for layer {name!r}; "
            f"expected one score per unit, shape ({n_units},)."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"The score callable returned non-finite scores for layer {name!r}.")
    return values


def score_units(module, groups, probes, score, batches, rng):
    """Return ``{group name: scores}``, one score per unit of each group.

    Parameters
    ----------
    module : nn.Module
    groups : list of UnitGroup
    probes : dict of str -> Probe
    score : str or callable
        One of :data:`SCORES`, or ``callable(layer, activations)`` returning
        one score per unit, where ``activations`` is an array of shape
        ``(n_samples, n_units)`` holding each unit's post-activation
        (averaged over spatial positions for a filter).
    batches : callable
        Returns an iterable of input batches (called only when the score
        needs activations).
    rng : numpy.random.Generator
        For ``score="random"``.
    """
    if score == "random":
        return {group.name: rng.random(group.size) for group in groups}
    statistics = None
    if score != "l1":
        wanted = ["matrix"] if callable(score) else [_STATISTIC_OF_SCORE[score]]
        statistics = collect_activation_statistics(module, batches(), probes, wanted)
    modules = dict(module.named_modules())
    scores = {}
    for group in groups:
        total = np.zeros(group.size)
        count = np.zeros(group.size)
        for name, channels, root_units in group.members:
            layer_scores = _layer_scores(score, name, modules[name], statistics)
            np.add.at(total, root_units, layer_scores[channels])
            np.add.at(count, root_units, 1)
        scores[group.name] = total / np.maximum(count, 1)
    return scores


def is_valid_score(score):
    return callable(score) or (isinstance(score, str) and score in SCORES)

