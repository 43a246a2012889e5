"""The command line's time to its first round against ``pandas.read_csv``.

Writes a 20,000 x 64 CSV file of digits-like values (scikit-learn's digits,
rows drawn with replacement, pixels / 16) and a label column to a temporary
folder, once with a header row and once without, and times, on each file:

- ``pandas.read_csv(path)``, pandas' defaults: the reference;
- everything ``sklearn-dropnet prune --data PATH`` does before it trains
  (:func:`sklearn_dropnet.cli.training.prepare_training`: torch set up, the
  file read and checked, the test split held out, the output folder checked);
- the same with the hand-written reader the command line had before it read
  with pandas, taken from git history (``--old-commit``; skipped when git or
  that commit is not at hand, or with ``--no-old``).

Each time is the median of ``--repeats`` runs, the readers taken in turn on
each repeat, so that the ratio compares runs under the same load. Issue 19
asks for a ratio of at most 2.

Usage::

    python benchmarks/bench_cli.py                # about 10 s with the old reader
    python benchmarks/bench_cli.py --repeats 9 --no-old
"""

import argparse
import csv
import importlib.util
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from sklearn_dropnet.cli import build_parser
from sklearn_dropnet.cli.training import prepare_training

REPOSITORY = Path(__file__).resolve().parents[1]


def write_digits_csv(path, n_rows, header, seed=0):
    """``n_rows`` digits (pixels / 16, label last) as a CSV file at ``path``."""
    X, y = load_digits(return_X_y=True)
    rows = np.random.RandomState(seed).randint(len(X), size=n_rows)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        if header:
            writer.writerow([f"pixel{i}" for i in range(X.shape[1])] + ["digit"])
        for row, label in zip(X[rows] / 16, y[rows]):
            writer.writerow([f"{value:g}" for value in row] + [label])


def old_reader(commit):
    """The module ``sklearn_dropnet/cli/io.py`` of ``commit`` (the hand-written
    reader), imported from a temporary file; None when git cannot show it."""
    try:
        source = subprocess.run(
            ["git", "-C", str(REPOSITORY), "show", f"{commit}:sklearn_dropnet/cli/io.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_cli_io.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_cli_io", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def old_prepare(io, args):
    """What ``prune`` did before training with the old reader (torch's set-up aside)."""
    X, y, _, _ = io.training_data(args)
    io.split_test(X, y, args.test_size, args.random_state)
    io.output_dir(args.output_dir)


def median_times(runs, repeats):
    """Median seconds of each of ``runs`` (name -> callable), taken in turn."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(seconds)) for name, seconds in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--old-commit", default="cba3478", help="a commit with the old reader")
    parser.add_argument("--no-old", action="store_true", help="do not time the old reader")
    options = parser.parse_args()
    io = None if options.no_old else old_reader(options.old_commit)
    if io is None and not options.no_old:
        print(f"note: cannot show {options.old_commit} with git; the old reader is not timed")

    with tempfile.TemporaryDirectory() as folder:
        for header in (True, False):
            path = Path(folder) / f"digits_{'header' if header else 'bare'}.csv"
            write_digits_csv(path, options.rows, header)
            argv = ["prune", "--data", str(path), "--output-dir", str(Path(folder) / "out")]
            args = build_parser().parse_args(argv)
            runs = {
                "pandas.read_csv": lambda: pd.read_csv(path),
                "prune before training": lambda: prepare_training(args),
            }
            if io is not None:
                runs[f"the same, old reader ({options.old_commit})"] = lambda: old_prepare(io, args)
            times = median_times(runs, options.repeats)
            size = path.stat().st_size / 2**20
            print(
                f"{options.rows:,} x 64 + label, {'a header row' if header else 'no header'} "
                f"({size:.1f} MiB), median of {options.repeats}:"
            )
            reference = times["pandas.read_csv"]
            for name, seconds in times.items():
                print(f"  {name:<36} {seconds:7.3f} s  ratio {seconds / reference:6.2f}")
            ratio = times["prune before training"] / reference
            print(f"  time to first round / pandas.read_csv: {ratio:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
