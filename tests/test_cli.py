"""The sklearn-dropnet command line: prune, ensemble, predict, and its errors."""

import argparse
import csv
import os
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch

from sklearn_dropnet import DropNetClassifier, HQEnsembleClassifier
from sklearn_dropnet.cli import build_parser, main
from sklearn_dropnet.models import MLP
from sklearn_dropnet.pruning._network_cost import saved_bytes

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


def float_options():
    """``(command, option)`` for every option that takes a float."""
    commands = build_parser()._subparsers._group_actions[0].choices
    for command, subparser in commands.items():
        for action in subparser._actions:
            try:
                value = action.type("0.5") if action.type else None
            except (argparse.ArgumentTypeError, ValueError):  # ints, layer sizes
                continue
            if isinstance(value, float):
                yield command, action.option_strings[0]


def run_with_closed_stdout(argv):
    """Run the command with standard output a pipe whose reader is gone, as
    after ``| head`` has read its lines."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "sklearn_dropnet", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def image_model(tmp_path_factory, digits):
    """A DropNetClassifier fitted on the digits as (n, 1, 8, 8) images, saved; its path."""
    X, y = digits
    model = DropNetClassifier(
        prune_ratio=0.0, max_epochs=2, module__hidden_layer_sizes=(8,), random_state=0
    ).fit(X[:300].reshape(-1, 1, 8, 8), y[:300])
    path = tmp_path_factory.mktemp("image_model") / "model.joblib"
    joblib.dump(model, path)
    return path


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


def test_random_state_help_shows_its_default_of_0(capsys):
    assert main(["prune", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the initial weights and the batch order (default: 0)" in text


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_predict_with_a_data_option_says_data_is_positional(capsys):
    assert main(["predict", "model.joblib", "--data", "new.csv"]) == 2
    err = capsys.readouterr().err
    assert "usage: sklearn-dropnet predict" in err
    assert "sklearn-dropnet predict: error: unrecognized arguments: --data" in err
    assert "without --data: sklearn-dropnet predict MODEL DATA" in err


def test_a_misspelt_option_is_reported_by_its_command_with_the_closest_option(capsys):
    assert main(["prune", "--prune_ratio", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "usage: sklearn-dropnet prune" in err
    assert "unrecognized arguments: --prune_ratio 0.5 (did you mean --prune-ratio?)" in err


def test_an_unknown_option_without_a_close_one_is_named_alone(capsys):
    assert main(["ensemble", "--zzz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "sklearn-dropnet ensemble: error: unrecognized arguments: --zzz"


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


def accuracy_line(path, model, X, y):
    return f"accuracy on the labels in {path}: {model.score(X, y):.4f} ({len(y)} samples)"


@pytest.mark.parametrize("command", ["prune", "ensemble"])
def test_a_csv_header_is_kept_and_predict_matches_columns_by_name(tmp_path, data_files, capsys, digits, command):
    """The training file has the label first: predict finds it, and the features, by name."""
    sizes = ["-M", "2", "-S", "2"] if command == "ensemble" else []
    argv = [command, "--data", str(data_files / "header.csv"), "--target", "digit",
            "--prune-ratio", "0.2", "--output-dir", str(tmp_path), *sizes, *FAST]  # fmt: skip
    assert main(argv) == 0
    model_path = tmp_path / ("ensemble.joblib" if command == "ensemble" else "model.joblib")
    model = joblib.load(model_path)
    names = [f"pixel{i}" for i in range(64)]
    assert list(model.feature_names_in_) == names
    for member in getattr(model, "estimators_", []):  # a DataFrame reaches the members as given
        assert list(member.feature_names_in_) == names
    X, y = digits[0][:500], digits[1][:500]
    capsys.readouterr()
    # The training file itself, without --target: its first column is the label.
    assert main(["predict", str(model_path), str(data_files / "header.csv")]) == 0
    out, err = capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # model fitted with names, X without
        assert err.strip() == accuracy_line(data_files / "header.csv", model, X, y)
    # The columns in another order, the label last: the same predictions.
    order = np.random.RandomState(0).permutation(64)
    shuffled = tmp_path / "shuffled.csv"
    with open(shuffled, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([names[i] for i in order] + ["digit"])
        writer.writerows([[*row[order], label] for label, row in zip(y, X)])
    assert main(["predict", str(model_path), str(shuffled)]) == 0
    assert capsys.readouterr().out == out
    # A column missing, or one the model does not know besides the label: named.
    missing = tmp_path / "missing.csv"
    rows = [line.split(",") for line in shuffled.read_text().splitlines()[:3]]
    missing.write_text("\n".join(",".join(row[:-2] + row[-1:]) for row in rows))  # no pixel{order[-1]}
    assert error_of(capsys, ["predict", str(model_path), str(missing)]).endswith(
        f"missing.csv lacks columns the model was trained on: 'pixel{order[-1]}'"
    )
    extra = tmp_path / "extra.csv"
    extra.write_text("\n".join(line + ",0" for line in shuffled.read_text().splitlines()[:3]))
    extra.write_text(extra.read_text().replace("digit,0", "digit,junk", 1))
    assert error_of(capsys, ["predict", str(model_path), str(extra)]).endswith(
        "extra.csv has columns the model was not trained on: 'digit', 'junk'; "
        "name the label column with --target"
    )


def test_predict_compares_float_labels_with_integer_classes(pruned_run, tmp_path, capsys, digits):
    model_path = str(pruned_run / "model.joblib")
    model = joblib.load(model_path)
    X, y = digits[0][:500], digits[1][:500]
    np.savez(tmp_path / "float_y.npz", X=X, y=y.astype(float))
    assert main(["predict", model_path, str(tmp_path / "float_y.npz")]) == 0
    assert capsys.readouterr().err.strip() == accuracy_line(tmp_path / "float_y.npz", model, X, y)
    # Labels written as 4.0 in a CSV file.
    np.savetxt(tmp_path / "float_y.csv", np.column_stack([X, y]), delimiter=",",
               fmt=["%g"] * 64 + ["%.1f"])  # fmt: skip
    assert (tmp_path / "float_y.csv").read_text().split("\n")[0].endswith(",0.0")
    assert main(["predict", model_path, str(tmp_path / "float_y.csv")]) == 0
    assert capsys.readouterr().err.strip() == accuracy_line(tmp_path / "float_y.csv", model, X, y)


def test_predict_says_when_no_label_is_a_class(pruned_run, tmp_path, capsys, digits):
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])  # fmt: skip
    path = tmp_path / "words.npz"
    np.savez(path, X=digits[0][:500], y=names[digits[1][:500]])
    assert main(["predict", str(pruned_run / "model.joblib"), str(path)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.split()) == 500
    assert captured.err.strip() == (
        f"no accuracy: none of the labels in {path} (eight, five, four, nine, one, ...) is one "
        "of the model's classes (0, 1, 2, 3, 4, ...)"
    )


def test_csv_numeric_header_written_by_pandas(pruned_run, tmp_path, capsys, digits):
    """``pd.DataFrame(np.column_stack([X, y])).to_csv(index=False)`` writes the
    column names 0, 1, ..., 64 above the data."""
    model = joblib.load(pruned_run / "model.joblib")
    X, y = digits[0][:500], digits[1][:500]
    path = tmp_path / "pandas.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(range(65))
        writer.writerows([[*row, label] for row, label in zip(X, y)])
    assert main(["predict", str(pruned_run / "model.joblib"), str(path)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.split()) == 500
    assert captured.err.strip() == accuracy_line(path, model, X, y)


def test_csv_text_labels_without_header_keep_the_first_sample(tmp_path, capsys, digits):
    X, y = digits[0][:300], digits[1][:300]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])  # fmt: skip
    path = tmp_path / "words.csv"
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows([[*row, names[label]] for row, label in zip(X, y)])
    argv = ["prune", "--data", str(path), "--prune-ratio", "0", "--test-size", "0",
            "--output-dir", str(tmp_path), *FAST]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"data: {path} (300 samples, 64 features); 300 training samples" in out
    model = joblib.load(tmp_path / "model.joblib")
    assert sorted(model.classes_) == sorted(names)


def test_csv_with_a_byte_order_mark(pruned_run, data_files, tmp_path, capsys, digits):
    model_path = str(pruned_run / "model.joblib")
    model = joblib.load(model_path)
    X, y = digits[0][:500], digits[1][:500]
    for name, argv in [("bare.csv", []), ("header.csv", ["--target", "digit"])]:
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + (data_files / name).read_bytes())
        assert main(["predict", model_path, str(path), *argv]) == 0
        captured = capsys.readouterr()
        assert len(captured.out.split()) == 500
        assert captured.err.strip() == accuracy_line(path, model, X, y)


def test_predict_with_a_model_of_images(image_model, tmp_path, capsys, digits):
    X, y = digits[0][:100], digits[1][:100]
    model = joblib.load(image_model)
    np.savez(tmp_path / "images.npz", X=X.reshape(-1, 1, 8, 8), y=y)
    assert main(["predict", str(image_model), str(tmp_path / "images.npz")]) == 0
    assert capsys.readouterr().err.strip() == accuracy_line(
        tmp_path / "images.npz", model, X.reshape(-1, 1, 8, 8), y
    )
    np.savez(tmp_path / "flat.npz", X=X, y=y)
    err = error_of(capsys, ["predict", str(image_model), str(tmp_path / "flat.npz")])
    assert err.endswith("flat.npz has samples of shape (64,), but the model expects samples of "
                        "shape (1, 8, 8)")  # fmt: skip
    np.savetxt(tmp_path / "flat.csv", X, delimiter=",")
    err = error_of(capsys, ["predict", str(image_model), str(tmp_path / "flat.csv")])
    assert err.endswith("the model takes samples of shape (1, 8, 8), and a .csv file holds flat "
                        "rows: give a .npz file with X of shape (n_samples, 1, 8, 8)")  # fmt: skip


def test_predict_into_a_closed_pipe(pruned_run, data_files):
    result = run_with_closed_stdout(
        ["predict", str(pruned_run / "model.joblib"), str(data_files / "features.csv"), "--proba"]
    )
    assert (result.returncode, result.stderr) == (1, "")


def test_prune_into_a_closed_pipe(tmp_path, data_files):
    argv = ["prune", "--data", str(data_files / "digits.npz"), "--output-dir", str(tmp_path),
            *FAST]  # fmt: skip
    result = run_with_closed_stdout(argv)
    assert (result.returncode, result.stderr) == (1, "")
    assert list(tmp_path.iterdir()) == []  # stopped at its first line, as `yes | head` does


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


@pytest.mark.parametrize(
    "command, name",
    [("prune", "model.joblib"), ("prune", "pruning_history.csv"), ("prune", "pruning_curve.png"),
     ("ensemble", "ensemble.joblib"), ("ensemble", "hq_candidates.png")],
)  # fmt: skip
def test_a_folder_where_an_output_file_goes_is_named_before_training(capsys, tmp_path, data_files, command, name):
    (tmp_path / name).mkdir()  # a folder where the file goes
    argv = [command, "--data", str(data_files / "digits.npz"), "--prune-ratio", "0.3",
            "--output-dir", str(tmp_path), *FAST[:-1]]  # fmt: skip
    if command == "ensemble":
        argv += ["-M", "2", "-S", "2", "--method", "top"]
    err = error_of(capsys, argv)
    assert err == (f"sklearn-dropnet {command}: error: {tmp_path / name} is a folder, where this command "
                   "writes a file; move it, or choose another --output-dir")  # fmt: skip
    assert "accuracy" not in capsys.readouterr().out  # refused before training


def test_an_output_file_that_cannot_be_written_is_one_line(tmp_path):
    from sklearn_dropnet.cli.errors import UsageError
    from sklearn_dropnet.cli.outputs import writing

    with pytest.raises(UsageError, match=rf"^cannot write {tmp_path / 'model.joblib'}: \[Errno 28\] No space left on device$"):
        with writing(tmp_path / "model.joblib"):
            raise OSError(28, "No space left on device")


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


@pytest.mark.parametrize("damage", ["truncated", "corrupt member"])
def test_damaged_npz_file(capsys, tmp_path, data_files, damage):
    content = bytearray((data_files / "digits.npz").read_bytes())
    path = tmp_path / "damaged.npz"
    if damage == "truncated":
        path.write_bytes(content[:5000])  # head -c 5000
    else:
        np.savez_compressed(path, X=np.linspace(0, 1, 4000).reshape(500, 8), y=np.arange(500) % 2)
        content = bytearray(path.read_bytes())
        content[300:320] = bytes(20)
        path.write_bytes(content)
    err = error_of(capsys, ["prune", "--data", str(path), *FAST])
    assert err.startswith(f"sklearn-dropnet prune: error: cannot read {path} as a .npz archive: ")


def test_npy_file_named_npz(capsys, tmp_path):
    with open(tmp_path / "single.npz", "wb") as file:
        np.save(file, np.zeros((4, 3)))
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "single.npz"), *FAST])
    assert err.endswith(
        "single.npz holds a single array (a .npy file), not a .npz archive of X and y"
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_labels(capsys, tmp_path, digits, bad):
    X, y = digits
    y = y[:100].astype(float)
    y[[7, 30]] = bad
    np.savez(tmp_path / "labels.npz", X=X[:100], y=y)
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "labels.npz"), *FAST])
    assert err.endswith(
        f"y in {tmp_path / 'labels.npz'} holds NaN or infinite labels: 2 of 100, "
        "the first at index 7"
    )
    np.savetxt(tmp_path / "labels.csv", np.column_stack([X[:100], y]), delimiter=",", fmt="%g")
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "labels.csv"), *FAST])
    assert err.endswith(
        f"labels.csv, line 8: {str(bad)!r} is not a label (NaN or infinite labels: 2 of 100)"
    )


@pytest.mark.parametrize("command", ["prune", "ensemble"])
def test_fractional_labels_are_refused_before_training(capsys, tmp_path, digits, command):
    X, y = digits
    np.savetxt(tmp_path / "frac.csv", np.column_stack([X[:100], y[:100] % 3 + 0.5]), delimiter=",", fmt="%g")
    assert main([command, "--data", str(tmp_path / "frac.csv"), *FAST]) == 2
    out, err = capsys.readouterr()
    assert "training" not in out
    assert err.strip().endswith(
        "frac.csv: the labels hold fractional numbers (0.5, 1.5, 2.5), which a classifier takes for a "
        'regression target (scikit-learn\'s rule). Labels are classes: whole numbers or text; if these '
        'are classes, write them as text (e.g. "a0.5") or number them.'
    )


def test_empty_label_cell(capsys, tmp_path):
    (tmp_path / "gap.csv").write_text("0.1,0.2,1\n0.3,0.4,\n0.5,0.6,0\n")
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "gap.csv"), *FAST])
    assert err.endswith("gap.csv, line 2: the label is empty")


@pytest.mark.parametrize(
    "y, message",
    [(np.array(3), "got shape ()"), (np.zeros((500, 2)), "got shape (500, 2)")],
)
def test_labels_must_be_one_per_sample(capsys, tmp_path, digits, y, message):
    np.savez(tmp_path / "y.npz", X=digits[0][:500], y=y)
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "y.npz"), *FAST])
    assert "must be a 1-d array of labels, one per sample; " + message in err


def test_npz_without_samples(capsys, tmp_path):
    np.savez(tmp_path / "empty.npz", X=np.zeros((0, 64)), y=np.zeros(0))
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "empty.npz"), *FAST])
    assert err.endswith(f"X in {tmp_path / 'empty.npz'} has no samples")


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


@pytest.mark.parametrize("command, option", list(float_options()))
def test_float_options_reject_nan(capsys, command, option):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, option, "nan"])
    assert info.value.code == 2
    assert f"argument {option}: 'nan' is not a finite number" in capsys.readouterr().err


def test_float_options_are_all_found():
    shared = ["--test-size", "--prune-ratio", "--drop-fraction", "--min-accuracy-ratio", "--lr",
              "--validation-fraction", "--distill-weight", "--distill-temperature"]  # fmt: skip
    assert set(float_options()) == {("prune", option) for option in shared} | {
        ("ensemble", option) for option in shared + ["--selection-fraction"]
    }


def test_lr_rejects_infinity(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prune", "--lr", "inf"])
    assert "argument --lr: 'inf' is not a finite number" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--prune-ratio", "1", "argument --prune-ratio: 1.0 is not a float in the range [0.0, 1.0)"),
        ("--drop-fraction", "0", "argument --drop-fraction: 0.0 is not a float in the range (0.0, 1.0)"),
        ("--hidden-layer-sizes", "64,x", "comma-separated list of integers"),
        ("--max-epochs", "0", "argument --max-epochs: 0 is not an int in the range [1, inf)"),
        ("--scope", "everywhere", "invalid choice"),
        ("--lr", "-1", "argument --lr: -1.0 is not a float in the range (0.0, inf)"),
        ("--distill-weight", "1.5", "argument --distill-weight: 1.5 is not a float in the range [0.0, 1.0]"),
        ("--unit-score", "magic", "invalid choice: 'magic'"),
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


# --- what the audit found: every row of the input checked, messages in option names ---

# Tiny runs, for the tests below.
TINY = ["--max-epochs", "2", "--hidden-layer-sizes", "16", "--quiet", "--no-plot"]


def small_table(n_rows=30, n_features=2, n_classes=2):
    """``n_rows`` rows of ``n_features`` numbers and a label, as CSV lines."""
    X = np.random.RandomState(0).rand(n_rows, n_features).round(3)
    return [",".join([*map(str, row), str(i % n_classes)]) for i, row in enumerate(X)]


@pytest.mark.parametrize(
    "cell, message",
    [("nan", "'nan' is not a finite number"), ("-inf", "'-inf' is not a finite number"),
     ("1e39", "'1e39' is beyond the range of float32 (about 3.4e38)")],
)  # fmt: skip
def test_csv_features_must_be_finite(capsys, tmp_path, cell, message):
    lines = ["a,b,y", *small_table()]
    lines[6] = cell + lines[6][lines[6].index(",") :]  # line 7, column 1
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "x.csv"), *TINY])
    assert err == f"sklearn-dropnet prune: error: {tmp_path / 'x.csv'}, line 7, column 1: {message}"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_npz_features_must_be_finite(capsys, tmp_path, bad):
    X = np.random.RandomState(0).rand(60, 4)
    X[[3, 9], [1, 2]] = bad
    np.savez(tmp_path / "x.npz", X=X, y=np.arange(60) % 2)
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "x.npz"), *TINY])
    assert err == (
        f"sklearn-dropnet prune: error: X in {tmp_path / 'x.npz'} holds NaN or infinite "
        "values in 2 of 60 rows, the first at index 3"
    )
    np.savez(tmp_path / "big.npz", X=np.full((60, 4), 1e39), y=np.arange(60) % 2)
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "big.npz"), *TINY])
    assert err.endswith("holds values beyond the range of float32 (about 3.4e38) in 60 of 60 "
                        "rows, the first at index 0")  # fmt: skip


def test_training_errors_keep_their_first_line():
    from sklearn_dropnet.cli.io import UsageError
    from sklearn_dropnet.cli.training import fit as _fit

    class Failing:
        def fit(self, X, y):
            raise ValueError("Input X is wrong.\nA long explanation.\nA link.")

    with pytest.raises(UsageError) as info:
        _fit(Failing(), None, None, "the dense network")
    assert str(info.value) == "cannot train the dense network: Input X is wrong."


def test_csv_errors_name_the_line_of_the_file_with_blank_lines(capsys, tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,b,y\n\n0.1,0.2,0\n\n\n0.3,x,1\n")
    err = error_of(capsys, ["prune", "--data", str(path), *TINY])
    assert err.endswith("blank.csv, line 6, column 2: 'x' is not a number")
    path.write_text("\n0.1,0.2,0\n\n0.3,0.4,\n")
    err = error_of(capsys, ["prune", "--data", str(path), *TINY])
    assert err.endswith("blank.csv, line 4: the label is empty")
    path.write_text('0.1,0.2,0\n"0.3\n",0.4,1,7\n')  # a quoted cell on lines 2 and 3
    err = error_of(capsys, ["prune", "--data", str(path), *TINY])
    assert err.endswith("blank.csv, line 2: 4 columns, expected 3")


def test_predict_refuses_a_model_that_is_not_a_classifier(capsys, tmp_path, data_files, digits):
    from sklearn.linear_model import LinearRegression

    X, y = digits
    joblib.dump(LinearRegression().fit(X[:100], y[:100]), tmp_path / "regression.joblib")
    err = error_of(
        capsys, ["predict", str(tmp_path / "regression.joblib"), str(data_files / "bare.csv")]
    )
    assert err == (
        f"sklearn-dropnet predict: error: {tmp_path / 'regression.joblib'} holds a "
        "LinearRegression, not a classifier"
    )


@pytest.mark.parametrize("name, suffix", [("p.npz", "'.npz'"), ("p", "'no extension'")])
def test_predict_output_must_be_csv_or_txt(capsys, tmp_path, name, suffix):
    # Checked first: the model file does not even exist.
    argv = ["predict", str(tmp_path / "missing.joblib"), str(tmp_path / "missing.csv"),
            "--proba", "-o", str(tmp_path / name)]  # fmt: skip
    assert error_of(capsys, argv) == (
        f"sklearn-dropnet predict: error: -o {tmp_path / name}: the predictions are written "
        f"as text, to a .csv file (with a header row) or a .txt file; got {suffix}"
    )
    assert not (tmp_path / name).exists()


def test_predict_output_txt_has_no_header(capsys, pruned_run, data_files, tmp_path):
    argv = ["predict", str(pruned_run / "model.joblib"), str(data_files / "features.csv"),
            "--proba", "-o", str(tmp_path / "p.TXT")]  # fmt: skip
    assert main(argv) == 0
    rows = np.loadtxt(tmp_path / "p.TXT", delimiter=",")
    assert rows.shape == (500, 10)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", ["prune", "ensemble"])
def test_output_dir_that_takes_no_files_is_refused_before_training(
    capsys, data_files, command
):
    argv = [command, "--data", str(data_files / "digits.npz"), "--output-dir", "/proc/self",
            *TINY]  # fmt: skip
    if command == "ensemble":
        argv += ["-M", "2", "-S", "2", "--method", "top"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"sklearn-dropnet {command}: error: cannot write files in --output-dir /proc/self: "
        "No such file or directory"
    )
    assert "training" not in captured.out


@pytest.mark.parametrize("header", ["a,b,y,\n", ""])
def test_trailing_commas_on_every_row(capsys, tmp_path, header):
    path = tmp_path / "trailing.csv"
    path.write_text(header + "".join(line + ",\n" for line in small_table()))
    err = error_of(capsys, ["prune", "--data", str(path), *TINY])
    assert err == (
        f"sklearn-dropnet prune: error: {path}: every row ends with ',' (an empty last "
        "column); remove the trailing commas"
    )


@pytest.mark.parametrize(
    "separator, name, decimal", [(";", "';'", ","), (";", "';'", "."), ("\t", "tabs", ".")]
)
@pytest.mark.parametrize("header", [True, False])
def test_csv_separated_by_something_else(capsys, tmp_path, separator, name, decimal, header):
    lines = ["a,b,y"] * header + small_table()
    text = "\n".join(line.replace(",", separator) for line in lines)
    path = tmp_path / "other.csv"
    path.write_text(text.replace(".", decimal) + "\n")
    err = error_of(capsys, ["prune", "--data", str(path), *TINY])
    assert err == (
        f"sklearn-dropnet prune: error: {path} looks separated by {name}: the reader needs "
        "commas between cells (and '.' as the decimal point)"
    )


@pytest.mark.parametrize(
    "argv, message",
    [(["prune", "--random-state", "-1"],
      "argument --random-state: -1 is not a seed: give an integer from 0 to 4294967295"),
     (["ensemble", "--random-state", "4294967296"],
      "argument --random-state: 4294967296 is not a seed: give an integer from 0 to 4294967295"),
     (["ensemble", "--n-jobs", "0"],
      "argument --n-jobs: 0 runs nothing: give a positive number of jobs, or -1 for one per "
      "CPU core"),
     (["ensemble", "--n-jobs", "two"], "argument --n-jobs: 'two' is not an integer")],
)  # fmt: skip
def test_seed_and_n_jobs_are_checked_by_the_parser(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"sklearn-dropnet {argv[0]}: error: {message}"
    args = build_parser().parse_args(
        ["ensemble", "--random-state", "4294967295", "--n-jobs", "-2"]
    )
    assert (args.random_state, args.n_jobs) == (4294967295, -2)


def test_ensemble_selection_split_too_small_names_the_options(capsys, tmp_path):
    path = tmp_path / "four.csv"
    path.write_text("\n".join(small_table(n_rows=4)) + "\n")
    argv = ["ensemble", "--data", str(path), "--test-size", "0", "-M", "2", "-S", "2",
            "--output-dir", str(tmp_path), *TINY]  # fmt: skip
    assert error_of(capsys, argv) == (
        "sklearn-dropnet ensemble: error: cannot train the ensemble: --selection-fraction 0.2 "
        "of 4 rows leaves 1 held out, fewer than the 2 classes; the stratified split needs a "
        "row of each class on each side. Change --selection-fraction, or use --cv instead of "
        "a held-out split."
    )


def test_table_says_train_acc_without_a_validation_split(capsys, tmp_path, data_files):
    argv = ["prune", "--data", str(data_files / "digits.npz"), "--validation-fraction", "0",
            "--prune-ratio", "0.2", "--output-dir", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("round"))
    assert header.split() == ["round", "units", "fraction", "params", "MACs", "train", "acc",
                              "epochs", "seconds", "accepted"]  # fmt: skip
    assert main(["prune", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("0 holds out none: no early stopping, and the table shows the accuracy on the "
            "training data ('train acc')") in text  # fmt: skip


def test_test_split_without_stratification_is_noted(capsys, tmp_path):
    path = tmp_path / "lonely.csv"
    path.write_text("\n".join([*small_table(), "0.5,0.5,2"]) + "\n")
    argv = ["prune", "--data", str(path), "--prune-ratio", "0", "--output-dir", str(tmp_path),
            *TINY]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().err.strip() == (
        "note: the test split is not stratified: class 2 has a single row, and a stratified "
        "split needs 2 of each class"
    )


def test_csv_with_a_pandas_index_column(capsys, tmp_path):
    path = tmp_path / "indexed.csv"
    rows = small_table()
    path.write_text(",a,b,y\n" + "".join(f"{i},{row}\n" for i, row in enumerate(rows)))
    err = error_of(capsys, ["prune", "--data", str(path), "--output-dir", str(tmp_path), *TINY])
    assert err == (
        f"sklearn-dropnet prune: error: {path}: column 1 has no name in the header row (a row "
        "index, as pandas' df.to_csv() writes? write the file with df.to_csv(index=False))"
    )


@pytest.mark.parametrize(
    "labels, classes",
    [(["01", "1", "2"], ["01", "1", "2"]),
     ([str(10**20 + i) for i in range(3)], [str(10**20 + i) for i in range(3)])],
)  # fmt: skip
def test_csv_labels_stay_text_unless_they_read_back_as_numbers(tmp_path, labels, classes):
    path = tmp_path / "labels.csv"
    rows = [line.rsplit(",", 1)[0] for line in small_table()]
    path.write_text("".join(f"{row},{labels[i % 3]}\n" for i, row in enumerate(rows)))
    argv = ["prune", "--data", str(path), "--prune-ratio", "0", "--test-size", "0",
            "--output-dir", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    assert joblib.load(tmp_path / "model.joblib").classes_.tolist() == classes


@pytest.mark.parametrize(
    "texts, expected",
    [(["2", "-7", "2"], [2, -7, 2]),
     (["0", "0.5", "1"], [0.0, 0.5, 1.0]),
     (["4.0", "2.0"], [4.0, 2.0]),
     (["01", "1"], ["01", "1"]),
     (["1", "1.0"], ["1", "1.0"]),
     (["1.50", "2"], ["1.50", "2"]),
     (["1e3", "5"], ["1e3", "5"]),
     (["1_000", "5"], ["1_000", "5"]),
     (["9007199254740993", "0.5"], ["9007199254740993", "0.5"]),
     (["cat", "1"], ["cat", "1"])],
)  # fmt: skip
def test_label_texts_become_numbers_only_when_they_read_back(texts, expected):
    from sklearn_dropnet.cli.csv_reader import _labels

    y = _labels(texts)
    assert y.tolist() == expected
    assert y.dtype.kind == {int: "i", float: "f", str: "U"}[type(expected[0])]


def test_nan_label_among_integers_is_still_an_error(capsys, tmp_path):
    path = tmp_path / "nan.csv"
    path.write_text("0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,NaN\n")
    err = error_of(capsys, ["prune", "--data", str(path), *TINY])
    assert err.endswith("nan.csv, line 3: 'NaN' is not a label (NaN or infinite labels: 1 of 3)")


def test_complex_features_are_refused(capsys, tmp_path):
    X = np.random.RandomState(0).rand(60, 4) + 1j
    np.savez(tmp_path / "complex.npz", X=X, y=np.arange(60) % 2)
    err = error_of(capsys, ["prune", "--data", str(tmp_path / "complex.npz"),
                            "--output-dir", str(tmp_path), *TINY])  # fmt: skip
    assert err == (
        f"sklearn-dropnet prune: error: X in {tmp_path / 'complex.npz'} holds complex numbers "
        "(complex128); the features must be real"
    )


class _Bottleneck(torch.nn.Module):
    """64 -> 8 without an activation (left unpruned) -> 16 -> ReLU -> 10."""

    def __init__(self, input_shape=(64,), n_classes=10):
        super().__init__()
        self.squeeze = torch.nn.Linear(input_shape[0], 8)
        self.hidden, self.act, self.out = torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, n_classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(self.squeeze(x))))


def test_prune_names_the_layers_left_unpruned_under_the_table(tmp_path, capsys, monkeypatch):
    from sklearn_dropnet.cli import prune as prune_command
    from sklearn_dropnet.cli.training import dropnet_classifier

    def with_bottleneck(args, verbose):
        params = dropnet_classifier(args, verbose).get_params(deep=False)
        return DropNetClassifier(module=_Bottleneck, **{k: v for k, v in params.items() if not k.startswith("module")})

    monkeypatch.setattr(prune_command, "dropnet_classifier", with_bottleneck)
    with pytest.warns(UserWarning, match="'squeeze' unpruned"):
        assert main(["prune", "--prune-ratio", "0.3", "--output-dir", str(tmp_path), *FAST]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("layers left unpruned (1):")
    assert lines[start + 1].startswith("  squeeze: its output reaches no activation")
    assert lines[start - 2].split()[0].isdigit()  # right under the table


def test_options_follow_the_estimators_constraints_and_defaults():
    """The command line takes its choices, ranges and defaults from DropNetClassifier."""
    import inspect

    from sklearn_dropnet import DropNetClassifier
    from sklearn_dropnet.pruning import UNIT_SCORES, register_unit_score

    defaults = {k: p.default for k, p in inspect.signature(DropNetClassifier).parameters.items()}
    args = build_parser().parse_args(["prune"])
    for name in ("drop_fraction", "scope", "unit_score", "reinit", "distill_weight", "distill_temperature",
                 "min_accuracy_ratio", "lr", "batch_size", "patience", "validation_fraction"):  # fmt: skip
        assert getattr(args, name) == defaults[name], name
    register_unit_score("cli_test_score", lambda layer, matrix, rng: matrix.mean(0))
    try:
        assert build_parser().parse_args(["prune", "--unit-score", "cli_test_score"]).unit_score == "cli_test_score"
    finally:
        del UNIT_SCORES["cli_test_score"]


# --- a model trained on named columns; files and arguments that do not fit ----------


@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    """A model ``prune`` trained on a .csv file with the header a,b,y; its path."""
    folder = tmp_path_factory.mktemp("named_model")
    (folder / "train.csv").write_text("a,b,y\n" + "\n".join(small_table()) + "\n")
    argv = ["prune", "--data", str(folder / "train.csv"), "--prune-ratio", "0",
            "--output-dir", str(folder), *TINY]  # fmt: skip
    assert main(argv) == 0
    assert list(joblib.load(folder / "model.joblib").feature_names_in_) == ["a", "b"]
    return folder / "model.joblib"


@pytest.mark.parametrize("header", ["a,b", "a,b,y"])
def test_predict_target_that_is_a_feature_column(capsys, tmp_path, named_model, header):
    """--target a would be a feature and the label at once (features only: a
    meaningless accuracy), or leave the real label column unexplained."""
    width = header.count(",") + 1
    rows = [",".join(row.split(",")[:width]) for row in small_table()]
    path = tmp_path / "new.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    assert error_of(capsys, ["predict", str(named_model), str(path), "--target", "a"]) == (
        "sklearn-dropnet predict: error: --target 'a' is one of the model's feature columns, "
        f"not a label; name the label column of {path} with --target, or leave --target out"
    )
    if width == 3:  # the label column named: predicted, with the accuracy
        assert main(["predict", str(named_model), str(path), "--target", "y"]) == 0
        assert capsys.readouterr().err.startswith(f"accuracy on the labels in {path}: ")


@pytest.mark.parametrize(
    "header, repeated",
    [("a,b,a", "'a' (columns 1 and 3)"),  # the label column named like a feature
     ("a,b,b", "'b' (columns 2 and 3)"),
     ("b,a,b,a,b,y", "'b' (columns 1, 3 and 5), 'a' (columns 2 and 4)")],
)  # fmt: skip
@pytest.mark.parametrize("command", ["prune", "ensemble", "predict"])
def test_a_header_that_repeats_a_column_name(
    capsys, tmp_path, named_model, command, header, repeated
):
    width = header.count(",") + 1
    rows = [f"0.{i % 7},{','.join(['0.5'] * (width - 2))},{i % 2}" for i in range(30)]
    path = tmp_path / "dup.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    if command == "predict":
        argv = ["predict", str(named_model), str(path)]
    else:
        sizes = ["-M", "2", "-S", "2"] if command == "ensemble" else []
        argv = [command, "--data", str(path), "--output-dir", str(tmp_path), *sizes, *TINY]
    message = (
        f"sklearn-dropnet {command}: error: {path}: the header repeats column names: "
        f"{repeated}; give each column a name of its own"
    )
    assert error_of(capsys, argv) == message
    if command == "prune":  # --target does not pick one of the columns of that name
        name = header.split(",")[0]
        assert error_of(capsys, [*argv, "--target", name]) == message


def test_model_argument_that_is_not_a_joblib_file(capsys, tmp_path, named_model):
    """A data file, or any other file, as MODEL (predict's arguments swapped)."""
    data = tmp_path / "data.csv"
    data.write_text("a,b,y\n" + "\n".join(small_table()) + "\n")
    np.savez(tmp_path / "data.npz", X=np.zeros((4, 2)), y=np.arange(4) % 2)
    (tmp_path / "notes.txt").write_text("hello\n")
    saved = ": MODEL is a file saved by 'prune' or 'ensemble' (joblib)"
    swapped = "; the order of the arguments is MODEL then DATA"
    for argv, model, end in [
        (["predict", str(data), str(named_model)], data, saved + swapped),
        (["predict", str(tmp_path / "data.npz"), str(data)], tmp_path / "data.npz", saved + swapped),
        (["predict", str(tmp_path / "notes.txt"), str(named_model)], tmp_path / "notes.txt", saved + swapped),
        (["predict", str(tmp_path / "notes.txt"), str(data)], tmp_path / "notes.txt", saved),
        (["export", str(data), "-o", str(tmp_path / "m.onnx")], data, saved),
    ]:  # fmt: skip
        err = error_of(capsys, argv)
        assert err.startswith(f"sklearn-dropnet {argv[0]}: error: cannot load a model from {model} ("), err
        assert err.endswith(end), err


def test_a_model_whose_code_cannot_be_imported_names_the_module(capsys, tmp_path, monkeypatch):
    """A model built on the user's own network class, run where Python cannot import it
    (the console script does not put the working folder on sys.path)."""
    (tmp_path / "mynet.py").write_text("class Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mynet

    joblib.dump(mynet.Net(), tmp_path / "model.joblib")
    monkeypatch.delitem(sys.modules, "mynet")
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry != str(tmp_path)])
    for argv in (["export", str(tmp_path / "model.joblib"), "-o", str(tmp_path / "m.onnx")],
                 ["predict", str(tmp_path / "model.joblib"), str(tmp_path / "data.csv")]):  # fmt: skip
        err = error_of(capsys, argv)
        assert err.endswith(
            f"cannot load a model from {tmp_path / 'model.joblib'}: it was saved with code from the module "
            "'mynet', which Python cannot import here. Run the command where it can: PYTHONPATH=<the folder "
            "that holds mynet> sklearn-dropnet ..., or python -m sklearn_dropnet ... from that folder"
        ), err


def test_cv_and_selection_fraction_together_are_refused(capsys, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("a,b,y\n" + "\n".join(small_table()) + "\n")
    argv = ["ensemble", "--data", str(path), "--output-dir", str(tmp_path), "-M", "2", "-S", "2", *TINY]
    assert error_of(capsys, [*argv, "--cv", "2", "--selection-fraction", "0.3"]).endswith(
        "--cv and --selection-fraction cannot be combined: with --cv the team is chosen on "
        "out-of-fold predictions and no share is held out; use one of the two"
    )
    ensemble_help = " ".join(build_parser()._subparsers._group_actions[0].choices["ensemble"].format_help().split())
    assert "held out to choose the team (never the test split) (default: 0.2)" in ensemble_help


@pytest.mark.parametrize("sizes", ["8,,4", ",8", "8,"])
def test_an_empty_layer_width_is_refused(capsys, sizes):
    err = error_of(capsys, ["prune", "--hidden-layer-sizes", sizes])
    assert f"'{sizes}' is not a comma-separated list of integers, e.g. 64,32" in err


def test_warnings_are_one_line_each(tmp_path):
    """Not Python's form, which named the console script's line and printed its source
    (``sys.exit(main())``) under each warning."""
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_dropnet", "prune", "--round-to", "64", "--max-epochs", "1", "--no-plot", "-q",
         "--output-dir", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    warned = [line for line in result.stderr.splitlines() if "Pruning stopped" in line]
    assert len(warned) == 1 and warned[0].startswith("sklearn-dropnet: warning: Pruning stopped at ")
    assert "UserWarning" not in result.stderr and "sys.exit" not in result.stderr


def test_images_are_described_by_their_shape_not_as_features(tmp_path, capsys, digits):
    X, y = digits[0][:200], digits[1][:200]
    np.savez(tmp_path / "images.npz", X=X.reshape(-1, 1, 8, 8), y=y)
    argv = ["prune", "--data", str(tmp_path / "images.npz"), "--prune-ratio", "0", "--test-size", "0",
            "--output-dir", str(tmp_path), *FAST]  # fmt: skip
    assert main(argv) == 0
    assert f"data: {tmp_path / 'images.npz'} (200 samples, each 1 x 8 x 8);" in capsys.readouterr().out
