"""Ordered aggregation: members picked one at a time, each once.

The ensemble-pruning methods that order the pool by what each member adds
to the members picked before it, and keep the first ``n_select``
(Martínez-Muñoz, Hernández-Lobato & Suárez's *ordered aggregation*). They
work on the held-out arrays of ``_ensemble_selection.py``: ``votes``
(members, samples, K), ``labels`` (members, samples) and ``y``.

- :func:`reduced_error_select` -- the member that makes the team's combined
  prediction most accurate (Margineantu & Dietterich's reduced-error
  pruning, without back-fitting);
- :func:`complementarity_select` -- the member right most often where the
  team is wrong (Martínez-Muñoz & Suárez, 2004);
- :func:`margin_distance_select` -- the member that brings the team's
  average signature closest to a point of small positive margins
  (Martínez-Muñoz & Suárez, 2004).

Each is called ``select(labels, votes, y, n_select)``, uses what it needs of
these, and returns the picks in order, distinct members.

References
----------
D. Margineantu and T. G. Dietterich, "Pruning Adaptive Boosting", ICML 1997.

G. Martínez-Muñoz and A. Suárez, "Aggregation Ordering in Bagging", IASTED
International Conference on Artificial Intelligence and Applications, 2004.

G. Martínez-Muñoz, D. Hernández-Lobato and A. Suárez, "An Analysis of
Ensemble Pruning Techniques Based on Ordered Aggregation", IEEE TPAMI 31(2),
2009.
"""

import numpy as np

from ._ensemble_selection import greedy_select

#: The reference point of margin distance minimisation: every component
#: ``p = 0.075``, the value of Martínez-Muñoz et al. (2009); the 2004 paper
#: draws ``p`` from (0, 0.25).
MARGIN_DISTANCE_P = 0.075


def reduced_error_select(labels, votes, y, n_select):
    """Greedy forward selection without replacement, on held-out accuracy.

    Starts from the most accurate member and adds, one at a time, the member
    not yet picked that makes the team's combined prediction most accurate;
    ties go to the lower held-out log loss of the team, then to the lower
    index (as in ``greedy_select``, which picks with replacement).
    """
    return greedy_select(votes, y, n_select, replacement=False)


def complementarity_select(labels, votes, y, n_select):
    """Members right most often where the team so far is wrong.

    Starts from the most accurate member. Then, at each step, counts for
    every member not yet picked the held-out samples it gets right and the
    team's combined prediction (the largest summed vote, the first class if
    tied) gets wrong, and adds the member with the largest count; ties go to
    the more accurate member, then to the lower index.
    """
    right = labels == y
    accuracy = right.mean(axis=1)
    order = np.lexsort((np.arange(len(labels)), -accuracy))  # tie-break order
    picks = [int(order[0])]
    total = votes[picks[0]].copy()
    while len(picks) < n_select:
        team_right = total.argmax(axis=1) == y
        count = (right & ~team_right).sum(axis=1)
        count[picks] = -1
        best = order[np.argmax(count[order])]  # the first of the largest, in tie-break order
        picks.append(int(best))
        total += votes[best]
    return np.array(picks)


def margin_distance_select(labels, votes, y, n_select, p=MARGIN_DISTANCE_P):
    """Members that bring the team's signature closest to a reference point.

    A member's signature has one component per held-out sample, +1 where it
    is right and -1 where it is wrong; a team's is the mean of its
    members'. Each step adds the member not yet picked that brings the
    team's signature nearest (Euclidean distance) to the point whose
    components all equal ``p``, small and positive: every sample just on
    the right side of the majority vote. Ties go to the lower index.
    """
    signature = np.where(labels == y, 1.0, -1.0)
    picks, total = [], np.zeros(len(y))
    for size in range(1, n_select + 1):
        distance = (((total + signature) / size - p) ** 2).sum(axis=1)
        distance[picks] = np.inf
        best = int(np.argmin(distance))
        picks.append(best)
        total += signature[best]
    return np.array(picks)
