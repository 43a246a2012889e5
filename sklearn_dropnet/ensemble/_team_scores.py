"""Held-out accuracy and log loss of many teams' combined predictions.

``votes`` (n_members, n_samples, K) is what each member adds to a team's
combined prediction (see ``_ensemble_selection.py``); a team's combined
prediction is the class with the largest sum of its members' votes, ties
going to the first class. Summing the votes is most of the work, so a team
is summed as a *base* team plus one *newcomer*: HQ's teams are grown from
the teams of the level below, and many share one base, whose sum is then
computed once.
"""

import numpy as np

# Summed votes are computed at most _CHUNK_VALUES numbers (32 MiB) at a time.
_CHUNK_VALUES = 2**22
_EPS = np.finfo(np.float64).eps


def _tie_key(values):
    """``values`` rounded to 10 decimals, as a sort key for tie-breaking.

    Teams that tie exactly (e.g. copies of one deterministic member) get log
    losses and diversities that differ in the last bits, by the order of the
    floating-point sums; rounded, they tie, and the next rule decides.
    """
    return np.round(values, 10)


def member_votes(probas, voting):
    """Votes of each member: probabilities (``"soft"``) or one-hot labels."""
    if voting == "soft":
        return probas
    return np.eye(probas.shape[2])[probas.argmax(axis=2)]


def team_scores(votes, y, teams):
    """Held-out accuracy and log loss of each team's combined prediction.

    The combined probability of a class is the team's mean vote for it (its
    members' mean probability, or the share of members voting for it); the
    log loss is the mean of ``-log`` of the true class's combined
    probability, clipped at machine epsilon. A team's votes are summed
    member by member, in the order the team lists them; a member listed
    twice counts twice.

    Returns
    -------
    accuracy, log_loss : ndarray of shape (n_teams,)
    """
    teams = np.asarray(teams)
    return extended_team_scores(votes, y, teams[:, :-1], np.arange(len(teams)), teams[:, -1])


def team_accuracy(votes, y, teams):
    """Held-out accuracy of each team's combined prediction, shape (n_teams,)."""
    return team_scores(votes, y, teams)[0]


def extended_team_scores(votes, y, bases, base_of_team, newcomers):
    """:func:`team_scores` of the teams ``bases[base_of_team] + newcomers``.

    Parameters
    ----------
    votes : ndarray of shape (n_members, n_samples, K)
    y : ndarray of shape (n_samples,)
    bases : ndarray of shape (n_bases, size - 1)
        Teams one member smaller (of no member for teams of one).
    base_of_team : ndarray of int, shape (n_teams,)
        Each team's row of ``bases``.
    newcomers : ndarray of int, shape (n_teams,)
        Each team's last member, added to its base's sum.

    Returns
    -------
    accuracy, log_loss : ndarray of shape (n_teams,)
    """
    n_samples = votes.shape[1]
    size = bases.shape[1] + 1
    # Classes in the middle: a maximum over them is then a few elementwise
    # maxima of whole rows of samples, much faster than over a short last axis.
    by_class = np.ascontiguousarray(votes.transpose(0, 2, 1))
    accuracy, log_loss = np.empty(len(newcomers)), np.empty(len(newcomers))
    chunk = max(1, _CHUNK_VALUES // votes[0].size // 2)  # the bases' sums and the teams'
    for start in range(0, len(newcomers), chunk):
        done = slice(start, start + chunk)
        used, base = np.unique(base_of_team[done], return_inverse=True)
        summed = _summed_votes(by_class, bases[used])[base]
        summed += by_class[newcomers[done]]
        true_class = summed[:, y, np.arange(n_samples)]
        accuracy[done] = _is_first_largest(summed, true_class, y).mean(axis=1)
        log_loss[done] = -np.log(np.clip(true_class / size, _EPS, None)).mean(axis=1)
    return accuracy, log_loss


def _summed_votes(by_class, teams):
    """Each team's votes summed member by member: (n_teams, K, n_samples)."""
    summed = np.zeros((len(teams), *by_class.shape[1:]))
    for position in range(teams.shape[1]):
        summed += by_class[teams[:, position]]
    return summed


def _is_first_largest(summed, true_class, y):
    """Whether the true class has the largest sum, the first if tied: (n_teams, n_samples).

    ``summed`` is (n_teams, K, n_samples), ``true_class`` its true-class
    row. The true class wins where its sum is larger than every other
    class's, or equal to the largest of them and no class before it has
    that sum (``argmax`` picks the first). Overwrites ``summed``.
    """
    samples = np.arange(summed.shape[2])
    summed[:, y, samples] = -np.inf
    best_other = summed.max(axis=1)
    right = true_class > best_other
    team, sample = np.nonzero(true_class == best_other)
    earlier = np.arange(summed.shape[1]) < y[sample, None]
    tied_earlier = (summed[team, :, sample] == true_class[team, sample, None]) & earlier
    right[team, sample] = ~tied_earlier.any(axis=1)
    return right
