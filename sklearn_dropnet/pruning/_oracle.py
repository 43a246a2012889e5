"""The paper's ``oracle`` baseline: drop the units whose removal hurts least.

Tan & Motani compare DropNet with an oracle on small networks: with the
trained weights kept, remove the single unit whose removal raises the
training loss least, then the next one given the first, and so on, one unit
at a time. It needs one forward pass over the (sub-sampled) training data
per candidate unit and removed unit, so it is only practical for small
networks; it serves the reproduction (``benchmarks/reproduce_paper.py``),
not :class:`~sklearn_dropnet.DropNetClassifier`.

Removing a unit is simulated by zeroing its post-activation
(:class:`UnitMask`), which gives exactly the output of the network with the
unit removed physically (``tests/test_conv_pruning.py`` checks this for
BatchNorm, flatten -> linear, residual and concatenation structures).

:func:`oracle_pruning_path` runs the paper's Algorithm 1 with the oracle in
place of the score: train, let the oracle pick ``drop_fraction`` of the
survivors, remove them, reset the survivors (``reinit``) and retrain.
"""

import copy
import math

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state
from torch import nn

from .._data import LabelledData
from .._dropnet import _redraw_weights, _units_per_round
from ._eval_mode import eval_mode
from ._probes import inspect_network
from ._surgery import find_unit_groups, remove_units
from ._unit_mask import UnitMask
from ._unit_selection import _layer_quotas


def _loss(module, X, y, criterion, batch_size):
    total = 0.0
    for start in range(0, len(X), batch_size):
        logits = module(X[start : start + batch_size])
        total += float(criterion(logits, y[start : start + batch_size])) * len(logits)
    return total / len(X)


def oracle_units_to_drop(module, X, y, n_drop, scope="global", criterion=None, batch_size=1024, rng=None):
    """Choose ``n_drop`` units greedily by the training loss of the network without them.

    One unit at a time: every surviving unit is tried (its post-activation
    zeroed, the other weights as trained), the one giving the lowest loss
    on ``(X, y)`` is dropped, and the next unit is chosen given the ones
    already dropped. Every layer keeps at least one unit.

    Parameters
    ----------
    module : nn.Module
        The trained network; it is not modified.
    X : torch.Tensor
        Training inputs (a sub-sample is fine), on the module's device.
    y : torch.Tensor
        Encoded labels (int64), on the same device.
    n_drop : int
        Number of units to choose.
    scope : {"global", "global_raw", "layer"}, default="global"
        ``"layer"`` chooses ``n_drop`` split over the layers in proportion
        to their sizes, as DropNet's layer-wise scope does; the global
        scopes (the same here: the oracle has no score scale) choose among
        all units.
    criterion : callable, default=None
        Loss of ``(logits, y)``; cross-entropy by default.
    batch_size : int, default=1024
        Samples per forward pass.
    rng : numpy.random.Generator, default=None
        Breaks ties between equal losses.

    Returns
    -------
    dict of str -> numpy.ndarray
        For each unit group (root layer name), the sorted unit indices to
        remove, ready for :func:`sklearn_dropnet.pruning._surgery.remove_units`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._oracle import oracle_units_to_drop
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> with torch.no_grad():  # units 0 and 2 tell the sign of x[0]; unit 1 is unused
    ...     _ = net[0].weight.copy_(torch.tensor([[5.0, 0], [0, 1], [-5, 0]]))
    ...     _ = net[0].bias.zero_(), net[2].bias.zero_()
    ...     _ = net[2].weight.copy_(torch.tensor([[-1.0, 0, 1], [1, 0, -1]]))
    >>> X = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    >>> y = (X[:, 0] > 0).long()
    >>> {k: v.tolist() for k, v in oracle_units_to_drop(net, X, y, 1).items()}
    {'0': [1]}
    """
    rng = np.random.default_rng(rng)
    criterion = criterion or nn.CrossEntropyLoss()
    structure = inspect_network(module, X[:2])
    groups = find_unit_groups(module, X[:2], structure)
    names = [group.name for group in groups]
    sizes = {group.name: group.size for group in groups}
    if scope == "layer":
        quota = dict(zip(names, _layer_quotas([sizes[n] for n in names], n_drop)))
    else:
        quota = {name: sizes[name] - 1 for name in names}
    dropped = {name: [] for name in names}
    with eval_mode(module), UnitMask(module, structure.probes, groups) as mask, torch.no_grad():
        for _ in range(n_drop):
            candidates = [
                (name, unit)
                for name in names
                if len(dropped[name]) < quota[name]
                for unit in range(sizes[name])
                if unit not in dropped[name]
            ]
            if not candidates:
                break
            losses = []
            for name, unit in candidates:
                mask.set({**dropped, name: dropped[name] + [unit]})
                losses.append(_loss(module, X, y, criterion, batch_size))
            best = np.lexsort((rng.random(len(losses)), np.asarray(losses)))[0]
            name, unit = candidates[best]
            dropped[name].append(unit)
    return {name: np.sort(np.asarray(units, dtype=int)) for name, units in dropped.items()}


def _with_module(estimator, module):
    """A clone of ``estimator`` that trains ``module`` (an instance) densely."""
    params = {k: v for k, v in estimator.get_params(deep=False).items() if not k.startswith("module__")}
    params.update(module=module, prune_ratio=0.0)
    return type(estimator)(**params)


def oracle_pruning_path(estimator, X, y, min_fraction_left, max_samples=512):
    """Run DropNet's rounds with the oracle choosing the units; yield each round.

    Each round trains a copy of ``estimator`` (with ``prune_ratio=0``) on
    the current architecture, lets :func:`oracle_units_to_drop` choose
    ``estimator.drop_fraction`` of the surviving units on a sub-sample of
    the training data, removes them, and resets the survivors as
    ``estimator.reinit`` says (``"rewind"``: their initial weights;
    ``"none"``: the trained ones; ``"random"``: fresh ones) for the next
    round. ``estimator.scope`` is passed on (``"layer"`` or global).

    Parameters
    ----------
    estimator : DropNetClassifier
        Unfitted template: module, training settings, ``drop_fraction``,
        ``scope``, ``reinit``, ``random_state``.
    X : ndarray of shape (n_samples, ...)
        Training data.
    y : ndarray of shape (n_samples,)
        Class labels.
    min_fraction_left : float in (0, 1]
        Stop once at most this fraction of the dense units is left.
    max_samples : int, default=512
        Training samples the oracle's losses are computed on, drawn at
        random once per round from the fit's training split (never from the
        rows it holds out for validation).

    Yields
    ------
    DropNetClassifier
        The fitted estimator of each round, dense first. Its
        ``pruning_history_`` has one record, with ``fraction_left`` set
        relative to the dense network.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dropnet import DropNetClassifier
    >>> from sklearn_dropnet.pruning._oracle import oracle_pruning_path
    >>> X, y = load_digits(return_X_y=True)
    >>> template = DropNetClassifier(max_epochs=2, module__hidden_layer_sizes=(8, 8),
    ...                              random_state=0)
    >>> path = oracle_pruning_path(template, X[:300] / 16, y[:300], 0.7)
    >>> [clf.pruning_history_[0]["fraction_left"] for clf in path]
    [1.0, 0.8125, 0.6875]
    """
    rng = np.random.default_rng(check_random_state(estimator.random_state).randint(2**31 - 1))
    clf = clone(estimator).set_params(prune_ratio=0.0).fit(X, y)
    initial = copy.deepcopy(clf.initial_module_)
    n_dense = clf.n_units_dense_
    left = n_dense
    clf.pruning_history_[0]["fraction_left"] = 1.0
    yield clf
    X = np.asarray(X, dtype=np.float32)
    encoded = np.searchsorted(clf.classes_, np.asarray(y))
    while left > math.floor(min_fraction_left * n_dense + 1e-9):
        device = clf.net_.device
        trained = clf.module_
        # The training loss: rows of the fit's own training split only.
        train, _ = clf._split(LabelledData(X, encoded), clf._seed)
        sample = rng.choice(len(train), size=min(max_samples, len(train)), replace=False)
        X_sample = torch.as_tensor(train.X[sample], device=device)
        y_sample = torch.as_tensor(train.y[sample], device=device)
        groups = find_unit_groups(trained, X_sample[:2], inspect_network(trained, X_sample[:2]))
        target = max(math.floor(min_fraction_left * n_dense + 1e-9), len(groups))
        n_drop = min(_units_per_round(estimator.drop_fraction, left), left - target)
        if n_drop <= 0:
            break
        drop = oracle_units_to_drop(trained, X_sample, y_sample, n_drop, estimator.scope, rng=rng)
        example = X_sample[:2].to(next(initial.parameters()).device)
        remove_units(initial, example, drop)
        if estimator.reinit == "none":
            start = copy.deepcopy(trained)
            remove_units(start, X_sample[:2], drop)
        else:
            start = copy.deepcopy(initial)
            if estimator.reinit == "random":
                _redraw_weights(start)
        clf = _with_module(estimator, start).fit(X, y)
        left = clf.n_units_dense_
        clf.pruning_history_[0]["fraction_left"] = round(left / n_dense, 6)
        yield clf
