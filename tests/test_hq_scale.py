"""HQ for large pools: the capped (beam) search, focal diversity from count
tables, teams scored from a base plus a newcomer."""

from itertools import combinations

import numpy as np
import pytest

from sklearn_dropnet.diversity import METRICS
from sklearn_dropnet.ensemble import _focal_counts
from sklearn_dropnet.ensemble._diversity import focal_scores
from sklearn_dropnet.ensemble._ensemble_selection import (
    MAX_TEAMS_PER_LEVEL,
    _ranking,
    hq_select,
)
from sklearn_dropnet.ensemble._focal_counts import (
    MAX_TABLE_MEMBERS,
    count_tables,
    sample_focal_scores,
    table_focal_scores,
)
from sklearn_dropnet.ensemble._team_growth import grow_beam, grow_exact
from sklearn_dropnet.ensemble._team_scores import (
    extended_team_scores,
    member_votes,
    team_scores,
)


def by_level(candidates):
    """{size: set of teams} and {size: set of surviving teams}."""
    teams, survivors = {}, {}
    for team, survived in zip(candidates["team"], candidates["survived"]):
        teams.setdefault(len(team), set()).add(team)
        if survived:
            survivors.setdefault(len(team), set()).add(team)
    return teams, survivors


# --- focal diversity from count tables ---------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_members, n_samples, n_classes", [(9, 200, 5), (12, 97, 3), (40, 130, 10)])
def test_table_focal_scores_are_the_sample_by_sample_ones(
    metric, n_members, n_samples, n_classes, simulated_members
):
    _, labels, y = simulated_members(n_members, n_samples, n_classes, seed=n_members)
    labels[0] = y  # a member with no negative sample: NaN from its view
    tables = count_tables(labels, y, metric)
    for size in (2, 3, 5):
        teams = np.array(list(combinations(range(n_members), size))[:2000])
        expected = focal_scores(labels, y, teams, metric)
        got = table_focal_scores(tables, teams, metric)
        assert np.isnan(got).any()
        if metric == "generalized_diversity":  # other sums, the same value to the last bits
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
        else:  # the same expressions of the same counts
            np.testing.assert_array_equal(got, expected)


def test_teams_scored_sample_by_sample_come_in_chunks_that_shrink_as_samples_grow(monkeypatch, simulated_members):
    _, labels, y = simulated_members(12, 3000, 5, seed=1)
    teams = np.array(list(combinations(range(12), 3)))
    expected = focal_scores(labels, y, teams, "cohen_kappa")
    chunks = []

    def recording(labels, y, teams, metric):
        chunks.append(len(teams))
        return focal_scores(labels, y, teams, metric)

    monkeypatch.setattr(_focal_counts, "focal_scores", recording)
    monkeypatch.setattr(_focal_counts, "_CHUNK_VALUES", 3 * 3000 * 50)  # 50 teams of 3 on 3,000 samples
    np.testing.assert_array_equal(sample_focal_scores(labels, y, teams, "cohen_kappa"), expected)
    assert chunks == [50] * 4 + [20]  # 220 teams: 1,024 to a chunk made 2.5 GB on 50,000 samples


def test_only_the_capped_levels_are_scored_from_tables(monkeypatch, simulated_members):
    built = []
    monkeypatch.setattr(
        "sklearn_dropnet.ensemble._focal_counts.count_tables",
        lambda labels, y, metric: built.append(len(labels)) or count_tables(labels, y, metric),
    )
    probas, labels, y = simulated_members(12, n_samples=100)
    hq_select(labels, probas, y, 5)  # exact: sample by sample, as always
    assert built == []
    hq_select(labels, probas, y, 5, max_teams_per_level=50)
    assert built == [12]
    probas, labels, y = simulated_members(MAX_TABLE_MEMBERS + 1, n_samples=30)
    hq_select(labels, probas, y, 3, max_teams_per_level=50)  # too large for the tables
    assert built == [12]


# --- team scores ------------------------------------------------------------------


def reference_scores(votes, y, teams):
    accuracy, log_loss = [], []
    for team in teams:
        summed = sum(votes[m] for m in team)
        accuracy.append(np.mean(summed.argmax(axis=1) == y))
        true = np.clip(summed[np.arange(len(y)), y] / len(team), np.finfo(float).eps, None)
        log_loss.append(-np.mean(np.log(true)))
    return np.array(accuracy), np.array(log_loss)


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_teams_scored_from_a_base_and_a_newcomer(voting, simulated_members):
    probas, _, y = simulated_members(12, n_samples=80, n_classes=4, seed=3, skill=(0.3, 0.5))
    votes = member_votes(probas, voting)  # hard votes tie often: the first class wins
    rng = np.random.default_rng(0)
    bases = np.sort(np.array([rng.choice(12, 3, replace=False) for _ in range(20)]), axis=1)
    base_of_team = rng.integers(0, 20, 300)
    newcomers = rng.integers(0, 12, 300)
    teams = np.column_stack([bases[base_of_team], newcomers])
    accuracy, log_loss = extended_team_scores(votes, y, bases, base_of_team, newcomers)
    expected_accuracy, expected_log_loss = reference_scores(votes, y, teams)
    np.testing.assert_array_equal(accuracy, expected_accuracy)
    np.testing.assert_allclose(log_loss, expected_log_loss, rtol=1e-12)
    # team_scores sums the same way: member by member, in the team's order
    np.testing.assert_array_equal(team_scores(votes, y, teams)[0], accuracy)
    singles = team_scores(votes, y, np.arange(12)[:, None])[0]
    np.testing.assert_array_equal(singles, (probas.argmax(axis=2) == y).mean(axis=1))


# --- growing a level ----------------------------------------------------------------


def test_exact_growth_stops_as_soon_as_the_cap_is_passed():
    survivors = np.array(list(combinations(range(8), 3)))
    teams, _ = grow_exact(survivors, 8)
    assert len(teams) == 70  # every 4 of 8
    assert grow_exact(survivors, 8, max_teams=70)[0].shape == (70, 4)
    assert grow_exact(survivors, 8, max_teams=69) is None


def test_beam_growth_takes_the_most_diverse_survivors_first():
    survivors = np.array([[0, 1], [2, 3], [1, 4], [0, 5]])  # most diverse first
    dropped = np.array([[1, 2]])
    teams, (bases, base_of_team, newcomers) = grow_beam(survivors, dropped, 6, max_teams=7)
    # [0, 1] grows by 2 .. 5, but [0, 1, 2] holds the dropped [1, 2]; then
    # [2, 3] by 0, 1, 4, 5 ([1, 2, 3] holds [1, 2]); then [1, 4]: [0, 1, 4]
    # is there already, [1, 2, 4] holds [1, 2], and [1, 3, 4] fills the level.
    assert teams.tolist() == [
        [0, 1, 3], [0, 1, 4], [0, 1, 5], [0, 2, 3], [2, 3, 4], [2, 3, 5], [1, 3, 4]
    ]  # fmt: skip
    for team, base, newcomer in zip(teams, base_of_team, newcomers):
        assert sorted([*bases[base], newcomer]) == team.tolist()
    assert len({tuple(t) for t in teams}) == len(teams)


# --- the capped search ---------------------------------------------------------------


@pytest.mark.parametrize("metric", ["generalized_diversity", "q_statistic", "fleiss_kappa"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_cap_above_every_level_is_the_exact_search(metric, seed, simulated_members):
    probas, labels, y = simulated_members(11, n_samples=120, seed=seed)
    exact_team, exact = hq_select(labels, probas, y, 5, metric=metric, max_teams_per_level=None)
    largest = np.bincount(exact["size"])[3:].max()  # the largest grown level
    team, capped = hq_select(labels, probas, y, 5, metric=metric, max_teams_per_level=largest)
    np.testing.assert_array_equal(team, exact_team)
    assert capped["team"].tolist() == exact["team"].tolist()
    for key in ("focal_diversity", "accuracy", "log_loss", "survived"):
        np.testing.assert_array_equal(capped[key], exact[key])
    # One team fewer allowed: the largest grown level no longer fits, and is capped.
    _, smaller = hq_select(labels, probas, y, 5, metric=metric, max_teams_per_level=largest - 1)
    assert np.bincount(smaller["size"])[3:].max() <= largest - 1
    assert smaller["team"].tolist() != exact["team"].tolist()


def test_the_capped_search_grows_from_the_most_diverse_survivors(simulated_members):
    probas, labels, y = simulated_members(30, n_samples=150, seed=2)
    cap = 200
    _, candidates = hq_select(labels, probas, y, 6, max_teams_per_level=cap)
    teams, survivors = by_level(candidates)
    assert len(teams[2]) == comb2(30)  # level 2 holds every pair
    for size in range(3, 7):
        assert 0 < len(teams[size]) <= cap
        assert all(list(team) == sorted(team) for team in teams[size])
        dropped = teams[size - 1] - survivors[size - 1]
        below = candidates["size"] == size - 1
        ranked = _ranking(candidates["normalized_diversity"][below], candidates["accuracy"][below])
        ranked = [candidates["team"][below][i] for i in ranked[::-1]]
        ranked = [team for team in ranked if team in survivors[size - 1]]
        bases = set()
        for team in teams[size]:
            subs = {tuple(t) for t in combinations(team, size - 1)}
            assert not subs & dropped  # a dropped team eliminates its supersets
            grown_from = subs & survivors[size - 1]
            assert grown_from  # each is a survivor plus one member
            bases.add(min(grown_from, key=ranked.index))
        # the survivors that grew are the most diverse ones
        assert bases == set(ranked[: len(bases)])


def comb2(n):
    return n * (n - 1) // 2


def test_selection_from_128_members_on_2000_samples_completes(simulated_members):
    """The issue's size: M = 128, S = 8 (the time is a benchmark figure, see
    benchmarks/bench_hq_scale.py)."""
    probas, labels, y = simulated_members(128, n_samples=2000, n_classes=10, seed=7)
    team, candidates = hq_select(labels, probas, y, 8)
    sizes = np.bincount(candidates["size"])
    assert sizes[2] == comb2(128)
    assert sizes[3:].max() <= MAX_TEAMS_PER_LEVEL
    assert len(sizes) == 9  # every level up to S = 8 was reached
    assert 2 <= len(team) <= 8 and len(set(team.tolist())) == len(team)
    chosen = candidates["team"].tolist().index(tuple(team))
    assert candidates["survived"][chosen]


@pytest.mark.parametrize("cap", [10, 40])
def test_the_capped_search_does_not_depend_on_the_order_members_are_listed_in(cap, simulated_members):
    # Where the cap cuts a survivor's growth short, the newcomers that join
    # are the most accurate, not the first listed: before, all 6 of these
    # orders gave another team at cap 10.
    probas, labels, y = simulated_members(24, n_samples=150, seed=3)
    team, _ = hq_select(labels, probas, y, 5, max_teams_per_level=cap)
    for seed in range(6):
        order = np.random.default_rng(seed).permutation(24)
        permuted, _ = hq_select(labels[order], probas[order], y, 5, max_teams_per_level=cap)
        assert sorted(order[permuted].tolist()) == team.tolist()


def test_beam_growth_takes_newcomers_in_the_order_given():
    survivors, dropped = np.array([[0, 1]]), np.empty((0, 2), dtype=np.int64)
    teams, _ = grow_beam(survivors, dropped, 6, max_teams=2, member_order=np.array([5, 4, 3, 2, 1, 0]))
    assert teams.tolist() == [[0, 1, 5], [0, 1, 4]]
