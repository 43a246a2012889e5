"""Pickling networks whose layers have parametrizations (``torch.nn.utils.parametrize``).

``torch.nn.utils.parametrizations.weight_norm``, ``spectral_norm`` and
``orthogonal`` give a layer a class made on the fly (``ParametrizedConv1d``),
which pickle cannot name and whose ``__getstate__`` raises ("Serialization of
parametrized modules is only supported through state_dict()"); ``weight_norm``
also registers a hook defined inside a function. A fitted estimator holding
such a network could not be saved (``joblib.dump``, ``pickle``) nor sent to a
worker process (``n_jobs``, Dask).

:class:`ParametrizedReducer` is a mixin for a :class:`pickle.Pickler` that
pickles such a layer by its original class, its state (its parameters, the
parametrizations and their tensors, as they are) and the names of its
parametrized tensors, and the hook by its tensor's name: unpickling makes the
same parametrized layer, which computes the same weights, keeps the same
tensors (an optimizer pickled with it still holds them) and loads a state
dict as before. :func:`dumps` pickles with it; :func:`portable` wraps a value
that needs it, for an estimator's ``__getstate__``.
"""

import functools
import io
import pickle
import types

import cloudpickle
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["ParametrizedReducer", "dumps", "has_parametrizations", "portable", "unparametrized_class"]

# The state-dict hook torch.nn.utils.parametrizations.weight_norm registers (a closure over the tensor's name).
_WEIGHT_NORM_HOOK = ("torch.nn.utils.parametrizations", "weight_norm.<locals>._weight_norm_compat_hook")


def has_parametrizations(value):
    """Whether ``value`` is a network with a parametrized layer."""
    return isinstance(value, nn.Module) and any(parametrize.is_parametrized(m) for m in value.modules())


def unparametrized_class(layer):
    """The class of parametrized ``layer`` before parametrize made it a subclass of its own
    (``ParametrizedConv1d`` of ``Conv1d``)."""
    return type(layer).__bases__[0]


def _parametrized_module(base, tensor_names):
    """An empty instance of ``base``, parametrized on ``tensor_names`` (its state comes next)."""
    module = base.__new__(base)
    parametrize._inject_new_class(module)
    for name in tensor_names:
        parametrize._inject_property(module, name)
    return module


def _weight_norm_state(name, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    """Load a state dict saved with the hook-based ``weight_norm`` (``NAME_g``, ``NAME_v``),
    as the hook of ``parametrizations.weight_norm`` does."""
    g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
    if g_key in state_dict and v_key in state_dict:
        state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
        state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)


def _is_weight_norm_hook(obj):
    return isinstance(obj, types.FunctionType) and (obj.__module__, obj.__qualname__) == _WEIGHT_NORM_HOOK


def _reduce(obj):
    """How to pickle ``obj`` if it is a parametrized layer or weight_norm's hook, else None."""
    if isinstance(obj, nn.Module) and parametrize.is_parametrized(obj):
        return _parametrized_module, (unparametrized_class(obj), tuple(obj.parametrizations)), obj.__dict__
    if _is_weight_norm_hook(obj):
        cells = dict(zip(obj.__code__.co_freevars, (cell.cell_contents for cell in obj.__closure__)))
        return functools.partial, (_weight_norm_state, cells["name"])
    return None


class ParametrizedReducer:
    """Pickler mixin: parametrized layers and weight_norm's hook, as explained in the module."""

    def reducer_override(self, obj):
        reduced = _reduce(obj)
        if reduced is not None:
            return reduced
        parent = getattr(super(), "reducer_override", None)
        return NotImplemented if parent is None else parent(obj)


class _Pickler(ParametrizedReducer, pickle.Pickler):
    pass


class _CloudPickler(ParametrizedReducer, cloudpickle.Pickler):
    pass


def dumps(value, by_value=False):
    """``pickle.dumps(value)``, parametrized layers included; classes of ``__main__``
    pickled by value (cloudpickle) if ``by_value``. ``pickle.loads`` reads it."""
    buffer = io.BytesIO()
    (_CloudPickler if by_value else _Pickler)(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


class _Pickled:
    """A value pickled by :func:`dumps`; unpickled, it is that value again."""

    def __init__(self, value):
        self.data = dumps(value)

    def __reduce__(self):
        return pickle.loads, (self.data,)


def portable(value):
    """``value``, or, if it is a network with parametrized layers, what pickles as it."""
    return _Pickled(value) if has_parametrizations(value) else value
