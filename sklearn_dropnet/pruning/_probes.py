"""Find the prunable layers of a network and where their post-activations are.

DropNet scores a unit by the output of the nonlinearity that follows its
layer. One forward pass (:func:`~sklearn_dropnet.pruning._sites.record_forward`)
lists the calls of the leaf modules and of the activation functions; the
chain ``layer -> [BatchNorm / InstanceNorm / Dropout / pooling / residual add] ->
activation`` is then followed by tensor identity. The activation is a
module (``nn.ReLU()``) or a function (``F.relu``, ``torch.relu``,
``x.relu_()``), in place or not, a custom module without parameters
that calls one, or a normalization module that applies one with a child
module (timm's ``BatchNormAct2d``: its output is the post-activation); a
residual add (``out += shortcut``, ``out = out + shortcut``,
``torch.relu(x + y)``) is followed from each of its terms. An
activation written out as a gate times the layer's output (``x *
torch.sigmoid(x)``) is read at the product (see :func:`_gate`), and so is
a gate fused into the layer, whose output is split in two halves, one
multiplying the other's activation (see :func:`_fused_gate`).

A ``Linear`` or ``Conv1d/2d/3d`` layer is *prunable* when its output
reaches an activation this way, or when it goes into concatenations first
and every way its channels go on from there reaches an activation (a
DenseNet layer's, read at the ReLU of every later layer of its block: see
:attr:`Probe.more`). A layer whose output is the network's
output, directly or through element-wise steps only (an activation after
the class scores), is an *output layer* and is never pruned; nor is a layer
called twice in one pass or one whose weights another module shares (tied
weights). Those, and the layers whose output reaches no activation, are
listed with the reason in :attr:`NetworkStructure.left_out`.
"""

import bisect
import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.prune import BasePruningMethod

from ._frozen_norms import is_frozen_batch_norm
from ._sites import (
    ACTIVATION_FUNCTIONS,
    ADD_FUNCTIONS,
    BOTH_CHANNELS,
    CHANNEL_SHUFFLE,
    CONCATENATION_FUNCTIONS,
    CONV_CHANNELS,
    GLU,
    LINEAR_CHANNELS,
    PRODUCT,
    SPLITTING_FUNCTIONS,
    Site,
    is_stateless,
    record_forward,
)
from ._weight_norm import has_unsupported_parametrizations
from ._weight_norm import unsupported_reason as unsupported_weight_norm

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

# Layers with units of their own that DropNet does not prune, by what their
# units are: they keep them all, and are named (never left unpruned silently).
KEPT_UNIT_TYPES = {
    nn.ConvTranspose1d: "filters", nn.ConvTranspose2d: "filters", nn.ConvTranspose3d: "filters",
    nn.RNNBase: "hidden units", nn.RNNCellBase: "hidden units", nn.Bilinear: "units",
}  # fmt: skip


def kept_unit_layers(module):
    """The layers of ``module`` whose units DropNet keeps (:data:`KEPT_UNIT_TYPES`), each with the reason.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.ConvTranspose2d(4, 2, 2))
    >>> kept_unit_layers(net)["2"]
    'it is an nn.ConvTranspose2d, whose filters DropNet keeps (it prunes nn.Linear and nn.Conv1d/2d/3d layers)'
    """
    return {
        name: f"it is {_kind(layer)}, whose {units} DropNet keeps (it prunes nn.Linear and nn.Conv1d/2d/3d layers)"
        for name, layer in module.named_modules()
        for kind, units in KEPT_UNIT_TYPES.items()
        if isinstance(layer, kind)
    }


def _class_name(layer):
    """``layer``'s class as a message names it: "nn.LSTM", or "MyLSTM" for a class of the user's."""
    name = type(layer).__name__
    return f"nn.{name}" if type(layer).__module__.startswith("torch.nn") else name


def _kind(layer):
    """``layer``'s class with its article: "an nn.LSTM", "a MyLSTM"."""
    name = _class_name(layer)
    return f"{'an' if name.startswith('nn.') or name[0].lower() in 'aeio' else 'a'} {name}"


# Modules that keep each channel in place but shift it: a chain passes
# through them, and switching a unit off after one means zeroing its output.
# Every BatchNorm (SyncBatchNorm too, as DistributedDataParallel's scripts convert
# a network) and InstanceNorm.
NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)

# Modules that keep each channel in place and a zero a zero (as does a leaf
# module without parameters that returns its input, such as torchvision's
# StochasticDepth in eval mode).
PASSING_TYPES = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.Identity,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip

ACTIVATION_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Hardshrink,
    nn.Softshrink,
    nn.Threshold,
)

# Functions that move channels to other positions (a concatenation, a split):
# a layer's output is not followed through them, and one that reads it before
# its activation leaves the layer out.
_MOVING_FUNCTIONS = CONCATENATION_FUNCTIONS | SPLITTING_FUNCTIONS

# What a call does to the chain that follows a layer's output.
# A turning call keeps the layer's units whole but moves them to the other
# channel dimension (a transpose of a convolution's flattened output).
_ACTIVATION, _NORM, _PASSING, _TURNING, _ADD, _PRODUCT, _OTHER = (
    "activation", "norm", "passing", "turning", "add", "product", "other"
)  # fmt: skip

_NOT_RUN = (
    "it is not called in a forward pass in eval mode, where DropNet traces the network (a "
    "branch that only training runs, such as an auxiliary head, or a layer whose weights its "
    "parent uses directly)"
)

_WEIGHTS_USED_DIRECTLY = (
    "its parent, an nn.MultiheadAttention, uses its weights directly instead of calling it, "
    "so DropNet cannot see its outputs"
)

# The steps a layer's output is followed through to its activation, for messages.
_FOLLOWED = (
    "BatchNorm (frozen too) or InstanceNorm, Dropout, pooling, slicing or padding of the positions, a "
    "reshape that keeps the channels in place, a transpose or permute that moves them between dimension "
    "1 and the last, a multiplication by a number or a residual add"
)

_NO_ACTIVATION = (
    "its output reaches no activation (a module such as nn.ReLU, or a function such as "
    f"F.relu or torch.relu, possibly after {_FOLLOWED}), and DropNet scores a unit by its "
    "post-activation"
)

_BEFORE_A_PRODUCT = (
    "its output reaches no activation before a product with another tensor: a gate (as in "
    "squeeze-and-excitation or CBAM attention), or an activation written out that DropNet "
    "does not recognise, such as GELU written with torch.erf or torch.tanh (use F.gelu(x), or "
    "F.gelu(x, approximate='tanh'))"
)


# What a call that moves channels (see _MOVING_FUNCTIONS) is, and why a unit cannot be
# followed through it, for messages.
_MOVED = {
    **dict.fromkeys(CONCATENATION_FUNCTIONS, (
        "a concatenation",
        "a concatenation is followed only where every way the unit's channel goes on from it "
        "reaches an activation (as in DenseNet, where each later layer reads it through its own "
        "BatchNorm and ReLU), and here one does not",
    )),
    **dict.fromkeys(SPLITTING_FUNCTIONS, (
        "a split",
        "a split moves the unit's channel to another position of one part (as in CSPNet's "
        "cross-stage blocks and YOLOv8's C2f)",
    )),
}  # fmt: skip


def _moved(stop):
    """Why a layer whose output goes into the concatenation or split ``stop`` is left out."""
    what, why = _MOVED[stop.function]
    return (
        f"its output goes into {what} ({stop.site.name!r}) before any activation, and DropNet "
        f"follows a unit to its activation only through {_FOLLOWED}: {why}"
    )


def _role(call, channel_dim=None):
    """What ``call`` does to a chain; ``channel_dim``, the dimension of the layer's
    units (1 or -1), decides whether a slice, pad or transpose keeps them (None:
    both must be kept in place) or moves them (see :func:`_moved_to`)."""
    if call.function == GLU or isinstance(call.module, nn.GLU):
        # An activation for the units along the dimension it halves, else it mixes them.
        along = channel_dim is not None and _halved_dim(call) == channel_dim % call.output.dim()
        return _ACTIVATION if along else _OTHER
    if call.keeps is not None and (call.module is None or call.keeps or call.moves):
        if channel_dim is None:
            return _PASSING if call.keeps == BOTH_CHANNELS else _OTHER
        if channel_dim in call.keeps:
            return _PASSING
        return _TURNING if channel_dim in (call.moves or {}) else _OTHER
    if call.module is None:
        if call.function in ACTIVATION_FUNCTIONS:
            return _ACTIVATION
        if call.function == CHANNEL_SHUFFLE or call.function in _MOVING_FUNCTIONS:
            return _OTHER
        if call.function == PRODUCT:
            return _PRODUCT
        return _ADD if call.function in ADD_FUNCTIONS else _PASSING
    module = call.module
    if isinstance(module, ACTIVATION_TYPES):
        return _ACTIVATION
    if isinstance(module, NORM_TYPES) or is_frozen_batch_norm(module):
        # One that applies its activation too, with a child module (timm's BatchNormAct2d).
        return _ACTIVATION if call.activates else _NORM
    if isinstance(module, PASSING_TYPES):
        return _PASSING
    stateless = is_stateless(module)
    if stateless and call.inputs and call.output is call.inputs[0]:
        return _PASSING
    if stateless and call.activates and _same_shape(call.output, call.inputs):
        return _ACTIVATION  # a custom activation module: a Swish whose forward is x * torch.sigmoid(x)
    return _OTHER


def _halved_dim(call):
    """The dimension whose size the call halves (a gated linear unit's), or None."""
    if not call.inputs or not isinstance(call.output, torch.Tensor) or call.inputs[0].dim() != call.output.dim():
        return None
    before, after = call.inputs[0].shape, call.output.shape
    halved = [d for d in range(len(after)) if before[d] != after[d]]
    return halved[0] if len(halved) == 1 and before[halved[0]] == 2 * after[halved[0]] else None


def _moved_to(call, channel_dim):
    """The dimension of the units in ``call``'s output, from ``channel_dim`` in its input."""
    return (call.moves or {}).get(channel_dim, channel_dim)


def _same_shape(output, inputs):
    return isinstance(output, torch.Tensor) and bool(inputs) and output.shape == inputs[0].shape


@dataclass(frozen=True)
class Probe:
    """Where to read one prunable layer's post-activation.

    Attributes
    ----------
    layer : str
        Qualified name of the prunable layer.
    activation : Site
        The activation that follows it: a module's call or a function's.
    channel_dim : int
        Dimension of the activation that indexes the layer's units.
    chain_end : Site
        The last step of the per-channel chain that starts with the
        activation (the activation itself, or e.g. a ``BatchNorm`` after
        it). Switching a unit off means zeroing it there.
    scale : float
        The number the network multiplies the activation's output by before
        anything else reads it (hard swish written ``x * F.relu6(x + 3) / 6``
        is read at the product: 1/6). The unit's statistics are read times it.
    offset : int
        Where the layer's units start among the activation's channels: 0, or
        their place in a concatenation the layer's output goes into first.
    width : int or None
        The number of the layer's units among the activation's channels
        (None: all of them).
    more : tuple of Probe
        The layer's other readings, where its output goes into several
        concatenations before any activation (a DenseNet layer's, which
        every later layer of its block concatenates and puts through its own
        ``BatchNorm`` and ReLU): the unit is scored by the mean of its
        readings and switched off at the end of each.
    scored : bool
        False for a reading where the unit is only switched off: after its
        activation, its channel goes into concatenations and on into other
        layers' ``BatchNorm`` (a DenseNet stem's), which would turn the
        zero into their shift.
    parts : int
        The number of the layer's output channels per unit: 1, or 2 for a
        gated linear unit computed by one layer (``a, g =
        fc1(x).chunk(2, -1); a * F.silu(g)``, timm's ``GluMlp``), read at
        the product, or applied to its output (``nn.GLU``, ``F.glu``), read
        at the GLU: unit ``j`` is channel ``j`` there, and the layer's
        channels ``j`` and ``j + n / 2`` of its ``n``.
    """

    layer: str
    activation: Site
    channel_dim: int
    chain_end: Site
    scale: float = 1.0
    offset: int = 0
    width: object = None
    more: tuple = ()
    scored: bool = True
    parts: int = 1

    @property
    def readings(self):
        """This reading and the layer's others (:attr:`more`)."""
        return (self, *self.more)

    @property
    def scored_readings(self):
        """The :attr:`readings` the unit is scored by."""
        return tuple(reading for reading in self.readings if reading.scored)


@dataclass(frozen=True)
class SwitchOff:
    """Where a layer that reaches no activation has its units switched off.

    Such a layer is not scored, but when its output channels are coupled to
    a pruned layer's (a projection added into a residual stream, a
    depthwise convolution into a squeeze-and-excitation gate), removing a
    unit removes its channel too, so switching the unit off must zero that
    channel as well: after the layer's per-channel steps (its
    ``BatchNorm``), whose shift would otherwise keep it going.

    Attributes
    ----------
    layer : str
        Qualified name of the layer.
    channel_dim : int
        Dimension of ``chain_end``'s output that indexes the layer's units.
    chain_end : Site
        The layer's call, or the last ``BatchNorm`` (or other per-channel
        step) after it that is the only reader of what it follows.
    offset : int
        Where the layer's units start among ``chain_end``'s channels: always
        0 here (the field of :class:`Probe` that places a unit after a
        concatenation, so that a mask zeroes both alike).
    parts : int
        Always 1 here (the field of :class:`Probe` for a fused gate's units,
        likewise).
    """

    layer: str
    channel_dim: int
    chain_end: Site
    offset: int = 0
    parts: int = 1


@dataclass(frozen=True)
class NetworkStructure:
    """Prunable layers and output layers of a network, from one trace.

    Attributes
    ----------
    probes : dict of str -> Probe
        The prunable layers.
    output_layers : frozenset of str
        Layers never to prune: those giving the network's output, those
        called more than once and those sharing their weights.
    left_out : dict of str -> str
        Layers without a probe that are not the network's output, and why.
    channel_shuffles : tuple of str
        The modules whose forward shuffles channels between groups (see
        :data:`~sklearn_dropnet.pruning._sites.CHANNEL_SHUFFLE`).
    switch_offs : dict of str -> SwitchOff
        The prunable layers that reach no activation, and where to zero
        their channels.
    readings : dict of Site -> Reading
        The probes' function sites that a module hook can read (see
        :class:`~sklearn_dropnet.pruning._sites.Reading`).
    """

    probes: dict
    output_layers: frozenset
    left_out: dict = field(default_factory=dict)
    channel_shuffles: tuple = ()
    readings: dict = field(default_factory=dict)
    switch_offs: dict = field(default_factory=dict)


def parametrized_layers(module):
    """Names of the ``Linear``/``Conv`` layers with parametrizations other than a weight
    norm (never pruned)."""
    return [
        name for name, mod in module.named_modules()
        if isinstance(mod, PRUNABLE_TYPES) and has_unsupported_parametrizations(mod)
    ]  # fmt: skip


def masked_layers(module):
    """The layers of ``module`` under :mod:`torch.nn.utils.prune`, each with its masked tensors.

    >>> import torch.nn.utils.prune as prune
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> _ = prune.l1_unstructured(net[0], "weight", amount=0.5)
    >>> masked_layers(net)
    {'0': ['weight']}
    """
    masked = {}
    for name, layer in module.named_modules():
        tensors = [
            hook._tensor_name for hook in layer._forward_pre_hooks.values() if isinstance(hook, BasePruningMethod)
        ]
        if tensors:
            masked[name] = tensors
    return masked


def prunable_layers_hint(module, structure=None):
    """What DropNet prunes, and why ``module`` may have nothing it can see."""
    hint = (
        "DropNet prunes hidden nn.Linear and nn.Conv1d/2d/3d layers whose output reaches an "
        "activation: a module such as nn.ReLU, or a function such as F.relu, torch.relu or "
        f"x.relu() (optionally through {_FOLLOWED})."
    )
    parametrized = parametrized_layers(module)
    if parametrized:
        hint += (
            f" The layers {parametrized} have parametrizations (spectral_norm, orthogonal) and "
            "are not pruned; torch.nn.utils.parametrize.remove_parametrizations removes them."
        )
    kept = kept_unit_layers(module)
    if kept:
        kinds = sorted({_class_name(module.get_submodule(name)) for name in kept})
        hint += f" Layers of other kinds keep their units: {sorted(kept)[:4]} ({', '.join(kinds)})."
    left_out = {} if structure is None else structure.left_out
    if left_out:
        shown = "; ".join(
            f"{name!r}: {reason.replace(_FOLLOWED, 'the steps above')}" for name, reason in list(left_out.items())[:4]
        )  # the steps are said once, not once a layer
        hint += f" Left out: {shown}."
    return hint


def flat_tensors(values):
    """The tensors of ``values``, in order: a tensor itself, or those of a (nested)
    tuple, list or dict (a network's output of probabilities and logits, say)."""
    if isinstance(values, torch.Tensor):
        return [values]
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (tuple, list)):
        return [t for v in values for t in flat_tensors(v)]
    return []


def _readers(calls):
    """For each tensor a call reads (by ``id``), the indices of the calls that read it, in order."""
    readers = {}
    for index, call in enumerate(calls):
        for tensor in call.inputs:
            indices = readers.setdefault(id(tensor), [])
            if not indices or indices[-1] != index:
                indices.append(index)
    return readers


def _read_after(readers, tensor, index):
    """The calls after call ``index`` that read ``tensor``, in order."""
    indices = readers.get(id(tensor), [])
    return indices[bisect.bisect_right(indices, index):]


def _follow(calls, readers, start, tensor, channel_dim):
    """Follow ``tensor`` through channel-keeping steps and residual adds from call ``start``.

    Returns the index of the activation call it reaches (or of the product
    that completes an activation written out, see :func:`_gate`), or
    ``None``; the last tensor of the chain; the call that ended it short of
    an activation: the first product that read the chain (a gate), else the
    call it could not be followed through (``None`` if nothing read it
    further); and the dimension of the units in the last tensor (a
    transpose may have moved them).
    """
    chain, index, product = [tensor], start, None
    while True:
        # The next call to read it; a product (x * gate) is not followed.
        following = _read_after(readers, tensor, index)
        index = next((i for i in following if _role(calls[i]) != _PRODUCT), None)
        product = product or next((calls[i] for i in following if _role(calls[i]) == _PRODUCT), None)
        if index is None:  # read by products only, or by nothing recorded
            return None, tensor, product, channel_dim
        joined = _joined(calls, following, tensor)
        if joined is not None:
            return None, tensor, joined, channel_dim
        call = calls[index]
        role = _role(call, channel_dim)
        if role == _ACTIVATION:
            index = _gate(calls, readers, index, chain, calls[start].inputs)
            return index, calls[index].output, None, channel_dim
        if role not in (_NORM, _PASSING, _TURNING, _ADD):
            return None, tensor, product or call, channel_dim
        channel_dim = _moved_to(call, channel_dim)
        tensor = call.output
        chain.append(tensor)


def _joined(calls, following, tensor):
    """The concatenation or split among the calls ``following`` that reads ``tensor`` unchanged, or None.

    Such a call takes a unit's value on before its activation (a DenseNet
    layer's output, a CSPNet block's), where switching the unit off at the
    activation cannot zero it. Calls after one that changes ``tensor`` in
    place (``F.relu(x, inplace=True)``, ``out += shortcut``) read it changed.
    """
    for index in following:
        call = calls[index]
        if call.function in _MOVING_FUNCTIONS:
            return call
        if call.output is tensor and _role(call) != _PASSING:
            return None
    return None


def _gate(calls, readers, activation, chain, layer_inputs):
    """The product that completes an activation written out, or ``activation``.

    In ``x * torch.sigmoid(x)`` (swish), ``x * F.relu6(x + 3) / 6`` (hard
    swish) or ``x * torch.tanh(F.softplus(x))`` (mish), the activation
    function reached first computes a gate, and the post-activation is the
    gate times the layer's output: a product of a tensor of the ``chain``
    that led to the activation and a tensor computed from the activation's
    output element by element (further activations, a number added or
    multiplied), of the same shape. So is a gated linear unit's, SwiGLU's
    ``F.silu(w1(x)) * w3(x)``: the activation's output times the output of
    another layer reading the same input (``layer_inputs``, the layer's).
    A squeeze-and-excitation gate is none of these, even where the positions
    are 1 x 1 and it has the activation's shape.
    """
    shape = calls[activation].output.shape
    derived, pending = [calls[activation].output], [(activation, calls[activation].output)]
    while pending:
        after, tensor = pending.pop()
        for index in _read_after(readers, tensor, after):
            call = calls[index]
            if not isinstance(call.output, torch.Tensor) or call.output.shape != shape:
                continue
            role = _role(call)
            if role == _PRODUCT:
                other = [t for t in call.inputs if not any(t is d for d in derived)]
                # The layer's own output (swish), or another layer's of the same input:
                # a gated unit, as SwiGLU's silu(w1(x)) * w3(x).
                if len(other) == 1 and (
                    any(other[0] is t for t in chain) or _sibling_output(calls, other[0], index, layer_inputs)
                ):
                    return index
            elif role in (_ACTIVATION, _PASSING) or role == _ADD and len(call.inputs) == 1:
                derived.append(call.output)
                pending.append((index, call.output))
    return activation


def _scale_after(calls, readers, index):
    """The product of the numbers the output of call ``index`` is scaled by next, each
    scaling the only reader of what it scales (hard swish's ``/ 6``), or 1."""
    scale, tensor = 1.0, calls[index].output
    while True:
        following = _read_after(readers, tensor, index)
        if len(following) != 1 or calls[following[0]].factor is None:
            return scale
        index = following[0]
        scale *= calls[index].factor
        tensor = calls[index].output


def _sibling_output(calls, tensor, before, layer_inputs):
    """Whether ``tensor``, made before call ``before``, is the output of a prunable
    layer reading the first of ``layer_inputs``, through channel-keeping steps."""
    for index in range(before - 1, -1, -1):
        call = calls[index]
        if call.output is not tensor:
            continue
        if isinstance(call.module, PRUNABLE_TYPES):
            return bool(call.inputs and layer_inputs) and call.inputs[0] is layer_inputs[0]
        if _role(call) not in (_NORM, _PASSING) or not call.inputs:
            return False
        tensor = call.inputs[0]
    return False


def _fused_gate(calls, readers, split, tensor, channel_dim):
    """The product that completes a gated linear unit computed by one layer, or None.

    ``split`` is the call that splits ``tensor``, the layer's output, before
    any activation. A gate fused into one layer (``a, g = fc1(x).chunk(2,
    -1); a * F.silu(g)``: timm's ``GluMlp``, a fused SwiGLU) splits it into
    two halves along the channels; one reaches an activation, and a product
    of the activation's output and the other half, element by element, is
    the unit's post-activation (as :func:`_gate` reads SwiGLU's when two
    layers compute the halves).
    """
    parts, dim = split.parts, channel_dim % tensor.dim()
    if len(parts) != 2 or split.inputs[0] is not tensor:
        return None
    halves = [part.shape[:dim] + (2 * part.shape[dim],) + part.shape[dim + 1:] == tensor.shape for part in parts]
    if not all(halves):
        return None
    index = next(i for i, call in enumerate(calls) if call is split)
    for gated, other in (parts, parts[::-1]):
        activation, _, _, dim_after = _follow(calls, readers, index, gated, channel_dim)
        if activation is not None and dim_after == channel_dim:
            product = _product_with(calls, readers, activation, other)
            if product is not None:
                return product
    return None


def _product_with(calls, readers, activation, other):
    """The first product of ``other`` and the output of call ``activation`` (or a tensor
    computed from it element by element), of ``other``'s shape, or None."""
    derived, pending = [calls[activation].output], [(activation, calls[activation].output)]
    while pending:
        after, tensor = pending.pop()
        for index in _read_after(readers, tensor, after):
            call = calls[index]
            if not isinstance(call.output, torch.Tensor) or call.output.shape != other.shape:
                continue
            role = _role(call)
            if role == _PRODUCT and len(call.inputs) == 2 and any(t is other for t in call.inputs):
                return index
            if role in (_ACTIVATION, _PASSING) or role == _ADD and len(call.inputs) == 1:
                derived.append(call.output)
                pending.append((index, call.output))
    return None


def _step_name(call):
    """A module call as ``LayerNorm ('norm')``, a function call as ``'<root>: __getitem__'``."""
    return f"{type(call.module).__name__} ({call.site.name!r})" if call.module is not None else repr(call.site.name)


def _no_activation(stop, tensor=None, channel_dim=None, parameters=None):
    """Why a layer whose chain ended at the call ``stop`` (or nowhere) is left out;
    ``tensor``, the chain's last, has the layer's units along ``channel_dim``;
    ``parameters``, the network's parameters by ``id``, with their names."""
    if stop is not None and stop.function == PRODUCT:
        factor = next((parameters[id(t)] for t in stop.inputs if id(t) in (parameters or {})), None)
        if factor is not None:
            name, parameter = factor
            return (
                f"its output is multiplied by the parameter {name!r} (shape {tuple(parameter.shape)}) before "
                "any activation, and DropNet follows a unit to its activation through a multiplication by a "
                "number only (a learned scale after the activation is pruned with the layer, as is a BatchNorm)"
            )
        return _BEFORE_A_PRODUCT
    if stop is not None and stop.function in CONCATENATION_FUNCTIONS and tensor is not None:
        if _offset_in(stop, tensor, channel_dim) is None:
            return (
                f"its output goes into a concatenation ({stop.site.name!r}) that joins it along another "
                "dimension than its channels (as a class token is joined to a ViT's patch tokens) "
                f"before any activation, and DropNet follows a unit to its activation only through {_FOLLOWED}"
            )
    if stop is not None and stop.function in _MOVING_FUNCTIONS:
        return _moved(stop)
    if stop is None or stop.module is None and stop.keeps is None:
        return _NO_ACTIVATION
    if stop.keeps is not None:  # a slice or pad that moves the layer's units
        why = ", which does not keep its channels whole and in place"
    elif isinstance(stop.module, (nn.LayerNorm, nn.GroupNorm)):
        why = f" ({type(stop.module).__name__} mixes the channels)"
    else:
        why = ""
    return (
        f"its output reaches no activation: it goes into {_step_name(stop)} first{why}, "
        f"and DropNet follows a unit to its activation only through {_FOLLOWED}"
    )


def _chain_end(calls, readers, start, channel_dim):
    """Follow the per-channel chain that starts at the activation call ``start``.

    The chain follows the activation's output through channel-keeping
    steps and further activations (``ReLU -> BatchNorm``, say), each the
    only reader of what it follows, not through adds: a residual add mixes
    in other layers' channels. Returns the
    index of its last call that changes values -- a ``BatchNorm`` or an
    activation, where switching a unit off means zeroing it -- and the
    chain's final output (is it the network's output?). Identity-like steps
    (``Dropout``, ``Identity``, pooling) are passed through but do not end
    the chain: an ``nn.Identity`` shortcut may carry the tensor elsewhere.
    Nor does a step after a transpose that moved the units: they are zeroed
    along ``channel_dim``, so before it.
    """
    end, index, tensor, moved = start, start, calls[start].output, False
    while True:
        following = _read_after(readers, tensor, index)
        # A step read by others too (a RepVGG identity branch's BatchNorm beside the
        # next convolutions) is not the unit's only way on: zeroing after it would
        # leave the unit in what the others read.
        role = _role(calls[following[0]], channel_dim) if len(following) == 1 else None
        if role not in (_NORM, _PASSING, _TURNING, _ACTIVATION) or _halved_dim(calls[following[0]]) is not None:
            return end, tensor  # a gated linear unit halves the channels: the unit is not one of them
        index = following[0]
        tensor = calls[index].output
        channel_dim = _moved_to(calls[index], channel_dim)
        moved = moved or role == _TURNING
        if role in (_NORM, _ACTIVATION) and not moved:
            end = index


def _offset_in(concatenation, tensor, channel_dim):
    """Where ``tensor``'s channels start in the output of ``concatenation``, or None
    where it is not joined once along the channels."""
    inputs, output = concatenation.inputs, concatenation.output
    if sum(t is tensor for t in inputs) != 1 or not isinstance(output, torch.Tensor):
        return None
    if any(t.dim() != output.dim() for t in inputs):
        return None
    dim = channel_dim % output.dim()
    others = output.shape[:dim] + output.shape[dim + 1:]
    sizes = [t.shape[dim] for t in inputs]
    if sum(sizes) != output.shape[dim] or any(t.shape[:dim] + t.shape[dim + 1:] != others for t in inputs):
        return None  # joined along another dimension
    return sum(sizes[: next(i for i, t in enumerate(inputs) if t is tensor)])


class _ChannelWays:
    """Every way a layer's units go on from a tensor of the trace: through
    concatenations (each puts them at some offset among its channels) and the
    steps that keep channels in place. Each tensor is followed on from each
    step once per offset (a network may join the same features again by
    several ways)."""

    def __init__(self, calls, readers, channel_dim):
        self.calls, self.readers, self.channel_dim = calls, readers, channel_dim
        self._followed = set()

    def _next(self, index, tensor, offset):
        """``(reader index, call, offset of the units in its output)`` for each call that
        reads ``tensor`` (made, or changed in place, by call ``index``) next; the offset
        is None for a concatenation that does not join it once along the channels.
        None where it was followed from there already at ``offset``."""
        key = (id(tensor), index, offset)  # after an in-place step, the same tensor read on
        if key in self._followed:
            return None
        self._followed.add(key)
        steps = []
        for reader in _read_after(self.readers, tensor, index):
            call = self.calls[reader]
            at = offset
            if call.function in CONCATENATION_FUNCTIONS:
                joined = _offset_in(call, tensor, self.channel_dim)
                at = None if joined is None else offset + joined
            steps.append((reader, call, at))
            if call.output is tensor:
                break  # changed in place: what reads it later reads the call's output
        return steps

    def readings(self, index, tensor, offset, layer_inputs, outputs, found):
        """Add ``(activation site, chain end, scale, offset)`` to ``found`` for each
        activation the units reach from ``tensor``; False where a way reaches none, or
        reaches the network's output."""
        steps = self._next(index, tensor, offset)
        if steps is None:
            return True
        if not steps:
            return False  # nothing reads it: the network's output, or lost to the trace
        calls, readers = self.calls, self.readers
        for reader, call, at in steps:
            role = None if call.function in CONCATENATION_FUNCTIONS else _role(call, self.channel_dim)
            if role is None or role in (_NORM, _PASSING, _ADD):
                if at is None or not self.readings(reader, call.output, at, layer_inputs, outputs, found):
                    return False
            elif role == _ACTIVATION and _halved_dim(call) is None:
                activation = _gate(calls, readers, reader, [tensor], layer_inputs)
                end, last = _chain_end(calls, readers, activation, self.channel_dim)
                if any(last is t for t in outputs):
                    return False
                found.append((calls[activation].site, calls[end].site, _scale_after(calls, readers, activation), at))
            else:
                return False  # a product (a gate), a layer, anything that mixes the channels
        return True

    def zeroed(self, index, tensor, offset, found, concatenated=False):
        """Add ``(site, offset)`` to ``found`` wherever a zero in the units' channels of
        ``tensor`` reaches, through a concatenation, a ``BatchNorm`` or an activation
        (which may turn it into something else); False where a way is not followed."""
        for reader, call, at in self._next(index, tensor, offset) or ():
            if call.function in CONCATENATION_FUNCTIONS:
                if at is None or not self.zeroed(reader, call.output, at, found, concatenated=True):
                    return False
                continue
            if isinstance(call.module, PRUNABLE_TYPES):
                continue  # a zero in: the layer's input column goes with the unit
            role = _role(call, self.channel_dim)
            if role == _PASSING:
                if not self.zeroed(reader, call.output, at, found, concatenated):
                    return False
            elif role in (_NORM, _ACTIVATION) and concatenated:
                found.append((self.calls[_chain_end(self.calls, self.readers, reader, self.channel_dim)[0]].site, at))
            else:
                return False
        return True


def _through_concatenations(calls, readers, index, channel_dim, outputs):
    """The probe of the layer of call ``index`` whose output goes into concatenations
    before any activation (a DenseNet layer's), or None.

    Every way the layer's output goes on is followed, through channel-keeping
    steps, residual adds and concatenations (each putting the layer's units at
    some offset among its channels), and must end in an activation that does
    not give the network's output: each is a reading of the layer's units.
    """
    readings, layer = [], calls[index]
    ways = _ChannelWays(calls, readers, channel_dim)
    if not ways.readings(index, layer.output, 0, layer.inputs, outputs, readings) or not readings:
        return None
    width = layer.output.shape[channel_dim % layer.output.dim()]
    first, *more = [Probe(layer.site.name, site, channel_dim, end, scale, at, width) for site, end, scale, at in readings]
    return dataclasses.replace(first, more=tuple(more))


def _switched_off_later(calls, readers, end, channel_dim):
    """Where a unit switched off at the end of its chain (call ``end``) must be zeroed
    again, as ``(site, offset)``: after its activation its channel goes into
    concatenations, and on into ``BatchNorm`` layers (a DenseNet stem's, at every
    later layer of its block), which would turn the zero into their shift. Empty
    where it goes into no concatenation, or where some way on is not followed (the
    removal check then decides)."""
    found = []
    ok = _ChannelWays(calls, readers, channel_dim).zeroed(end, calls[end].output, 0, found)
    return found if ok else []


def tied_parameters(module):
    """Sets of module names that hold one parameter together (tied weights)."""
    owners = {}
    for name, mod in module.named_modules():
        for parameter in mod.parameters(recurse=False):
            owners.setdefault(id(parameter), set()).add(name)
    return {frozenset(names) for names in owners.values() if len(names) > 1}


def _shared_reason(name, module_calls, tied):
    if module_calls[name] > 1:
        return f"it is called {module_calls[name]} times in one forward pass"
    for names in tied:
        if name in names:
            return f"it shares its weights with {sorted(names - {name})}"
    return None


def inspect_network(module, example_input):
    """Trace ``module`` once and find its prunable layers and output layers.

    Parameters
    ----------
    module : nn.Module
        The network.
    example_input : torch.Tensor
        A small batch of real input, on the module's device.

    Returns
    -------
    NetworkStructure

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._probes import inspect_network
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden, self.out = nn.Linear(4, 8), nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.out(torch.relu(self.hidden(x)))
    >>> structure = inspect_network(Net(), torch.zeros(2, 4))
    >>> structure.probes["hidden"].activation
    Site(name='<root>: relu', call=0, function=True)
    >>> sorted(structure.output_layers)
    ['out']
    """
    if isinstance(example_input, torch.Tensor) and (example_input.dim() < 2 or not len(example_input)):
        raise ValueError(
            f"example_input must be a small batch of real inputs, shape (n_samples, ...) with "
            f"n_samples >= 1, as the network takes them (X_train[:2]); got shape "
            f"{tuple(example_input.shape)}."
        )
    try:
        calls, output = record_forward(module, example_input)
    except Exception as exc:  # whatever the network raises on it
        if isinstance(example_input, torch.Tensor):
            what = f"{tuple(example_input.shape)}, {example_input.dtype}"
        else:
            what = type(example_input).__name__
        hint = (
            " DropNet prunes networks of one input tensor, called as module(example_input): for a "
            "network of several inputs, stack them into one tensor that a wrapper module splits, "
            "forward(self, x): return self.net(x[:, 0], x[:, 1])."
            if isinstance(example_input, (tuple, list)) and isinstance(exc, TypeError) else ""
        )
        raise ValueError(
            f"The network failed on example_input ({what}): {type(exc).__name__}: {exc}. example_input "
            "is a small batch of real inputs as the network takes them (X_train[:2]), on the "
            f"network's device and in its dtype.{hint}"
        ) from exc
    outputs = flat_tensors(output)
    module_calls = {}
    for call in calls:
        if call.module is not None:
            module_calls[call.site.name] = module_calls.get(call.site.name, 0) + 1
    tied = tied_parameters(module)
    readers = _readers(calls)
    parameters = {id(parameter): (name, parameter) for name, parameter in module.named_parameters()}

    probes, output_layers, left_out, switch_offs = {}, set(), {}, {}
    for index, call in enumerate(calls):
        name = call.site.name
        if not isinstance(call.module, PRUNABLE_TYPES) or name in output_layers:
            continue
        shared = _shared_reason(name, module_calls, tied) or unsupported_weight_norm(call.module)
        if shared:  # leave alone, and never prune what is coupled to it
            output_layers.add(name)
            left_out[name] = shared
            continue
        channel_dim = LINEAR_CHANNELS if isinstance(call.module, nn.Linear) else CONV_CHANNELS
        activation_index, last, stop, activation_dim = _follow(calls, readers, index, call.output, channel_dim)
        parts = 1
        if activation_index is None and stop is not None and stop.function in SPLITTING_FUNCTIONS:
            activation_index = _fused_gate(calls, readers, stop, last, activation_dim)
            parts = 1 if activation_index is None else 2
        concatenated_first = stop is not None and stop.function in CONCATENATION_FUNCTIONS and activation_dim == channel_dim
        if activation_index is None and concatenated_first:
            concatenated = _through_concatenations(calls, readers, index, channel_dim, outputs)
            if concatenated is not None:
                probes[name] = concatenated
                continue
        if activation_index is None:
            if any(last is t for t in outputs):
                output_layers.add(name)
            else:
                left_out[name] = _no_activation(stop, last, activation_dim, parameters)
                switch_offs[name] = SwitchOff(name, channel_dim, calls[_chain_end(calls, readers, index, channel_dim)[0]].site)
            continue
        channel_dim = activation_dim
        if calls[activation_index].function == GLU or isinstance(calls[activation_index].module, nn.GLU):
            parts = 2  # F.glu, nn.GLU: a unit is two of the layer's channels, like a gate fused into it
        end, last = _chain_end(calls, readers, activation_index, channel_dim)
        if any(last is t for t in outputs):
            # Class scores through an activation (a final Sigmoid): an output layer.
            output_layers.add(name)
            continue
        scale = _scale_after(calls, readers, activation_index)
        later = _switched_off_later(calls, readers, end, channel_dim)
        more = tuple(Probe(name, site, channel_dim, site, offset=at, width=calls[end].output.shape[channel_dim], scored=False)
                     for site, at in later)  # fmt: skip
        probes[name] = Probe(name, calls[activation_index].site, channel_dim, calls[end].site, scale, more=more, parts=parts)
    modules = dict(module.named_modules())
    for name, layer in modules.items():
        if isinstance(layer, PRUNABLE_TYPES) and name not in module_calls and not has_unsupported_parametrizations(layer):
            parent = modules.get(name.rpartition(".")[0])
            left_out[name] = _WEIGHTS_USED_DIRECTLY if isinstance(parent, nn.MultiheadAttention) else _NOT_RUN
    shuffles = tuple(dict.fromkeys(c.site.name.split(":")[0] for c in calls if c.function == CHANNEL_SHUFFLE))
    sites = {reading.activation for probe in probes.values() for reading in probe.scored_readings}
    readings = {call.site: call.reading for call in calls if call.reading is not None and call.site in sites}
    return NetworkStructure(
        probes=probes, output_layers=frozenset(output_layers), left_out=left_out, channel_shuffles=shuffles,
        readings=readings, switch_offs=switch_offs,
    )  # fmt: skip
