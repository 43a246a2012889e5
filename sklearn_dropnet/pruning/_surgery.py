"""Group coupled units and remove them physically with Torch-Pruning.

A *unit group* is the set of output channels that must go together: one
prunable layer's units and every channel coupled to them (the BatchNorm after
it, the next layer's inputs, both sides of a residual add). Torch-Pruning's
``DependencyGraph`` finds the coupling; the graph is rebuilt for every
operation and never kept, because it cannot be pickled and goes stale as soon
as the network changes shape.

Torch-Pruning 1.6 mishandles one structure, which is corrected here: a
channel concatenation followed by ``flatten -> Linear``. To check that a
``torch.cat`` joins channels, Torch-Pruning compares the concatenated
channel count with the input size of the next layer it finds; behind a
flatten that is the ``Linear``'s ``in_features`` (channels x height x
width), the comparison fails, and the concat is left without its index
mapping. The concat then behaves like an element-wise op: removing filter
``i`` of one branch also removes filter ``i`` of every other branch, and the
``Linear`` loses the columns of the wrong channels.
:func:`_map_channel_concats` adds the missing mapping, and
:func:`_pruning_group` keeps it up to date while several groups of one graph
are pruned.

And it removes the input channels of a grouped convolution wrongly unless
every channel group loses the units at the same positions: it keeps the
first positions of the weight's input dimension. :func:`_prune` removes them
channel group by channel group. Channel groups are why a unit group carries
:attr:`UnitGroup.channel_groups`: a grouped convolution's channel groups must
all keep the same size, so DropNet removes as many units from each.

Splits, whose consumers it maps to parts in the order it found them, and
gated linear units, which it takes for element-wise steps, are corrected in
:mod:`._splits`; a split's parts concatenated again (YOLOv8's C2f) in
:mod:`._split_concats`; batch norms frozen into buffers get a pruner from
:mod:`._frozen_norms`.
"""

import contextlib
import copy
import functools
import os
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from .._user_warnings import warn
from ..exceptions import PruningError, UnitRemovalWarning
from . import _weight_norm as weight_norm
from ._eval_mode import eval_mode
from ._frozen_norms import frozen_norm_pruners
from ._probes import PRUNABLE_TYPES
from ._split_concats import (
    chunk_parts,
    concat_sizes,
    map_split_concats,
    out_channels_recursively,
    size_concat_of_parts,
    size_equal_parts,
)
from ._splits import (
    channels_between,
    map_glu_halves,
    map_split_parts,
    recorded_split_sizes,
    resize_splits,
    saved_dim,
    split_resizes,
)

try:  # Torch-Pruning internals used by the concat workaround (1.6.x layout)
    from torch_pruning import ops
    from torch_pruning.dependency import index_mapping, shape_infer
    from torch_pruning.dependency.index_mapping import _ConcatIndexMapping
except ImportError:  # pragma: no cover - another layout: leave the graph as Torch-Pruning built it
    ops = None
try:  # where Torch-Pruning 1.6 builds its groups (bounded below)
    from torch_pruning.dependency.group import Group
except ImportError:  # pragma: no cover - another layout: groups unbounded
    Group = None


@dataclass(frozen=True)
class UnitGroup:
    """The units of one prunable layer and the layers scored with them.

    Attributes
    ----------
    name : str
        Qualified name of the root layer; its output channels are the units.
    size : int
        Number of units.
    members : tuple of (str, numpy.ndarray, numpy.ndarray)
        ``(layer name, layer channel indices, root unit indices)`` for every
        prunable layer whose output channels are coupled to the root's
        (the root itself first). A unit's score is the mean over members.
    unscored : tuple of (str, numpy.ndarray, numpy.ndarray)
        The same for the prunable layers coupled to the root's output
        channels that reach no activation (a projection into a residual
        add, a depthwise convolution into a squeeze-and-excitation gate):
        not scored, but their channels go with the units, and are switched
        off with them (see ``NetworkStructure.switch_offs``).
    consumers : tuple of (str, numpy.ndarray, numpy.ndarray)
        ``(layer name, input index, root unit indices)`` for every
        ``nn.Linear`` or ``nn.Conv`` that takes the units as input: the
        weights each unit sends on (a channel read through a flatten is
        several inputs of the ``Linear``).
    channel_groups : numpy.ndarray or None
        When the units belong to or feed a grouped convolution, or go into
        a ``chunk`` (YOLOv8's C2f), the channel group (the part) of each unit
        (``0 .. n - 1``, all of one size): the units must go as many from
        each channel group. None otherwise.
    channel_group_floor : int
        The fewest units each channel group keeps: 1, or 2 for the outputs
        of a grouped convolution with several inputs per channel group
        (Torch-Pruning takes a convolution with one output per channel
        group for a depthwise one, and couples its inputs to its outputs).
    parts : int
        The root's output channels per unit: 1, or 2 for a gate fused into
        the root layer (see ``Probe.parts``), whose unit ``j`` is its
        channels ``j`` and ``j + size``. Root unit indices are units.
    """

    name: str
    size: int
    members: tuple
    consumers: tuple = ()
    channel_groups: object = None
    channel_group_floor: int = 1
    unscored: tuple = ()
    parts: int = 1

    def root_channels(self, units):
        """The root layer's output channels of ``units``."""
        units = np.asarray(list(units), dtype=int)
        return np.concatenate([units + part * self.size for part in range(self.parts)])

    @property
    def n_channel_groups(self):
        """The number of channel groups, 1 without."""
        return 1 if self.channel_groups is None else int(self.channel_groups.max()) + 1

    @property
    def branches(self):
        """The coupled layers that hold only some of the units (an input of a
        concatenation added into a residual stream), with the root units of
        each: a layer must keep at least one channel, so each such set must
        keep a unit. A tuple of ``(layer name, root unit indices)``."""
        coupled = ((name, np.unique(root)) for name, _, root in (*self.members, *self.unscored))
        return tuple((name, root) for name, root in coupled if len(root) < self.size)

    def emptied_branches(self, units):
        """The :attr:`branches` that removing ``units`` would leave without channels."""
        units = np.asarray(list(units), dtype=int)
        return [(name, root) for name, root in self.branches if np.isin(root, units).all()]

    @property
    def fewest(self):
        """The fewest units the group can keep (one per branch, at least)."""
        keep, left = 0, [set(root.tolist()) for _, root in self.branches]
        while left:  # greedily: the unit in most of the branches still unserved
            unit = max(set().union(*left), key=lambda u: sum(u in branch for branch in left))
            left, keep = [branch for branch in left if unit not in branch], keep + 1
        return max(self.n_channel_groups * self.channel_group_floor, keep)


def _without_recursion_warnings(function):
    """``function`` without Torch-Pruning's warning at each step of its channel
    inference that gives up (hundreds of them for a GRU, while building the
    graph and reading each group): internal, and every removal is checked
    against masking anyway."""

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Maximum recursive depth reached!", category=UserWarning)
            return function(*args, **kwargs)

    return quiet


@contextlib.contextmanager
def _pruners_looked_up_once(graph):
    """Inside, ``graph`` looks each module's pruner up once.

    Torch-Pruning looks a module's pruner up (a chain of ``isinstance``
    checks) at every step of its channel inference, and through an
    attention's reshapes that is thousands of times for one group: 1.4
    million lookups, 14 s, of fitting a small CoAtNet. Nothing is pruned
    inside (pruning can change a module's pruner: a grouped convolution
    whose channels fall to its number of groups becomes a depthwise one).
    """
    if "get_pruner_of_module" in vars(graph):  # inside another: that one's lookups serve
        yield
        return
    lookup, pruners = graph.get_pruner_of_module, {}

    def looked_up(module):
        if module not in pruners:
            pruners[module] = lookup(module)
        return pruners[module]

    graph.get_pruner_of_module = looked_up  # this graph's, not the class's
    try:
        yield
    finally:
        del graph.get_pruner_of_module


# Torch-Pruning's functions are patched while a graph is built and while a group
# is built (bounded, and on mappings kept as they are), one at a time: a thread's
# patch must not reach into another's graph or group.
_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _mappings_corrected(reshapes=None):
    """Inside, Torch-Pruning maps a split's consumers to the parts they read and
    sizes them so (see :mod:`._splits`), sizes and maps a split's parts where a
    concat reads them again (see :mod:`._split_concats`), and leaves a concat or
    reshape unmapped where it cannot tell the channel counts it depends on, as its
    code means to, instead of failing (the caller holds ``_PATCH_LOCK``). The
    removal check then decides, as for any group. The errors of the reshapes left
    unmapped are appended to ``reshapes``.

    Torch-Pruning 1.6's ``update_concat_index_mapping`` returns on a branch of
    unknown size (``if ch is None: return``), but sums the sizes first, and the
    sum of a None raises ``TypeError``: DPN's dual-path blocks, which concatenate
    slices of a convolution's output, and a bidirectional LSTM, could not be traced
    at all. The sizes it stores are kept, so every later call fails (and is left
    unmapped) alike. Its ``update_reshape_index_mapping`` notes that it may infer 0
    channels after a reshape, and divides by them: SHViT's single-head attention,
    whose output is reshaped back to an image, raised ``ZeroDivisionError``. So do
    the views of ShuffleNet's channel shuffle (see :func:`trace_unit_groups`).
    """
    if ops is None:  # pragma: no cover - another layout
        yield
        return
    concat, reshape = index_mapping.update_concat_index_mapping, index_mapping.update_reshape_index_mapping
    split, update = index_mapping.update_split_index_mapping, index_mapping.update_index_mapping
    between, out_channels = shape_infer.infer_channels_between, shape_infer.infer_out_channels_recursively
    init_shapes = shape_infer.init_shape_information

    def concat_of_known_sizes(graph, node):
        size_concat_of_parts(graph, node, channels_between)
        sizes = getattr(node.module, "concat_sizes", None)
        if sizes is not None and getattr(node, "_sklearn_dropnet_mapped_for", None) == tuple(sizes):
            return  # mapped for these branch sizes already: it would set the same mappings
        try:
            concat(graph, node)
        except TypeError:
            if None not in (getattr(node.module, "concat_sizes", None) or ()):
                raise
        else:
            node._sklearn_dropnet_mapped_for = tuple(node.module.concat_sizes or ()) or None

    def reshape_of_known_sizes(graph, node):
        try:
            reshape(graph, node)
        except ZeroDivisionError as exc:  # raised before it sets a mapping: the reshape stays unmapped
            if reshapes is not None:
                reshapes.append(exc)

    def split_by_parts_read(graph, node):
        split(graph, node)
        map_split_parts(node)

    def parts_sized(graph):
        init_shapes(graph)
        size_equal_parts(graph)

    def parts_concatenated_mapped(graph):
        update(graph)
        map_split_concats(graph)

    index_mapping.update_concat_index_mapping = concat_of_known_sizes
    index_mapping.update_reshape_index_mapping = reshape_of_known_sizes
    index_mapping.update_split_index_mapping = split_by_parts_read
    index_mapping.update_index_mapping = parts_concatenated_mapped
    shape_infer.infer_channels_between = channels_between
    shape_infer.infer_out_channels_recursively = out_channels_recursively
    shape_infer.init_shape_information = parts_sized
    try:
        yield
    finally:
        index_mapping.update_concat_index_mapping, index_mapping.update_reshape_index_mapping = concat, reshape
        index_mapping.update_split_index_mapping, index_mapping.update_index_mapping = split, update
        shape_infer.infer_channels_between, shape_infer.infer_out_channels_recursively = between, out_channels
        shape_infer.init_shape_information = init_shapes


@_without_recursion_warnings
def _dependency_graph(module, example_input):
    # The graph is read off autograd, even inside the caller's no_grad; Torch-Pruning's
    # tracer puts the network in eval mode, and eval_mode gives every module its own back.
    graph = tp.DependencyGraph()
    graph._sklearn_dropnet_unsized_reshapes = reshapes = []
    with torch.enable_grad(), eval_mode(module), _pruners_looked_up_once(graph):
        with _PATCH_LOCK, _mappings_corrected(reshapes), recorded_split_sizes(module) as splits:
            graph.build_dependency(
                module, example_inputs=example_input, verbose=False, customized_pruners=frozen_norm_pruners(module)
            )
    graph._sklearn_dropnet_split_sizes, graph._sklearn_dropnet_chunks = splits.sizes, splits.chunks
    map_glu_halves(graph)
    return graph


def _consumer_shape(node):
    """Shape of a node's output, read from a reshape that consumes it, or None."""
    for consumer in node.outputs:
        if consumer.type == ops.OPTYPE.RESHAPE:
            shape = getattr(consumer.grad_fn, "_saved_self_sym_sizes", None)
            if shape is not None:
                return tuple(int(s) for s in shape)
    return None


def _joins_channels(graph, node):
    """Whether a concat that Torch-Pruning left unmapped joins channels (dim 1)."""
    dim = saved_dim(node.grad_fn)
    shape = _consumer_shape(node)
    if dim is None or (dim < 0 and shape is None):
        return False
    if dim < 0:
        dim += len(shape)
    if dim != 1:
        return False
    sizes = concat_sizes(graph, node, channels_between)
    return None not in sizes and (shape is None or shape[1] == sum(sizes))


def _map_channel_concats(graph):
    """Give channel concatenations that Torch-Pruning left unmapped their index mapping.

    Torch-Pruning 1.6 sets a concat's mapping only when the concatenated
    channel count equals the input size of the next layer; through
    ``flatten -> Linear`` it does not (see the module docstring). For every
    concat without offsets whose ``dim`` is the channel dimension (1, or
    its negative counterpart given the rank read off the reshape behind
    it), this sets the offsets and the mappings exactly as Torch-Pruning
    does for the concats it recognises: going into the concat, branch
    ``k``'s channel ``i`` becomes channel ``offset_k + i``; coming out of
    it, only the channels in branch ``k``'s range reach branch ``k``.

    Torch-Pruning refreshes its own concat offsets before every
    ``get_pruning_group``, from the branches' current sizes; the concats
    mapped here are not refreshed by it, so this must be called again
    before every ``get_pruning_group`` once a group of the same graph has
    been pruned (:func:`_pruning_group` does both).
    """
    if ops is None:
        return
    for node in graph.module2node.values():
        if node.type != ops.OPTYPE.CONCAT or not node.enable_index_mapping:
            continue
        mapped_here = getattr(node, "_sklearn_dropnet_mapped", False)
        if not mapped_here and (node.module.offsets is not None or not _joins_channels(graph, node)):
            continue
        sizes = concat_sizes(graph, node, channels_between)
        if None in sizes:
            continue
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        node.module.concat_sizes = list(sizes)
        node.module.offsets = offsets
        node._sklearn_dropnet_mapped = True
        for k, inp in enumerate(node.inputs):
            for dep in node.dependencies:  # concat -> branch k
                if dep.target == inp:
                    dep.index_mapping[1] = _ConcatIndexMapping(offset=offsets[k : k + 2], reverse=True)
                    break
            for dep in inp.dependencies:  # branch k -> concat
                if dep.target == node:
                    dep.index_mapping[1] = _ConcatIndexMapping(offset=offsets[k : k + 2], reverse=False)
                    break


class _Reached(Exception):
    """A group being built reached the dependency its builder looked for."""


class _MappingTooLarge(RuntimeError):
    """Torch-Pruning mapped a layer's units to more positions than the network has,
    or built a group of more steps or positions than the network could need."""


_BOUND_FACTOR, _BOUND_FLOOR = 16, 1 << 16
_STEPS_PER_DEPENDENCY, _STEPS_FLOOR = 4, 4096
_POSITIONS_IN_ALL = 16  # times the bound on one step


def _until_pruned(graph):
    """What is kept on ``graph`` until :func:`_prune` changes its channel counts and
    parameters: ``"bounds"`` (see :func:`_bounds`), and ``"mapped"`` (see :func:`_map_once`)."""
    return graph.__dict__.setdefault("_sklearn_dropnet_until_pruned", {})


def _bounds(graph):
    """The bound on one step's positions, the graph's dependencies and the bound on
    steps, for :func:`_bounded_groups`; computed once until something is pruned."""
    kept = _until_pruned(graph)
    if "bounds" not in kept:
        sizes = [max(p.shape) for p in graph.model.parameters() if p.dim()]
        dependencies = sum(len(node.dependencies) for node in graph.module2node.values())
        kept["bounds"] = (
            max(_BOUND_FLOOR, _BOUND_FACTOR * max(sizes, default=0)),
            dependencies,
            _STEPS_FLOOR + _STEPS_PER_DEPENDENCY * dependencies,
        )
    return kept["bounds"]


@contextlib.contextmanager
def _bounded_groups(graph, until=None):
    """Torch-Pruning's groups, refused when they grow past what the network could need.

    A group is refused at a step that names more channel positions than 16
    times the largest dimension of any of the network's parameters (and
    65,536), at more steps than 4,096 plus 4 per dependency of the graph, or
    when its steps name more positions in all than 16 times the first bound.

    Through some reshapes (CoAtNet's attention) Torch-Pruning 1.6 maps a layer's
    units to ever longer index lists, millions of Python objects a step, until
    the machine runs out of memory: it hung, then was killed. Through others
    (MaxViT's attention, whose query and key meet in a matrix product) it goes
    round the same cycle of the graph with new indices each time, and each step
    compares itself with every earlier one: a two-block MaxViT was still being
    traced after ten minutes, and torchvision's ``maxvit_t`` held 13 GiB after
    fifteen. The groups of 40 torchvision and timm networks take at most 0.92
    steps per dependency, and 1.9 times the first bound in all; an ``nn.RNN``'s
    group, which revisits every step of the sequence, takes 1,470 steps over a
    sequence of 6 and 3,429 over one of 50. The caller holds ``_PATCH_LOCK``.

    ``until``, if given, is asked of each step's dependency: the first it
    accepts ends the group with :class:`_Reached`.

    Each group also keeps its steps in a set, for Torch-Pruning's "is this step
    in the group already?" (``has_pruning_op``), which otherwise compares it
    with every earlier step: quadratic in the group's length. timm's FocalNet,
    whose focal modulation splits a layer's output into query, context and
    gates, builds groups of about 7,000 steps, and building its pruner took
    90 s, nearly all of it in those comparisons.
    """
    if Group is None:  # pragma: no cover
        yield
        return
    bound, dependencies, most_steps = _bounds(graph)
    add_dep, has_pruning_op = Group.add_dep, Group.has_pruning_op

    def bounded(group, dep, idxs):
        if until is not None and until(dep):
            raise _Reached
        if len(idxs) > bound:
            raise _MappingTooLarge(
                f"it maps them to {len(idxs):,} channel positions of {dep.target.name}, more than the "
                f"network's tensors have ({bound:,} at most)"
            )
        positions = getattr(group, "_sklearn_dropnet_positions", 0) + len(idxs)
        group._sklearn_dropnet_positions = positions
        if positions > _POSITIONS_IN_ALL * bound:
            raise _MappingTooLarge(
                f"it maps them to {positions:,} channel positions in all, of the modules they reach, "
                f"more than {_POSITIONS_IN_ALL * bound:,}"
            )
        if len(group) >= most_steps:
            raise _MappingTooLarge(
                f"the group grows past {most_steps:,} steps through a graph of {dependencies:,} "
                "dependencies (as when it goes round a cycle with new channel indices each time)"
            )
        steps = group.__dict__.setdefault("_sklearn_dropnet_steps", set())
        if steps is not None:
            try:
                steps.add((dep.target, dep.handler, tuple(idxs)))
            except TypeError:  # a step it cannot hash: the group's steps are compared one by one
                group._sklearn_dropnet_steps = None
        add_dep(group, dep, idxs)

    def has_step(group, dep, idxs):
        # Torch-Pruning's test, a step of the same target, handler and indices (equal
        # lists are equal tuples, with equal hashes), looked up instead of searched for,
        # where every step of the group could be hashed. Inside, every step of every
        # group goes through ``bounded``: Torch-Pruning adds them with ``add_dep`` only.
        steps = group.__dict__.get("_sklearn_dropnet_steps")
        if steps is None:
            return has_pruning_op(group, dep, idxs)
        try:
            return (dep.target, dep.handler, tuple(idxs)) in steps
        except TypeError:
            return has_pruning_op(group, dep, idxs)

    Group.add_dep, Group.has_pruning_op = bounded, has_step
    try:
        yield
    finally:
        Group.add_dep, Group.has_pruning_op = add_dep, has_pruning_op


@_without_recursion_warnings
def _map_once(graph):
    """Bring ``graph``'s index mappings up to date, for every group built on it until :func:`_prune`.

    Torch-Pruning recomputes the index mapping of every reshape, concat,
    split, slice and expand of the graph before each group it builds
    (``update_index_mapping``), because pruning a group changes the channel
    counts they depend on. Where nothing is pruned between the groups, as in
    a trace, each recomputation gives the same mappings, and through many
    reshapes it is most of the work: building a pruner for torchvision's
    ``swin_t`` (64 x 64) took 26 s, and takes 8 s mapping once.
    :func:`_pruning_group` skips it for a graph marked here, and
    :func:`_prune` takes the mark off.
    """
    if ops is None:  # pragma: no cover - another layout: mapped before each group
        return
    with _pruners_looked_up_once(graph), _PATCH_LOCK, _mappings_corrected():
        _map_channel_concats(graph)
        index_mapping.update_index_mapping(graph)
    _until_pruned(graph)["mapped"] = True


@contextlib.contextmanager
def _mappings_kept(graph):
    """Torch-Pruning's ``update_index_mapping`` does nothing for ``graph`` inside
    (the caller holds ``_PATCH_LOCK``)."""
    update = index_mapping.update_index_mapping
    index_mapping.update_index_mapping = lambda current: None if current is graph else update(current)
    try:
        yield
    finally:
        index_mapping.update_index_mapping = update


@_without_recursion_warnings
def _pruning_group(graph, layer, idxs, until=None):
    """``graph``'s group for removing output channels ``idxs`` of ``layer`` (``until``: see :func:`_bounded_groups`)."""
    current = _until_pruned(graph).get("mapped", False)
    with _pruners_looked_up_once(graph):
        pruner = graph.get_pruner_of_module(layer)
        with _PATCH_LOCK, _bounded_groups(graph, until), _mappings_corrected():
            if not current:
                _map_channel_concats(graph)
            with _mappings_kept(graph) if current else contextlib.nullcontext():
                return graph.get_pruning_group(layer, pruner.prune_out_channels, idxs)


def _is_grouped_conv(module):
    """A convolution with channel groups, depthwise ones excepted.

    Its channels can only be removed as many from every group. A depthwise
    convolution (one input and one output channel per group) has its
    channels coupled to its input's, and Torch-Pruning removes them
    together, groups and all.
    """
    groups = getattr(module, "groups", 1)
    depthwise = groups == getattr(module, "in_channels", 0) == getattr(module, "out_channels", 0)
    return isinstance(module, nn.modules.conv._ConvNd) and groups > 1 and not depthwise


def _channel_groups(graph, group, size, names, parts=1):
    """The channel group of each of the root's ``size`` units, their floor, and why there are none.

    Returns ``(labels, floor, None)``: ``labels`` (``0 .. n - 1`` per unit)
    when the units belong to or feed grouped convolutions, or go into a
    ``chunk`` (whose parts must keep one size too: see :mod:`._split_concats`;
    ``parts``: see :attr:`UnitGroup.parts`), None otherwise,
    and the fewest units a channel group keeps (see
    :attr:`UnitGroup.channel_group_floor`); or ``(None, 1, reason)`` when the
    channel groups cannot be kept equal by removing the root's units alone. A group whose channel groups hold one
    unit each cannot lose any (a pruned network reaches that floor; see
    :class:`~sklearn_dropnet.pruning.DropNetPruner` for a new one).
    """
    labels = np.zeros(size, dtype=np.int64)
    floor = 1
    # A gate fused into the layer (``parts`` > 1) is chunked into its halves, and each unit
    # has a channel in both: the halves keep one size by themselves.
    chunks = getattr(graph, "_sklearn_dropnet_chunks", ()) if parts == 1 else ()
    for item in group:
        conv = item.dep.target.module
        chunk = chunk_parts(item, chunks)
        if chunk is not None:
            channels, n_groups = chunk
            if channels % n_groups:
                return None, 1, f"its units go into a chunk of {channels} channels in {n_groups} unequal parts"
            what = f"channels of a chunk into {n_groups} parts ({item.dep.target.name}), which must all keep the same size"
        elif _is_grouped_conv(conv):
            output = graph.is_out_channel_pruning_fn(item.dep.handler)
            channels, n_groups = (conv.out_channels if output else conv.in_channels), conv.groups
            what = (
                f"{'output' if output else 'input'} channels of the grouped convolution {names[conv]!r}, "
                "whose channel groups must all keep the same size"
            )
            if output and conv.in_channels > conv.groups:
                floor = 2
        else:
            continue
        idxs, root = np.asarray(item.idxs, dtype=int), np.asarray(item.root_idxs, dtype=int)
        if len(np.unique(idxs)) != channels or len(np.unique(root)) != size:
            return None, 1, f"its units are only some of the {what}"
        labels[root] = labels[root] * n_groups + idxs // (channels // n_groups)
        labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
    counts = np.bincount(labels)
    if len(counts) == 1:
        return None, 1, None
    if counts.min() != counts.max():
        return None, 1, "its units belong to the channel groups of grouped convolutions that do not nest"
    return labels, min(floor, counts.min()), None


def _grouped_input_weight(weight, idxs, groups):
    """A grouped convolution's ``weight`` without the input channels ``idxs``, group by group."""
    per_group = weight.shape[1]
    removed = [idxs[(idxs >= g * per_group) & (idxs < (g + 1) * per_group)] - g * per_group for g in range(groups)]
    if len({len(r) for r in removed}) != 1:
        raise PruningError(
            f"Removing input channels {idxs.tolist()} leaves the convolution's {groups} channel "
            "groups of unequal sizes."
        )
    rows = weight.reshape(groups, weight.shape[0] // groups, *weight.shape[1:])
    kept = [rows[g][:, np.setdiff1d(np.arange(per_group), removed[g])] for g in range(groups)]
    return torch.cat(kept)


def _tracked_instance_norms(group):
    """The InstanceNorms with running statistics in ``group``, with the channels they lose.

    Torch-Pruning 1.6 shrinks an InstanceNorm's ``num_features`` and affine
    parameters but not its ``running_mean`` and ``running_var``.
    """
    norms = {}
    for item in group:
        module = item.dep.target.module
        if isinstance(module, nn.modules.instancenorm._InstanceNorm) and module.track_running_stats:
            norms[module] = np.union1d(norms.get(module, []), np.asarray(item.idxs, dtype=int))
    return [(norm, norm.running_mean.shape[0], idxs) for norm, idxs in norms.items()]


def _prune(graph, group):
    """``group.prune()``, with the input channels of grouped convolutions removed group by group.

    Torch-Pruning keeps the first positions of such a convolution's input
    dimension, right only when every channel group loses the same positions.
    A split's part sizes follow the channels it loses (see :mod:`._splits`).
    The running statistics of an InstanceNorm lose their channels too, and a
    layer under ``torch.nn.utils.weight_norm`` its ``weight_g`` and
    ``weight_v`` (see :mod:`._weight_norm`).
    """
    _until_pruned(graph).clear()  # map again, and bound anew, before each group
    removed = {"out": {}, "in": {}}  # side -> layer -> the channels it loses
    for item in group:
        if graph.is_out_channel_pruning_fn(item.dep.handler):
            side = removed["out"]
        elif graph.is_in_channel_pruning_fn(item.dep.handler):
            side = removed["in"]
        else:
            continue
        layer = item.dep.target.module
        side[layer] = np.union1d(side.get(layer, []), np.asarray(item.idxs, dtype=int)).astype(int)
    folded = weight_norm.as_plain_weights([*removed["out"], *removed["in"]])
    inputs = [(conv, idxs) for conv, idxs in removed["in"].items() if _is_grouped_conv(conv)]
    weights = [conv.weight.detach().clone() for conv, _ in inputs]
    norms = _tracked_instance_norms(group)
    splits = split_resizes(group, getattr(graph, "_sklearn_dropnet_split_sizes", {}))
    group.prune()
    resize_splits(splits)
    for (conv, idxs), weight in zip(inputs, weights):
        if len(idxs):
            pruned = _grouped_input_weight(weight, idxs, conv.groups)
            conv.weight = nn.Parameter(pruned, requires_grad=conv.weight.requires_grad)
    for norm, size, idxs in norms:
        kept = torch.as_tensor(np.setdiff1d(np.arange(size), idxs), device=norm.running_mean.device)
        norm.running_mean = norm.running_mean[kept]
        norm.running_var = norm.running_var[kept]
    weight_norm.refold(folded, removed["out"], functools.partial(_cut_inputs, removed["in"]))


def _cut_inputs(removed, layer, weight):
    """``weight`` (a layer's, or shaped as it) without the input channels ``layer`` lost."""
    idxs = removed.get(layer, np.array([], dtype=int))
    if not len(idxs):
        return weight
    if _is_grouped_conv(layer):
        return _grouped_input_weight(weight, idxs, layer.groups)
    kept = torch.as_tensor(np.setdiff1d(np.arange(weight.shape[1]), idxs), device=weight.device)
    return weight[:, kept]


def _out_channel_items(graph, group):
    for item in group:
        if graph.is_out_channel_pruning_fn(item.dep.handler):
            yield item


def find_unit_groups(module, example_input, structure):
    """List the unit groups of ``module``, in execution order.

    A :class:`~sklearn_dropnet.exceptions.UnitRemovalWarning` names each
    prunable layer left out, and why (see :func:`trace_unit_groups`).

    Parameters
    ----------
    module : nn.Module
    example_input : torch.Tensor
    structure : NetworkStructure
        From :func:`sklearn_dropnet.pruning._probes.inspect_network`.

    Returns
    -------
    list of UnitGroup
    """
    groups, refused = trace_unit_groups(module, example_input, structure)
    for name, (_, reason) in refused.items():
        warn_unpruned(name, reason)
    return groups


def warn_unpruned(name, reason):
    """Warn that layer ``name`` stays unpruned, and why."""
    warn(f"DropNet leaves layer {name!r} unpruned: {reason}.", UnitRemovalWarning)


def _untraceable(exc, structure):
    shuffles = sorted(structure.channel_shuffles)
    if shuffles:
        cause = (
            f"the module {shuffles[0]!r} shuffles channels (a view to (n, groups, channels per "
            "group, ...) and a transpose of those two dimensions, as ShuffleNet's channel_shuffle): "
            "a channel then comes from another group, which Torch-Pruning cannot follow"
        )
    else:
        where = _where_in_torch_pruning(exc)
        cause = (
            "its structure is not supported"
            + (f": Torch-Pruning fails in its {where}, which a bug report to Torch-Pruning can name" if where else "")
        )
    return PruningError(
        "Torch-Pruning cannot trace which channels of this network depend on each other "
        f"({type(exc).__name__}: {exc}), so no layer can be removed physically: {cause}."
    )


def _where_in_torch_pruning(exc):
    """The innermost function of Torch-Pruning that ``exc`` went through, as
    ``name (file.py:line)``, or None."""
    where, frame = None, exc.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        if f"{os.sep}torch_pruning{os.sep}" in code.co_filename:
            where = f"{code.co_name} ({os.path.basename(code.co_filename)}:{frame.tb_lineno})"
        frame = frame.tb_next
    return where


def _feeds_a_layer(graph, layer):
    """Whether ``layer``'s output channels are inputs of another Linear or Conv layer
    (or may be: Torch-Pruning cannot follow them).

    The group stops at the first such input it reaches: the rest of it cannot
    change the answer, and through an attention's reshapes it is most of the
    time (timm's EfficientFormerV2 asks this of 48 layers).
    """

    def feeds(dep):
        return graph.is_in_channel_pruning_fn(dep.handler) and isinstance(dep.target.module, PRUNABLE_TYPES)

    try:
        _pruning_group(graph, layer, list(range(layer.weight.shape[0])), until=feeds)
    except _Reached:
        return True
    except Exception:  # Torch-Pruning cannot follow them
        return True
    return False


def trace_unit_groups(module, example_input, structure, known=()):
    """The unit groups of ``module``, and the layers left out.

    A prunable layer is left out when its units are coupled to the output
    channels of a layer that is never pruned (see
    :attr:`~sklearn_dropnet.pruning._probes.NetworkStructure.output_layers`),
    or belong to or feed a grouped convolution whose channel groups cannot
    be kept equal. So is every layer of
    :attr:`~sklearn_dropnet.pruning._probes.NetworkStructure.left_out` whose
    output feeds another layer and that no group prunes along: a hidden
    layer is never left unpruned without a reason. Layers in ``known``,
    left out by an earlier trace, are not asked again whether they feed
    another layer (in a Swin that question is most of the trace's time).

    Returns
    -------
    groups : list of UnitGroup
        In execution order.
    refused : dict of str -> (int, str)
        For each layer left out, its number of units and the reason.

    Raises
    ------
    PruningError
        When Torch-Pruning cannot trace the network's dependencies.
    """
    try:
        graph = _dependency_graph(module, example_input)
    except Exception as exc:  # Torch-Pruning's tracer, however it fails
        raise _untraceable(exc, structure) from exc
    if structure.channel_shuffles and graph._sklearn_dropnet_unsized_reshapes:
        # The reshapes Torch-Pruning cannot size are the shuffle's views: no channel
        # is followed into another group, and the network is refused as before.
        exc = graph._sklearn_dropnet_unsized_reshapes[0]
        raise _untraceable(exc, structure) from exc
    _map_once(graph)  # nothing is pruned during a trace
    names = {m: n for n, m in module.named_modules()}
    modules = dict(module.named_modules())
    covered, pruned_along = set(), set()
    groups, refused = [], {}
    for name in structure.probes:
        if name in covered:
            continue
        layer = modules[name]
        pruner = graph.get_pruner_of_module(layer)
        channels = pruner.get_out_channels(layer)
        parts = structure.probes[name].parts
        size = channels // parts
        if layer not in graph.module2node:
            refused[name] = (size, _FROZEN if _frozen(layer) else _NOT_IN_THE_GRAPH)
            continue
        try:
            group = _pruning_group(graph, layer, list(range(channels)))
        except Exception as exc:  # Torch-Pruning's index mapping, inside a module it cannot follow
            refused[name] = (size, _not_followed(exc, module))
            continue
        members, unscored = [], []
        blocked = None

        def units(item):  # the root units of a group item's positions
            return np.asarray(item.root_idxs, dtype=int) % size

        consumers = [
            (names[item.dep.target.module], np.asarray(item.idxs, dtype=int), units(item))
            for item in group
            if graph.is_in_channel_pruning_fn(item.dep.handler) and isinstance(item.dep.target.module, PRUNABLE_TYPES)
        ]
        along = set()
        # A layer with parametrizations other than a weight norm (spectral_norm), whose
        # weight Torch-Pruning cannot resize, keeps its channels: neither its outputs
        # nor its inputs can go; nor those of a weight norm over another dimension.
        fed = next(((n, why) for n, _, _ in consumers if (why := weight_norm.not_resized(modules[n]))), None)
        for item in _out_channel_items(graph, group):
            target = names.get(item.dep.target.module)
            along.add(target)
            if target in structure.output_layers or weight_norm.has_unsupported_parametrizations(item.dep.target.module):
                blocked = blocked or target
            coupled = (target, np.asarray(item.idxs, dtype=int), units(item))
            if target in structure.probes:
                members.append(coupled)
                covered.add(target)
            elif target in structure.switch_offs:
                unscored.append(coupled)
        if blocked or fed:
            refused[name] = (
                size,
                f"its units are coupled to the output channels of {blocked!r}, a layer that is never "
                "pruned (it gives the network's output, is called more than once, shares its weights "
                "or has parametrizations)"
                if blocked
                else f"its units feed {fed[0]!r}, {fed[1]}",
            )
            continue
        channel_groups, floor, problem = _channel_groups(graph, group, channels, names, parts)
        if channel_groups is not None and parts > 1:
            problem = "its units, each two channels of a gate fused into the layer, feed grouped convolutions"
        problem = problem or _channels_out_of_range((*members, *unscored), consumers, modules, size)
        if problem:
            refused[name] = (size, problem)
            continue
        members.sort(key=lambda member: member[0] != name)  # root first
        pruned_along |= along
        groups.append(
            UnitGroup(
                name=name, size=size, members=tuple(members), consumers=tuple(consumers),
                channel_groups=channel_groups, channel_group_floor=floor, unscored=tuple(unscored), parts=parts,
            )
        )  # fmt: skip
    for name, reason in structure.left_out.items():
        layer = modules[name]
        if name in pruned_along or name in refused or name in known:
            continue
        if layer not in graph.module2node or _feeds_a_layer(graph, layer):
            refused[name] = (layer.weight.shape[0], reason)
    return groups, refused


_NOT_IN_THE_GRAPH = (
    "Torch-Pruning, which traces the network back from its output through autograd, has no node for it "
    "(as for Swin V2's relative position bias MLP, which reads a table of constant coordinates, or a "
    "layer computed under torch.no_grad)"
)


_FROZEN = (
    "its parameters are frozen (requires_grad=False), and Torch-Pruning, which traces the network "
    "back from its output through autograd, sees no layer whose parameters need no gradient; to "
    "prune it, let it train (layer.requires_grad_(True)): DropNet fine-tunes the layers it prunes"
)


def _frozen(layer):
    """Whether none of ``layer``'s parameters needs a gradient (a frozen layer in transfer learning)."""
    return not any(parameter.requires_grad for parameter in layer.parameters())


def _not_followed(exc, module):
    """Why a layer whose unit group Torch-Pruning fails to build is left out."""
    grus = [name for name, part in module.named_modules() if isinstance(part, nn.GRU)]
    into = (
        f"; Torch-Pruning 1.6 cannot follow channels into an nn.GRU ({grus[0]!r}), whose gates it "
        "traces one by one (an nn.LSTM there loses the matching inputs)"
        if grus
        else ""
    )
    cause = str(exc) if type(exc).__name__.startswith("_") else f"{type(exc).__name__}: {exc}"  # not our own class
    return f"Torch-Pruning cannot follow its units into the modules that read them ({cause}){into}"


def _channels_out_of_range(members, consumers, modules, size):
    """Why Torch-Pruning's channel mapping of a group cannot be right, or None: it
    names channels a layer does not have (as it did through a ``chunk`` or
    ``split`` of a layer's output and a concatenation, YOLOv8's C2f block and
    CSPNet's cross-stage blocks, before :mod:`._split_concats`). ``members`` are
    the layers whose output channels go with the group's, scored or switched
    off; ``consumers``, those reading them."""
    widths = [(target, outputs, modules[target].weight.shape[0]) for target, outputs, _ in members]
    widths += [(target, inputs, _in_width(modules[target])) for target, inputs, _ in consumers]
    roots = [root for _, _, root in (*members, *consumers)]
    recurrent = [name for name, layer in modules.items() if type(layer) in (nn.RNN, nn.GRU)]
    where = (
        f"into the {type(modules[recurrent[0]]).__name__} {recurrent[0]!r}, whose gates Torch-Pruning 1.6 "
        "traces one by one, or through a split, concatenation, reshape or broadcast product"
        if recurrent
        else "through a split, concatenation, reshape or broadcast product (x * weights)"
    )
    for target, channels, width in widths:
        if channels.size and (channels.min() < 0 or channels.max() >= width):
            return (
                f"Torch-Pruning maps its units to channel {int(channels.max())} of {target!r}, which has "
                f"{width} (its mapping {where} of this network is wrong)"
            )
    if any(root.size and (root.min() < 0 or root.max() >= size) for root in roots):
        return f"Torch-Pruning maps units beyond its {size} (its mapping {where} of this network is wrong)"
    return None


def _in_width(layer):
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def saved_state(module):
    """Every submodule of ``module`` with a shallow copy of its attributes, for :func:`put_back`.

    Shallow is enough: surgery gives a module new parameters, buffers and
    sizes, but changes no tensor in place, so the old ones stay as they were.
    Only the containers are copied (the ``_parameters`` dict, an LSTM's list
    of weights), which surgery fills anew; anything else is kept as it is,
    an object that cannot be copied (a handle, a lock) too.
    """
    return [
        (part, {key: copy.copy(value) if isinstance(value, (dict, list, set)) else value for key, value in vars(part).items()})
        for part in module.modules()
    ]


def put_back(state):
    """Give each module its attributes of :func:`saved_state` back, in place.

    The modules stay the same objects, and so do their containers (the
    ``_parameters`` dict an optimizer's caller may hold, the hooks' dicts
    that hook handles refer to); those are refilled instead of replaced.
    """
    for part, saved in state:
        attributes = vars(part)
        for key in [key for key in attributes if key not in saved]:
            del attributes[key]
        for key, value in saved.items():
            current = attributes.get(key)
            if type(current) is type(value) and isinstance(value, (dict, set)):
                current.clear()
                current.update(value)
            elif type(current) is type(value) and isinstance(value, list):
                current[:] = value
            else:
                attributes[key] = value


def _parameter_settings(module):
    """Each parameter's ``requires_grad`` and whether it is stored channels-last."""
    return {
        name: (p.requires_grad, p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last))
        for name, p in module.named_parameters()
    }  # fmt: skip


def _put_back_settings(module, settings):
    for name, parameter in module.named_parameters():
        if name in settings:
            requires_grad, channels_last = settings[name]
            parameter.requires_grad_(requires_grad)
            if channels_last and parameter.is_contiguous():
                parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)


def _shared_parameters(module):
    """The places ``(module name, attribute)`` of each parameter that several modules hold."""
    places = {}
    for name, layer in module.named_modules():
        for attribute, parameter in layer.named_parameters(recurse=False):
            places.setdefault(id(parameter), []).append((name, attribute))
    return [where for where in places.values() if len(where) > 1]


class UntiedWeights(PruningError):
    """A removal would cut the copies of a shared weight differently."""

    def __init__(self, where):
        self.layers = sorted(layer for layer, _ in where)
        names = [f"{layer}.{attribute}" if layer else attribute for layer, attribute in where]
        super().__init__(
            f"Removing these units unties the weights that {names} share: Torch-Pruning cuts each copy on "
            "its own, and here the cuts differ. DropNetPruner.check_removal() leaves such layers out."
        )


def _tie_again(module, shared):
    """Make the modules that shared a parameter before the cut share its cut version,
    which Torch-Pruning made once for each: refuse where the cuts differ."""
    modules = dict(module.named_modules())
    for where in shared:
        first = getattr(modules[where[0][0]], where[0][1])
        for name, attribute in where[1:]:
            parameter = getattr(modules[name], attribute)
            if parameter is first:
                continue
            if parameter.shape != first.shape or not torch.equal(parameter, first):
                raise UntiedWeights(where)
            setattr(modules[name], attribute, first)


def remove_units(module, example_input, units_to_drop, groups=()):
    """Remove units from ``module`` in place.

    Parameters
    ----------
    module : nn.Module
    example_input : torch.Tensor
        A small batch on the module's device, used to trace the graph.
    units_to_drop : dict of str -> sequence of int
        For each root layer name, the indices of its units to remove.
    groups : sequence of UnitGroup, optional
        The groups of ``units_to_drop``, where a unit is several of its root
        layer's channels (:attr:`UnitGroup.parts`); otherwise a unit is one.
    """
    settings, shared = _parameter_settings(module), _shared_parameters(module)
    graph = _dependency_graph(module, example_input)
    modules = dict(module.named_modules())
    by_name = {group.name: group for group in groups}
    for name, idxs in units_to_drop.items():
        idxs = [int(i) for i in idxs]
        if name in by_name:
            idxs = by_name[name].root_channels(idxs).tolist()
        if not idxs:
            continue
        _prune(graph, _pruning_group(graph, modules[name], sorted(idxs)))
    # Torch-Pruning gives every cut layer a new nn.Parameter: give back what the
    # old one had, its requires_grad, its memory format, and the weights it shared.
    _put_back_settings(module, settings)
    _tie_again(module, shared)
