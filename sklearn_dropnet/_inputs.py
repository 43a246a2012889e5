"""Checking what DropNetClassifier is given to fit, prune and predict on.

Arrays go through scikit-learn's ``validate_data`` (which sets
``n_features_in_`` and ``feature_names_in_`` on the estimator); a torch
``Dataset`` of ``(x, label)`` pairs is checked by its first item. Either way
the result is a :class:`~sklearn_dropnet._data.LabelledData` of float32
inputs and encoded labels.
"""

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from torch.utils.data import Dataset as TorchDataset

from ._data import (
    EncodedDataset,
    LabelledData,
    check_dataset_item,
    dataset_labels,
    float_inputs,
    spread_indices,
)
from ._device import preserved_generators
from ._user_warnings import warn
from ._validation import check_two_classes

__all__ = ["DatasetScoreMixin", "labelled_for_prune", "training_data", "inference_data"]


def _reject_input_dict(X):
    if isinstance(X, Mapping) and not sp.issparse(X):  # a dok sparse matrix is a dict
        raise TypeError(
            "X must be an array of samples or a torch Dataset of (x, label) pairs, not a "
            f"{type(X).__name__}: DropNet traces and prunes a network of one input tensor, "
            "so skorch's dict of several inputs is not supported."
        )


def _reject_sparse(estimator, X):
    if sp.issparse(X):
        raise TypeError(
            f"{type(estimator).__name__} takes dense X, and X is a sparse {type(X).__name__} (a network "
            "reads every input anyway). Use X.toarray(); in a Pipeline, make the step before it dense: "
            "OneHotEncoder(sparse_output=False), ColumnTransformer(sparse_threshold=0)."
        )


def _writable(X):
    """``X``, copied only if torch cannot share its memory: read-only (torch
    warns) or with a negative stride (``X[::-1]``; torch refuses it)."""
    if X.ndim and min(X.strides) < 0:
        return np.ascontiguousarray(X)
    return np.require(X, requirements="W")


def training_data(estimator, X, y):
    """Check ``X, y``; set ``classes_``, ``input_shape_``, ``n_features_in_`` on ``estimator``.

    Returns
    -------
    LabelledData
        The inputs (float32 arrays, or the Dataset yielding float32 inputs)
        and the labels encoded as ``0 .. n_classes - 1``.
    """
    _reject_input_dict(X)
    if isinstance(X, TorchDataset):
        if y is not None:
            raise ValueError("When X is a torch Dataset of (x, label) pairs, y must be None.")
        if len(X) < 1:
            raise ValueError("The Dataset passed as X is empty.")
        y = dataset_labels(X)
        if hasattr(estimator, "feature_names_in_"):  # from an earlier fit on a DataFrame
            del estimator.feature_names_in_
    else:
        _reject_sparse(estimator, X)
        _warn_if_inexact_in_float32(X)
        X, y = validate_data(estimator, X, y, dtype=np.float32, allow_nd=True)
        X = _writable(X)
    check_classification_targets(y)
    encoder = LabelEncoder().fit(y)
    estimator.classes_ = encoder.classes_
    check_two_classes(estimator)
    encoded = encoder.transform(y).astype(np.int64)
    if isinstance(X, TorchDataset):
        X = EncodedDataset(X, encoded)
        estimator.input_shape_ = _one_input_shape(X)
        estimator.n_features_in_ = estimator.input_shape_[0]
    else:
        estimator.input_shape_ = tuple(X.shape[1:])
    _warn_if_channels_last(estimator.input_shape_)
    return LabelledData(X, encoded)


def _one_input_shape(dataset, n_samples=16):
    """The shape of the Dataset's inputs, checked on up to ``n_samples``
    items spread over it: a batch stacks its inputs, so they need one shape."""
    shapes = {}
    with preserved_generators("cpu"):  # random transforms draw from torch's generator
        for index in spread_indices(len(dataset), n_samples).tolist():
            shapes.setdefault(tuple(dataset[index][0].shape), index)
    if len(shapes) > 1:
        (first, i), (other, j) = list(shapes.items())[:2]
        raise ValueError(
            f"The Dataset passed as X yields inputs of different shapes: item {i} is {first}, "
            f"item {j} is {other}. A batch stacks its inputs, so they need one shape: pad or "
            "crop them to one length (torch.nn.utils.rnn.pad_sequence pads sequences) or "
            "resize images to one size, in the Dataset's __getitem__ or transform."
        )
    return next(iter(shapes))


def _warn_if_inexact_in_float32(X):
    """Integers past 2**24 change on the way to the network's float32 inputs
    (token ids for an nn.Embedding, say): warn."""
    if isinstance(X, torch.Tensor):
        integers = not (X.is_floating_point() or X.is_complex()) and X.dtype != torch.bool
        largest = int(X.abs().max()) if integers and X.numel() else 0
    else:
        values = _integer_values(X)
        largest = int(np.abs(values).max()) if values.size else 0
    if largest > 2**24:
        warn(
            f"X holds integers up to {largest:,}, past 2**24 = 16,777,216: the network gets X as float32, "
            "which rounds such integers (token ids among them would change). Keep them at most 2**24.",
            UserWarning,
        )


def _integer_values(X):
    """X's integers as int64 (none where X holds none): an array's, a DataFrame's
    integer columns, a nested list's."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and hasattr(X, "iloc"):  # a DataFrame
        columns = [i for i, dtype in enumerate(dtypes) if getattr(dtype, "kind", "") in "iu"]
        return X.iloc[:, columns].to_numpy(dtype=np.int64, na_value=0) if columns else np.empty(0, np.int64)
    if not hasattr(X, "dtype"):  # a nested list
        try:
            X = np.asarray(X)
        except ValueError:  # ragged: scikit-learn's check names it
            return np.empty(0, np.int64)
    if isinstance(X.dtype, np.dtype) and np.issubdtype(X.dtype, np.integer):
        return np.asarray(X, dtype=np.int64)
    return np.empty(0, np.int64)


def _warn_if_channels_last(shape):
    """Images whose last axis looks like their channels (1, 3 or 4 of them, the first
    axis not) are read channels first all the same, as PyTorch's layers take them: warn."""
    if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4) and shape[0] > shape[-1]:
        warn(
            f"The samples have shape {shape}: PyTorch's layers read them as {shape[0]} channels of "
            f"{shape[1]} x {shape[2]} images. If the last axis holds the channels (channels last, as "
            "PIL, OpenCV and TensorFlow store images), move it first: X.transpose(0, 3, 1, 2).",
            UserWarning,
        )


def inference_data(estimator, X):
    """``X`` checked against the fitted sample shape, as float32 (a Dataset's inputs too)."""
    check_is_fitted(estimator)
    _reject_input_dict(X)
    if isinstance(X, TorchDataset):
        return _inference_dataset(estimator, X)
    _reject_sparse(estimator, X)
    if not hasattr(X, "shape"):  # a nested list: its samples are checked as an array's are
        X = np.asarray(X)
    if len(estimator.input_shape_) > 1 or len(X.shape) > 2:
        _check_sample_shape(estimator, tuple(X.shape[1:]))
    _warn_if_inexact_in_float32(X)
    return _writable(validate_data(estimator, X, dtype=np.float32, allow_nd=True, reset=False))


def _inference_dataset(estimator, dataset):
    """A Dataset of ``(x, label)`` pairs or ``(x,)`` tuples, its first ``x`` checked, yielding float32 inputs."""
    if len(dataset) < 1:
        raise ValueError("The Dataset passed as X is empty.")
    check_dataset_item(dataset[0], 0, predicting=True)
    inputs = float_inputs(dataset)
    _check_sample_shape(estimator, tuple(inputs[0][0].shape))
    return inputs


def _check_sample_shape(estimator, shape):
    if shape != estimator.input_shape_:
        raise ValueError(
            f"X has samples of shape {shape}, but {type(estimator).__name__} "
            f"was fitted on samples of shape {estimator.input_shape_}."
        )


def labelled_for_prune(estimator, X, y):
    """``X, y`` given to ``prune``: checked against the fit, labels encoded as in it."""
    if isinstance(X, TorchDataset):
        if y is not None:
            raise ValueError("When X is a torch Dataset of (x, label) pairs, y must be None.")
        y = dataset_labels(X)
    else:
        if y is None:
            raise ValueError("prune needs the labels y, unless X is a torch Dataset of (x, label) pairs.")
        X = inference_data(estimator, X)
        check_consistent_length(X, y)
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    unknown = np.setdiff1d(np.unique(y), estimator.classes_)
    if len(unknown):
        raise ValueError(f"y has labels that were not seen in fit: {unknown.tolist()}.")
    encoded = np.searchsorted(estimator.classes_, y).astype(np.int64)
    if isinstance(X, TorchDataset):
        X = EncodedDataset(X, encoded)
        _check_sample_shape(estimator, tuple(X[0][0].shape))
    return LabelledData(X, encoded)


class DatasetScoreMixin:
    """``score`` that takes a torch Dataset of ``(x, label)`` pairs, as ``fit``,
    ``predict`` and ``prune`` do (scikit-learn's ``score`` needs ``y``)."""

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y``.

        Parameters
        ----------
        X : array-like or torch Dataset
            Samples, or a Dataset of ``(x, label)`` pairs (with ``y=None``,
            its labels are the truth).
        y : array-like of shape (n_samples,), default=None
            True labels; needed unless ``X`` is a Dataset.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float

        Examples
        --------
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_dropnet import DropNetClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> data = TensorDataset(torch.as_tensor(X / 16, dtype=torch.float32), torch.as_tensor(y))
        >>> clf = DropNetClassifier(max_epochs=2, prune_ratio=0.3, random_state=0).fit(data)
        >>> clf.score(data) == clf.score(X / 16, y)
        True
        """
        if isinstance(X, TorchDataset) and y is None:
            y = dataset_labels(X)
        elif y is None:
            raise ValueError("score needs the labels y, unless X is a torch Dataset of (x, label) pairs.")
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))
