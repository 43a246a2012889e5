"""HQEnsembleClassifier: a small, diverse team chosen from many classifiers.

``fit`` trains M members (in parallel), predicts with each once on a held-out
part of the training data, and picks the team on those predictions alone:

- ``method="hq"``: candidate teams are grown level by level, from pairs up to
  ``n_select`` members; at each level the least diverse teams (focal
  diversity) are dropped, and only survivors grow to the next level. The
  team is chosen among the survivors by held-out accuracy. See :func:`hq_select` in
  ``_ensemble_selection.py`` for the levels themselves.
- ``"greedy"``, ``"top"``, ``"all"``: the usual baselines; and the
  ordered-aggregation methods of the ensemble-pruning literature
  (``"reduced_error"``, ``"complementarity"``, ``"margin_distance"``) and
  the ranking ``"error_ambiguity"``. All are in the registry of
  ``_selection_methods.py``.
"""

import math
import os
import pickle
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import ClassifierMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, check_cv, train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, check_random_state, get_tags, resample
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import _BaseComposition, available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from tqdm.auto import tqdm

from .._export import TeamExportMixin
from .._validation import (
    RegistryNames,
    check_two_classes,
    forget_fit,
    unfitted_on_failure,
)
from ._diversity import METRICS
from ._ensemble_selection import FINAL_CHOICES, MAX_TEAMS_PER_LEVEL, member_votes
from ._member_fits import (
    MemberTask,
    UnreturnableMemberError,
    fit_member,
    fit_member_out_of_fold,
)
from ._parallel import jobs_per_host
from ._selection_methods import SELECTION_METHODS

__all__ = ["HQEnsembleClassifier"]

# The choices of method and voting, also offered by the command line.
_METHODS = tuple(SELECTION_METHODS)
_VOTING = ("soft", "hard")


def _is_drop(member):
    return isinstance(member, str) and member == "drop"


def _seeded(member, seed):
    """``member`` with every ``random_state`` in it set from ``seed``.

    Its own ``random_state`` gets ``seed``; nested ones (the steps of a
    pipeline, the base estimator of a meta-estimator) get seeds drawn from
    it, as :class:`~sklearn.ensemble.BaggingClassifier` seeds its members.
    """
    keys = sorted(
        key for key in member.get_params(deep=True)
        if key == "random_state" or key.endswith("__random_state")
    )  # fmt: skip
    nested = np.random.RandomState(seed).randint(np.iinfo(np.int32).max, size=len(keys))
    member.set_params(
        **{key: int(seed if key == "random_state" else s) for key, s in zip(keys, nested)}
    )
    return member


def _named_pairs(estimators):
    """``estimators`` as a list of ``(name, estimator)`` pairs; empty if it is not one.

    For what must not raise (tags, ``set_params``); ``fit`` names the problem.
    """
    try:
        return [(name, member) for name, member in estimators]
    except (TypeError, ValueError):
        return []


def _n_folds(cv):
    """``cv`` as a number of folds, or None when it is not an int."""
    if isinstance(cv, Integral) and not isinstance(cv, (bool, np.bool_)):
        return int(cv)
    return None


def _soft_voting(self):
    """Whether ``predict_proba`` exists: with soft voting only (an AttributeError
    that names the fix otherwise, as scikit-learn's VotingClassifier raises)."""
    if self.voting != "soft":
        raise AttributeError(
            f"predict_proba is not available when voting={self.voting!r}: a team that votes by labels "
            "gives no probabilities. Use voting='soft'."
        )
    return True


class HQEnsembleClassifier(TeamExportMixin, ClassifierMixin, _BaseComposition):
    """Hierarchical ensemble pruning with focal diversity (HQ).

    Trains ``M`` member classifiers, then keeps a small team of at most
    ``n_select`` of them, meant to predict as well as all ``M`` together at
    a fraction of the cost. The team is chosen on a held-out part of the
    training data, never on test data.

    HQ grows candidate teams level by level: every pair of members first;
    then, at each level, the teams are ranked by focal diversity, the least
    diverse ``prune_fraction`` are dropped, and only teams grown from the
    survivors (with none of their sub-teams dropped) are scored at the next
    level, one member larger. So HQ scores far fewer teams than the
    ``2^M`` subsets. The final team is chosen among the survivors of every
    level by held-out accuracy (see ``final_choice``).

    Parameters
    ----------
    estimator : classifier, default=None
        The member to clone ``n_estimators`` times, each clone with its own
        ``random_state`` (drawn from ``random_state``) when it has that
        parameter. ``None`` means ``DropNetClassifier()``. Ignored, and must
        be left ``None``, when ``estimators`` is given.
    n_estimators : int, default=10
        Number of clones ``M`` of ``estimator``.
    estimators : list of (str, classifier), default=None
        Named members to use instead of clones of ``estimator``. Members
        wrapped in :class:`sklearn.frozen.FrozenEstimator` are already fitted
        and are not trained again. As in
        :class:`~sklearn.ensemble.VotingClassifier`, ``set_params`` reaches
        a member's parameters as ``<name>__<parameter>``, replaces a member
        by ``<name>=<estimator>`` and leaves it out by ``<name>="drop"``.
    n_select : int, default=5
        ``S``: the largest team HQ grows, the number of picks for
        ``"greedy"`` and the team size for ``"top"``. At most ``M``; at
        least 2 for ``"hq"``.
    metric : str, default="generalized_diversity"
        Diversity metric behind the focal diversity, one of
        ``"generalized_diversity"``, ``"kohavi_wolpert_variance"``,
        ``"binary_disagreement"``, ``"q_statistic"``, ``"cohen_kappa"``,
        ``"fleiss_kappa"`` (see :mod:`sklearn_dropnet.diversity`).
    prune_fraction : float, default=0.1
        Share of the teams of each level that HQ drops, the least diverse
        (rounded down).
    max_teams_per_level : int or None, default=5000
        Most teams HQ scores at one level (level 2, every pair, excepted).
        While growing every survivor of a level stays within it, HQ is the
        exact search described above; so it is for the paper's pools (20
        members, ``n_select=5``: about 3,100 teams at the largest level). From
        the first level where it would not, the search is a beam: the
        survivors grow in order of focal diversity, the most diverse first,
        each by every member it lacks, until the next level holds
        ``max_teams_per_level`` teams; a team is still left out when one of
        its sub-teams one member smaller was dropped. ``None``: no cap, the
        exact search whatever it costs. With the default, 128 members and
        ``n_select=8`` take a few seconds on 2,000 held-out samples.
    final_choice : {"one_se", "accuracy"}, default="one_se"
        How HQ picks the final team among the survivors of every level, by
        their held-out accuracy. ``"accuracy"``: the most accurate (ties: the
        lower held-out log loss, then the more diverse, then the smaller
        team), the rule of the HQ paper. ``"one_se"``: accuracies within one
        standard error of the best (``sqrt(p (1 - p) / n)`` on ``n`` held-out
        samples) count as tied, and the largest tied team wins, then the
        one with the lower log loss, then the more diverse. Of thousands of
        teams scored on a few hundred samples, the most accurate is mostly
        the luckiest; see the user guide for what this changed on digits.
    voting : {"soft", "hard"}, default="soft"
        How the team combines its members: mean of the predicted
        probabilities, or plurality of the predicted labels (a member's
        label is the class of its highest probability; ties go to the first
        class). Used both to choose the team and to predict.
    method : {"hq", "greedy", "top", "all", "reduced_error", \
            "complementarity", "margin_distance", "error_ambiguity"}, default="hq"
        ``"hq"``: hierarchical pruning as above. ``"greedy"``: Caruana et
        al.'s forward selection with replacement, ``n_select`` picks, each
        maximising the held-out accuracy of the team so far; a member picked
        twice counts twice. ``"top"``: the ``n_select`` members with the best
        held-out accuracy. ``"all"``: every member. Accuracy ties go to the
        lower held-out log loss. Three ordered-aggregation methods pick
        ``n_select`` distinct members one at a time, starting from the most
        accurate: ``"reduced_error"`` the member that makes the team most
        accurate (Margineantu & Dietterich's reduced-error pruning);
        ``"complementarity"`` the member right on the most held-out samples
        the team gets wrong; ``"margin_distance"`` the member that brings
        the team's vector of per-sample margins (+1 right, -1 wrong, averaged
        over the members) closest to a small positive margin on every
        sample, 0.075 (both Martínez-Muñoz & Suárez).
        ``"error_ambiguity"`` ranks the members once, alone, by their
        multi-class logistic loss plus their squared distance to the pool's
        mean probabilities (Jiang et al., 2017), and keeps the lowest.
    validation_fraction : float, default=0.2
        Share of the training data held out (stratified) to choose the team;
        members are trained on the rest, so each class needs at least two
        rows, one on each side. When every member is a
        ``FrozenEstimator`` nothing is trained and all of ``X`` is used to
        choose the team. Ignored when ``cv`` is given.
    cv : int, cross-validation generator, iterable or None, default=None
        Choose the team on out-of-fold predictions instead of a held-out
        split, as :class:`~sklearn.ensemble.StackingClassifier` trains its
        final estimator: each member is trained once per fold and predicts
        the fold it did not see
        (:func:`~sklearn.model_selection.cross_val_predict`), so that every
        row of ``X`` is held out once; then each member is trained on all
        of ``X``. An int ``K`` means ``K`` stratified, shuffled folds (seeded
        by ``random_state``), the same for every member; a splitter or an
        iterable of ``(train, test)`` indices must partition the rows.
        Training costs ``K + 1`` fits per member instead of one; in
        exchange no row is set aside. ``None``: the held-out split of
        ``validation_fraction``. Frozen members are not trained and predict
        all of ``X``. Cannot be combined with ``bootstrap``.
    bootstrap : bool, default=False
        Train each member on its own bootstrap sample of the training part
        (as many rows, drawn with replacement, stratified so that every
        member sees every class), as in bagging. The members get more
        diverse, and each sees only about 63% of the distinct rows: on
        small data that can cost more than it gains (see the user guide).
        Frozen members are not affected.
    n_jobs : int, default=None
        Number of members fitted in parallel by :class:`joblib.Parallel`
        (``None`` means 1 unless in a :func:`joblib.parallel_config`
        context; ``-1`` means all processors). Each worker caps torch at its
        share of the cores. Works under any joblib backend, including
        Dask's, but DropNet fits in threads of one process take turns, and
        a network class must be importable by the workers; see
        :ref:`dask`. A member whose fit fails, or that cannot be sent back
        from its worker, is named in the error.
    random_state : int, RandomState instance or None, default=None
        Seeds of the clones and of the held-out split.
    verbose : int, default=0
        With a positive value, progress bars (:mod:`tqdm`) over the members'
        fits and over HQ's levels.

    Attributes
    ----------
    estimators_ : list of classifiers
        All ``M`` fitted members.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted members by name (``"estimator_0"``, ... for clones);
        ``"drop"`` for a member left out.
    selected_ : ndarray of int
        Indices into ``estimators_`` of the team (may repeat for
        ``"greedy"``).
    ensemble_ : list of classifiers
        The team, ``[estimators_[i] for i in selected_]``.
    candidates_ : dict of ndarray
        The teams examined, one entry per team (load it with
        ``pandas.DataFrame(candidates_)``): ``team`` (tuple of member
        indices), ``size``, ``focal_diversity`` (higher = more diverse),
        ``normalized_diversity`` (the score HQ ranked within the level: each
        focal model's score min-max normalised among the level's teams that
        contain it; NaN for the other methods), ``accuracy`` and
        ``log_loss`` of the combined prediction on the held-out data, and
        ``survived``. HQ lists every team it scored, ``survived`` meaning not
        dropped at its level. ``"greedy"`` lists every team it tried (the
        picks so far plus each member, at each step), ``survived`` marking
        each step's pick; ``"top"`` lists each single member (``survived``
        if among the best) and then its team; ``"all"`` lists its one team.
        Focal diversity is NaN for a team of one distinct member.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during fit, when ``X`` has feature names.

    See Also
    --------
    sklearn_dropnet.DropNetClassifier : The default member.
    sklearn_dropnet.diversity.focal_diversity : The diversity HQ ranks by.
    sklearn.ensemble.VotingClassifier : Combines all given members.

    Notes
    -----
    Members the ensemble trains itself see the labels encoded as
    ``0 .. n_classes - 1`` (as :class:`~sklearn.ensemble.VotingClassifier`
    does), so that members such as skorch networks work with any labels.
    Members given as ``FrozenEstimator`` must have been fitted on the same
    labels as ``y``.

    References
    ----------
    Y. Wu and L. Liu, "Boosting Deep Ensemble Performance with Hierarchical
    Pruning", ICDM 2021.

    Y. Wu, L. Liu, Z. Xie, K.-H. Chow and W. Wei, "Boosting Ensemble Accuracy
    by Revisiting Ensemble Diversity Metrics", CVPR 2021.

    R. Caruana, A. Niculescu-Mizil, G. Crew and A. Ksikes, "Ensemble
    Selection from Libraries of Models", ICML 2004.

    D. Margineantu and T. G. Dietterich, "Pruning Adaptive Boosting", ICML
    1997.

    G. Martínez-Muñoz and A. Suárez, "Aggregation Ordering in Bagging",
    IASTED AIA 2004; G. Martínez-Muñoz, D. Hernández-Lobato and A. Suárez,
    "An Analysis of Ensemble Pruning Techniques Based on Ordered
    Aggregation", IEEE TPAMI 2009.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_dropnet import HQEnsembleClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> hq = HQEnsembleClassifier(
    ...     DecisionTreeClassifier(max_features=8), n_estimators=10, n_select=4,
    ...     random_state=0,
    ... ).fit(X_train, y_train)
    >>> len(hq.estimators_), len(hq.ensemble_) <= 4
    (10, True)
    >>> team = hq.score(X_test, y_test)
    >>> best_single = max(m.score(X_test, y_test) for m in hq.estimators_)
    >>> bool(team > best_single)
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"]), None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "estimators": [list, tuple, None],
        "n_select": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "prune_fraction": [Interval(Real, 0, 1, closed="left")],
        "max_teams_per_level": [Interval(Integral, 1, None, closed="left"), None],
        "final_choice": [StrOptions(set(FINAL_CHOICES))],
        "voting": [StrOptions(set(_VOTING))],
        "method": [RegistryNames(SELECTION_METHODS)],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "bootstrap": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        n_estimators=10,
        *,
        estimators=None,
        n_select=5,
        metric="generalized_diversity",
        prune_fraction=0.1,
        max_teams_per_level=MAX_TEAMS_PER_LEVEL,
        final_choice="one_se",
        voting="soft",
        method="hq",
        validation_fraction=0.2,
        cv=None,
        bootstrap=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.estimators = estimators
        self.n_select = n_select
        self.metric = metric
        self.prune_fraction = prune_fraction
        self.max_teams_per_level = max_teams_per_level
        self.final_choice = final_choice
        self.voting = voting
        self.method = method
        self.validation_fraction = validation_fraction
        self.cv = cv
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)  # the members validate their own
    @unfitted_on_failure
    def fit(self, X, y, groups=None):
        """Fit the members, then choose the team on held-out data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training data, passed to the members as it is: images as
            ``(n_samples, channels, height, width)`` for convolutional
            DropNet members, a DataFrame with its columns for members that
            select columns by name, missing values for members that handle
            them. ``validation_fraction`` of it is held out (or, with ``cv``,
            every row once, fold by fold).
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,), default=None
            Group labels of the rows, for a ``cv`` splitter that keeps
            groups apart (:class:`~sklearn.model_selection.GroupKFold`,
            :class:`~sklearn.model_selection.LeaveOneGroupOut`), as in
            :func:`~sklearn.model_selection.cross_val_predict`. Only with
            ``cv``.

        Returns
        -------
        self : HQEnsembleClassifier
            The fitted ensemble.
        """
        # A fit that fails leaves no fitted state behind: neither the last fit's team
        # beside this fit's classes_ (forgotten first), nor this fit's classes_.
        forget_fit(self)
        X, y = self._validate_fit_data(X, y)
        self._check_params()
        groups = self._check_groups(groups, y)
        label_encoder = LabelEncoder().fit(y)
        self.classes_ = label_encoder.classes_
        check_two_classes(self)
        y = label_encoder.transform(y)
        random_state = check_random_state(self.random_state)

        names, members = self._make_members(random_state)
        jobs = jobs_per_host(self.n_jobs)
        tasks = [MemberTask(i, name, jobs, os.getpid()) for i, name in enumerate(names)]
        if self.cv is None:
            X_fit, X_held, y_fit, y_held = self._held_out_split(X, y, members, random_state)
            samples = self._bootstrap_samples(y_fit, len(members), random_state)
            calls = (
                delayed(fit_member)(task, member, X_fit, y_fit, X_held, rows)
                for task, member, rows in zip(tasks, members, samples)
            )
        else:
            folds, y_held = self._folds(X, y, groups, random_state), y
            calls = (
                delayed(fit_member_out_of_fold)(task, member, X, y, folds)
                for task, member in zip(tasks, members)
            )
        fitted = self._run(calls, len(members))
        self.estimators_ = [member for member, _ in fitted]
        by_name = dict(zip(names, self.estimators_))
        every_name = [name for name, _ in self.estimators] if self.estimators is not None else names
        self.named_estimators_ = Bunch(**{name: by_name.get(name, "drop") for name in every_name})
        self._check_member_classes(names)

        # Each member's probabilities on the held-out rows, computed in its worker.
        probas = np.stack([np.asarray(proba, dtype=np.float64) for _, proba in fitted])
        self.selected_, self.candidates_ = self._select(probas, y_held)
        self.ensemble_ = [self.estimators_[i] for i in self.selected_]
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "ensemble_")

    def _run(self, calls, n_members):
        """The members' fits, in order, with a progress bar when ``verbose``."""
        bar = tqdm(total=n_members, desc="HQ members", unit="member", disable=not self.verbose)
        try:
            with bar:
                fitted = []
                for result in Parallel(n_jobs=self.n_jobs, return_as="generator")(calls):
                    fitted.append(result)
                    bar.update()
                return fitted
        except UnreturnableMemberError:
            raise  # it names the member already
        except pickle.PicklingError as exc:
            raise pickle.PicklingError(
                f"The fitted members could not be sent back from joblib's worker processes "
                f"({exc}): something a member holds cannot be pickled; keep it out of the "
                "member, or use n_jobs=1."
            ) from exc

    def _validate_fit_data(self, X, y):
        """Check ``y`` and the number of rows; ``X`` goes to the members as it is.

        As in :class:`~sklearn.ensemble.VotingClassifier`, the members validate
        ``X`` themselves: a DataFrame stays a DataFrame for a member that picks
        columns by name, and missing values reach members that handle them.
        Only ``n_features_in_`` and ``feature_names_in_`` are recorded here.
        """
        X, y = validate_data(self, X, y, skip_check_array=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        if _num_samples(X) < 1:
            # check_array's message: without it the held-out split or the
            # folds would fail on empty data, naming their own parameters.
            raise ValueError(
                f"Found array with 0 sample(s) (shape={np.shape(X)}) while a minimum of 1 "
                f"is required by {type(self).__name__}."
            )
        check_classification_targets(y)
        # Images or sequences: n_features_in_ counts their channels, so predict
        # checks the whole sample shape against this, as the members do.
        self._sample_shape = tuple(np.shape(X)[1:]) if getattr(X, "ndim", 2) > 2 else None
        return X, y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X goes to the members unchecked, so what they accept, it accepts.
        member_tags = [
            get_tags(member) for member in self._unfitted_members()
            if hasattr(member, "__sklearn_tags__")
        ]  # fmt: skip
        if member_tags:
            tags.input_tags.sparse = all(t.input_tags.sparse for t in member_tags)
            tags.input_tags.allow_nan = all(t.input_tags.allow_nan for t in member_tags)
        return tags

    def _unfitted_members(self):
        """The member estimators as given (the default DropNetClassifier for none)."""
        if self.estimators is not None:
            return [member for _, member in _named_pairs(self.estimators) if not _is_drop(member)]
        return [self._member_template()]

    # --- parameters of named members ------------------------------------------

    def get_params(self, deep=True):
        """Parameters of the ensemble, and with ``deep`` of its members.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of ``estimator`` (as
            ``estimator__<parameter>``) and of each named member in
            ``estimators`` (as ``<name>__<parameter>``, and the member itself
            as ``<name>``).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set parameters of the ensemble, of ``estimator`` or of named members.

        Parameters
        ----------
        **params : dict
            ``estimator__<parameter>`` for the cloned member,
            ``<name>__<parameter>`` for a member of ``estimators``,
            ``<name>=<estimator>`` to replace that member and
            ``<name>="drop"`` to leave it out.

        Returns
        -------
        self : HQEnsembleClassifier
            This estimator.
        """
        estimators = params.get("estimators", self.estimators)
        if isinstance(estimators, tuple) and set(params) & {name for name, _ in _named_pairs(estimators)}:
            # scikit-learn replaces members by name in a list only; in a
            # tuple the new member would be set as a stray attribute.
            params["estimators"] = list(estimators)
        nested = sorted(key for key in params if key.startswith("estimator__"))
        if nested and params.get("estimator", self.estimator) is None:
            hint = (
                "; set a member of estimators as <name>__<parameter>"
                if estimators is not None
                else "; pass estimator=DropNetClassifier(...) to tune the default member"
            )
            raise ValueError(
                f"Cannot set {nested[0]}: estimator is None{hint}."
            )
        self._set_params("estimators", **params)
        return self

    # --- building and checking the members -----------------------------------

    def _check_params(self):
        """What the parameter constraints cannot say (they are checked by ``fit``)."""
        if self.method == "hq" and self.n_select < 2:
            raise ValueError(
                f"n_select == {self.n_select}, must be >= 2 for method='hq': HQ grows teams "
                "from pairs. For a single member use method='top'."
            )
        if self.cv is not None and self.bootstrap:
            raise ValueError(
                "bootstrap=True cannot be combined with cv: the fold members are "
                "fitted by cross_val_predict on the fold's rows. Use one of the two."
            )
        if self.n_jobs == 0:
            raise ValueError("n_jobs == 0 runs nothing; use None, -1 or a positive number.")

    def _make_members(self, random_state):
        """Names and unfitted clones of the members, checked."""
        if self.estimators is not None:
            if self.estimator is not None:
                raise ValueError("Pass either estimator or estimators, not both.")
            names, members = self._named_members()
        else:
            names = [f"estimator_{i}" for i in range(self.n_estimators)]
            members = self._seeded_clones(random_state)
        if len(members) < 2:
            dropped = len(self.estimators) - len(members) if self.estimators is not None else 0
            raise ValueError(
                f"An ensemble needs at least 2 members, got {len(members)}"
                + (f" ({dropped} set to 'drop')." if dropped else ".")
            )
        if self.method != "all" and self.n_select > len(members):
            raise ValueError(
                f"n_select={self.n_select} is larger than the number of "
                f"members ({len(members)})."
            )
        for name, member in zip(names, members):
            if not hasattr(member, "predict_proba"):
                raise TypeError(
                    f"Member {name!r} ({type(member).__name__}) has no "
                    "predict_proba; every member must predict probabilities."
                )
        return names, members

    def _named_members(self):
        if len(self.estimators) == 0:
            return [], []  # _make_members says that an ensemble needs 2
        # A two-step Pipeline unpacks into two steps: only tuples and lists are pairs.
        unnamed = [item for item in self.estimators if not (isinstance(item, (tuple, list)) and len(item) == 2)]
        if unnamed:
            given = unnamed[0]
            raise TypeError(
                f"estimators must be a list of (name, estimator) tuples, as in VotingClassifier; "
                f"got {type(given).__name__} {given!r:.80}. Name each member: "
                "[('mlp', DropNetClassifier(...)), ('tree', DecisionTreeClassifier())]."
            )
        names, members = zip(*self.estimators)
        not_strings = [name for name in names if not isinstance(name, str)]
        if not_strings:
            raise TypeError(f"Member names must be strings, got {not_strings!r}.")
        self._validate_names(names)
        for name, member in zip(names, members):
            if isinstance(member, str) and not _is_drop(member):
                raise TypeError(
                    f"Member {name!r} is the string {member!r}; a member is a classifier, "
                    "or 'drop' to leave it out."
                )
        kept = [(name, member) for name, member in zip(names, members) if not _is_drop(member)]
        return [name for name, _ in kept], [clone(member) for _, member in kept]

    def _seeded_clones(self, random_state):
        estimator = self._member_template()
        # int(): scikit-learn's validation lets n_estimators=True through, numpy's size does not
        seeds = random_state.randint(np.iinfo(np.int32).max, size=int(self.n_estimators))
        return [_seeded(clone(estimator), seed) for seed in seeds]

    def _member_template(self):
        if self.estimator is None:
            from .._dropnet import DropNetClassifier  # only when the default is used

            return DropNetClassifier()
        return self.estimator

    def _held_out_split(self, X, y, members, random_state):
        """``X_fit, X_held, y_fit, y_held``: stratified, or all held out."""
        if all(isinstance(member, FrozenEstimator) for member in members):
            return X, X, y, y
        n_held = math.ceil(self.validation_fraction * len(y))
        n_classes = len(self.classes_)
        for part, n_rows in (("held out", n_held), ("left to train on", len(y) - n_held)):
            if n_rows < n_classes:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} of {len(y)} rows "
                    f"leaves {n_rows} {part}, fewer than the {n_classes} classes; the "
                    "stratified split needs a row of each class on each side. Change "
                    "validation_fraction, or use cv instead of a held-out split."
                )
        counts = np.bincount(y.astype(np.intp), minlength=len(self.classes_))
        if np.any(counts < 2):
            raise ValueError(
                f"The held-out split needs at least 2 rows of each class (one to train the "
                f"members on, one to choose the team on); these classes have 1: "
                f"{self.classes_[counts < 2].tolist()}. Add rows of them, or leave them out."
            )
        return train_test_split(
            X,
            y,
            test_size=self.validation_fraction,
            stratify=y,
            random_state=random_state.randint(np.iinfo(np.int32).max),
        )

    def _check_groups(self, groups, y):
        """``groups`` as an array of one label per row, or None."""
        if groups is None:
            return None
        if self.cv is None:
            raise ValueError(
                "groups is used only with cv: the held-out split of validation_fraction "
                "is stratified by class, not by group. Pass cv=GroupKFold(n_splits=5) "
                "(or another group splitter) with groups."
            )
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != len(y):
            raise ValueError(
                f"groups must hold one label per row of X: {len(y)} rows, but groups has "
                f"shape {groups.shape}."
            )
        return groups

    def _folds(self, X, y, groups, random_state):
        """The ``(train, test)`` folds of ``cv``, listed once for every member."""
        seed = random_state.randint(np.iinfo(np.int32).max)
        n_folds = _n_folds(self.cv)
        if n_folds is not None:
            splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        else:
            splitter = check_cv(self.cv, y, classifier=True)
        try:
            return list(splitter.split(X, y, groups))
        except ValueError as exc:
            if groups is None and "groups" in str(exc):
                raise ValueError(
                    f"cv={self.cv!r} splits by group, and no groups were given: pass "
                    "them to fit, as in hq.fit(X, y, groups=groups); inside a GridSearchCV "
                    "or Pipeline, route them: sklearn.set_config(enable_metadata_routing=True) "
                    "and hq.set_fit_request(groups=True)."
                ) from exc
            raise

    def _bootstrap_samples(self, y, n_members, random_state):
        """Each member's stratified bootstrap rows, or None (all rows) each."""
        if not self.bootstrap:
            return [None] * n_members
        rows = np.arange(len(y))
        seeds = random_state.randint(np.iinfo(np.int32).max, size=n_members)
        return [resample(rows, stratify=y, random_state=seed) for seed in seeds]

    def _check_member_classes(self, names):
        """Every member must know exactly the classes of ``y``.

        Members trained here saw the encoded labels ``0 .. K-1``; frozen ones
        must have been fitted on the labels of ``y`` themselves.
        """
        for name, member in zip(names, self.estimators_):
            expected = (
                self.classes_
                if isinstance(member, FrozenEstimator)
                else np.arange(len(self.classes_))
            )
            seen = np.asarray(member.classes_)
            if seen.shape != expected.shape or not np.array_equal(seen, expected):
                codes = seen.shape == expected.shape and np.array_equal(seen, np.arange(len(seen)))
                hint = ""
                if codes and isinstance(member, FrozenEstimator):
                    hint = (
                        " A tree taken from a fitted forest, and a member of a fitted "
                        "HQEnsembleClassifier, predict the class codes 0 .. K-1: make members of "
                        "them with sklearn_dropnet.ensemble.forest_members(forest) or "
                        "forest_members(hq)."
                    )
                elif isinstance(member, FrozenEstimator) and set(self.classes_) < set(seen.tolist()):
                    hint = (
                        " The rows the team is chosen on must hold every class the members "
                        "predict: split them off stratified (train_test_split(..., stratify=y))."
                    )
                raise ValueError(
                    f"Member {name!r} predicts the classes {seen.tolist()}, but "
                    f"y has the classes {self.classes_.tolist()}.{hint}"
                )

    @staticmethod
    def _member_proba(member, X):
        return np.asarray(member.predict_proba(X), dtype=np.float64)

    # --- choosing the team ------------------------------------------------------

    def _select(self, probas, y):
        """Team indices and the candidates examined, from held-out probas."""
        settings = {
            "n_select": self.n_select,
            "metric": self.metric,
            "prune_fraction": self.prune_fraction,
            "final_choice": self.final_choice,
            "max_teams_per_level": self.max_teams_per_level,
            "verbose": bool(self.verbose),
        }
        method = SELECTION_METHODS[self.method]
        return method(probas.argmax(axis=2), member_votes(probas, self.voting), y, settings)

    # --- predicting -------------------------------------------------------------

    def _team_votes(self, X):
        """Sum of the team's votes on ``X``, (n_samples, n_classes).

        Each distinct member predicts once and counts as often as it was
        selected.
        """
        check_is_fitted(self)
        shape = getattr(self, "_sample_shape", None)
        if shape is None and getattr(X, "ndim", 2) > 2 and hasattr(self, "n_features_in_"):  # fitted on rows
            shape = (self.n_features_in_,)
        if shape is not None and tuple(np.shape(X)[1:]) != shape:
            raise ValueError(
                f"X has samples of shape {tuple(np.shape(X)[1:])}, but {type(self).__name__} was fitted "
                f"on samples of shape {shape}."
            )
        if getattr(X, "ndim", 2) > 1:
            # A 1-d array goes to the members, which say "Reshape your data".
            validate_data(self, X, skip_check_array=True, reset=False)
        members, counts = np.unique(self.selected_, return_counts=True)
        probas = np.stack([self._member_proba(self.estimators_[i], X) for i in members])
        return np.tensordot(counts, member_votes(probas, self.voting), axes=1), counts

    def predict(self, X):
        """Class predicted by the team's (soft or hard) vote.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted class labels.
        """
        votes, _ = self._team_votes(X)
        return self.classes_[votes.argmax(axis=1)]

    @available_if(_soft_voting)
    def predict_proba(self, X):
        """Mean of the team members' class probabilities (soft voting only).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        votes, counts = self._team_votes(X)
        return votes / counts.sum()
