"""Plots of a pruning run and of an HQ team search (needs matplotlib).

- :func:`plot_pruning_curve` -- validation accuracy against the share of
  units left, one point per DropNet round, from ``pruning_history_``.
- :func:`plot_units_per_layer` -- units left in each prunable layer, dense
  against pruned.
- :func:`plot_hq_candidates` -- the teams an :class:`~sklearn_dropnet.HQEnsembleClassifier`
  examined: focal diversity against held-out accuracy, the chosen team
  marked.

matplotlib is an optional dependency (``pip install sklearn-dropnet[plot]``);
it is imported when a function is called, not with this module. Every
function draws on ``ax`` when given (else on a new figure) and returns the
axes, so that plots can be combined and restyled.
"""

import numpy as np

__all__ = ["plot_pruning_curve", "plot_units_per_layer", "plot_hq_candidates"]

# What the x axis of a pruning curve can show: history key -> axis label.
_X_AXES = {
    "fraction_left": "fraction of units left",
    "units": "units left",
    "params": "parameters",
    "macs": "multiply-accumulates per sample",
}


def _pyplot():
    """Import ``matplotlib.pyplot`` or say how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib, an optional dependency of sklearn-dropnet; "
            "install it with: pip install sklearn-dropnet[plot]"
        ) from error
    return plt


def _axes(ax):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots()
    return ax


def _pruning_history(estimator):
    """``pruning_history_`` of a fitted DropNet estimator, or a history list.

    A :class:`~sklearn.pipeline.Pipeline` (its last step) and a fitted search
    such as :class:`~sklearn.model_selection.GridSearchCV` (its
    ``best_estimator_``) are looked into.
    """
    if isinstance(estimator, (list, tuple)):
        history = list(estimator)
    elif hasattr(estimator, "pruning_history_"):
        history = estimator.pruning_history_
    elif hasattr(estimator, "best_estimator_"):
        return _pruning_history(estimator.best_estimator_)
    elif hasattr(estimator, "steps"):
        return _pruning_history(estimator.steps[-1][1])
    else:
        raise TypeError(
            "Expected a fitted DropNetClassifier (with pruning_history_), a pipeline or "
            "search ending in one, or its pruning_history_ list; got "
            f"{type(estimator).__name__}."
        )
    if not history:
        raise ValueError("The pruning history is empty.")
    return history


def plot_pruning_curve(
    estimator, *, x="fraction_left", ax=None, label=None, annotate=False, **plot_kwargs
):
    """Plot validation accuracy against the units left, one point per round.

    Round 0 is the dense network. A round rejected by
    ``min_accuracy_ratio`` is drawn as an open marker.

    Parameters
    ----------
    estimator : DropNetClassifier, Pipeline, GridSearchCV or list of dict
        A fitted :class:`~sklearn_dropnet.DropNetClassifier` (or a pipeline
        ending in one, or a fitted search whose ``best_estimator_`` is one),
        or its ``pruning_history_``.
    x : {"fraction_left", "units", "params", "macs"}, default="fraction_left"
        What the x axis shows. The axis is inverted for every choice, so the
        curve reads left to right as pruning goes on.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None. Draw several
        runs on the same ``ax`` to compare them.
    label : str, default=None
        Legend label of the curve; a legend is added when given.
    annotate : bool, default=False
        Write each round's number next to its point.
    **plot_kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` (``color``,
        ``linestyle``, ``marker``, ...).

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    plot_units_per_layer : Where the units were removed.

    Examples
    --------
    >>> from sklearn_dropnet.plotting import plot_pruning_curve
    >>> history = [
    ...     {"round": 0, "fraction_left": 1.0, "valid_accuracy": 0.97, "accepted": True},
    ...     {"round": 1, "fraction_left": 0.8, "valid_accuracy": 0.96, "accepted": True},
    ...     {"round": 2, "fraction_left": 0.64, "valid_accuracy": 0.91, "accepted": True},
    ... ]
    >>> ax = plot_pruning_curve(history, label="DropNet")
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('fraction of units left', 'validation accuracy')
    """
    if x not in _X_AXES:
        raise ValueError(f"x must be one of {tuple(_X_AXES)}, got {x!r}.")
    history = _pruning_history(estimator)
    ax = _axes(ax)
    xs = np.array([record[x] for record in history], dtype=float)
    ys = np.array([record["valid_accuracy"] for record in history], dtype=float)
    accepted = np.array([record.get("accepted", True) for record in history], dtype=bool)
    plot_kwargs.setdefault("marker", "o")
    (line,) = ax.plot(xs[accepted], ys[accepted], label=label, **plot_kwargs)
    if not accepted.all():
        rejected = ~accepted
        ax.plot(
            xs[rejected],
            ys[rejected],
            linestyle="none",
            marker=plot_kwargs["marker"],
            markerfacecolor="none",
            color=line.get_color(),
            label=f"{label} (rejected)" if label else None,
        )
    if annotate:
        for record, x_value, y_value in zip(history, xs, ys):
            ax.annotate(
                str(record["round"]),
                (x_value, y_value),
                textcoords="offset points",
                xytext=(3, 3),
                fontsize="small",
            )
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel(_X_AXES[x])
    ax.set_ylabel("validation accuracy")
    ax.grid(True, alpha=0.3)
    if label is not None:
        ax.legend()
    return ax


def plot_units_per_layer(estimator, *, rounds=None, ax=None):
    """Bar chart of the units left in each prunable layer.

    Parameters
    ----------
    estimator : DropNetClassifier, Pipeline, GridSearchCV or list of dict
        A fitted :class:`~sklearn_dropnet.DropNetClassifier` (or a pipeline
        or search holding one), or its ``pruning_history_``.
    rounds : list of int, default=None
        Rounds to show, one bar per layer and round. None shows the dense
        network (round 0) and the last accepted round, the network the
        estimator holds.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If ``rounds`` is empty or names a round the history does not have.

    See Also
    --------
    plot_pruning_curve : Accuracy as pruning goes on.

    Examples
    --------
    >>> from sklearn_dropnet.plotting import plot_units_per_layer
    >>> history = [
    ...     {"round": 0, "units_per_layer": {"layers.1": 64, "layers.4": 32}},
    ...     {"round": 1, "units_per_layer": {"layers.1": 51, "layers.4": 26}},
    ... ]
    >>> ax = plot_units_per_layer(history)
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['layers.1', 'layers.4']
    """
    history = _pruning_history(estimator)
    by_round = {record["round"]: record for record in history}
    if rounds is None:
        last = max(
            (r["round"] for r in history if r.get("accepted", True)),
            default=history[0]["round"],
        )
        rounds = sorted({history[0]["round"], last})
    rounds = list(rounds)
    if not rounds:
        raise ValueError(
            f"rounds is empty; give one or more rounds of the pruning history: {sorted(by_round)}."
        )
    unknown = [r for r in rounds if r not in by_round]
    if unknown:
        raise ValueError(
            f"No such rounds in the pruning history: {unknown}; it has {sorted(by_round)}."
        )
    ax = _axes(ax)
    layers = list(by_round[rounds[0]]["units_per_layer"])
    positions = np.arange(len(layers))
    width = 0.8 / len(rounds)
    for i, round_ in enumerate(rounds):
        units = by_round[round_]["units_per_layer"]
        heights = [units.get(layer, 0) for layer in layers]
        bars = ax.bar(
            positions + (i - (len(rounds) - 1) / 2) * width,
            heights,
            width,
            label="dense" if round_ == 0 else f"round {round_}",
        )
        ax.bar_label(bars, fontsize="small")
    ax.set_xticks(positions, layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("units")
    ax.legend()
    return ax


def plot_hq_candidates(ensemble, *, ax=None, cmap="viridis"):
    """Scatter the teams HQ examined: focal diversity against held-out accuracy.

    One point per team in ``candidates_``, coloured by team size. Teams
    dropped at their level as not diverse enough are drawn as crosses; the
    chosen team (``selected_``) is a large star. A horizontal line shows the
    held-out accuracy of the largest team examined when it holds every
    member (for ``method="all"``).

    Parameters
    ----------
    ensemble : HQEnsembleClassifier
        A fitted :class:`~sklearn_dropnet.HQEnsembleClassifier`. With
        ``method="hq"`` every team scored is shown; with the other methods
        the teams they tried (teams of one member have no focal diversity
        and are not drawn).
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    cmap : str or Colormap, default="viridis"
        Colours of the team sizes.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_dropnet import HQEnsembleClassifier
    >>> from sklearn_dropnet.plotting import plot_hq_candidates
    >>> X, y = load_digits(return_X_y=True)
    >>> hq = HQEnsembleClassifier(
    ...     DecisionTreeClassifier(max_features=8), n_estimators=6, n_select=3,
    ...     random_state=0,
    ... ).fit(X, y)
    >>> ax = plot_hq_candidates(hq)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('focal diversity (higher = more diverse)', 'held-out accuracy')
    """
    if not hasattr(ensemble, "candidates_"):
        raise TypeError(
            "Expected a fitted HQEnsembleClassifier (with candidates_), got "
            f"{type(ensemble).__name__}."
        )
    plt = _pyplot()
    import matplotlib.colors

    ax = _axes(ax)
    candidates = ensemble.candidates_
    diversity = np.asarray(candidates["focal_diversity"], dtype=float)
    accuracy = np.asarray(candidates["accuracy"], dtype=float)
    sizes = np.asarray(candidates["size"])
    survived = np.asarray(candidates["survived"], dtype=bool)
    teams = list(candidates["team"])
    chosen = tuple(int(i) for i in ensemble.selected_)
    is_chosen = np.array([tuple(team) == chosen for team in teams], dtype=bool)
    if not is_chosen.any():  # e.g. a team listed in another order
        is_chosen = np.array([sorted(team) == sorted(chosen) for team in teams], dtype=bool)

    # One colour per team size, a discrete colour bar.
    boundaries = np.arange(sizes.min(), sizes.max() + 2) - 0.5
    cmap = plt.get_cmap(cmap).resampled(len(boundaries) - 1)
    norm = matplotlib.colors.BoundaryNorm(boundaries, cmap.N)

    def scatter(where, **kwargs):
        return ax.scatter(
            diversity[where], accuracy[where], c=sizes[where], cmap=cmap, norm=norm, s=25, **kwargs
        )

    points = scatter(survived, alpha=0.8, label="survived")
    if (~survived).any():
        dropped = (
            "dropped (least diverse)"
            if getattr(ensemble, "method", "hq") == "hq"
            else "tried, not kept"
        )
        scatter(~survived, marker="x", alpha=0.6, label=dropped)
    if is_chosen.any():
        ax.scatter(
            diversity[is_chosen],
            accuracy[is_chosen],
            s=250,
            marker="*",
            facecolor="none",
            edgecolor="red",
            linewidth=1.5,
            label=f"chosen team {chosen}",
        )
    n_members = len(getattr(ensemble, "estimators_", ())) or None
    if n_members is not None and n_members in sizes:
        full = accuracy[sizes == n_members].max()
        ax.axhline(
            full, color="grey", linestyle="--", linewidth=1, label=f"all {n_members} members"
        )
    colorbar = ax.figure.colorbar(points, ax=ax)
    colorbar.set_label("team size")
    if len(np.unique(sizes)) <= 12:
        colorbar.set_ticks(np.unique(sizes))
    ax.set_xlabel("focal diversity (higher = more diverse)")
    ax.set_ylabel("held-out accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax
