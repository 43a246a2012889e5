"""Check that removing a group's units is the same as switching them off.

Removing a unit physically must change nothing but the unit: the smaller
network must compute what the full network computes with that unit's
post-activation set to zero. Torch-Pruning's dependency graph maps channel
indices through the operations between layers, and for some structures it
maps them wrongly without an error: a ``permute`` to channels-last before a
flatten (the wrong ``Linear`` columns go), a ``GroupNorm`` after the
activation. Or the smaller network no longer runs, when a ``view`` or
``reshape`` fixes a width, or a residual adds the network's input.

So before every round the groups are tested on a copy of the network:
half of every group's units are removed, and the copy's output is
compared with the full network's output with those units zeroed after their
activations (after a ``BatchNorm`` that follows the activation, if any), and
the channels coupled to them in layers that reach no activation zeroed after
their ``BatchNorm`` (see :class:`~sklearn_dropnet.pruning._unit_mask.UnitMask`).
The copy must also run in training mode, which Torch-Pruning never traces.
Only when that fails are the groups that fail alone searched for, by
halving the set (:func:`_failing_alone`), to leave out just those.
"""

import contextlib
import functools
import math

import numpy as np
import torch

from .._device import preserved_generators
from ..exceptions import PruningError
from ._copies import deep_copy
from ._eval_mode import evaluate
from ._probes import NORM_TYPES, flat_tensors, tied_parameters
from ._surgery import UntiedWeights, remove_units
from ._unit_mask import UnitMask
from ._unit_selection import keep_every_branch

# Removing units sums fewer terms in another order; a wrong index mapping
# moves outputs by far more than this.
_RTOL, _ATOL = 1e-3, 1e-4

_OUTPUT_SHAPE = "the network's output changes shape"


def _test_units(group):
    """Half of ``group``'s units, drawn irregularly: half of each channel group's.

    Irregular on purpose: a regular pattern (every other unit) removes the
    same positions from every channel group of a grouped convolution, the
    one case Torch-Pruning maps right by itself. The draw depends on the
    group's structure alone, so the check is deterministic. Every layer
    holding only some of the units keeps one, as in a round.
    """
    rng = np.random.default_rng(group.size)
    labels = np.zeros(group.size, dtype=int) if group.channel_groups is None else group.channel_groups
    chosen = []
    for label in range(group.n_channel_groups):
        units = np.flatnonzero(labels == label)
        size = min(len(units) // 2, len(units) - group.channel_group_floor)
        chosen.extend(rng.choice(units, size=size, replace=False))
    return keep_every_branch(group, chosen)


def _testable(group):
    """Whether the check can remove some of ``group``'s units (each channel group keeps its floor)."""
    return group.size > group.fewest


@contextlib.contextmanager
def _full_float32_precision():
    """No TF32 inside the block: CUDA's default for convolutions rounds to
    about 1e-3, as much as the check tolerates, and the check is about
    which channels go, not about precision."""
    conv, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    if hasattr(conv, "conv") and hasattr(conv.conv, "fp32_precision"):  # PyTorch 2.9 and later
        conv, name, full = conv.conv, "fp32_precision", "ieee"
    else:
        name, full = "allow_tf32", False
    saved = getattr(conv, name), getattr(matmul, name)
    setattr(conv, name, full)
    setattr(matmul, name, full)
    try:
        yield
    finally:
        setattr(conv, name, saved[0])
        setattr(matmul, name, saved[1])


def _mismatch(module, example_input, structure, groups):
    """Why removing ``groups``' test units differs from zeroing them, or None."""
    with _full_float32_precision():
        return _compare_removal(module, example_input, structure, groups)


def _compare_removal(module, example_input, structure, groups):
    units = {group.name: _test_units(group) for group in groups}
    with UnitMask(module, structure.probes, groups, structure.switch_offs) as mask:
        mask.set(units)
        expected = evaluate(module, example_input)
    smaller = deep_copy(module)
    try:
        remove_units(smaller, example_input, units, groups)
        output = evaluate(smaller, example_input)
    except UntiedWeights as exc:
        return f"it unties the weights that {[exc.layers]} share"
    except Exception as exc:  # the smaller network is broken, however it fails
        return f"the smaller network fails: {type(exc).__name__}: {exc}"
    untied = tied_parameters(module) - tied_parameters(smaller)
    if untied:
        return f"it unties the weights that {sorted(sorted(names) for names in untied)} share"
    expected, output = flat_tensors(expected), flat_tensors(output)
    if [t.shape for t in output] != [t.shape for t in expected]:
        return f"{_OUTPUT_SHAPE} from {_shapes(expected)} to {_shapes(output)}"
    amount = _difference(expected, output)
    if amount is not None:
        return f"the smaller network's output differs from the full network's with those units zeroed ({amount})"
    # Torch-Pruning traces in eval mode: a branch that only training runs
    # (an auxiliary head, say) keeps its old width and fails in training.
    failure = _training_failure(smaller, example_input)
    if failure is not None and _training_failure(deep_copy(module), example_input) is None:
        return f"the smaller network fails in training mode: {failure}"
    return None


def _shapes(tensors):
    shapes = [tuple(tensor.shape) for tensor in tensors]
    return shapes[0] if len(shapes) == 1 else tuple(shapes)


def _difference(expected, output):
    """How far ``output`` is from ``expected`` (lists of tensors of the same shapes),
    as "by up to ..." or "in NaN or inf"; None where every pair is close."""
    for want, got in zip(expected, output):
        atol = _ATOL * (1.0 + (_finite_max(want.abs()) or 0.0))  # GPU kernels may sum in another order
        if not torch.allclose(got, want, rtol=_RTOL, atol=atol, equal_nan=True):
            difference = _finite_max((got - want).abs())
            return "in NaN or inf" if difference is None else f"by up to {difference:.3g}"
    return None


def _unchanged(was, now):
    """Whether tensor ``now`` still holds the values of ``was`` (NaN where it was NaN)."""
    return torch.equal(was, now) or (
        was.is_floating_point() and torch.allclose(was, now, rtol=0, atol=0, equal_nan=True)
    )


def _finite_max(values):
    """The largest finite value of ``values`` (NaN and inf outputs compare
    equal, and must not set the tolerance), or None when none is finite."""
    finite = values[torch.isfinite(values)]
    return float(finite.max()) if finite.numel() else None


def _training_failure(module, inputs):
    """Why a training-mode pass of ``module`` fails, or None.

    ``module`` is a copy (its BatchNorm statistics change, and it is left in
    training mode); the random number generators are left as they were.
    """
    with preserved_generators(inputs.device), torch.no_grad():
        try:
            module.train()(inputs)
        except Exception as exc:  # however the smaller network fails
            return f"{type(exc).__name__}: {exc}"
    return None


def _sized_buffers(module, size, reason):
    """Where the smaller network fails, the buffers of the network's own (not a norm's
    statistics) with one value per unit: Torch-Pruning cuts parameters, not buffers."""
    if not reason.startswith("the smaller network fails"):
        return ""
    names = [
        name
        for owner_name, owner in module.named_modules()
        if not isinstance(owner, NORM_TYPES)
        for name, buffer in ((f"{owner_name}.{n}".lstrip("."), b) for n, b in owner.named_buffers(recurse=False))
        if size in buffer.shape
    ]
    if not names:
        return ""
    return (
        f"The buffers {names} have a dimension of {size}, as many as the layer's units: Torch-Pruning "
        "cuts the layers' parameters, never a buffer, and the smaller network may fail there. "
    )


# Normalizations whose statistics span channels: a unit switched off still counts in them.
_CHANNEL_MIXING_NORMS = (torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.LocalResponseNorm)


def _explanation(reason, module):
    if reason.startswith(_OUTPUT_SHAPE):
        return (
            "Its units reach the network's output without a layer in between (through "
            "pooling, say): it computes the class scores."
        )
    if reason.startswith("it unties"):
        return "Torch-Pruning cuts each module's copy of a shared weight on its own, and here the cuts differ."
    recurrent = [name for name, part in module.named_modules() if type(part) in (torch.nn.RNN, torch.nn.GRU)]
    into = (
        f", or an {type(module.get_submodule(recurrent[0])).__name__} ({recurrent[0]!r}) its units feed: "
        "Torch-Pruning 1.6 traces inside an nn.RNN or nn.GRU and cannot remove its inputs, an nn.LSTM's it can"
        if recurrent
        else ""
    )
    shuffles = [name for name, part in module.named_modules() if isinstance(part, torch.nn.ChannelShuffle)]
    if shuffles:
        into += (
            f", or the nn.ChannelShuffle ({shuffles[0]!r}) of this network, which moves a channel to "
            "another group where Torch-Pruning keeps it in place"
        )
    mixing = [(name, part) for name, part in module.named_modules() if isinstance(part, _CHANNEL_MIXING_NORMS)]
    if mixing:
        name, part = mixing[0]
        into += (
            f", or a normalization over several channels, as the {type(part).__name__} ({name!r}) of this "
            "network: removing a unit changes the mean and variance the others are normalized with"
        )
    return (
        "Removing a unit here changes more than the unit: Torch-Pruning maps its channels "
        "otherwise than the network uses them (e.g. a permute before a flatten, a reshape to a "
        f"fixed width, a residual add of the network's input{into}), or removes channels that "
        "switching the unit off does not zero (the unit's channels concatenated into the "
        "BatchNorm of later layers, as in DenseNet; a ghost module's depthwise half)."
    )


def check_deterministic(module, example_input):
    """Refuse a network whose output in eval mode changes from call to call:
    no removal could match it, and the check's warnings would blame
    Torch-Pruning for every layer. A network that changes its input in place is
    refused too: it would change the training rows at every epoch."""
    inputs = flat_tensors(example_input)
    before = [tensor.clone() for tensor in inputs]
    first = flat_tensors(evaluate(module, example_input))
    if not all(map(_unchanged, before, inputs)):
        for tensor, value in zip(inputs, before):
            tensor.copy_(value)
        raise PruningError(
            "The network changes its input in place: an in-place operation on the "
            "input in forward, such as x.mul_(2), x += 1 or x.clamp_(0, 1). It would change the "
            "training rows at every epoch and the rows given to predict. Write it out of place: "
            "x = x * 2, x = x + 1, x = x.clamp(0, 1)."
        )
    second = flat_tensors(evaluate(module, example_input))
    if [t.shape for t in first] != [t.shape for t in second]:
        amount = f"from {_shapes(first)} to {_shapes(second)}"
    else:
        amount = _difference(first, second)
    if amount is not None:
        raise PruningError(
            f"The network's output in eval mode changes between two calls on the same inputs ({amount}): "
            "something random runs in eval mode, such as F.dropout(x, p) without "
            "training=self.training, or torch.rand in forward. Removals are checked against the "
            "network's own output, and predict_proba would change from call to call. Use nn.Dropout, "
            "or F.dropout(x, p, training=self.training)."
        )


def unremovable(module, example_input, structure, groups):
    """Why removing each group's units is not exact, for the groups that fail.

    Parameters
    ----------
    module : nn.Module
    example_input : torch.Tensor
        A small batch of real input, on the module's device.
    structure : NetworkStructure
        From :func:`sklearn_dropnet.pruning._probes.inspect_network`.
    groups : list of UnitGroup
        From :func:`sklearn_dropnet.pruning._surgery.find_unit_groups`.

    Returns
    -------
    dict of str -> str
        For each group that fails the check, in the order of ``groups``,
        the reason, a sentence without its final period (what
        :func:`~sklearn_dropnet.pruning._surgery.warn_unpruned` takes).
        Empty when every group passes.
    """
    check = functools.partial(_mismatch, module, example_input, structure)
    testable = [group for group in groups if _testable(group)]
    reason = check(testable) if testable else None
    if reason is None:
        return {}
    failing = _failing_alone(check, testable, reason)
    whys = {
        group.name: (
            f"removing its units does not match switching them off ({detail}). "
            f"{_sized_buffers(module, group.size, detail)}{_explanation(detail, module)}"
        )
        for group in testable
        if (detail := failing.get(group.name)) is not None
    }
    rest = [group for group in testable if group.name not in whys]
    reason = check(rest) if rest else None
    if reason is not None:  # each group alone is fine, together they are not
        names = [group.name for group in rest]
        for name in names:
            whys[name] = (
                f"removing its units together with those of the layers {names} does not match "
                f"switching them off ({reason}), though each layer's alone does"
            )
    return {group.name: whys[group.name].rstrip(".") for group in groups if group.name in whys}


def _failing_alone(check, groups, reason):
    """Which of ``groups``, whose removal together ``check`` refuses for
    ``reason``, fail alone, by name, with ``check``'s reason.

    A group that fails alone fails with any others, so the search halves a
    failing set and looks only inside the halves that fail; a half that
    passes settles all its groups in one check, and where the first half
    passes the second must fail, so it is halved without a check of its
    own. That takes about 2 log2(n) checks a failing group, fewer than one
    a group where few fail. Where many fail (a layer type in every block),
    it would take more, so once the checks run ahead of the groups settled
    by log2(n), the search checks the rest group by group: never more
    than about log2(n) checks over one a group. Counted on timm networks at
    64 x 64: TResNet-M, 3 of 57 groups failing, 24 checks instead of 57;
    CAFormer-S18, 1 of 25, 6; NF-RegNet-B0, 38 of 54, 60.
    """
    lead = math.ceil(math.log2(len(groups)))  # how far the checks may run ahead
    failing, checks, settled = {}, 0, 0
    pending = [(list(groups), reason)]  # a set, and its reason if it is known to fail
    while pending:
        part, known = pending.pop()
        if len(part) > 1 and checks >= settled + lead:
            pending.extend(([group], None) for group in reversed(part))
            continue
        if len(part) == 1:
            if known is None:
                known, checks = check(part), checks + 1
            settled += 1
            if known is not None:
                failing[part[0].name] = known
            continue
        first, second = part[: len(part) // 2], part[len(part) // 2 :]
        first_reason, checks = check(first), checks + 1
        if first_reason is None:
            settled += len(first)
            pending.append((second, None))
            continue
        second_reason, checks = check(second), checks + 1
        if second_reason is None:
            settled += len(second)
        else:
            pending.append((second, second_reason))
        pending.append((first, first_reason))
    return {group.name: failing[group.name] for group in groups if group.name in failing}
