"""
===================================
Saving and loading a pruned network
===================================

A pruned :class:`~sklearn_dropnet.DropNetClassifier` holds a network whose
layers are smaller than the ones its architecture was built with. Save the
whole estimator with :mod:`joblib` (or :mod:`pickle`): a state dict alone, as
skorch's ``save_params`` writes, cannot be loaded back into a freshly built
(dense) network, because the shapes no longer match.

This example trains a dense network, saves it, prunes it further with
:meth:`~sklearn_dropnet.DropNetClassifier.prune`, saves it again, and loads
it back.
"""

# %%
# Train the dense network and save it
# -----------------------------------
import tempfile
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier

torch.set_num_threads(1)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

folder = Path(tempfile.mkdtemp())
clf = DropNetClassifier(
    module__hidden_layer_sizes=(128, 64), prune_ratio=0.0, max_epochs=10, lr=0.005, random_state=0
)
clf.fit(X_train, y_train)
joblib.dump(clf, folder / "dense.joblib")

# %%
# Prune 80% of the units and save again
# -------------------------------------
# ``prune`` continues from the fitted estimator (here: from the dense
# network) instead of starting over.
clf.prune(X_train, y_train, prune_ratio=0.8)
joblib.dump(clf, folder / "pruned.joblib")

sizes = {name: (folder / f"{name}.joblib").stat().st_size / 1024 for name in ("dense", "pruned")}
for name, kib in sizes.items():
    print(f"{name:>6}: {kib:.0f} KiB on disk")

# %%
# Load it back
# ------------
# The loaded estimator predicts exactly as the one that was saved. Loading
# unpickles Python objects: only load files you trust.
loaded = joblib.load(folder / "pruned.joblib")
assert np.array_equal(loaded.predict(X_test), clf.predict(X_test))
print(f"test accuracy of the loaded network: {loaded.score(X_test, y_test):.3f}")
print(loaded.module_)

# %%
# Size on disk and parameters
# ---------------------------
# The file holds more than the pruned weights (the skorch net's training
# state comes along), so it shrinks less than the parameter count.
dense, pruned = clf.pruning_history_[0], clf.pruning_history_[-1]
fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5), layout="constrained")
left.bar(["dense", "pruned"], [dense["params"], pruned["params"]], color=["C0", "C1"])
left.set_title("parameters")
right.bar(list(sizes), list(sizes.values()), color=["C0", "C1"])
right.set_title("joblib file (KiB)")
plt.show()

# %%
# Using the network without this library
# --------------------------------------
# ``module_`` is a plain :class:`torch.nn.Module` that returns logits for the
# classes ``clf.classes_``; it can be saved and loaded whole with
# :func:`torch.save` and :func:`torch.load` (``weights_only=False``, since it
# is a whole module and not just tensors).
torch.save(loaded.module_, folder / "module.pt")
module = torch.load(folder / "module.pt", weights_only=False).eval()
with torch.no_grad():
    logits = module(torch.from_numpy(X_test))
assert np.array_equal(loaded.classes_[logits.argmax(dim=1).numpy()], loaded.predict(X_test))
