import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Tiny networks run several times faster on one thread than on two here
# (OpenMP start-up costs dominate); tests that measure parallelism set their
# own thread counts.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


@pytest.fixture(scope="session")
def digits_split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def _simulated_members(n_members, n_samples=300, n_classes=5, seed=0, skill=(0.6, 0.85)):
    """Class probabilities of members that are right ~60-85% of the time.

    Returns ``probas`` (members, samples, classes), their labels and ``y``.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    probas = rng.dirichlet(np.ones(n_classes), size=(n_members, n_samples))
    skill = rng.uniform(*skill, size=(n_members, 1))
    right = rng.random((n_members, n_samples)) < skill
    probas[right, np.broadcast_to(y, right.shape)[right]] += 1.5
    probas /= probas.sum(axis=2, keepdims=True)
    return probas, probas.argmax(axis=2), y


@pytest.fixture(scope="session")
def simulated_members():
    """Held-out predictions of simulated members, for the selection tests."""
    return _simulated_members
