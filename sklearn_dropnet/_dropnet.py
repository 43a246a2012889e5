"""DropNetClassifier: a scikit-learn classifier pruned by DropNet.

``fit`` trains the dense network, then repeats rounds of: score every unit
by its mean |post-activation| on the training data, remove the lowest
``drop_fraction`` of the survivors physically, restart the survivors
(``reinit``) and retrain with early stopping, until ``prune_ratio`` of the
units are gone (Tan & Motani, ICML 2020, Algorithm 1). The rounds' steps
are :class:`~sklearn_dropnet.pruning.DropNetPruner`'s; the training is
:class:`~sklearn_dropnet._net.DropNetNet`'s (skorch).
"""

import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from ._build_module import ModuleCopyMixin, build_module, check_module_output
from ._data import split_validation
from ._dense_baseline import checked_pruner, first_pruner
from ._device import seeded_generators
from ._export import NetworkExportMixin
from ._inputs import (
    DatasetScoreMixin,
    inference_data,
    labelled_for_prune,
    training_data,
)
from ._net import make_net
from ._routing import RoutedParamsMixin
from ._user_warnings import warn
from ._validation import DROPNET_CONSTRAINTS, check_dropnet_params, unfitted_on_failure
from .pruning._engine import DropNetPruner, units_left

# Inputs the removal check runs on, spread over the training data: enough
# that a wrongly mapped unit is unlikely to be zero on all of them.
_CHECK_SAMPLES = 32

def _output_check_rows(train, device):
    """Training rows to check the module's output on before training: more than
    the two the network is traced with, since a few negative outputs (logits
    given to NLLLoss) show on some rows only. torch's generators are kept, so
    that training draws (a Dataset's random transforms) as it would without them."""
    return train.spread_inputs(device, _CHECK_SAMPLES, keep_generators=True)


def _warn_if_not_finite(proba):
    """``proba``, after a warning if some rows are NaN (the network's outputs
    overflowed): ``predict`` would give those rows the first class."""
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        warn(
            f"The network's probabilities are NaN for {int(bad.sum())} of {len(proba)} rows: its "
            "outputs overflowed, on inputs far larger than the training data's, say. predict gives "
            "those rows the first class. Scale X as the training data were.",
            UserWarning,
        )
    return proba


def _units_per_round(drop_fraction, left):
    """Units one DropNet round removes of the ``left``: that fraction, at least one."""
    return max(1, round(drop_fraction * left))


def _expected_rounds(left, target, drop_fraction):
    """Rounds from ``left`` units to ``target``, each removing ``drop_fraction`` of the
    survivors (at least one) and the last no more than ``target`` leaves."""
    rounds = 0
    while left > target:
        left -= min(_units_per_round(drop_fraction, left), left - target)
        rounds += 1
    return rounds


def _next_prune_ratio(estimator, prune_ratio):
    """``prune``'s ``prune_ratio`` checked against what is left; ``None``: one more round's."""
    left = next(r["units"] for r in reversed(estimator.pruning_history_) if r["accepted"])
    n_dense = estimator.n_units_dense_
    # A network with no units (fitted with prune_ratio=0) goes on to the pruner's PruningError.
    if prune_ratio is None:
        return min(1 - (left - _units_per_round(estimator.drop_fraction, left)) / max(n_dense, 1), 0.999)
    constraint = {"prune_ratio": DROPNET_CONSTRAINTS["prune_ratio"]}
    validate_parameter_constraints(constraint, {"prune_ratio": prune_ratio}, caller_name="prune")
    kept = units_left(prune_ratio, n_dense)
    if kept > left:
        raise ValueError(
            f"prune_ratio={prune_ratio} keeps {kept} of the {n_dense} units, but "
            f"only {left} are left: pruning cannot restore units. Refit with that prune_ratio."
        )
    return prune_ratio


def _choose_round(pruner, scores, n_drop, prune_ratio, scope, rng, labelled_batches, round_to):
    """The round's choice, or None where it is empty, which a warning explains.

    A round of fewer than half a multiple of ``round_to`` units rounds back to
    nothing: where ``prune_ratio`` is more than half a multiple away, it is
    chosen again with one multiple, so that a small ``drop_fraction`` does not
    stop the pruning. Empty still, the multiples leave nothing more to remove
    (or a ``scope`` callable chose nothing).
    """
    drop = pruner.choose(scores, n_drop, scope, rng, labelled_batches, round_to)
    short = pruner.n_units - pruner.target_units(prune_ratio)
    one_multiple = min(round_to, pruner.n_units - pruner.fewest_units)
    if not any(len(units) for units in drop.values()) and n_drop < one_multiple and round_to < 2 * short:
        drop = pruner.choose(scores, one_multiple, scope, rng, labelled_batches, round_to)
    if any(len(units) for units in drop.values()):
        return drop
    first = pruner.history[0]["units"]
    stopped = (
        f"Pruning stopped at {1 - pruner.n_units / first:.0%} of the units removed, short of prune_ratio="
        f"{prune_ratio:g}"
    )
    if round_to == 1:
        warn(f"{stopped}: scope={getattr(scope, '__name__', scope)!r} chose no unit to remove.", UserWarning)
        return None
    warn(
        f"{stopped}: round_to={round_to} keeps every layer's units a multiple of "
        f"{round_to}, and no fewer than {round_to} (a narrower layer keeps all of its), so no "
        f"more can go: {pruner.n_units} of the {first} units are left, where prune_ratio={prune_ratio:g} "
        f"leaves {pruner.target_units(prune_ratio)}. Units per layer: {pruner.units_per_layer}. Lower round_to.",
        UserWarning,
    )
    return None


def _next_round(pruner, prune_ratio, drop_fraction, progress):
    """Units the next round removes. At 0 the rounds are over: the progress bar
    ends full (round_to or a layer left out can change their count), and a
    warning says if the layers' fewest units stopped them short of ``prune_ratio``."""
    n_drop = pruner.units_to_drop(prune_ratio, drop_fraction)
    if not n_drop:
        progress.total = progress.n
        _warn_if_at_the_floor(pruner, prune_ratio)
    return n_drop


def _warn_if_at_the_floor(pruner, prune_ratio):
    """Warn when pruning stopped at the fewest units the layers keep, short of ``prune_ratio``."""
    first, left = pruner.history[0]["units"], pruner.n_units
    goal = units_left(prune_ratio, first)
    if left <= goal:
        return
    floors = {**{group.name: group.fewest for group in pruner.units}, **pruner.frozen}
    warn(
        f"Pruning stopped at fraction_left={left / first:.3f} ({left} of the {first} units left), short of "
        f"prune_ratio={prune_ratio:g}, which leaves {goal}: every layer keeps at least one unit (a grouped "
        f"convolution one per channel group; a layer left out keeps all of its), so no more can go. "
        f"The fewest units per layer: {floors}. Set prune_ratio to at most "
        f"{math.floor((1 - left / first) * 1000) / 1000}, the most these layers allow.",
        UserWarning,
    )


def _warn_rejected(history, min_accuracy_ratio, validated=True):
    """Say that the last round fell below ``min_accuracy_ratio`` and which network is kept;
    ``validated`` False: the accuracy is on the training rows (``validation_fraction=0``)."""
    rejected, dense = history[-1], history[0]
    kept = next(record for record in reversed(history) if record["accepted"])
    on = "a validation accuracy" if validated else "a training accuracy (validation_fraction=0)"
    warn(
        f"Round {rejected['round']} reached {on} of {rejected['valid_accuracy']:.4f}, below "
        f"min_accuracy_ratio={min_accuracy_ratio:g} times the dense network's {dense['valid_accuracy']:.4f}: "
        f"the estimator keeps round {kept['round']}'s network ({kept['units']} units, {kept['params']:,} "
        "parameters). The rejected round stays last in pruning_history_, with accepted=False; a later "
        "prune() tries it again.",
        UserWarning,
    )


def _record(pruner, accuracy, training, start):
    """Record a round (the dense one too) in the pruner's, that is the estimator's, history."""
    epochs, train_seconds = training
    seconds = time.perf_counter() - start
    return pruner.record(
        valid_accuracy=accuracy, epochs=epochs, seconds=seconds, train_seconds=train_seconds, accepted=True
    )


class DropNetClassifier(ModuleCopyMixin, NetworkExportMixin, RoutedParamsMixin, DatasetScoreMixin, ClassifierMixin, BaseEstimator):
    """Neural network classifier pruned by DropNet.

    Wraps a :class:`skorch.NeuralNetClassifier`. ``fit`` trains the dense
    network, then runs DropNet rounds (score units, drop the weakest
    ``drop_fraction`` of the survivors, reset and retrain) until
    ``prune_ratio`` of the prunable units are removed. Units are removed
    physically: the fitted :attr:`module_` has smaller layers, so it is
    smaller on disk and faster, and later rounds train the smaller network.

    Prunable units are the outputs of hidden ``nn.Linear`` layers and the
    filters of ``nn.Conv1d/2d/3d`` layers whose output reaches an activation
    (``nn.ReLU()``, ``F.relu``, ...) through BatchNorm, InstanceNorm, Dropout,
    pooling or residual adds. Every layer keeps a unit (per channel group);
    a layer left unpruned, or of a kind whose units DropNet keeps (an
    ``nn.LSTM``), is named in a warning and in ``unpruned_layers_``.

    Parameters
    ----------
    module : torch.nn.Module class or instance, or callable, default=None
        The network, as in skorch: a class or a picklable callable returning
        one (``torchvision.models.resnet18``, a ``functools.partial``) is
        called with the ``module__*`` parameters and, where it takes them and
        they are not set, ``input_shape``, ``n_classes`` and ``num_classes``
        from the data. An instance is copied. ``None`` builds
        :class:`sklearn_dropnet.models.MLP`. It returns logits (probabilities
        with ``criterion=torch.nn.NLLLoss``; ``fit`` warns at a mismatch).
    criterion : type of torch.nn.Module, default=torch.nn.CrossEntropyLoss
        Loss, as in skorch. ``predict_proba`` is the softmax of the module's
        logits; with ``torch.nn.NLLLoss`` the module returns probabilities
        (skorch takes their log for the loss), used as they are.
    optimizer : type of torch.optim.Optimizer, default=torch.optim.Adam
        Optimizer class, as in skorch (the paper used SGD with ``lr=0.1``).
    lr : float, default=0.001
        Learning rate.
    max_epochs : int, default=100
        Most epochs per round; early stopping usually ends a round sooner.
    batch_size : int, default=32
        Rows per batch in training and validation, and the fewest in a ``predict`` batch (which takes up
        to 32 MiB of activations). A last training batch of one sample joins the batch before it.
    device : str or torch.device, default="cpu"
        Where to train, e.g. ``"cuda"``; ``fit`` refuses a device this
        machine lacks. A model fitted on a GPU loads and predicts on a
        machine without one; set ``device="cpu"`` there to prune it further.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks, run in every round. The net runs copies
        (``net_.callbacks_``), or a callback itself if it cannot be copied.
    prune_ratio : float in [0, 1), default=0.5
        Fraction of the prunable units to remove; 0 trains the dense
        network only, even one that DropNet cannot prune.
    drop_fraction : float in (0, 1), default=0.2
        Fraction of the surviving units removed per round (the paper's p):
        ``round(drop_fraction * survivors)`` units, at least one (Python's
        ``round``: halves go to the even number), and no more than the
        ``prune_ratio`` target leaves.
    scope : {"layer", "global", "global_raw"} or callable, default="layer"
        ``"layer"`` removes ``drop_fraction`` of each layer's units (split
        in proportion to the layers' sizes, largest remainder first);
        ``"global"`` ranks all units together after dividing each layer's
        scores by its mean score; ``"global_raw"`` ranks raw scores together
        (the paper's ``min``). A callable with the signature of
        :data:`sklearn_dropnet.pruning.UNIT_SELECTIONS`' entries chooses
        instead, such as the paper's oracle,
        :class:`sklearn_dropnet.pruning.OracleSelection`.
    round_to : int, default=1
        Keep every layer's units a multiple of ``round_to`` (the channel
        blocks kernels compute fastest: 8 for ONNX Runtime on AVX2 CPUs, 16
        on AVX-512), never below ``round_to``; each round, and so
        ``prune_ratio``, is met as closely as the multiples allow.
    unit_score : {"activation", "contribution", "apoz", "l1", "random", "max"} \
            or callable, default="activation"
        How units are ranked, the lowest first. ``"activation"`` is DropNet
        (mean absolute post-activation on the training data);
        ``"contribution"`` multiplies it by the L1 norm of the unit's
        outgoing weights (what the next layer receives);
        ``"apoz"`` drops units that are zero most often, ``"l1"`` the
        smallest L1 weight norms, ``"random"`` at random, ``"max"`` the
        *highest* activations (a sanity baseline). A callable gets
        ``(layer, activations)``, ``activations`` of shape
        ``(n_samples, n_units)``, and returns one score per unit.
    reinit : {"none", "rewind", "random"}, default="none"
        Weights the survivors start each round from: the trained values
        (fine-tuning), their initial values (``"rewind"``, the paper's), or
        a fresh random initialisation. Fine-tuning needs about 60% of the
        rewound epochs (the user guide compares them).
    distill_weight : float in [0, 1], default=0.0
        Weight ``a`` of distillation from the network before the rounds (the
        dense one in ``fit``): the loss is ``(1 - a)`` times the criterion's
        plus ``a * T**2 * KL(p_T || q_T)`` of the softened class
        probabilities (Hinton et al., 2015), the teacher's computed once per
        training row. 0 trains on the labels alone.
    distill_temperature : float > 0, default=4.0
        The temperature ``T`` of the distillation.
    min_accuracy_ratio : float in (0, 1] or None, default=None
        The paper's kappa: stop when validation accuracy falls below kappa
        times the dense accuracy and keep the last round that met it.
    validation_fraction : float in [0, 1), default=0.1
        Share of the training data held out (stratified) for early stopping
        and for ``min_accuracy_ratio``. With 0, the training loss and
        accuracy are monitored instead.
    patience : int, default=5
        Early-stopping patience in epochs, on the validation loss.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the validation split, the order of the
        training rows (reshuffled every epoch; ``iterator_train__shuffle=False``
        keeps one seeded order), tie-breaking and dropout, leaving torch's
        global generators as they were.
    verbose : int, default=0
        1 shows a progress bar over rounds; 2 also prints skorch's epoch log.
    **kwargs
        Prefixed parameters routed as in skorch: ``module__*``,
        ``criterion__*``, ``optimizer__*``, ``iterator_train__*``,
        ``iterator_valid__*``, ``callbacks__*``, ``dataset__*``.

    Attributes
    ----------
    net_ : DropNetNet
        The trained skorch net holding the pruned module (a
        :class:`skorch.NeuralNetClassifier`).
    module_ : torch.nn.Module
        The pruned network (the same object as ``net_.module_``).
    pruning_history_ : list of dict
        One record per round, numbered by ``round`` (round 0 is the dense
        network): ``units`` left in total and ``units_per_layer``, ``fraction_left``, ``params``,
        ``macs`` (per sample), ``valid_accuracy``, ``epochs``, ``seconds``
        (the whole round: scoring, surgery, training, validation and the
        trace of the new network), ``train_seconds`` (the training epochs
        alone) and whether the round was ``accepted``.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features (the size of axis 1 of ``X``).
    input_shape_ : tuple of int
        Shape of one sample.
    n_units_dense_ : int
        Prunable units of the dense network, the base of ``prune_ratio``
        and of ``fraction_left``.
    initial_module_ : torch.nn.Module
        The network's initial weights, cut to the pruned structure: where
        ``reinit="rewind"`` restarts each round from. Kept on the CPU.
    unpruned_layers_ : dict of str -> str
        The layers left as they are (see above), and why; a warning at ``fit`` names them too.

    See Also
    --------
    HQEnsembleClassifier : Picks a diverse team from several pruned networks.
    sklearn_dropnet.pruning.DropNetPruner : The pruning engine, for any training loop.

    References
    ----------
    .. [1] J. Tan and M. Motani, "DropNet: Reducing Neural Network Complexity
       via Iterative Pruning", ICML 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_dropnet import DropNetClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = DropNetClassifier(prune_ratio=0.5, max_epochs=5, random_state=0)
    >>> clf = clf.fit(X / 16, y)
    >>> clf.pruning_history_[-1]["fraction_left"]
    0.5
    >>> [layer.out_features for layer in clf.module_.layers if hasattr(layer, "out_features")]
    [128, 64, 10]
    """

    _parameter_constraints = DROPNET_CONSTRAINTS

    def __init__(
        self,
        module=None,
        *,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.001,
        max_epochs=100,
        batch_size=32,
        device="cpu",
        callbacks=None,
        prune_ratio=0.5,
        drop_fraction=0.2,
        scope="layer",
        round_to=1,
        unit_score="activation",
        reinit="none",
        distill_weight=0.0,
        distill_temperature=4.0,
        min_accuracy_ratio=None,
        validation_fraction=0.1,
        patience=5,
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        self.module = module
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.device = device
        self.callbacks = callbacks
        self.prune_ratio = prune_ratio
        self.drop_fraction = drop_fraction
        self.scope = scope
        self.round_to = round_to
        self.unit_score = unit_score
        self.reinit = reinit
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature
        self.min_accuracy_ratio = min_accuracy_ratio
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose
        self._store_routed(kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "pruning_history_")

    # ------------------------------------------------------------------
    # fit and prune
    # ------------------------------------------------------------------
    @unfitted_on_failure
    def fit(self, X, y=None):
        """Train the dense network, then prune it to ``prune_ratio``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...), \
                or torch Dataset
            Training data; images as (n_samples, channels, height, width). A
            Dataset yields (x, label) pairs. The module receives the inputs
            as float32 tensors (one tensor per batch; a dict of several
            inputs is not supported).
        y : array-like of shape (n_samples,) or None
            Class labels of any type; None when ``X`` is a Dataset.

        Returns
        -------
        self : DropNetClassifier
            The fitted estimator.
        """
        self._validate_params()  # invalid parameters leave a fitted estimator as it was
        check_dropnet_params(self)
        # Fitted once the dense round is recorded: a fit that fails later (training
        # diverged, say) leaves no network to predict with, nor an earlier fit's.
        self.__dict__.pop("pruning_history_", None), self.__dict__.pop("net_", None)
        data = training_data(self, X, y)
        self._seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        with seeded_generators(self._seed, self.device):
            module = build_module(self.module, self._prefixed("module__"), self.input_shape_, len(self.classes_))
            train, valid = split_validation(data, self.validation_fraction, len(self.classes_), self._seed)
            self.net_ = make_net(module, self.get_params(deep=False), len(self.classes_), valid)
            example = data.example(self.net_.device)
            del module, data  # would keep the dense network (pruning replaces it) and the rows before the split
            check_module_output(self.net_.module_, _output_check_rows(train, self.net_.device), len(self.classes_), self.net_.criterion_)
            # Traced before training: a network DropNet cannot prune fails at once (unless prune_ratio=0).
            pruner = first_pruner(self.net_.module_, example, self.prune_ratio)
            start = time.perf_counter()
            training = self.net_.train_round(train)
            accuracy = self._accuracy(valid or train)
            pruner = checked_pruner(pruner, train.spread_inputs(self.net_.device, _CHECK_SAMPLES), self.prune_ratio)
            self.pruning_history_ = pruner.history
            self._keep(pruner)
            _record(pruner, accuracy, training, start)
            self._prune_to(pruner, self.prune_ratio, train, valid)
        return self

    def prune(self, X, y=None, prune_ratio=None):
        """Continue pruning a fitted estimator.

        The validation split is drawn as in ``fit``, and
        ``min_accuracy_ratio`` still compares with the dense accuracy.
        Parameters set with ``set_params`` since ``fit`` apply to the new
        rounds (``drop_fraction``, ``lr``, ``device``, ...), except
        ``module``, ``module__*`` and ``random_state``: the rounds go on
        from the seed ``fit`` drew. If a round fails, the estimator keeps
        the network of the last completed round.

        Parameters
        ----------
        X : array-like or torch Dataset
            Training data, as given to ``fit``.
        y : array-like of shape (n_samples,) or None
            Class labels (None when ``X`` is a Dataset).
        prune_ratio : float in [0, 1), default=None
            New fraction of the dense network's units to remove, at least the
            fraction removed already (units cannot be restored; the same
            fraction changes nothing); ``None`` runs one more round of
            ``drop_fraction``.

        Returns
        -------
        self : DropNetClassifier
            The estimator, pruned further.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_dropnet import DropNetClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = DropNetClassifier(prune_ratio=0.2, max_epochs=3, random_state=0)
        >>> clf = clf.fit(X / 16, y).prune(X / 16, y, prune_ratio=0.5)
        >>> [record["fraction_left"] for record in clf.pruning_history_]
        [1.0, 0.799479, 0.640625, 0.513021, 0.5]
        """
        check_is_fitted(self)
        self._validate_params()
        check_dropnet_params(self)
        prune_ratio = _next_prune_ratio(self, prune_ratio)
        data = labelled_for_prune(self, X, y)
        with seeded_generators(self._seed + len(self.pruning_history_), self.device):
            train, valid = split_validation(data, self.validation_fraction, len(self.classes_), self._seed)
            self.net_.update(self.get_params(deep=False), len(self.classes_), valid)  # lr, ... set since fit
            pruner = DropNetPruner(
                self.net_.module_,
                data.example(self.net_.device),
                initial=self.initial_module_,
                history=self.pruning_history_,
                unpruned=self.unpruned_layers_,
                frozen=self._frozen_units,
            )
            del data  # the rows before the split
            pruner.check_removal(train.spread_inputs(self.net_.device, _CHECK_SAMPLES))
            self._keep(pruner)
            self._prune_to(pruner, prune_ratio, train, valid)
        return self

    @property
    def n_units_dense_(self):
        """Prunable units of the dense network, the base of ``prune_ratio``."""
        check_is_fitted(self)
        return self.pruning_history_[0]["units"]

    def _prune_to(self, pruner, prune_ratio, train, valid):
        """Run DropNet rounds until ``prune_ratio`` of the dense units are gone."""
        valid = valid or train
        rng = np.random.default_rng(self._seed + len(self.pruning_history_))
        dense_accuracy = self.pruning_history_[0]["valid_accuracy"]
        accepted = pruner.checkpoint()
        expected = _expected_rounds(pruner.n_units, pruner.target_units(prune_ratio), self.drop_fraction)
        progress = tqdm(total=expected, desc="DropNet rounds", unit="round", disable=not self.verbose)
        device, loader = self.net_.device, self._prefixed("iterator_valid__")  # passes over the training rows
        # The network before the rounds teaches them: its log-probabilities on the training rows.
        teacher = self.net_.log_proba(train.input_batches(device, loader=loader)) if self.distill_weight else None
        check_inputs = train.spread_inputs(device, _CHECK_SAMPLES)
        records = len(self.pruning_history_)
        try:
            while n_drop := _next_round(pruner, prune_ratio, self.drop_fraction, progress):
                records = len(self.pruning_history_)
                start = time.perf_counter()
                scores = pruner.score(lambda: train.input_batches(device, loader=loader), self.unit_score, rng)
                batches = lambda: train.labelled_batches(device)  # noqa: E731
                drop = _choose_round(pruner, scores, n_drop, prune_ratio, self.scope, rng, batches, self.round_to)
                if drop is None:
                    break  # the multiples of round_to leave nothing more to remove
                self.net_.set_module(pruner.remove(drop, restart=self.reinit))
                training = self.net_.train_round(train, teacher)
                accuracy = self._accuracy(valid)
                pruner.check_removal(check_inputs)
                record = _record(pruner, accuracy, training, start)
                progress.set_postfix(units=pruner.n_units, valid_accuracy=f"{accuracy:.3f}", refresh=False)
                progress.update()
                if self.min_accuracy_ratio is not None and accuracy < self.min_accuracy_ratio * dense_accuracy:
                    record["accepted"] = False
                    self._restore(pruner, accepted)
                    _warn_rejected(self.pruning_history_, self.min_accuracy_ratio, valid is not train)
                    break
                accepted = pruner.checkpoint()
                self._keep(pruner)
        except BaseException as exc:
            # Keep the last completed round: a round that fails (or Ctrl-C)
            # after its surgery must not leave a network its history does
            # not describe. Then let the caller stop: a grid search or an
            # ensemble must not go on with a network cut short as if it had
            # been pruned as asked.
            self._restore(pruner, accepted)
            del self.pruning_history_[records:]
            if not isinstance(exc, KeyboardInterrupt):
                raise
            rounds = sum(r["accepted"] for r in self.pruning_history_) - 1
            raise KeyboardInterrupt(
                f"Pruning interrupted; the estimator keeps the network of the last "
                f"completed round ({rounds}; 0 is the dense network)."
            ) from None
        finally:
            progress.close()
            # The fitted estimator need not carry (and pickle) the validation data.
            self.net_.train_split = None

    def _keep(self, pruner):
        """What ``prune`` needs of the pruner to continue: the rewind copy and the layers left out."""
        self.initial_module_ = pruner.initial
        self.unpruned_layers_ = dict(pruner.unpruned)
        self._frozen_units = dict(pruner.frozen)

    def _restore(self, pruner, checkpoint):
        self.net_.set_module(pruner.restore(checkpoint))
        self._keep(pruner)
        self.net_.initialize_optimizer()

    def _accuracy(self, data):
        return float(np.mean(self.net_.predict(data.skorch_args()[0]) == data.y))

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------
    @property
    def module_(self):
        """The pruned network (``net_.module_``)."""
        check_is_fitted(self)
        return self.net_.module_

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), or a torch Dataset of (x,) or (x, label) items

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class in ``classes_`` order.
        """
        X = inference_data(self, X)
        proba = _warn_if_not_finite(self.net_.predict_proba_in_large_batches(X).astype(np.float64))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), or a torch Dataset of (x,) or (x, label) items

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The most probable class of each sample.
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
