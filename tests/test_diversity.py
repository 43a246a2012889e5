"""Diversity metrics: hand-computed values, textbook references, focal diversity."""

from itertools import combinations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from sklearn_dropnet import diversity
from sklearn_dropnet.diversity import (
    METRICS,
    binary_disagreement,
    cohen_kappa,
    fleiss_kappa,
    focal_diversity,
    generalized_diversity,
    kohavi_wolpert_variance,
    q_statistic,
)

# Three members, six samples, three classes. Which member is right:
#   sample        s0 s1 s2 s3 s4 s5
#   m0             1  1  1  1  1  0
#   m1             1  1  0  0  1  1
#   m2             1  0  1  0  0  1
#   right (l_j)    3  2  2  1  2  2     failures k_j = 3 - l_j: 0 1 1 2 1 1
Y = np.array([0, 1, 2, 0, 1, 2])
P = np.array(
    [
        [0, 1, 2, 0, 1, 0],
        [0, 1, 1, 1, 1, 2],
        [0, 2, 2, 1, 0, 2],
    ]
)

HAND_VALUES = {
    # P1 = mean(k / 3) = 1/3, P2 = mean(k (k-1) / 6) = 1/18, GD = 1 - 1/6
    generalized_diversity: 5 / 6,
    # sum l (3 - l) = 0 + 2 + 2 + 2 + 2 + 2 = 10, / (6 * 9)
    kohavi_wolpert_variance: 10 / 54,
    # pairs (0,1): s2 s3 s5; (0,2): s1 s3 s4 s5; (1,2): s1 s2 s4 -> (3+4+3)/18
    binary_disagreement: 10 / 18,
    # (0,1): N11=3 N10=2 N01=1 N00=0 -> -1; (0,2): 2,3,1,0 -> -1;
    # (1,2): 2,2,1,1 -> (2-2)/(2+2) = 0
    q_statistic: -2 / 3,
    # (0,1): po=1/2 pe=12/36 -> 1/4; (0,2): po=1/3 pe=11/36 -> 1/25;
    # (1,2): po=1/2 pe=9/36 -> 1/3
    cohen_kappa: (1 / 4 + 1 / 25 + 1 / 3) / 3,
    # P = 8 agreeing pairs / 18 = 4/9; label counts 6, 7, 5 of 18 ->
    # Pe = 110/324; (4/9 - 55/162) / (1 - 55/162) = 17/107
    fleiss_kappa: 17 / 107,
}


@pytest.mark.parametrize("metric", list(HAND_VALUES), ids=lambda f: f.__name__)
def test_metric_matches_hand_computed_value(metric):
    assert metric(Y, P) == pytest.approx(HAND_VALUES[metric], abs=1e-12)


def test_focal_generalized_diversity_by_hand():
    # m0 wrong on {s5}: k = (1,) -> GD = 1
    # m1 wrong on {s2, s3}: k = (1, 2) -> P1 = 1/2, P2 = 1/6 -> GD = 2/3
    # m2 wrong on {s1, s3, s4}: k = (1, 2, 1) -> P1 = 4/9, P2 = 1/9 -> GD = 3/4
    expected = (1 + 2 / 3 + 3 / 4) / 3
    assert focal_diversity(Y, P, metric="generalized_diversity") == pytest.approx(
        expected
    )


def test_focal_binary_disagreement_by_hand():
    # m0 on {s5}: pairs (0,1) 1, (0,2) 1, (1,2) 0 -> 2/3
    # m1 on {s2,s3}: (0,1) 1, (0,2) 1/2, (1,2) 1/2 -> 2/3
    # m2 on {s1,s3,s4}: (0,1) 1/3, (0,2) 1, (1,2) 2/3 -> 2/3
    assert focal_diversity(Y, P, metric="binary_disagreement") == pytest.approx(2 / 3)


def test_focal_q_statistic_counts_undefined_pairs_as_independent():
    # On a focal model's negatives that model is always wrong, so each pair
    # holding it has N11 = N10 = 0 and Q = 0/0, counted as 0; here the third
    # pair is 0/0 as well, so every view is Q = 0 and the focal value 1 - 0.
    assert focal_diversity(Y, P, metric="q_statistic") == pytest.approx(1.0)


# --- textbook references, written the slow way (loops over samples) -------


def reference_oracle_counts(a, b):
    n11 = sum(x and z for x, z in zip(a, b))
    n10 = sum(x and not z for x, z in zip(a, b))
    n01 = sum(z and not x for x, z in zip(a, b))
    n00 = sum(not x and not z for x, z in zip(a, b))
    return n11, n10, n01, n00


def reference(metric, y, predictions):
    correct = [[p == t for p, t in zip(row, y)] for row in predictions]
    n_members, n_samples = len(predictions), len(y)
    pairs = list(combinations(range(n_members), 2))
    if metric == "generalized_diversity":
        fails = [sum(not correct[m][j] for m in range(n_members)) for j in range(n_samples)]
        p = [fails.count(k) / n_samples for k in range(n_members + 1)]
        p1 = sum(k / n_members * p[k] for k in range(n_members + 1))
        p2 = sum(k * (k - 1) / (n_members * (n_members - 1)) * p[k] for k in range(n_members + 1))
        return 1 - p2 / p1
    if metric == "kohavi_wolpert_variance":
        right = [sum(correct[m][j] for m in range(n_members)) for j in range(n_samples)]
        return sum(r * (n_members - r) for r in right) / (n_samples * n_members**2)
    if metric == "binary_disagreement":
        values = []
        for a, b in pairs:
            n11, n10, n01, n00 = reference_oracle_counts(correct[a], correct[b])
            values.append((n01 + n10) / n_samples)
        return np.mean(values)
    if metric == "q_statistic":
        values = []
        for a, b in pairs:
            n11, n10, n01, n00 = reference_oracle_counts(correct[a], correct[b])
            values.append((n11 * n00 - n01 * n10) / (n11 * n00 + n01 * n10))
        return np.mean(values)
    if metric == "cohen_kappa":
        return np.mean([cohen_kappa_score(predictions[a], predictions[b]) for a, b in pairs])
    if metric == "fleiss_kappa":
        categories = sorted(set(np.ravel(predictions)))
        table = [[list(col).count(c) for c in categories] for col in zip(*predictions)]
        pairs_per_sample = n_members * (n_members - 1)
        p_j = [(sum(n * n for n in row) - n_members) / pairs_per_sample for row in table]
        n_predictions = n_samples * n_members
        p_k = [sum(row[k] for row in table) / n_predictions for k in range(len(categories))]
        p_bar, p_e = np.mean(p_j), sum(p * p for p in p_k)
        return (p_bar - p_e) / (1 - p_e)
    raise AssertionError(metric)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metric_matches_textbook_reference(metric, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=60)
    # members right about 70% of the time, otherwise a random label
    predictions = np.where(rng.random((5, 60)) < 0.7, y, rng.integers(0, 4, size=(5, 60)))
    function = getattr(diversity, metric)
    assert function(y, predictions) == pytest.approx(reference(metric, y, predictions))


@pytest.mark.parametrize("metric", METRICS)
def test_focal_diversity_is_exact_mean_over_focal_models(metric):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=80)
    predictions = np.where(rng.random((4, 80)) < 0.75, y, rng.integers(0, 3, size=(4, 80)))
    agreement = metric in ("q_statistic", "cohen_kappa", "fleiss_kappa")
    views = []
    for focal in range(4):
        negatives = predictions[focal] != y
        value = getattr(diversity, metric)(y[negatives], predictions[:, negatives])
        views.append(1 - value if agreement else value)
    assert focal_diversity(y, predictions, metric=metric) == pytest.approx(np.mean(views))


@pytest.mark.parametrize(
    "metric", [m for m in METRICS if m != "q_statistic"]
)  # Q is 0/0 on a copied team's shared negatives, see its docstring
def test_focal_diversity_is_higher_for_a_diverse_team(metric):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, size=200)
    diverse = np.where(rng.random((3, 200)) < 0.7, y, rng.integers(0, 3, size=(3, 200)))
    copies = np.repeat(diverse[:1], 3, axis=0)
    assert focal_diversity(y, diverse, metric) > focal_diversity(y, copies, metric)
    assert focal_diversity(y, copies, metric) == pytest.approx(0.0)


def test_focal_model_without_errors_is_left_out():
    y = np.array([0, 0, 0, 0])
    perfect = [0, 0, 0, 0]
    predictions = np.array([perfect, [1, 1, 0, 0], [0, 0, 1, 1]])
    expected = focal_diversity(y, predictions[[1, 2, 0]])  # same team, reordered
    assert np.isfinite(expected)
    assert focal_diversity(y, predictions) == pytest.approx(expected)
    assert np.isnan(focal_diversity(y, [perfect, perfect]))


def test_string_labels_and_lists():
    y = ["a", "b", "c", "a", "b", "c"]
    names = np.array(["a", "b", "c"])
    predictions = names[P].tolist()
    for metric, value in HAND_VALUES.items():
        assert metric(y, predictions) == pytest.approx(value)


def test_cohen_kappa_pair_matches_scikit_learn():
    a, b = P[0], P[2]
    assert cohen_kappa(Y, [a, b]) == pytest.approx(cohen_kappa_score(a, b))


def test_constant_identical_members_agree_fully():
    y = [0, 1, 0, 1]
    constant = [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert cohen_kappa(y, constant) == 1.0
    assert fleiss_kappa(y, constant) == 1.0


def test_rare_disagreements_among_many_samples_are_not_rounded_away():
    # Shares of a few samples in 10**5 or 10**6 are tiny; the 0/0 cases of Q
    # and kappa must be decided on exact counts, not by a tolerance.
    n = 100_000
    y, a, b = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)
    a[:10], b[10:20] = 1, 1  # never wrong together: N11 * N00 > 0, N01 * N10 > 0
    assert q_statistic(y, [a, b]) == -1.0
    n = 1_000_000
    a, b = np.zeros(n, int), np.zeros(n, int)
    a[[0, 1]], b[[0, 2]] = 1, 1
    assert cohen_kappa(np.zeros(n, int), [a, b]) == pytest.approx(
        cohen_kappa_score(a, b), rel=1e-9
    )
    a, b = np.zeros(n, int), np.zeros(n, int)
    a[0], b[1] = 1, 1  # one disagreement each: kappa slightly below 0, not 1
    assert cohen_kappa(np.zeros(n, int), [a, b]) == pytest.approx(
        cohen_kappa_score(a, b), rel=1e-9
    )
    # Fleiss: observed 1 - 2/n, chance (1 - 1/n)**2 + (1/n)**2: -1 / (n - 1).
    assert fleiss_kappa(np.zeros(n, int), [a, b]) == pytest.approx(-1 / (n - 1), rel=1e-6)


def test_no_failures_gives_zero_generalized_diversity():
    assert generalized_diversity([0, 1], [[0, 1], [0, 1]]) == 0.0


def test_many_samples_in_one_vectorised_pass():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, size=200_000)
    predictions = np.where(rng.random((6, y.size)) < 0.8, y, rng.integers(0, 10, size=(6, y.size)))
    values = [getattr(diversity, m)(y, predictions) for m in METRICS]
    assert np.all(np.isfinite(values))
    assert 0 < focal_diversity(y, predictions) < 1


@pytest.mark.parametrize(
    "y, predictions, message",
    [
        ([0, 1], [[0, 1]], "at least 2 members"),
        ([0, 1], [[0, 1, 1], [0, 1, 0]], "n_samples"),
        ([[0, 1]], [[0, 1], [0, 1]], "1-dimensional"),
        ([], np.empty((2, 0)), "at least one sample"),
        ([0, 1], [[0, 1], [0]], "rows have different lengths"),
    ],
)
def test_invalid_input(y, predictions, message):
    with pytest.raises(ValueError, match=message):
        kohavi_wolpert_variance(y, predictions)


def test_unknown_metric():
    with pytest.raises(ValueError, match="metric must be one of"):
        focal_diversity(Y, P, metric="entropy")


def test_metric_that_is_not_a_name():
    with pytest.raises(ValueError, match="metric must be one of"):
        focal_diversity(Y, P, metric=["q_statistic"])


def test_labels_that_cannot_be_ordered():
    with pytest.raises(TypeError, match="one comparable kind"):
        generalized_diversity([0, 1, None], [[0, 1, None], [0, None, 1]])
