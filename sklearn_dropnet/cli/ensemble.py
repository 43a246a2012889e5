"""``sklearn-dropnet ensemble``: train ``M`` pruned networks and choose ``S`` of
them with an :class:`~sklearn_dropnet.HQEnsembleClassifier`, then compare the
team with the full ensemble on a test split."""

import time

import numpy as np

from ..ensemble._ensemble_selection import member_votes
from .errors import UsageError, first_line
from .outputs import dump, report_written, save_plot
from .parser import Command, data_options, dropnet_options, hq_options, run_options
from .training import dropnet_classifier, fit, prepare_training, with_column_names

# The files written in --output-dir.
_MODEL, _PLOT = "ensemble.joblib", "hq_candidates.png"


def _add_options(parser):
    hq_options(parser)
    data_options(parser)
    dropnet_options(parser, prune_ratio=0.5, max_epochs=30, hidden=(64, 32))
    run_options(parser, output_dir="dropnet-output")


def _check_options(args):
    """The combinations of options the parser cannot refuse on its own."""
    if args.method != "all" and args.n_select > args.n_estimators:
        raise UsageError(
            f"--n-select {args.n_select} is larger than --n-estimators {args.n_estimators}"
        )
    if args.method == "hq" and args.n_select < 2:
        raise UsageError("--method hq needs --n-select of at least 2")
    if args.cv is not None and args.bootstrap:
        raise UsageError("--cv and --bootstrap cannot be combined; use one of the two")
    if args.cv is not None and args.selection_fraction is not None:
        raise UsageError(
            "--cv and --selection-fraction cannot be combined: with --cv the team is chosen on "
            "out-of-fold predictions and no share is held out; use one of the two"
        )


def _full_ensemble_votes(hq, X):
    """Summed votes of all of ``hq``'s members on ``X`` (n_samples, n_classes)."""
    probas = np.stack([np.asarray(m.predict_proba(X), dtype=float) for m in hq.estimators_])
    return member_votes(probas, hq.voting).sum(axis=0)


def _ensemble_message(error):
    """The first line of an error of :class:`~sklearn_dropnet.HQEnsembleClassifier`,
    its held-out split's parameters named as the options that set them."""
    message = first_line(error)
    if not message.startswith("validation_fraction="):  # the members' own parameter
        return message
    return message.replace("validation_fraction=", "--selection-fraction ", 1).replace(
        "Change validation_fraction, or use cv instead",
        "Change --selection-fraction, or use --cv instead",
    )


def _run(args):
    from .. import HQEnsembleClassifier
    from ..plotting import plot_hq_candidates

    data = prepare_training(args, (_MODEL, _PLOT))
    _check_options(args)
    print(data.summary())
    print(
        f"training {args.n_estimators} DropNet networks "
        f"(prune ratio {args.prune_ratio}, n_jobs={args.n_jobs}) ...",
        flush=True,
    )
    hq = HQEnsembleClassifier(
        dropnet_classifier(args, verbose=0),
        n_estimators=args.n_estimators,
        n_select=args.n_select,
        method=args.method,
        metric=args.metric,
        max_teams_per_level=args.max_teams_per_level,
        final_choice=args.final_choice,
        voting=args.voting,
        **({} if args.selection_fraction is None else {"validation_fraction": args.selection_fraction}),
        cv=args.cv,
        bootstrap=args.bootstrap,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        verbose=int(not args.quiet),
    )
    start = time.perf_counter()
    fit(hq, data.X_train, data.y_train, "the ensemble", message=_ensemble_message)
    elapsed = time.perf_counter() - start

    X_test, y_test = data.X_test, data.y_test
    team = [int(i) for i in hq.selected_]
    print()
    header = f"{'member':>6}  {'units':>6}  {'params':>9}  {'test acc':>8}  in team"
    print(header)
    for i, member in enumerate(hq.estimators_):
        record = member.pruning_history_[-1]
        accuracy = (
            ""
            if X_test is None
            else f"{np.mean(hq.classes_[member.predict(X_test)] == y_test):.4f}"
        )
        picked = "yes" + (f" (x{team.count(i)})" if team.count(i) > 1 else "") if i in team else ""
        print(f"{i:>6}  {record['units']:>6}  {record['params']:>9,}  {accuracy:>8}  {picked}")
    print()
    params_all = sum(m.pruning_history_[-1]["params"] for m in hq.estimators_)
    params_team = sum(hq.estimators_[i].pruning_history_[-1]["params"] for i in set(team))
    print(
        f"team ({args.method}, {len(team)} of {len(hq.estimators_)}): members {team}, "
        f"{len(hq.candidates_['team'])} teams examined"
    )
    print(f"params: all members {params_all:,}, team {params_team:,}")
    if X_test is not None:
        full = hq.classes_[_full_ensemble_votes(hq, X_test).argmax(axis=1)]
        print(
            f"test accuracy: full ensemble of {len(hq.estimators_)} {np.mean(full == y_test):.4f}, "
            f"team of {len(team)} {hq.score(X_test, y_test):.4f} ({len(X_test)} samples)"
        )
    print(f"total time: {elapsed:.1f} s")

    def draw(ax):
        plot_hq_candidates(hq, ax=ax)
        ax.set_title(f"{args.method}: {len(hq.candidates_['team'])} teams examined")

    model_path = dump(with_column_names(hq, data.names), data.output / _MODEL)
    report_written([model_path, *save_plot(draw, data.output / _PLOT, args)])
    return 0


COMMAND = Command(
    help="train M pruned networks and choose a team of S with HQ",
    description="Train --n-estimators DropNet networks (each pruned with the DropNet "
    "options below, each with its own seed) and choose a team of at most --n-select "
    "of them with HQEnsembleClassifier, on a held-out part of the training data. "
    "Prints each member's and the team's size and test accuracy against the full "
    "ensemble, and writes to --output-dir:\n\n"
    "  ensemble.joblib       the fitted HQEnsembleClassifier\n"
    "  hq_candidates.png     the teams examined: focal diversity against held-out\n"
    "                        accuracy, the chosen team marked",
    add_options=_add_options,
    run=_run,
)
