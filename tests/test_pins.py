"""Results pinned before code moved: the same ``random_state`` gives the same history.

``tests/pins/make_pins.py`` recorded each case's ``pruning_history_``
(times aside), its predictions and a hash of every bit of its
probabilities on the test split. A refactor must reproduce them exactly;
a change meant to alter results regenerates them and says so in its commit.
Bits depend on the CPU's instruction set (torch picks its kernels by it),
so on a machine of another kind only what does not depend on the last bit
is compared.
"""

import json
from pathlib import Path

import pytest
import torch

from tests.pins.make_pins import CASES, run_case

PINS = json.loads((Path(__file__).parent / "pins" / "pins.json").read_text())
SAME_KIND = torch.backends.cpu.get_cpu_capability() == PINS["cpu_capability"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_same_random_state_same_results(name):
    got, pinned = run_case(name), PINS[name]
    if not SAME_KIND:  # the rounds' sizes are the same; the weights may differ in the last bit
        units = [(r["round"], r["units_per_layer"]) for r in got["history"]]
        assert units == [(r["round"], r["units_per_layer"]) for r in pinned["history"]]
        pytest.skip(f"pinned on a {PINS['cpu_capability']} CPU; this one is {torch.backends.cpu.get_cpu_capability()}")
    assert got["history"] == pinned["history"]
    assert got["predictions"] == pinned["predictions"]
    assert got["proba_sha256"] == pinned["proba_sha256"]
