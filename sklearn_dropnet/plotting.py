"""Plots of a pruning run and of an HQ team search (needs matplotlib).

Displays, as scikit-learn's (:class:`~sklearn.model_selection.ValidationCurveDisplay`):
build one with ``from_estimator`` (or from the data it plots), draw it with
``plot(ax=None, ...)``; the display keeps what it drew in ``ax_``,
``figure_`` and its artists, to restyle or redraw elsewhere.

- :class:`PruningCurveDisplay` -- validation accuracy against the share of
  units left (or the units, parameters or multiply-accumulates, the last two
  on a log axis), one point per DropNet round, from ``pruning_history_``.
- :class:`HQCandidatesDisplay` -- the teams an
  :class:`~sklearn_dropnet.HQEnsembleClassifier` examined: focal diversity
  against held-out accuracy, the chosen team marked.

Functions, each drawing on ``ax`` when given (else on a new figure) and
returning the axes:

- :func:`plot_pruning_curve` and :func:`plot_hq_candidates` -- the displays
  above, drawn in one call;
- :func:`plot_units_per_layer` -- units left in each prunable layer, dense
  against pruned.

matplotlib is an optional dependency (``pip install sklearn-dropnet[plot]``);
it is imported when something is drawn, not with this module.
"""

import numpy as np

from ._user_warnings import warn

__all__ = [
    "HQCandidatesDisplay",
    "PruningCurveDisplay",
    "plot_hq_candidates",
    "plot_pruning_curve",
    "plot_units_per_layer",
]

# What the x axis of a pruning curve can show: history key -> (axis label, log scale by default).
_X_AXES = {
    "fraction_left": ("fraction of units left", False),
    "units": ("units left", False),
    "params": ("parameters", True),
    "macs": ("multiply-accumulates per sample", True),
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


def _validated(estimator):
    """Whether the DropNet estimator in ``estimator`` (as :func:`_pruning_history`
    finds it) held out a validation split; True for a history list."""
    for attribute in ("best_estimator_", "steps"):
        inner = getattr(estimator, attribute, None)
        if inner is not None and not hasattr(estimator, "pruning_history_"):
            return _validated(inner[-1][1] if attribute == "steps" else inner)
    fraction = getattr(estimator, "validation_fraction", None)
    return fraction is None or fraction > 0


def _pruning_history(estimator):
    """``pruning_history_`` of a fitted DropNet estimator, or a history list.

    A :class:`~sklearn.pipeline.Pipeline` (its last step) and a fitted search
    such as :class:`~sklearn.model_selection.GridSearchCV` (its
    ``best_estimator_``) are looked into.
    """
    if isinstance(estimator, (list, tuple)):
        history = list(estimator)
        if not all(isinstance(record, dict) for record in history):
            raise TypeError(
                "A pruning history is a list of records, one dict per round, as pruning_history_ "
                f"holds them; got a list of {sorted({type(record).__name__ for record in history})}."
            )
    elif isinstance(estimator, dict):
        raise TypeError(
            "A pruning history is a list of records, one dict per round, as pruning_history_ holds "
            "them; got one dict: pass [record] for a single round."
        )
    elif hasattr(estimator, "pruning_history_"):
        history = estimator.pruning_history_
    elif hasattr(estimator, "best_estimator_"):
        return _pruning_history(estimator.best_estimator_)
    elif hasattr(estimator, "steps"):
        return _pruning_history(estimator.steps[-1][1])
    else:
        if _holds_a_dropnet(estimator):
            _check_is_fitted(estimator)  # an unfitted DropNetClassifier, or a search of one
            if getattr(estimator, "refit", True) is False:
                raise ValueError(
                    f"The {type(estimator).__name__} was fitted with refit=False, so it holds no fitted "
                    "estimator to draw: fit it with refit=True (the default), or draw a DropNetClassifier "
                    "fitted with its best_params_."
                )
        raise TypeError(
            "Expected a fitted DropNetClassifier (with pruning_history_), a pipeline or "
            "search ending in one, or its pruning_history_ list; got "
            f"{type(estimator).__name__}."
        )
    if not history:
        raise ValueError("The pruning history is empty.")
    return history


def _holds_a_dropnet(estimator):
    """Whether ``estimator`` is a DropNetClassifier, or a pipeline or search ending in one.

    Fitted or not: it tells an unfitted estimator of the right type (a
    ``NotFittedError``) from a wrong type (a ``TypeError``). Only called on
    the way to an error, so that drawing imports no estimator module.
    """
    from ._dropnet import DropNetClassifier

    if isinstance(estimator, DropNetClassifier):
        return True
    if hasattr(estimator, "steps"):
        return _holds_a_dropnet(estimator.steps[-1][1])
    if hasattr(estimator, "estimator"):  # GridSearchCV and the like
        return _holds_a_dropnet(estimator.estimator)
    return False


def _check_is_fitted(estimator):
    """scikit-learn's ``NotFittedError`` for an unfitted estimator of the right type."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)


def _log_x_axis(ax):
    """A log x axis labelled 1, 2 and 5 times each power of ten, as 2k, 50k, 1M."""
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _legend_label(name, plot_kwargs):
    """The legend label: ``name``, or matplotlib's ``label`` among ``plot_kwargs`` (popped).

    scikit-learn's displays name a curve with ``name=`` and pass their other
    keyword arguments to matplotlib, where ``label`` sets the legend entry,
    so both are accepted; two different labels are an error.
    """
    label = plot_kwargs.pop("label", None)
    if name is not None and label is not None and name != label:
        raise TypeError(
            f"Got name={name!r} and label={label!r}: both set the legend label of the "
            "curve; give one of them."
        )
    return name if name is not None else label


def _check_x(x):
    if x not in _X_AXES:
        raise ValueError(f"x must be one of {tuple(_X_AXES)}, got {x!r}.")


class PruningCurveDisplay:
    """Pruning curve: validation accuracy against what is left, one point per round.

    Build it with :meth:`from_estimator` or :meth:`from_history`; both
    draw it. Round 0 is the dense network; a round rejected by
    ``min_accuracy_ratio`` is an open marker. The x axis is inverted, so
    that the curve reads left to right as pruning goes on.

    Parameters
    ----------
    history : list of dict
        A ``pruning_history_``: one record per round with ``round``,
        ``valid_accuracy``, ``accepted`` and the quantity on the x axis.
    estimator_name : str, default=None
        Legend label of the curve; a legend is shown when given.
    validated : bool, default=True
        Whether ``valid_accuracy`` is on a validation split; False labels
        the y axis as training accuracy (``validation_fraction=0``, which
        :meth:`from_estimator` reads off the estimator).

    Attributes
    ----------
    line_ : matplotlib Line2D
        The accepted rounds.
    rejected_line_ : matplotlib Line2D or None
        The rejected round, if any.
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    See Also
    --------
    plot_pruning_curve : Draw it in one call, returning the axes.
    sklearn.model_selection.ValidationCurveDisplay : The display this one follows.

    Examples
    --------
    >>> from sklearn_dropnet import PruningCurveDisplay
    >>> history = [
    ...     {"round": 0, "fraction_left": 1.0, "params": 9000, "valid_accuracy": 0.97, "accepted": True},
    ...     {"round": 1, "fraction_left": 0.8, "params": 6000, "valid_accuracy": 0.96, "accepted": True},
    ...     {"round": 2, "fraction_left": 0.64, "params": 4000, "valid_accuracy": 0.91, "accepted": True},
    ... ]
    >>> display = PruningCurveDisplay.from_history(history, x="params")
    >>> display.ax_.get_xlabel(), display.ax_.get_xscale()
    ('parameters', 'log')
    >>> display = display.plot(x="fraction_left")  # again, on a new figure
    >>> display.ax_.get_xlabel(), display.ax_.get_xscale()
    ('fraction of units left', 'linear')
    """

    def __init__(self, history, *, estimator_name=None, validated=True):
        self.history = history
        self.estimator_name = estimator_name
        self.validated = validated

    def plot(self, ax=None, *, x="fraction_left", log_x=None, annotate=False, name=None, **plot_kwargs):
        """Draw the curve.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None. Draw several
            runs on the same ``ax`` to compare them.
        x : {"fraction_left", "units", "params", "macs"}, default="fraction_left"
            What the x axis shows: the fraction of units left, the units,
            the parameters or the multiply-accumulates per sample.
        log_x : bool, default=None
            A log x axis; None means one for ``"params"`` and ``"macs"``,
            which shrink by orders of magnitude.
        annotate : bool, default=False
            Write each round's number next to its point.
        name : str, default=None
            Legend label; overrides ``estimator_name``.
        **plot_kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` (``color``,
            ``linestyle``, ``marker``, ...) for the accepted rounds; ``label``
            is taken as ``name``. The rejected round keeps a visible open
            marker whatever ``marker`` and ``linestyle`` say (an ``"o"`` when
            the line has no marker).

        Returns
        -------
        display : PruningCurveDisplay
            This display, with ``ax_``, ``figure_`` and the lines.
        """
        _check_x(x)
        history = _pruning_history(self.history)
        name = _legend_label(name, plot_kwargs)
        label = name if name is not None else self.estimator_name
        ax = _axes(ax)
        xs = np.array([record[x] for record in history], dtype=float)
        ys = np.array([record["valid_accuracy"] for record in history], dtype=float)
        accepted = np.array([record.get("accepted", True) for record in history], dtype=bool)
        plot_kwargs.setdefault("marker", "o")
        (self.line_,) = ax.plot(xs[accepted], ys[accepted], label=label, **plot_kwargs)
        self.rejected_line_ = None
        if not accepted.all():
            rejected = ~accepted
            marker = self.line_.get_marker()
            if marker in ("None", "none", "", " ", None):  # marker=None: a plain line
                marker = "o"
            (self.rejected_line_,) = ax.plot(
                xs[rejected],
                ys[rejected],
                linestyle="none",
                marker=marker,
                markerfacecolor="none",
                color=self.line_.get_color(),
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
        axis_label, log_default = _X_AXES[x]
        if log_default if log_x is None else log_x:
            _log_x_axis(ax)
        if not ax.xaxis_inverted():
            ax.invert_xaxis()
        ax.set_xlabel(axis_label)
        ax.set_ylabel("validation accuracy" if self.validated else "training accuracy (validation_fraction=0)")
        ax.grid(True, alpha=0.3)
        if label is not None:
            ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, **plot_params):
        """Draw the pruning curve of a fitted DropNet estimator.

        Parameters
        ----------
        estimator : DropNetClassifier, Pipeline or GridSearchCV
            A fitted :class:`~sklearn_dropnet.DropNetClassifier`, a pipeline
            ending in one, or a fitted search whose ``best_estimator_`` is one.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        name : str, default=None
            Legend label of the curve (matplotlib's ``label`` is taken as
            ``name``).
        **plot_params
            ``x``, ``log_x``, ``annotate`` and matplotlib's line options, as
            :meth:`plot` takes them.

        Returns
        -------
        display : PruningCurveDisplay

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the DropNetClassifier (or the search holding one) is not fitted.
        TypeError
            If ``estimator`` is neither of the above.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_dropnet import DropNetClassifier, PruningCurveDisplay
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = DropNetClassifier(
        ...     module__hidden_layer_sizes=(16,), prune_ratio=0.5, max_epochs=2, random_state=0
        ... ).fit(X / 16, y)
        >>> display = PruningCurveDisplay.from_estimator(clf, x="params")
        >>> len(display.line_.get_xdata()) == len(clf.pruning_history_)
        True
        """
        if isinstance(estimator, (list, tuple)):
            raise TypeError("from_estimator takes a fitted estimator; for a history list use from_history.")
        history = _pruning_history(estimator)
        validated = _validated(estimator)
        name = _legend_label(name, plot_params)
        return cls(history, estimator_name=name, validated=validated).plot(ax=ax, **plot_params)

    @classmethod
    def from_history(cls, history, *, ax=None, name=None, **plot_params):
        """Draw the pruning curve of a ``pruning_history_`` list.

        Parameters
        ----------
        history : list of dict
            One record per round, as in ``pruning_history_``.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        name : str, default=None
            Legend label of the curve (matplotlib's ``label`` is taken as
            ``name``).
        **plot_params
            As :meth:`plot` takes them.

        Returns
        -------
        display : PruningCurveDisplay
        """
        name = _legend_label(name, plot_params)
        history = history if isinstance(history, dict) else list(history)  # list(a dict) would be its keys
        return cls(_pruning_history(history), estimator_name=name).plot(ax=ax, **plot_params)


def plot_pruning_curve(
    estimator, *, x="fraction_left", ax=None, label=None, annotate=False, log_x=None, **plot_kwargs
):
    """Plot validation accuracy against the units left, one point per round.

    Draws a :class:`PruningCurveDisplay` and returns its axes. Round 0 is
    the dense network. A round rejected by ``min_accuracy_ratio`` is drawn
    as an open marker.

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
        Legend label of the curve; a legend is added when given. The
        display's ``name``, which is also accepted.
    annotate : bool, default=False
        Write each round's number next to its point.
    log_x : bool, default=None
        A log x axis; None means one for ``"params"`` and ``"macs"``.
    **plot_kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` (``color``,
        ``linestyle``, ``marker``, ...) for the accepted rounds, as
        :meth:`PruningCurveDisplay.plot` takes them.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    PruningCurveDisplay : The same plot, keeping its artists.
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
    _check_x(x)
    display = PruningCurveDisplay(_pruning_history(estimator), validated=_validated(estimator))
    return display.plot(ax=ax, x=x, log_x=log_x, annotate=annotate, label=label, **plot_kwargs).ax_


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


class HQCandidatesDisplay:
    """The teams an ensemble examined: focal diversity against held-out accuracy.

    One point per team in ``candidates_``, coloured by team size. Teams
    dropped at their level as not diverse enough are crosses; the chosen
    team is a large star. A horizontal line shows the held-out accuracy of
    the team of every member, when one was examined (``method="all"``).
    Teams of one member have no focal diversity and are not drawn; when
    every team has one (``n_select=1``), the axes are left empty, without
    a legend, and a ``UserWarning`` says so. Build it with
    :meth:`from_estimator`, which draws it.

    Parameters
    ----------
    candidates : dict of array-like
        ``candidates_`` of a fitted :class:`~sklearn_dropnet.HQEnsembleClassifier`:
        ``team``, ``size``, ``focal_diversity``, ``accuracy``, ``survived``.
    selected : array-like of int
        The chosen team (``selected_``).
    n_members : int, default=None
        ``M``, the members of the ensemble, for the all-members line.
    method : str, default="hq"
        The selection method, for the legend ("dropped" or "tried, not kept").

    Attributes
    ----------
    survived_ : matplotlib PathCollection
        The teams that survived their level (or that the method kept).
    dropped_ : matplotlib PathCollection or None
        The others.
    chosen_ : matplotlib PathCollection or None
        The star on the chosen team.
    colorbar_ : matplotlib Colorbar
        The team sizes.
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    See Also
    --------
    plot_hq_candidates : Draw it in one call, returning the axes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_dropnet import HQCandidatesDisplay, HQEnsembleClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> hq = HQEnsembleClassifier(
    ...     DecisionTreeClassifier(max_features=8), n_estimators=6, n_select=3,
    ...     random_state=0,
    ... ).fit(X, y)
    >>> display = HQCandidatesDisplay.from_estimator(hq)
    >>> display.ax_.get_xlabel(), display.ax_.get_ylabel()
    ('focal diversity (higher = more diverse)', 'held-out accuracy')
    >>> len(display.survived_.get_offsets()) == int(hq.candidates_["survived"].sum())
    True
    """

    def __init__(self, candidates, selected, *, n_members=None, method="hq"):
        self.candidates = candidates
        self.selected = selected
        self.n_members = n_members
        self.method = method

    def plot(self, ax=None, *, cmap="viridis"):
        """Draw the teams.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        cmap : str or Colormap, default="viridis"
            Colours of the team sizes.

        Returns
        -------
        display : HQCandidatesDisplay
            This display, with ``ax_``, ``figure_`` and the artists.

        Warns
        -----
        UserWarning
            When no team has focal diversity to draw: every team has one
            member (``n_select=1``). The axes are then left empty.
        """
        plt = _pyplot()
        import matplotlib.colors

        ax = _axes(ax)
        candidates = self.candidates
        diversity = np.asarray(candidates["focal_diversity"], dtype=float)
        accuracy = np.asarray(candidates["accuracy"], dtype=float)
        sizes = np.asarray(candidates["size"])
        survived = np.asarray(candidates["survived"], dtype=bool)
        teams = list(candidates["team"])
        chosen = tuple(int(i) for i in self.selected)
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

        self.survived_ = scatter(survived, alpha=0.8, label="survived")
        self.dropped_ = self.chosen_ = None
        if (~survived).any():
            dropped = "dropped (least diverse)" if self.method == "hq" else "tried, not kept"
            self.dropped_ = scatter(~survived, marker="x", alpha=0.6, label=dropped)
        if is_chosen.any():
            self.chosen_ = ax.scatter(
                diversity[is_chosen],
                accuracy[is_chosen],
                s=250,
                marker="*",
                facecolor="none",
                edgecolor="red",
                linewidth=1.5,
                label=f"chosen team {chosen}",
            )
        # the team of all M members (greedy's teams of M members may repeat some)
        whole = np.array([len(set(team)) == self.n_members for team in teams], dtype=bool)
        if self.n_members is not None and whole.any():
            full = accuracy[whole].max()
            ax.axhline(
                full, color="grey", linestyle="--", linewidth=1, label=f"all {self.n_members} members"
            )
        self.colorbar_ = ax.figure.colorbar(self.survived_, ax=ax)
        self.colorbar_.set_label("team size")
        if len(np.unique(sizes)) <= 12:
            self.colorbar_.set_ticks(np.unique(sizes))
        ax.set_xlabel("focal diversity (higher = more diverse)")
        ax.set_ylabel("held-out accuracy")
        ax.grid(True, alpha=0.3)
        if np.isfinite(diversity).any():
            ax.legend(fontsize="small")
        elif (sizes > 1).any():
            warn(
                "HQCandidatesDisplay draws nothing: no team in candidates_ has a focal diversity "
                "(NaN), the x axis of this plot, because no member errs on the held-out rows "
                "(focal diversity is measured on the rows where a member errs).",
                UserWarning,
            )
        else:
            warn(
                "HQCandidatesDisplay draws nothing: every team in candidates_ has one "
                "member, and a team of one member has no focal diversity (NaN), the x "
                "axis of this plot. Teams of two or more members (n_select >= 2) are drawn.",
                UserWarning,
            )
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, ensemble, *, ax=None, cmap="viridis"):
        """Draw the teams a fitted ensemble examined.

        Parameters
        ----------
        ensemble : HQEnsembleClassifier
            A fitted :class:`~sklearn_dropnet.HQEnsembleClassifier`. With
            ``method="hq"`` every team scored is shown; with the other
            methods the teams they tried (teams of one member have no focal
            diversity and are not drawn; a ``UserWarning`` says so when no
            team has more than one member).
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        cmap : str or Colormap, default="viridis"
            Colours of the team sizes.

        Returns
        -------
        display : HQCandidatesDisplay

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the HQEnsembleClassifier is not fitted.
        TypeError
            If ``ensemble`` is not an HQEnsembleClassifier.

        Warns
        -----
        UserWarning
            When every team has one member: nothing is drawn.
        """
        if not hasattr(ensemble, "candidates_"):
            from .ensemble import HQEnsembleClassifier

            if isinstance(ensemble, HQEnsembleClassifier):
                _check_is_fitted(ensemble)
            raise TypeError(
                "Expected a fitted HQEnsembleClassifier (with candidates_), got "
                f"{type(ensemble).__name__}."
            )
        display = cls(
            ensemble.candidates_,
            ensemble.selected_,
            n_members=len(getattr(ensemble, "estimators_", ())) or None,
            method=getattr(ensemble, "method", "hq"),
        )
        return display.plot(ax=ax, cmap=cmap)


def plot_hq_candidates(ensemble, *, ax=None, cmap="viridis"):
    """Scatter the teams HQ examined: focal diversity against held-out accuracy.

    Draws an :class:`HQCandidatesDisplay` and returns its axes: one point
    per team in ``candidates_``, coloured by team size. Teams dropped at
    their level as not diverse enough are drawn as crosses; the chosen team
    (``selected_``) is a large star. A horizontal line shows the held-out
    accuracy of the largest team examined when it holds every member (for
    ``method="all"``).

    Parameters
    ----------
    ensemble : HQEnsembleClassifier
        A fitted :class:`~sklearn_dropnet.HQEnsembleClassifier`. With
        ``method="hq"`` every team scored is shown; with the other methods
        the teams they tried (teams of one member have no focal diversity
        and are not drawn; a ``UserWarning`` says so when no team has more
        than one member).
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when None.
    cmap : str or Colormap, default="viridis"
        Colours of the team sizes.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    HQCandidatesDisplay : The same plot, keeping its artists.

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
    return HQCandidatesDisplay.from_estimator(ensemble, ax=ax, cmap=cmap).ax_
