"""The sklearn-dropnet command line: prune, ensemble, predict, and its errors."""

import csv
import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier
from sklearn_dropnet._network_cost import saved_bytes
from sklearn_dropnet.cli import build_parser, main
from sklearn_dropnet.models import MLP

# Small and quick: a few epochs of a tiny MLP.
FAST = ["--max-epochs", "3", "--hidden-layer-sizes", "16,8", "--quiet", "--no-plot"]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory, digits):
    """The first 500 digits as .npz, as .csv with a header and as bare .csv."""
    X, y = digits
    X, y = X[:500], y[:500]
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "digits.npz", X=X, y=y)
    names = [f"pixel{i}" for i in range(X.shape[1])]
    with open(folder / "header.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["digit"] + names)  # the label first, chosen with --target
        writer.writerows([[label, *row] for label, row in zip(y, X)])
    np.savetxt(folder / "bare.csv", np.column_stack([X, y]), delimiter=",", fmt="%g")
    np.savetxt(folder / "features.csv", X, delimiter=",", fmt="%g")
    return folder


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory, data_files):
    """One ``prune`` run on the .npz file; its output folder."""
    output = tmp_path_factory.mktemp("run")
    status = main(
        ["prune", "--data", str(data_files / "digits.npz"), "--prune-ratio", "0.5",
         "--output-dir", str(output), *FAST[:-1]]  # with the plot
    )  # fmt: skip
    assert status == 0
    return output


def error_of(capsys, argv):
    """Run ``main(argv)``, expect status 2; return the error line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


# --- help -------------------------------------------------------------------------


def test_python_dash_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_dropnet", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: sklearn-dropnet")
    for command in ("prune", "ensemble", "predict"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["prune", "ensemble", "predict"])
def test_every_option_is_explained(capsys, command):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    subparser = build_parser()._subparsers._group_actions[0].choices[command]
    for action in subparser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help"
            assert action.option_strings[-1] in text


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


# --- prune --------------------------------------------------------------------------


def test_prune_writes_model_history_and_plot(pruned_run, data_files):
    assert sorted(p.name for p in pruned_run.iterdir()) == [
        "model.joblib", "pruning_curve.png", "pruning_history.csv",
    ]  # fmt: skip
    model = joblib.load(pruned_run / "model.joblib")
    assert isinstance(model, DropNetClassifier)
    assert model.prune_ratio == 0.5
    assert model.pruning_history_[-1]["fraction_left"] == 0.5
    with open(pruned_run / "pruning_history.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(model.pruning_history_)
    assert [int(r["units"]) for r in rows] == [r["units"] for r in model.pruning_history_]
    assert {"units[layers.1]", "units[layers.4]", "valid_accuracy", "macs", "train_seconds"} <= set(rows[0])
    assert [float(r["train_seconds"]) for r in rows] == [r["train_seconds"] for r in model.pruning_history_]
    assert (pruned_run / "pruning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_prune_on_default_digits_prints_the_table(tmp_path, capsys):
    status = main(["prune", "--prune-ratio", "0.3", "--output-dir", str(tmp_path), *FAST])
    assert status == 0
    out = capsys.readouterr().out
    assert "scikit-learn digits" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("round"))
    for column in ("units", "fraction", "params", "MACs", "valid acc", "epochs", "seconds"):
        assert column in header
    assert "test accuracy: dense 0." in out and ", pruned 0." in out
    model = joblib.load(tmp_path / "model.joblib")
    rows = [line for line in out.splitlines() if line.split()[:1] and line.split()[0].isdigit()]
    assert len(rows) == len(model.pruning_history_)
    assert not (tmp_path / "pruning_curve.png").exists()  # --no-plot
    # The weights line: a dense network of the same layers, and the saved model's module.
    dense = MLP(input_shape=(64,), n_classes=10, hidden_layer_sizes=(16, 8))
    assert (
        f"weights: {saved_bytes(dense) / 1024:,.1f} KiB -> {saved_bytes(model.module_) / 1024:,.1f} "
        "KiB (torch.save of the module's state dict)"
    ) in out.splitlines()
    assert saved_bytes(model.module_) < saved_bytes(dense)


def test_prune_options_reach_the_estimator(tmp_path, data_files):
    status = main(
        ["prune", "--data", str(data_files / "bare.csv"), "--prune-ratio", "0.4",
         "--drop-fraction", "0.25", "--scope", "global", "--unit-score", "l1",
         "--reinit", "none", "--lr", "0.01", "--batch-size", "64", "--patience", "2",
         "--validation-fraction", "0.2", "--random-state", "3", "--test-size", "0",
         "--min-accuracy-ratio", "0.5", "--output-dir", str(tmp_path), *FAST]
    )  # fmt: skip
    assert status == 0
    model = joblib.load(tmp_path / "model.joblib")
    params = model.get_params()
    expected = dict(
        prune_ratio=0.4, drop_fraction=0.25, scope="global", unit_score="l1", reinit="none",
        lr=0.01, batch_size=64, patience=2, validation_fraction=0.2, random_state=3,
        min_accuracy_ratio=0.5, max_epochs=3, module__hidden_layer_sizes=(16, 8),
    )  # fmt: skip
    assert {k: params[k] for k in expected} == expected
    assert model.n_features_in_ == 64


def test_prune_csv_with_target_column(tmp_path, data_files, capsys):
    argv = ["prune", "--data", str(data_files / "header.csv"), "--target", "digit",
            "--prune-ratio", "0.2", "--output-dir", str(tmp_path), *FAST]  # fmt: skip
    assert main(argv) == 0
    model = joblib.load(tmp_path / "model.joblib")
    assert model.n_features_in_ == 64
    assert list(model.classes_) == list(range(10))


# --- predict ------------------------------------------------------------------------


def test_predict_to_stdout_and_to_a_file(pruned_run, data_files, tmp_path, capsys, digits):
    model = joblib.load(pruned_run / "model.joblib")
    X, y = digits
    expected = model.predict(X[:500])

    assert (
        main(["predict", str(pruned_run / "model.joblib"), str(data_files / "features.csv")]) == 0
    )
    out = capsys.readouterr().out.split()
    assert [int(v) for v in out] == expected.tolist()

    target = tmp_path / "labels.csv"
    argv = [
        "predict",
        str(pruned_run / "model.joblib"),
        str(data_files / "digits.npz"),
        "-o",
        str(target),
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "accuracy on the labels" in err  # the .npz holds y
    lines = target.read_text().split()
    assert lines[0] == "prediction"
    assert [int(v) for v in lines[1:]] == expected.tolist()


def test_predict_csv_with_a_label_column_and_probabilities(
    pruned_run, data_files, tmp_path, capsys
):
    model = joblib.load(pruned_run / "model.joblib")
    target = tmp_path / "proba.csv"
    argv = ["predict", str(pruned_run / "model.joblib"), str(data_files / "bare.csv"),
            "--proba", "-o", str(target)]  # fmt: skip
    assert main(argv) == 0
    rows = list(csv.reader(target.open()))
    assert rows[0] == [str(c) for c in model.classes_]
    proba = np.array(rows[1:], dtype=float)
    assert proba.shape == (500, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-4)

    argv = [
        "predict",
        str(pruned_run / "model.joblib"),
        str(data_files / "header.csv"),
        "--target",
        "digit",
    ]
    assert main(argv) == 0
    assert "accuracy on the labels" in capsys.readouterr().err


# --- ensemble -----------------------------------------------------------------------


def test_ensemble_compares_team_and_full_ensemble(tmp_path, data_files, capsys):
    argv = ["ensemble", "--data", str(data_files / "digits.npz"), "-M", "3", "-S", "2",
            "--n-jobs", "1", "--prune-ratio", "0.3", "--output-dir", str(tmp_path),
            *FAST[:-1]]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "full ensemble of 3" in out and "team of" in out
    model = joblib.load(tmp_path / "ensemble.joblib")
    assert isinstance(model, HQEnsembleClassifier)
    assert len(model.estimators_) == 3 and len(model.selected_) <= 2
    assert (tmp_path / "hq_candidates.png").exists()


def test_ensemble_passes_bootstrap_and_final_choice(tmp_path, data_files):
    argv = ["ensemble", "--data", str(data_files / "digits.npz"), "-M", "3", "-S", "2",
            "--bootstrap", "--final-choice", "accuracy", "--prune-ratio", "0.3",
            "--output-dir", str(tmp_path), *FAST[:-1]]  # fmt: skip
    assert main(argv) == 0
    model = joblib.load(tmp_path / "ensemble.joblib")
    assert model.bootstrap is True and model.final_choice == "accuracy"
    default = build_parser().parse_args(["ensemble"])
    assert default.bootstrap is False and default.final_choice == "one_se"


def test_ensemble_cv_chooses_on_out_of_fold_predictions(tmp_path, data_files, capsys):
    argv = ["ensemble", "--data", str(data_files / "digits.npz"), "-M", "2", "-S", "2",
            "--cv", "2", "--prune-ratio", "0.3", "--output-dir", str(tmp_path),
            *FAST[:-1]]  # fmt: skip
    assert main(argv) == 0
    model = joblib.load(tmp_path / "ensemble.joblib")
    assert model.cv == 2 and len(model.estimators_) == 2  # tests/test_hq.py tests cv itself
    assert build_parser().parse_args(["ensemble"]).cv is None


# --- errors: one line, status 2 -----------------------------------------------------


def test_missing_data_file(capsys, tmp_path):
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "nope.npz"), *FAST])
    assert err == f"sklearn-dropnet prune: error: data file not found: {tmp_path / 'nope.npz'}"


def test_bad_extension(capsys, tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("1,2,3\n")
    err = error_of(capsys, ["prune", "--data", str(path), *FAST])
    assert "expected a .npz file" in err and "'.txt'" in err and "\n" not in err


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", "", "is empty"),
        ("ragged.csv", "1,2,0\n3,4\n", "line 2: 2 columns, expected 3"),
        ("text.csv", "a,b,y\n1,x,0\n", "line 2, column 2: 'x' is not a number"),
        ("one.csv", "1,0\n2,0\n3,0\n", "single class"),
        ("header_only.csv", "a,b,y\n", "no data rows"),
    ],
)
def test_bad_csv_files(capsys, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    err = error_of(capsys, ["prune", "--data", str(path), *FAST])
    assert message in err and "\n" not in err


def test_bad_npz_files(capsys, tmp_path):
    np.savez(tmp_path / "no_x.npz", data=np.zeros((3, 2)))
    assert "no array named 'X'" in error_of(
        capsys, ["prune", "--data", str(tmp_path / "no_x.npz"), *FAST]
    )
    np.savez(tmp_path / "no_y.npz", X=np.zeros((3, 2)))
    assert "has no labels" in error_of(
        capsys, ["prune", "--data", str(tmp_path / "no_y.npz"), *FAST]
    )
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    assert "cannot read" in error_of(capsys, ["prune", "--data", str(tmp_path / "junk.npz"), *FAST])


def test_target_errors(capsys, data_files):
    err = error_of(
        capsys, ["prune", "--data", str(data_files / "header.csv"), "--target", "label", *FAST]
    )
    assert "no column 'label'" in err
    err = error_of(
        capsys, ["prune", "--data", str(data_files / "bare.csv"), "--target", "digit", *FAST]
    )
    assert "needs a header row" in err
    err = error_of(
        capsys, ["prune", "--data", str(data_files / "digits.npz"), "--target", "y", *FAST]
    )
    assert "--target applies to .csv files only" in err


def test_predict_errors(capsys, pruned_run, tmp_path):
    model = str(pruned_run / "model.joblib")
    np.savetxt(tmp_path / "narrow.csv", np.zeros((4, 10)), delimiter=",")
    err = error_of(capsys, ["predict", model, str(tmp_path / "narrow.csv")])
    assert "has 10 columns, but the model expects 64 features (65 columns with a label" in err
    np.savez(tmp_path / "narrow.npz", X=np.zeros((4, 10)))
    assert "model expects 64" in error_of(capsys, ["predict", model, str(tmp_path / "narrow.npz")])
    err = error_of(
        capsys, ["predict", str(tmp_path / "missing.joblib"), str(tmp_path / "narrow.csv")]
    )
    assert "model file not found" in err
    (tmp_path / "junk.joblib").write_bytes(b"junk")
    err = error_of(capsys, ["predict", str(tmp_path / "junk.joblib"), str(tmp_path / "narrow.csv")])
    assert "cannot load a model from" in err
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    err = error_of(capsys, ["predict", str(tmp_path / "dict.joblib"), str(tmp_path / "narrow.csv")])
    assert "not a fitted estimator" in err


def test_output_dir_is_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    err = error_of(capsys, ["prune", "--output-dir", str(tmp_path / "file"), *FAST])
    assert "exists and is not a folder" in err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--prune-ratio", "1", "is not in [0, 1)"),
        ("--drop-fraction", "0", "is not in (0, 1)"),
        ("--hidden-layer-sizes", "64,x", "comma-separated list of integers"),
        ("--max-epochs", "0", "must be at least 1"),
        ("--scope", "everywhere", "invalid choice"),
        ("--lr", "-1", "must be positive"),
    ],
)
def test_bad_option_values(capsys, option, value, message):
    assert main(["prune", option, value]) == 2
    assert message in capsys.readouterr().err


def test_unknown_or_missing_device(capsys):
    assert "'gpu0' is not a torch device name" in error_of(capsys, ["prune", "--device", "gpu0", *FAST])
    if not torch.cuda.is_available():
        err = error_of(capsys, ["prune", "--device", "cuda", *FAST])
        assert "CUDA is not available" in err


def test_ensemble_cv_errors(capsys):
    assert main(["ensemble", "--cv", "1"]) == 2
    assert "1 must be at least 2" in capsys.readouterr().err
    err = error_of(capsys, ["ensemble", "--cv", "3", "--bootstrap", *FAST])
    assert "--cv and --bootstrap cannot be combined" in err


def test_ensemble_n_select_larger_than_m(capsys):
    err = error_of(capsys, ["ensemble", "-M", "2", "-S", "3", *FAST])
    assert "--n-select 3 is larger than --n-estimators 2" in err
