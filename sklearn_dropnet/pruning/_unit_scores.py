"""Score every unit: the lower the score, the sooner the unit is dropped.

The DropNet score is a unit's mean absolute post-activation over the
training data (for a filter, |activation| is first averaged over spatial
positions). It is collected in one forward pass with temporary hooks where
the activations are computed, modules or functions (see ``_sites``); the
hooks are always removed afterwards.

The scores are a registry, :data:`UNIT_SCORES` (name -> :class:`UnitScore`):
each entry names the activation statistic it reads (or none) and a function
of ``(layer, statistic, rng)`` returning one score per unit of the layer.
:func:`register_unit_score` adds one, usable by name everywhere a score is
taken (``DropNetPruner.score``, ``DropNetClassifier(unit_score=...)``, the
command line).
"""

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ._eval_mode import eval_mode, float_dtype
from ._signatures import accepts
from ._sites import site_hooks

__all__ = ["UNIT_SCORES", "UnitScore", "register_unit_score", "score_units"]

_STATISTICS = ("mean_abs", "nonzero_fraction", "matrix")


@dataclass(frozen=True)
class UnitScore:
    """A way of scoring units, as the registry holds it.

    Parameters
    ----------
    function : callable
        ``function(layer, statistic, rng)`` returns an array of one score
        per output unit of ``layer`` (lower = dropped sooner). ``statistic``
        is the layer's value of :attr:`statistic` (None when that is None);
        ``rng`` is a :class:`numpy.random.Generator`.
    statistic : {"mean_abs", "nonzero_fraction", "matrix"} or None
        What the scoring pass over the data collects for each unit: its
        mean absolute post-activation, the fraction of samples on which it
        is non-zero, or the ``(n_samples, n_units)`` matrix of its
        per-sample post-activations (a filter's averaged over its spatial
        positions). None: the score needs no pass over the data.
    outgoing : bool, default=False
        Multiply each unit's score by the norm of the weights it sends on
        (the columns of the next layers' weights that read it), so that
        the score measures what the next layers receive from the unit.
    """

    function: object
    statistic: object = "matrix"
    outgoing: bool = False


def _l1_norms(layer, statistic, rng):
    weight = layer.weight.detach()
    return weight.abs().reshape(weight.shape[0], -1).sum(dim=1).cpu().double().numpy()


def _random(layer, statistic, rng):
    return rng.random(layer.weight.shape[0])


UNIT_SCORES = {
    # DropNet: the mean absolute post-activation.
    "activation": UnitScore(lambda layer, mean_abs, rng: mean_abs, "mean_abs"),
    # What the next layers receive: mean |post-activation| x the norm of
    # the unit's outgoing weights.
    "contribution": UnitScore(lambda layer, mean_abs, rng: mean_abs, "mean_abs", outgoing=True),
    # APoZ drops the units that are zero most often: score = 1 - APoZ.
    "apoz": UnitScore(lambda layer, nonzero, rng: nonzero, "nonzero_fraction"),
    # The smallest L1 norms of the units' weights (magnitude pruning).
    "l1": UnitScore(_l1_norms, None),
    "random": UnitScore(_random, None),
    # The highest activations first: a sanity baseline that collapses.
    "max": UnitScore(lambda layer, mean_abs, rng: -mean_abs, "mean_abs"),
}


def register_unit_score(name, function, statistic="matrix"):
    """Add a unit score to :data:`UNIT_SCORES`, usable as ``unit_score=name``.

    Parameters
    ----------
    name : str
        The score's name; an existing name is replaced.
    function : callable
        ``function(layer, statistic, rng)``: the layer (an ``nn.Linear``
        or ``nn.Conv1d/2d/3d``), its statistic (see ``statistic``) and a NumPy
        generator; returns one finite score per output unit of the layer.
        The units with the lowest scores are dropped first.
    statistic : {"matrix", "mean_abs", "nonzero_fraction"} or None, default="matrix"
        What the function receives from a pass over the data: the
        ``(n_samples, n_units)`` matrix of per-sample post-activations, the
        per-unit mean absolute post-activation, the fraction of samples on
        which each unit is non-zero, or None (no pass over the data).

    Returns
    -------
    UnitScore
        The registered entry.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_dropnet.pruning import UNIT_SCORES, register_unit_score
    >>> entry = register_unit_score("spread", lambda layer, a, rng: a.std(axis=0))
    >>> UNIT_SCORES["spread"] is entry
    True
    >>> del UNIT_SCORES["spread"]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"A unit score's name must be a non-empty string, got {name!r}.")
    if not callable(function):
        raise TypeError(f"A unit score must be a callable (layer, statistic, rng), got {function!r}.")
    if not accepts(function, None, None, None):
        raise TypeError(
            f"A unit score must take three arguments (layer, statistic, rng), as the engine calls it; "
            f"{name!r}'s function has the signature {_signature(function)}."
        )
    if statistic is not None and statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {_STATISTICS} or None, got {statistic!r}.")
    UNIT_SCORES[name] = UnitScore(function, statistic)
    return UNIT_SCORES[name]


def as_unit_score(score):
    """The registry entry for ``score``: a name in :data:`UNIT_SCORES`, or a
    callable ``(layer, activations)`` taking the per-sample matrix."""
    if isinstance(score, UnitScore):
        return score
    if isinstance(score, str):
        if score not in UNIT_SCORES:
            raise ValueError(f"unit_score must be one of {sorted(UNIT_SCORES)} or a callable, got {score!r}.")
        return UNIT_SCORES[score]
    if callable(score):
        if not accepts(score, None, None):
            registered = (
                " (the signature of a registered score: register it with register_unit_score and pass its name)"
                if accepts(score, None, None, None)
                else ""
            )
            raise TypeError(
                f"unit_score, a callable, must take two arguments (layer, activations), "
                f"activations of shape (n_samples, n_units); it has the signature {_signature(score)}{registered}."
            )
        return UnitScore(lambda layer, matrix, rng: score(layer, matrix), "matrix")
    raise ValueError(f"unit_score must be one of {sorted(UNIT_SCORES)} or a callable, got {score!r}.")


def _signature(function):
    try:
        return f"{getattr(function, '__name__', 'function')}{inspect.signature(function)}"
    except (TypeError, ValueError):
        return repr(function)


class _ActivationStatistics:
    """Per-unit running sums of post-activation statistics, one per layer.

    Only the ``wanted`` statistics are gathered: ``"mean_abs"``,
    ``"nonzero_fraction"`` and ``"matrix"`` (each sample's mean activation
    per unit). A sample's statistic of a filter is its mean over the
    filter's spatial positions.

    The samples are usually the activation's first dimension. Where they are
    not, the dimension as long as the batch is taken (a unit's activations in
    ``nn.TransformerEncoderLayer`` without ``batch_first`` are ``(steps,
    samples, units)``); where several are, the one that alone was so in an
    earlier batch, else the first; where none is (a network that folds the
    samples into another dimension, ``x.flatten(0, 1)``), the means are
    still each unit's mean over the samples and their positions, but there
    is no per-sample ``"matrix"``.
    """

    def __init__(self, probes, wanted):
        unknown = set(wanted) - {"mean_abs", "nonzero_fraction", "matrix"}
        if unknown:
            raise ValueError(f"unknown activation statistics: {sorted(unknown)}")
        self.probes = probes
        self.wanted = frozenset(wanted)
        self.n_samples = 0
        self.batch_size = None  # of the batch being run; None: the first dimension is the samples'
        self.sample_dims = {}  # reading -> the samples' dimension, where a batch has shown it
        self.abs_sum = {}
        self.nonzero_sum = {}
        self.matrices = {}  # reading -> per-batch (samples, units) matrices

    def _sample_dim(self, reading, shape, unit_dim):
        """The dimension of the samples in an activation of ``shape``, or None."""
        if self.batch_size is None:
            return 0
        candidates = [d for d in range(len(shape)) if d != unit_dim and shape[d] == self.batch_size]
        if self.sample_dims.get(reading) in candidates:
            return self.sample_dims[reading]
        if len(candidates) == 1:
            self.sample_dims[reading] = candidates[0]
        return candidates[0] if candidates else None

    def add(self, probe, activation):
        """Add the statistics of one of ``probe``'s readings (see ``Probe.readings``)."""
        values = activation.detach().float()
        if probe.scale != 1.0:  # scaled by a number before anything reads it: the post-activation
            values = values * probe.scale
        name, unit_dim = probe.layer, probe.channel_dim % values.dim()
        if probe.width is not None:  # the layer's units among a concatenation's
            values = values.narrow(unit_dim, probe.offset, probe.width)
        sample_dim = self._sample_dim(probe, values.shape, unit_dim)
        if sample_dim is None:
            self._add_folded(name, values, unit_dim)
            return
        if sample_dim != 0:
            values = values.movedim(sample_dim, 0)
            unit_dim += unit_dim < sample_dim
        positions = tuple(d for d in range(1, values.dim()) if d != unit_dim)

        def per_sample(tensor):  # mean over a unit's positions; (samples, units)
            return tensor.mean(dim=positions) if positions else tensor

        if "mean_abs" in self.wanted:
            self.abs_sum[name] = self.abs_sum.get(name, 0) + per_sample(values.abs()).double().sum(0)
        if "nonzero_fraction" in self.wanted:
            nonzero = per_sample((values != 0).float())
            self.nonzero_sum[name] = self.nonzero_sum.get(name, 0) + nonzero.double().sum(0)
        if "matrix" in self.wanted:
            self.matrices.setdefault(probe, []).append(per_sample(values).cpu())

    def _add_folded(self, name, values, unit_dim):
        """:meth:`add` for an activation with no dimension as long as the batch."""
        if "matrix" in self.wanted:
            raise ValueError(
                f"The post-activation of layer {name!r} has shape {tuple(values.shape)} (units in "
                f"dimension {unit_dim}) for a batch of {self.batch_size} samples: no dimension of it "
                "is the samples', so the unit score cannot have one row per sample. Use a unit score "
                "that needs only means (unit_score='activation', 'contribution' or 'apoz'), or "
                "register one with statistic='mean_abs'."
            )
        units = values.movedim(unit_dim, -1).reshape(-1, values.shape[unit_dim])
        positions = len(units) / self.batch_size  # each sample's share of a unit's values
        if "mean_abs" in self.wanted:
            self.abs_sum[name] = self.abs_sum.get(name, 0) + units.abs().double().sum(0) / positions
        if "nonzero_fraction" in self.wanted:
            self.nonzero_sum[name] = self.nonzero_sum.get(name, 0) + (units != 0).double().sum(0) / positions

    def _readings(self, name):
        return len(self.probes[name].scored_readings)

    def _per_channel(self, name, values):
        """``values`` (units last) for each of the layer's output channels: a unit of
        several channels (a fused gate's, see ``Probe.parts``) gives each its value."""
        parts = self.probes[name].parts
        return values if parts == 1 else np.concatenate([values] * parts, axis=-1)

    def mean_abs(self, name):
        return self._per_channel(name, (self.abs_sum[name] / (self.n_samples * self._readings(name))).cpu().numpy())

    def nonzero_fraction(self, name):
        return self._per_channel(name, (self.nonzero_sum[name] / (self.n_samples * self._readings(name))).cpu().numpy())

    def matrix(self, name):
        """Each sample's post-activation of each unit, the mean of the unit's readings."""
        matrices = [torch.cat(self.matrices[reading]) for reading in self.probes[name].scored_readings]
        return self._per_channel(name, torch.stack(matrices).mean(0).numpy())


def _probe_hooks(module, probes, statistics, readings=None):
    """Read every probe's activation into ``statistics`` inside the block (see ``site_hooks``)."""
    by_site = {}
    for probe in probes.values():  # the layers adding into a residual stream share its activation
        for reading in probe.scored_readings:
            by_site.setdefault(reading.activation, []).append(reading)
    actions = {site: functools.partial(_add, statistics, read) for site, read in by_site.items()}
    return site_hooks(module, actions, readings)


def _add(statistics, probes, output):
    for probe in probes:
        statistics.add(probe, output)


def collect_activation_statistics(module, batches, probes, wanted=("mean_abs",), readings=None):
    """One pass over ``batches`` (an iterable of input tensors on the device).

    ``wanted`` names the statistics to gather (see ``_ActivationStatistics``);
    ``readings`` (a structure's) lets module hooks read function sites.
    """
    statistics = _ActivationStatistics(probes, wanted)
    with eval_mode(module), _probe_hooks(module, probes, statistics, readings), torch.no_grad():
        for batch in batches:
            _check_batch(batch, module)
            statistics.batch_size = len(batch)
            module(batch)
            statistics.n_samples += len(batch)
    if not statistics.n_samples:
        raise ValueError(
            "The batches to score on held no samples (an exhausted generator, called again?): "
            "pass a function that returns a new iterable at each call, such as lambda: X.split(256)."
        )
    return statistics


def _check_batch(batch, module):
    """Refuse a batch the network cannot take as it is, naming the fix (not torch's error from inside it)."""
    if isinstance(batch, (tuple, list)):
        fix = "(x for (x,) in loader)" if len(batch) == 1 else "(x for x, *_ in loader)"
        raise TypeError(
            f"The batches to score on must be input tensors, got a {type(batch).__name__} of "
            f"{len(batch)} (a DataLoader's batch, inputs with their labels?): pass lambda: {fix}."
        )
    if isinstance(batch, Mapping):
        raise TypeError(
            f"The batches to score on must be input tensors, got a dict with keys {sorted(map(str, batch))} "
            "(a DataLoader of a dataset of dicts?): pass the input tensor of each, e.g. "
            f"lambda: (batch[{next(iter(map(str, batch)), 'x')!r}] for batch in loader)."
        )
    if not isinstance(batch, torch.Tensor):
        raise TypeError(
            f"The batches to score on must be input tensors, got {type(batch).__name__}: convert them, "
            "torch.as_tensor(batch, dtype=torch.float32), on the network's device."
        )
    dtype = float_dtype(module)
    if batch.is_floating_point() and dtype is not None and batch.dtype != dtype:
        raise TypeError(
            f"The batches to score on are {batch.dtype}, the network's parameters {dtype}: convert the "
            f"batches (x.to({dtype})); torch.from_numpy of a float64 array gives float64."
        )


def _checked(values, name, n_units):
    values = np.asarray(values, dtype=float)
    if values.shape != (n_units,):
        raise ValueError(
            f"The unit score returned shape {values.shape} for layer {name!r}; "
            f"expected one score per unit, shape ({n_units},)."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"The unit score returned non-finite scores for layer {name!r}.")
    return values


def _outgoing_norms(modules, group):
    """The L2 norm of the weights each unit of ``group`` sends to the layers reading it.

    A grouped convolution reads input channel ``i`` with the rows of ``i``'s
    channel group only, at position ``i`` within that group.
    """
    if not group.consumers:
        return np.ones(group.size)
    squares = np.zeros(group.size)
    for name, inputs, root_units in group.consumers:
        layer = modules[name]
        weight = layer.weight.detach()
        groups, per_group = getattr(layer, "groups", 1), weight.shape[1]
        rows = weight.reshape(groups, weight.shape[0] // groups, per_group, -1)  # (groups, rows, inputs, taps)
        index = torch.as_tensor(inputs, device=weight.device)
        columns = rows[index // per_group, :, index % per_group]  # (len(inputs), rows, taps)
        np.add.at(squares, root_units, columns.pow(2).reshape(len(inputs), -1).sum(1).double().cpu().numpy())
    return np.sqrt(squares)


def score_units(module, groups, probes, score, batches, rng, readings=None):
    """Return ``{group name: scores}``, one score per unit of each group.

    A group's units are scored as the mean over its member layers (the
    layers whose output channels are coupled to the root's).

    Parameters
    ----------
    module : nn.Module
    groups : list of UnitGroup
    probes : dict of str -> Probe
    score : str, UnitScore or callable
        A name in :data:`UNIT_SCORES`, an entry, or ``callable(layer,
        activations)`` returning one score per unit, where ``activations``
        is an array of shape ``(n_samples, n_units)`` holding each unit's
        post-activation (averaged over spatial positions for a filter).
    batches : callable
        Returns an iterable of input batches (called only when the score
        needs activations).
    rng : numpy.random.Generator
        Passed to the score's function (``"random"`` draws from it).
    readings : dict of Site -> Reading, optional
        The function sites module hooks can read (``NetworkStructure.readings``).
    """
    entry = as_unit_score(score)
    statistics = None
    if entry.statistic is not None:
        statistics = collect_activation_statistics(module, batches(), probes, [entry.statistic], readings)
    modules = dict(module.named_modules())
    scores = {}
    for group in groups:
        total = np.zeros(group.size)
        count = np.zeros(group.size)
        for name, channels, root_units in group.members:
            layer = modules[name]
            statistic = None if statistics is None else getattr(statistics, entry.statistic)(name)
            layer_scores = _checked(entry.function(layer, statistic, rng), name, layer.weight.shape[0])
            if probes[name].parts == 1:  # each channel of the member is a reading of its unit
                np.add.at(total, root_units, layer_scores[channels])
                np.add.at(count, root_units, 1)
                continue
            # A unit's channels in a layer with a gate fused into it are one reading (one
            # channel of the product): the member counts once, with their mean score.
            member_total, member_count = np.zeros(group.size), np.zeros(group.size)
            np.add.at(member_total, root_units, layer_scores[channels])
            np.add.at(member_count, root_units, 1)
            held = member_count > 0
            total[held] += member_total[held] / member_count[held]
            count[held] += 1
        scores[group.name] = total / np.maximum(count, 1)
        if entry.outgoing:
            scores[group.name] *= _outgoing_norms(modules, group)
    return scores
