"""The errors for a torch Dataset passed as X whose items are not (x, label) pairs."""

import numpy as np
import pytest
import torch
from item_datasets import Items
from torch.utils.data import TensorDataset

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._data import check_dataset_item


def _data(n=20):
    X = torch.as_tensor(np.random.RandomState(0).rand(n, 3), dtype=torch.float32)
    return X, torch.arange(n) % 2


def test_a_dataset_of_one_tuples_is_named_with_the_fix():
    X, y = _data()
    message = (
        r"must yield \(x, label\) pairs; item 0 is a tuple of 1 element\. "
        r"Pass the inputs with their labels, e.g\. TensorDataset\(X, y\), and y=None\."
    )
    with pytest.raises(ValueError, match=message):
        DropNetClassifier(max_epochs=1).fit(TensorDataset(X))
    fitted = DropNetClassifier(
        max_epochs=1, prune_ratio=0, module__hidden_layer_sizes=(4,), random_state=0
    ).fit(TensorDataset(X, y))
    with pytest.raises(ValueError, match=message):
        fitted.prune(TensorDataset(X))
    # Predicting needs no labels: (x,) tuples are taken.
    np.testing.assert_array_equal(fitted.predict_proba(TensorDataset(X)), fitted.predict_proba(X))
    np.testing.assert_array_equal(fitted.predict(TensorDataset(X)), fitted.predict(X))


def test_a_dataset_of_inputs_alone_is_named():
    X, _ = _data()
    with pytest.raises(ValueError, match=r"item 0 is a Tensor, not a tuple\. Pass the inputs with their labels"):
        DropNetClassifier(max_epochs=1).fit(Items(X))


def test_predicting_on_inputs_alone_says_what_predict_accepts():
    X, y = _data()
    fitted = DropNetClassifier(
        max_epochs=1, prune_ratio=0, module__hidden_layer_sizes=(4,), random_state=0
    ).fit(TensorDataset(X, y))
    for method in (fitted.predict, fitted.predict_proba):
        with pytest.raises(ValueError, match=r"must yield \(x, label\) pairs or \(x,\) tuples; item 0 is a Tensor, "
                           r"not a tuple\. Pass TensorDataset\(X\), or X itself\."):  # fmt: skip
            method(Items(X))


@pytest.mark.parametrize(
    "item, found",
    [([], "a list of 0 elements"), (torch.zeros(3), "a Tensor, not a tuple")],
)
def test_the_message_for_predicting_says_what_predict_accepts(item, found):
    with pytest.raises(ValueError, match=rf"item 4 is {found}\. Pass TensorDataset\(X\), or X itself"):
        check_dataset_item(item, 4, predicting=True)
    check_dataset_item((torch.zeros(3),), 4, predicting=True)  # (x,) passes
    check_dataset_item((torch.zeros(3), 0), 4, predicting=True)  # so does a pair
    check_dataset_item([torch.zeros(3), 0, "extra"], 4)  # and a longer sequence
