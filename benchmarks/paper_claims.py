"""The DropNet paper's claims, checked on the rows of ``reproduce_paper.py``.

Pure functions on the CSV rows (dicts with ``architecture``, ``model``,
``metric``, ``seed``, ``round``, ``fraction_left``, ``units`` and
``test_accuracy``). Every comparison is paired: two results of the same
seed (same data split, same initial weights) and the same round, so the
difference removes what the seeds share. Over the seeds, the mean
difference gets a Student-t 95% confidence interval.

Claims (Tan & Motani, ICML 2020):

(a) MLP: 60% or more of the nodes can be removed without significant loss.
(b) CNN: 90% or more of the filters can be removed without significant loss.
(c) DropNet (``min``) is close to the oracle.
(d) DropNet beats random pruning at 20% of the units left and below.
"""

import math

import numpy as np
from scipy import stats

CLAIMS = {
    "a": ("MLP: >= 60% of nodes removable without significant loss", 0.60),
    "b": ("CNN: >= 90% of filters removable without significant loss", 0.90),
    "c": ("min is close to the oracle", None),
    "d": ("min beats random at <= 20% of units left", 0.20),
}
CONV_MODELS = ("B", "C", "resnet18", "vgg16", "vgg19")


def definitions(tolerance):
    """The definitions the claim table applies, as printed lines."""
    tol = f"{tolerance:g} pt"
    return [
        "Paired difference: acc(X) - acc(Y) on the same seed (split, initial weights) and round,",
        "  in percentage points of test accuracy; mean over seeds with its Student-t 95% CI.",
        f"Without significant loss: the 95% CI of (pruned - dense) lies above -{tol}, i.e. the",
        f"  loss is below {tol} with 95% confidence. Removable: 1 - fraction left of the deepest",
        "  round such that it and every round before it are without significant loss.",
        f"Close to the oracle: at every pruned round, the 95% CI of (min - oracle) lies above -{tol}.",
        "Beats random: at every round with <= 20% of the units left, the 95% CI of",
        "  (min - random) lies above 0.",
    ]


def paired(values, reference):
    """Mean, 95% CI and count of ``values - reference`` in points (x100).

    Parameters
    ----------
    values, reference : dict of seed -> accuracy in [0, 1]
        Only seeds present in both are paired.

    Returns
    -------
    dict with ``mean``, ``low``, ``high`` (NaN with fewer than two seeds),
    ``n`` and ``above`` (the seeds whose difference is positive).
    """
    seeds = sorted(set(values) & set(reference))
    d = 100 * np.array([values[s] - reference[s] for s in seeds], dtype=float)
    above = int((d > 0).sum())
    if len(d) == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0, "above": 0}
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": 1, "above": above}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(d), "above": above}


def curves(rows):
    """``{(architecture, metric): {round: {seed: row}}}``."""
    out = {}
    for row in rows:
        key = (row["architecture"], row["metric"])
        out.setdefault(key, {}).setdefault(int(row["round"]), {})[int(row["seed"])] = row
    return out


def _accuracies(by_seed):
    return {seed: float(row["test_accuracy"]) for seed, row in by_seed.items()}


def _fraction(by_seed):
    return float(np.mean([float(row["fraction_left"]) for row in by_seed.values()]))


def _fmt(diff, seeds_above=False):
    """``-0.32 pt [-0.81, +0.17]``, and with ``seeds_above`` ``, 3/5 seeds > 0``."""
    text = f"{diff['mean']:+.2f} pt "
    text += f"(n={diff['n']}, no CI)" if diff["n"] < 2 else f"[{diff['low']:+.2f}, {diff['high']:+.2f}]"
    return text + (f", {diff['above']}/{diff['n']} seeds > 0" if seeds_above else "")


def removable(curve, tolerance):
    """Deepest round without significant loss against the dense round 0.

    Returns
    -------
    (fraction removed, rounds) where ``rounds`` lists ``(round, fraction
    left, paired difference to dense)`` for every pruned round.
    """
    dense = _accuracies(curve[0])
    rounds, best, broken = [], 0.0, False
    for r in sorted(curve)[1:]:
        diff = paired(_accuracies(curve[r]), dense)
        frac = _fraction(curve[r])
        rounds.append((r, frac, diff))
        ok = diff["n"] >= 2 and diff["low"] >= -tolerance
        if ok and not broken:
            best = 1 - frac
        broken = broken or not ok
    return best, rounds


def _claim_removable(label, arch, metric, curve, tolerance):
    threshold = CLAIMS[label][1]
    best, rounds = removable(curve, tolerance)
    at = next(((r, f, d) for r, f, d in rounds if 1 - f >= threshold - 1e-9), None)
    numbers = f"removable {best:.1%}"
    if at is not None:
        numbers += f"; at {1 - at[1]:.1%} removed: {_fmt(at[2])}"
    else:
        numbers += f"; no round reached {threshold:.0%} removed"
    return (label, arch, f"{metric} vs dense", best >= threshold - 1e-9, numbers)


def _claim_oracle(arch, min_curve, oracle_curve, tolerance):
    diffs = []
    for r in sorted(set(min_curve) & set(oracle_curve)):
        if r == 0:
            continue
        diffs.append((_fraction(min_curve[r]), paired(_accuracies(min_curve[r]), _accuracies(oracle_curve[r]))))
    if not diffs:
        return ("c", arch, "min vs oracle", False, "no pruned rounds in common")
    ok = all(d["n"] >= 2 and d["low"] >= -tolerance for _, d in diffs)
    frac, worst = min(diffs, key=lambda fd: fd[1]["low"] if fd[1]["n"] >= 2 else -math.inf)
    mean = np.mean([d["mean"] for _, d in diffs])
    numbers = f"mean over {len(diffs)} rounds {mean:+.2f} pt; worst at {frac:.3f} left: {_fmt(worst, True)}"
    return ("c", arch, "min vs oracle", ok, numbers)


def _claim_random(arch, name, curve, random_curve):
    low_rounds = [
        r for r in sorted(set(curve) & set(random_curve)) if _fraction(curve[r]) <= CLAIMS["d"][1] + 1e-9
    ]
    if not low_rounds:
        return ("d", arch, name, False, "no round with <= 20% of the units left")
    diffs = [(_fraction(curve[r]), paired(_accuracies(curve[r]), _accuracies(random_curve[r]))) for r in low_rounds]
    ok = all(d["n"] >= 2 and d["low"] > 0 for _, d in diffs)
    numbers = "; ".join(f"{frac:.3f} left: {_fmt(d, True)}" for frac, d in diffs)
    return ("d", arch, name, ok, numbers)


def claim_rows(rows, tolerance=1.0):
    """One row per claim and network: ``(claim, architecture, comparison, reproduced, numbers)``.

    Claims (a) and (b) are checked for ``min`` and ``min_layer``, (c) where
    the oracle ran, (d) for ``min`` against ``random`` and ``min_layer``
    against ``random_layer``, on every architecture in ``rows``.
    """
    by_curve = curves(rows)
    archs = sorted({arch for arch, _ in by_curve}, key=lambda a: (a.split()[0] in CONV_MODELS, a))
    out = []
    for arch in archs:
        label = "b" if arch.split()[0] in CONV_MODELS else "a"
        for metric in ("min", "min_layer"):
            if (arch, metric) in by_curve:
                out.append(_claim_removable(label, arch, metric, by_curve[arch, metric], tolerance))
    for arch in archs:
        if (arch, "min") in by_curve and (arch, "oracle") in by_curve:
            out.append(_claim_oracle(arch, by_curve[arch, "min"], by_curve[arch, "oracle"], tolerance))
    for arch in archs:
        for metric, control in (("min", "random"), ("min_layer", "random_layer")):
            if (arch, metric) in by_curve and (arch, control) in by_curve:
                name = f"{metric} vs {control}"
                out.append(_claim_random(arch, name, by_curve[arch, metric], by_curve[arch, control]))
    return out


def format_claims(claim_table, tolerance=1.0):
    """The claim table with its definitions, as text."""
    lines = [f"Paper claims (tolerance {tolerance:g} pt)"] + definitions(tolerance) + [""]
    header = f"{'claim':<6}{'network':<10}{'comparison':<27}{'verdict':<16}numbers"
    lines += [header, "-" * len(header)]
    for label, arch, comparison, ok, numbers in sorted(claim_table, key=lambda row: row[0]):
        verdict = "reproduced" if ok else "not reproduced"
        lines.append(f"({label})   {arch:<10}{comparison:<27}{verdict:<16}{numbers}")
    lines += [""] + [f"({k}) {text}" for k, (text, _) in CLAIMS.items()]
    return "\n".join(lines)
