"""Find the prunable layers of a network and where their post-activations are.

DropNet scores a unit by the output of the nonlinearity that follows its
layer. A module gives no such link directly, so one forward pass with
temporary hooks records which module consumed which tensor: the chain
``layer -> [BatchNorm / Dropout / Identity] -> activation module`` is then
followed by tensor identity. An in-place residual add (``out += shortcut``)
keeps the tensor's identity, so the add is seen through too.

A ``Linear`` or ``Conv2d`` layer is *prunable* when its output reaches an
activation module this way. A layer whose output is the network's output,
directly or through element-wise modules only (an activation after the
class scores), is an *output layer* and is never pruned; nor is a layer
called twice in one pass or one whose weights another module shares (tied
weights).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._eval_mode import evaluate

PRUNABLE_TYPES = (nn.Linear, nn.Conv2d)

# Modules that keep each channel in place: a chain passes through them.
CHANNEL_PRESERVING_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
    nn.Identity,
)

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
)


# Along a chain after an activation, the modules whose output for a zero
# input need not be zero.
_SHIFTING_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d) + ACTIVATION_TYPES


@dataclass(frozen=True)
class Probe:
    """Where to read one prunable layer's post-activation.

    Attributes
    ----------
    layer : str
        Qualified name of the prunable layer.
    activation : str
        Qualified name of the activation module that follows it.
    call : int
        Which call of that activation module within one forward pass (an
        activation module may be applied more than once).
    channel_dim : int
        Dimension of the activation that indexes the layer's units.
    chain_end : str
        Qualified name of the last module of the per-channel chain that
        starts with the activation (the activation itself, or e.g. a
        ``BatchNorm`` after it). Switching a unit off means zeroing it there.
    chain_end_call : int
        Which call of ``chain_end`` within one forward pass.
    """

    layer: str
    activation: str
    call: int
    channel_dim: int
    chain_end: str
    chain_end_call: int


@dataclass(frozen=True)
class NetworkStructure:
    """Prunable layers and output layers of a network, from one trace."""

    probes: dict  # layer name -> Probe
    output_layers: frozenset  # names of layers never to prune


def parametrized_layers(module):
    """Names of the ``Linear``/``Conv2d`` layers with parametrizations (never pruned)."""
    return [
        name for name, mod in module.named_modules()
        if isinstance(mod, PRUNABLE_TYPES) and parametrize.is_parametrized(mod)
    ]  # fmt: skip


def prunable_layers_hint(module):
    """What DropNet prunes, and why ``module`` may have nothing it can see."""
    hint = (
        "DropNet prunes hidden nn.Linear and nn.Conv2d layers whose output feeds an "
        "activation module such as nn.ReLU (optionally through BatchNorm or Dropout)."
    )
    parametrized = parametrized_layers(module)
    if parametrized:
        hint += (
            f" The layers {parametrized} have parametrizations (weight_norm, spectral_norm) and "
            "are not pruned; torch.nn.utils.parametrize.remove_parametrizations removes them."
        )
    if not any(isinstance(mod, ACTIVATION_TYPES) for mod in module.modules()):
        hint += " The module has no activation module: functional activations (F.relu) cannot be seen; use modules."
    return hint


def _leaf_modules(module):
    return [(name, m) for name, m in module.named_modules() if not list(m.children())]


def _first_tensor(values):
    if isinstance(values, torch.Tensor):
        return values
    if isinstance(values, (tuple, list)) and values and isinstance(values[0], torch.Tensor):
        return values[0]
    return None


def _flat_tensors(values):
    if isinstance(values, torch.Tensor):
        return [values]
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (tuple, list)):
        return [t for v in values for t in _flat_tensors(v)]
    return []


def record_calls(module, example_input):
    """Run one forward pass; return the leaf-module calls and the output."""
    calls = []  # (name, module, input tensor, output tensor) in call order
    handles = []
    for name, leaf in _leaf_modules(module):

        def hook(mod, inputs, output, name=name):
            calls.append((name, mod, _first_tensor(inputs), _first_tensor(output)))

        handles.append(leaf.register_forward_hook(hook))
    return calls, evaluate(module, example_input, handles)


def _follow(calls, start, tensor):
    """Follow ``tensor`` through channel-preserving modules from call ``start``.

    Returns the index of the activation call it reaches, or ``None`` and the
    last tensor of the chain.
    """
    for index in range(start + 1, len(calls)):
        _, mod, inp, out = calls[index]
        if inp is not tensor:
            continue
        if isinstance(mod, ACTIVATION_TYPES):
            return index, out
        if isinstance(mod, CHANNEL_PRESERVING_TYPES):
            tensor = out
            continue
        return None, tensor
    return None, tensor


def _chain_end(calls, start):
    """Follow the per-channel chain that starts at the activation call ``start``.

    The chain follows the activation's output through channel-preserving
    modules and further activations (``ReLU -> BatchNorm``, say). Returns
    the index of its last call that changes values -- a ``BatchNorm`` or an
    activation, where switching a unit off means zeroing it -- and the
    chain's final output (is it the network's output?). Identity-like
    modules (``Dropout``, ``Identity``) are passed through but do not end
    the chain: an ``nn.Identity`` shortcut may carry the tensor elsewhere.
    """
    end, tensor = start, calls[start][3]
    for index in range(start + 1, len(calls)):
        _, mod, inp, out = calls[index]
        if inp is tensor and isinstance(mod, CHANNEL_PRESERVING_TYPES + ACTIVATION_TYPES):
            tensor = out
            if isinstance(mod, _SHIFTING_TYPES):
                end = index
    return end, tensor


def tied_parameters(module):
    """Sets of module names that hold one parameter together (tied weights)."""
    owners = {}
    for name, mod in module.named_modules():
        for parameter in mod.parameters(recurse=False):
            owners.setdefault(id(parameter), set()).add(name)
    return {frozenset(names) for names in owners.values() if len(names) > 1}


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
    """
    calls, output = record_calls(module, example_input)
    outputs = _flat_tensors(output)
    call_counts = {}
    call_number = []
    for name, *_ in calls:
        call_number.append(call_counts.get(name, 0))
        call_counts[name] = call_counts.get(name, 0) + 1

    probes = {}
    output_layers = set()
    tied = set().union(*tied_parameters(module))
    for index, (name, mod, _, out) in enumerate(calls):
        if not isinstance(mod, PRUNABLE_TYPES):
            continue
        if call_counts[name] > 1 or name in tied:  # shared weights: leave alone
            output_layers.add(name)
            continue
        activation_index, last = _follow(calls, index, out)
        if activation_index is None:
            if any(last is t for t in outputs):
                output_layers.add(name)
            continue
        end, last = _chain_end(calls, activation_index)
        if any(last is t for t in outputs):
            # Class scores through an activation (a final Sigmoid): an output layer.
            output_layers.add(name)
            continue
        act_name = calls[activation_index][0]
        channel_dim = -1 if isinstance(mod, nn.Linear) else 1
        probes[name] = Probe(
            name, act_name, call_number[activation_index], channel_dim, calls[end][0], call_number[end]
        )
    return NetworkStructure(probes=probes, output_layers=frozenset(output_layers))
