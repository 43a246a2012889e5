"""How HQ grows the teams of its next level from a level's survivors.

A team is a row of sorted member indices; a level is a 2-d array of teams
of one size. Each function returns the new level and where each of its
teams came from, ``(bases, base_of_team, newcomers)``: the team is
``bases[base_of_team]`` plus the member ``newcomers`` (so that its votes
can be summed from its base's, see ``_team_scores.py``).

- :func:`grow_exact`: the published rule. Every team one member larger all
  of whose sub-teams one member smaller survived. Each is built once, from
  its first members, so the rows come in the order of their survivors.
- :func:`grow_beam`: the capped rule. The survivors, most diverse first,
  are each extended by every member they lack, until the level holds
  ``max_teams`` distinct teams; a team is left out when one of its
  sub-teams one member smaller was dropped.

With a cap above the level's size both give the same teams; only the exact
rule knows that a sub-team it never saw was eliminated earlier, so once a
level has been capped, later levels grow by the beam rule.
"""

import numpy as np

# Teams built at a time: 2**20 rows of a few int64 columns.
_CHUNK_ROWS = 2**20


def all_pairs(n_members):
    """Level 2: every pair of members, in lexicographic order, and its origin."""
    first, second = np.triu_indices(n_members, k=1)
    return np.column_stack([first, second]), (np.arange(n_members)[:, None], first, second)


def grow_exact(survivors, n_members, max_teams=None):
    """Teams one member larger whose every sub-team survived.

    Each survivor is extended by every member with a larger index than its
    last (so each larger team is built once, from its first members), then
    a new team is kept only if all of its sub-teams of the survivors' size
    are survivors.

    Returns
    -------
    teams : ndarray of shape (n_teams, size + 1)
    origin : tuple
        ``(survivors, base_of_team, newcomers)``.

    Or None when there would be more than ``max_teams`` teams (found without
    building them all).
    """
    surviving_rows = row_keys(survivors)
    extensions = n_members - 1 - survivors[:, -1]  # newcomers of each survivor
    grown, bases, newcomers = [], [], []
    for owners in _chunks_of_rows(extensions, _CHUNK_ROWS):
        block = survivors[owners]
        owner, newcomer = np.nonzero(np.arange(n_members) > block[:, -1:])
        rows = np.column_stack([block[owner], newcomer])
        keep = np.ones(len(rows), dtype=bool)
        for left_out in range(rows.shape[1]):
            keep &= np.isin(row_keys(np.delete(rows, left_out, axis=1)), surviving_rows)
        grown.append(rows[keep])
        bases.append(owners.start + owner[keep])
        newcomers.append(newcomer[keep])
        if max_teams is not None and sum(map(len, grown)) > max_teams:
            return None
    return _level(grown, survivors, bases, newcomers)


def grow_beam(ranked_survivors, dropped, n_members, max_teams, member_order=None):
    """Up to ``max_teams`` teams one member larger, from the most diverse survivors.

    Parameters
    ----------
    ranked_survivors : ndarray of shape (n_survivors, size)
        The level's survivors, most diverse first.
    dropped : ndarray of shape (n_dropped, size)
        The level's dropped teams: no grown team may contain one.
    n_members : int
        Size of the pool.
    max_teams : int
        Most teams returned.
    member_order : ndarray of shape (n_members,), default=None
        The order in which a survivor takes newcomers (by default that of
        their indices): where the cap cuts a survivor's growth short, the
        first in this order join. An order by what the members predict
        makes the teams independent of the order the members are listed in.

    Returns
    -------
    teams : ndarray of shape (n_teams, size + 1)
        Sorted rows, each team once, in the order they were first grown:
        by survivor, then by the newcomer's place in ``member_order``.
    origin : tuple
        ``(ranked_survivors, base_of_team, newcomers)``.
    """
    dropped_rows = row_keys(dropped)
    order = np.arange(n_members) if member_order is None else np.asarray(member_order)
    size = ranked_survivors.shape[1]
    grown, bases, newcomers = [], [], []
    seen, n_grown = row_keys(np.empty((0, size + 1))), 0
    # Blocks of survivors that build about twice the teams still missing.
    per_survivor = np.full(len(ranked_survivors), n_members - size)
    for owners in _chunks_of_rows(per_survivor, min(_CHUNK_ROWS, 2 * max_teams)):
        block = ranked_survivors[owners]
        lacking = np.ones((len(block), n_members), dtype=bool)
        lacking[np.arange(len(block))[:, None], block] = False
        owner, place = np.nonzero(lacking[:, order])
        newcomer = order[place]
        rows = np.sort(np.column_stack([block[owner], newcomer]), axis=1)
        keys = row_keys(rows)
        _, first = np.unique(keys, return_index=True)
        keep = np.zeros(len(rows), dtype=bool)
        keep[first] = True  # the first of each team in this block ...
        keep &= ~np.isin(keys, seen)  # ... not grown by an earlier block
        for left_out in range(size + 1):
            keep &= ~np.isin(row_keys(np.delete(rows, left_out, axis=1)), dropped_rows)
        fits = np.flatnonzero(keep)[: max_teams - n_grown]
        grown.append(rows[fits])
        bases.append(owners.start + owner[fits])
        newcomers.append(newcomer[fits])
        seen = np.concatenate([seen, keys[fits]])
        n_grown += len(fits)
        if n_grown >= max_teams:
            break
    return _level(grown, ranked_survivors, bases, newcomers)


def _level(grown, bases, base_of_team, newcomers):
    """The grown teams and their origin, each concatenated over the blocks."""
    if not grown:
        empty = np.empty(0, dtype=np.int64)
        return np.empty((0, bases.shape[1] + 1), dtype=np.int64), (bases, empty, empty)
    return np.concatenate(grown), (
        bases,
        np.concatenate(base_of_team),
        np.concatenate(newcomers),
    )


def row_keys(rows):
    """One hashable/sortable key per row (its bytes), for ``np.isin``."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()


def _chunks_of_rows(rows_per_item, n_rows):
    """Slices of consecutive items that build about ``n_rows`` rows each (one item at least)."""
    bounds = np.cumsum(rows_per_item)
    start = 0
    while start < len(rows_per_item):
        done = bounds[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(bounds, done + n_rows, side="right")))
        yield slice(start, stop)
        start = stop
