"""Building the network DropNetClassifier trains, and checking what it returns."""

import contextlib
import copy
import inspect

import torch
from torch import nn

from .models import MLP
from .pruning._eval_mode import evaluate

__all__ = ["build_module", "check_module_output"]


@contextlib.contextmanager
def _default_dtype(dtype):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def _new_module(module, kwargs, input_shape, n_classes):
    if module is None:
        with _default_dtype(torch.float32):
            return MLP(input_shape=input_shape, n_classes=n_classes, **kwargs)
    if isinstance(module, nn.Module):
        if kwargs:
            raise ValueError("module__* parameters need module to be a class, not an instance.")
        return copy.deepcopy(module)
    if not (isinstance(module, type) and issubclass(module, nn.Module)):
        raise TypeError(f"module must be a torch.nn.Module class or instance, got {module!r}.")
    signature = inspect.signature(module).parameters
    if "input_shape" in signature:
        kwargs.setdefault("input_shape", input_shape)
    if "n_classes" in signature:
        kwargs.setdefault("n_classes", n_classes)
    with _default_dtype(torch.float32):  # whatever the caller's default
        return module(**kwargs)


def build_module(module, kwargs, input_shape, n_classes):
    """A new network in float32, the type of the inputs it is given.

    Parameters
    ----------
    module : None, nn.Module class or instance
        ``None`` builds :class:`~sklearn_dropnet.models.MLP`; a class is
        called with ``kwargs`` (and ``input_shape``, ``n_classes`` where it
        takes them); an instance is copied.
    kwargs : dict
        The ``module__*`` parameters, without the prefix.
    input_shape : tuple of int
        The shape of one sample.
    n_classes : int
        The number of classes.
    """
    network = _new_module(module, dict(kwargs), input_shape, n_classes)
    wrong = sorted({
        str(p.dtype) for p in network.parameters() if p.is_floating_point() and p.dtype != torch.float32
    })  # fmt: skip
    if wrong:
        raise ValueError(
            f"The module's parameters are {', '.join(wrong)}, but DropNetClassifier gives "
            "the network float32 inputs: pass module.float()."
        )
    return network


def check_module_output(module, example, n_classes):
    """Run the new network on training samples: it must give one score per class."""
    try:
        output = evaluate(module, example)
    except Exception as exc:
        raise ValueError(
            f"The module failed on training samples of shape {tuple(example.shape[1:])} "
            f"(given as float32 tensors; a module that needs integers, for nn.Embedding, "
            f"must convert them in forward): {type(exc).__name__}: {exc}"
        ) from exc
    expected = (len(example), n_classes)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"The module must return one score per class, a tensor of shape (n_samples, "
            f"{n_classes}) for the {n_classes} classes in y; for "
            f"{len(example)} samples it returned {got}."
        )
