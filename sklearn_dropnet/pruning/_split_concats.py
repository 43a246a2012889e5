"""A split's parts concatenated again (YOLOv8's C2f): traced, mapped, and kept in equal parts.

YOLOv8's and YOLO11's ``C2f`` block (and every block built on it) splits
one layer's output in halves, runs a chain of bottlenecks on the second,
and concatenates both halves with the chain's outputs::

    y = list(self.cv1(x).chunk(2, 1))
    y.extend(m(y[-1]) for m in self.m)
    return self.cv2(torch.cat(y, 1))

Torch-Pruning 1.6 cannot follow the halves into the concatenation. It
lists the concat once among the split's consumers for each part it reads,
and sizes a ``chunk``'s parts by counting consumers, not parts
(``[16, 16, 16, 16]`` for halves of 32 channels read four times); a split
by sizes with more consumers than parts fails in
``infer_out_channels_recursively`` with ``IndexError``; and a dependency
from the concat back to the split applies the split's mapping before the
concat's, so no channel of the second half maps back at all. The first
layer's units were refused (mapped past its width), or the network could
not be traced.

Here (the caller holds the lock on Torch-Pruning's module functions):

* :func:`size_equal_parts` sizes every split into parts of one size
  (``chunk``, ``split(n)``) by its parts;
* :func:`out_channels_recursively` finds the size of the part a consumer of
  a split reads by autograd's output number;
* :func:`concat_sizes` sizes a concat that reads split parts position by
  position, :func:`size_concat_of_parts` gives Torch-Pruning those sizes,
  and :func:`map_split_concats`, after each mapping of the graph, maps each
  part into its place in the concat and back, in that order.

A ``chunk`` keeps equal parts only when each loses as many channels:
:func:`chunk_parts` tells :func:`~._surgery.find_unit_groups` the part of
each unit, which DropNet then balances as it balances the channel groups
of a grouped convolution. A split by sizes made anew at each call
(``split((self.c, self.c), 1)``) cannot follow the channels removed, and
the removal check refuses the layer (see :mod:`._splits`).
"""

from ._splits import channels_between, saved_dim, set_part_sizes

try:  # Torch-Pruning's nodes and mappings (1.6.x layout)
    from torch_pruning import ops
    from torch_pruning.dependency import shape_infer
    from torch_pruning.dependency.index_mapping import (
        _ConcatIndexMapping,
        _SplitIndexMapping,
    )
    from torch_pruning.ops import _SplitOp

    _infer_out_channels_recursively = shape_infer.infer_out_channels_recursively
except ImportError:  # pragma: no cover - another layout: left as Torch-Pruning maps it
    ops = _SplitOp = None

__all__ = [
    "chunk_parts", "concat_sizes", "map_split_concats", "out_channels_recursively", "size_concat_of_parts",
    "size_equal_parts",
]  # fmt: skip


def _equal_part_sizes(split):
    """The part sizes of a split into parts of one size (``chunk``, ``split(n)``) over
    dimension 1, read off autograd, or None."""
    grad_fn = split.grad_fn
    size, shape = getattr(grad_fn, "_saved_split_size", None), getattr(grad_fn, "_saved_self_sym_sizes", None)
    if size is None or shape is None or saved_dim(grad_fn) % len(shape) != 1 or size <= 0:
        return None
    channels = int(shape[1])
    count = -(-channels // size)
    return [size] * (count - 1) + [channels - size * (count - 1)]


def size_equal_parts(graph):
    """Size each split into parts of one size by its parts (Torch-Pruning gives it
    one per consumer), with their offsets."""
    for node in graph.module2node.values():
        if node.type == ops.OPTYPE.SPLIT and (sizes := _equal_part_sizes(node)) is not None:
            set_part_sizes(node, sizes)


def out_channels_recursively(graph, node, recursive_depth):
    """Torch-Pruning's ``infer_out_channels_recursively``, with the size of a split's
    part taken from the part ``node`` reads (it took the part numbered as ``node``
    among the split's consumers: past the parts where there are more consumers),
    and a concat of split parts sized by its parts (it counted the whole split
    once per part)."""
    if graph.get_out_channels(node) is not None:
        return _infer_out_channels_recursively(graph, node, recursive_depth)
    if node.type == ops.OPTYPE.CONCAT:
        sizes = node.module.concat_sizes
        if sizes and None not in sizes and _reads_split_parts(_positions(node)):
            return sum(sizes)
    else:
        for split in node.inputs:
            if not isinstance(split.module, _SplitOp) or split.module.split_sizes is None:
                continue
            if (size := channels_between(graph, split, node)) is not None:  # the one part ``node`` reads
                return size
    return _infer_out_channels_recursively(graph, node, recursive_depth)


def _positions(cat):
    """``(input node, autograd output number)`` for each input of a concat node, in
    Torch-Pruning's order of ``cat.inputs``; None where the two do not line up."""
    read = [(function, number) for function, number in cat.grad_fn.next_functions if function is not None]
    if len(read) != len(cat.inputs) or any(node.grad_fn is not f for node, (f, _) in zip(cat.inputs, read)):
        return None
    return [(node, number) for node, (_, number) in zip(cat.inputs, read)]


def _reads_split_parts(positions):
    return positions is not None and any(isinstance(node.module, _SplitOp) for node, _ in positions)


def concat_sizes(graph, cat, channels_between):
    """The channels each input of ``cat``, a concat node, hands it, in the order of
    ``cat.inputs`` (None where unknown): a split's part by the part read there
    (Torch-Pruning asks the split once per position, which cannot tell the parts
    apart); ``channels_between`` sizes the other inputs."""
    positions = _positions(cat)
    if not _reads_split_parts(positions):
        return [channels_between(graph, node, cat) for node in cat.inputs]
    sizes = []
    for node, number in positions:
        if isinstance(node.module, _SplitOp):
            parts = node.module.split_sizes
            sizes.append(parts[number] if parts is not None and number < len(parts) else None)
        else:
            sizes.append(channels_between(graph, node, cat))
    return sizes


def size_concat_of_parts(graph, cat, channels_between):
    """Give ``cat``, a concat node that reads parts of a split, its sizes (see
    :func:`concat_sizes`) where Torch-Pruning has none, before it maps it."""
    if cat.module.concat_sizes is not None or not _reads_split_parts(_positions(cat)):
        return
    sizes = concat_sizes(graph, cat, channels_between)
    if None not in sizes:
        cat.module.concat_sizes = sizes


def map_split_concats(graph):
    """Map each part of a split that a concat reads directly to its place in the
    concat, and back: the split's mapping then the concat's going in, the
    concat's then the split's coming out (Torch-Pruning applies the split's
    first both ways). The ``k``-th dependency between the two nodes, either
    way, is the ``k``-th time the concat reads the split."""
    if ops is None:  # pragma: no cover
        return
    for cat in graph.module2node.values():
        if cat.type != ops.OPTYPE.CONCAT or cat.module.offsets is None or not cat.enable_index_mapping:
            continue
        positions = _positions(cat)
        if not _reads_split_parts(positions):
            continue
        seen = {}
        for k, (split, number) in enumerate(positions):
            if not isinstance(split.module, _SplitOp):
                continue
            occurrence = seen[split] = seen.get(split, -1) + 1
            offsets = split.module.offsets
            if offsets is None or number + 1 >= len(offsets) or not split.enable_index_mapping:
                continue
            part, place = offsets[number : number + 2], cat.module.offsets[k : k + 2]
            into = [dep for dep in split.dependencies if dep.target is cat]
            back = [dep for dep in cat.dependencies if dep.target is split]
            if occurrence < min(len(into), len(back)):
                into[occurrence].index_mapping[:] = [
                    _SplitIndexMapping(offset=part, reverse=False), _ConcatIndexMapping(offset=place, reverse=False)
                ]
                back[occurrence].index_mapping[:] = [
                    _ConcatIndexMapping(offset=place, reverse=True), _SplitIndexMapping(offset=part, reverse=True)
                ]


def chunk_parts(item, chunks):
    """For a group item on a ``chunk`` (a split whose autograd node is in ``chunks``),
    ``(channels, parts)``: how many channels it splits, into how many parts; else None."""
    split = item.dep.target
    if _SplitOp is None or not isinstance(split.module, _SplitOp) or split.grad_fn not in chunks:
        return None
    sizes = split.module.split_sizes
    return (sum(sizes), len(sizes)) if sizes else None
