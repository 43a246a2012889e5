"""Every gallery example runs to the end (as sphinx-gallery would run it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))


def test_examples_are_found():
    assert len(EXAMPLES) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(example, tmp_path):
    # A fresh interpreter per example, as in the docs build; figures are
    # drawn by the non-interactive Agg backend, files go to tmp_path.
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{example.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    if example.name == "plot_plain_pytorch_loop.py":
        _check_rounds_match_the_estimators(result.stdout)


def _check_rounds_match_the_estimators(stdout):
    """The plain-PyTorch loop prunes the default MLP on the digits to 20% of
    its units in rounds of the estimator's sizes, layer by layer."""
    import ast
    import re

    from sklearn.datasets import load_digits

    from sklearn_dropnet import DropNetClassifier

    printed = [
        (int(units), ast.literal_eval(per_layer))
        for units, per_layer in re.findall(r"round +\d+: +(\d+) units (\{[^}]*\})", stdout)
    ]
    X, y = load_digits(return_X_y=True)
    clf = DropNetClassifier(prune_ratio=0.8, max_epochs=1, random_state=0).fit(X[:500] / 16, y[:500])
    expected = [(r["units"], r["units_per_layer"]) for r in clf.pruning_history_]
    assert printed == expected
    assert printed[-1][0] == int(0.2 * printed[0][0])  # 76 of 384
