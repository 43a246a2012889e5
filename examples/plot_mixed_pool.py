"""
==========================================
A mixed pool: networks, models and trees
==========================================

:class:`~sklearn_dropnet.HQEnsembleClassifier` takes members of any kind
in one pool, as long as each predicts probabilities:

- DropNet networks of different shapes and prune ratios, trained by the
  ensemble itself;
- any scikit-learn classifier, a pipeline among them;
- models trained beforehand, wrapped in
  :class:`~sklearn.frozen.FrozenEstimator` so that they are not trained
  again;
- the trees of a random forest trained beforehand, through
  :func:`~sklearn_dropnet.ensemble.forest_members`.

HQ then picks a small team from the pool on held-out data. Every member
keeps its name, and ``set_params`` reaches its parameters as
``<name>__<parameter>``, as in :class:`~sklearn.ensemble.VotingClassifier`.
"""

# %%
# Data: one part for the models trained beforehand, one for the ensemble,
# one for testing
# -----------------------------------------------------------------------
# The ensemble trains its own members on 80% of the part it is given and
# chooses the team on the other 20%; the models trained beforehand must not
# have seen that part.
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier
from sklearn_dropnet.ensemble import forest_members

torch.set_num_threads(1)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_before, X_rest, y_before, y_rest = train_test_split(X, y, test_size=0.6, stratify=y, random_state=0)
X_ensemble, X_test, y_ensemble, y_test = train_test_split(
    X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0
)

# %%
# The pool
# --------
forest = RandomForestClassifier(n_estimators=6, max_depth=10, random_state=0).fit(X_before, y_before)
naive_bayes = GaussianNB().fit(X_before, y_before)

pool = [
    ("mlp_wide", DropNetClassifier(module__hidden_layer_sizes=(64,), prune_ratio=0.5,
                                   max_epochs=10, lr=0.02, random_state=0)),
    ("mlp_deep", DropNetClassifier(module__hidden_layer_sizes=(32, 32), prune_ratio=0.8,
                                   max_epochs=10, lr=0.02, random_state=1)),
    ("logistic", make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))),
    ("naive_bayes", FrozenEstimator(naive_bayes)),
    *forest_members(forest),  # tree_0 ... tree_5
]  # fmt: skip

# %%
# Members by name
# ---------------
# Any member's parameters are reachable, for ``set_params`` and for a grid
# search over the ensemble.
hq = HQEnsembleClassifier(estimators=pool, n_select=4, random_state=0)
print(hq.get_params()["mlp_deep__prune_ratio"], hq.get_params()["logistic__logisticregression__C"])
hq.set_params(mlp_deep__prune_ratio=0.7, logistic__logisticregression__C=1.0)

# %%
# The team
# --------
hq.fit(X_ensemble, y_ensemble)
names = list(hq.named_estimators_)
team = [names[i] for i in hq.selected_]
print("team:", team)
print(f"team of {len(team)}: test accuracy {hq.score(X_test, y_test):.3f}")
every_member = HQEnsembleClassifier(estimators=pool, method="all", random_state=0)
every_member.set_params(mlp_deep__prune_ratio=0.7, logistic__logisticregression__C=1.0)
print(f"all {len(names)}: test accuracy {every_member.fit(X_ensemble, y_ensemble).score(X_test, y_test):.3f}")

# %%
# Each member on the test data; the team's members in orange.
accuracy = [member.score(X_test, y_test) for member in hq.estimators_]
fig, ax = plt.subplots(layout="constrained", figsize=(7, 3.5))
colors = ["tab:orange" if name in team else "tab:blue" for name in names]
ax.bar(names, accuracy, color=colors)
ax.axhline(hq.score(X_test, y_test), color="tab:orange", linestyle="--", label="the team")
ax.set_ylim(0.5, 1.0)
ax.set_ylabel("test accuracy")
ax.tick_params(axis="x", labelrotation=60)
ax.legend(loc="lower right")
ax.set_title("A mixed pool and the team HQ chose from it")
plt.show()
