"""Weights a network applies with a function, outside the layers DropNet prunes.

DropNet prunes the units of ``nn.Linear`` and ``nn.Conv1d/2d/3d`` modules.
A network can also hold a weight matrix as a bare ``nn.Parameter`` and apply
it itself (``F.linear(x, self.w1)``, ``x @ self.w``), or in a module of its
own class (a ``MyLinear`` whose forward calls ``F.linear``), and
``nn.MultiheadAttention`` applies its query, key and value projection
(``in_proj_weight``) that way. Such units are never pruned, and never
counted among the network's units: :func:`functional_weights` finds them in
one pass, so that each is named (a layer is never left unpruned silently).
"""

from torch import nn
from torch.overrides import TorchFunctionMode

from ._eval_mode import evaluate
from ._probes import KEPT_UNIT_TYPES, PRUNABLE_TYPES, flat_tensors
from ._sites import function_name

# The functions that apply a weight matrix to their input, by the name torch
# gives them in ``__torch_function__`` (``x @ w`` is "__matmul__").
WEIGHT_FUNCTIONS = frozenset({
    "linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm", "addmv",
    "mv", "einsum", "tensordot", "multi_head_attention_forward",
})  # fmt: skip


class _WeightRecorder(TorchFunctionMode):
    """Notes, in order, each parameter of two or more dimensions passed to a weight function,
    with the function's name, unless the call's output is the network's output."""

    def __init__(self):
        super().__init__()
        self.used = {}  # id(parameter) -> (function name, the call's output)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        name = function_name(func)
        if name in WEIGHT_FUNCTIONS:
            for value in flat_tensors([args, kwargs]):
                if isinstance(value, nn.Parameter) and value.dim() >= 2:
                    self.used.setdefault(id(value), (name, output))
        return output


def functional_weights(module, example_input):
    """The weight matrices ``module`` applies outside the layers DropNet prunes or names
    already (:data:`~sklearn_dropnet.pruning._probes.KEPT_UNIT_TYPES`), each with why it
    stays as it is.

    Parameters
    ----------
    module : nn.Module
    example_input : torch.Tensor
        A small batch of real input, on the module's device.

    Returns
    -------
    dict of str -> str
        For each such parameter, by qualified name (``"w1"``,
        ``"attn.in_proj_weight"``), in the order the pass applies them, the
        reason. A weight whose call computes the network's output (the class
        scores) is not one: its units are the classes.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from torch import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w1, self.out = nn.Parameter(torch.randn(8, 4)), nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.out(torch.relu(F.linear(x, self.w1)))
    >>> reasons = functional_weights(Net(), torch.zeros(2, 4))
    >>> list(reasons)
    ['w1']
    >>> reasons["w1"][:60]
    'it is the weight of linear in forward, not of an nn.Linear o'
    """
    recorder = _WeightRecorder()
    with recorder:
        output = evaluate(module, example_input)
    outputs = flat_tensors(output)
    owners = {}
    for owner_name, owner in module.named_modules():
        for name, parameter in owner.named_parameters(recurse=False):
            owners.setdefault(id(parameter), (owner_name, name, owner))
    handled = (*PRUNABLE_TYPES, *KEPT_UNIT_TYPES)
    reasons = {}
    for key, (function, call_output) in recorder.used.items():
        owner_name, name, owner = owners.get(key, (None, None, None))
        if owner is None or isinstance(owner, handled) or any(call_output is tensor for tensor in outputs):
            continue
        reasons[f"{owner_name}.{name}" if owner_name else name] = _reason(function, owner)
    return reasons


def _reason(function, owner):
    if isinstance(owner, nn.MultiheadAttention):
        return (
            "it is the query, key and value projection of an nn.MultiheadAttention, which the attention "
            "applies itself (F.multi_head_attention_forward): DropNet prunes the units of nn.Linear and "
            "nn.Conv1d/2d/3d layers only"
        )
    return (
        f"it is the weight of {function} in forward, not of an nn.Linear or nn.Conv1d/2d/3d layer, "
        "whose units DropNet prunes: hold it in one (self.fc = nn.Linear(...), then self.fc(x)) to prune it"
    )
