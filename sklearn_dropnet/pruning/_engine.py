"""DropNetPruner: the steps of a DropNet round on any torch network.

A round of DropNet (Tan & Motani, Algorithm 1) is: score every unit on the
training data, choose the weakest to drop, remove them physically, restart
the survivors from their initial, trained or fresh weights, retrain.
:class:`DropNetPruner` offers each step but the training as one call, so
that any training loop can drive it: a hand-written torch loop, Lightning, a
Trainer, or :class:`~sklearn_dropnet.DropNetClassifier`. It keeps the rewind
copy of the initial weights in lock-step with the network and records each
round's size. Nothing here imports scikit-learn or skorch.
"""

import functools
import math
import numbers
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..exceptions import PruningError
from ._copies import compiled_network, deep_copy
from ._eval_mode import evaluate, float_dtype
from ._functional_weights import functional_weights
from ._network_cost import count_macs, count_parameters
from ._probes import (
    PRUNABLE_TYPES,
    inspect_network,
    kept_unit_layers,
    masked_layers,
    parametrized_layers,
    prunable_layers_hint,
)
from ._removal_check import check_deterministic, unremovable
from ._stale_optimizers import mark_replaced
from ._surgery import (
    put_back,
    remove_units,
    saved_state,
    trace_unit_groups,
    warn_unpruned,
)
from ._unit_scores import score_units
from ._unit_selection import check_units, choose_units_to_drop, keep_every_branch
from ._weight_norm import redraw_weight_normed

__all__ = ["DropNetPruner", "RESTARTS", "redraw_weights"]

_PARAMETRIZED = (
    "it has parametrizations (spectral_norm, orthogonal), which Torch-Pruning does not "
    "resize; torch.nn.utils.parametrize.remove_parametrizations removes them (DropNet prunes "
    "weight-normed layers: torch.nn.utils.parametrizations.weight_norm and the hook-based "
    "torch.nn.utils.weight_norm)"
)


_AT_THE_FLOOR = (
    "pruning brought it to one unit per channel group of the grouped convolution it is, so its "
    "channels now go with those of the layer feeding it, which is left out; its units stay, and count"
)

_ONE_PER_CHANNEL_GROUP = (
    "each of its units is a channel group of its own, in a grouped convolution it belongs to or "
    "feeds (a depthwise convolution with a channel multiplier, say) or a part of a chunk it goes "
    "into, and a channel group cannot lose its last channel"
)


def redraw_weights(module):
    """Draw fresh random weights for ``module``, in place.

    A model's own ``reset_parameters`` (He initialisation in
    :mod:`sklearn_dropnet.models`) wins over each layer's default.

    Parameters
    ----------
    module : torch.nn.Module
        The network (``restart="random"`` gives it the survivors' structure).
    """

    def reset():
        for layer in [module] if hasattr(module, "reset_parameters") else module.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()

    redraw_weight_normed(module, reset)  # a weight-normed layer's weight drawn as a plain one


def _restart_trained(pruner):
    return pruner.module


def _restart_initial(pruner):
    return deep_copy(pruner.initial).to(pruner.example.device)


def _restart_random(pruner):
    module = _restart_initial(pruner)
    redraw_weights(module)
    return module


# How the survivors of a round start the next one (the paper's step 1):
# name -> function(pruner) returning the network to train next.
RESTARTS = {
    "rewind": _restart_initial,  # the paper's default: back to the initial weights
    "random": _restart_random,  # fresh initial weights, same architecture
    "none": _restart_trained,  # fine-tune the trained weights
}


def units_left(prune_ratio, units):
    """The units left once ``prune_ratio`` of ``units`` are gone, rounded down to
    whole units (so the units removed are rounded up: 0.8 of 96 leaves 19).

    >>> units_left(0.8, 96), units_left(0.5, 96)
    (19, 48)
    """
    return int(math.floor((1 - prune_ratio) * units + 1e-9))


def _layer_names(module):
    """The names of ``module``'s layers of the kinds DropNet prunes."""
    return {name for name, part in module.named_modules() if isinstance(part, PRUNABLE_TYPES)}


def _outside_inference_mode(method):
    """Run ``method`` outside ``torch.inference_mode``: Torch-Pruning reads the
    network's graph off autograd, which inference mode switches off for good
    (``torch.enable_grad`` does not switch it back on)."""

    @functools.wraps(method)
    def outside(*args, **kwargs):
        if not torch.is_inference_mode_enabled():
            return method(*args, **kwargs)
        with torch.inference_mode(False):
            return method(*args, **kwargs)

    return outside


def _usable(inputs):
    """``inputs`` with an inference tensor (made under ``torch.inference_mode``)
    copied to a normal one, which autograd can record."""
    if isinstance(inputs, torch.Tensor) and inputs.is_inference():
        with torch.inference_mode(False):
            return inputs.clone()
    return inputs


def _uncompiled(module):
    """The network inside a ``torch.compile`` wrapper, with a warning, or ``module``."""
    inner = compiled_network(module)
    if inner is None:
        return module
    warnings.warn(
        "module is a torch.compile'd network: the pruner prunes the network inside it "
        "(module._orig_mod), whose shapes change at every removal, and remove() returns that "
        "network. Train it as it is, or compile what remove() returns.",
        UserWarning,
        stacklevel=4,
    )
    return inner


def _refuse_masks(module):
    """A layer under torch.nn.utils.prune computes its weight from ``weight_orig`` and
    ``weight_mask`` in a hook, which neither Torch-Pruning nor DropNet resizes."""
    masked = masked_layers(module)
    if masked:
        name, tensors = next(iter(masked.items()))
        more = f" (and {len(masked) - 1} more layers)" if len(masked) > 1 else ""
        raise PruningError(
            f"Layer {name!r}{more} is under torch.nn.utils.prune: its {tensors[0]!r} is computed "
            f"from {tensors[0] + '_orig'!r} and {tensors[0] + '_mask'!r} in a hook, which DropNet "
            "cannot resize when it removes units. Make the masks permanent first: "
            "torch.nn.utils.prune.remove(layer, name) for each masked tensor "
            f"(here torch.nn.utils.prune.remove(module.get_submodule({name!r}), {tensors[0]!r}))."
        )


def _materialized(module, example_input):
    """Give lazy layers (``nn.LazyLinear``) their shapes with one call, as the first
    forward pass would, so that the rewind copy has them too."""
    if any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in module.parameters()):
        with torch.no_grad():
            evaluate(module, example_input)


def _frozen_since_error(frozen):
    return PruningError(
        f"Layers {frozen} were frozen (requires_grad=False) after the pruner was built, and "
        "Torch-Pruning cannot cut a frozen layer that only the input feeds. Unfreeze them "
        "while pruning (layer.requires_grad_(True)), or build a new DropNetPruner for the "
        "network as it is now, which leaves them out."
    )


def _in_modes_of(module, previous):
    """``module`` with each submodule in the train or eval mode of ``previous``'s of
    the same name, and each parameter frozen or not as ``previous``'s (a network
    made from the rewind copy would take the copy's, as they were at the start)."""
    modes = {name: part.training for name, part in previous.named_modules()}
    for name, part in module.named_modules():
        part.training = modes.get(name, part.training)
    frozen = {name: parameter.requires_grad for name, parameter in previous.named_parameters()}
    for name, parameter in module.named_parameters():
        parameter.requires_grad_(frozen.get(name, parameter.requires_grad))
    return module


def _kept_multiples(sizes, kept, multiple, first=None):
    """The units each group keeps, a multiple of ``multiple`` (no fewer than
    ``multiple`` or the group's size, no more than its size), their total as
    close to the total of ``kept`` as the multiples allow: every group is
    rounded down, then the groups that keep the smallest share of their
    ``first`` units (the pruner's first record; by default their sizes now)
    go up a multiple, the larger remainder first among equal shares, while
    that brings the total closer (a tie stays down). By the share of the
    first units, not by the remainder in units: the large layers' larger
    remainders went up round after round, and the small layers lost the
    rounds' units (64-32 filters at half: 40-8, not 32-16)."""
    first = {name: (first or {}).get(name, sizes[name]) for name in kept}
    rounded = {name: max(min(sizes[name], multiple), units - units % multiple) for name, units in kept.items()}
    short = sum(kept.values()) - sum(rounded.values())
    for name in sorted(kept, key=lambda name: (rounded[name] / first[name], rounded[name] - kept[name])):
        if 2 * short <= multiple:
            break
        if rounded[name] + multiple <= sizes[name]:
            rounded[name] += multiple
            short -= multiple
    return rounded


def _rounded(group, chosen, scores, kept):
    """The units of ``group`` to drop so that it keeps ``kept``: the
    ``chosen`` ones go first, then the others, each by their scores (by
    index without scores)."""
    size = group.size
    chosen = np.asarray(chosen, dtype=int)
    values = np.asarray(scores.get(group.name, np.arange(size)), dtype=float)
    others = np.setdiff1d(np.arange(size), chosen)
    order = np.concatenate([chosen[np.argsort(values[chosen], kind="stable")], others[np.argsort(values[others], kind="stable")]])
    return np.sort(order[: size - kept])


def _check_fraction(value, name, low_open=False):
    inside = isinstance(value, numbers.Real) and not isinstance(value, bool) and (0 < value < 1 if low_open else 0 <= value < 1)
    if not inside:
        raise ValueError(f"{name} must be a fraction in {'(0' if low_open else '[0'}, 1), got {value!r}.")


def _check_count(value, name, least):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be a whole number, {least} or more, got {value!r}.")


def _check_scores(scores, sizes):
    """Refuse scores that are not one finite number per unit of each of the
    groups ``sizes`` names (a selection that needs no scores may get none)."""
    if not isinstance(scores, Mapping):
        raise TypeError(
            f"scores must be a dict of layer name -> one score per unit, as score() returns it; "
            f"got {type(scores).__name__}."
        )
    unknown = sorted(set(scores) - set(sizes))
    missing = sorted(set(sizes) - set(scores)) if scores else []
    if unknown or missing:
        raise ValueError(
            "scores must hold the scores of this pruner's groups, as score() returns them for the "
            f"network as it is now; {f'layers it does not have: {unknown}' if unknown else ''}"
            f"{'; ' if unknown and missing else ''}{f'no scores for {missing}' if missing else ''}."
        )
    stale = {}
    for name, values in scores.items():
        values = np.asarray(values, dtype=float)
        if values.ndim != 1 or len(values) != sizes[name]:
            stale[name] = (len(values) if values.ndim == 1 else values.shape, sizes[name])
        elif not np.isfinite(values).all():
            raise ValueError(
                f"The scores of layer {name!r} hold {int((~np.isfinite(values)).sum())} NaN or infinite "
                "values; each unit's score must be a finite number (NaN inputs, or a network whose "
                "training diverged, give such scores)."
            )
    if stale:
        raise ValueError(
            f"scores must have one score per unit of each group, as score() returns them for "
            f"the network as it is now; got (scores, units) {stale}: score again after remove()."
        )


def _check_callable(batches, name, example):
    if not callable(batches):
        raise TypeError(
            f"{name} must be a function that returns the batches (called once per pass), not "
            f"a {type(batches).__name__}: pass {example}, or lambda: loader."
        )


class _Choice(dict):
    """What :meth:`DropNetPruner.choose` returns: the units to remove, as a
    dict that remembers which pruner chose them for which of its networks
    (its count of removals and restores), so that :meth:`DropNetPruner.remove`
    can refuse them for another."""

    def __init__(self, units, pruner):
        super().__init__(units)
        self.pruner, self.network = pruner._token, pruner._networks


@dataclass
class _Checkpoint:
    module: object
    initial: object
    frozen: dict
    pruner: str  # the token of the pruner that made it


class DropNetPruner:
    """The steps of DropNet's rounds on a torch network, one call each.

    It finds the network's prunable units (the output nodes of hidden
    ``nn.Linear`` layers and the filters of ``nn.Conv1d/2d/3d`` layers whose
    output reaches an activation, a module such as ``nn.ReLU`` or a function
    such as ``F.relu``), scores them on batches the caller
    supplies, chooses the ones to drop, removes them physically with
    Torch-Pruning's dependency graph (checked against switching them off),
    keeps the rewind copy of the initial weights in lock-step and records
    each round's units, parameters and multiply-accumulates. Training is
    the caller's.

    Parameters
    ----------
    module : torch.nn.Module
        The network, pruned in place. Construct the pruner before training
        it: the rewind copy of its initial weights is taken here.
    example_input : torch.Tensor
        A small batch of real inputs (two samples are enough) on the
        network's device; the network is traced with it.
    initial : torch.nn.Module, default=None
        The rewind copy, when the caller kept it from an earlier pruner (it
        must have the network's structure); a copy of ``module`` otherwise.
    history : list of dict, default=None
        Records of earlier rounds of the same network, continued by
        :meth:`record`; a new list otherwise.
    unpruned : dict of str -> str, default=None
        Layers left out of pruning earlier, with the reason.
    frozen : dict of str -> int, default=None
        Layers counted in the first record and left out since, with their
        units (they still count towards :attr:`n_units`).

    Attributes
    ----------
    module : torch.nn.Module
        The current network. :meth:`remove` may replace it (see its
        ``restart``): read it after every removal.
    initial : torch.nn.Module
        The initial weights of the surviving units, on the CPU.
    structure : NetworkStructure
        Where each prunable layer's post-activation is read.
    units : list of UnitGroup
        The groups of coupled units that can be removed, in execution order.
    unpruned : dict of str -> str
        Each prunable-looking layer left out of pruning, and why; and each
        layer of a kind DropNet keeps whole (an ``nn.LSTM``, a transposed
        convolution), and why.
    frozen : dict of str -> int
        Layers left out after the first record, with their units.
    history : list of dict
        One record per :meth:`record` call.

    Raises
    ------
    PruningError
        If the network has no layer DropNet can prune, or if its output in
        eval mode changes from call to call (``F.dropout`` without
        ``training=self.training``).

    Examples
    --------
    DropNet on a network trained by any loop (the training is elided here):

    >>> import numpy as np
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning import DropNetPruner
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    >>> X = torch.randn(64, 4)
    >>> pruner = DropNetPruner(net, X[:2])
    >>> pruner.units_per_layer
    {'0': 8, '2': 6}
    >>> rng = np.random.default_rng(0)
    >>> scores = pruner.score(lambda: [X], "activation")
    >>> drop = pruner.choose(scores, n_drop=3, scope="layer", rng=rng)
    >>> net = pruner.remove(drop, restart="rewind")  # train net here
    >>> pruner.units_per_layer, net[0].out_features
    ({'0': 6, '2': 5}, 6)
    >>> pruner.record()["units"]
    11
    """

    @_outside_inference_mode
    def __init__(self, module, example_input, *, initial=None, history=None, unpruned=None, frozen=None):
        module = _uncompiled(module)
        _refuse_masks(module)
        # Not id(self): a pruner made after this one is freed may get its id, and
        # a token survives pickling with the choices and checkpoints that carry it.
        self._token = uuid.uuid4().hex
        self.module = module
        self.example = example_input = _usable(example_input)
        _materialized(module, example_input)
        self.initial = deep_copy(module).cpu() if initial is None else initial
        self.history = [] if history is None else history
        self.unpruned = dict(unpruned or {})
        self.frozen = dict(frozen or {})
        self._networks = 0  # removals and restores so far: a choice is for one network
        self._checked = None  # the network (count) check_removal last ran on
        self.structure = inspect_network(module, example_input)
        check_deterministic(module, example_input)
        if not self.structure.probes:
            raise PruningError(
                f"No prunable layer found in the module: {prunable_layers_hint(module, self.structure)}"
            )
        if initial is None:  # a new network: say once which layers cannot be pruned
            for name in parametrized_layers(module):
                warn_unpruned(name, _PARAMETRIZED)
            for name, reason in {**kept_unit_layers(module), **functional_weights(module, example_input)}.items():
                warn_unpruned(name, reason)
                self.unpruned[name] = reason
        self.units = self._trace()
        if initial is None:
            self._leave_out_unit_groups_at_their_floor()
        if not self.units:
            self._raise_nothing_to_prune()
        # What prune_ratio counts from until a first record: a loop that never
        # records must still stop at the ratio of the network it started with.
        self._units_at_start = self.n_units
        self._sizes_at_start = dict(self.units_per_layer)

    # ------------------------------------------------------------------
    # finding the units
    # ------------------------------------------------------------------
    def _check_unchanged(self):
        """Refuse to go on with a network whose prunable layers no longer have the
        units traced, or are other layers: the caller replaced, resized, added
        or removed one since."""
        dtype = float_dtype(self.module)
        if dtype != self._dtype:
            raise PruningError(
                f"The network's parameters changed dtype behind the pruner: they are {dtype}, and were "
                f"{self._dtype} when the pruner traced the network (module.double(), .half() or "
                ".to(dtype) after DropNetPruner). The pruner traces with example_input as it was "
                "given: convert the network first, then build the DropNetPruner with an "
                "example_input of the new dtype."
            )
        layers = _layer_names(self.module)
        if layers != self._layers:
            added, gone = sorted(layers - self._layers), sorted(self._layers - layers)
            raise PruningError(
                f"The network changed behind the pruner: {f'it has new layers {added}' if added else ''}"
                f"{' and ' if added and gone else ''}{f'its layers {gone} are gone' if gone else ''}. Change "
                "the network only through remove(), or build a new DropNetPruner for the changed network."
            )
        for network, which in ((self.module, "the network"), (self.initial, "the rewind copy")):
            modules = dict(network.named_modules())
            for group in self.units:
                weight = getattr(modules.get(group.name), "weight", None)
                units = None if weight is None else weight.shape[0] // group.parts
                if units != group.size:
                    now = "is gone" if units is None else f"has {units} units"
                    raise PruningError(
                        f"The network changed behind the pruner: in {which}, layer {group.name!r} "
                        f"{now}, where the pruner has {group.size}. Change the network only "
                        "through remove(), or build a new DropNetPruner for the changed network."
                    )

    def _trace(self):
        """The unit groups of the current network, skipping the layers left out."""
        self._layers, self._dtype = _layer_names(self.module), float_dtype(self.module)
        skipped = set(self.unpruned) | set(self.frozen)
        groups, refused = trace_unit_groups(self.module, self.example, self.structure, known=skipped)
        for name, (size, reason) in refused.items():
            if name not in skipped:
                warn_unpruned(name, reason)
                self._leave_out(name, size, reason)
        return [group for group in groups if group.name not in skipped and group.name not in refused]

    def _leave_out(self, name, size, reason):
        # A layer the first record counted keeps counting its units (frozen);
        # one it did not count is not one of the network's units.
        if self.history and name in self.history[0]["units_per_layer"]:
            self.frozen[name] = size
        else:
            self.unpruned[name] = reason

    def _leave_out_groups(self, whys):
        """Leave out the groups named in ``whys`` (name -> reason), each with its warning."""
        for group in self.units:
            if group.name in whys:
                warn_unpruned(group.name, whys[group.name])
                self._leave_out(group.name, group.size, whys[group.name])
        self.units = [group for group in self.units if group.name not in whys]

    def _keep_counting(self, groups):
        """A group of ``groups`` (before a removal) that is no group of its own now
        stays, and counts: a depthwise convolution with a channel multiplier cut to one
        output per channel group becomes a plain depthwise one, whose channels join
        those of the layer feeding it, which may be left out."""
        now = {name for group in self.units for name, _, _ in (*group.members, *group.unscored)}
        now |= {group.name for group in self.units} | set(self.frozen) | set(self.unpruned)
        modules = dict(self.module.named_modules())
        for group in groups:
            layer = modules.get(group.name)
            if group.name not in now and getattr(layer, "weight", None) is not None:
                size = layer.weight.shape[0] // group.parts
                self._leave_out(group.name, size, _AT_THE_FLOOR)
                warn_unpruned(group.name, _AT_THE_FLOOR)

    def _leave_out_unit_groups_at_their_floor(self):
        """In a new network, leave out the groups whose channel groups hold one unit each.

        A depthwise convolution with a channel multiplier has one input
        channel per channel group: the units feeding it cannot go. (A group
        that pruning brings to that floor stays, and counts.)
        """
        for group in [g for g in self.units if g.n_channel_groups > 1 and g.size == g.fewest]:
            reason = _ONE_PER_CHANNEL_GROUP
            warn_unpruned(group.name, reason)
            self._leave_out(group.name, group.size, reason)
            self.units.remove(group)

    @_outside_inference_mode
    def check_removal(self, inputs):
        """Leave out the unit groups whose removal is not exact with the current weights.

        Whether removing units computes what switching them off computes can
        depend on the weights (a head initialised to zero hides a wrong
        mapping), so check with trained ones, on ``inputs`` spread over the
        training data. A group left out gets a
        :class:`~sklearn_dropnet.exceptions.UnitRemovalWarning`.

        Parameters
        ----------
        inputs : torch.Tensor
            A batch of real inputs on the network's device (32 spread over
            the training data are enough).

        Returns
        -------
        list of UnitGroup
            The groups kept, also :attr:`units`.
        """
        if isinstance(inputs, torch.Tensor) and (inputs.dim() == 0 or len(inputs) == 0):
            raise ValueError(
                f"check_removal() got inputs of shape {tuple(inputs.shape)}: it checks the removal on a batch "
                "of real inputs, 32 spread over the training data, say (X[torch.linspace(0, len(X) - 1, 32)"
                ".long()])."
            )
        whys = unremovable(self.module, _usable(inputs), self.structure, self.units)
        self._checked = self._networks
        self._leave_out_groups(whys)
        kept = self.units
        if not kept and not self.history:
            self._raise_nothing_to_prune()
        return kept

    @_outside_inference_mode
    def retrace(self, check_inputs=None):
        """Trace the network again after its structure changed (:meth:`remove` does).

        Parameters
        ----------
        check_inputs : torch.Tensor, default=None
            When given, :meth:`check_removal` runs on them.

        Returns
        -------
        list of UnitGroup
            :attr:`units`.
        """
        self.structure = inspect_network(self.module, self.example)
        self.units = self._trace()
        if check_inputs is not None:
            self.check_removal(check_inputs)
        return self.units

    def _raise_nothing_to_prune(self):
        raise PruningError(
            f"None of the prunable layers {sorted(self.structure.probes)} can be pruned: "
            "each is coupled to the network's output, to a shared layer or to one with "
            "parametrizations, or removing its units would change the rest of the network "
            "(see the warnings above)."
        )

    @property
    def units_per_layer(self):
        """``{layer name: units}`` of the prunable layers and the frozen ones."""
        return {**{group.name: group.size for group in self.units}, **self.frozen}

    @property
    def n_units(self):
        """Units of the network: the prunable groups' and the frozen layers'."""
        return sum(group.size for group in self.units) + sum(self.frozen.values())

    @property
    def fewest_units(self):
        """The fewest units pruning can leave: one per prunable group (per channel
        group of a grouped convolution or part of a chunk, or two, see
        ``UnitGroup.channel_group_floor``),
        and the frozen ones."""
        return sum(group.fewest for group in self.units) + sum(self.frozen.values())

    def target_units(self, prune_ratio):
        """The units left once ``prune_ratio`` of the first record's units are gone.

        Parameters
        ----------
        prune_ratio : float in [0, 1)
            Fraction of the first record's units to remove (the units left
            are rounded down to whole units, so the units removed are rounded
            up: 0.8 of 96 leaves 19), and no more than :attr:`fewest_units`
            allows. Without a record, of the units the pruner started with.

        Returns
        -------
        int
        """
        first = self.history[0]["units"] if self.history else self._units_at_start
        _check_fraction(prune_ratio, "prune_ratio")
        return max(units_left(prune_ratio, first), self.fewest_units)

    def units_to_drop(self, prune_ratio, drop_fraction=0.2):
        """How many units the next round removes; 0 once ``prune_ratio`` is reached.

        Parameters
        ----------
        prune_ratio : float in [0, 1)
            Fraction of the first record's units to remove in all (without
            a record, of the units the pruner started with).
        drop_fraction : float in (0, 1), default=0.2
            The paper's ``p``: the fraction of the units left that a round
            removes (Python's ``round``: halves go to the even number), at
            least one, and no more than :meth:`target_units` leaves.

        Returns
        -------
        int

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> from sklearn_dropnet.pruning import DropNetPruner
        >>> net = nn.Sequential(nn.Linear(4, 30), nn.ReLU(), nn.Linear(30, 3))
        >>> pruner = DropNetPruner(net, torch.zeros(2, 4))
        >>> pruner.units_to_drop(prune_ratio=0.5), pruner.units_to_drop(prune_ratio=0.1)
        (6, 3)
        """
        _check_fraction(drop_fraction, "drop_fraction", low_open=True)
        left, target = self.n_units, self.target_units(prune_ratio)
        return 0 if left <= target else min(max(1, round(drop_fraction * left)), left - target)

    # ------------------------------------------------------------------
    # a round
    # ------------------------------------------------------------------
    def score(self, batches, unit_score="activation", rng=None):
        """Score every unit; the lowest scores go first.

        Parameters
        ----------
        batches : callable
            Returns an iterable of input batches on the network's device
            (the training data); called once, only when the score reads
            activations.
        unit_score : str or callable, default="activation"
            A name in :data:`~sklearn_dropnet.pruning.UNIT_SCORES`
            (``"activation"`` is DropNet's mean absolute post-activation), or
            ``callable(layer, activations)`` returning one score per unit,
            ``activations`` of shape ``(n_samples, n_units)`` (where a gate is
            fused into the layer, each unit's column once per channel of the
            layer, ``(n_samples, 2 * n_units)``, and one score per channel).
        rng : numpy.random.Generator, default=None
            For scores that draw (``"random"``).

        Returns
        -------
        dict of str -> numpy.ndarray
            One score per unit of each group in :attr:`units`.
        """
        _check_callable(batches, "batches", "lambda: X.split(256)")
        self._check_unchanged()
        rng = np.random.default_rng(rng)
        structure = self.structure
        return score_units(self.module, self.units, structure.probes, unit_score, batches, rng, structure.readings)

    def choose(self, scores, n_drop, scope="layer", rng=None, labelled_batches=None, round_to=1):
        """Choose ``n_drop`` units to remove; every group keeps at least one.

        So does every coupled layer that holds only some of a group's units
        (``UnitGroup.branches``): where the choice would take them all,
        the best of them stays and the group's next-lowest unit goes instead.

        Parameters
        ----------
        scores : dict of str -> numpy.ndarray
            From :meth:`score`.
        n_drop : int
            Units to remove in total.
        scope : str or callable, default="layer"
            A name in :data:`~sklearn_dropnet.pruning.UNIT_SELECTIONS`
            (``"layer"``: the same fraction of every layer; ``"global"``:
            the lowest scores of the network after dividing each layer's by
            its mean; ``"global_raw"``: the lowest raw scores), or a callable
            with their signature ``(scores, n_drop, rng, **context)``, such
            as :class:`~sklearn_dropnet.pruning.OracleSelection`.
        rng : numpy.random.Generator, default=None
            Breaks ties.
        labelled_batches : callable, default=None
            Returns an iterable of ``(inputs, labels)`` batches of training
            data, for selections that need them (the oracle).
        round_to : int, default=1
            Keep each group's units a multiple of ``round_to`` (8 or 16: the
            channel blocks that CPU and GPU kernels compute fastest), never
            below ``round_to`` (a group narrower than that keeps its units):
            the units a group keeps are rounded down to a multiple, dropping
            the next-lowest scores too, and then the groups that keep the
            smallest share of their first units keep one multiple more while
            that brings the round's total closer to ``n_drop``. The round may
            then remove more or fewer than ``n_drop`` units, or none.

        Returns
        -------
        dict of str -> numpy.ndarray
            For each group, the indices of its units to remove.
        """
        if labelled_batches is not None:
            _check_callable(labelled_batches, "labelled_batches", "lambda: zip(X.split(256), y.split(256))")
        _check_count(n_drop, "n_drop", 0)
        _check_count(round_to, "round_to", 1)
        sizes = {group.name: group.size for group in self.units}
        if isinstance(scores, Mapping) and not scores and not callable(scope):
            raise ValueError(
                f"choose() got no scores, and scope={scope!r} ranks the units by them: pass what score() "
                "returns (a selection that needs no scores, such as OracleSelection, is a callable scope)."
            )
        _check_scores(scores, sizes)
        staying = sum(group.fewest for group in self.units)
        if n_drop > sum(sizes.values()) - staying:
            raise ValueError(
                f"n_drop={n_drop}, but at most {sum(sizes.values()) - staying} of the {sum(sizes.values())} "
                f"units of the prunable groups can go ({staying} stay: one per group, or per channel group): "
                "units_to_drop(prune_ratio) gives a round's count."
            )
        rng = np.random.default_rng(rng)
        channel_groups = {group.name: group.channel_groups for group in self.units}
        floors = {group.name: group.channel_group_floor for group in self.units}
        drop = choose_units_to_drop(
            scores, n_drop, scope, rng, channel_groups, floors, sizes, pruner=self, labelled_batches=labelled_batches
        )
        chosen = sum(len(units) for units in drop.values())
        if callable(scope) and chosen > n_drop:
            raise ValueError(
                f"scope={getattr(scope, '__name__', scope)!r} chose {chosen} units to remove, more than "
                f"n_drop={n_drop}: a selection returns at most n_drop unit indices in all."
            )
        if round_to > 1:  # a grouped convolution's (or a chunk's) units stay balanced over its channel groups instead
            plain = [group for group in self.units if group.n_channel_groups == 1]
            kept = _kept_multiples(
                {group.name: group.size for group in plain},
                {group.name: group.size - len(drop.get(group.name, ())) for group in plain},
                round_to,
                self.history[0]["units_per_layer"] if self.history else getattr(self, "_sizes_at_start", None),
            )
            drop = {
                group.name: _rounded(group, drop.get(group.name, ()), scores, kept[group.name])
                if group.name in kept
                else drop.get(group.name, ())
                for group in self.units
            }
        # A coupled layer that holds only some of a group's units keeps one of them.
        drop = {
            group.name: keep_every_branch(group, drop[group.name], scores.get(group.name))
            for group in self.units if group.name in drop
        }  # fmt: skip
        return _Choice(drop, self)

    @_outside_inference_mode
    def remove(self, units, restart="none"):
        """Remove ``units`` physically and return the network to train next.

        The rewind copy loses the same units. The network to train next
        (also :attr:`module`) is chosen by ``restart``, and :attr:`units`
        are traced on it. Once it is trained, :meth:`check_removal` checks
        the next round's removal with its weights; where it has not run on
        this network, ``remove`` checks the groups of ``units`` on
        ``example_input`` first, and raises a
        :class:`~sklearn_dropnet.exceptions.PruningError`, removing
        nothing and leaving those groups out, where removing them would
        change what the network computes.

        Parameters
        ----------
        units : dict of str -> sequence of int
            For each group (root layer name), the indices of its units to
            remove, as :meth:`choose` returns them. A choice that
            :meth:`choose` made before the last :meth:`remove` or
            :meth:`restore`, or that another pruner made, is refused, and so
            is one that leaves a coupled layer without channels (see
            ``UnitGroup.branches``).
        restart : str, default="none"
            A name in :data:`RESTARTS`: ``"none"`` keeps the trained weights
            of the survivors (fine-tuning), ``"rewind"`` starts them from
            their initial values (the paper), ``"random"`` from fresh random
            ones.

        Returns
        -------
        torch.nn.Module
            The smaller network, on the network's device. After
            ``"rewind"`` or ``"random"`` it is a new object: give it to the
            training loop in place of the old one. After any restart the
            pruned layers hold new parameters: build the optimizer anew
            from ``module.parameters()``, or they stop training. They keep
            the old ones' ``requires_grad``, and tied weights stay tied.
            Hooks registered after the pruner was built are not on the
            rewind copy: register them again after ``"rewind"`` or
            ``"random"``.
        """
        if restart not in RESTARTS:
            raise ValueError(f"restart must be one of {sorted(RESTARTS)}, got {restart!r}.")
        self._check_unchanged()
        if isinstance(units, _Choice) and (units.pruner, units.network) != (self._token, self._networks):
            by = "another pruner" if units.pruner != self._token else "this pruner before its last remove() or restore()"
            raise ValueError(
                f"remove() got units that choose() chose for another network (by {by}): removing them "
                "now would remove the units that are now at those positions. Call score() and choose() "
                "again on the network as it is now."
            )
        units = check_units(units, {group.name: group.size for group in self.units}, "remove() got")
        for group in self.units:
            emptied = group.emptied_branches(units.get(group.name, ()))
            if emptied:
                layer, root = emptied[0]
                raise ValueError(
                    f"remove() got units that leave layer {layer!r} without channels: it holds only "
                    f"units {root.tolist()} of group {group.name!r} (an input of a concatenation), and "
                    "keeps at least one. choose() leaves one in every such layer."
                )
        if self._checked != self._networks:
            self._check_chosen(units)
        before = {key: getattr(self, key) for key in ("module", "structure", "units", "_networks", "_layers", "_dtype")}
        before.update(unpruned=dict(self.unpruned), frozen=dict(self.frozen))
        networks = saved_state(self.module) + saved_state(self.initial)
        parameters = list(self.module.parameters())
        try:
            if restart == "none":  # otherwise the next network is made from the rewind copy
                remove_units(self.module, self.example, units, self.units)
            remove_units(self.initial, self.example.cpu(), units, self.units)
            self._networks += 1
            self.module = _in_modes_of(RESTARTS[restart](self), before["module"])
            self.retrace()
            self._keep_counting(before["units"])
        except BaseException as exc:  # a failure inside the surgery: back to the networks as they were
            put_back(networks)
            vars(self).update(before)
            frozen = self._frozen_since()
            if frozen and "not in the dependency graph" in str(exc):
                raise _frozen_since_error(frozen) from exc
            raise
        mark_replaced(parameters, self.module)  # an optimizer still holding them is warned at its step
        return self.module

    def _check_chosen(self, units):
        """Where :meth:`check_removal` has not run on this network, check the groups
        ``units`` takes units from on ``example_input``, before anything is removed:
        refuse (leaving the groups out, with a warning) those whose removal would
        not compute what switching their units off computes."""
        chosen = [group for group in self.units if len(units.get(group.name, ()))]
        whys = unremovable(self.module, self.example, self.structure, chosen)
        if not whys:
            return
        frozen = [name for name in self._frozen_since() if "not in the dependency graph" in whys.get(name, "")]
        if frozen:
            raise _frozen_since_error(frozen)
        self._leave_out_groups(whys)
        raise PruningError(
            f"remove() checked the removal, as check_removal() has not run on this network: removing "
            f"units of {sorted(whys)} does not compute what switching them off computes (see the "
            "warnings), so they are left out and nothing was removed. Score and choose again; "
            "check_removal(inputs), with trained weights and a batch spread over the training data, "
            "before score() each round, checks every layer on more rows."
        )

    def _frozen_since(self):
        """The prunable layers frozen after they were traced."""
        modules = dict(self.module.named_modules())
        return [g.name for g in self.units if not all(p.requires_grad for p in modules[g.name].parameters())]

    def record(self, **fields):
        """Append the network's size to :attr:`history` and return the record.

        Parameters
        ----------
        **fields
            Anything else to keep in the record (accuracy, epochs, ...).

        Returns
        -------
        dict
            ``round`` (0 for the first record), ``units`` and
            ``units_per_layer`` left, ``fraction_left`` (of the first
            record's units), ``params``, ``macs`` (per sample), and
            ``fields``.
        """
        units = self.units_per_layer
        total = sum(units.values())
        first = self.history[0]["units"] if self.history else total
        taken = {"round", "units", "units_per_layer", "fraction_left", "params", "macs"} & set(fields)
        if taken:
            raise ValueError(f"record() fills {sorted(taken)} itself; give your own fields other names.")
        record = {
            "round": len(self.history),
            "units": total,
            "units_per_layer": units,
            "fraction_left": round(total / first, 6),
            "params": count_parameters(self.module),
            "macs": count_macs(self.module, self.example),
            **fields,
        }
        self.history.append(record)
        return record

    # ------------------------------------------------------------------
    # going back
    # ------------------------------------------------------------------
    def checkpoint(self):
        """A copy of the network and of the rewind copy, for :meth:`restore`."""
        return _Checkpoint(deep_copy(self.module), deep_copy(self.initial), dict(self.frozen), self._token)

    @_outside_inference_mode
    def restore(self, checkpoint):
        """Go back to an earlier round's network and rewind copy.

        Parameters
        ----------
        checkpoint : object
            From :meth:`checkpoint`; it stays as it is, so it can be restored
            again. :attr:`history` is the caller's to trim.

        Returns
        -------
        torch.nn.Module
            A copy of the network of ``checkpoint`` (also :attr:`module`):
            give its parameters to a new optimizer.
        """
        if not isinstance(checkpoint, _Checkpoint) or checkpoint.pruner != self._token:
            what = "of another pruner" if isinstance(checkpoint, _Checkpoint) else f"a {type(checkpoint).__name__}"
            raise ValueError(f"restore() takes a checkpoint this pruner's checkpoint() made; this one is {what}.")
        before = {**vars(self), "unpruned": dict(self.unpruned), "frozen": dict(self.frozen)}
        self.module, self.initial = deep_copy(checkpoint.module), deep_copy(checkpoint.initial)
        self.frozen = dict(checkpoint.frozen)
        try:
            self.retrace()
        except BaseException:  # the pruner stays as it was
            vars(self).update(before)
            raise
        self._networks += 1
        return self.module
