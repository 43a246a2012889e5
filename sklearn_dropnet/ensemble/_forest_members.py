"""The trees of a fitted forest as members of an HQ ensemble."""

import copy

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

__all__ = ["forest_members"]


def forest_members(forest, prefix="tree"):
    """The trees of a fitted forest, as frozen named members for ``estimators``.

    A scikit-learn forest (:class:`~sklearn.ensemble.RandomForestClassifier`,
    :class:`~sklearn.ensemble.ExtraTreesClassifier`) keeps its trees in
    ``estimators_``, but each was fitted on the forest's labels encoded as
    ``0 .. K - 1`` and on ``X`` without its column names, so a tree on its
    own predicts codes, not labels. Each member returned here is a shallow
    copy of a tree (the fitted tree structure is shared, not copied) that
    predicts the forest's own labels and knows its feature names, wrapped
    in :class:`~sklearn.frozen.FrozenEstimator` so that
    :class:`~sklearn_dropnet.HQEnsembleClassifier` does not train it again.

    Choose the team on rows the forest was not trained on (its trees saw
    bootstrap samples of the training rows).

    The members of a fitted :class:`~sklearn_dropnet.HQEnsembleClassifier`
    (``hq.estimators_``) also learned the codes, and ``forest_members(hq)``
    makes the same members of them: to choose another team (another
    ``method`` or ``n_select``) from the same pool, on other rows, without
    training the pool again.

    Parameters
    ----------
    forest : fitted forest classifier
        A single-output forest whose ``estimators_`` all predict
        probabilities, such as ``RandomForestClassifier`` or
        ``ExtraTreesClassifier``.
    prefix : str, default="tree"
        Members are named ``"<prefix>_0"``, ``"<prefix>_1"``, ...

    Returns
    -------
    list of (str, FrozenEstimator)
        One member per tree, in the forest's order.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn_dropnet import HQEnsembleClassifier
    >>> from sklearn_dropnet.ensemble import forest_members
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_rest, y_train, y_rest = train_test_split(X, y, random_state=0)
    >>> X_select, X_test, y_select, y_test = train_test_split(X_rest, y_rest, random_state=0)
    >>> forest = RandomForestClassifier(n_estimators=32, random_state=0).fit(X_train, y_train)
    >>> hq = HQEnsembleClassifier(estimators=forest_members(forest), n_select=8)
    >>> hq = hq.fit(X_select, y_select)  # the trees are not trained again
    >>> len(hq.ensemble_) <= 8, hq.ensemble_[0].classes_.tolist() == forest.classes_.tolist()
    (True, True)
    """
    check_is_fitted(forest)
    trees = getattr(forest, "estimators_", None)
    classes = getattr(forest, "classes_", None)
    if isinstance(classes, list) and getattr(forest, "n_outputs_", 1) > 1:
        raise TypeError(
            f"forest_members takes a single-output forest classifier; this {type(forest).__name__} "
            f"was fitted on {forest.n_outputs_} outputs (y of several columns), and HQ chooses "
            "members of one output."
        )
    if not isinstance(trees, list) or classes is None or not hasattr(classes, "shape"):
        raise TypeError(
            f"forest_members takes a fitted single-output forest classifier such as "
            f"RandomForestClassifier, got {type(forest).__name__}. For other fitted "
            "models, pass [(name, FrozenEstimator(model)), ...] as estimators."
        )
    # A BaggingClassifier gives each tree the columns estimators_features_ lists
    # (with max_features < 1 or bootstrap_features=True): a tree alone would read others.
    features = getattr(forest, "estimators_features_", None)
    all_columns = np.arange(forest.n_features_in_)
    members = []
    for index, tree in enumerate(trees):
        codes = np.asarray(getattr(tree, "classes_", []))
        if (
            not hasattr(tree, "predict_proba")
            or getattr(tree, "n_features_in_", None) != forest.n_features_in_
            or (features is not None and not np.array_equal(np.asarray(features[index]), all_columns))
            or codes.shape != classes.shape
            or not np.array_equal(codes, np.arange(len(classes)))
        ):
            raise TypeError(
                f"Tree {index} of the {type(forest).__name__} does not predict the codes "
                f"0 .. {len(classes) - 1} of its {len(classes)} classes from all "
                f"{forest.n_features_in_} features, as the trees of a random forest do "
                "(a BaggingClassifier can give a tree a subset, or a bootstrap sample, of the "
                "features, or a subset of the classes). Pass [(name, FrozenEstimator(model)), ...] "
                "as estimators instead."
            )
        member = _labelled(tree, classes, index)
        if hasattr(forest, "feature_names_in_") and not isinstance(member, Pipeline):
            member.feature_names_in_ = forest.feature_names_in_
        members.append((f"{prefix}_{index}", FrozenEstimator(member)))
    return members


def _labelled(model, classes, index):
    """A shallow copy of ``model``, which predicts the codes 0 .. K - 1, that
    predicts ``classes`` (in this order); of a pipeline, its last step is."""
    if isinstance(model, Pipeline):
        labelled = copy.copy(model)
        name, last = model.steps[-1]
        labelled.steps = [*model.steps[:-1], (name, _labelled(last, classes, index))]
        return labelled
    labelled = copy.copy(model)
    try:
        labelled.classes_ = classes
    except AttributeError:  # a property without a setter
        raise TypeError(
            f"Member {index} ({type(model).__name__}) cannot be given the labels: its classes_ "
            "cannot be set. Pass [(name, FrozenEstimator(model)), ...] of models that predict the "
            "labels of y as estimators instead."
        ) from None
    return labelled
