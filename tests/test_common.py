"""scikit-learn's common estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_dropnet import DropNetClassifier

# Small and quick, but accurate enough for check_classifiers_train.
FAST_DROPNET = DropNetClassifier(
    max_epochs=30,
    lr=0.01,
    prune_ratio=0.3,
    validation_fraction=0.0,
    module__hidden_layer_sizes=(16,),
    random_state=0,
)

EXPECTED_FAILURES = {
    "check_no_attributes_set_in_init": (
        "skorch-style prefixed parameters (module__*, optimizer__*, ...) arrive "
        "through **kwargs and are stored as attributes; the check only knows "
        "the named __init__ arguments"
    ),
    "check_do_not_raise_errors_in_init_or_set_params": (
        "the check passes a parameter literally named 'kwargs' (the catch-all "
        "for prefixed parameters), which __init__ rejects with a TypeError as "
        "Python and skorch do for any unknown keyword"
    ),
}


@parametrize_with_checks([FAST_DROPNET], expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
