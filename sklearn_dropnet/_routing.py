"""skorch-style prefixed parameters for a scikit-learn estimator.

skorch routes ``module__hidden=...`` to the module, ``optimizer__momentum``
to the optimizer and so on; a user of :class:`~sklearn_dropnet.DropNetClassifier`
expects the same, and a grid search must reach them. :class:`RoutedParamsMixin`
stores such keyword arguments as attributes and adds them to scikit-learn's
``get_params`` / ``set_params``.
"""

__all__ = ["ROUTED_PREFIXES", "RoutedParamsMixin"]

# Keyword prefixes routed to skorch (``module__*`` goes to the module).
ROUTED_PREFIXES = (
    "module__",
    "criterion__",
    "optimizer__",
    "iterator_train__",
    "iterator_valid__",
    "callbacks__",
    "dataset__",
)


# scikit-learn's names for what goes to the module, the loss or the optimizer here.
SKLEARN_NAMES = {
    "class_weight": "class weights go to the loss: criterion__weight=compute_class_weight('balanced', "
    "classes=np.unique(y), y=y), one weight per class in the order of classes_",
    "hidden_layer_sizes": "module__hidden_layer_sizes=(256, 128) (the default MLP's)",
    "activation": "module__activation=torch.nn.ReLU (the default MLP's)",
    "dropout": "module__dropout=0.2 (the default MLP's)",
    "learning_rate_init": "lr=0.001 (the default)",
    "alpha": "optimizer__weight_decay=1e-4 (L2 penalty)",
    "weight_decay": "optimizer__weight_decay=1e-4",
    "momentum": "optimizer__momentum=0.9 (with optimizer=torch.optim.SGD)",
    "max_iter": "max_epochs=100 (the default: the most epochs of each round)",
    "n_iter_no_change": "patience=5 (the default)",
}


class RoutedParamsMixin:
    """``get_params``/``set_params`` that include the prefixed parameters."""

    def _store_routed(self, kwargs):
        """Keep the prefixed keyword arguments given to ``__init__`` as attributes."""
        for key, value in kwargs.items():
            if not key.startswith(ROUTED_PREFIXES):
                hint = f" Here: {SKLEARN_NAMES[key]}." if key in SKLEARN_NAMES else ""
                raise TypeError(
                    f"{type(self).__name__} got an unexpected keyword argument {key!r}; "
                    f"prefixed arguments must start with one of {ROUTED_PREFIXES}.{hint}"
                )
            setattr(self, key, value)

    def _routed_params(self):
        return {k: v for k, v in vars(self).items() if k.startswith(ROUTED_PREFIXES)}

    def _prefixed(self, prefix):
        """The parameters starting with ``prefix``, without it."""
        return {k[len(prefix) :]: v for k, v in self._routed_params().items() if k.startswith(prefix)}

    def get_params(self, deep=True):
        return {**super().get_params(deep=deep), **self._routed_params()}

    def set_params(self, **params):
        routed = {k: v for k, v in params.items() if k.startswith(ROUTED_PREFIXES)}
        for key, value in routed.items():
            setattr(self, key, value)
        return super().set_params(**{k: v for k, v in params.items() if k not in routed})
