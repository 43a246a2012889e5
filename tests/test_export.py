"""export(): ONNX, torch.export and TorchScript files that run without this package."""

import copy
import json
import os
import re
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier, _export
from sklearn_dropnet.exceptions import UnitRemovalWarning
from sklearn_dropnet.models import ModelB, ResNet18

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SUFFIXES = (".onnx", ".pt2", ".pt")

# Runs in a fresh interpreter: loads each file with onnxruntime or torch
# alone (importing sklearn_dropnet there fails) and saves what it computes.
RUNNER = r"""
import importlib.abc, json, sys
import numpy as np

class NoSklearnDropnet(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sklearn_dropnet":
            raise ImportError("sklearn_dropnet must not be needed to run an exported file")

sys.meta_path.insert(0, NoSklearnDropnet())
X = np.load(sys.argv[1])
results = {}
for path in sys.argv[3:]:
    if path.endswith(".onnx"):
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]
        assert names == ["probabilities", "class_index"], names
        assert [i.name for i in session.get_inputs()] == ["input"]
        proba, index = session.run(None, {"input": X})
        classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    else:
        import torch
        extra = {"classes.json": ""}
        if path.endswith(".pt2"):
            network = torch.export.load(path, extra_files=extra).module()
        else:
            network = torch.jit.load(path, _extra_files=extra)
        with torch.no_grad():
            proba, index = (t.numpy() for t in network(torch.from_numpy(X)))
        classes = json.loads(extra["classes.json"])
    results[path] = proba
    results[path + ":labels"] = np.asarray(classes)[index]
assert "sklearn_dropnet" not in sys.modules
np.savez(sys.argv[2], **results)
"""


def run_elsewhere(paths, X, tmp_path):
    """What each exported file computes on ``X``, in a process without sklearn_dropnet."""
    inputs, outputs = tmp_path / "X.npy", tmp_path / "out.npz"
    np.save(inputs, X)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(inputs), str(outputs), *map(str, paths)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(outputs) as saved:
        return {key: saved[key] for key in saved.files}


def export_all(model, tmp_path, stem="model"):
    paths = [model.export(tmp_path / f"{stem}{suffix}") for suffix in SUFFIXES]
    assert all(path.is_file() for path in paths)
    return paths


@pytest.fixture(scope="module")
def images(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    return X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8), y_train, y_test


@pytest.fixture(scope="module")
def mlp(digits_split):
    X_train, _, y_train, _ = digits_split
    return DropNetClassifier(
        module__hidden_layer_sizes=(32, 16), prune_ratio=0.5, max_epochs=3, random_state=0
    ).fit(X_train, y_train)


@pytest.fixture(scope="module")
def cnn(images):
    X_train, _, y_train, _ = images
    return DropNetClassifier(
        module=ModelB, module__channels=(8, 8), prune_ratio=0.5, max_epochs=2, random_state=0
    ).fit(X_train, y_train)


@pytest.fixture(scope="module")
def resnet(images):
    X_train, _, y_train, _ = images
    return DropNetClassifier(
        module=ResNet18, module__width=4, prune_ratio=0.3, max_epochs=1, random_state=0
    ).fit(X_train[:600], y_train[:600])


def test_network_files_give_predict_proba_elsewhere(mlp, cnn, resnet, digits_split, images, tmp_path):
    """An MLP, a CNN with BatchNorm and a ResNet, each pruned, in the three formats."""
    for name, model, X_test in (
        ("mlp", mlp, digits_split[1]),
        ("cnn", cnn, images[1]),
        ("resnet", resnet, images[1]),
    ):
        assert model.pruning_history_[-1]["fraction_left"] < 1  # really pruned
        paths = export_all(model, tmp_path, stem=name)
        got = run_elsewhere(paths, X_test, tmp_path)
        expected = model.predict_proba(X_test)
        for path in paths:
            np.testing.assert_allclose(got[str(path)], expected, rtol=0, atol=1e-5, err_msg=str(path))
            np.testing.assert_array_equal(got[f"{path}:labels"], model.predict(X_test), err_msg=str(path))


@pytest.fixture(scope="module")
def team(images):
    """An HQ ensemble of an MLP and a CNN with BatchNorm, both pruned, soft voting."""
    X_train, _, y_train, _ = images
    members = [
        ("mlp", DropNetClassifier(module__hidden_layer_sizes=(24,), prune_ratio=0.3, max_epochs=2)),
        ("cnn", DropNetClassifier(module=ModelB, module__channels=(4, 8), prune_ratio=0.3, max_epochs=2)),
    ]
    return HQEnsembleClassifier(estimators=members, method="all", random_state=0).fit(X_train, y_train)


def with_team(hq, selected, voting="soft"):
    """``hq`` with another team (as greedy selection with repeats would choose)."""
    hq = copy.copy(hq)
    hq.selected_, hq.voting = np.asarray(selected), voting
    return hq


@pytest.mark.parametrize("selected", [[0, 1], [0, 1, 1]], ids=["once-each", "cnn-twice"])
def test_team_file_gives_the_team_predict_proba_elsewhere(team, images, selected, tmp_path):
    _, X_test, _, _ = images
    hq = with_team(team, selected)
    paths = export_all(hq, tmp_path)
    got = run_elsewhere(paths, X_test, tmp_path)
    expected = hq.predict_proba(X_test)
    # Weighted: not the plain mean of the two members.
    plain_mean = np.mean([member.predict_proba(X_test) for member in hq.estimators_], axis=0)
    assert (len(selected) == 2) == np.allclose(expected, plain_mean)
    for path in paths:
        np.testing.assert_allclose(got[str(path)], expected, rtol=0, atol=1e-5, err_msg=str(path))
        np.testing.assert_array_equal(got[f"{path}:labels"], hq.predict(X_test), err_msg=str(path))


def test_hard_voting_team_file_gives_the_vote_shares(team, images, tmp_path):
    _, X_test, _, _ = images
    hq = with_team(team, [0, 1, 1], voting="hard")
    path = hq.export(tmp_path / "team.onnx")
    session = onnxruntime.InferenceSession(str(path))
    shares, index = session.run(None, {"input": X_test})
    votes, counts = hq._team_votes(X_test)
    np.testing.assert_allclose(shares, votes / counts.sum(), atol=1e-6)
    np.testing.assert_array_equal(hq.classes_[index], hq.predict(X_test))
    # The CNN's two votes outweigh the MLP's one: its label wins everywhere.
    np.testing.assert_array_equal(hq.predict(X_test), hq.estimators_[1].predict(X_test))
    assert set(np.round(shares * 3, 6).ravel()) <= {0.0, 1.0, 2.0, 3.0}


def test_weights_of_a_member_chosen_twice(team):
    _, outputs, weights, voting = with_team(team, [1, 0, 1])._exported_networks()
    assert weights == [1, 2] and outputs == ["softmax", "softmax"] and voting == "soft"


def test_frozen_members_export(team, images, tmp_path):
    X_train, X_test, y_train, _ = images
    frozen = [(name, FrozenEstimator(member)) for name, member in team.named_estimators_.items()]
    hq = HQEnsembleClassifier(estimators=frozen, method="all").fit(X_train, y_train)
    session = onnxruntime.InferenceSession(str(hq.export(tmp_path / "team.onnx")))
    np.testing.assert_allclose(session.run(None, {"input": X_test})[0], hq.predict_proba(X_test), atol=1e-5)


def test_batch_dimension_is_dynamic(mlp, digits_split, tmp_path):
    X_test = digits_split[1]
    path = mlp.export(tmp_path / "model.onnx")
    model = onnx.load(path)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.HasField("dim_value")
    session = onnxruntime.InferenceSession(str(path))
    for rows in (1, 7, len(X_test)):
        proba, index = session.run(None, {"input": X_test[:rows]})
        assert proba.shape == (rows, 10) and index.shape == (rows,)
        np.testing.assert_allclose(proba, mlp.predict_proba(X_test[:rows]), atol=1e-5)


def test_nll_loss_network_outputs_probabilities(digits_split, tmp_path):
    """With NLLLoss the module returns probabilities: no softmax in the file."""
    X_train, X_test, y_train, _ = digits_split
    network = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10), nn.Softmax(dim=1))
    clf = DropNetClassifier(network, criterion=nn.NLLLoss, prune_ratio=0.25, max_epochs=2, random_state=0)
    clf.fit(X_train, y_train)
    assert clf._exported_networks()[1] == ["identity"]
    path = clf.export(tmp_path / "model.onnx")
    softmaxes = [node for node in onnx.load(path).graph.node if node.op_type == "Softmax"]
    assert len(softmaxes) == 1  # the module's own, not a second one
    proba, _ = onnxruntime.InferenceSession(str(path)).run(None, {"input": X_test})
    np.testing.assert_allclose(proba, clf.predict_proba(X_test), atol=1e-5)


def test_string_labels_travel_in_the_file(digits_split, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = DropNetClassifier(module__hidden_layer_sizes=(16,), prune_ratio=0.2, max_epochs=1, random_state=0)
    clf.fit(X_train, names[y_train])
    onnx_path, pt2_path, pt_path = export_all(clf, tmp_path)
    session = onnxruntime.InferenceSession(str(onnx_path))
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == clf.classes_.tolist()
    _, index = session.run(None, {"input": X_test})
    np.testing.assert_array_equal(np.asarray(json.loads(meta["classes"]))[index], clf.predict(X_test))
    for path in (pt2_path, pt_path):
        with zipfile.ZipFile(path) as archive:
            stored = [name for name in archive.namelist() if name.endswith("classes.json")]
            assert json.loads(archive.read(stored[0])) == clf.classes_.tolist()


def test_date_labels_are_stored_as_dates_not_as_nanoseconds(digits_split, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    days = np.arange("2020-01-01", "2020-01-11", dtype="datetime64[D]").astype("datetime64[ns]")
    clf = DropNetClassifier(module__hidden_layer_sizes=(16,), prune_ratio=0.2, max_epochs=1, random_state=0)
    clf.fit(X_train, days[y_train])
    session = onnxruntime.InferenceSession(str(clf.export(tmp_path / "dates.onnx")))
    stored = np.asarray(json.loads(session.get_modelmeta().custom_metadata_map["classes"]), dtype="datetime64[ns]")
    np.testing.assert_array_equal(stored, clf.classes_)
    _, index = session.run(None, {"input": X_test})
    np.testing.assert_array_equal(stored[index], clf.predict(X_test))


def test_mlp_batchnorm_is_folded_into_the_linear_layers(mlp, tmp_path):
    """One matrix product per layer, nothing between: the file is what a device should run."""
    path = mlp.export(tmp_path / "model.onnx")
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert "BatchNormalization" not in ops
    assert ops.count("Gemm") + ops.count("MatMul") == 3
    # The softmax's rows sum to one: no renormalisation after it.
    assert ops.count("Softmax") == 1 and "ReduceSum" not in ops and "Div" not in ops


# How a layer's weight is computed: name -> wrapper of the layer.
COMPUTED_WEIGHTS = {
    "weight_norm": nn.utils.parametrizations.weight_norm,
    "hook_weight_norm": nn.utils.weight_norm,
    "spectral_norm": nn.utils.parametrizations.spectral_norm,
    "orthogonal": nn.utils.parametrizations.orthogonal,
}


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", COMPUTED_WEIGHTS)
def test_computed_weights_are_stored_as_weights(digits_split, tmp_path, name):
    """A weight norm or another parametrization is computed once, at export: the file holds
    the weights, not the operations that compute them (orthogonal's could not be written
    as ONNX at all)."""
    X_train, X_test, y_train, _ = digits_split
    torch.manual_seed(0)
    net = nn.Sequential(COMPUTED_WEIGHTS[name](nn.Linear(64, 16)), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnitRemovalWarning)  # spectral_norm, orthogonal: left unpruned
        clf = DropNetClassifier(module=net, prune_ratio=0.5, max_epochs=2, random_state=0).fit(X_train, y_train)
    before = clf.predict_proba(X_test)
    paths = export_all(clf, tmp_path)
    # The torch.export program computed the weights at every call (aten._weight_norm; spectral_norm's mv, vdot, div).
    program = torch.export.load(paths[1])
    ops = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert ops == {"aten.linear.default", "aten.relu.default", "aten.softmax.int", "aten.argmax.default"}, ops
    got = run_elsewhere(paths, X_test, tmp_path)
    for path in paths:
        np.testing.assert_allclose(got[str(path)], before, rtol=0, atol=1e-5, err_msg=str(path))
    # The estimator's own network keeps its computed weights.
    layer = clf.module_[0]
    assert parametrize.is_parametrized(layer) if name != "hook_weight_norm" else hasattr(layer, "weight_v")
    np.testing.assert_array_equal(clf.predict_proba(X_test), before)


def test_unfitted_estimators_refuse(tmp_path):
    for model in (DropNetClassifier(), HQEnsembleClassifier()):
        with pytest.raises(NotFittedError):
            model.export(tmp_path / "model.onnx")


@pytest.mark.parametrize("name", ["model.tflite", "model", "model.ONNX.txt"])
def test_unknown_suffix_is_refused(mlp, tmp_path, name):
    with pytest.raises(ValueError, match=r"the format follows the file's suffix, one of \.onnx, \.pt2, \.pt"):
        mlp.export(tmp_path / name)
    assert not (tmp_path / name).exists()


def test_suffix_is_case_insensitive(mlp, tmp_path):
    path = mlp.export(tmp_path / "MODEL.PT2")
    assert path.is_file()


def test_missing_folder_is_named(mlp, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mlp.export(tmp_path / "nowhere" / "model.onnx")


def test_a_folder_nothing_can_be_written_in_is_named(mlp, tmp_path, monkeypatch):
    """Not the hidden folder export writes in first (root writes anywhere: the refusal is simulated)."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", os.fspath(tmp_path / ".export-x1"))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    message = rf"Cannot export to '.*model\.onnx': no file can be written in the folder {re.escape(str(tmp_path))} \(Permission denied\)"
    with pytest.raises(PermissionError, match=message) as error:
        mlp.export(tmp_path / "model.onnx")
    assert ".export-" not in str(error.value)


def test_a_tree_in_the_team_is_named(digits_split, tmp_path):
    X_train, _, y_train, _ = digits_split
    hq = HQEnsembleClassifier(
        estimators=[
            ("net", DropNetClassifier(module__hidden_layer_sizes=(16,), prune_ratio=0.2, max_epochs=1)),
            ("left-out", "drop"),  # not in estimators_: the names still match
            ("tree", DecisionTreeClassifier(max_depth=3)),
        ],
        method="all",
        random_state=0,
    ).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"member 'tree' \(estimators_\[1\]\) is a DecisionTreeClassifier"):
        hq.export(tmp_path / "team.onnx")
    assert not (tmp_path / "team.onnx").exists()


def test_a_tree_left_out_of_the_team_does_not_matter(digits_split, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    net = DropNetClassifier(module__hidden_layer_sizes=(16,), prune_ratio=0.2, max_epochs=1, random_state=0)
    hq = HQEnsembleClassifier(
        estimators=[("net", net), ("tree", DecisionTreeClassifier(max_depth=1))],
        method="top",
        n_select=1,
        random_state=0,
    ).fit(X_train, y_train)
    assert hq.selected_.tolist() == [0]
    path = hq.export(tmp_path / "team.pt2")
    with torch.no_grad():
        proba, _ = torch.export.load(path).module()(torch.from_numpy(X_test))
    np.testing.assert_allclose(proba.numpy(), hq.predict_proba(X_test), atol=1e-5)


def test_missing_onnx_names_the_extra(mlp, tmp_path, monkeypatch):
    monkeypatch.setattr(_export, "_missing", lambda *modules: ["onnxscript"])
    with pytest.raises(ImportError, match=r'pip install "sklearn-dropnet\[export\]"'):
        mlp.export(tmp_path / "model.onnx")
    mlp.export(tmp_path / "model.pt2")  # needs torch alone


def test_a_file_that_disagrees_is_removed(mlp, tmp_path, monkeypatch):
    monkeypatch.setattr(
        type(mlp), "_exported_reference", lambda self, X: np.full((len(X), 10), 0.1)
    )
    with pytest.raises(RuntimeError, match="so it was not written") as caught:
        mlp.export(tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    # The likely causes, not "Please report this with the model".
    message = str(caught.value)
    assert "Likely causes: randomness at inference" in message and "report" not in message
    assert "use .pt2" in message


class TokenCNN(nn.Module):
    """A text CNN: token ids (given as floats) through an embedding."""

    def __init__(self, n_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.conv = nn.Conv1d(8, 16, 3, padding=1)
        self.out = nn.Linear(16, n_classes)

    def forward(self, x):
        hidden = torch.relu(self.conv(self.embedding(x.long()).transpose(1, 2)))
        return self.out(hidden.amax(dim=-1))


@pytest.fixture(scope="module")
def token_cnn():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 20, size=(200, 12)).astype(np.float32)
    y = (X == 3).any(axis=1).astype(int)
    return DropNetClassifier(module=TokenCNN, prune_ratio=0.5, max_epochs=2, random_state=0).fit(X, y), X


def test_a_network_that_takes_only_some_inputs_is_checked_on_the_rows_given(token_cnn, tmp_path):
    clf, X = token_cnn
    # Random standard-normal inputs are negative token ids: the check cannot run.
    with pytest.raises(ValueError, match=r"Cannot check the exported ONNX file, so it was not written: .*"
                       r"random standard-normal inputs \(IndexError.*export\(path, X=X_test\[:16\]\)"):
        clf.export(tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
    paths = [clf.export(tmp_path / name, X=X[:40]) for name in ("model.onnx", "model.pt2")]
    assert all(path.exists() for path in paths)
    got = run_elsewhere(paths, X[100:], tmp_path)
    for path in paths:
        np.testing.assert_allclose(got[str(path)], clf.predict_proba(X[100:]), rtol=0, atol=1e-5, err_msg=str(path))


def test_a_torchscript_trace_that_fails_on_random_inputs_gets_the_same_advice(token_cnn, tmp_path):
    clf, X = token_cnn
    with pytest.raises(ValueError, match=r"Cannot export DropNetClassifier as a TorchScript file: its network failed "
                                         r"on random standard-normal inputs \(IndexError: index out of range in self\)\. "
                                         r"Pass rows it accepts: export\(path, X=X_test\[:16\]\)\."):  # fmt: skip
        clf.export(tmp_path / "model.pt")
    assert clf.export(tmp_path / "model.pt", X=X[:40]).exists()


class Squeezed(nn.Module):
    """Ends in squeeze(), which also drops the batch dimension of a single row."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.conv, self.out = nn.Conv2d(1, 8, 3, padding=1), nn.Linear(8, n_classes)

    def forward(self, x):
        return self.out(F.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1).squeeze())


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_a_file_that_fails_on_one_row_says_so_with_the_cause(images, tmp_path, suffix):
    X_train, _, y_train, _ = images
    clf = DropNetClassifier(module=Squeezed, prune_ratio=0.5, max_epochs=1, random_state=0).fit(X_train[:200], y_train[:200])
    with pytest.raises(ValueError, match=r"file ran on 16 rows of the X given but failed on a batch of one row "
                                         r"\((RuntimeError|IndexError): Dimension out of range .*\), so it was not written\. "
                                         r"A deployed network must take any batch size"):  # fmt: skip
        clf.export(tmp_path / f"model{suffix}", X=X_train[:16])
    assert not (tmp_path / f"model{suffix}").exists()


def test_the_rows_to_check_on_may_be_a_dataset_as_predict_takes(token_cnn, tmp_path):
    from torch.utils.data import TensorDataset

    clf, X = token_cnn
    data = TensorDataset(torch.as_tensor(X[:40]), torch.zeros(40, dtype=torch.long))
    path = clf.export(tmp_path / "model.onnx", X=data)
    got = run_elsewhere([path], X[100:], tmp_path)
    np.testing.assert_allclose(got[str(path)], clf.predict_proba(X[100:]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("rows", [np.zeros((4, 64), np.float32), np.zeros((0, 1, 8, 8), np.float32), [["a"]]])
def test_check_rows_of_another_shape_are_refused(cnn, tmp_path, rows):
    with pytest.raises(ValueError, match=r"export's X must be .*rows of shape \(n_samples, \*\(1, 8, 8\)\)"):
        cnn.export(tmp_path / "model.pt2", X=rows)
    assert not (tmp_path / "model.pt2").exists()


def test_an_unexportable_network_gets_a_clear_error(digits_split, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Could not guard on data-dependent expression\nlong trace ...")

    monkeypatch.setattr(torch.export, "export", fail)
    X_train, _, y_train, _ = digits_split
    clf = DropNetClassifier(module__hidden_layer_sizes=(8,), prune_ratio=0.2, max_epochs=1).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"torch could not export .* as torch.export program .*data-dependent"):
        clf.export(tmp_path / "model.pt2")


def test_the_cause_of_an_export_failure_is_shown_without_terminal_colours(mlp, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        try:
            raise LookupError("No ONNX function found for aten.rrelu_with_noise_functional")
        except LookupError as cause:
            raise RuntimeError("Failed to convert. \x1b[96mThis is step 3/3\x1b[0m of exporting.\nlong trace") from cause

    monkeypatch.setattr(torch.export, "export", fail)
    with pytest.raises(ValueError) as caught:
        mlp.export(tmp_path / "model.pt2")
    assert str(caught.value).endswith(
        "RuntimeError: Failed to convert. This is step 3/3 of exporting. "
        "(caused by LookupError: No ONNX function found for aten.rrelu_with_noise_functional)"
    )


@pytest.mark.parametrize("name", ["model.onnx", "model.pt2", "model.pt", "out"])
def test_a_folder_as_the_path_is_named(mlp, tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(IsADirectoryError, match=rf"Cannot export to '.*{name}': it is a folder; give a file name"):
        mlp.export(tmp_path / name)


def test_export_leaves_the_estimator_as_it_was(mlp, digits_split, tmp_path):
    X_test = digits_split[1]
    before = mlp.predict_proba(X_test)
    training = mlp.module_.training
    mlp.export(tmp_path / "model.pt")
    assert mlp.module_.training == training
    assert all(p.requires_grad for p in mlp.module_.parameters())
    np.testing.assert_array_equal(mlp.predict_proba(X_test), before)


# ---------------------------------------------------------------------------
# networks a trace gets wrong, torch's noise, what the files hold
# ---------------------------------------------------------------------------


class Guarded(nn.Module):
    """A user's guard against unscaled pixels: a Python ``if`` on a tensor's value."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.hidden, self.out = nn.Linear(64, 16), nn.Linear(16, n_classes)

    def forward(self, x):
        if x.abs().max() > 1:  # unscaled 0..16 pixels: scale them
            x = x / 16
        return self.out(torch.relu(self.hidden(x)))


@pytest.fixture(scope="module")
def guarded(digits_split):
    X_train, _, y_train, _ = digits_split
    return DropNetClassifier(module=Guarded, prune_ratio=0.25, max_epochs=1, random_state=0).fit(X_train, y_train)


@pytest.mark.parametrize("given", [False, True], ids=["random-inputs", "X-given"])
def test_a_trace_that_would_freeze_a_branch_is_refused(guarded, digits_split, tmp_path, capsys, given):
    """torch.jit.trace would record the branch of its example (random inputs take it,
    digits do not) and pass export's check; its TracerWarning is an error instead."""
    X = digits_split[1][:16] if given else None
    with pytest.raises(ValueError) as caught:
        guarded.export(tmp_path / "model.pt", X=X)
    message = str(caught.value)
    assert message.startswith("Cannot export DropNetClassifier's network as TorchScript")
    assert "Python control flow on tensor values" in message
    assert f"{__file__}:" in message and "`if x.abs().max() > 1:" in message  # the line
    assert "Converting a tensor to a Python boolean" in message  # torch's warning
    assert "freeze the branch" in message and "torch.where(" in message
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err == ""  # the TracerWarning is in the error, not on the terminal


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_data_dependent_control_flow_is_not_sent_to_another_format(guarded, tmp_path, capsys, suffix):
    """.onnx and .pt2 refuse the network alike; .pt would be wrong: none is suggested,
    and torch's graph dumps and logs stay off the terminal."""
    with pytest.raises(ValueError) as caught:
        guarded.export(tmp_path / f"model{suffix}")
    message = str(caught.value)
    assert "Another format" not in message and "may export it" not in message
    assert "Python control flow on a tensor's value" in message and "torch.where(" in message
    assert f"{__file__}:" in message and "`if x.abs().max() > 1:" in message  # the line
    assert capsys.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []


class GRUNet(nn.Module):
    """(n, 8, 8) as 8 steps of 8 features."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, n_classes)

    def forward(self, x):
        _, hidden = self.gru(x)
        return self.out(torch.relu(self.fc(hidden[-1])))


def test_torch_own_warnings_stay_quiet_and_are_no_error(images, tmp_path, capsys):
    """An nn.GRU: TracerWarnings inside torch's own modules (which torch ignores) are
    no error, and torch's UserWarning about its flat weights does not reach the user."""
    X_train, X_test, y_train, _ = images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the layer before the GRU is left unpruned
        clf = DropNetClassifier(module=GRUNet, prune_ratio=0.25, max_epochs=1, random_state=0)
        clf.fit(X_train[:, 0], y_train)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = export_all(clf, tmp_path)
    assert [str(w.message)[:80] for w in caught] == []
    assert capsys.readouterr() == ("", "")
    got = run_elsewhere(paths, X_test[:, 0], tmp_path)
    for path in paths:
        np.testing.assert_allclose(got[str(path)], clf.predict_proba(X_test[:, 0]), atol=1e-5, err_msg=str(path))


class Talkative(nn.Module):
    """A network that warns in its forward (its own warning, which export must not hide)."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.hidden, self.out = nn.Linear(64, 16), nn.Linear(16, n_classes)

    def forward(self, x):
        warnings.warn("Talkative saw a batch", UserWarning)
        return self.out(torch.relu(self.hidden(x)))


def test_a_warning_of_the_network_itself_is_still_shown(digits_split, tmp_path):
    X_train, _, y_train, _ = digits_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = DropNetClassifier(module=Talkative, prune_ratio=0.2, max_epochs=1, random_state=0).fit(X_train, y_train)
    for suffix in SUFFIXES:
        with pytest.warns(UserWarning, match="Talkative saw a batch"):
            clf.export(tmp_path / f"model{suffix}")


def test_pt2_file_holds_no_rows_of_X(mlp, digits_split, tmp_path):
    """torch.export.save would store the example inputs: the rows of the X given."""
    X_test = digits_split[1]
    rows = np.ascontiguousarray(X_test[20:36])
    path = mlp.export(tmp_path / "model.pt2", X=rows)
    with zipfile.ZipFile(path) as archive:
        content = b"".join(archive.read(name) for name in archive.namelist())
    for row in rows[:2]:
        assert row.tobytes() not in content
    program = torch.export.load(path)
    assert program.example_inputs is None
    with torch.no_grad():
        proba, _ = program.module()(torch.from_numpy(X_test))
    np.testing.assert_allclose(proba.numpy(), mlp.predict_proba(X_test), atol=1e-5)


def test_a_network_on_a_gpu_is_checked_against_its_cpu_copy(cnn, images, tmp_path, monkeypatch):
    """predict_proba on a GPU computes convolutions with TF32 (about 1e-3 away from float32):
    the file, which computes on the CPU, is compared with the network's CPU copy instead.
    Simulated here (no GPU): predict_proba 1e-4 away, the networks said to be on a GPU."""
    X_test = images[1][:16]
    exact = cnn.predict_proba
    monkeypatch.setattr(cnn, "predict_proba", lambda X: np.clip(exact(X) + 1e-4, 0, 1))
    with pytest.raises(RuntimeError, match=r"probabilities up to 0\.0001 away from DropNetClassifier\.predict_proba"):
        cnn.export(tmp_path / "model.onnx", X=X_test)
    monkeypatch.setattr(_export, "_on_the_cpu", lambda networks: False)
    path = cnn.export(tmp_path / "model.onnx", X=X_test)
    proba, _ = onnxruntime.InferenceSession(str(path)).run(None, {"input": X_test})
    np.testing.assert_allclose(proba, exact(X_test), atol=1e-5)


def test_one_row_X_exports_in_every_format(cnn, images, tmp_path):
    """torch.export cannot make the batch dimension free from a one-row example."""
    X_test = images[1]
    paths = [cnn.export(tmp_path / f"model{suffix}", X=X_test[:1]) for suffix in SUFFIXES]
    got = run_elsewhere(paths, X_test[:7], tmp_path)
    for path in paths:
        np.testing.assert_allclose(got[str(path)], cnn.predict_proba(X_test[:7]), atol=1e-5, err_msg=str(path))


def test_a_failed_export_leaves_the_file_already_there(mlp, tmp_path, monkeypatch):
    path = mlp.export(tmp_path / "model.onnx")
    good = path.read_bytes()
    monkeypatch.setattr(type(mlp), "_exported_reference", lambda self, X: np.full((len(X), 10), 0.1))
    with pytest.raises(RuntimeError, match=r"the file already at .*model\.onnx was left as it was"):
        mlp.export(path)
    assert path.read_bytes() == good
    assert [file.name for file in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left
    monkeypatch.undo()

    def fail(*args, **kwargs):
        raise RuntimeError("Failed to convert")

    (tmp_path / "model.pt2").write_bytes(b"an older file")
    monkeypatch.setattr(torch.export, "export", fail)
    with pytest.raises(ValueError, match="torch could not export"):
        mlp.export(tmp_path / "model.pt2")
    assert (tmp_path / "model.pt2").read_bytes() == b"an older file"
    assert sorted(file.name for file in tmp_path.iterdir()) == ["model.onnx", "model.pt2"]


def test_an_export_replaces_the_file_already_there(mlp, digits_split, tmp_path):
    (tmp_path / "model.pt").write_bytes(b"an older file")
    path = mlp.export(tmp_path / "model.pt")
    got = run_elsewhere([path], digits_split[1], tmp_path)
    np.testing.assert_allclose(got[str(path)], mlp.predict_proba(digits_split[1]), atol=1e-5)
    assert sorted(file.name for file in tmp_path.iterdir()) == ["X.npy", "model.pt", "out.npz"]


def test_files_carry_no_debug_metadata(mlp, digits_split, tmp_path):
    """No stack traces (the build machine's paths, lines of source) in .onnx and .pt2."""
    X_test = digits_split[1]
    package = os.path.dirname(_export.__file__).encode()
    path = mlp.export(tmp_path / "model.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert not any(node.metadata_props or node.doc_string for node in model.graph.node)
    assert not model.graph.metadata_props
    values = (*model.graph.input, *model.graph.output, *model.graph.value_info)
    assert not any(value.metadata_props for value in values)
    assert {prop.key for prop in model.metadata_props} == {"classes", "producer", "estimator"}
    raw = path.read_bytes()
    assert package not in raw and b"_export.py" not in raw and b"stack_trace" not in raw
    proba, _ = onnxruntime.InferenceSession(str(path)).run(None, {"input": X_test})
    np.testing.assert_allclose(proba, mlp.predict_proba(X_test), atol=1e-5)

    path = mlp.export(tmp_path / "model.pt2")
    with zipfile.ZipFile(path) as archive:
        content = b"".join(archive.read(name) for name in archive.namelist())
    assert package not in content and b"_export.py" not in content
    assert str(Path(__file__).parent).encode() not in content


def test_all_non_torch_members_are_named(digits_split, tmp_path):
    X_train, _, y_train, _ = digits_split
    hq = HQEnsembleClassifier(
        estimators=[
            ("net", DropNetClassifier(module__hidden_layer_sizes=(16,), prune_ratio=0.2, max_epochs=1)),
            ("tree", DecisionTreeClassifier(max_depth=3)),
            ("logreg", LogisticRegression(max_iter=50)),
        ],
        method="all",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LogisticRegression's few iterations
        hq.fit(X_train, y_train)
    with pytest.raises(
        ValueError,
        match=r"its members 'tree' \(estimators_\[1\], a DecisionTreeClassifier\) and "
        r"'logreg' \(estimators_\[2\], a LogisticRegression\) are not torch networks",
    ):
        hq.export(tmp_path / "team.onnx")
