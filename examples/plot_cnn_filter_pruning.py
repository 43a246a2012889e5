"""
=====================================
Filter pruning of a CNN
=====================================

DropNet prunes the filters of convolutional layers the same way as the
nodes of dense layers: a filter's score is its absolute activation
(after the ReLU) averaged over its spatial positions and then over the
training images, and the lowest-scoring filters are removed *physically* --
the pruned ``Conv2d`` has fewer output channels and the next layer fewer
input channels, so the network gets smaller and cheaper, not just sparser.

This example prunes the paper's Model B (two 3x3 convolutions with max
pooling, then a dense layer; the paper trains it on MNIST) on the 8x8
digits as one-channel images, and compares the dense and pruned networks.
"""

# %%
# Images and the model
# --------------------
# :func:`~sklearn_dropnet.datasets.load_digits_images` returns the digits as
# float32 images of shape ``(n, 1, 8, 8)`` in [0, 1].
import matplotlib.pyplot as plt
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from sklearn_dropnet import DropNetClassifier, PruningCurveDisplay
from sklearn_dropnet.datasets import load_digits_images
from sklearn_dropnet.models import ModelB
from sklearn_dropnet.plotting import plot_units_per_layer

torch.set_num_threads(1)

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(X_train.shape)

# %%
# Prune 75% of the filters
# ------------------------
# ``module=ModelB`` is a class: the estimator builds it with the shape of the
# images and the number of classes, and with ``module__channels``.
clf = DropNetClassifier(
    module=ModelB,
    module__channels=(16, 16),
    prune_ratio=0.75,
    max_epochs=8,
    lr=0.005,
    random_state=0,
)
clf.fit(X_train, y_train)

dense, pruned = clf.pruning_history_[0], clf.pruning_history_[-1]
print(f"filters:    {dense['units']} -> {pruned['units']}")
print(f"parameters: {dense['params']} -> {pruned['params']}")
print(f"MACs:       {dense['macs']} -> {pruned['macs']} per image")
print(f"test accuracy of the pruned network: {clf.score(X_test, y_test):.3f}")

# %%
# The pruned network is a smaller ``nn.Module``
# ---------------------------------------------
# Its convolutions really have fewer channels.
print([(m.in_channels, m.out_channels) for m in clf.module_.modules() if isinstance(m, nn.Conv2d)])

# %%
# Accuracy while pruning, and the filters left per layer
# ------------------------------------------------------
# ``x="macs"`` puts the cost of a forward pass on the x axis instead of the
# share of units, on a log scale.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
PruningCurveDisplay.from_estimator(clf, x="macs", ax=left, annotate=True)
left.set_title("Validation accuracy against compute")
plot_units_per_layer(clf, ax=right)
right.set_title("Filters per convolution")
plt.show()
