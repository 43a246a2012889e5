"""What ``prune`` and ``ensemble`` share: everything before training (torch
set up, the data read and checked, the test split held out, the output
folder checked), the network the DropNet options describe, and its fit.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._device import check_device
from .errors import UsageError, first_line, some_labels
from .io import load_data
from .outputs import output_dir


def _configure_torch(args):
    """Set torch's CPU threads; check that ``--device`` exists here."""
    import torch

    torch.set_num_threads(args.threads)
    try:
        check_device(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def _training_data(args):
    """``X, y, description, names`` of ``--data`` (scikit-learn's digits
    without it): ``names`` of the feature columns of a ``.csv`` file with a
    header, else None."""
    if args.data is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        description = "scikit-learn digits (1797 8x8 images, pixels / 16)"
        return (X / 16).astype(np.float32), y, description, None
    X, y, names = load_data(args.data, target=args.target)
    if y is None:
        raise UsageError(f"{args.data} has no labels: a .npz file needs an array y")
    if len(np.unique(y)) < 2:
        raise UsageError(f"{args.data}: the labels have a single class; need at least 2")
    _check_class_labels(args.data, y)
    shape = " x ".join(str(size) for size in X.shape[1:])
    each = f"{X.shape[1]} features" if X.ndim == 2 else f"each {shape}"
    description = f"{args.data} ({X.shape[0]} samples, {each})"
    return X, y, description, names


def _check_class_labels(path, y):
    """Fractional numbers are not class labels: scikit-learn's classifiers refuse
    them as a regression target, and so does this command, before training."""
    from sklearn.utils.multiclass import type_of_target

    if type_of_target(y) in ("continuous", "continuous-multioutput"):
        fractional = np.asarray(y)[np.asarray(y) % 1 != 0]
        raise UsageError(
            f"{path}: the labels hold fractional numbers ({some_labels(fractional)}), which a "
            "classifier takes for a regression target (scikit-learn's rule). Labels are "
            "classes: whole numbers or text; if these are classes, write them as text "
            '(e.g. "a0.5") or number them.'
        )


def _single_row_classes(y):
    """The classes of ``y`` with a single row: they keep a split from being stratified."""
    classes, counts = np.unique(y, return_counts=True)
    return classes[counts < 2]


def _split_test(X, y, test_size, random_state):
    """``X_train, X_test, y_train, y_test``, the test split stratified unless
    a class has a single row (a note on standard error says so); the test
    parts are None when ``test_size`` is 0."""
    from sklearn.model_selection import train_test_split

    if test_size == 0:
        return X, None, y, None
    single = _single_row_classes(y)
    if single.size:
        names = some_labels(single)
        which = f"class {names} has" if single.size == 1 else f"classes {names} have"
        print(
            f"note: the test split is not stratified: {which} a single row, and a stratified "
            "split needs 2 of each class",
            file=sys.stderr,
        )
    try:
        stratify = None if single.size else y
        return train_test_split(
            X, y, test_size=test_size, stratify=stratify, random_state=random_state
        )
    except ValueError as error:
        raise UsageError(f"cannot hold out a test split of {test_size}: {error}") from None


@dataclass(frozen=True)
class TrainingData:
    """The data of a training command, split, and the folder it writes to."""

    X_train: np.ndarray
    X_test: np.ndarray | None  # None with --test-size 0
    y_train: np.ndarray
    y_test: np.ndarray | None
    description: str  # the file and its size, or the digits
    names: list | None  # the feature columns' names of a .csv file with a header
    output: Path

    def summary(self):
        """The line that says what the command trains and tests on."""
        n_test = 0 if self.X_test is None else len(self.X_test)
        return (
            f"data: {self.description}; {len(self.X_train)} training samples, {n_test} test samples"
        )


def prepare_training(args, outputs=()):
    """Everything a training command does before it trains, each problem a
    :class:`UsageError`: torch's threads and device, ``--data`` read and
    checked, the test split held out, ``--output-dir`` checked (none of the
    ``outputs``, the files the command writes there, may be a folder).

    Returns
    -------
    data : TrainingData
    """
    _configure_torch(args)
    X, y, description, names = _training_data(args)
    X_train, X_test, y_train, y_test = _split_test(X, y, args.test_size, args.random_state)
    output = output_dir(args.output_dir, outputs)
    return TrainingData(X_train, X_test, y_train, y_test, description, names, output)


def dropnet_classifier(args, verbose):
    """The :class:`~sklearn_dropnet.DropNetClassifier` of the DropNet options."""
    from .. import DropNetClassifier

    return DropNetClassifier(
        prune_ratio=args.prune_ratio,
        drop_fraction=args.drop_fraction,
        scope=args.scope,
        round_to=args.round_to,
        unit_score=args.unit_score,
        reinit=args.reinit,
        distill_weight=args.distill_weight,
        distill_temperature=args.distill_temperature,
        min_accuracy_ratio=args.min_accuracy_ratio,
        max_epochs=args.max_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        patience=args.patience,
        validation_fraction=args.validation_fraction,
        device=args.device,
        random_state=args.random_state,
        verbose=verbose,
        module__hidden_layer_sizes=args.hidden_layer_sizes,
    )


def fit(estimator, X, y, what, message=first_line):
    """Fit ``estimator``; its ValueError or TypeError becomes a
    :class:`UsageError` reading ``cannot train WHAT: message(error)``."""
    try:
        return estimator.fit(X, y)
    except (ValueError, TypeError) as error:
        raise UsageError(f"cannot train {what}: {message(error)}") from None


def with_column_names(model, names):
    """``model``, and an ensemble's members, given ``names``, the feature
    column names of a ``.csv`` file with a header (None for none), as
    ``feature_names_in_`` (what a fit on a DataFrame records), so that
    ``predict`` matches a file's columns by name."""
    if names is not None:
        for fitted in [model, *getattr(model, "estimators_", [])]:
            fitted.feature_names_in_ = np.asarray(names, dtype=object)
    return model
