"""
=========================================
Pruning curve: DropNet against random
=========================================

DropNet removes, round by round, the hidden units with the lowest mean
absolute activation on the training data, and retrains what is left. This
example prunes the same small MLP on the digits twice -- once ranking units
by DropNet's score, once at random (the paper's control) -- and plots the
validation accuracy after every round against the share of units left.

The networks and the number of epochs are kept small so that the example
runs in seconds on a CPU; the curves are noisy for the same reason (the
validation split holds 135 images).
"""

# %%
# Data and settings
# -----------------
# The 8x8 digits, pixels scaled to [0, 1], with a stratified test split that
# the pruning never sees. Tiny networks train faster on one CPU thread than
# on several.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier, PruningCurveDisplay
from sklearn_dropnet.plotting import plot_units_per_layer

torch.set_num_threads(1)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

settings = dict(
    module__hidden_layer_sizes=(64, 32),
    prune_ratio=0.9,  # stop when 10% of the 96 hidden units are left
    drop_fraction=0.2,  # the paper's p: drop 20% of the survivors per round
    max_epochs=10,
    lr=0.005,
    random_state=0,
)

# %%
# Prune with DropNet and at random
# --------------------------------
# ``unit_score`` picks the ranking; everything else (initial weights,
# validation split, batch order) is the same for both runs.
dropnet = DropNetClassifier(unit_score="activation", **settings).fit(X_train, y_train)
random = DropNetClassifier(unit_score="random", **settings).fit(X_train, y_train)

for name, clf in [("DropNet", dropnet), ("random", random)]:
    last = clf.pruning_history_[-1]
    print(
        f"{name:>8}: {last['units']} units left ({last['fraction_left']:.0%}), "
        f"{last['params']} parameters, test accuracy {clf.score(X_test, y_test):.3f}"
    )

# %%
# The pruning curves
# ------------------
# Round 0 is the dense network. :class:`~sklearn_dropnet.PruningCurveDisplay`
# draws a run; give the second one the first one's axes to compare them.
display = PruningCurveDisplay.from_estimator(dropnet, name="DropNet (mean |activation|)")
PruningCurveDisplay.from_estimator(random, ax=display.ax_, name="random", linestyle="--")
display.ax_.set_title("Digits, MLP 64-32: validation accuracy while pruning")
plt.show()

# %%
# Against the parameters
# ----------------------
# ``x="params"`` puts the parameters left on the x axis, on a log scale: they
# shrink faster than the units, since a weight matrix shrinks with both of
# its layers.
fig, ax = plt.subplots(layout="constrained")
for name, clf in [("DropNet", dropnet), ("random", random)]:
    PruningCurveDisplay.from_estimator(clf, x="params", ax=ax, name=name)
ax.set_title("Validation accuracy against parameters")
plt.show()

# %%
# Where the units went
# --------------------
# With ``scope="layer"`` (the default) every layer loses the same share of its
# units each round; :func:`~sklearn_dropnet.plotting.plot_units_per_layer`
# compares the dense and the pruned network layer by layer.
fig, ax = plt.subplots(layout="constrained")
plot_units_per_layer(dropnet, ax=ax)
ax.set_title("Units per hidden layer")
plt.show()

# %%
# The history as a table
# ----------------------
# ``pruning_history_`` holds one record per round; with pandas installed,
# ``pandas.DataFrame(clf.pruning_history_)`` turns it into a data frame.
print("round  units  params   MACs  valid acc  epochs")
for record in dropnet.pruning_history_:
    print(
        f"{record['round']:>5}  {record['units']:>5}  {record['params']:>6}  "
        f"{record['macs']:>5}  {record['valid_accuracy']:>9.3f}  {record['epochs']:>6}"
    )
