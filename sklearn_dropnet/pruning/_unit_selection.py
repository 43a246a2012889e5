"""Choose which units to drop in one DropNet round.

``scope="layer"`` drops the same fraction of every layer's survivors (the
paper's ``min_layer``). ``scope="global"`` ranks all units of the network
together after dividing each layer's scores by that layer's mean absolute
score, so that layers with larger activations do not shield their weak units
while a layer with small activations is emptied into a bottleneck.
``scope="global_raw"`` ranks the raw scores (the paper's ``min``). Every
layer keeps at least one unit and ties are broken at random.

The ways of choosing are a registry, :data:`UNIT_SELECTIONS` (name ->
function). A selection is any callable with their signature,
``select(scores, n_drop, rng, **context)`` returning ``{group name: unit
indices}``; the context (the pruner, labelled batches of training data,
the groups' ``channel_groups`` and their ``floors``) is what a selection that does not go by the
scores needs, such as the oracle
(:class:`~sklearn_dropnet.pruning.OracleSelection`).

Whatever the selection, a group whose units belong to or feed a grouped
convolution, or go into a ``chunk``, then loses as many units from each of
its channel groups (:func:`balance_channel_groups`): the convolution's
groups, or the chunk's parts, must keep one size.
"""

import numpy as np

from ._signatures import accepts

__all__ = ["UNIT_SELECTIONS", "balance_channel_groups", "check_units", "choose_units_to_drop", "keep_every_branch"]


def _ascending(scores, rng):
    """Indices of ``scores`` from lowest to highest, ties in random order."""
    return np.lexsort((rng.random(len(scores)), scores))


def _layer_quotas(sizes, n_drop, steps=None, floors=None):
    """Split ``n_drop`` over layers in proportion to their sizes.

    Largest-remainder rounding; every layer keeps at least one unit. A
    layer with ``steps`` channel groups gets a multiple of ``steps`` and
    keeps ``floors`` units (default 1) per channel group. No layer takes
    more than its share rounded up to a whole step: what a layer cannot
    take (at its floor, or in whole steps) is left over, not given to the
    others, so each layer loses about the same fraction.

    Examples
    --------
    >>> from sklearn_dropnet.pruning._unit_selection import _layer_quotas
    >>> _layer_quotas([32, 64], 19, steps=[1, 32]).tolist()  # 64 takes steps of 32: its 12.7 is left over
    [7, 0]
    """
    sizes = np.asarray(sizes)
    steps = np.ones_like(sizes) if steps is None else np.asarray(steps)
    floors = np.ones_like(sizes) if floors is None else np.asarray(floors)
    capacity = sizes - steps * floors
    exact = n_drop * sizes / sizes.sum()
    quotas = np.minimum(np.floor(exact / steps).astype(int) * steps, capacity)
    remainder = exact - quotas
    while quotas.sum() < n_drop:
        open_layers = np.flatnonzero(
            (remainder > 0) & (quotas + steps <= capacity) & (quotas.sum() + steps <= n_drop)
        )
        if not open_layers.size:
            break
        best = open_layers[np.argmax(remainder[open_layers])]
        quotas[best] += steps[best]
        remainder[best] = -np.inf
    return quotas


def _normalised(values):
    scale = np.mean(np.abs(values))
    return values / scale if scale > 0 else values


def select_layerwise(scores, n_drop, rng, channel_groups=None, floors=None, **context):
    """``n_drop`` units split over the groups in proportion to their sizes,
    the lowest-scoring of each (the paper's ``min_layer``); a group with
    channel groups gets a multiple of their number."""
    names = list(scores)
    channel_groups, floors = channel_groups or {}, floors or {}
    steps = [_n_groups(channel_groups.get(n)) for n in names]
    quotas = _layer_quotas([len(scores[n]) for n in names], n_drop, steps, [floors.get(n, 1) for n in names])
    return {n: np.sort(_ascending(scores[n], rng)[:q]) for n, q in zip(names, quotas)}


def _lowest_overall(values_of, n_drop, rng):
    names = list(values_of)
    values = [values_of[n] for n in names]
    layer_of = np.concatenate([np.full(len(v), i) for i, v in enumerate(values)])
    unit_of = np.concatenate([np.arange(len(v)) for v in values])
    left = np.array([len(v) for v in values])
    chosen = [[] for _ in names]
    for position in _ascending(np.concatenate(values), rng):
        if n_drop == 0:
            break
        layer = layer_of[position]
        if left[layer] > 1:
            chosen[layer].append(unit_of[position])
            left[layer] -= 1
            n_drop -= 1
    return {n: np.sort(np.asarray(c, dtype=int)) for n, c in zip(names, chosen)}


def select_global(scores, n_drop, rng, **context):
    """The ``n_drop`` lowest units of the network after dividing each group's
    scores by its mean absolute score (scale-free)."""
    return _lowest_overall({n: _normalised(v) for n, v in scores.items()}, n_drop, rng)


def select_global_raw(scores, n_drop, rng, **context):
    """The ``n_drop`` lowest raw scores of the network (the paper's ``min``)."""
    return _lowest_overall(scores, n_drop, rng)


UNIT_SELECTIONS = {
    "layer": select_layerwise,
    "global": select_global,
    "global_raw": select_global_raw,
}


def _n_groups(labels):
    return 1 if labels is None else int(labels.max()) + 1


def _per_channel_group(chosen, labels, floor):
    """How many units each channel group loses: the count chosen, rounded to
    a multiple of the number of groups (halves up), leaving ``floor`` per group."""
    n_groups = _n_groups(labels)
    room = np.bincount(labels, minlength=n_groups).min() - floor
    return max(0, min(int(np.floor(len(chosen) / n_groups + 0.5)), room))


def _lowest_in_each_group(chosen, scores, labels, per_group, rng):
    """``per_group`` units of each channel group: those in ``chosen`` first, then the lowest scores."""
    picked = []
    order = np.lexsort((rng.random(len(scores)), scores, ~np.isin(np.arange(len(scores)), chosen)))
    for label in range(int(labels.max()) + 1):
        picked.extend(order[labels[order] == label][:per_group])
    return np.sort(np.asarray(picked, dtype=int))


def balance_channel_groups(drop, scores, channel_groups, rng, floors=None):
    """Make every group with channel groups lose as many units from each.

    A group's count is the selection's, rounded to the nearest multiple of
    its number of channel groups (halves up; each channel group keeps its
    floor of units, 1 unless ``floors`` says otherwise); within a channel
    group, the units the selection chose go first, then the lowest scores.

    Parameters
    ----------
    drop : dict of str -> numpy.ndarray
        The selection's choice.
    scores : dict of str -> numpy.ndarray
        The units' scores.
    channel_groups : dict of str -> numpy.ndarray or None
        Each group's channel group labels (``UnitGroup.channel_groups``).
    rng : numpy.random.Generator
        Breaks ties.
    floors : dict of str -> int, default=None
        The fewest units each channel group of a group keeps
        (``UnitGroup.channel_group_floor``); 1 where not given.

    Returns
    -------
    dict of str -> numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_dropnet.pruning._unit_selection import balance_channel_groups
    >>> scores = {"conv": np.array([0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0])}
    >>> labels = {"conv": np.array([0, 0, 0, 0, 1, 1, 1, 1])}
    >>> drop = {"conv": np.array([0, 1, 2])}  # all from the first channel group
    >>> balance_channel_groups(drop, scores, labels, np.random.default_rng(0))["conv"].tolist()
    [0, 1, 4, 5]
    """
    balanced, floors = dict(drop), floors or {}
    for name, labels in channel_groups.items():
        if labels is not None and name in drop:
            per_group = _per_channel_group(drop[name], labels, floors.get(name, 1))
            balanced[name] = _lowest_in_each_group(drop[name], scores[name], labels, per_group, rng)
    return balanced


def _one_step(scores, channel_groups, floors, rng):
    """The smallest removal that keeps channel groups equal: one unit per channel
    group of the group with the fewest channel groups that can lose one."""
    sizes = {name: len(values) for name, values in scores.items()}
    steps = {name: _n_groups(channel_groups.get(name)) for name in scores}
    roomy = [name for name in scores if sizes[name] > steps[name] * floors.get(name, 1)]
    drop = {name: np.zeros(0, dtype=int) for name in scores}
    if roomy:
        name = min(roomy, key=lambda n: steps[n])
        labels = channel_groups.get(name)
        labels = np.zeros(sizes[name], dtype=int) if labels is None else labels
        drop[name] = _lowest_in_each_group([], scores[name], labels, 1, rng)
    return drop


def check_units(units, sizes, source):
    """``units`` (group name -> indices of units to remove) as integer arrays,
    or a ValueError that names what is wrong, beginning with ``source``
    (where they come from: ``"scope=... returned"``)."""
    contract = (
        "units to remove are {group name: indices}, each index in [0, the group's units) at "
        "most once, leaving every group at least one unit"
    )

    def refuse(problem):
        return ValueError(f"{source} {problem}; {contract}.")

    if not isinstance(units, dict):
        raise refuse(f"a {type(units).__name__}, not a dict")
    unknown = sorted(map(repr, set(units) - set(sizes)))
    if unknown:
        raise refuse(f"groups that do not exist ({', '.join(unknown)}; the groups are {sorted(sizes)})")
    checked = {}
    for name, indices in units.items():
        indices = np.asarray(indices)
        size = sizes[name]
        if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
            raise refuse(f"{indices!r} for {name!r}, not a sequence of integer indices")
        indices = indices.astype(int)
        if indices.size and (indices.min() < 0 or indices.max() >= size):
            raise refuse(f"index {indices[(indices < 0) | (indices >= size)][0]} for {name!r}, which has {size} units")
        if len(np.unique(indices)) != len(indices):
            raise refuse(f"an index twice for {name!r}")
        if len(indices) >= size:
            raise refuse(f"all {size} units of {name!r}")
        checked[name] = indices
    return checked


def choose_units_to_drop(scores, n_drop, scope, rng, channel_groups=None, floors=None, sizes=None, **context):
    """Pick ``n_drop`` units to remove.

    Parameters
    ----------
    scores : dict of str -> numpy.ndarray
        One score per unit for every unit group; lower scores go first.
    n_drop : int
        Number of units to remove in total (groups with channel groups
        round their share, see :func:`balance_channel_groups`).
    scope : str or callable
        A name in :data:`UNIT_SELECTIONS` (``"layer"``, ``"global"``,
        ``"global_raw"``), or a callable with their signature.
    rng : numpy.random.Generator
        Breaks ties.
    channel_groups : dict of str -> numpy.ndarray or None, default=None
        The groups' channel group labels, when some feed or belong to a
        grouped convolution or go into a chunk; the selection gets them too. If the balanced
        choice removes nothing, the smallest removal that keeps the channel
        groups equal is made instead: a round always removes something.
    floors : dict of str -> int, default=None
        The fewest units each channel group keeps (1 where not given).
    sizes : dict of str -> int, default=None
        The units of every group, to check the selection's choice against
        (by default the lengths of ``scores``; a selection that needs no
        scores, such as the oracle, may get none).
    **context
        Passed on to the selection (see the module docstring).

    Returns
    -------
    dict of str -> numpy.ndarray
        The unit indices to remove from each group (possibly empty).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_dropnet.pruning._unit_selection import choose_units_to_drop
    >>> scores = {"a": np.array([0.5, 0.1, 0.9, 0.3]), "b": np.array([2.0, 1.0])}
    >>> drop = choose_units_to_drop(scores, 3, "layer", np.random.default_rng(0))
    >>> {name: sorted(idx.tolist()) for name, idx in drop.items()}
    {'a': [1, 3], 'b': [1]}
    """
    select = scope if callable(scope) else UNIT_SELECTIONS.get(scope)
    if select is None:
        raise ValueError(f"scope must be one of {sorted(UNIT_SELECTIONS)} or a callable, got {scope!r}.")
    channel_groups = {name: labels for name, labels in (channel_groups or {}).items() if labels is not None}
    floors = {name: floor for name, floor in (floors or {}).items() if name in channel_groups}
    context = {"channel_groups": channel_groups, "floors": floors, **context}
    if not accepts(select, scores, n_drop, rng, **context):
        raise TypeError(
            f"scope, a callable, must take (scores, n_drop, rng, **context), as UNIT_SELECTIONS' do; "
            f"{getattr(select, '__name__', select)!r} cannot take the context {sorted(context)}: add "
            "**context to its parameters."
        )
    drop = select(scores, n_drop, rng, **context)
    sizes = {name: len(values) for name, values in scores.items()} if sizes is None else sizes
    drop = check_units(drop, sizes, f"scope={scope!r} returned")
    if not channel_groups:
        return drop
    drop = balance_channel_groups(drop, scores, channel_groups, rng, floors)
    if n_drop > 0 and not any(len(units) for units in drop.values()):  # a round always removes something
        drop = _one_step(scores, channel_groups, floors, rng)
    return drop


def keep_every_branch(group, chosen, scores=None):
    """``chosen`` (units of ``group`` to remove) changed so that every branch keeps a unit.

    Where ``chosen`` holds all the units of a branch (see
    ``UnitGroup.branches``), the branch's highest-scored unit stays, and
    the lowest-scored unit whose removal empties no branch goes in its place,
    from the same channel group if the group has channel groups; so the
    count stays unless no such unit is left. Without ``scores``, the lowest
    index stays and the lowest free index goes.
    """
    chosen = {int(unit) for unit in chosen}
    if not group.branches or not group.emptied_branches(chosen):
        return np.asarray(sorted(chosen), dtype=int)
    scores = np.zeros(group.size) if scores is None else np.asarray(scores, dtype=float)
    labels = np.zeros(group.size, dtype=int) if group.channel_groups is None else group.channel_groups
    order = np.argsort(scores, kind="stable")  # the lowest scores first
    for _, root in group.branches:
        if not set(root.tolist()) <= chosen:
            continue
        kept = int(root[np.argmax(scores[root])])
        chosen.discard(kept)
        for unit in order:
            unit = int(unit)
            if unit in chosen or unit == kept or labels[unit] != labels[kept]:
                continue
            if not group.emptied_branches(chosen | {unit}):
                chosen.add(unit)
                break
    return np.asarray(sorted(chosen), dtype=int)
