"""Where a forward pass computes things: module calls and activation functions.

DropNet reads a unit's post-activation where the network applies its
nonlinearity, and switches the unit off there. A network applies it with a
module (``nn.ReLU()``), seen by a forward hook, or with a function
(``F.relu``, ``torch.relu``, ``x.relu_()``), seen by a
:class:`torch.overrides.TorchFunctionMode`, which torch calls for every
torch function and tensor method of the pass. A :class:`Site` names one such
place: a module's n-th call, or the pass's n-th call of an activation
function.

:func:`record_forward` runs one pass and lists, in order, the calls of the
leaf modules and the calls of the functions that matter for following a
layer's output to its activation (activations, residual adds, dropout and
pooling), with their tensors. :func:`site_hooks` then reads or changes the
outputs of chosen sites in later passes: the scoring pass over the training
data, and the passes with units switched off.

The function mode makes every torch call of a pass slower (a few
microseconds each, a tenth of a small network's pass). So a function site
that only has to be read (the scoring pass) is read with a hook on a module
call where :func:`record_forward` found that possible (a :class:`Reading`):
at the first input of the next module that reads its output unchanged, or
by applying the activation to the output of the module it reads. The mode is
entered only for the function sites left without one.

Functions called inside a leaf module (``nn.ReLU`` calls ``F.relu``) belong
to the module's call, and are not listed (the call notes that it applied an
activation); every pass counts them all the same, so that function sites
are numbered alike in every pass.

A product of two tensors is a site too: an activation written out
(``x * torch.sigmoid(x)``, ``x * F.relu6(x + 3) / 6``) ends in one.
"""

import contextlib
import functools
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ._eval_mode import evaluate
from ._frozen_norms import is_frozen_batch_norm
from ._weight_norm import has_unsupported_parametrizations

__all__ = [
    "ACTIVATION_FUNCTIONS", "CONCATENATION_FUNCTIONS", "GLU", "PRODUCT", "SPLITTING_FUNCTIONS", "Call", "Reading", "Site",
    "record_forward", "site_hooks",
]  # fmt: skip

# The functions that apply an activation of ``ACTIVATION_TYPES``, by the
# name torch gives them in ``__torch_function__``: ``F.relu``,
# ``torch.relu`` and ``x.relu()`` are all "relu"; a trailing underscore is
# the in-place form.
ACTIVATION_FUNCTIONS = frozenset({
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "rrelu", "rrelu_",
    "elu", "elu_", "selu", "selu_", "celu", "celu_", "gelu", "silu", "mish",
    "hardswish", "hardsigmoid", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "special_expit",
    "tanh", "tanh_", "softplus", "softsign", "tanhshrink", "logsigmoid", "log_sigmoid",
    "hardshrink", "softshrink", "threshold", "threshold_", "_threshold",
    # A ReLU or ReLU6 written x.clamp(min=0), torch.clamp(x, 0, 6), torch.clip(...)
    "clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_min_",
    "glu",  # F.glu, a gated linear unit: half of the channels gate the other half (see GLU)
})  # fmt: skip

# F.glu: an activation whose output has half its input's channels (a unit is two of
# the layer's channels).
GLU = "glu"

# Functions that keep every channel in place and a zero a zero: a layer's
# output is followed through them, before and after its activation.
PASSING_FUNCTIONS = frozenset({
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
})  # fmt: skip

# A product of two tensors (``x * torch.sigmoid(x)``, ``x * gate``), recorded
# as PRODUCT and numbered among the function sites: the post-activation of
# an activation written out (swish, hard swish, mish) is such a product.
PRODUCT_FUNCTIONS = frozenset({"mul", "mul_", "__mul__", "__rmul__", "__imul__"})
PRODUCT = "product"

# A residual add: a layer's output is followed through it to the activation after it.
ADD_FUNCTIONS = frozenset({"add", "add_", "__add__", "__iadd__", "__radd__"})

# Multiplication or division by a number (``x * 2``, ``x / 2``): it keeps every
# channel in place and a zero a zero, so a layer's output is followed through
# it. Only with one tensor among the operands; ``x * gate`` is not followed.
SCALING_FUNCTIONS = frozenset({"mul", "mul_", "__mul__", "__rmul__", "__imul__", "div", "div_", "__truediv__", "__itruediv__"})

# A transpose of dimensions 1 and 2 of a tensor of 4 or more dimensions is
# recorded as "channel_shuffle" when it swaps a view's (groups, channels
# per group), ShuffleNet's channel shuffle, which Torch-Pruning cannot follow.
_TRANSPOSE_FUNCTIONS = frozenset({"transpose", "swapaxes", "swapdims"})
CHANNEL_SHUFFLE = "channel_shuffle"

# Functions that reorder the dimensions of a tensor. They may move a
# convolution's channels from dimension 1 to the last, where a Linear's are
# (``dwconv(x).flatten(2).transpose(1, 2)`` in PVT-v2's and SegFormer's
# Mix-FFN, ``x.permute(0, 2, 3, 1)``), or a Linear's to dimension 1: a layer's
# output is followed through them, its units along their new dimension.
# Which channel dimensions each keeps in place is :attr:`Call.keeps`, and
# where it moves the others :attr:`Call.moves`.
REORDERING_FUNCTIONS = _TRANSPOSE_FUNCTIONS | {"permute", "movedim", "moveaxis"}

# Functions that keep the channels of some layers in place, and a zero a
# zero, depending on their arguments: a slice that keeps the batch and channel
# dimensions whole (a TCN's ``Chomp1d``, ``x[:, :, :-2]``), causal padding of
# the positions (``F.pad(x, (2, 0))``), ``x.contiguous()``. Which layers' channels
# each keeps is :attr:`Call.keeps`. Reshapes are among them: they keep an
# element's index in row-major order, so they keep a convolution's channels
# where the first two dimensions stay as they were (``x.flatten(2)``), and a
# Linear's where the last one does (LeViT's ``bn(x.flatten(0, 1)).reshape_as(x)``
# around a BatchNorm1d).
RESHAPING_FUNCTIONS = frozenset({"flatten", "reshape", "view", "reshape_as", "view_as", "unflatten"})
SLICING_FUNCTIONS = frozenset({"__getitem__", "contiguous", "pad"}) | RESHAPING_FUNCTIONS

# The channel dimensions a call may keep: 1 for a convolution's output, -1 for a Linear's.
CONV_CHANNELS, LINEAR_CHANNELS = 1, -1
BOTH_CHANNELS = frozenset({CONV_CHANNELS, LINEAR_CHANNELS})

# A concatenation (``torch.cat([a, b], 1)``) moves each input's channels to
# other positions: a layer's output is not followed through it, but it is
# recorded, with every tensor it joins as an input, so that the reason a
# layer is left unpruned can name it (DenseNet's layers).
CONCATENATION_FUNCTIONS = frozenset({"cat", "concat", "concatenate"})

# A split into parts (``x.split(8, dim=1)``, ``x.chunk(2, 1)``) moves channels to
# other positions of one part: a layer's output is not followed through it either,
# but it is recorded, with its first part as the output, so that the reason a layer
# is left unpruned can name it (CSPNet's cross-stage blocks, YOLOv8's C2f).
SPLITTING_FUNCTIONS = frozenset({"split", "chunk", "tensor_split", "split_with_sizes"})

# The functions whose calls keep or move channel dimensions (:attr:`Call.keeps`).
_KEEPING_FUNCTIONS = SLICING_FUNCTIONS | REORDERING_FUNCTIONS

_RECORDED_FUNCTIONS = (
    ACTIVATION_FUNCTIONS | PASSING_FUNCTIONS | ADD_FUNCTIONS | SCALING_FUNCTIONS | REORDERING_FUNCTIONS
    | CONCATENATION_FUNCTIONS | SPLITTING_FUNCTIONS | SLICING_FUNCTIONS
)  # fmt: skip


def _slice_keeps(tensor, index):
    """The channel dimensions ``tensor[index]`` keeps whole and in place."""
    index = index if isinstance(index, tuple) else (index,)
    plain = all(isinstance(i, slice) or i is Ellipsis or isinstance(i, int) and not isinstance(i, bool) for i in index)
    if not isinstance(tensor, torch.Tensor) or not plain or index.count(Ellipsis) > 1:
        return frozenset()
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (tensor.dim() - len(index) + 1) + index[at + 1:]
    index = index + (slice(None),) * (tensor.dim() - len(index))
    whole = [i == slice(None) for i in index]
    if len(index) != tensor.dim() or tensor.dim() < 2 or not whole[0]:
        return frozenset()
    return frozenset(dim for dim in BOTH_CHANNELS if whole[dim])


def _pad_keeps(args, kwargs):
    """The channel dimensions ``F.pad`` keeps: a convolution's, where only the positions are padded with 0."""
    tensor, pad = args[0], args[1] if len(args) > 1 else kwargs.get("pad", ())
    mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
    value = args[3] if len(args) > 3 else kwargs.get("value")
    positions_only = isinstance(tensor, torch.Tensor) and len(pad) // 2 <= tensor.dim() - 2
    return frozenset({CONV_CHANNELS}) if positions_only and (mode != "constant" or not value) else frozenset()


def _reshape_keeps(tensor, output):
    """The channel dimensions a reshape of ``tensor`` into ``output`` keeps in place."""
    if not isinstance(tensor, torch.Tensor) or not isinstance(output, torch.Tensor) or min(tensor.dim(), output.dim()) < 2:
        return frozenset()
    kept = {CONV_CHANNELS} if tensor.shape[:2] == output.shape[:2] else set()
    return frozenset(kept | ({LINEAR_CHANNELS} if tensor.shape[-1] == output.shape[-1] else set()))


def _dimension_order(func, args, kwargs):
    """For each dimension of what the reordering ``func`` returns, the dimension of its
    input it was; None where that cannot be told. It reorders a shape on the meta
    device whose sizes say which dimension each was."""
    tensor = args[0]
    if not isinstance(tensor, torch.Tensor):
        return None
    try:
        shape = func(torch.empty(tuple(range(2, tensor.dim() + 2)), device="meta"), *args[1:], **kwargs).shape
    except Exception:  # arguments torch refuses; the call itself raised already if the pass did
        return None
    return [size - 2 for size in shape]


def _reordering_keeps(order):
    """The channel dimensions a reordering of dimensions into ``order`` keeps in place,
    and where it moves the others, as ``{from: to}`` (from dimension 1 to the last,
    say). Nothing where it moves the samples' dimension."""
    if not order or order[0] != 0 or len(order) < 2:
        return frozenset(), {}
    last = len(order) - 1
    keeps, moves = set(), {}
    for dim, at in ((CONV_CHANNELS, 1), (LINEAR_CHANNELS, last)):
        now = order.index(at)
        if now == at:
            keeps.add(dim)
        elif now in (1, last):
            moves[dim] = CONV_CHANNELS if now == 1 else LINEAR_CHANNELS
    return frozenset(keeps), moves


def channels_moved(func, name, args, kwargs, output=None):
    """The channel dimensions a call keeps in place, and where it moves others
    (see :data:`REORDERING_FUNCTIONS`)."""
    if name in REORDERING_FUNCTIONS:
        rest = {key: value for key, value in kwargs.items() if key != "input"}
        return _reordering_keeps(_dimension_order(func, args or (kwargs.get("input"),), rest))
    return channels_kept(name, args, kwargs, output), {}


def channels_kept(name, args, kwargs, output=None):
    """The channel dimensions a call of the function ``name`` keeps in place, a zero a zero."""
    if name in RESHAPING_FUNCTIONS:
        return _reshape_keeps(args[0] if args else kwargs.get("input"), _first_tensor(output))
    if name == "__getitem__":
        return _slice_keeps(args[0], args[1]) if len(args) > 1 else frozenset()
    if name == "pad":
        return _pad_keeps(args, kwargs) if args else frozenset()
    if name == "contiguous" or name in PASSING_FUNCTIONS:
        return BOTH_CHANNELS
    return frozenset()


def function_name(func):
    """The name torch gives ``func`` (``F.relu``, ``torch.relu`` and ``Tensor.relu`` are "relu")."""
    return getattr(func, "__name__", "")


@dataclass(frozen=True)
class Site:
    """One place in a forward pass where a tensor is read or changed.

    Attributes
    ----------
    name : str
        The module's qualified name; for a function, where it is called
        and what it is (``"layer1.0: relu"``), for messages only.
    call : int
        For a module, which of its calls in one pass (a module may be
        called more than once); for a function, which call of an
        activation function it is among all such calls of the pass.
    function : bool
        Whether the site is a function call rather than a module call.
    """

    name: str
    call: int
    function: bool = False


@dataclass(frozen=True)
class Call:
    """A module or function call of one forward pass.

    Attributes
    ----------
    site : Site
    module : torch.nn.Module or None
        The leaf module called; None for a function.
    function : str or None
        The function's name (see :data:`ACTIVATION_FUNCTIONS`); None for a module.
    inputs : tuple of torch.Tensor
        The tensors it reads: a module's first input; both terms of an add;
        every tensor a concatenation joins; a function's first argument
        otherwise.
    output : torch.Tensor or None
        Its (first) output.
    activates : bool
        For a leaf module, whether its forward called an activation
        function (a custom ``Swish`` module, say).
    reading : Reading or None
        For a function site, how a module hook can read its output, if it can.
    factor : float or None
        For a multiplication or division by a number, the factor it scales
        by (``x / 6``: 1/6); None otherwise.
    keeps : frozenset of int or None
        For a slice, a pad, a reshape, ``contiguous`` or a reordering of
        dimensions (see :data:`SLICING_FUNCTIONS`, :data:`REORDERING_FUNCTIONS`),
        and for a leaf module without parameters that only calls those (a
        TCN's ``Chomp1d``, torchvision's ``Permute``), the channel dimensions
        it keeps in place (:data:`CONV_CHANNELS`, :data:`LINEAR_CHANNELS`);
        None for other calls.
    moves : dict of int -> int or None
        For the same calls, where it moves the channel dimensions it does not
        keep: ``{1: -1}`` for ``x.flatten(2).transpose(1, 2)``'s transpose.
    parts : tuple of torch.Tensor
        For a split (see :data:`SPLITTING_FUNCTIONS`), every part it returns;
        empty for other calls.
    """

    site: Site
    module: object
    function: object
    inputs: tuple
    output: object
    activates: bool = False
    reading: object = None
    factor: object = None
    keeps: object = None
    moves: object = None
    parts: tuple = ()


@dataclass(frozen=True)
class Reading:
    """How a hook on a module call reads a function site's output, without the function mode.

    Attributes
    ----------
    site : Site
        A leaf module's call.
    at_input : bool
        True: the function's output is that call's first input, unchanged.
        False: the function's output is ``function`` of that call's output.
    function : callable or None
        For ``at_input=False``, the activation with its other arguments bound.
    copy : bool
        Whether ``function`` works in place, and so is given a copy.
    """

    site: Site
    at_input: bool
    function: object = None
    copy: bool = False

    def __call__(self, tensor):
        """The function site's output, from the tensor the module hook sees."""
        if self.at_input:
            return tensor
        return self.function(tensor.clone() if self.copy else tensor)


def _first_tensor(values):
    if isinstance(values, torch.Tensor):
        return values
    if isinstance(values, (tuple, list)) and values and isinstance(values[0], torch.Tensor):
        return values[0]
    return None


def _tensors(values):
    return tuple(value for value in values if isinstance(value, torch.Tensor))


def _swaps_channel_groups(args, kwargs):
    """Whether a transpose swaps dimensions 1 and 2 of a tensor of 4 or more dimensions."""
    dims = list(args[1:3]) + [kwargs[key] for key in ("dim0", "dim1", "axis0", "axis1") if key in kwargs]
    tensor = args[0]
    if not isinstance(tensor, torch.Tensor) or tensor.dim() < 4 or len(dims) != 2:
        return False
    return sorted(d % tensor.dim() for d in dims) == [1, 2]


# Layers recorded as one call even when they hold modules: a Conv2d subclass
# that pads its input with a child module (EfficientNet's static "same" padding).
_LAYER_TYPES = (nn.Linear, nn.modules.conv._ConvNd)

# Normalizations recorded as one call when they hold no layer: one that applies
# its activation with a child module (timm's BatchNormAct2d), and a batch norm
# frozen into buffers (timm's FrozenBatchNormAct2d too).
_NORM_LAYER_TYPES = (
    nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm,
)  # fmt: skip


def _is_leaf(module):
    """Whether a module's call is recorded as one, with what it calls inside (a layer
    with parametrizations other than a weight norm is not: it is never pruned, and is
    named as such; nor is a normalization holding a ``Linear`` or ``Conv``, whose calls
    are recorded)."""
    if has_unsupported_parametrizations(module):
        return False
    if isinstance(module, _LAYER_TYPES):
        return True
    if isinstance(module, _NORM_LAYER_TYPES) or is_frozen_batch_norm(module):
        return not any(isinstance(inner, _LAYER_TYPES) for inner in module.modules() if inner is not module)
    return next(iter(module.children()), None) is None


def _is_product(name, args):
    """Whether a call multiplies two tensors (not a tensor by a number)."""
    return name in PRODUCT_FUNCTIONS and len(_tensors(args[:2])) == 2


def _is_site(name, args):
    """Whether a function call is numbered as a site: an activation or a product."""
    return name in ACTIVATION_FUNCTIONS or _is_product(name, args)


class _ActivationCounter(TorchFunctionMode):
    """Counts the activation-function calls and products of a pass and lets a callback see each call.

    ``on_call(func, name, args, kwargs, output, number)`` runs after every
    call of a recorded function (``number`` is the site's number in the
    pass, or None for other functions) and may return a tensor to
    replace the output. torch disables the mode while ``__torch_function__``
    runs, so what the function and the callback call is not seen. With
    ``versions=True``, :attr:`version_before` holds the version counter of
    the call's first argument before the call (an in-place call raises it).
    """

    def __init__(self, on_call, names, versions=False):
        super().__init__()
        self.on_call = on_call
        self.names = names
        self.count = 0
        self.versions = versions
        self.version_before = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.versions:
            first = args[0] if args else kwargs.get("input")
            self.version_before = first._version if isinstance(first, torch.Tensor) else None
        output = func(*args, **kwargs)
        name = function_name(func)
        if name not in self.names:
            return output
        number = None
        if _is_site(name, args):
            number = self.count
            self.count += 1
        replaced = self.on_call(func, name, args, kwargs, output, number)
        if replaced is None:
            return output
        if args and output is args[0]:  # in place: the caller may keep using its own tensor
            output.copy_(replaced)
            return output
        return replaced


def record_forward(module, example_input):
    """Run ``module`` once in eval mode; list its calls in order and return the output.

    Returns
    -------
    calls : list of Call
        The leaf modules' calls and, outside leaf modules, the calls of
        activation functions, residual adds, products of two tensors,
        concatenations and channel-keeping functions (dropout, pooling,
        scaling by a number, slices and pads). A function site's call has
        its :class:`Reading` where a module hook can read its output.
    output : object
        What the module returned.
    """
    # leaves: the leaf modules being called, outermost first (one deep, but for a module called inside one)
    calls, stack, leaves, module_calls, activating = [], [], [], {}, set()
    entered, nested, module_versions, site_calls, inside = [], set(), {}, {}, {}

    def owner():
        return stack[-1] if stack and stack[-1] else "<root>"

    def on_call(func, name, args, kwargs, output, number):
        if leaves:
            if name in ACTIVATION_FUNCTIONS:
                activating.add(leaves[0])  # the recorded leaf module applies an activation
            first = args[0] if args else kwargs.get("input")
            inside.setdefault(stack[-1], []).append((first, _first_tensor(output), *channels_moved(func, name, args, kwargs, output)))
            return None
        if name in CONCATENATION_FUNCTIONS:
            joined = _tensors(args[0] if args else kwargs.get("tensors", ()))
            calls.append(Call(Site(f"{owner()}: {name}", -1, function=True), None, name, joined, _first_tensor(output)))
            return None
        if name in SPLITTING_FUNCTIONS:
            split = _tensors(args[:1] or (kwargs.get("input", kwargs.get("self")),))
            parts = tuple(_tensors(output))
            calls.append(Call(Site(f"{owner()}: {name}", -1, function=True), None, name, split, _first_tensor(output), parts=parts))
            return None
        if not args:  # F.relu(input=x)
            args = (kwargs.get("input"),)
        if name in _TRANSPOSE_FUNCTIONS and _swaps_channel_groups(args, kwargs):
            name = CHANNEL_SHUFFLE
        factor = None
        if _is_product(name, args):
            name = PRODUCT
        elif name in SCALING_FUNCTIONS:
            if len(_tensors(args[:2])) != 1 or isinstance(args[0], (int, float)) and name.startswith("div"):
                return None  # not a division of the tensor (2 / x, x / y): not followed
            factor = _factor(name, args, kwargs)
        inputs = _tensors(args[:2]) if name in ADD_FUNCTIONS | SCALING_FUNCTIONS | {PRODUCT} else _tensors(args[:1])
        site = Site(f"{owner()}: {name}", -1 if number is None else number, function=True)
        keeps, moves = channels_moved(func, name, args, kwargs, output) if name in _KEEPING_FUNCTIONS else (None, None)
        output = _first_tensor(output)
        if number is not None and output is not None:
            rest = {key: value for key, value in kwargs.items() if key != "input"}
            in_place = output is args[0]
            site_calls[len(calls)] = (func, args[1:], rest, counter.version_before, output._version, in_place)
        calls.append(Call(site, None, name, inputs, output, factor=factor, keeps=keeps, moves=moves))
        return None

    def pre_hook(mod, inputs, name, leaf):
        if leaves:
            nested.add(name)
        elif leaf:
            first = _first_tensor(inputs)
            entered.append(None if first is None else first._version)
        stack.append(name)
        if leaf:
            leaves.append(name)

    def post_hook(mod, inputs, output, name, leaf):
        stack.pop()
        if leaf:
            leaves.pop()
        if leaf and not leaves:  # a module called inside a recorded call belongs to it
            number = module_calls.get(name, 0)
            module_calls[name] = number + 1
            first = _first_tensor(inputs)
            activates = name in activating
            activating.discard(name)
            inputs = () if first is None else (first,)
            output = _first_tensor(output)
            module_versions[len(calls)] = (entered.pop(), None if output is None else output._version)
            keeps, moves = _module_keeps(mod, inputs, output, inside.pop(name, ()))
            calls.append(Call(Site(name, number), mod, None, inputs, output, activates, keeps=keeps, moves=moves))

    handles = []
    for name, mod in module.named_modules():
        leaf = _is_leaf(mod)
        handles.append(mod.register_forward_pre_hook(lambda m, i, name=name, leaf=leaf: pre_hook(m, i, name, leaf)))
        handles.append(mod.register_forward_hook(lambda m, i, o, name=name, leaf=leaf: post_hook(m, i, o, name, leaf)))
    counter = _ActivationCounter(on_call, _RECORDED_FUNCTIONS, versions=True)
    with counter:
        output = evaluate(module, example_input, handles)
    _add_readings(calls, module_versions, site_calls, nested)
    return calls, output


def is_stateless(module):
    """Whether ``module`` holds no parameters and no buffers (a ``Chomp1d``, a custom activation)."""
    return next(module.parameters(), None) is None and next(module.buffers(), None) is None


def _module_keeps(module, inputs, output, steps):
    """The channel dimensions a leaf module keeps in place and where it moves others
    (see :attr:`Call.moves`), if it has no parameters and its forward is a chain of
    slices, pads, reorderings and the like from its input to its output (a TCN's
    ``Chomp1d``, torchvision's ``Permute``); ``(None, None)`` otherwise.

    ``steps`` are the (input, output, channels kept, channels moved) of the
    functions its forward called. Anything else it did breaks the chain, and the
    module keeps nothing.
    """
    if not is_stateless(module) or not steps or not inputs or output is None:
        return None, None
    tensor, where = inputs[0], {dim: dim for dim in BOTH_CHANNELS}  # each input channel dimension: where it is now
    for first, result, kept, moved in steps:
        if first is not tensor:
            return frozenset(), {}
        where = {dim: at if at in kept else moved[at] for dim, at in where.items() if at in kept or at in moved}
        tensor = result
    if tensor is not output:
        return frozenset(), {}
    return frozenset(dim for dim, at in where.items() if dim == at), {dim: at for dim, at in where.items() if dim != at}


# Function sites never computed again in a hook: a product (its two factors are
# not one module's output), and RReLU (random when called with training=True;
# computing it again would draw other slopes and advance torch's generator).
_NOT_RECOMPUTED = frozenset({PRODUCT, "rrelu", "rrelu_"})


def _factor(name, args, kwargs):
    """The number a multiplication or division of a tensor by a number scales it by, or None."""
    number = next((value for value in args[:2] if not isinstance(value, torch.Tensor)), None)
    if not isinstance(number, (int, float)) or isinstance(number, bool) or kwargs.get("rounding_mode") is not None:
        return None
    if "div" in name:
        return 1.0 / number if number else None
    return float(number)


def _add_readings(calls, module_versions, site_calls, nested):
    """Give each function site's call its :class:`Reading`, where there is one.

    First choice: the first later module call whose first input is the
    site's output, unchanged since (its version counter the same). Else,
    for an activation (not a product) whose other arguments are no tensors:
    the module call whose output is the activation's input, unchanged
    since (see ``_NOT_RECOMPUTED``). Modules also called inside another
    recorded call are not used (hooks would count those calls too).
    """
    readers, producers = {}, {}
    for index, (input_version, output_version) in module_versions.items():
        call = calls[index]
        if call.site.name in nested:
            continue
        if call.inputs:
            readers.setdefault(id(call.inputs[0]), []).append((index, input_version))
        if call.output is not None:
            producers[id(call.output)] = (index, output_version)
    for index, (func, rest, kwargs, version_before, version_after, in_place) in site_calls.items():
        call = calls[index]
        reading = next(
            (Reading(calls[j].site, True) for j, version in readers.get(id(call.output), ()) if j > index and version == version_after),
            None,
        )  # fmt: skip
        producer, version = producers.get(id(call.inputs[0]) if call.inputs else None, (None, None))
        computable = call.function not in _NOT_RECOMPUTED and not _tensors(rest) and not _tensors(kwargs.values())
        if reading is None and computable and producer is not None and producer < index and version == version_before:
            reading = Reading(calls[producer].site, False, functools.partial(func, *rest, **kwargs), copy=in_place)
        if reading is not None:
            calls[index] = replace(call, reading=reading)


@contextlib.contextmanager
def site_hooks(module, actions, readings=None):
    """Run ``actions`` on the outputs of their sites in every forward pass inside the block.

    Parameters
    ----------
    module : torch.nn.Module
        The network; its forward passes are counted from its own call.
    actions : dict of Site -> callable
        ``action(output)`` runs on the site's output and may return a
        tensor to replace it (for an in-place function, the tensor is
        overwritten). Module sites are read with forward hooks; function
        sites with a :class:`torch.overrides.TorchFunctionMode`, entered
        only when some function site has no reading.
    readings : dict of Site -> Reading, optional
        Function sites to read through a hook on a module call instead (see
        :class:`Reading`), used when every function site of ``actions`` has
        one (else the mode reads them all: an activation a hook computed
        would be numbered in it). Their actions only read: what they
        return is ignored.

    Examples
    --------
    The second ``torch.relu`` of each pass, read:

    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._sites import Site, site_hooks
    >>> class Net(nn.Module):
    ...     def forward(self, x):
    ...         return torch.relu(x) + torch.relu(-x)
    >>> seen = []
    >>> with site_hooks(Net(), {Site("relu", 1, function=True): seen.append}) as net:
    ...     _ = net(torch.tensor([2.0]))
    ...     _ = net(torch.tensor([-3.0]))
    >>> seen
    [tensor([0.]), tensor([3.])]
    """
    modules = dict(module.named_modules())
    readings = readings or {}
    if any(site.function and site not in readings for site in actions):
        readings = {}
    at_output, at_input, by_function = {}, {}, {}  # module name -> call -> actions; function number -> action
    for site, action in actions.items():
        reading = readings.get(site) if site.function else None
        if reading is not None:
            where = at_input if reading.at_input else at_output
            where.setdefault(reading.site.name, {}).setdefault(reading.site.call, []).append(_reading_through(reading, action))
        elif site.function:
            by_function[site.call] = action
        else:
            at_output.setdefault(site.name, {}).setdefault(site.call, []).append(action)
    counters = {(name, False): 0 for name in at_output} | {(name, True): 0 for name in at_input}

    def on_function(func, name, args, kwargs, output, number):
        action = by_function.get(number)
        return None if action is None else action(output)

    counter = _ActivationCounter(on_function, ACTIVATION_FUNCTIONS | PRODUCT_FUNCTIONS)

    def reset(mod, inputs):
        counter.count = 0
        for key in counters:
            counters[key] = 0

    def run(name, before, by_call, tensor):
        call = counters[name, before]
        counters[name, before] = call + 1
        replaced = None
        for action in by_call.get(call, ()):
            result = action(tensor if replaced is None else replaced)
            replaced = replaced if result is None else result
        return replaced

    handles = [module.register_forward_pre_hook(reset)]
    for name, by_call in at_input.items():
        handles.append(modules[name].register_forward_pre_hook(
            lambda mod, inputs, name=name, by_call=by_call: run(name, True, by_call, _first_tensor(inputs))
        ))  # fmt: skip
    for name, by_call in at_output.items():
        handles.append(modules[name].register_forward_hook(
            lambda mod, inputs, output, name=name, by_call=by_call: run(name, False, by_call, output)
        ))  # fmt: skip
    try:
        with counter if by_function else contextlib.nullcontext():
            yield module
    finally:
        for handle in handles:
            handle.remove()


def _reading_through(reading, action):
    """``action`` on the function site's output, from what the module hook sees; returns None."""

    def read(tensor):
        action(reading(tensor))

    return read
