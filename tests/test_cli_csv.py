"""The command line's CSV reader: pandas reads clean files, the csv-module
reader the others, and the two never disagree.

tests/test_cli.py pins the messages through the command line; these tests
check the two paths of sklearn_dropnet/cli/csv_reader.py against each other.
"""

import csv

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from sklearn_dropnet.cli import main
from sklearn_dropnet.cli.csv_reader import _read_row_by_row, _read_with_pandas, read_csv
from sklearn_dropnet.cli.errors import UsageError

TINY = ["--max-epochs", "2", "--hidden-layer-sizes", "16", "--quiet", "--no-plot"]


def both_paths(path, target=None, n_features=None, feature_names=None):
    """``(pandas' result or None, the careful reader's result or its UsageError)``."""
    try:
        fast = _read_with_pandas(path, target, n_features, feature_names)
    except UsageError:
        fast = None
    try:
        careful = _read_row_by_row(path, target, n_features, feature_names)
    except UsageError as error:
        careful = error
    return fast, careful


def assert_same_table(fast, careful):
    assert not isinstance(careful, UsageError), f"pandas read a file the reader refuses: {careful}"
    (X_fast, y_fast, names_fast), (X, y, names) = fast, careful
    assert X_fast.dtype == X.dtype == np.float32 and X_fast.flags.c_contiguous
    np.testing.assert_array_equal(X_fast, X)
    assert (y_fast is None) == (y is None)
    if y is not None:
        assert y_fast.dtype == y.dtype
        np.testing.assert_array_equal(y_fast, y)
    assert names_fast == names


def digits_rows(digits, n=200):
    X, y = digits
    return X[:n], y[:n]


CLEAN = {
    "bare": lambda X, y: [[*map("{:g}".format, row), label] for row, label in zip(X, y)],
    "header": lambda X, y: [[f"p{i}" for i in range(X.shape[1])] + ["digit"]]
    + [[*map("{:g}".format, row), label] for row, label in zip(X, y)],
    "label first": lambda X, y: [["digit"] + [f"p{i}" for i in range(X.shape[1])]]
    + [[label, *map("{:g}".format, row)] for row, label in zip(X, y)],
    "text labels": lambda X, y: [[*map("{:g}".format, row), f"class {label}"] for row, label in zip(X, y)],
    "float labels": lambda X, y: [[*map("{:g}".format, row), f"{label:.1f}"] for row, label in zip(X, y)],
    "pandas names": lambda X, y: [list(range(X.shape[1] + 1))]
    + [[*map("{:.17g}".format, row), label] for row, label in zip(X, y)],
}  # fmt: skip


@pytest.mark.parametrize("layout", list(CLEAN))
@pytest.mark.parametrize("style", ["plain", "crlf and blank lines", "byte order mark and quotes"])
def test_pandas_reads_clean_files_as_the_careful_reader_does(tmp_path, digits, layout, style):
    rows = CLEAN[layout](*digits_rows(digits))
    path = tmp_path / "data.csv"
    with open(path, "w", newline="", encoding="utf-8-sig" if "byte" in style else "utf-8") as f:
        quoting = csv.QUOTE_ALL if "quotes" in style else csv.QUOTE_MINIMAL
        writer = csv.writer(f, lineterminator="\r\n" if "crlf" in style else "\n", quoting=quoting)
        for i, row in enumerate(rows):
            writer.writerow(row)
            if "blank" in style and i % 50 == 0:
                f.write("\r\n   \r\n")
    target = "digit" if layout == "label first" else None
    fast, careful = both_paths(path, target=target)
    assert fast is not None, "pandas did not read a clean file"
    assert_same_table(fast, careful)


def test_pandas_matches_columns_by_name_for_predict(tmp_path, digits):
    X, y = digits_rows(digits)
    names = [f"p{i}" for i in range(64)]
    order = np.random.RandomState(0).permutation(64)
    path = tmp_path / "shuffled.csv"
    header = ",".join([names[i] for i in order] + ["digit"])
    np.savetxt(path, np.column_stack([X[:, order], y]), "%g", ",", header=header, comments="")
    fast, careful = both_paths(path, n_features=64, feature_names=names)
    assert fast is not None
    assert_same_table(fast, careful)
    np.testing.assert_array_equal(fast[0], X)  # back in the model's order
    features_only = tmp_path / "features.csv"
    np.savetxt(features_only, X, delimiter=",", fmt="%.9g")
    fast, careful = both_paths(features_only, n_features=64)
    assert fast is not None and fast[1] is None
    assert_same_table(fast, careful)


# Cells pandas alone would read otherwise than the rules: a missing value, a
# boolean, a padded row, text where a number belongs.
@pytest.mark.parametrize(
    "text, message",
    [("a,b,y\n1,2,0\n3,NA,1\n", "line 3, column 2: 'NA' is not a number"),
     ("a,b,y\n1,2,0\n3,,1\n", "line 3, column 2: '' is not a number"),
     ("a,b,y\nTrue,2,0\nFalse,4,1\n", "line 2, column 1: 'True' is not a number"),
     ("1,2,0\n3,4\n5,6,1\n", "line 2: 2 columns, expected 3"),
     ("1,2,0\n3,4,1,\n", "line 2: 4 columns, expected 3"),
     ("1,2,0\n3,4,nan\n", "line 2: 'nan' is not a label (NaN or infinite labels: 1 of 2)"),
     ("1,2,0\n3,4, \n", "line 2: the label is empty"),
     ("1,2,0\n3,1e39,1\n", "line 2, column 2: '1e39' is beyond the range of float32"),
     ("1,2,0\n3,Infinity,1\n", "line 2, column 2: 'Infinity' is not a finite number"),
     ('1,2,0\n"3\n",x,1\n', "line 2, column 2: 'x' is not a number")],
)  # fmt: skip
def test_files_pandas_reads_leniently_keep_their_messages(tmp_path, text, message):
    path = tmp_path / "odd.csv"
    path.write_text(text)
    fast, careful = both_paths(path)
    assert fast is None, "pandas' result kept for a file that is not clean"
    with pytest.raises(UsageError) as info:
        read_csv(path)
    assert str(info.value).startswith(f"{path}, {message}")


@pytest.mark.parametrize(
    "text, by_pandas",
    [("1,2,0\n3,4,null\n", True),  # a text label, as the reader reads it
     ("1,2,0\n,,\n3,4,1\n", False),  # a row of empty cells: skipped
     ("1,2_000,0\n3,4,1\n", False)],  # a number Python reads
)  # fmt: skip
def test_files_pandas_reads_otherwise_are_read_as_before(tmp_path, text, by_pandas):
    path = tmp_path / "odd.csv"
    path.write_text(text)
    fast, careful = both_paths(path)
    assert (fast is not None) == by_pandas
    assert_same_table(read_csv(path), careful)
    assert len(careful[0]) == 2


# Cells and rows for random files: clean ones and every kind of trouble.
FEATURES = ["0.5", "1", "-2", "3e2", " 4 ", "0.0625", "7.", ".25", '"8"', "-0.0", "1e-40",
            "", "NA", "nan", "-inf", "True", "1_0", "1e39", "x", "0x1", "1,5", '"9\n"']  # fmt: skip
LABELS = ["0", "1", "2", "01", "1.0", "2.5", "-3", "cat", "dog", "", "nan", "NA", " 1 ", '"a,b"',
          "1e3", str(2**70), "inf", '"c\nd"']  # fmt: skip


def random_file(rng):
    """The text of a small CSV file drawn from :data:`FEATURES` and
    :data:`LABELS`, with a header, blank rows, a ragged row or a byte order
    mark now and then; and the ``--target`` it may name. Half of the files
    are clean; in the others one cell in ten may be any of the lists."""
    width = rng.randint(2, 5)
    clean = rng.rand() < 0.5
    classes = rng.choice(LABELS[:9], size=rng.randint(1, 4)).tolist()

    def draw(clean_choices, choices):
        pool = choices if not clean and rng.rand() < 0.1 else clean_choices
        return pool[rng.randint(len(pool))]

    lines, target = [], None
    if rng.rand() < 0.4:
        names = [f"c{j}" for j in range(width)]
        target = names[rng.randint(width)] if rng.rand() < 0.5 else None
        lines.append(",".join(names))
    label_column = width - 1 if target is None else int(target[1:])
    for _ in range(rng.randint(1, 12)):
        row = [draw(FEATURES[:10], FEATURES) for _ in range(width)]
        row[label_column] = draw(classes, LABELS)
        if not clean and rng.rand() < 0.05:
            row = row[:-1] if rng.rand() < 0.5 else row + ["1"]
        lines.append(",".join(row))
        if rng.rand() < 0.1:
            lines.append(rng.choice(["", "  ", ",,"]))
    text = ("\r\n" if rng.rand() < 0.2 else "\n").join(lines) + "\n"
    return ("\ufeff" if rng.rand() < 0.1 else "") + text, target


def test_pandas_never_disagrees_with_the_careful_reader(tmp_path):
    rng = np.random.RandomState(0)
    path = tmp_path / "random.csv"
    read_by_pandas = 0
    for _ in range(400):
        text, target = random_file(rng)
        path.write_text(text, encoding="utf-8")
        fast, careful = both_paths(path, target=target)
        if fast is not None:
            assert_same_table(fast, careful)
            read_by_pandas += 1
        if isinstance(careful, UsageError):
            with pytest.raises(UsageError) as info:
                read_csv(path, target=target)
            assert str(info.value) == str(careful)
        else:
            assert_same_table(read_csv(path, target=target), careful)
    assert read_by_pandas > 100  # the clean half, and the messy files that drew no bad cell


def test_a_row_of_empty_cells_is_skipped_by_the_command(tmp_path, capsys):
    rows = [f"{i % 7 / 7:.3f},{i % 5 / 5:.3f},{i % 2}" for i in range(40)]
    rows.insert(10, ",,")
    path = tmp_path / "gap.csv"
    path.write_text("\n".join(rows) + "\n")
    argv = ["prune", "--data", str(path), "--prune-ratio", "0", "--test-size", "0",
            "--output-dir", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    assert f"data: {path} (40 samples, 2 features)" in capsys.readouterr().out


def test_large_integers_round_as_the_careful_reader_rounds_them(tmp_path):
    # float64 rounds 2**60 + 2**36 + 1 to 2**60 + 2**36, halfway between two
    # float32 numbers, which then rounds to the even one, 2**60; a direct
    # cast to float32 would give 2**60 + 2**37.
    n = 2**60 + 2**36 + 1
    path = tmp_path / "large.csv"
    path.write_text(f"{n},1,0\n5,2,1\n")
    fast, careful = both_paths(path)
    assert fast is not None
    assert_same_table(fast, careful)
    assert fast[0][0, 0] == np.float32(float(n)) == 2.0**60
    assert np.array(n, dtype=np.int64).astype(np.float32) == 2.0**60 + 2.0**37


@pytest.mark.parametrize("cell", ["0.5", "x"])  # a clean file, and one with a bad cell after it
def test_a_repeated_column_name_is_an_error_on_both_paths(tmp_path, cell):
    path = tmp_path / "dup.csv"
    path.write_text(f"a,b,a\n0.1,0.2,0\n0.3,{cell},1\n")
    fast, careful = both_paths(path)
    assert fast is None
    message = (
        f"{path}: the header repeats column names: 'a' (columns 1 and 3); give each column a "
        "name of its own"
    )
    assert str(careful) == message
    with pytest.raises(UsageError, match="repeats column names") as info:
        read_csv(path)
    assert str(info.value) == message


# Numeric column names: wavelengths in nm, as a spectrometer writes them.
WAVELENGTHS = [str(400 + 5 * i) for i in range(64)]
WORDS = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


def test_predict_reads_a_header_of_the_models_numeric_feature_names(tmp_path, digits, capsys):
    X, y = digits_rows(digits)
    model = LogisticRegression(max_iter=300).fit(pd.DataFrame(X, columns=WAVELENGTHS), y)
    joblib.dump(model, tmp_path / "model.joblib")
    path = tmp_path / "new.csv"
    pd.DataFrame(X[:5], columns=WAVELENGTHS).to_csv(path, index=False)
    fast, careful = both_paths(path, n_features=64, feature_names=WAVELENGTHS)
    assert_same_table(fast, careful)
    np.testing.assert_array_equal(careful[0], X[:5])
    assert careful[2] == WAVELENGTHS
    assert main(["predict", str(tmp_path / "model.joblib"), str(path)]) == 0
    predicted = capsys.readouterr().out.split()
    expected = model.predict(pd.DataFrame(X[:5], columns=WAVELENGTHS))
    assert predicted == [str(label) for label in expected]


def test_training_reads_a_header_of_numeric_names_above_text_labels(tmp_path, digits, capsys):
    X, y = digits_rows(digits)
    path = tmp_path / "spectra.csv"
    pd.DataFrame(X, columns=WAVELENGTHS).assign(species=WORDS[y]).to_csv(path, index=False)
    for target in [None, "species"]:
        X_read, y_read, names = read_csv(path, target=target)
        np.testing.assert_array_equal(X_read, X)
        np.testing.assert_array_equal(y_read, WORDS[y])
        assert names == WAVELENGTHS
    argv = ["prune", "--data", str(path), "--target", "species", "--prune-ratio", "0",
            "--test-size", "0", "--output-dir", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    assert f"data: {path} (200 samples, 64 features)" in capsys.readouterr().out
    model = joblib.load(tmp_path / "model.joblib")
    assert sorted(model.classes_) == sorted(set(WORDS[y]))
    assert list(model.feature_names_in_) == WAVELENGTHS


@pytest.mark.parametrize(
    "text",
    ["1,2,cat\n3,4,dog\n5,6,cat\n7,8,dog\n",  # increasing integers, but 'cat' is on two rows
     "1,2,cat\n3,4,dog\n",  # every label on one row: nothing says the first row is a header
     "400,405,0\n0.5,0.25,1\n0.75,0,0\n",  # numeric labels
     "1,2,3\n4,5,6\n"],
)  # fmt: skip
def test_a_file_without_a_header_keeps_its_first_row(tmp_path, text):
    path = tmp_path / "bare.csv"
    path.write_text(text)
    X, y, names = read_csv(path)
    assert names is None and len(X) == len(y) == text.count("\n")
    assert X[0].tolist() == [float(cell) for cell in text.split("\n")[0].split(",")[:-1]]
    X, y, names = read_csv(path, n_features=2, feature_names=["a", "b"])
    assert names is None and len(X) == text.count("\n")
