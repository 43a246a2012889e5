"""The DropNet pruning engine: find a network's units, score them, remove them.

It works on any ``torch.nn.Module`` and imports neither scikit-learn nor
skorch; :class:`~sklearn_dropnet.DropNetClassifier` is a scikit-learn
estimator built on it.
"""
