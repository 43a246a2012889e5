"""The ``export`` command: a saved model as one file a device runs.

``sklearn-dropnet export MODEL -o model.onnx`` loads a model saved by
``prune`` or ``ensemble`` (a joblib file) and writes it with its ``export``
method: ``.onnx`` (ONNX Runtime), ``.pt2`` (``torch.export``) or ``.pt``
(TorchScript), the format following the suffix of ``-o``. An ensemble is
written as one graph of its team.

:data:`COMMAND` is its entry in :data:`sklearn_dropnet.cli.main.COMMANDS`;
:func:`run_export` runs it on the parsed arguments.
"""

import json
import os
from pathlib import Path

from .._export import FORMATS, INPUT_NAME, OUTPUT_NAMES, labels_json
from .errors import first_line
from .io import UsageError, load_model
from .parser import Command
from .predict import model_data

__all__ = ["COMMAND", "run_export"]

_DESCRIPTION = (
    "Write a model saved by 'prune' or 'ensemble' as one file that runs without "
    "sklearn-dropnet, in the format of the suffix of -o:\n\n"
    "  .onnx   ONNX, for ONNX Runtime (needs: pip install \"sklearn-dropnet[export]\")\n"
    "  .pt2    a torch.export program, for torch.export.load\n"
    "  .pt     TorchScript, for torch.jit.load (deprecated by PyTorch)\n\n"
    "The file takes the samples as float32 'input' of shape (batch, features...), "
    "scaled as for 'predict', and gives 'probabilities' (batch, classes) and "
    "'class_index' (batch,); the class labels are stored in the file as JSON "
    "('classes' in the ONNX metadata, 'classes.json' in a .pt2 or .pt file). An "
    "ensemble is written as one graph that combines its team. The file is run once "
    "on random inputs (or on --data) and compared with the model before the command ends. "
    "Only load model files you trust: joblib files can run code when loaded."
)


def _add_options(parser):
    parser.add_argument("model", metavar="MODEL", help="the saved model, e.g. dropnet-output/model.joblib")
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help=f"the file to write, ending in {', '.join(FORMATS)} (replaced if it exists, once the "
        "new file passed its check). "
        "Default: MODEL with the suffix .onnx",
    )
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="samples to check the file on, instead of random inputs: a .npz or .csv file as "
        "for 'predict' (its first 16 samples). Needed for a network that takes only some "
        "input values, such as token ids for an nn.Embedding",
    )
    parser.add_argument(
        "--target",
        metavar="NAME",
        help="with --data, a .csv file with a header: the label column to leave out",
    )


def _output_path(args):
    """``-o``, checked before the model is loaded: not a folder, a known suffix, an existing
    folder, not the MODEL file itself (which writing it would destroy)."""
    path = Path(args.output if args.output is not None else Path(args.model).with_suffix(".onnx"))
    path = path.expanduser()
    if path.is_dir():
        raise UsageError(f"-o {path} is a folder; give a file name")
    if path.suffix.lower() not in FORMATS:
        raise UsageError(
            f"-o {path}: the format follows the suffix, one of {', '.join(FORMATS)} "
            f"({', '.join(name for name, *_ in FORMATS.values())}); got "
            f"{path.suffix or 'no suffix'!r}"
        )
    if not path.parent.is_dir():
        raise UsageError(f"-o {path}: the folder {path.parent} does not exist")
    if path.exists() and Path(args.model).exists() and os.path.samefile(path, args.model):
        raise UsageError(
            f"-o {path} is the model file {args.model} itself, which export would overwrite; "
            f"choose another -o, e.g. -o {path.with_name(path.stem + '_exported' + path.suffix)}"
        )
    return path


def _shape(dims):
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def run_export(args):
    """Run ``export`` on the parsed ``args``; returns the exit status (0).

    Problems (a missing or unsupported model, a bad suffix, onnx not
    installed, a network torch cannot export, a file that disagrees with the
    model) raise :class:`~sklearn_dropnet.cli.io.UsageError`, one line.
    """
    output = _output_path(args)
    if args.target is not None and args.data is None:
        raise UsageError("--target names a column of the --data file; give --data too")
    model = load_model(args.model)
    if not callable(getattr(model, "export", None)):
        raise UsageError(
            f"{args.model} holds a {type(model).__name__}, which cannot be exported: export "
            "writes DropNetClassifier and HQEnsembleClassifier models (saved by 'prune' and "
            "'ensemble')"
        )
    X = None if args.data is None else model_data(model, args.data, args.target)[0][:16]
    try:
        path = model.export(output, X=X)
    except ImportError as error:
        raise UsageError(f"cannot write {output}: {first_line(error)}") from None
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        message = first_line(error).replace(
            "Pass rows it accepts: export(path, X=X_test[:16]).", "Give samples it accepts with --data FILE."
        )
        raise UsageError(f"cannot export {args.model}: {message}") from None
    kind = FORMATS[path.suffix.lower()][0]
    shape = tuple(model._exported_input_shape())
    classes = json.loads(labels_json(model.classes_))
    print(f"wrote {path} ({kind}, {path.stat().st_size / 1024:,.1f} KiB)")
    print(f"  input   {INPUT_NAME!r}: float32 {_shape(('batch', *shape))}")
    print(f"  outputs {OUTPUT_NAMES[0]!r}: float32 {_shape(('batch', len(classes)))}, "
          f"{OUTPUT_NAMES[1]!r}: int64 (batch,)")
    shown = ", ".join(f"{i}: {label}" for i, label in enumerate(classes[:12]))
    print(f"  class_index -> label: {shown}{', ...' if len(classes) > 12 else ''}")
    return 0


COMMAND = Command(
    help="write a saved model as one ONNX, torch.export or TorchScript file",
    description=_DESCRIPTION,
    add_options=_add_options,
    run=run_export,
)
