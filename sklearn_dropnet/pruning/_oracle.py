"""The paper's ``oracle`` baseline: drop the units whose removal hurts least.

Tan & Motani compare DropNet with an oracle on small networks: with the
trained weights kept, remove the single unit whose removal raises the
training loss least, then the next one given the first, and so on, one unit
at a time. It needs one forward pass over the (sub-sampled) training data
per candidate unit and removed unit, so it is only practical for small
networks.

Removing a unit is simulated by zeroing its post-activation
(:class:`UnitMask`), which gives exactly the output of the network with the
unit removed physically (``tests/test_conv_pruning.py`` checks this for
BatchNorm, flatten -> linear, residual and concatenation structures).

:class:`OracleSelection` plugs the oracle into DropNet's rounds as a unit
selection (see :mod:`~sklearn_dropnet.pruning._unit_selection`): in place of
``scope`` in :class:`~sklearn_dropnet.pruning.DropNetPruner.choose` or
:class:`~sklearn_dropnet.DropNetClassifier`, so that the oracle's rounds
train, rewind and retrain exactly as DropNet's do.
"""

import numpy as np
import torch
from torch import nn

from ._eval_mode import eval_mode
from ._probes import inspect_network
from ._surgery import find_unit_groups
from ._unit_mask import UnitMask
from ._unit_selection import _layer_quotas

__all__ = ["OracleSelection", "oracle_units_to_drop"]


def _loss(module, X, y, criterion, batch_size):
    total = 0.0
    for start in range(0, len(X), batch_size):
        logits = module(X[start : start + batch_size])
        total += float(criterion(logits, y[start : start + batch_size])) * len(logits)
    return total / len(X)


def oracle_units_to_drop(
    module, X, y, n_drop, scope="global", criterion=None, batch_size=1024, rng=None, units=None
):
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
    units : tuple of (NetworkStructure, list of UnitGroup), default=None
        The network's probes and unit groups, when the caller has them
        (layers left out of pruning are then left alone); traced from
        ``module`` otherwise.

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
    if units is None:
        structure = inspect_network(module, X[:2])
        units = structure, find_unit_groups(module, X[:2], structure)
    structure, groups = units
    names = [group.name for group in groups]
    sizes = {group.name: group.size for group in groups}
    if scope == "layer":
        quota = dict(zip(names, _layer_quotas([sizes[n] for n in names], n_drop)))
    else:
        quota = {name: sizes[name] - 1 for name in names}
    dropped = {name: [] for name in names}
    with eval_mode(module), UnitMask(module, structure.probes, groups, structure.switch_offs) as mask, torch.no_grad():
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


class OracleSelection:
    """The paper's oracle as a unit selection for DropNet's rounds.

    Each round, ``oracle_units_to_drop`` chooses the units on
    ``max_samples`` training samples drawn at random (from the training
    rows alone: the pruner hands over labelled batches of its training
    split, never the rows held out for validation). It ignores the units'
    scores. Pass it where a ``scope`` name goes.

    Parameters
    ----------
    scope : {"global", "layer"}, default="global"
        ``"layer"`` splits the round's units over the layers in proportion
        to their sizes, as ``scope="layer"`` does; ``"global"`` chooses among
        all units (the oracle has no score scale to normalise).
    max_samples : int, default=512
        Training samples the losses are computed on, drawn anew each round.
    criterion : callable, default=None
        Loss of ``(output, labels)``; cross-entropy of logits by default.
    batch_size : int, default=1024
        Samples per forward pass.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dropnet import DropNetClassifier
    >>> from sklearn_dropnet.pruning import OracleSelection
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DropNetClassifier(scope=OracleSelection(max_samples=64), prune_ratio=0.3,
    ...                         max_epochs=2, module__hidden_layer_sizes=(8, 8), random_state=0)
    >>> [r["units"] for r in clf.fit(X[:300] / 16, y[:300]).pruning_history_]
    [16, 13, 11]
    """

    def __init__(self, scope="global", max_samples=512, criterion=None, batch_size=1024):
        self.scope = scope
        self.max_samples = max_samples
        self.criterion = criterion
        self.batch_size = batch_size

    def __repr__(self):
        return f"OracleSelection(scope={self.scope!r}, max_samples={self.max_samples})"

    def __call__(self, scores, n_drop, rng, *, pruner=None, labelled_batches=None, **context):
        if pruner is None or labelled_batches is None:
            raise TypeError(
                "OracleSelection needs the network and labelled training data: use it as the "
                "scope of DropNetPruner.choose(..., labelled_batches=...) or of DropNetClassifier."
            )
        inputs, labels = zip(*labelled_batches())
        inputs, labels = torch.cat(inputs), torch.cat(labels)
        sample = torch.as_tensor(rng.choice(len(inputs), size=min(self.max_samples, len(inputs)), replace=False))
        return oracle_units_to_drop(
            pruner.module,
            inputs[sample.to(inputs.device)],
            labels[sample.to(labels.device)],
            n_drop,
            self.scope,
            criterion=self.criterion,
            batch_size=self.batch_size,
            rng=rng,
            units=(pruner.structure, pruner.units),
        )
