"""
===============================================
DropNet in your own PyTorch training loop
===============================================

:class:`~sklearn_dropnet.DropNetClassifier` trains with skorch. A PyTorch
user with a training loop of their own -- a plain loop as here, Lightning, a
Trainer -- drives DropNet with the engine alone,
:class:`~sklearn_dropnet.pruning.DropNetPruner`: it scores the units, chooses
the weakest, removes them physically and keeps the rewind copy of the initial
weights; the loop trains. No scikit-learn estimator is involved.

This example prunes the estimator's default network (an MLP with hidden
layers of 256 and 128 units and BatchNorm) on the digits to 20% of its units,
fine-tuning a few epochs after each round.
"""

# %%
# Data, network and a training loop
# ---------------------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from sklearn_dropnet.models import MLP
from sklearn_dropnet.pruning import DropNetPruner

torch.manual_seed(0)
torch.set_num_threads(1)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    (X / 16).astype(np.float32), y, test_size=0.3, stratify=y, random_state=0
)
X_train, X_test = torch.from_numpy(X_train), torch.from_numpy(X_test)
y_train, y_test = torch.from_numpy(y_train), torch.from_numpy(y_test)

model = MLP(input_shape=(64,), n_classes=10)


def train(model, epochs=5):
    """A plain loop: Adam, batches of 32, rows reshuffled every epoch."""
    # A new optimizer every round: pruning replaces the layers' parameters.
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(X_train)).split(32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X_train[batch]), y_train[batch]).backward()
            optimizer.step()


def accuracy(model):
    model.eval()
    with torch.no_grad():
        return (model(X_test).argmax(dim=1) == y_test).float().mean().item()


# %%
# The rounds
# ----------
# Make the pruner before training: it keeps a copy of the initial weights
# (for ``restart="rewind"``). Each round scores every unit by its mean
# absolute activation on the training data, removes the lowest 20% of each
# layer's survivors, and fine-tunes what is left (``restart="none"``).
pruner = DropNetPruner(model, X_train[:2])
train(model, epochs=10)
pruner.record(test_accuracy=accuracy(model))
rng = np.random.default_rng(0)

while n_drop := pruner.units_to_drop(prune_ratio=0.8, drop_fraction=0.2):
    scores = pruner.score(lambda: X_train.split(256), "activation")
    drop = pruner.choose(scores, n_drop, scope="layer", rng=rng)
    model = pruner.remove(drop, restart="none")  # train this network from now on
    train(model)
    pruner.record(test_accuracy=accuracy(model))

for record in pruner.history:
    print(
        f"round {record['round']:2d}: {record['units']:3d} units {record['units_per_layer']}, "
        f"{record['params']:6,d} parameters, test accuracy {record['test_accuracy']:.3f}"
    )

# %%
# Accuracy against size
# ---------------------
# The pruned network is a plain ``nn.Module`` with smaller layers: save it
# with ``torch.save``, export it, or keep training it in the same loop.
params = [record["params"] for record in pruner.history]
accuracies = [record["test_accuracy"] for record in pruner.history]
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(params, accuracies, marker="o")
ax.set_xscale("log")
ax.invert_xaxis()
ax.set_xlabel("parameters (log scale)")
ax.set_ylabel("test accuracy")
ax.set_title("DropNet rounds in a plain PyTorch loop")
fig.tight_layout()
plt.show()
