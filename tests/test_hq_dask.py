"""HQEnsembleClassifier on a Dask cluster of worker processes: errors that
name the member instead of a hang, torch threads from each worker's cores."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from sklearn_dropnet import HQEnsembleClassifier
from sklearn_dropnet.ensemble._parallel import jobs_per_host, worker_threads

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def process_cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        yield client


@pytest.mark.slow
def test_a_failing_member_is_named(process_cluster):
    X, y = load_iris(return_X_y=True)
    members = [("nb", GaussianNB()), ("bad_lr", LogisticRegression(C=-1.0))]
    hq = HQEnsembleClassifier(estimators=members, n_select=2, n_jobs=2, random_state=0)
    with joblib.parallel_config(backend="dask"):
        with pytest.raises(ValueError, match=r"Fitting member 1 \('bad_lr', LogisticRegression\) failed: .*'C'"):
            hq.fit(X, y)


@pytest.mark.slow
def test_each_worker_caps_torch_threads_from_its_own_cores(process_cluster):
    with joblib.parallel_config(backend="dask"):
        jobs = jobs_per_host(2)
    workers = process_cluster.scheduler_info()["workers"].values()
    (host,) = {worker["host"] for worker in workers}
    assert jobs == {host: 2}  # two workers of one thread on this machine
    cores = process_cluster.submit(joblib.cpu_count, pure=False).result()
    for jobs_there, expected in (({host: 2}, cores // 2), ({host: 1}, cores), ({None: 3}, cores // 3)):
        # computed in the worker, from the cores it sees and the jobs on its host
        threads = process_cluster.submit(worker_threads, jobs_there, pure=False).result()
        assert threads == max(1, expected)


SCRIPT = """
import pickle

import numpy as np
import torch
from joblib import parallel_config
from sklearn.datasets import load_digits
from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier


class Net(torch.nn.Module):  # defined in the script: the workers get it by value
    def __init__(self, input_shape=(64,), n_classes=10, hidden_layer_sizes=(8,)):
        super().__init__()
        self.hidden = torch.nn.Linear(input_shape[0], hidden_layer_sizes[0])
        self.act = torch.nn.ReLU()
        self.out = torch.nn.Linear(hidden_layer_sizes[0], n_classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


class Handle:  # what cannot be pickled (an open file, a device handle)
    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("a Handle cannot be pickled")


class NetWithHandle(Net):
    def __init__(self, input_shape=(64,), n_classes=10, hidden_layer_sizes=(8,)):
        super().__init__(input_shape, n_classes, hidden_layer_sizes)
        self.handle = Handle()


if __name__ == "__main__":
    from dask.distributed import Client, LocalCluster

    X, y = load_digits(return_X_y=True)
    X, y = (X[:300] / 16).astype(np.float32), y[:300]
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster), parallel_config(backend="dask"):
        for module in (Net, NetWithHandle):
            member = DropNetClassifier(
                module=module, max_epochs=1, prune_ratio=0.5, drop_fraction=0.5, validation_fraction=0.0
            )
            hq = HQEnsembleClassifier(member, n_estimators=2, n_select=2, n_jobs=2, random_state=0)
            try:
                hq.fit(X, y)
            except Exception as error:
                print("RAISED", type(error).__name__, isinstance(error, pickle.PicklingError), error)
            else:
                print("FITTED", all(type(m.module_) is Net for m in hq.estimators_))
"""


@pytest.mark.slow
def test_a_network_class_in_main_travels_and_an_unpicklable_member_raises_instead_of_hanging(tmp_path):
    """The script's class comes back from Dask's workers. A member that cannot be pickled
    is named; before, the workers logged "Failed to serialize" and the fit waited forever."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(  # a hang fails the test by TimeoutExpired
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FITTED True" in result.stdout, result.stdout + result.stderr[-3000:]
    assert "RAISED UnreturnableMemberError True The fitted member" in result.stdout, (
        result.stdout + result.stderr[-3000:]
    )
    assert "DropNetClassifier) cannot be sent back from its worker process" in result.stdout
    assert "TypeError: a Handle cannot be pickled" in result.stdout
    assert np.any([f"member {i} ('estimator_{i}'" in result.stdout for i in (0, 1)])
