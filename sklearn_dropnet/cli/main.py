"""The ``sklearn-dropnet`` command line (also ``python -m sklearn_dropnet``).

Three subcommands:

- ``prune``: train a :class:`~sklearn_dropnet.DropNetClassifier` (an MLP) on
  a data file or on scikit-learn's digits, print the round-by-round table
  and the dense against pruned test accuracy, and write the fitted model,
  the history as CSV and the pruning curve as PNG;
- ``ensemble``: train ``M`` pruned networks and choose ``S`` of them with an
  :class:`~sklearn_dropnet.HQEnsembleClassifier`, then compare the team with
  the full ensemble on a test split;
- ``predict``: load a saved model and predict on a data file.

Data files are ``.npz`` (arrays ``X`` and ``y``) or ``.csv`` (numbers, the
label in the last column or in the column ``--target``, an optional header
row). User errors (a missing file, a bad extension, the wrong number of
features) end with a one-line message and exit status 2.
"""

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .._device import check_device
from ..ensemble._ensemble_selection import member_votes
from .io import (
    UsageError,
    dump,
    load_data,
    load_model,
    output_dir,
    prediction_output,
    single_row_classes,
    split_test,
    training_data,
    write_history_csv,
    write_predictions,
    writing,
)
from .parser import PROG, build_parser

__all__ = ["main", "build_parser"]


def _configure_torch(args):
    """Set torch's CPU threads; check that ``--device`` exists here."""
    import torch

    torch.set_num_threads(args.threads)
    try:
        check_device(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def _dropnet(args, verbose):
    from .. import DropNetClassifier

    return DropNetClassifier(
        prune_ratio=args.prune_ratio,
        drop_fraction=args.drop_fraction,
        scope=args.scope,
        unit_score=args.unit_score,
        reinit=args.reinit,
        min_accuracy_ratio=args.min_accuracy_ratio,
        max_epochs=args.max_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        patience=args.patience,
        validation_fraction=args.validation_fraction,
        device=args.device,
        random_state=args.random_state,
        verbose=verbose,
        module__hidden_layer_sizes=args.hidden_layer_sizes,
    )


def _first_line(error):
    """The first line of ``error``'s message: scikit-learn's can run to several."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _fit(estimator, X, y, what, message=_first_line):
    """Fit ``estimator``; its ValueError or TypeError becomes a
    :class:`UsageError` reading ``cannot train WHAT: message(error)``."""
    try:
        return estimator.fit(X, y)
    except (ValueError, TypeError) as error:
        raise UsageError(f"cannot train {what}: {message(error)}") from None


def _test_split(X, y, args):
    """:func:`split_test` with ``--test-size``, and a note on standard error
    when the test split cannot be stratified."""
    single = single_row_classes(y)
    if args.test_size > 0 and single.size:
        names = _some(single)
        which = f"class {names} has" if single.size == 1 else f"classes {names} have"
        print(
            f"note: the test split is not stratified: {which} a single row, and a stratified "
            "split needs 2 of each class",
            file=sys.stderr,
        )
    return split_test(X, y, args.test_size, args.random_state)


def _history_table(history, validated=True):
    """The round-by-round table, as lines of text; with ``validated`` False
    (``--validation-fraction 0``) the accuracy is on the training data, and
    its column reads "train acc"."""
    columns = [
        ("round", "{:>5}", "round"),
        ("units", "{:>7}", "units"),
        ("fraction_left", "{:>9.3f}", "fraction"),
        ("params", "{:>10,}", "params"),
        ("macs", "{:>10,}", "MACs"),
        ("valid_accuracy", "{:>10.4f}", "valid acc" if validated else "train acc"),
        ("epochs", "{:>6}", "epochs"),
        ("seconds", "{:>8.1f}", "seconds"),
    ]
    widths = [len(fmt.format(history[0][key])) for key, fmt, _ in columns]
    widths = [max(w, len(title)) for w, (_, _, title) in zip(widths, columns)]
    lines = ["  ".join(title.rjust(w) for (_, _, title), w in zip(columns, widths)) + "  accepted"]
    for record in history:
        cells = [fmt.format(record[key]).rjust(w) for (key, fmt, _), w in zip(columns, widths)]
        lines.append(
            "  ".join(cells)
            + ("  yes" if record.get("accepted", True) else "  no (below --min-accuracy-ratio)")
        )
    return lines


def _save_plot(draw, path, args):
    """Draw with ``draw(ax)`` and save to ``path``; returns whether it did.

    A bare :class:`~matplotlib.figure.Figure` needs no GUI backend and leaves
    pyplot's state alone.
    """
    if args.no_plot:
        return False
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(
            f"note: matplotlib is not installed, {path.name} was not written "
            "(pip install sklearn-dropnet[plot])",
            file=sys.stderr,
        )
        return False
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    draw(fig.subplots())
    with writing(path):
        fig.savefig(path, dpi=120)
    return True


def _with_column_names(model, names):
    """``model``, and an ensemble's members, given ``names``, the feature
    column names of a ``.csv`` file with a header (None for none), as
    ``feature_names_in_`` (what a fit on a DataFrame records), so that
    ``predict`` matches a file's columns by name."""
    if names is not None:
        for fitted in [model, *getattr(model, "estimators_", [])]:
            fitted.feature_names_in_ = np.asarray(names, dtype=object)
    return model


def _prune(args):
    from ..plotting import plot_pruning_curve
    from ..pruning._network_cost import saved_bytes

    _configure_torch(args)
    X, y, description, names = training_data(args)
    X_train, X_test, y_train, y_test = _test_split(X, y, args)
    output = output_dir(args.output_dir)
    print(
        f"data: {description}; {len(X_train)} training samples, "
        f"{0 if X_test is None else len(X_test)} test samples"
    )

    # Train the dense network first (prune_ratio=0) to score it on the test
    # split, then prune it further: prune() continues the same run.
    estimator = _dropnet(args, verbose=0)
    target_ratio = estimator.prune_ratio
    estimator.set_params(prune_ratio=0.0)
    print("training the dense network ...", flush=True)
    start = time.perf_counter()
    _fit(estimator, X_train, y_train, "the dense network")
    dense_accuracy = None if X_test is None else estimator.score(X_test, y_test)
    dense_bytes = saved_bytes(estimator.module_)
    if target_ratio > 0:
        print(f"pruning until {target_ratio:.0%} of the units are removed ...", flush=True)
        estimator.set_params(verbose=0 if args.quiet else 1)
        estimator.prune(X_train, y_train, prune_ratio=target_ratio)
    estimator.set_params(prune_ratio=target_ratio, verbose=0)
    elapsed = time.perf_counter() - start

    history = estimator.pruning_history_
    print()
    print("\n".join(_history_table(history, validated=args.validation_fraction > 0)))
    print()
    final = max((r for r in history if r.get("accepted", True)), key=lambda r: r["round"])
    dense = history[0]
    print(f"units:  {dense['units']} -> {final['units']} ({final['fraction_left']:.1%} left)")
    print(f"params: {dense['params']:,} -> {final['params']:,}")
    print(f"MACs:   {dense['macs']:,} -> {final['macs']:,} per sample")
    print(
        f"weights: {dense_bytes / 1024:,.1f} KiB -> {saved_bytes(estimator.module_) / 1024:,.1f} KiB "
        "(torch.save of the module's state dict)"
    )
    if X_test is not None:
        pruned_accuracy = estimator.score(X_test, y_test)
        print(
            f"test accuracy: dense {dense_accuracy:.4f}, pruned {pruned_accuracy:.4f} "
            f"({len(X_test)} samples)"
        )
    print(f"total time: {elapsed:.1f} s")

    model_path = output / "model.joblib"
    dump(_with_column_names(estimator, names), model_path)
    history_path = output / "pruning_history.csv"
    write_history_csv(history, history_path)
    written = [model_path, history_path]
    plot_path = output / "pruning_curve.png"

    def draw(ax):
        plot_pruning_curve(
            estimator, ax=ax, label=f"DropNet ({args.unit_score}, {args.scope})", annotate=True
        )
        ax.set_title(f"Pruning curve: {final['fraction_left']:.0%} of units left")

    if _save_plot(draw, plot_path, args):
        written.append(plot_path)
    print("wrote: " + ", ".join(str(path) for path in written))
    return 0


def _full_ensemble_votes(hq, X):
    """Summed votes of all of ``hq``'s members on ``X`` (n_samples, n_classes)."""
    probas = np.stack([np.asarray(m.predict_proba(X), dtype=float) for m in hq.estimators_])
    return member_votes(probas, hq.voting).sum(axis=0)


def _ensemble_message(error):
    """The first line of an error of :class:`~sklearn_dropnet.HQEnsembleClassifier`,
    its held-out split's parameters named as the options that set them."""
    message = _first_line(error)
    if not message.startswith("validation_fraction="):  # the members' own parameter
        return message
    return message.replace("validation_fraction=", "--selection-fraction ", 1).replace(
        "Change validation_fraction, or use cv instead",
        "Change --selection-fraction, or use --cv instead",
    )


def _ensemble(args):
    from .. import HQEnsembleClassifier
    from ..plotting import plot_hq_candidates

    _configure_torch(args)
    X, y, description, names = training_data(args)
    X_train, X_test, y_train, y_test = _test_split(X, y, args)
    output = output_dir(args.output_dir)
    if args.method != "all" and args.n_select > args.n_estimators:
        raise UsageError(
            f"--n-select {args.n_select} is larger than --n-estimators {args.n_estimators}"
        )
    if args.method == "hq" and args.n_select < 2:
        raise UsageError("--method hq needs --n-select of at least 2")
    if args.cv is not None and args.bootstrap:
        raise UsageError("--cv and --bootstrap cannot be combined; use one of the two")
    print(
        f"data: {description}; {len(X_train)} training samples, "
        f"{0 if X_test is None else len(X_test)} test samples"
    )
    print(
        f"training {args.n_estimators} DropNet networks "
        f"(prune ratio {args.prune_ratio}, n_jobs={args.n_jobs}) ...",
        flush=True,
    )
    hq = HQEnsembleClassifier(
        _dropnet(args, verbose=0),
        n_estimators=args.n_estimators,
        n_select=args.n_select,
        method=args.method,
        metric=args.metric,
        final_choice=args.final_choice,
        voting=args.voting,
        validation_fraction=args.selection_fraction,
        cv=args.cv,
        bootstrap=args.bootstrap,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
    )
    start = time.perf_counter()
    _fit(hq, X_train, y_train, "the ensemble", message=_ensemble_message)
    elapsed = time.perf_counter() - start

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

    model_path = output / "ensemble.joblib"
    dump(_with_column_names(hq, names), model_path)
    written = [model_path]
    plot_path = output / "hq_candidates.png"

    def draw(ax):
        plot_hq_candidates(hq, ax=ax)
        ax.set_title(f"{args.method}: {len(hq.candidates_['team'])} teams examined")

    if _save_plot(draw, plot_path, args):
        written.append(plot_path)
    print("wrote: " + ", ".join(str(path) for path in written))
    return 0


def _sample_shape(model):
    """The shape of one sample ``model`` takes, e.g. ``(64,)`` or ``(1, 8, 8)``; None if unknown.

    :class:`~sklearn_dropnet.DropNetClassifier` records it as ``input_shape_``
    (an ensemble's members do); other estimators only ``n_features_in_``.
    """
    members = getattr(model, "estimators_", None)
    candidates = [model, *members[:1]] if isinstance(members, list) else [model]
    for candidate in candidates:
        shape = getattr(candidate, "input_shape_", None)
        if shape is not None:
            return tuple(shape)
    n_features = getattr(model, "n_features_in_", None)
    return None if n_features is None else (n_features,)


def _prediction_data(args, model):
    """``X, y`` of ``predict``'s data file, checked against the samples ``model`` takes."""
    shape = _sample_shape(model)
    if shape is not None and len(shape) > 1 and Path(args.data).suffix.lower() == ".csv":
        raise UsageError(
            f"the model takes samples of shape {shape}, and a .csv file holds flat rows: "
            f"give a .npz file with X of shape (n_samples, {', '.join(map(str, shape))})"
        )
    n_features = None if shape is None else shape[0]
    names = getattr(model, "feature_names_in_", None)
    X, y, _ = load_data(
        args.data,
        target=args.target,
        n_features=n_features,
        feature_names=None if names is None else [str(name) for name in names],
    )
    if shape is None or X.shape[1:] == shape:
        return X, y
    if len(shape) == 1 and X.ndim == 2:
        raise UsageError(
            f"{args.data} has {X.shape[1]} feature columns, but the model expects {shape[0]}"
        )
    raise UsageError(
        f"{args.data} has samples of shape {X.shape[1:]}, but the model expects samples "
        f"of shape {shape}"
    )


def _comparable(labels, other):
    """``labels`` in a form for ``==`` against ``other``'s: numbers when one of
    the two is numeric and both are (or read as) numbers, else text."""
    labels, other = np.asarray(labels), np.asarray(other)
    if labels.dtype.kind in "biuf" or other.dtype.kind in "biuf":
        try:
            return labels.astype(np.float64), other.astype(np.float64)
        except (TypeError, ValueError):
            pass
    return labels.astype(str), other.astype(str)


def _some(labels):
    """The first five distinct ``labels``, for a message."""
    labels = list(dict.fromkeys(np.asarray(labels).tolist()))
    return ", ".join(str(label) for label in labels[:5]) + (", ..." if len(labels) > 5 else "")


def _accuracy_note(predicted, y, classes, data):
    """The line ``predict`` reports on standard error about the labels of ``data``."""
    known_classes, y_as_classes = _comparable(classes, y)
    if not np.isin(y_as_classes, known_classes).any():
        return (
            f"no accuracy: none of the labels in {data} ({_some(np.unique(y))}) is one of "
            f"the model's classes ({_some(classes)})"
        )
    predicted, y = _comparable(predicted, y)
    return f"accuracy on the labels in {data}: {np.mean(predicted == y):.4f} ({len(y)} samples)"


def _predict(args):
    output = None if args.output is None else prediction_output(args.output)
    model = load_model(args.model)
    X, y = _prediction_data(args, model)
    if args.proba and not hasattr(model, "predict_proba"):
        raise UsageError(f"{type(model).__name__} has no predict_proba; drop --proba")
    try:
        with warnings.catch_warnings():
            # The columns were matched by name (or by position, for a file
            # with no header): X, an array, need not be warned of for having none.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            result = model.predict_proba(X) if args.proba else model.predict(X)
    except ValueError as error:
        raise UsageError(f"cannot predict on {args.data}: {_first_line(error)}") from None

    classes = list(getattr(model, "classes_", range(np.shape(result)[-1])))
    if output is None:
        write_predictions(sys.stdout, result, classes, args.proba, header=args.proba)
    else:
        with writing(output), open(output, "w", newline="") as file:
            write_predictions(
                file, result, classes, args.proba, header=output.suffix.lower() == ".csv"
            )
    if y is not None and not args.proba:
        print(_accuracy_note(result, y, classes, args.data), file=sys.stderr)
    if args.output is not None:
        print(f"wrote {len(result)} predictions to {args.output}", file=sys.stderr)
    return 0


_COMMANDS = {"prune": _prune, "ensemble": _ensemble, "predict": _predict}


def _silence_stdout():
    """Point standard output at the null device after a reader closed its pipe.

    The recipe of Python's "Note on SIGPIPE" (the :mod:`signal` docs): the
    output still buffered then goes nowhere at exit, instead of failing again
    with an "Exception ignored ... BrokenPipeError" message.
    """
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced, e.g. by a test's capture
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def _run(argv):
    """Parse ``argv`` and run its command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, --version and usage errors
        return exit.code if isinstance(exit.code, int) else 2
    try:
        return _COMMANDS[args.command](args)
    except UsageError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def main(argv=None):
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments, without the program name; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on a user error (printed as one line on standard
        error) or a bad option, 1 when the reader of standard output closed
        it (``sklearn-dropnet ... | head``), 130 on Ctrl-C.

    Examples
    --------
    >>> from sklearn_dropnet.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    sklearn-dropnet ...
    0
    """
    try:
        status = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return 1
    return status
