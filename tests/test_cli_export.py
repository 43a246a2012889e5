"""The ``export`` command (sklearn_dropnet/cli/export.py), through its two functions."""

import json
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.dummy import DummyClassifier

from sklearn_dropnet.cli import build_parser, main
from sklearn_dropnet.cli.io import UsageError
from sklearn_dropnet.cli.main import COMMANDS

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def export(*argv):
    """Parse ``export ARGV`` with the command line's parser and run it (its
    UsageError raised, as main() would print it)."""
    args = build_parser().parse_args(["export", *map(str, argv)])
    return COMMANDS[args.command].run(args)


def test_main_runs_export_end_to_end(default_prune_model, tmp_path, capsys):
    assert main(["export", str(default_prune_model), "-o", str(tmp_path / "m.pt2")]) == 0
    assert (tmp_path / "m.pt2").exists()
    assert main(["export", str(default_prune_model), "-o", str(tmp_path / "m.tflite")]) == 2
    assert "the format follows the suffix" in capsys.readouterr().err


@pytest.fixture(scope="module")
def default_prune_model(tmp_path_factory):
    """The model the default ``prune`` writes (digits, a 256-128 MLP pruned 80%),
    trained for few epochs."""
    output = tmp_path_factory.mktemp("prune")
    status = main(["prune", "--max-epochs", "2", "--output-dir", str(output), "--no-plot", "--quiet"])
    assert status == 0
    return output / "model.joblib"


@pytest.fixture(scope="module")
def digits_inputs():
    X, _ = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32)  # as prune reads its default data


def run_file(path, X):
    if path.suffix == ".onnx":
        session = onnxruntime.InferenceSession(str(path))
        return session.run(None, {"input": X})
    extra = {"classes.json": ""}
    if path.suffix == ".pt2":
        network = torch.export.load(path, extra_files=extra).module()
    else:
        with warnings.catch_warnings():  # TorchScript is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            network = torch.jit.load(path, _extra_files=extra)
    with torch.no_grad():
        return [tensor.numpy() for tensor in network(torch.from_numpy(X))]


@pytest.mark.parametrize("suffix", [".onnx", ".pt2", ".pt"])
def test_round_trip_of_the_default_prune_output(default_prune_model, digits_inputs, tmp_path, suffix, capsys):
    model = joblib.load(default_prune_model)
    assert model.pruning_history_[-1]["fraction_left"] <= 0.2  # the default 80% pruned
    output = tmp_path / f"digits{suffix}"
    assert export(default_prune_model, "-o", output) == 0
    printed = capsys.readouterr().out
    assert f"wrote {output}" in printed and "'input': float32 (batch, 64)" in printed
    assert "class_index -> label: 0: 0, 1: 1" in printed
    probabilities, class_index = run_file(output, digits_inputs)
    np.testing.assert_allclose(probabilities, model.predict_proba(digits_inputs), atol=1e-5)
    np.testing.assert_array_equal(model.classes_[class_index], model.predict(digits_inputs))


def test_default_output_is_the_model_path_with_onnx(default_prune_model, tmp_path, capsys):
    copy = tmp_path / "model.joblib"
    copy.write_bytes(default_prune_model.read_bytes())
    assert export(copy) == 0
    assert (tmp_path / "model.onnx").is_file()
    assert f"wrote {tmp_path / 'model.onnx'} (ONNX" in capsys.readouterr().out


def test_ensemble_output_exports_as_one_team_graph(tmp_path, digits_inputs, capsys):
    output = tmp_path / "run"
    status = main([
        "ensemble", "-M", "3", "-S", "2", "--max-epochs", "2", "--hidden-layer-sizes", "16,8",
        "--output-dir", str(output), "--no-plot", "--quiet",
    ])  # fmt: skip
    assert status == 0
    assert export(output / "ensemble.joblib", "-o", tmp_path / "team.onnx") == 0
    hq = joblib.load(output / "ensemble.joblib")
    session = onnxruntime.InferenceSession(str(tmp_path / "team.onnx"))
    assert json.loads(session.get_modelmeta().custom_metadata_map["classes"]) == list(range(10))
    probabilities, _ = session.run(None, {"input": digits_inputs})
    np.testing.assert_allclose(probabilities, hq.predict_proba(digits_inputs), atol=1e-5)


def test_unknown_suffix_is_refused_before_loading(tmp_path):
    with pytest.raises(UsageError, match=r"the format follows the suffix, one of \.onnx, \.pt2, \.pt"):
        export(tmp_path / "missing.joblib", "-o", tmp_path / "model.tflite")


def test_missing_model_file(tmp_path):
    with pytest.raises(UsageError, match="model file not found"):
        export(tmp_path / "missing.joblib", "-o", tmp_path / "model.onnx")


def test_missing_output_folder(default_prune_model, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        export(default_prune_model, "-o", tmp_path / "no" / "model.onnx")


def test_a_model_without_export_is_named(tmp_path):
    X, y = load_digits(return_X_y=True)
    path = tmp_path / "dummy.joblib"
    joblib.dump(DummyClassifier().fit(X, y), path)
    with pytest.raises(UsageError, match="holds a DummyClassifier, which cannot be exported"):
        export(path, "-o", tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_missing_onnx_is_one_line(default_prune_model, tmp_path, monkeypatch):
    from sklearn_dropnet import _export

    monkeypatch.setattr(_export, "_missing", lambda *modules: ["onnxruntime"])
    with pytest.raises(UsageError, match=r'pip install "sklearn-dropnet\[export\]"'):
        export(default_prune_model, "-o", tmp_path / "model.onnx")


def test_a_folder_as_output_is_named(default_prune_model, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(UsageError, match=r"-o .*out is a folder; give a file name"):
        export(default_prune_model, "-o", tmp_path / "out")


def test_a_file_that_disagrees_is_one_line(default_prune_model, tmp_path, monkeypatch, capsys):
    """export's check raises a RuntimeError: one line naming the likely causes, exit 2."""
    from sklearn_dropnet import DropNetClassifier

    monkeypatch.setattr(DropNetClassifier, "_exported_reference", lambda self, X: np.full((len(X), 10), 0.1))
    with pytest.raises(UsageError, match=r"cannot export .*so it was not written.*Likely causes"):
        export(default_prune_model, "-o", tmp_path / "model.pt")
    capsys.readouterr()
    assert main(["export", str(default_prune_model), "-o", str(tmp_path / "model.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "Likely causes" in err
    assert not (tmp_path / "model.pt").exists()


@pytest.mark.parametrize("spelling", ["same", "relative", "default -o"])
def test_output_that_is_the_model_file_is_refused(
    default_prune_model, tmp_path, monkeypatch, capsys, spelling
):
    """export MODEL -o MODEL (or a default -o that is MODEL) would destroy the fitted model."""
    name = "model.onnx" if spelling == "default -o" else "model.pt"
    model = tmp_path / name
    model.write_bytes(default_prune_model.read_bytes())
    before = model.read_bytes()
    monkeypatch.chdir(tmp_path)
    spellings = {"same": [model, "-o", model], "relative": [model, "-o", name], "default -o": [name]}
    argv = spellings[spelling]
    with pytest.raises(UsageError, match=r"is the model file .* itself.*choose another -o"):
        export(*argv)
    assert model.read_bytes() == before
    assert main(["export", *map(str, argv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "choose another -o" in err
    assert model.read_bytes() == before
    joblib.load(model)  # still the fitted model


class TokenNet(torch.nn.Module):
    """Takes pixel values 0..16 as token ids: random standard-normal inputs are out of range."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.embed, self.hidden = torch.nn.Embedding(17, 4), torch.nn.Linear(64 * 4, 16)
        self.act, self.out = torch.nn.ReLU(), torch.nn.Linear(16, n_classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(self.embed(x.long()).flatten(1))))


@pytest.fixture(scope="module")
def token_model(tmp_path_factory):
    from sklearn_dropnet import DropNetClassifier

    X, y = load_digits(return_X_y=True)
    folder = tmp_path_factory.mktemp("tokens")
    clf = DropNetClassifier(module=TokenNet, prune_ratio=0.5, max_epochs=1, random_state=0).fit(X[:300], y[:300])
    joblib.dump(clf, folder / "tokens.joblib")
    np.savez(folder / "rows.npz", X=X[300:340], y=y[300:340])
    return folder, clf, X[300:340].astype(np.float32)


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_data_gives_the_rows_a_network_of_token_ids_accepts(token_model, tmp_path, suffix, capsys):
    folder, clf, X = token_model
    with pytest.raises(UsageError, match=r"random standard-normal inputs \(IndexError: index out of range in self\)\. "
                                         r"Give samples it accepts with --data FILE\.$"):  # fmt: skip
        export(folder / "tokens.joblib", "-o", tmp_path / f"t{suffix}")
    assert export(folder / "tokens.joblib", "-o", tmp_path / f"t{suffix}", "--data", folder / "rows.npz") == 0
    probabilities, _ = run_file(tmp_path / f"t{suffix}", X)
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), atol=1e-5)


def test_target_without_data_is_refused(default_prune_model, tmp_path):
    with pytest.raises(UsageError, match=r"--target names a column of the --data file; give --data too"):
        export(default_prune_model, "-o", tmp_path / "m.onnx", "--target", "label")
