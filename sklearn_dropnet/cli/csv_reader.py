"""Reading a ``.csv`` data file: the features ``X``, the labels ``y`` and the
feature names.

The file is read twice at most:

1. pandas (:func:`_read_with_pandas`) parses it, and its result is kept when
   the file is clean: every feature a finite number (within float32), every
   label present and finite, every row as wide as the first. pandas alone is
   more lenient than these rules (an empty cell or ``NA`` is a missing
   value, ``True`` a boolean, a short row is padded) and cannot say on which
   line of the file a row starts, so
2. any other file is read again with the :mod:`csv` module, row by row and
   cell by cell (:func:`_read_row_by_row`), which finds the first problem and
   names its line (the file's own line numbers: blank lines and the lines of
   a quoted multi-line cell are counted) and column. A file that breaks no
   rule after all (a row of empty cells, which is skipped; a number written
   ``1_000``) is read by it too.

Both read the header, choose the label column and convert the labels with
the same functions, so that they return the same arrays for a clean file.
"""

import csv
import math
import warnings
from collections import Counter
from contextlib import contextmanager
from itertools import islice

import numpy as np

from .errors import UsageError

# ---------------------------------------------------------------------------
# cells: numbers and labels
# ---------------------------------------------------------------------------


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _feature(text, where):
    """The feature cell ``text`` as a float32 number; NaN, infinities and
    numbers beyond float32's range are errors naming ``where``."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: {text!r} is not a finite number")
    with np.errstate(over="ignore"):
        too_large = not np.isfinite(np.float32(value))
    if too_large:
        raise UsageError(f"{where}: {text!r} is beyond the range of float32 (about 3.4e38)")
    return value


def _label_number(text):
    """The label ``text`` as an int or a float when it reads back as written
    ('7', '-2', '0.5', '4.0'; not '01', '1.50', '1e3', '1_000'), or NaN or
    infinity in any spelling (an error later); else None."""
    try:
        value = int(text)
    except ValueError:
        pass
    else:
        return value if str(value) == text else None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if repr(value) == text or not math.isfinite(value) else None


def _float_labels(numbers):
    """``numbers`` (ints and floats) as a float array; None when that would
    change an int or give two labels the same value ('1' and '1.0')."""
    try:
        values = [float(number) for number in numbers]
    except OverflowError:
        return None
    if any(value != number for value, number in zip(values, numbers) if math.isfinite(value)):
        return None
    finite = [number for number in numbers if math.isfinite(number)]
    if len({float(number) for number in finite}) != len({str(number) for number in finite}):
        return None
    return np.array(values)


def _labels(texts):
    """Labels from text: numbers when every label reads back as written (see
    :func:`_label_number`), int64 when they all are integers, else the strings.

    So '01', '1' and '2' stay three text labels, and integers beyond int64
    stay text rather than becoming floats that merge them. The result
    depends on the set of ``texts`` only: converting the distinct texts and
    indexing gives the same array.
    """
    numbers = [_label_number(text) for text in texts]
    if any(number is None for number in numbers):
        return np.array(texts)
    if all(isinstance(number, int) for number in numbers):
        try:
            return np.array(numbers, dtype=np.int64)
        except OverflowError:
            return np.array(texts)
    values = _float_labels(numbers)
    return np.array(texts) if values is None else values


def non_finite(y):
    """Indices of the NaN and infinite values of a numeric ``y``."""
    if y.dtype.kind not in "fc":
        return np.empty(0, dtype=int)
    return np.flatnonzero(~np.isfinite(y))


# ---------------------------------------------------------------------------
# rows: the header and the columns
# ---------------------------------------------------------------------------


def _pandas_names(cells):
    """Whether ``cells`` are the names pandas gives the columns of an unnamed
    data frame: 0, 1, ..., n-1, or 0, 1, ..., n-2 and a name (the label's)."""
    numbered = cells[:-1] == [str(i) for i in range(len(cells) - 1)]
    return numbered and (cells[-1] == str(len(cells) - 1) or not _is_number(cells[-1]))


def _names_the_features(first, feature_names):
    """Whether the cells ``first`` are the model's ``feature_names``, in any
    order, with at most one other column (a label's)."""
    distinct = len(set(first)) == len(first)
    return distinct and len(first) <= len(feature_names) + 1 and set(feature_names) <= set(first)


def _numbered_columns(cells):
    """Whether ``cells`` (2 or more) are integers written as such and
    increasing: column numbers or wavelengths (400, 405, ...) as names."""
    numbers = [_label_number(cell) for cell in cells]
    return (
        len(numbers) >= 2
        and all(isinstance(number, int) for number in numbers)
        and all(a < b for a, b in zip(numbers, numbers[1:]))
    )


def _names_above_text_labels(first, rows):
    """Whether ``first``, numeric cells and a text one, is the header of text
    labels in the following ``rows``: its numbers are increasing integers (see
    :func:`_numbered_columns`) and its last cell is the one label of the file
    on a single row."""
    if not rows or not _numbered_columns(first[:-1]):
        return False
    counts = Counter(row[-1].strip() for row in rows)
    return first[-1] not in counts and min(counts.values()) > 1


def _is_header(rows, target=None, feature_names=None):
    """Whether the first of a CSV file's ``rows`` is a header row.

    It is when it holds the ``target`` column name (``--target``) or the
    model's ``feature_names`` (see :func:`_names_the_features`); when one of
    its cells but the last (the features') is not a number; when its last
    cell is not a number but the second row's is (a column name above
    numeric labels), or is a text label no other row has while every other
    row's label is on several rows, under integer names (see
    :func:`_names_above_text_labels`); or, in a file of 3 or more columns,
    when it reads 0, 1, ..., n-1, or 0, 1, ..., n-2 and a name: the column
    names pandas writes for a data frame made from an array. Other text
    labels under numeric features are data, from the first row on.
    """
    first = [cell.strip() for cell in rows[0]]
    if target is not None and target in first:
        return True
    if feature_names is not None and _names_the_features(first, feature_names):
        return True
    if not all(_is_number(cell) for cell in first[:-1]):
        return True
    if not _is_number(first[-1]):
        if len(rows) > 1 and _is_number(rows[1][-1].strip()):
            return True
        return _names_above_text_labels(first, rows[1:])
    return len(first) >= 3 and _pandas_names(first)


@contextmanager
def _reading(path):
    """Open the CSV file ``path`` as text (a UTF-8 byte order mark skipped);
    a file that cannot be read or decoded, in the ``with`` block, is a
    :class:`UsageError`."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            yield file
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"cannot read {path}: {error}") from None


def _rows(file):
    """``(row, line)`` for each row of the CSV text ``file`` that is not
    blank (a cell that is not whitespace), with the line it starts on (a
    quoted cell may span lines). Reads no further than the row it yields."""
    reader = csv.reader(file)
    start = 1
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield row, start
        start = reader.line_num + 1


def _repeated_names(header):
    """The names ``header`` gives more than one column, each with the
    columns (numbered from 1) that bear it, for a message; '' when none."""
    columns = {}
    for column, name in enumerate(header, start=1):
        columns.setdefault(name, []).append(column)
    repeated = [
        f"{name!r} (columns {', '.join(map(str, numbers[:-1]))} and {numbers[-1]})"
        for name, numbers in columns.items()
        if len(numbers) > 1
    ]
    more = f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
    return ", ".join(repeated[:3]) + more


def _check_columns(rows, lines, header, path):
    """Check that the data ``rows`` have as many columns as the first and
    the ``header`` (None without one), that the last column is not empty on
    every row (trailing commas) and that every column has a name of its own."""
    width = len(rows[0])
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise UsageError(f"{path}, line {line}: {len(row)} columns, expected {width}")
    if header is not None and len(header) != width:
        raise UsageError(f"{path}: the header has {len(header)} columns, the data {width}")
    if all(not row[-1].strip() for row in rows) and (header is None or not header[-1]):
        raise UsageError(
            f"{path}: every row ends with ',' (an empty last column); remove the trailing commas"
        )
    for column, name in enumerate(header or []):
        if not name:
            raise UsageError(
                f"{path}: column {column + 1} has no name in the header row (a row index, as "
                "pandas' df.to_csv() writes? write the file with df.to_csv(index=False))"
            )
    repeated = _repeated_names(header or [])
    if repeated:
        raise UsageError(
            f"{path}: the header repeats column names: {repeated}; give each column a name "
            "of its own"
        )


def _target_column(header, path, target):
    """The index of the column named ``target`` (``--target``) in ``header``."""
    if target not in header:
        raise UsageError(f"no column {target!r} in {path}; the columns are: {', '.join(header)}")
    return header.index(target)


def _label_column(header, width, path, target, n_features):
    """The index of the label column of a CSV file, or None without one."""
    if target is not None:
        if header is None:
            raise UsageError(f"--target {target!r} needs a header row in {path}")
        label_column = _target_column(header, path, target)
    elif n_features is not None and width == n_features:
        label_column = None
    elif n_features is not None and width != n_features + 1:
        raise UsageError(
            f"{path} has {width} columns, but the model expects {n_features} features "
            f"({n_features + 1} columns with a label column)"
        )
    else:
        label_column = width - 1
    if label_column is not None and width < 2:
        raise UsageError(f"{path} needs at least one feature column besides the label")
    return label_column


def _named_columns(header, feature_names, path, target):
    """``(feature columns, label column or None)`` of a file to predict on,
    matched by name to the model's ``feature_names`` (in the model's order).
    The label is the ``target`` column, else the one column left over; a
    ``target`` among the ``feature_names`` is an error."""
    if target in feature_names:
        raise UsageError(
            f"--target {target!r} is one of the model's feature columns, not a label; name "
            f"the label column of {path} with --target, or leave --target out"
        )
    missing = [name for name in feature_names if name not in header]
    if missing:
        raise UsageError(
            f"{path} lacks columns the model was trained on: {', '.join(map(repr, missing[:5]))}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    if target is not None:
        _target_column(header, path, target)  # an error naming the columns if it is not one
    label = target
    others = [name for name in header if name not in feature_names and name != target]
    if others and (target is not None or len(others) > 1):
        raise UsageError(
            f"{path} has columns the model was not trained on: {', '.join(map(repr, others[:5]))}"
            + ("" if target is not None else "; name the label column with --target")
        )
    if label is None and others:
        label = others[0]
    return [header.index(name) for name in feature_names], (
        None if label is None else header.index(label)
    )


def _columns(header, width, path, target, n_features, feature_names):
    """``(feature columns, label column or None)`` of a file of ``width``
    columns: by name when it has a ``header`` and the model ``feature_names``
    (see :func:`_named_columns`), else by position (see :func:`_label_column`)."""
    if header is not None and feature_names is not None:
        return _named_columns(header, feature_names, path, target)
    label_column = _label_column(header, width, path, target, n_features)
    return [c for c in range(width) if c != label_column], label_column


def _feature_names(header, feature_columns):
    """The names of the feature columns; None without a header."""
    if header is None:
        return None
    return [header[column] for column in feature_columns]


# ---------------------------------------------------------------------------
# the careful reader: row by row, every error with its line
# ---------------------------------------------------------------------------


def _csv_labels(texts, path, lines):
    """The label column's cells as labels (see :func:`_labels`); empty, NaN
    and infinite labels are errors naming their line (``lines[i]`` is the
    line of ``texts[i]``)."""
    for text, line in zip(texts, lines):
        if not text:
            raise UsageError(f"{path}, line {line}: the label is empty")
    y = _labels(texts)
    bad = non_finite(y)
    if bad.size:
        raise UsageError(
            f"{path}, line {lines[bad[0]]}: {texts[bad[0]]!r} is not a label "
            f"(NaN or infinite labels: {bad.size} of {len(y)})"
        )
    return y


def _parse_csv(rows, lines, path, target, n_features, feature_names=None):
    """``X, y, names`` from the rows of a CSV file and their line numbers; see :func:`read_csv`."""
    header = None
    if _is_header(rows, target, feature_names):
        header, rows, lines = [cell.strip() for cell in rows[0]], rows[1:], lines[1:]
    if not rows:
        raise UsageError(f"{path} has a header but no data rows")
    _check_columns(rows, lines, header, path)
    feature_columns, label_column = _columns(
        header, len(rows[0]), path, target, n_features, feature_names
    )
    X = np.empty((len(rows), len(feature_columns)), dtype=np.float32)
    for i, (row, line) in enumerate(zip(rows, lines)):
        for j, column in enumerate(feature_columns):
            X[i, j] = _feature(row[column], f"{path}, line {line}, column {column + 1}")
    names = _feature_names(header, feature_columns)
    if label_column is None:
        return X, None, names
    texts = [row[label_column].strip() for row in rows]
    return X, _csv_labels(texts, path, lines), names


# Separators people use instead of ',', and their names in a message.
_OTHER_SEPARATORS = {";": "';'", "\t": "tabs"}


def _other_separator(rows):
    """The name of a separator of :data:`_OTHER_SEPARATORS` found on every
    row of a CSV file, in a row of one cell or in a cell before the last (a
    text label may hold one), or None."""
    for separator, name in _OTHER_SEPARATORS.items():
        if all(any(separator in cell for cell in row[:-1] or row) for row in rows):
            return name
    return None


def _read_row_by_row(path, target, n_features, feature_names):
    """``X, y, names`` read with the :mod:`csv` module, every cell checked
    in turn: the first problem is the error, with its line and column."""
    with _reading(path) as file:
        numbered = list(_rows(file))
    if not numbered:
        raise UsageError(f"{path} is empty")
    rows, lines = [row for row, _ in numbered], [line for _, line in numbered]
    try:
        return _parse_csv(rows, lines, path, target, n_features, feature_names)
    except UsageError:
        separator = _other_separator(rows)
        if separator is None:
            raise
        raise UsageError(
            f"{path} looks separated by {separator}: the reader needs commas between cells "
            "(and '.' as the decimal point)"
        ) from None


# ---------------------------------------------------------------------------
# the fast reader: pandas, for a clean file
# ---------------------------------------------------------------------------

# What pandas raises for a file it cannot parse: a row wider than the first, a
# quote left open, no rows, bytes that are not UTF-8, integers it cannot hold.
_PANDAS_ERRORS = (ValueError, OSError, OverflowError)


def _float32(features):
    """The numeric data frame ``features`` as a C-ordered float32 array, each
    number rounded as ``np.float32(float(text))`` rounds it: directly, but
    for integers of 2**53 or more, which float64 rounds first."""
    large = any(
        dtype.kind in "iu" and max(-int(column.min()), int(column.max())) >= 2**53
        for dtype, (_, column) in zip(features.dtypes, features.items())
    )
    with np.errstate(over="ignore"):
        values = features.to_numpy(np.float64 if large else np.float32)
        return np.ascontiguousarray(values, dtype=np.float32)


def _read_with_pandas(path, target, n_features, feature_names):
    """``X, y, names`` parsed by pandas, or None when the file is not clean
    (see the module's docstring); a :class:`UsageError` from the header or
    the columns is left to :func:`_read_row_by_row` to raise, after the
    checks that come before it."""
    import pandas as pd  # here: --help, and .npz files, need not wait for its import

    with _reading(path) as file:
        head = [row for row, _ in islice(_rows(file), 2)]
    if not head:
        return None
    first = [cell.strip() for cell in head[0]]
    header = first if _is_header(head, target, feature_names) else None
    if header is None and not _is_number(first[-1]) and _numbered_columns(first[:-1]):
        return None  # a header above text labels? the careful reader counts them
    data = head if header is None else head[1:]
    if not data:
        return None
    width = len(data[0])
    if header is not None and (
        len(header) != width or not all(header) or len(set(header)) != len(header)
    ):
        return None
    feature_columns, label_column = _columns(header, width, path, target, n_features, feature_names)
    with _reading(path) as file, warnings.catch_warnings():
        # A column of numbers and text in different chunks: text, read again.
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        if header is not None:
            next(_rows(file))  # the header row, and any blank rows before it
        try:
            frame = pd.read_csv(
                file,
                header=None,
                # No cell becomes NaN: an empty cell keeps its column as text.
                na_filter=False,
                dtype=None if label_column is None else {label_column: str},
            )
        except _PANDAS_ERRORS:
            return None
    if frame.shape[1] != width:
        return None
    features = frame.iloc[:, feature_columns]
    # A column of text (a cell that is not a number) or of booleans ('True').
    if any(dtype.kind not in "iuf" for dtype in features.dtypes):
        return None
    X = _float32(features)
    if not np.isfinite(X).all():  # too large for float32
        return None
    names = _feature_names(header, feature_columns)
    if label_column is None:
        return X, None, names
    codes, texts = pd.factorize(frame[label_column])
    texts = [str(text).strip() for text in texts]
    if (codes < 0).any() or not all(texts):
        return None
    labels = _labels(texts)
    if non_finite(labels).size:
        return None
    return X, labels[codes], names


def read_csv(path, target=None, n_features=None, feature_names=None):
    """``X, y, names`` from a CSV file; ``y`` is None when there is no label
    column, ``names`` (of the feature columns, in order) without a header
    row.

    The first row may be a header (see :func:`_is_header`), which must give
    every column a name of its own; a UTF-8 byte order mark is skipped;
    blank lines are skipped, and errors name the file's own line numbers.
    The label is the ``target`` column (needs a header), else the last
    column; with ``n_features`` given (prediction), a file of exactly
    ``n_features`` columns has no label column. Features must be finite
    numbers. A file that does not read as comma-separated and
    has ';' or a tab on every row is reported as separated by those. With
    ``feature_names`` (a model's ``feature_names_in_``), a file with a
    header has its columns matched by name (see :func:`_named_columns`).

    pandas reads a clean file; any other is read again row by row, to find
    its first problem (see the module's docstring).
    """
    try:
        table = _read_with_pandas(path, target, n_features, feature_names)
    except UsageError:
        table = None
    if table is None:
        return _read_row_by_row(path, target, n_features, feature_names)
    return table
