"""DropNetClassifier: a skorch classifier pruned by DropNet.

``fit`` trains the dense network, then repeats rounds of: score every unit
by its mean |post-activation| on the training data, remove the lowest
``drop_fraction`` of the survivors physically, reset the survivors' weights
(``reinit``) and retrain with early stopping, until ``prune_ratio`` of the
units are gone (Tan & Motani, ICML 2020, Algorithm 1).
"""

import contextlib
import copy
import inspect
import math
import time
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping
from skorch.helper import predefined_split
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from tqdm.auto import tqdm

from ._data import (
    EncodedDataset,
    LabelledData,
    dataset_labels,
    float_inputs,
    inference_loader,
    training_loader,
)
from ._device import check_device, seeded_generators
from ._export import NetworkExportMixin
from .exceptions import PruningError
from .models import MLP
from .pruning._eval_mode import evaluate
from .pruning._network_cost import count_macs, count_parameters
from .pruning._probes import inspect_network, parametrized_layers, prunable_layers_hint
from .pruning._removal_check import exactly_removable
from .pruning._surgery import remove_units, trace_unit_groups, warn_unpruned
from .pruning._unit_scores import SCORES, is_valid_score, score_units
from .pruning._unit_selection import SCOPES, choose_units_to_drop

REINITS = ("rewind", "random", "none")

# Keyword prefixes routed to skorch (``module__*`` goes to the module).
ROUTED_PREFIXES = (
    "module__",
    "criterion__",
    "optimizer__",
    "iterator_train__",
    "iterator_valid__",
    "callbacks__",
    "dataset__",
)


# Inputs the removal check runs on, spread over the training data: enough
# that a wrongly mapped unit is unlikely to be zero on all of them.
_CHECK_SAMPLES = 32


def _units_per_round(drop_fraction, left):
    """Units one DropNet round removes of the ``left``: that fraction, at least one."""
    return max(1, round(drop_fraction * left))


def _check_number(name, value, low, high, low_open=False, high_open=False, kind=Real):
    """Raise ``TypeError``/``ValueError`` naming ``name`` unless ``value`` is in the interval.

    NaN is in no interval.
    """
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if value != value or too_low or too_high:  # NaN is in no interval
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}.")


def _check_callbacks(callbacks):
    """Raise ``TypeError`` unless ``callbacks`` is None or a list of what skorch takes.

    skorch takes callback instances and classes, and ``(name, callback)`` pairs.
    """
    if callbacks is None:
        return
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of skorch callbacks, got {callbacks!r}.")
    for item in callbacks:
        named = isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
        callback = item[1] if named else item
        is_class = isinstance(callback, type) and issubclass(callback, Callback)
        if not (is_class or isinstance(callback, Callback)):
            raise TypeError(
                "callbacks must hold skorch callbacks (instances or classes of "
                f"skorch.callbacks.Callback) or (name, callback) pairs, got {item!r}."
            )


def _softmax(logits):
    """Softmax over the classes (a picklable ``predict_nonlinearity``)."""
    return torch.softmax(logits, dim=1)


def _predict_nonlinearity(criterion):
    """What turns the module's output into probabilities, given the loss it is trained with.

    skorch's classifier takes the log of the output for ``nn.NLLLoss``, so
    there the module returns probabilities, used as they are; with any other
    loss it returns logits, and the probabilities are their softmax. (skorch's
    own default applies the softmax for ``nn.CrossEntropyLoss`` only and
    passes other losses' logits on as probabilities.)
    """
    is_class = isinstance(criterion, type) and issubclass(criterion, nn.NLLLoss)
    return None if is_class or isinstance(criterion, nn.NLLLoss) else _softmax


_UNSET = object()


def _same(a, b):
    """Whether two parameter values are the same (unequal if they cannot be compared)."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # arrays, objects without a plain equality
        return False


def _copy_if_possible(callback):
    """A deep copy of ``callback``, or ``callback`` itself when it holds what
    cannot be copied (an open file, a logger's run, a lock)."""
    try:
        return copy.deepcopy(callback)
    except Exception:  # whatever its objects raise; the original still works
        return callback


def _same_objects(a, b):
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


@contextlib.contextmanager
def _default_dtype(dtype):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def _reject_input_dict(X):
    if isinstance(X, Mapping) and not sp.issparse(X):  # a dok sparse matrix is a dict
        raise TypeError(
            "X must be an array of samples or a torch Dataset of (x, label) pairs, not a "
            f"{type(X).__name__}: DropNet traces and prunes a network of one input tensor, "
            "so skorch's dict of several inputs is not supported."
        )


def _writable(X):
    """``X``, copied only if torch cannot share its memory: read-only (torch
    warns) or with a negative stride (``X[::-1]``; torch refuses it)."""
    if X.ndim and min(X.strides) < 0:
        return np.ascontiguousarray(X)
    return np.require(X, requirements="W")


def _redraw_weights(module):
    """Draw fresh random weights for ``module``, in place (``reinit="random"``).

    A model's own ``reset_parameters`` (He initialisation in
    :mod:`sklearn_dropnet.models`) wins over each layer's default.
    """
    layers = [module] if hasattr(module, "reset_parameters") else module.modules()
    for layer in layers:
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()


class DropNetClassifier(NetworkExportMixin, ClassifierMixin, BaseEstimator):
    """Neural network classifier pruned by DropNet.

    Wraps a :class:`skorch.NeuralNetClassifier`. ``fit`` trains the dense
    network, then runs DropNet rounds (score units, drop the weakest
    ``drop_fraction`` of the survivors, reset and retrain) until
    ``prune_ratio`` of the prunable units are removed. Units are removed
    physically: the fitted :attr:`module_` has smaller layers, so it is
    smaller on disk and faster, and later rounds train the smaller network.

    Prunable units are the outputs of every hidden ``nn.Linear`` and the
    filters of every ``nn.Conv2d`` whose output feeds an activation module
    (through BatchNorm or Dropout if present). The output layer is never
    pruned and every layer keeps at least one unit.

    Parameters
    ----------
    module : type or instance of torch.nn.Module, default=None
        The network. A class is instantiated with the ``module__*``
        parameters; its ``input_shape`` and ``n_classes`` arguments, when it
        has them, are filled in from the data. An instance is copied and
        used as given. ``None`` builds :class:`sklearn_dropnet.models.MLP`.
        The network returns logits (probabilities with ``criterion=torch.nn.NLLLoss``).
    criterion : type of torch.nn.Module, default=torch.nn.CrossEntropyLoss
        Loss, as in skorch. The module returns logits and ``predict_proba``
        is their softmax, for any loss but ``torch.nn.NLLLoss``: with that
        one the module returns probabilities (it ends in ``Softmax``; skorch
        takes their log for the loss), used as they are.
    optimizer : type of torch.optim.Optimizer, default=torch.optim.Adam
        Optimizer class, as in skorch (the paper used SGD with ``lr=0.1``).
    lr : float, default=0.001
        Learning rate.
    max_epochs : int, default=100
        Most epochs per round; early stopping usually ends a round sooner.
    batch_size : int, default=32
        Mini-batch size for training and inference. A last training batch
        of a single sample joins the batch before it (BatchNorm cannot
        train on one sample), unless ``iterator_train__drop_last=True``.
    device : str or torch.device, default="cpu"
        Where to train, e.g. ``"cuda"``; ``fit`` refuses a device this
        machine lacks. A model fitted on a GPU loads and predicts on a
        machine without one; set ``device="cpu"`` there to prune it further.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks, run in every round. The fitted net runs
        copies of them (``net_.callbacks_``); the objects given are left
        untouched, as scikit-learn requires of parameters. A callback that
        cannot be copied (one holding an open file or a logger's run) is
        run itself.
    prune_ratio : float in [0, 1), default=0.5
        Fraction of the prunable units to remove; 0 trains the dense
        network only.
    drop_fraction : float in (0, 1), default=0.2
        Fraction of the surviving units removed per round (the paper's p):
        ``round(drop_fraction * survivors)`` units, at least one (Python's
        ``round``: halves go to the even number), and no more than the
        ``prune_ratio`` target leaves.
    scope : {"layer", "global", "global_raw"}, default="layer"
        ``"layer"`` removes ``drop_fraction`` of each layer's units: the
        round's units are split over the layers in proportion to their
        sizes (largest remainder; every layer keeps one), so a layer of a
        few units can end a little above or below the fraction of the
        others (a 24-10 MLP pruned 90% keeps 1 and 2 units);
        ``"global"`` ranks all units together after dividing each layer's
        scores by its mean score; ``"global_raw"`` ranks raw scores together,
        as in the paper's ``min`` metric.
    unit_score : {"activation", "apoz", "l1", "random", "max"} or callable, \
            default="activation"
        How units are ranked (named so as not to hide the ``score`` method); the lowest go first. ``"activation"`` is
        DropNet (mean absolute post-activation on the training data),
        ``"apoz"`` drops units that are zero most often, ``"l1"`` the
        smallest L1 weight norms, ``"random"`` at random, ``"max"`` the
        *highest* activations (a sanity baseline). A callable gets
        ``(layer, activations)``, ``activations`` of shape
        ``(n_samples, n_units)``, and returns one score per unit.
    reinit : {"rewind", "random", "none"}, default="rewind"
        Weights the survivors start each round from: their initial values
        (the paper's default), a fresh random initialisation, or the trained
        values (fine-tuning).
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
        training rows (one random order, the same in every epoch; pass
        ``iterator_train__shuffle=True`` to reshuffle each epoch) and
        tie-breaking (and dropout on a GPU). Torch's global generators, the
        CPU's and every CUDA device's, are as they were after ``fit`` and
        ``prune``; on an MPS device its generator is left reseeded.
    verbose : int, default=0
        1 shows a progress bar over rounds; 2 also prints skorch's epoch log.
    **kwargs
        Prefixed parameters routed as in skorch: ``module__*``,
        ``criterion__*``, ``optimizer__*``, ``iterator_train__*``,
        ``iterator_valid__*``, ``callbacks__*``, ``dataset__*``.

    Attributes
    ----------
    net_ : skorch.NeuralNetClassifier
        The trained skorch net holding the pruned module.
    module_ : torch.nn.Module
        The pruned network (the same object as ``net_.module_``).
    pruning_history_ : list of dict
        One record per round, numbered by ``round`` (round 0 is the dense
        network): ``units`` left
        in total and ``units_per_layer``, ``fraction_left``, ``params``,
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

    See Also
    --------
    HQEnsembleClassifier : Picks a diverse team from several pruned networks.

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
        unit_score="activation",
        reinit="rewind",
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
        self.unit_score = unit_score
        self.reinit = reinit
        self.min_accuracy_ratio = min_accuracy_ratio
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose
        for key, value in kwargs.items():
            if not key.startswith(ROUTED_PREFIXES):
                raise TypeError(
                    f"DropNetClassifier got an unexpected keyword argument {key!r}; "
                    f"prefixed arguments must start with one of {ROUTED_PREFIXES}."
                )
            setattr(self, key, value)

    # ------------------------------------------------------------------
    # scikit-learn parameter protocol, extended to skorch's prefixed keys
    # ------------------------------------------------------------------
    def _routed_params(self):
        return {k: v for k, v in vars(self).items() if k.startswith(ROUTED_PREFIXES)}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        routed = {k: v for k, v in params.items() if k.startswith(ROUTED_PREFIXES)}
        for key, value in routed.items():
            setattr(self, key, value)
        return super().set_params(**{k: v for k, v in params.items() if k not in routed})

    def _prefixed(self, prefix):
        return {k[len(prefix) :]: v for k, v in self._routed_params().items() if k.startswith(prefix)}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------
    # validation
    # ------------------------------------------------------------------
    def _check_params(self):
        def number(name, low, high, low_open=False, high_open=False, kind=Real):
            _check_number(name, getattr(self, name), low, high, low_open, high_open, kind)

        number("prune_ratio", 0, 1, high_open=True)
        number("drop_fraction", 0, 1, low_open=True, high_open=True)
        number("validation_fraction", 0, 1, high_open=True)
        number("lr", 0, math.inf, low_open=True, high_open=True)
        number("max_epochs", 1, math.inf, kind=Integral)
        number("batch_size", 1, math.inf, kind=Integral)
        number("patience", 1, math.inf, kind=Integral)
        if self.min_accuracy_ratio is not None:
            number("min_accuracy_ratio", 0, 1, low_open=True)
        for name, allowed in (("scope", SCOPES), ("reinit", REINITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        if not is_valid_score(self.unit_score):
            raise ValueError(f"unit_score must be one of {SCORES} or a callable, got {self.unit_score!r}.")
        check_device(self.device)
        _check_callbacks(self.callbacks)
        if not isinstance(self.verbose, Integral):
            raise TypeError(f"verbose must be an int (0, 1 or 2), got {self.verbose!r}.")
        if not callable(self.optimizer):
            raise TypeError(
                f"optimizer must be a torch optimizer class such as torch.optim.Adam, got {self.optimizer!r}."
            )
        if not callable(self.criterion):
            raise TypeError(
                f"criterion must be a torch loss class such as torch.nn.CrossEntropyLoss, got {self.criterion!r}."
            )

    def _validate_training_data(self, X, y):
        """Check ``X, y`` and set ``classes_``, ``input_shape_``, ``n_features_in_``."""
        _reject_input_dict(X)
        if isinstance(X, TorchDataset):
            if y is not None:
                raise ValueError("When X is a torch Dataset of (x, label) pairs, y must be None.")
            if len(X) < 1:
                raise ValueError("The Dataset passed as X is empty.")
            y = dataset_labels(X)
            if hasattr(self, "feature_names_in_"):  # from an earlier fit on a DataFrame
                del self.feature_names_in_
        else:
            X, y = validate_data(self, X, y, dtype=np.float32, allow_nd=True)
            X = _writable(X)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                "DropNetClassifier needs samples of at least 2 classes in y; "
                f"got 1 class: {self.classes_[0]!r}."
            )
        encoded = encoder.transform(y).astype(np.int64)
        if isinstance(X, TorchDataset):
            X = EncodedDataset(X, encoded)
            self.input_shape_ = tuple(X[0][0].shape)
            self.n_features_in_ = self.input_shape_[0]
        else:
            self.input_shape_ = tuple(X.shape[1:])
        return LabelledData(X, encoded)

    def _validate_inference_data(self, X):
        """Check ``X`` against the fitted sample shape; its inputs become float32, a Dataset's too."""
        check_is_fitted(self)
        _reject_input_dict(X)
        if isinstance(X, TorchDataset):
            return self._validate_inference_dataset(X)
        shape = getattr(X, "shape", None)
        if shape is not None and (len(self.input_shape_) > 1 or len(shape) > 2):
            self._check_sample_shape(tuple(shape[1:]))
        return _writable(validate_data(self, X, dtype=np.float32, allow_nd=True, reset=False))

    def _validate_inference_dataset(self, dataset):
        """A Dataset of ``(x, label)`` pairs, its first ``x`` checked, yielding float32 inputs."""
        if len(dataset) < 1:
            raise ValueError("The Dataset passed as X is empty.")
        item = dataset[0]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(
                f"A Dataset passed as X must yield (x, label) pairs; item 0 is a {type(item).__name__}."
            )
        inputs = float_inputs(dataset)
        self._check_sample_shape(tuple(inputs[0][0].shape))
        return inputs

    def _check_sample_shape(self, shape):
        if shape != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {shape}, but {type(self).__name__} "
                f"was fitted on samples of shape {self.input_shape_}."
            )

    # ------------------------------------------------------------------
    # building blocks
    # ------------------------------------------------------------------
    def _build_module(self):
        """A new network in float32, the type of the inputs it is given."""
        module = self._new_module()
        wrong = sorted({
            str(p.dtype) for p in module.parameters() if p.is_floating_point() and p.dtype != torch.float32
        })  # fmt: skip
        if wrong:
            raise ValueError(
                f"The module's parameters are {', '.join(wrong)}, but DropNetClassifier gives "
                "the network float32 inputs: pass module.float()."
            )
        return module

    def _new_module(self):
        kwargs = self._prefixed("module__")
        if self.module is None:
            with _default_dtype(torch.float32):
                return MLP(input_shape=self.input_shape_, n_classes=len(self.classes_), **kwargs)
        if isinstance(self.module, nn.Module):
            if kwargs:
                raise ValueError("module__* parameters need module to be a class, not an instance.")
            return copy.deepcopy(self.module)
        if not (isinstance(self.module, type) and issubclass(self.module, nn.Module)):
            raise TypeError(f"module must be a torch.nn.Module class or instance, got {self.module!r}.")
        signature = inspect.signature(self.module).parameters
        if "input_shape" in signature:
            kwargs.setdefault("input_shape", self.input_shape_)
        if "n_classes" in signature:
            kwargs.setdefault("n_classes", len(self.classes_))
        with _default_dtype(torch.float32):  # whatever the caller's default
            return self.module(**kwargs)

    def _split(self, data, seed):
        """Hold out ``validation_fraction`` (stratified when every class can spare one).

        The split is stratified when each side has room for every class and
        every class has a sample for each side; otherwise it is plain random.
        Returns ``(train, valid)``; ``valid`` is None without a validation split.
        Either way the training rows come in a random order (the split's, or
        a permutation): batches taken in the order given would each hold
        one class of data sorted by class.
        """
        y = data.y
        n_valid = math.ceil(self.validation_fraction * len(y))
        n_train = len(y) - n_valid
        if self.validation_fraction == 0 or n_train < 1:
            return data.subset(np.random.RandomState(seed).permutation(len(y))), None
        room = min(n_train, n_valid) >= len(self.classes_)
        stratify = y if room and np.bincount(y).min() >= 2 else None
        train, valid = train_test_split(
            np.arange(len(y)), test_size=n_valid, stratify=stratify, random_state=seed
        )
        return data.subset(train), data.subset(valid)

    def _net_params(self, valid):
        """The skorch net's parameters, from this estimator's, but its module and callbacks."""
        skorch_kwargs = {
            k: v for k, v in self._routed_params().items() if not k.startswith("module__")
        }
        return dict(
            criterion=self.criterion,
            optimizer=self.optimizer,
            lr=self.lr,
            # torch's samplers take Python ints only, not NumPy's (a GridSearchCV grid).
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            device=self.device,
            classes=list(range(len(self.classes_))),
            iterator_train=training_loader,
            iterator_valid=inference_loader,
            predict_nonlinearity=_predict_nonlinearity(self.criterion),
            train_split=predefined_split(valid.skorch_dataset()) if valid is not None else None,
            verbose=int(self.verbose > 1),
            **skorch_kwargs,
        )

    def _early_stopping(self, valid):
        """The early stopping callback's settings."""
        return {"monitor": "valid_loss" if valid is not None else "train_loss", "patience": int(self.patience)}

    def _make_net(self, module, valid):
        stopping = EarlyStopping(load_best=True, **self._early_stopping(valid))
        callbacks = [*self._own_callbacks(), ("dropnet_early_stopping", stopping)]
        net = NeuralNetClassifier(module=module, callbacks=callbacks, **self._net_params(valid)).initialize()
        # When a model fitted on a GPU is loaded where there is none, skorch
        # maps the attributes with these prefixes to the CPU. Its ``module``
        # parameter holds the trained network too (see ``_set_module``):
        # without this, such a file cannot be loaded on a CPU-only machine.
        net.cuda_dependent_attributes_ = [*net.cuda_dependent_attributes_, "module"]
        return net

    def _own_callbacks(self):
        """Copies of the user's callbacks for the net to initialise and fill
        (the ``callbacks`` parameter stays as given); the originals are kept
        to tell, in ``prune``, whether ``callbacks`` was set since."""
        self._given_callbacks = list(self.callbacks or [])
        return [_copy_if_possible(callback) for callback in self._given_callbacks]

    def _update_net(self, valid):
        """Give ``net_`` the parameters set since ``fit`` (for ``prune``).

        Its trained module stays, and so does the state of the callbacks
        unless they themselves changed.
        """
        net = self.net_
        current = net.get_params(deep=False)
        changed = {
            key: value for key, value in self._net_params(valid).items()
            if key == "train_split" or not _same(current.get(key, _UNSET), value)
        }  # fmt: skip
        stopping = current["callbacks"][-1]
        # A model saved before the net got copies holds the originals themselves.
        given = getattr(self, "_given_callbacks", current["callbacks"][:-1])
        if not _same_objects(given, list(self.callbacks or [])):
            changed["callbacks"] = [*self._own_callbacks(), stopping]
        # Attributes, not skorch's set_params: on an initialised net that
        # refuses iterator and optimizer parameters, and applies optimizer__*
        # to the current optimizer only. Each round builds the optimizer and
        # the iterators afresh from the attributes.
        for key, value in changed.items():
            setattr(net, key, value)
        if "callbacks" in changed or any(key.startswith("callbacks__") for key in changed):
            net.initialize_callbacks()
        if "device" in changed:
            self._set_module(net.module_.to(net.device))
        if "criterion" in changed or "device" in changed or any(key.startswith("criterion__") for key in changed):
            net.initialize_criterion()
        vars(dict(net.callbacks_)["dropnet_early_stopping"]).update(self._early_stopping(valid))

    def _check_module_output(self, example):
        """Run the new network on two training samples: it must give one score per class."""
        try:
            output = evaluate(self.net_.module_, example)
        except Exception as exc:
            raise ValueError(
                f"The module failed on training samples of shape {tuple(example.shape[1:])} "
                f"(given as float32 tensors; a module that needs integers, for nn.Embedding, "
                f"must convert them in forward): {type(exc).__name__}: {exc}"
            ) from exc
        expected = (len(example), len(self.classes_))
        if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
            got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(
                f"The module must return one score per class, a tensor of shape (n_samples, "
                f"{len(self.classes_)}) for the {len(self.classes_)} classes in y; for "
                f"{len(example)} samples it returned {got}."
            )

    def _find_units(self, example, data, freeze=True):
        """Trace the current network: its probes and the unit groups to prune.

        :meth:`_trace_units`, then :meth:`_removable_units` with the
        current weights.
        """
        structure, groups = self._trace_units(example, freeze)
        return structure, self._removable_units(structure, groups, data, freeze)

    def _trace_units(self, example, freeze=True, structure=None):
        """The network's probes and unit groups, from its structure alone.

        A layer is traced, refused and warned about once per fit: on the
        dense network a refused layer is not one of the network's units
        (``_unpruned_layers``); after it has been counted (``freeze``, every
        later round) it is frozen, keeps its units and they still count
        (``_frozen_units``), so that the history stays true to the network.
        """
        if structure is None:
            structure = inspect_network(self.net_.module_, example)
        skipped = self._unpruned_layers | set(self._frozen_units)
        groups, refused = trace_unit_groups(self.net_.module_, example, structure)
        groups = [group for group in groups if group.name not in skipped]
        for name, (size, reason) in refused.items():
            if name not in skipped:
                warn_unpruned(name, reason)
                self._refuse(name, size, freeze)
        return structure, groups

    def _refuse(self, name, size, freeze):
        # A layer the dense record did not count (refused by an older
        # version, which did not remember it) stays uncounted.
        if freeze and name in self.pruning_history_[0]["units_per_layer"]:
            self._frozen_units[name] = size
        else:
            self._unpruned_layers.add(name)

    def _removable_units(self, structure, groups, data, freeze=True):
        """``groups`` without those whose removal is not exact with the current weights.

        Checked on inputs spread over ``data`` (see
        :func:`~sklearn_dropnet.pruning._removal_check.exactly_removable`); a group
        that fails is refused as in :meth:`_trace_units`.
        """
        inputs = data.spread_inputs(self.net_.device, _CHECK_SAMPLES)
        kept = exactly_removable(self.net_.module_, inputs, structure, groups)
        for group in groups:
            if group not in kept:
                self._refuse(group.name, group.size, freeze)
        return kept

    def _prunable_structure(self, example):
        """The dense network's probes and unit groups; PruningError if there are none."""
        structure = inspect_network(self.net_.module_, example)
        if not structure.probes:
            raise PruningError(f"No prunable layer found in the module: {prunable_layers_hint(self.net_.module_)}")
        for name in parametrized_layers(self.net_.module_):
            warn_unpruned(
                name,
                "it has parametrizations (weight_norm, spectral_norm), which Torch-Pruning does "
                "not resize; torch.nn.utils.parametrize.remove_parametrizations removes them",
            )
        structure, groups = self._trace_units(example, freeze=False, structure=structure)
        if not groups:
            self._raise_nothing_to_prune(structure)
        return structure, groups

    @staticmethod
    def _raise_nothing_to_prune(structure):
        raise PruningError(
            f"None of the prunable layers {sorted(structure.probes)} can be pruned: "
            "each is coupled to the network's output or to a shared layer, or "
            "removing its units would change the rest of the network (see the "
            "warnings above)."
        )

    def _train_round(self, data):
        """Train ``net_.module_`` from its current weights; return epochs run and seconds."""
        start = time.perf_counter()
        X, y = data.skorch_args()
        self.net_.initialize_optimizer()
        self.net_.initialize_history()
        # skorch's partial_fit swallows every KeyboardInterrupt, Ctrl-C
        # included; here only the interrupt of an early stopping that has run
        # out of patience (DropNet's own, or one in the user's callbacks) is
        # absorbed, and a user's Ctrl-C reaches the pruning loop.
        self.net_.notify("on_train_begin", X=X, y=y)
        try:
            self.net_.fit_loop(X, y)
        except ValueError as exc:
            if "Expected more than 1 value per channel when training" not in str(exc):
                raise
            advice = "use batch_size >= 2" if len(data) > 1 else "give it at least 2 training samples"
            raise ValueError(
                f"A BatchNorm layer got one value per channel to train on: a batch of one "
                f"sample (batch_size={self.batch_size}, {len(data)} training sample(s) after "
                f"the validation split) where the layer has no spatial positions; {advice}."
            ) from exc
        except KeyboardInterrupt:
            if not any(
                isinstance(callback, EarlyStopping) and callback.misses_ >= callback.patience
                for _, callback in self.net_.callbacks_
            ):
                raise
        self.net_.notify("on_train_end", X=X, y=y)
        self._release_training_state()
        self._check_divergence(data)
        return len(self.net_.history), time.perf_counter() - start

    def _check_divergence(self, data):
        """Raise a clear error when training diverged: outputs (NaN, or +inf)
        that make the probabilities NaN."""
        output = evaluate(self.net_.module_, data.example(self.net_.device))
        # -inf can be meant (a class masked out); NaN probabilities cannot.
        if torch.isnan(torch.softmax(output.double(), dim=-1)).any():
            raise ValueError(
                "Training diverged: the trained network's outputs on training samples are "
                f"NaN or infinite. Lower the learning rate (lr={self.lr}), or scale X (for "
                "example with StandardScaler) if its values are large."
            )

    def _release_training_state(self):
        """Free what only training needed: the optimizer's moments, the
        gradients and early stopping's copy of the best weights (3 to 4
        times the parameters, kept until the next round and pickled with
        the estimator)."""
        self.net_.optimizer_.state.clear()
        self.net_.module_.zero_grad(set_to_none=True)
        dict(self.net_.callbacks_)["dropnet_early_stopping"].best_model_weights_ = None

    def _accuracy(self, data):
        return float(np.mean(self.net_.predict(data.skorch_args()[0]) == data.y))

    def _units_left(self, groups):
        """Units of the network: the prunable groups' and the frozen ones'."""
        return sum(group.size for group in groups) + sum(self._frozen_units.values())

    def _fewest_units(self, groups):
        """The fewest units pruning can leave: one per prunable group, and the frozen ones."""
        return len(groups) + sum(self._frozen_units.values())

    def _units_per_layer(self, groups):
        return {group.name: group.size for group in groups}

    def _record(self, round_, groups, example, accuracy, training, seconds):
        epochs, train_seconds = training
        units = {**self._units_per_layer(groups), **self._frozen_units}
        total = sum(units.values())
        return {
            "round": round_,
            "units": total,
            "units_per_layer": units,
            "fraction_left": round(total / self.n_units_dense_, 6),
            "params": count_parameters(self.net_.module_),
            "macs": count_macs(self.net_.module_, example),
            "valid_accuracy": accuracy,
            "epochs": epochs,
            "seconds": seconds,
            "train_seconds": train_seconds,
            "accepted": True,
        }

    def _reinitialised(self, trained):
        if self.reinit == "none":
            return trained
        fresh = copy.deepcopy(self.initial_module_).to(self.net_.device)
        if self.reinit == "random":
            _redraw_weights(fresh)
        return fresh

    # ------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------
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
        # Fitted once the dense round is recorded: a fit that fails before
        # (training diverged, say) leaves no network to predict with.
        self.__dict__.pop("pruning_history_", None)
        self._check_params()
        data = self._validate_training_data(X, y)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self._seed = seed
        with seeded_generators(seed, self.device):
            module = self._build_module()
            # On the CPU, where each round cuts it, whatever device a given module is on.
            self.initial_module_ = copy.deepcopy(module).cpu()
            train, valid = self._split(data, seed)
            self.net_ = self._make_net(module, valid)
            del module  # pruning replaces net_.module_; this name would keep the dense network
            example = data.example(self.net_.device)
            self._check_module_output(example)
            # The structure is traced before training, so that a network
            # DropNet cannot prune fails at once, not after its training.
            self._unpruned_layers, self._frozen_units = set(), {}
            structure, groups = self._prunable_structure(example)
            start = time.perf_counter()
            training = self._train_round(train)
            accuracy = self._accuracy(valid or train)
            # Whether a removal is exact can depend on the weights (a head
            # initialised to zero hides a wrong mapping): check the trained ones.
            groups = self._removable_units(structure, groups, train, freeze=False)
            if not groups:
                self._raise_nothing_to_prune(structure)
            self.n_units_dense_ = sum(group.size for group in groups)
            self.pruning_history_ = [
                self._record(0, groups, example, accuracy, training, time.perf_counter() - start)
            ]
            self._prune_to(self.prune_ratio, train, valid, example, units=(structure, groups))
        return self

    def prune(self, X, y=None, prune_ratio=None):
        """Continue pruning a fitted estimator.

        The validation split is drawn as in ``fit``, and
        ``min_accuracy_ratio`` still compares with the dense accuracy.
        Parameters set with ``set_params`` since ``fit`` apply to the new
        rounds (``drop_fraction``, ``max_epochs``, ``lr``, ``optimizer``,
        ``device``, ...), except those that define the network (``module``,
        ``module__*``). If a round fails, the estimator keeps the network
        of the last completed round.

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
        self._check_params()
        # Fitted before layers could be left unpruned:
        self.__dict__.setdefault("_unpruned_layers", set())
        self.__dict__.setdefault("_frozen_units", {})
        # The last round may have been undone by min_accuracy_ratio.
        left = next(r["units"] for r in reversed(self.pruning_history_) if r["accepted"])
        if prune_ratio is None:
            target = left - _units_per_round(self.drop_fraction, left)
            prune_ratio = min(1 - target / self.n_units_dense_, 0.999)
        else:
            _check_number("prune_ratio", prune_ratio, 0, 1, high_open=True)
            target = self._units_kept(prune_ratio)
            if target > left:
                raise ValueError(
                    f"prune_ratio={prune_ratio} keeps {target} of the {self.n_units_dense_} units, but "
                    f"only {left} are left: pruning cannot restore units. Refit with that prune_ratio."
                )
        data = self._labelled_for_prune(X, y)
        with seeded_generators(self._seed + len(self.pruning_history_), self.device):
            train, valid = self._split(data, self._seed)
            self._update_net(valid)  # max_epochs, lr, patience, ... set since fit
            self._prune_to(prune_ratio, train, valid, data.example(self.net_.device))
        return self

    def _labelled_for_prune(self, X, y):
        if isinstance(X, TorchDataset):
            if y is not None:
                raise ValueError("When X is a torch Dataset of (x, label) pairs, y must be None.")
            y = dataset_labels(X)
        else:
            if y is None:
                raise ValueError("prune needs the labels y, unless X is a torch Dataset of (x, label) pairs.")
            X = self._validate_inference_data(X)
            check_consistent_length(X, y)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(f"y has labels that were not seen in fit: {unknown.tolist()}.")
        encoded = np.searchsorted(self.classes_, y).astype(np.int64)
        if isinstance(X, TorchDataset):
            X = EncodedDataset(X, encoded)
            self._check_sample_shape(tuple(X[0][0].shape))
        return LabelledData(X, encoded)

    def _units_kept(self, prune_ratio):
        """Units of the dense network that ``prune_ratio`` leaves (rounded down)."""
        return int(math.floor((1 - prune_ratio) * self.n_units_dense_ + 1e-9))

    def _prune_to(self, prune_ratio, train, valid, example, units=None):
        """Run DropNet rounds until ``prune_ratio`` of the dense units are gone.

        ``units`` is ``(structure, groups)`` of the current network when the
        caller has traced it already; otherwise it is traced here.
        """
        valid = valid or train
        rng = np.random.default_rng(self._seed + len(self.pruning_history_))
        dense_accuracy = self.pruning_history_[0]["valid_accuracy"]
        goal = self._units_kept(prune_ratio)
        accepted_module = copy.deepcopy(self.net_.module_)
        accepted_initial = copy.deepcopy(self.initial_module_)
        structure, groups = units if units is not None else self._find_units(example, train)
        accepted_frozen = dict(self._frozen_units)
        left, target = self._units_left(groups), max(goal, self._fewest_units(groups))
        expected = max(0, math.ceil(math.log(max(target, 1) / left) / math.log(1 - self.drop_fraction)))
        progress = tqdm(total=expected, desc="DropNet rounds", unit="round", disable=not self.verbose)
        device = self.net_.device
        records = len(self.pruning_history_)
        try:
            while left > target:
                records = len(self.pruning_history_)
                start = time.perf_counter()
                n_drop = min(_units_per_round(self.drop_fraction, left), left - target)
                scores = score_units(
                    self.net_.module_,
                    groups,
                    structure.probes,
                    self.unit_score,
                    lambda: train.input_batches(device),
                    rng,
                )
                drop = choose_units_to_drop(scores, n_drop, self.scope, rng)
                remove_units(self.initial_module_, example.cpu(), drop)
                if self.reinit == "none":  # otherwise the next round starts from initial_module_
                    remove_units(self.net_.module_, example, drop)
                self._set_module(self._reinitialised(self.net_.module_))
                training = self._train_round(train)
                accuracy = self._accuracy(valid)
                structure, groups = self._find_units(example, train)
                left, target = self._units_left(groups), max(goal, self._fewest_units(groups))
                record = self._record(
                    len(self.pruning_history_), groups, example, accuracy, training, time.perf_counter() - start
                )
                self.pruning_history_.append(record)
                progress.set_postfix(units=left, valid_accuracy=f"{accuracy:.3f}", refresh=False)
                progress.update()
                if self.min_accuracy_ratio is not None and accuracy < self.min_accuracy_ratio * dense_accuracy:
                    record["accepted"] = False
                    self._restore(accepted_module, accepted_initial, accepted_frozen)
                    break
                accepted_module = copy.deepcopy(self.net_.module_)
                accepted_initial = copy.deepcopy(self.initial_module_)
                accepted_frozen = dict(self._frozen_units)
        except BaseException as exc:
            # Keep the last completed round: a round that fails (or Ctrl-C)
            # after its surgery must not leave a network its history does
            # not describe. Then let the caller stop: a grid search or an
            # ensemble must not go on with a network cut short as if it had
            # been pruned as asked.
            self._restore(accepted_module, accepted_initial, accepted_frozen)
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

    def _set_module(self, module):
        # skorch's ``module`` parameter would otherwise keep (and pickle) the
        # network as it was before this round.
        self.net_.module_ = module
        self.net_.module = module

    def _restore(self, module, initial, frozen_units):
        self._set_module(module)
        self.initial_module_ = initial
        self._frozen_units = frozen_units
        self.net_.initialize_optimizer()

    def __sklearn_is_fitted__(self):
        return hasattr(self, "pruning_history_")

    def __setstate__(self, state):
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None and net.iterator_valid is DataLoader:
            # Saved by an earlier version, whose predictions drew from
            # torch's global generator (see inference_loader).
            net.iterator_valid = inference_loader

    @property
    def module_(self):
        """The pruned network (``net_.module_``)."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class in ``classes_`` order.
        """
        X = self._validate_inference_data(X)
        proba = self.net_.predict_proba(X).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The most probable class of each sample.
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
