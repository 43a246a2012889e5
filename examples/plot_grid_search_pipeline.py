"""
==============================================
Choosing the prune ratio with a grid search
==============================================

:class:`~sklearn_dropnet.DropNetClassifier` is a scikit-learn estimator, so
it goes into a :class:`~sklearn.pipeline.Pipeline` and its ``prune_ratio``
(or any other parameter, including skorch-style ``module__*`` ones) can be
chosen by cross-validation with :class:`~sklearn.model_selection.GridSearchCV`.

A larger ``prune_ratio`` gives a smaller network and, past some point, a
less accurate one. The grid search below measures that trade-off with
3-fold cross-validation, then we choose the *smallest* network within one
percentage point of the best score, with a ``refit`` callable.
"""

# %%
# A pipeline: scaling, then DropNet
# ---------------------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_dropnet import DropNetClassifier

torch.set_num_threads(1)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipeline = make_pipeline(
    MinMaxScaler(),
    DropNetClassifier(
        module__hidden_layer_sizes=(64, 32),
        drop_fraction=0.3,  # larger steps than the paper's 0.2, to run fast
        max_epochs=6,
        lr=0.01,
        random_state=0,
    ),
)

# %%
# The search
# ----------
# Parameters of a pipeline step are addressed as ``<step>__<parameter>``.
# ``refit`` picks, among the ratios whose mean score is within one
# percentage point of the best, the one that prunes the most. (``n_jobs=2``
# would fit two candidates at a time.)
prune_ratios = [0.0, 0.5, 0.75, 0.9]


def most_pruned_within_one_point(cv_results):
    mean = cv_results["mean_test_score"]
    good_enough = np.flatnonzero(mean >= mean.max() - 0.01)
    ratios = np.asarray(cv_results["param_dropnetclassifier__prune_ratio"], dtype=float)
    return good_enough[np.argmax(ratios[good_enough])]


search = GridSearchCV(
    pipeline,
    {"dropnetclassifier__prune_ratio": prune_ratios},
    cv=3,
    refit=most_pruned_within_one_point,
)
search.fit(X_train, y_train)

chosen = search.best_params_["dropnetclassifier__prune_ratio"]
best = search.best_estimator_[-1]
print(f"chosen prune_ratio: {chosen}")
print(f"units left: {best.pruning_history_[-1]['units']} of {best.pruning_history_[0]['units']}")
print(f"test accuracy: {search.score(X_test, y_test):.3f}")

# %%
# Cross-validated accuracy against the prune ratio
# ------------------------------------------------
mean = search.cv_results_["mean_test_score"]
std = search.cv_results_["std_test_score"]
fig, ax = plt.subplots(layout="constrained")
ax.errorbar(prune_ratios, mean, yerr=std, marker="o", capsize=3)
ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen: {chosen}")
ax.set_xlabel("prune_ratio (share of hidden units removed)")
ax.set_ylabel("3-fold CV accuracy")
ax.legend()
plt.show()

# %%
# One fit already gives the whole curve
# -------------------------------------
# Each candidate above was pruned from scratch. A single fit to the largest
# ratio passes through every smaller one, and ``pruning_history_`` records
# the validation accuracy of each round: that is a cheaper, if noisier,
# first look (see :ref:`sphx_glr_auto_examples_plot_pruning_curve.py`). The
# grid search is what gives cross-validated scores and plugs into the rest
# of scikit-learn's model selection.
