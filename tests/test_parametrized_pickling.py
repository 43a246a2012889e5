"""Estimators holding networks with parametrized layers (weight_norm, spectral_norm,
orthogonal) pickle, which torch refuses for such modules on their own."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import cross_validate
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._pickling import dumps

PARAMETRIZATIONS = {
    "weight_norm": parametrizations.weight_norm,
    "spectral_norm": parametrizations.spectral_norm,
    "orthogonal": parametrizations.orthogonal,
}


def _network(parametrization):
    torch.manual_seed(0)
    return nn.Sequential(
        parametrization(nn.Linear(64, 16)), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10)
    )


def _round_trip(value):
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


@pytest.mark.parametrize("name", PARAMETRIZATIONS)
def test_a_fitted_estimator_with_a_parametrized_layer_survives_joblib(digits, name):
    X, y = digits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = DropNetClassifier(module=_network(PARAMETRIZATIONS[name]), prune_ratio=0.5, max_epochs=2, random_state=0)
        clf.fit(X[:600], y[:600])
    assert not [w for w in caught if "cannot be pickled" in str(w.message)]  # torch's refusal, warned before
    loaded = _round_trip(clf)
    np.testing.assert_array_equal(loaded.predict_proba(X[600:]), clf.predict_proba(X[600:]))
    for network in (loaded.module_, loaded.initial_module_, loaded.net_.module):
        assert parametrize.is_parametrized(network[0], "weight")
        assert type(network[0]).__name__ == "ParametrizedLinear" and isinstance(network[0], nn.Linear)
    for before, after in zip(clf.module_[0].parametrizations.weight, loaded.module_[0].parametrizations.weight):
        assert type(after) is type(before)
    torch.testing.assert_close(loaded.module_[0].weight, clf.module_[0].weight, rtol=0, atol=0)
    # The optimizer still trains the network's own tensors (one pickle: the same objects).
    trained = {id(p) for group in loaded.net_.optimizer_.param_groups for p in group["params"]}
    assert trained == {id(p) for p in loaded.module_.parameters()}
    assert loaded.net_.module is loaded.module_


def test_an_unfitted_estimator_given_a_parametrized_instance_pickles():
    clf = DropNetClassifier(module=_network(parametrizations.weight_norm))
    loaded = pickle.loads(pickle.dumps(clf))
    x = torch.randn(3, 64)
    torch.testing.assert_close(loaded.module(x), clf.module(x), rtol=0, atol=0)
    assert loaded.module is not clf.module and parametrize.is_parametrized(loaded.module[0])


def test_a_weight_normed_layer_still_loads_a_hook_based_state_dict():
    """parametrizations.weight_norm loads the state dicts of torch.nn.utils.weight_norm
    (weight_g, weight_v) through a hook defined inside it; unpickled, it still does."""
    torch.manual_seed(0)
    old = nn.utils.weight_norm(nn.Linear(4, 3))
    layer = pickle.loads(dumps(parametrizations.weight_norm(nn.Linear(4, 3))))
    layer.load_state_dict(old.state_dict())
    torch.testing.assert_close(layer.weight, old.weight)


def test_fitted_in_worker_processes_and_sent_back(digits):
    """cross_validate(n_jobs=2) pickles the estimator to each worker and the fitted one back."""
    X, y = digits
    clf = DropNetClassifier(module=_network(parametrizations.weight_norm), prune_ratio=0.5, max_epochs=1)
    result = cross_validate(clf, X[:400], y[:400], cv=2, n_jobs=2, return_estimator=True)
    for fitted in result["estimator"]:
        assert parametrize.is_parametrized(fitted.module_[0]) and fitted.module_[2].out_features == 8
        assert fitted.pruning_history_[-1]["fraction_left"] == 0.5
        np.testing.assert_allclose(fitted.predict_proba(X[400:410]).sum(axis=1), 1, rtol=1e-5)
