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

Functions called inside a leaf module (``nn.ReLU`` calls ``F.relu``) belong
to the module's call, and are not listed (the call notes that it applied an
activation); every pass counts them all the same, so that function sites
are numbered alike in every pass.

A product of two tensors is a site too: an activation written out
(``x * torch.sigmoid(x)``, ``x * F.relu6(x + 3) / 6``) ends in one.
"""

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from ._eval_mode import evaluate

__all__ = ["ACTIVATION_FUNCTIONS", "PRODUCT", "Call", "Site", "record_forward", "site_hooks"]

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
})  # fmt: skip

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

_RECORDED_FUNCTIONS = ACTIVATION_FUNCTIONS | PASSING_FUNCTIONS | ADD_FUNCTIONS | SCALING_FUNCTIONS | _TRANSPOSE_FUNCTIONS


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
        a function's first argument otherwise.
    output : torch.Tensor or None
        Its (first) output.
    activates : bool
        For a leaf module, whether its forward called an activation
        function (a custom ``Swish`` module, say).
    """

    site: Site
    module: object
    function: object
    inputs: tuple
    output: object
    activates: bool = False


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


def _is_leaf(module):
    """Whether a module's call is recorded as one, with what it calls inside (a layer
    with parametrizations is not: it is never pruned, and is named as such)."""
    if isinstance(module, _LAYER_TYPES) and not parametrize.is_parametrized(module):
        return True
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
    runs, so what the function and the callback call is not seen.
    """

    def __init__(self, on_call, names):
        super().__init__()
        self.on_call = on_call
        self.names = names
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
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
        activation functions, residual adds, products of two tensors and
        channel-keeping functions (dropout, pooling, scaling by a number).
    output : object
        What the module returned.
    """
    calls, stack, leaf_depth, module_calls, activating = [], [], [0], {}, set()

    def owner():
        return stack[-1] if stack and stack[-1] else "<root>"

    def on_call(func, name, args, kwargs, output, number):
        if leaf_depth[0]:
            if name in ACTIVATION_FUNCTIONS:
                activating.add(stack[-1])  # the leaf module (the innermost call) applies an activation
            return None
        if not args:  # F.relu(input=x)
            args = (kwargs.get("input"),)
        if name in _TRANSPOSE_FUNCTIONS:
            if not _swaps_channel_groups(args, kwargs):
                return None
            name = CHANNEL_SHUFFLE
        if _is_product(name, args):
            name = PRODUCT
        elif name in SCALING_FUNCTIONS and (len(_tensors(args[:2])) != 1 or isinstance(args[0], (int, float)) and name.startswith("div")):
            return None  # not a division of the tensor (2 / x, x / y): not followed
        inputs = _tensors(args[:2]) if name in ADD_FUNCTIONS | SCALING_FUNCTIONS | {PRODUCT} else _tensors(args[:1])
        site = Site(f"{owner()}: {name}", -1 if number is None else number, function=True)
        calls.append(Call(site, None, name, inputs, _first_tensor(output)))
        return None

    def pre_hook(mod, inputs, name, leaf):
        stack.append(name)
        leaf_depth[0] += leaf

    def post_hook(mod, inputs, output, name, leaf):
        stack.pop()
        leaf_depth[0] -= leaf
        if leaf and not leaf_depth[0]:  # a module called inside a recorded call belongs to it
            number = module_calls.get(name, 0)
            module_calls[name] = number + 1
            first = _first_tensor(inputs)
            activates = name in activating
            activating.discard(name)
            inputs = () if first is None else (first,)
            calls.append(Call(Site(name, number), mod, None, inputs, _first_tensor(output), activates))

    handles = []
    for name, mod in module.named_modules():
        leaf = _is_leaf(mod)
        handles.append(mod.register_forward_pre_hook(lambda m, i, name=name, leaf=leaf: pre_hook(m, i, name, leaf)))
        handles.append(mod.register_forward_hook(lambda m, i, o, name=name, leaf=leaf: post_hook(m, i, o, name, leaf)))
    with _ActivationCounter(on_call, _RECORDED_FUNCTIONS):
        output = evaluate(module, example_input, handles)
    return calls, output


@contextlib.contextmanager
def site_hooks(module, actions):
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
        only when there are function sites.

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
    by_module, by_function = {}, {}
    for site, action in actions.items():
        if site.function:
            by_function[site.call] = action
        else:
            by_module.setdefault(site.name, {})[site.call] = action
    counters = dict.fromkeys(by_module, 0)

    def on_function(func, name, args, kwargs, output, number):
        action = by_function.get(number)
        return None if action is None else action(output)

    counter = _ActivationCounter(on_function, ACTIVATION_FUNCTIONS | PRODUCT_FUNCTIONS)

    def reset(mod, inputs):
        counter.count = 0
        for key in counters:
            counters[key] = 0

    handles = [module.register_forward_pre_hook(reset)]
    for name, by_call in by_module.items():

        def hook(mod, inputs, output, name=name, by_call=by_call):
            action = by_call.get(counters[name])
            counters[name] += 1
            return None if action is None else action(output)

        handles.append(modules[name].register_forward_hook(hook))
    try:
        with counter if by_function else contextlib.nullcontext():
            yield module
    finally:
        for handle in handles:
            handle.remove()

