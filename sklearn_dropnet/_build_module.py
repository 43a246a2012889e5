"""Building the network DropNetClassifier trains, and checking what it returns."""

import contextlib
import inspect
import io
import pickle
import warnings

import torch
from torch import nn

from ._net import criterion_name, returns_probabilities, unnamed_script_classes
from ._pickling import ParametrizedReducer, portable
from ._user_warnings import warn
from .models import MLP
from .pruning._copies import compiled_network, copyable, deep_copy
from .pruning._eval_mode import evaluate

__all__ = ["ModuleCopyMixin", "build_module", "check_module_output"]


class ModuleCopyMixin:
    """Copies of an estimator whose attributes may be networks (``module``, ``initial_module_``).

    ``sklearn.base.clone`` deep-copies a ``module`` given as an instance; a
    network with layers under ``torch.nn.utils.weight_norm`` holds weights
    computed with autograd, which ``copy.deepcopy`` refuses, so they are
    computed again outside it first. Pickled, a network with parametrized
    layers, which torch refuses to pickle, goes as :mod:`._pickling` explains.
    """

    def __sklearn_clone__(self):
        if isinstance(self.module, nn.Module):
            copyable(self.module)
        return super().__sklearn_clone__()

    def __getstate__(self):
        return {key: portable(value) for key, value in super().__getstate__().items()}


@contextlib.contextmanager
def _default_dtype(dtype):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def _signature(builder):
    """``(names, takes_kwargs)`` of what ``builder`` accepts; names a ``functools.partial`` binds are left out."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # a builtin or an extension type without a signature
        return set(), False
    bound = set(getattr(builder, "keywords", None) or ())
    names = {
        name for name, p in parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in bound
    }  # fmt: skip
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    return names, takes_kwargs


def check_picklable(module):
    """Raise a ``TypeError`` naming ``module`` if it cannot be pickled.

    The estimator keeps ``module`` as a parameter, so a fitted estimator
    that holds a lambda or a function defined inside another function
    cannot be saved with joblib or pickle; say so at ``fit``, with the fix.
    An instance is copied and pickled with the fitted network (its class
    must be importable, as for any pickled object).

    Examples
    --------
    >>> from sklearn_dropnet._build_module import check_picklable
    >>> check_picklable(lambda: None)
    Traceback (most recent call last):
    ...
    TypeError: module=<function <lambda> at ...> cannot be pickled (...
    """
    if module is None or isinstance(module, nn.Module):
        return
    if getattr(module, "__module__", None) == "__main__" and "<" not in getattr(module, "__qualname__", "<"):
        # A script's top-level def or class: pickled by name where the script runs (the
        # worker processes of a parallel ensemble, which cannot, name it themselves).
        return
    try:
        pickle.dumps(module)
    except Exception as exc:  # PicklingError, AttributeError: whatever pickle raises
        raise TypeError(
            f"module={module!r} cannot be pickled ({type(exc).__name__}: {exc}), so neither could "
            "the fitted estimator (joblib.dump, pickle). Define the builder at the top level of a "
            "module, with def or class (not a lambda, nor a function defined inside another), or "
            "pass functools.partial(builder, ...) of such a one."
        ) from exc


class _TensorsLeftOut(ParametrizedReducer, pickle.Pickler):
    """Pickles what a network holds but its tensors: whether it can be pickled, cheaply
    (as the estimator pickles it: parametrized layers too)."""

    def persistent_id(self, obj):
        return id(obj) if isinstance(obj, torch.Tensor) else None


def warn_if_unpicklable(network):
    """Warn, naming the fix, when the new ``network`` cannot be pickled (a lambda
    stored as an attribute, say): the fitted estimator could not be saved."""
    try:
        _TensorsLeftOut(io.BytesIO()).dump(network)
    except Exception as exc:  # PicklingError, AttributeError, TypeError: whatever pickle raises
        if unnamed_script_classes([network]):
            return  # a worker's copy of the script's classes: they travel by value (DropNetNet.__getstate__)
        warn(
            f"The network cannot be pickled ({type(exc).__name__}: {exc}), so neither can the "
            "fitted estimator (joblib.dump, pickle, an ensemble fitted in parallel). Keep "
            "functions in the network as methods or modules (nn.ReLU), not as lambdas or local "
            "functions stored as attributes.",
            UserWarning,
        )


def _call(builder, kwargs, maybe):
    """``builder(**kwargs, **maybe)``, or ``builder(**kwargs)`` if it refuses ``maybe``'s names.

    ``maybe`` holds what a builder that takes ``**kwargs`` may pass on to a
    class that does not take it (``num_classes``); the random generator is
    reset for the second call, so that the network is the one a plain call
    would build.
    """
    if not maybe:
        return builder(**kwargs)
    state = torch.random.get_rng_state()
    try:
        return builder(**kwargs, **maybe)
    except TypeError as exc:
        if not any(repr(name) in str(exc) for name in maybe):
            raise
    torch.random.set_rng_state(state)
    return builder(**kwargs)


def _new_module(module, kwargs, input_shape, n_classes):
    if module is None:
        kwargs = {"input_shape": input_shape, "n_classes": n_classes, **kwargs}
        with _default_dtype(torch.float32):
            return MLP(**kwargs)
    if isinstance(module, nn.Module):
        if kwargs:
            raise ValueError(
                "module__* parameters need module to be what builds the network (a class, a "
                "function, a functools.partial), not an instance."
            )
        return deep_copy(module)
    names, takes_kwargs = _signature(module)
    data = {"input_shape": input_shape, "n_classes": n_classes, "num_classes": n_classes}
    for name, value in data.items():
        if name in names:
            kwargs.setdefault(name, value)
    # torchvision's builders (resnet18(*, weights, progress, **kwargs)) pass num_classes on.
    maybe = {}
    if takes_kwargs and not names & set(data) and not set(kwargs) & set(data):
        maybe = {"num_classes": n_classes}
    with _default_dtype(torch.float32):  # whatever the caller's default
        network = _call(module, kwargs, maybe)
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"module={module!r} returned a {type(network).__name__}, not a torch.nn.Module: module "
            "is a torch.nn.Module class or instance, or a function that builds one."
        )
    return network


def _uncompiled(network):
    """The network ``torch.compile`` wrapped, with a warning, or ``network`` itself.

    DropNet changes the network's shapes every round (torch would compile it
    again each time) and hooks its layers, which a compiled graph does not
    run one by one, so it trains and prunes the network itself.
    """
    if compiled_network(network) is None:
        return network
    warn(
        "module is a torch.compile'd network: DropNet trains and prunes the network inside "
        "it (module._orig_mod), as pruning changes its shapes every round. Compile the fitted "
        "network for inference instead: torch.compile(clf.module_).",
        UserWarning,
    )
    return network._orig_mod


def build_module(module, kwargs, input_shape, n_classes):
    """A new network in float32, the type of the inputs it is given.

    Parameters
    ----------
    module : None, nn.Module instance, or callable returning one
        ``None`` builds :class:`~sklearn_dropnet.models.MLP`; an instance
        is copied; anything else (a class, a function such as
        ``torchvision.models.resnet18``, a ``functools.partial``) is called
        with ``kwargs`` and, where its signature takes them, ``input_shape``,
        ``n_classes`` and ``num_classes`` (the number of classes), unless
        ``kwargs`` sets them. A function that takes ``**kwargs`` gets
        ``num_classes`` too, unless it refuses it.
    kwargs : dict
        The ``module__*`` parameters, without the prefix.
    input_shape : tuple of int
        The shape of one sample.
    n_classes : int
        The number of classes.

    Examples
    --------
    >>> import functools
    >>> from sklearn_dropnet._build_module import build_module
    >>> from sklearn_dropnet.models import ModelB
    >>> net = build_module(functools.partial(ModelB, channels=(4, 6)), {}, (1, 8, 8), 3)
    >>> net.features[3], net.classifier[1]
    (Conv2d(4, 6, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)), Linear(in_features=24, out_features=3, bias=True))
    """
    check_picklable(module)
    network = _uncompiled(_new_module(module, dict(kwargs), input_shape, n_classes))
    wrong = sorted({
        str(p.dtype) for p in network.parameters() if p.is_floating_point() and p.dtype != torch.float32
    })  # fmt: skip
    if wrong:
        raise ValueError(
            f"The module's parameters are {', '.join(wrong)}, but DropNetClassifier gives "
            "the network float32 inputs: pass module.float()."
        )
    warn_if_unpicklable(network)
    return network


def _described(output):
    """What a module returned, for an error: a tensor's shape; a tuple's or list's
    parts, with how to keep only the class scores; else the type."""
    if isinstance(output, torch.Tensor):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)):
        parts = ", ".join(str(tuple(p.shape)) if isinstance(p, torch.Tensor) else type(p).__name__ for p in output)
        return (
            f"a {type(output).__name__} of {len(output)} ({parts}) in eval mode; return the class scores "
            "alone (wrap the module in one whose forward picks them, e.g. out[1] for an ultralytics "
            "classifier, whose head returns the probabilities and the logits)"
        )
    return type(output).__name__


def check_module_output(module, samples, n_classes, criterion=None):
    """Run the new network on training samples: it must give one score per class.

    With a loss that takes logits (any but ``nn.NLLLoss``), rows that are
    already probabilities (a softmax at the end of ``forward``) get a
    warning: the loss would apply a second softmax. With ``nn.NLLLoss``,
    whose input skorch takes the log of, outputs that are not probabilities
    (logits, or a ``log_softmax`` at the end) get one too. A ``criterion``
    given as an instance (the net's ``criterion_``) must take the output
    with class indices as targets, as training gives it them.

    Examples
    --------
    >>> import warnings
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet._build_module import check_module_output
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_module_output(net, torch.ones(2, 4), 3, nn.CrossEntropyLoss)
    >>> str(caught[0].message)[:42]
    "The module's outputs are probabilities (ev"
    """
    try:
        output = evaluate(module, samples)
    except Exception as exc:
        embeds = any(isinstance(part, (nn.Embedding, nn.EmbeddingBag)) for part in module.modules())
        needs = "; a module that needs integers, for nn.Embedding, must convert them in forward" if embeds else ""
        raise ValueError(
            f"The module failed on training samples of shape {tuple(samples.shape[1:])} "
            f"(given as float32 tensors{needs}): {type(exc).__name__}: {exc}"
        ) from exc
    expected = (len(samples), n_classes)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        raise ValueError(
            f"The module must return one score per class, a tensor of shape (n_samples, "
            f"{n_classes}) for the {n_classes} classes in y; for "
            f"{len(samples)} samples it returned {_described(output)}."
        )
    if isinstance(criterion, nn.Module):
        _check_class_index_targets(criterion, output, n_classes)
    if criterion is not None and not returns_probabilities(criterion) and _are_probabilities(output):
        warn(
            f"The module's outputs are probabilities (every row of its output on {len(samples)} "
            f"training samples is non-negative and sums to 1), but {criterion_name(criterion)} takes "
            "logits and applies a softmax of its own: the network would be trained through two "
            "softmaxes. Pass criterion=torch.nn.NLLLoss (skorch then takes the log of the "
            "probabilities), or return the logits: leave the softmax out of forward.",
            UserWarning,
        )
    if criterion is not None and returns_probabilities(criterion) and not _are_probabilities(output):
        _check_probabilities(output, criterion, len(samples))


def _check_probabilities(output, criterion, n):
    """Refuse outputs that are negative with a loss that takes the log of them (training
    could only give NaN); warn of positive ones whose rows do not sum to 1."""
    if _are_log_probabilities(output):
        what = f"log-probabilities (every row of its output on {n} training samples is at most 0 and its exponentials sum to 1)"
    elif (output < 0).any():
        what = f"not probabilities (some of its outputs on {n} training samples are negative)"
    else:  # scores that are positive so far: logits after a ReLU, or before they turn negative
        warn(
            f"The module's outputs are not probabilities (its rows on {n} training samples do not sum "
            f"to 1), but with {criterion_name(criterion)} the module returns probabilities, whose log "
            "skorch takes as log-probabilities: the loss of an output that turns negative is NaN. "
            "Return probabilities (softmax, not log_softmax), or return the logits and pass "
            "criterion=torch.nn.CrossEntropyLoss.",
            UserWarning,
        )
        return
    raise ValueError(
        f"The module's outputs are {what}, but with {criterion_name(criterion)} the module returns "
        "probabilities, whose log skorch takes as log-probabilities: the loss of a negative output "
        "is NaN, so training could only diverge. Return probabilities (softmax, not log_softmax), "
        "or return the logits and pass criterion=torch.nn.CrossEntropyLoss."
    )


def _check_class_index_targets(criterion, output, n_classes):
    """Refuse a loss that cannot take the module's scores with class indices as
    targets (``BCEWithLogitsLoss``, ``MSELoss``): it would fail inside torch at
    the first batch, naming neither the loss nor the fix."""
    targets = torch.zeros(len(output), dtype=torch.long, device=output.device)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MSELoss warns of broadcasting, then fails: say it once
            criterion(output.float(), targets)
    except Exception as exc:  # whatever the loss raises on those shapes and dtypes
        raise ValueError(
            f"criterion={criterion_name(criterion)} cannot take the module's output (shape "
            f"{tuple(output.shape)}: one score per class) with class indices as targets (shape "
            f"({len(output)},), y encoded as 0..{n_classes - 1}), which is what training gives it: "
            f"{type(exc).__name__}: {exc}. Use criterion=torch.nn.CrossEntropyLoss (the default) "
            "on logits, also for two classes, with criterion__weight for class weights; or "
            "torch.nn.NLLLoss on probabilities."
        ) from exc


def _are_log_probabilities(output):
    output = output.detach().double()
    return bool((output <= 0).all() and _are_probabilities(output.exp()))


def _are_probabilities(output):
    output = output.detach().double()
    return bool((output >= 0).all() and torch.allclose(output.sum(dim=1), torch.ones(len(output), dtype=output.dtype)))
