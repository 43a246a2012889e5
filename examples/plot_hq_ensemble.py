"""
================================================
HQ ensemble pruning against the full ensemble
================================================

An ensemble of ``M`` networks is usually more accurate than any one of
them, and ``M`` times as expensive. HQ (Wu & Liu) looks for a small team of
``S`` members that is as accurate as all ``M``: it grows candidate teams
level by level, from pairs upwards, dropping at each level the teams whose
members make the most similar mistakes (the lowest *focal diversity*), and
finally keeps a surviving team by its accuracy on held-out data (by default
the largest of the teams within one standard error of the best,
``final_choice="one_se"``).

Here the members are eight small MLPs pruned by DropNet to half their
units, each from its own seed. We train them once, then let
:class:`~sklearn_dropnet.HQEnsembleClassifier` choose teams among the
*already fitted* members (wrapped in
:class:`~sklearn.frozen.FrozenEstimator`), with HQ and with the usual
baselines, all on the same held-out data.
"""

# %%
# Three splits: to train the members, to choose the team, to test
# ----------------------------------------------------------------
# The team must be chosen on data the members were not trained on, and
# never on the test set.
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier, HQCandidatesDisplay, HQEnsembleClassifier

torch.set_num_threads(1)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
X_fit, X_select, y_fit, y_select = train_test_split(
    X_rest, y_rest, test_size=0.3, stratify=y_rest, random_state=0
)

# %%
# Eight pruned networks
# ---------------------
members = [
    DropNetClassifier(
        module__hidden_layer_sizes=(32, 16),
        prune_ratio=0.5,
        max_epochs=8,
        lr=0.01,
        random_state=seed,
    ).fit(X_fit, y_fit)
    for seed in range(8)
]
for i, member in enumerate(members):
    print(f"member {i}: test accuracy {member.score(X_test, y_test):.3f}")

# %%
# Choosing teams
# --------------
# When every member is a ``FrozenEstimator``, nothing is trained and all the
# data given to ``fit`` is used to choose the team. ``method="all"`` is the
# full ensemble; ``"top"`` takes the ``n_select`` most accurate members;
# ``"greedy"`` is Caruana et al.'s forward selection.
frozen = [(f"net{i}", FrozenEstimator(member)) for i, member in enumerate(members)]
params = [member.pruning_history_[-1]["params"] for member in members]

results = {}
for method in ["all", "top", "greedy", "hq"]:
    ensemble = HQEnsembleClassifier(estimators=frozen, n_select=4, method=method)
    ensemble.fit(X_select, y_select)
    results[method] = ensemble
    team = sorted(set(ensemble.selected_.tolist()))
    print(
        f"{method:>6}: members {team}, {sum(params[i] for i in team)} parameters, "
        f"test accuracy {ensemble.score(X_test, y_test):.3f}"
    )

# %%
# The teams HQ examined
# ---------------------
# Each point is a team HQ scored: its focal diversity (higher = members err
# on different samples) against the accuracy of its soft vote on the
# held-out data. Crosses are teams dropped as the least diverse of their
# size; teams containing them were never grown. The star is the chosen team.
hq = results["hq"]
n_subsets = sum(math.comb(8, size) for size in (2, 3, 4))
print(f"HQ scored {len(hq.candidates_['team'])} teams of the {n_subsets} of 2 to 4 members.")
display = HQCandidatesDisplay.from_estimator(hq)
display.ax_.set_title("HQ candidate teams (digits, 8 pruned MLPs)")
plt.show()
