"""Channels split into parts: mapped to the right part, and the part sizes kept in step with surgery.

Torch-Pruning 1.6 maps a split's ``k``-th consumer, in the order it found
them while tracing, to the ``k``-th part, and that need not be the parts'
order: in timm's MixNet it was the reverse for every one of the 34 splits,
the first part's channels mapped to the last part's convolution, so each
removal through a split took the wrong channels out (and the removal check
refused the layer). :func:`map_split_parts` maps each consumer to the part it reads,
by the output number autograd records. It maps, too, a split that
Torch-Pruning leaves unmapped although it splits channels: a ``chunk``
along the last dimension of a ``Linear``'s output (a gate fused into one
layer, timm's ``GluMlp``), whose channels then reached the next layer
unchanged, beyond its width (in a ViT, Torch-Pruning turns off the mapping
of every split behind the position embedding). A gated linear unit
(``F.glu``, ``nn.GLU``), which splits its input in halves itself, is taken
for an element-wise step; :func:`map_glu_halves` maps its halves.

timm's ``MixedConv2d`` (MixNet's convolutions) splits its input with
``torch.split(x, self.splits, 1)`` and hands each part to a convolution of
another kernel size. Torch-Pruning removes a unit's channel from the
layers on both sides of such a split, but the sizes stay as the module
keeps them, and the smaller network fails: "split_with_sizes expects
split_sizes to sum exactly to 180". Nor does Torch-Pruning 1.6 move the
offsets of its own split node on, so a second group removed through the
same split on one graph is mapped as if the first had not been.

:func:`recorded_split_sizes`, around Torch-Pruning's trace, records each
split whose sizes are a list or tuple that a module holds as an attribute;
:func:`split_resizes` reads, before a group is removed, how many channels
each part of every split in it loses, and :func:`resize_splits` then sets
the new sizes: on Torch-Pruning's split node, and on the module's attribute
(a list in place, a tuple replaced). Sizes computed anew at each call from
other numbers (``[self.key_dim, self.key_dim, self.val_dim]``) or one
size for every part (``x.split(self.width, 1)``) cannot be kept in step:
the removal check then finds the smaller network broken, and the layer is
left out with that reason.
"""

import contextlib
from dataclasses import dataclass

import numpy as np
from torch import nn
from torch.overrides import TorchFunctionMode

from ._sites import function_name

try:  # Torch-Pruning's split node and mapping (1.6.x layout)
    from torch_pruning._helpers import _HybridIndex
    from torch_pruning.dependency import shape_infer
    from torch_pruning.dependency.index_mapping import _SplitIndexMapping
    from torch_pruning.ops import _SplitOp
    _infer_channels_between = shape_infer.infer_channels_between  # before any patch of it
except ImportError:  # pragma: no cover - another layout: splits as Torch-Pruning maps them
    _SplitOp = _infer_channels_between = None

__all__ = [
    "RecordedSplits", "channels_between", "map_glu_halves", "map_split_parts", "recorded_split_sizes",
    "resize_splits", "saved_dim", "set_part_sizes", "split_resizes",
]  # fmt: skip

_SIZED_SPLITS = frozenset({"split", "split_with_sizes"})
_SIZE_KEYWORDS = ("split_size_or_sections", "split_size", "split_sizes")


def saved_dim(grad_fn):
    """The ``dim`` a ``torch.cat`` or a split was called with, or None.

    Autograd stores it as an unsigned 64-bit integer, so ``-1`` reads as
    ``2**64 - 1``.
    """
    dim = getattr(grad_fn, "_saved_dim", None)
    if dim is None:
        return None
    return dim - 2**64 if dim >= 2**63 else dim


def _splits_linear_channels(split):
    """Whether ``split`` splits the output of an ``nn.Linear`` along its last dimension,
    where a ``Linear``'s channels are."""
    dim, sizes = saved_dim(split.grad_fn), getattr(split.grad_fn, "_saved_self_sym_sizes", None)
    last = dim == -1 or (sizes is not None and dim == len(sizes) - 1)
    return last and len(split.inputs) == 1 and isinstance(split.inputs[0].module, nn.Linear)


def _parts_read(node, split):
    """The numbers of the parts of ``split`` (a Torch-Pruning node) that ``node`` reads directly."""
    functions = getattr(node.grad_fn, "next_functions", None) or ()
    return {number for function, number in functions if function is not None and function is split.grad_fn}


def channels_between(graph, node, consumer):
    """The channels ``node`` hands ``consumer``: for a split, the size of the one part
    ``consumer`` reads (None where it reads several, or none directly); else what
    Torch-Pruning's ``infer_channels_between`` finds.

    Torch-Pruning takes the part of the ``k``-th consumer it found, as it maps
    them (see :func:`map_split_parts`), and fails with ``IndexError`` where a
    split has more consumers than parts: Hugging Face transformers' CvT,
    which splits its class token off the tokens, was refused so.
    """
    if _SplitOp is None or not isinstance(node.module, _SplitOp) or node.module.split_sizes is None:
        return _infer_channels_between(graph, node, consumer)
    parts = _parts_read(consumer, node)
    if len(parts) != 1 or max(parts) >= len(node.module.split_sizes):
        return None
    return node.module.split_sizes[parts.pop()]


def map_split_parts(split):
    """Map each consumer of ``split``, a Torch-Pruning split node it has just mapped,
    to the part it reads. A consumer that reads several parts, or none directly,
    keeps the mapping Torch-Pruning gave it (the removal check decides); so does
    one Torch-Pruning left unmapped, unless the split splits a ``Linear``'s
    channels."""
    if _SplitOp is None:  # pragma: no cover
        return
    offsets = split.module.offsets
    channels = _splits_linear_channels(split)
    # Torch-Pruning turns a split's mapping off wherever a 3-d parameter (a ViT's
    # position embedding) is upstream of it, for its class-token concatenation.
    if offsets is None or not (split.enable_index_mapping or channels):
        return
    for consumer in split.outputs:
        parts = _parts_read(consumer, split)
        mapped = channels or any(
            dep.target is consumer and isinstance(dep.index_mapping[0], _SplitIndexMapping) for dep in split.dependencies
        )
        if not mapped or len(parts) != 1 or max(parts) + 1 >= len(offsets):
            continue  # left unmapped by Torch-Pruning (a split along another dimension), or ambiguous
        part = parts.pop()
        for dep in split.dependencies:  # split -> consumer: the part's channels, numbered from 0
            if dep.target is consumer:
                dep.index_mapping[0] = _SplitIndexMapping(offset=offsets[part : part + 2], reverse=False)
        for dep in consumer.dependencies:  # consumer -> split: back to the split's input
            if dep.target is split:
                dep.index_mapping[0] = _SplitIndexMapping(offset=offsets[part : part + 2], reverse=True)


@dataclass(frozen=True)
class _StoredSizes:
    """The module attributes that hold a split's sizes, as ``(module, name)``."""

    holders: tuple

    @property
    def sizes(self):
        """The sizes as the first holder holds them now."""
        part, name = self.holders[0]
        return getattr(part, name)

    def set(self, sizes):
        """Hold ``sizes``: a list changed in place, a tuple replaced."""
        if isinstance(self.sizes, list):
            self.sizes[:] = sizes
        else:
            for part, name in self.holders:
                setattr(part, name, tuple(sizes))


class _SplitRecorder(TorchFunctionMode):
    """Records, by the autograd node of its outputs, the sizes every split by a list or
    tuple is called with, and which splits are ``chunk`` calls."""

    def __init__(self):
        super().__init__()
        self.sizes, self.uses, self.chunks = {}, {}, set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if function_name(func) == "chunk" and isinstance(output, (tuple, list)) and output:
            if getattr(output[0], "grad_fn", None) is not None:
                self.chunks.add(output[0].grad_fn)
        elif function_name(func) in _SIZED_SPLITS:
            sizes = args[1] if len(args) > 1 else next((kwargs[k] for k in _SIZE_KEYWORDS if k in kwargs), None)
            node = getattr(output[0], "grad_fn", None) if isinstance(output, (tuple, list)) and output else None
            if isinstance(sizes, (list, tuple)) and node is not None:
                self.sizes[node] = sizes
                self.uses[id(sizes)] = self.uses.get(id(sizes), 0) + 1
        return output


@dataclass(frozen=True)
class RecordedSplits:
    """What :func:`recorded_split_sizes` records: ``sizes``, autograd node ->
    :class:`_StoredSizes` for each split by sizes a module attribute holds and no
    other split of the pass uses (filled on exit); ``chunks``, the autograd
    nodes of the ``chunk`` calls (filled as they run)."""

    sizes: dict
    chunks: set


@contextlib.contextmanager
def recorded_split_sizes(module):
    """Inside, record the splits ``module`` calls; yields a :class:`RecordedSplits`."""
    recorder, stored = _SplitRecorder(), {}
    with recorder:
        yield RecordedSplits(stored, recorder.chunks)
    holders = {}
    wanted = {id(sizes) for node, sizes in recorder.sizes.items() if recorder.uses[id(sizes)] == 1}
    for part in module.modules():
        for name, value in vars(part).items():
            if id(value) in wanted:
                holders.setdefault(id(value), []).append((part, name))
    for node, sizes in recorder.sizes.items():
        if id(sizes) in holders:
            stored[node] = _StoredSizes(tuple(holders[id(sizes)]))


def split_resizes(group, stored):
    """The new sizes of every split of ``group`` that loses channels.

    ``stored`` is what :func:`recorded_split_sizes` recorded for the graph.
    A split's positions in the group are those of its input. Returns
    ``(node, new sizes, the module attributes holding them or None)`` per split.
    """
    if _SplitOp is None:  # pragma: no cover
        return []
    lost = {}
    for item in group:
        split = item.dep.target.module
        if isinstance(split, _SplitOp) and split.split_sizes is not None:
            node = item.dep.target
            lost[node] = np.union1d(lost.get(node, []), np.asarray(item.idxs, dtype=int)).astype(int)
    resizes = []
    for node, idxs in lost.items():
        sizes = list(node.module.split_sizes)
        offsets = np.cumsum([0, *sizes])
        new = [size - int(np.count_nonzero((idxs >= start) & (idxs < start + size))) for size, start in zip(sizes, offsets)]
        kept = stored.get(node.grad_fn)
        if kept is not None and (not isinstance(kept.sizes, (list, tuple)) or list(kept.sizes) != sizes):
            kept = None  # not the sizes this split was called with: left as they are
        resizes.append((node, new, kept))
    return resizes


def set_part_sizes(split, sizes):
    """Give ``split``, a Torch-Pruning split node, the part sizes ``sizes`` and their offsets."""
    split.module.split_sizes = [int(size) for size in sizes]
    split.module.offsets = [int(offset) for offset in np.cumsum([0, *sizes])]


def resize_splits(resizes):
    """Set the sizes :func:`split_resizes` computed, after the group is removed."""
    for node, sizes, kept in resizes:
        set_part_sizes(node, sizes)
        if kept is not None:
            kept.set(sizes)



class _GluHalves:
    """Torch-Pruning's index mapping across a gated linear unit: input channel ``i``
    is output channel ``i % h`` (``reverse=False``), output channel ``j`` is input
    channels ``j`` and ``j + h`` (``reverse=True``), ``h`` being half the input's
    channels as they are now (groups removed on the same graph change them)."""

    def __init__(self, graph, glu, reverse):
        self.graph, self.glu, self.reverse = graph, glu, reverse

    def __call__(self, idxs):
        channels = shape_infer.infer_channels_between(self.graph, self.glu.inputs[0], self.glu)
        if not channels or channels % 2:
            return idxs
        half = channels // 2
        if self.reverse:
            return [_HybridIndex(idx=i.idx + part * half, root_idx=i.root_idx) for i in idxs for part in (0, 1)]
        # Once per output channel: a layer's pruner may count positions (a depthwise
        # convolution's groups), and the root units of both halves are the same.
        return list({i.idx % half: _HybridIndex(idx=i.idx % half, root_idx=i.root_idx) for i in idxs}.values())


def _glu_over_channels(node):
    """Whether ``node`` is a gated linear unit over the channels of its input: dimension 1,
    or the last of a ``Linear``'s output."""
    grad_fn = node.grad_fn
    if type(grad_fn).__name__ != "GluBackward0" or len(node.inputs) != 1:
        return False
    dim, rank = saved_dim(grad_fn), getattr(getattr(grad_fn, "_saved_self", None), "ndim", None)
    if rank is None:
        return False
    dim %= rank
    return dim == 1 or dim == rank - 1 and isinstance(node.inputs[0].module, nn.Linear)


def map_glu_halves(graph):
    """Map the halves of every gated linear unit (``F.glu``, ``nn.GLU``) of ``graph``
    over its input's channels, which Torch-Pruning takes for an element-wise step
    (it handed the next layer channel ``i + h`` of ``h``)."""
    if _SplitOp is None:  # pragma: no cover
        return
    for glu in list(graph.module2node.values()):
        if not _glu_over_channels(glu):
            continue
        for dep in glu.dependencies:
            if dep.target is not glu.inputs[0]:
                dep.index_mapping[0] = _GluHalves(graph, glu, reverse=False)
                for back in dep.target.dependencies:
                    if back.target is glu:
                        back.index_mapping[0] = _GluHalves(graph, glu, reverse=True)
