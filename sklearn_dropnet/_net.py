"""DropNetNet: skorch's classifier, specialised for training DropNet's rounds.

As skorch's ``NeuralNetClassifier`` specialises ``NeuralNet`` by overriding
a few of its hooks, :class:`DropNetNet` specialises the classifier for
:class:`~sklearn_dropnet.DropNetClassifier`: a round of training from the
current weights (:meth:`DropNetNet.train_round`), the loss blended with a
teacher's soft targets when distilling (:meth:`DropNetNet.get_loss`), the
network swapped after a removal (:meth:`DropNetNet.set_module`), and what
only training needed freed after each round.
"""

import copy
import math
import sys
import time
import weakref
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from torch import nn

from ._data import inference_loader, prediction_batches, training_loader
from ._pickling import dumps, has_parametrizations
from ._routing import ROUTED_PREFIXES
from .pruning._copies import deep_copy
from .pruning._eval_mode import evaluate
from .pruning._network_cost import activation_bytes

__all__ = ["DropNetNet", "make_net"]

# Training rows whose outputs tell why training diverged.
_DIVERGENCE_SAMPLES = 32

# The name of DropNet's own early stopping among the net's callbacks.
EARLY_STOPPING = "dropnet_early_stopping"

# The estimator's parameters that skorch takes as they are.
_SAME_NAMES = ("criterion", "optimizer", "lr", "device", "distill_weight", "distill_temperature")


_UNSET = object()


def _softmax(logits):
    """Softmax over the classes (a picklable ``predict_nonlinearity``)."""
    return torch.softmax(logits, dim=1)


def unnamed_script_classes(objects):
    """Names of the classes of ``objects``' modules that were defined in the
    script run as ``__main__`` and that this process's ``__main__`` does not
    hold: a worker process got them by value and cannot pickle them by name."""
    main = sys.modules.get("__main__")
    names = set()
    for value in objects:
        for module in value.modules() if isinstance(value, nn.Module) else ():
            kind = type(module)
            if kind.__module__ == "__main__" and getattr(main, kind.__qualname__, None) is not kind:
                names.add(kind.__qualname__)
    return sorted(names)


def returns_probabilities(criterion):
    """Whether a module trained with ``criterion`` returns probabilities.

    skorch's classifier takes the log of the output for ``nn.NLLLoss``, so
    there the module returns probabilities; with any other loss it returns
    logits.
    """
    is_class = isinstance(criterion, type) and issubclass(criterion, nn.NLLLoss)
    return is_class or isinstance(criterion, nn.NLLLoss)


def criterion_name(criterion):
    """The loss's class as a user writes it (``torch.nn.NLLLoss``), for messages."""
    kind = criterion if isinstance(criterion, type) else type(criterion)
    return f"{kind.__module__}.{kind.__qualname__}".replace("torch.nn.modules.loss.", "torch.nn.")


def predict_nonlinearity(criterion):
    """What turns the module's output into probabilities, given its loss.

    The output itself for ``nn.NLLLoss``, the softmax of the logits for any
    other loss. (skorch's own default applies the softmax for
    ``nn.CrossEntropyLoss`` only and passes other losses' logits on as
    probabilities.)
    """
    return None if returns_probabilities(criterion) else _softmax


def distillation_loss(output, teacher_log_proba, temperature, output_is_probability=False):
    """``T**2 * KL(p_T || q_T)``, averaged over the batch.

    ``p_T`` is the teacher's distribution softened by the temperature
    ``T`` (the softmax of its log-probabilities divided by ``T``), ``q_T``
    the student's (the softmax of its logits divided by ``T``; of its
    log-probabilities when the module returns probabilities). The factor
    ``T**2`` keeps the gradients' scale independent of ``T`` (Hinton et
    al., 2015).

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet._net import distillation_loss
    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> float(distillation_loss(logits, torch.log_softmax(logits, dim=1), temperature=3.0))
    0.0
    """
    student = torch.log(output.clamp_min(torch.finfo(output.dtype).tiny)) if output_is_probability else output
    student_log_q = F.log_softmax(student / temperature, dim=1)
    teacher_log_p = F.log_softmax(teacher_log_proba / temperature, dim=1)
    kl = F.kl_div(student_log_q, teacher_log_p, reduction="batchmean", log_target=True)
    return temperature**2 * kl


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


def _net_params(params, n_classes, valid):
    """The skorch net's parameters, from the estimator's ``params``, but its module and callbacks."""
    routed = {
        # Rows reshuffled every epoch, as every torch loop and MLPClassifier do,
        # unless the user asks for one order (iterator_train__shuffle=False).
        "iterator_train__shuffle": True,
        **{k: v for k, v in params.items() if k.startswith(ROUTED_PREFIXES) and not k.startswith("module__")},
    }
    routed.update(_criterion_tensors(routed, n_classes))
    return dict(
        {name: params[name] for name in _SAME_NAMES},
        # torch's samplers take Python ints only, not NumPy's (a GridSearchCV grid).
        max_epochs=int(params["max_epochs"]),
        batch_size=int(params["batch_size"]),
        classes=list(range(n_classes)),
        iterator_train=training_loader,
        iterator_valid=inference_loader,
        predict_nonlinearity=predict_nonlinearity(params["criterion"]),
        train_split=predefined_split(valid.skorch_dataset()) if valid is not None else None,
        verbose=int(params["verbose"] > 1),
        **routed,
    )


#: The activations a prediction batch may hold (an upper bound), in bytes.
PREDICTION_BYTES = 32 * 2**20


# network -> (its parameter count, its activations' bytes per row), measured once
_ACTIVATIONS = weakref.WeakKeyDictionary()


def _activation_bytes_per_row(module, rows):
    """The activations ``module`` makes per row, measured once per network (again
    after pruning changed its parameter count). Measured on a copy: the hooks
    that count them would fire in other threads' forward passes through
    ``module`` (predicting at the same time), and be pickled with it."""
    n_parameters = sum(parameter.numel() for parameter in module.parameters())
    known = _ACTIVATIONS.get(module)
    if known is not None and known[0] == n_parameters:
        return known[1]
    copy_ = deep_copy(module)
    device = next(copy_.parameters(), torch.empty(0)).device
    per_row = activation_bytes(copy_, torch.as_tensor(rows, device=device))
    _ACTIVATIONS[module] = n_parameters, per_row
    return per_row


def _criterion_tensors(routed, n_classes):
    """The criterion's array arguments (``criterion__weight=np.array(...)``, a list)
    as the float32 tensors torch's losses take; a class weight must have one value
    per class, in ``classes_`` order."""
    tensors = {}
    weight = routed.get("criterion__weight")
    if hasattr(weight, "to_numpy") and list(getattr(weight, "index", [])) == list(range(len(weight))):
        routed = {**routed, "criterion__weight": weight.to_numpy()}  # a pandas Series in positions
    elif isinstance(weight, Mapping) or hasattr(weight, "to_numpy"):  # by label
        raise TypeError(
            f"criterion__weight must hold one weight per class in the order of classes_ (sorted labels): "
            f"an array, a list or a tensor, not a {type(weight).__name__} by label. From weights by label: "
            "[weights[label] for label in np.unique(y)]; balanced: compute_class_weight('balanced', "
            "classes=np.unique(y), y=y)."
        )
    for key, value in routed.items():
        if not key.startswith("criterion__") or not isinstance(value, (np.ndarray, list, tuple, torch.Tensor)):
            continue
        try:  # float32, as the network computes (a float64 tensor fails inside the loss)
            tensor = torch.as_tensor(value if isinstance(value, torch.Tensor) else np.asarray(value, dtype=np.float32))
            tensor = tensor.float() if tensor.dtype != torch.bool else tensor
        except (TypeError, ValueError):
            continue  # not numbers: the criterion says what it takes
        if key == "criterion__weight" and tensor.shape != (n_classes,):
            raise ValueError(
                f"criterion__weight must hold one weight per class, {n_classes} in the order of "
                f"classes_ (sorted labels); got shape {tuple(tensor.shape)}."
            )
        tensors[key] = tensor
    return tensors


def _early_stopping(params, valid):
    """The early stopping callback's settings."""
    return {"monitor": "valid_loss" if valid is not None else "train_loss", "patience": int(params["patience"])}


def make_net(module, params, n_classes, valid):
    """A new, initialised :class:`DropNetNet` training ``module``.

    Parameters
    ----------
    module : nn.Module
        The network.
    params : dict
        The estimator's parameters (``get_params(deep=False)``).
    n_classes : int
        The number of classes.
    valid : LabelledData or None
        The validation data early stopping watches (the training loss without).
    """
    given = list(params["callbacks"] or [])
    stopping = EarlyStopping(load_best=True, **_early_stopping(params, valid))
    callbacks = [*(_copy_if_possible(callback) for callback in given), (EARLY_STOPPING, stopping)]
    net = DropNetNet(module=module, callbacks=callbacks, **_net_params(params, n_classes, valid)).initialize()
    net.check_callback_params()
    # The user's callbacks as given (the net runs copies), to tell in update() whether they changed.
    net.given_callbacks = given
    return net


class DropNetNet(NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` as DropNet trains it.

    Parameters
    ----------
    module, *args, **kwargs
        As for :class:`skorch.NeuralNetClassifier`.
    distill_weight : float, default=0.0
        Weight ``a`` of the distillation term when a round is trained with
        a teacher's soft targets: the loss is ``(1 - a) * criterion(output,
        y) + a * distillation_loss(output, teacher, T)``.
    distill_temperature : float, default=4.0
        The temperature ``T`` of :func:`distillation_loss`.
    """

    def __init__(self, module, *args, distill_weight=0.0, distill_temperature=4.0, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature

    def initialize(self):
        super().initialize()
        # When a net fitted on a GPU is loaded where there is none, skorch
        # maps the attributes with these prefixes to the CPU. Its ``module``
        # parameter holds the trained network too (see ``set_module``):
        # without this, such a file cannot be loaded on a CPU-only machine.
        if "module" not in self.cuda_dependent_attributes_:
            self.cuda_dependent_attributes_ = [*self.cuda_dependent_attributes_, "module"]
        return self

    def __getstate__(self):
        """skorch's state, but a network whose classes come from a script this
        process did not run is pickled by value.

        skorch pickles the network with :mod:`pickle`, which names each class
        by module and name. A worker process of ``n_jobs`` or Dask got the
        classes defined in the user's script (its ``__main__``) by value, as
        joblib sends them, and cannot name them: sending the fitted estimator
        back failed. Pickled by value (cloudpickle) they come back, and the
        process that sent them finds its own classes again; ``pickle``
        reads either. Layers with parametrizations (``weight_norm``), which
        torch refuses to pickle, are pickled as :mod:`._pickling` explains.
        """
        state = self.__dict__.copy()
        prefixes = tuple(self.cuda_dependent_attributes_)  # what skorch pickles apart: the modules, ...
        apart = {key: state.pop(key) for key in list(state) if isinstance(key, str) and key.startswith(prefixes)}
        by_value = bool(unnamed_script_classes(apart.values()))
        if not by_value and not any(has_parametrizations(value) for value in apart.values()):
            return super().__getstate__()
        state["__cuda_dependent_attributes__"] = dumps(apart, by_value)  # what skorch's __setstate__ reads
        return state

    def set_module(self, module):
        """Train ``module`` from now on (a network made smaller by pruning).

        skorch's ``module`` parameter would otherwise keep (and pickle) the
        network as it was before.
        """
        self.module_ = module
        self.module = module

    @property
    def early_stopping(self):
        """DropNet's own :class:`skorch.callbacks.EarlyStopping`."""
        return dict(self.callbacks_)[EARLY_STOPPING]

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion's loss; blended with the distillation loss when the
        batch carries the teacher's log-probabilities (``y_true`` is then
        ``(labels, teacher_log_proba)``)."""
        if not isinstance(y_true, (tuple, list)):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        labels, teacher = y_true
        loss = super().get_loss(y_pred, labels, X=X, training=training)
        weight = self.distill_weight
        if weight == 0:
            return loss
        teacher = teacher.to(y_pred.device)
        soft = distillation_loss(
            y_pred, teacher, self.distill_temperature, returns_probabilities(self.criterion_)
        )
        return (1 - weight) * loss + weight * soft

    def predict_proba_in_large_batches(self, X):
        """``predict_proba(X)`` (an array or a Dataset), in batches of up to
        :data:`PREDICTION_BYTES` of activations (at most 8,192 rows, at least
        ``batch_size``), unless ``iterator_valid__batch_size`` is set: batches
        of ``batch_size`` rows made a cheap network's predictions several
        times slower. Validation keeps its batches."""
        size = None
        if len(X) > self.batch_size and "batch_size" not in self.get_params_for("iterator_valid"):
            rows = X[:2] if isinstance(X, np.ndarray) else torch.stack([torch.as_tensor(X[i][0]) for i in range(2)])
            per_row = max(1, _activation_bytes_per_row(self.module_, rows))
            size = int(np.clip(PREDICTION_BYTES // per_row, self.batch_size, 8192))
        with prediction_batches(size):
            return self.predict_proba(X)

    def log_proba(self, batches):
        """The module's log-probabilities on ``batches`` (eval mode), as a float32 array.

        Used as a teacher's soft targets: computed once per training row
        before a distilled round.
        """
        outputs = []
        for batch in batches:
            output = evaluate(self.module_, batch).float()
            if returns_probabilities(self.criterion_):
                output = torch.log(output.clamp_min(torch.finfo(output.dtype).tiny))
            outputs.append(torch.log_softmax(output, dim=1).cpu())
        return torch.cat(outputs).numpy()

    def train_round(self, data, teacher=None):
        """Train the module from its current weights until early stopping.

        Parameters
        ----------
        data : LabelledData
            The training data.
        teacher : ndarray of shape (n_samples, n_classes), default=None
            A teacher's log-probabilities on ``data``'s rows, to distil from
            (with :attr:`distill_weight`).

        Returns
        -------
        epochs : int
        seconds : float

        Notes
        -----
        skorch's ``partial_fit`` swallows every ``KeyboardInterrupt``, Ctrl-C
        included; here only the interrupt of an early stopping that has run
        out of patience (DropNet's own, or one in the user's callbacks) is
        absorbed, and a user's Ctrl-C reaches the caller.
        """
        start = time.perf_counter()
        X, y = data.skorch_args() if teacher is None else (data.with_soft_targets(teacher), None)
        self.initialize_optimizer()
        self.initialize_history()
        self.notify("on_train_begin", X=X, y=y)
        try:
            self.fit_loop(X, y)
        except KeyboardInterrupt:
            if not any(
                isinstance(callback, EarlyStopping) and callback.misses_ >= callback.patience
                for _, callback in self.callbacks_
            ):
                raise
        except ValueError as exc:
            if "Expected more than 1 value per channel when training" not in str(exc):
                raise
            advice = "use batch_size >= 2" if len(data) > 1 else "give it at least 2 training samples"
            raise ValueError(
                f"A BatchNorm layer got one value per channel to train on: a batch of one "
                f"sample (batch_size={self.batch_size}, {len(data)} training sample(s) after "
                f"the validation split) where the layer has no spatial positions; {advice}."
            ) from exc
        self.notify("on_train_end", X=X, y=y)
        self._release_training_state()
        self._check_divergence(data)
        return len(self.history), time.perf_counter() - start

    def check_callback_params(self):
        """Refuse a ``callbacks__NAME__*`` parameter for a callback that does not
        exist (skorch ignores it when the net is built, so a misspelt name
        would leave the callback as it was)."""
        names = dict(self.callbacks_)
        for key in vars(self):
            name = key.split("__")[1] if key.startswith("callbacks__") else None
            if name is not None and name not in names:
                raise ValueError(
                    f"callbacks__{name}__* sets a parameter of a callback named {name!r}, but "
                    f"there is none: the callbacks are {sorted(names)} (a callback given as "
                    "callbacks=[(name, callback)] takes that name)."
                )

    def _release_training_state(self):
        """Free what only training needed: the optimizer's moments, the
        gradients and early stopping's copy of the best weights (3 to 4
        times the parameters, kept until the next round and pickled with
        the estimator), and the history's per-batch records (a record per
        batch of every epoch; the per-epoch ones stay)."""
        self.optimizer_.state.clear()
        self.module_.zero_grad(set_to_none=True)
        self.early_stopping.best_model_weights_ = None
        for epoch in self.history:
            epoch["batches"] = []

    def _check_divergence(self, data):
        """Raise a clear error when training diverged: outputs (NaN, or +inf)
        that make the probabilities NaN, or a training loss that was NaN or
        infinite in every epoch. -inf logits can be meant (a class masked
        out); NaN probabilities cannot."""
        output = evaluate(self.module_, data.example(self.device))
        scale = (
            f"lower the learning rate (lr={self.lr}), or scale X (for example with StandardScaler) "
            "if its values are large"
        )
        if torch.isnan(torch.softmax(output.double(), dim=-1)).any():
            raise ValueError(
                "Training diverged: the trained network's outputs on training samples are "
                f"NaN or infinite. {scale[0].upper()}{scale[1:]}."
            )
        losses = [epoch.get("train_loss") for epoch in self.history]
        if losses and all(loss is not None and not math.isfinite(loss) for loss in losses):
            advice = scale
            # The cause a negative output tells shows on some rows only: more than the example's two.
            rows = data.spread_inputs(self.device, _DIVERGENCE_SAMPLES, keep_generators=True)
            if returns_probabilities(self.criterion) and (evaluate(self.module_, rows) < 0).any():
                advice = (
                    f"with {criterion_name(self.criterion)} skorch takes the log of the module's "
                    "outputs, and some are negative: return probabilities (a softmax at the end "
                    "of forward), or return the logits and pass criterion=torch.nn.CrossEntropyLoss"
                )
            raise ValueError(
                f"Training diverged: the training loss was NaN or infinite in every epoch "
                f"({len(losses)}); {advice}."
            )

    # ------------------------------------------------------------------
    # parameters set since fit (for prune)
    # ------------------------------------------------------------------
    def update(self, params, n_classes, valid):
        """Take the estimator's parameters set since ``fit`` (for ``prune``).

        The trained module stays, and so does the state of the callbacks
        unless they themselves changed. Attributes, not skorch's
        ``set_params``: on an initialised net that refuses iterator and
        optimizer parameters, and applies ``optimizer__*`` to the current
        optimizer only. Each round builds the optimizer and the iterators
        afresh from the attributes; the callbacks, the criterion and the
        module's device are brought up to date here.
        """
        current = self.get_params(deep=False)
        changed = {
            key: value for key, value in _net_params(params, n_classes, valid).items()
            if key == "train_split" or not _same(current.get(key, _UNSET), value)
        }  # fmt: skip
        given = list(params["callbacks"] or [])
        if len(given) != len(self.given_callbacks) or any(a is not b for a, b in zip(given, self.given_callbacks)):
            changed["callbacks"] = [*(_copy_if_possible(c) for c in given), (EARLY_STOPPING, self.early_stopping)]
            self.given_callbacks = given
        for key, value in changed.items():
            setattr(self, key, value)
        if "callbacks" in changed or any(key.startswith("callbacks__") for key in changed):
            self.initialize_callbacks()
            self.check_callback_params()
        if "device" in changed:
            self.set_module(self.module_.to(self.device))
        if "criterion" in changed or "device" in changed or any(key.startswith("criterion__") for key in changed):
            self.initialize_criterion()
        vars(self.early_stopping).update(_early_stopping(params, valid))

