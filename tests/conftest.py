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
