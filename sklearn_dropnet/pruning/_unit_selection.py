"""Choose which units to drop in one DropNet round.

``scope="layer"`` drops the same fraction of every layer's survivors (the
paper's ``min_layer``). ``scope="global"`` ranks all units of the network
together after dividing each layer's scores by that layer's mean absolute
score, so that layers with larger activations do not shield their weak units
while a layer with small activations is emptied into a bottleneck.
``scope="global_raw"`` ranks the raw scores (the paper's ``min``). Every
layer keeps at least one unit and ties are broken at random.
"""

import numpy as np

SCOPES = ("layer", "global", "global_raw")


def _ascending(scores, rng):
    """Indices of ``scores`` from lowest to highest, ties in random order."""
    return np.lexsort((rng.random(len(scores)), scores))


def _layer_quotas(sizes, n_drop):
    """Split ``n_drop`` over layers in proportion to their sizes.

    Largest-remainder rounding; every layer keeps at least one unit.
    """
    sizes = np.asarray(sizes)
    capacity = sizes - 1
    exact = n_drop * sizes / sizes.sum()
    quotas = np.minimum(np.floor(exact).astype(int), capacity)
    remainder = exact - quotas
    while quotas.sum() < n_drop and np.any(quotas < capacity):
        open_layers = np.flatnonzero(quotas < capacity)
        quotas[open_layers[np.argmax(remainder[open_layers])]] += 1
        remainder[open_layers[np.argmax(remainder[open_layers])]] = -np.inf
    return quotas


def _normalised(values):
    scale = np.mean(np.abs(values))
    return values / scale if scale > 0 else values


def choose_units_to_drop(scores, n_drop, scope, rng):
    """Pick ``n_drop`` units to remove.

    Parameters
    ----------
    scores : dict of str -> numpy.ndarray
        One score per unit for every unit group; lower scores go first.
    n_drop : int
        Number of units to remove in total.
    scope : {"layer", "global", "global_raw"}
    rng : numpy.random.Generator
        Breaks ties.

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
    names = list(scores)
    if scope == "layer":
        quotas = _layer_quotas([len(scores[n]) for n in names], n_drop)
        return {n: np.sort(_ascending(scores[n], rng)[:q]) for n, q in zip(names, quotas)}

    values = [_normalised(scores[n]) if scope == "global" else scores[n] for n in names]
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
