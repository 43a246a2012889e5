"""``sklearn-dropnet prune``: train an MLP with DropNet, print the round-by-round
table and the dense against pruned test accuracy, and write the fitted model,
the history as CSV and the pruning curve as PNG."""

import csv
import time

from .outputs import dump, report_written, save_plot, writing
from .parser import Command, data_options, dropnet_options, run_options
from .training import dropnet_classifier, fit, prepare_training, with_column_names

# The files written in --output-dir.
_MODEL, _HISTORY, _PLOT = "model.joblib", "pruning_history.csv", "pruning_curve.png"


def _add_options(parser):
    data_options(parser)
    dropnet_options(parser, prune_ratio=0.8, max_epochs=100, hidden=(256, 128))
    run_options(parser, output_dir="dropnet-output")


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


def _unpruned_lines(unpruned):
    """The layers left unpruned, each with the reason, as lines of text (none: no lines)."""
    if not unpruned:
        return []
    return [f"layers left unpruned ({len(unpruned)}):", *(f"  {name}: {reason}" for name, reason in unpruned.items())]


def _write_history_csv(history, path):
    """Write the table as CSV to ``path``, with the units left in each layer;
    returns ``path``."""
    layers = list(history[0]["units_per_layer"])
    keys = [
        "round",
        "units",
        "fraction_left",
        "params",
        "macs",
        "valid_accuracy",
        "epochs",
        "seconds",
        "train_seconds",
        "accepted",
    ]
    with writing(path), open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(keys + [f"units[{layer}]" for layer in layers])
        for record in history:
            per_layer = record["units_per_layer"]
            writer.writerow(
                [record[key] for key in keys] + [per_layer.get(layer, 0) for layer in layers]
            )
    return path


def _run(args):
    from ..plotting import plot_pruning_curve
    from ..pruning._network_cost import saved_bytes

    data = prepare_training(args, (_MODEL, _HISTORY, _PLOT))
    print(data.summary())

    # Train the dense network first (prune_ratio=0) to score it on the test
    # split, then prune it further: prune() continues the same run.
    estimator = dropnet_classifier(args, verbose=0)
    target_ratio = estimator.prune_ratio
    estimator.set_params(prune_ratio=0.0)
    print("training the dense network ...", flush=True)
    start = time.perf_counter()
    fit(estimator, data.X_train, data.y_train, "the dense network")
    dense_accuracy = None if data.X_test is None else estimator.score(data.X_test, data.y_test)
    dense_bytes = saved_bytes(estimator.module_)
    if target_ratio > 0:
        print(f"pruning until {target_ratio:.0%} of the units are removed ...", flush=True)
        estimator.set_params(verbose=0 if args.quiet else 1)
        estimator.prune(data.X_train, data.y_train, prune_ratio=target_ratio)
    estimator.set_params(prune_ratio=target_ratio, verbose=0)
    elapsed = time.perf_counter() - start

    history = estimator.pruning_history_
    print()
    print("\n".join(_history_table(history, validated=args.validation_fraction > 0)))
    print()
    for line in _unpruned_lines(estimator.unpruned_layers_):
        print(line)
    final = max((r for r in history if r.get("accepted", True)), key=lambda r: r["round"])
    dense = history[0]
    print(f"units:  {dense['units']} -> {final['units']} ({final['fraction_left']:.1%} left)")
    print(f"params: {dense['params']:,} -> {final['params']:,}")
    print(f"MACs:   {dense['macs']:,} -> {final['macs']:,} per sample")
    print(
        f"weights: {dense_bytes / 1024:,.1f} KiB -> {saved_bytes(estimator.module_) / 1024:,.1f} KiB "
        "(torch.save of the module's state dict)"
    )
    if data.X_test is not None:
        pruned_accuracy = estimator.score(data.X_test, data.y_test)
        print(
            f"test accuracy: dense {dense_accuracy:.4f}, pruned {pruned_accuracy:.4f} "
            f"({len(data.X_test)} samples)"
        )
    print(f"total time: {elapsed:.1f} s")

    def draw(ax):
        plot_pruning_curve(
            estimator, ax=ax, label=f"DropNet ({args.unit_score}, {args.scope})", annotate=True
        )
        ax.set_title(f"Pruning curve: {final['fraction_left']:.0%} of units left")

    written = [
        dump(with_column_names(estimator, data.names), data.output / _MODEL),
        _write_history_csv(history, data.output / _HISTORY),
        *save_plot(draw, data.output / _PLOT, args),
    ]
    report_written(written)
    return 0


COMMAND = Command(
    help="prune an MLP with DropNet and save it",
    description="Train an MLP with DropNetClassifier, removing units round by round "
    "until --prune-ratio of them are gone. Prints one row per round (round 0 is the "
    "dense network) and the test accuracy of the dense and the pruned network, and "
    "writes to --output-dir:\n\n"
    "  model.joblib          the fitted estimator (load it with joblib.load or\n"
    "                        'sklearn-dropnet predict')\n"
    "  pruning_history.csv   the table, with the units of each layer\n"
    "  pruning_curve.png     validation accuracy against the share of units left",
    add_options=_add_options,
    run=_run,
)
