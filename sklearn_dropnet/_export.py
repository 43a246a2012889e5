"""Exporting a fitted network, or an HQ team, as one file a device runs.

:class:`ExportMixin` gives an estimator ``export(path)``; the format follows
the suffix of ``path`` (``FORMATS``):

- ``.onnx``: ONNX, written by torch's default exporter (``torch.export``
  underneath; it needs ``onnxscript``) and run once in ONNX Runtime to check it;
- ``.pt2``: a :func:`torch.export.export` program (:func:`torch.export.load`);
- ``.pt``: TorchScript (:func:`torch.jit.load`; deprecated by PyTorch).

Every file holds one graph, :class:`ProbabilityGraph`: input ``input``
(float32, shape ``(batch, *input_shape_)``, any batch size), outputs
``probabilities`` (float32, ``(batch, n_classes)``, what ``predict_proba``
returns) and ``class_index`` (int64, ``(batch,)``: ``classes_[class_index]`` is
what ``predict`` returns). A team is one graph that combines its members as
the ensemble does. The class labels travel in the file as JSON (ONNX
metadata ``classes``, or the extra file ``classes.json``).

Two mixins give the graph: :class:`NetworkExportMixin` for an estimator
holding one skorch network (``DropNetClassifier``), :class:`TeamExportMixin`
for a team whose members are such estimators (``HQEnsembleClassifier``).
"""

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._export_messages import (
    MISMATCH_CAUSES,
    first_line,
    refused_message,
    unfaithful_trace_message,
)
from ._export_quiet import quiet_torch
from .pruning._copies import deep_copy
from .pruning._weight_norm import plain_weights

__all__ = ["ExportMixin", "NetworkExportMixin", "ProbabilityGraph", "TeamExportMixin"]

INPUT_NAME = "input"
OUTPUT_NAMES = ("probabilities", "class_index")

# What turns a network's output into probabilities. DropNetClassifier's
# predict_proba renormalises the rows (in float64) after either: a
# softmax's rows sum to one already, to float32's rounding (the file agrees
# with predict_proba to 1e-7 without it, and a device is spared two
# operations, a fifth of a pruned MLP's time in ONNX Runtime); a module's
# own probabilities (criterion=NLLLoss) are renormalised in the file.
TO_PROBABILITIES = {
    "softmax": lambda output: torch.softmax(output, dim=1),
    "identity": lambda output: output / output.sum(dim=1, keepdim=True),
}

# An exported file is checked on random inputs against the estimator.
_CHECK_ROWS = 16
_CHECK_ATOL = 1e-5


class ProbabilityGraph(nn.Module):
    """What an exported file computes: networks -> (probabilities, class index).

    Each network's output becomes probabilities (``TO_PROBABILITIES``: a
    softmax of logits, or the module's own probabilities renormalised to
    sum to one); with ``voting="hard"`` each network
    votes for its most probable class instead (one-hot). The team's output
    is the weighted sum of these votes divided by the sum of the weights,
    and ``class_index`` its argmax (ties go to the first class). One network
    of weight 1 is a team of one.

    Parameters
    ----------
    networks : list of torch.nn.Module
        The networks, in eval mode, each taking the same input.
    outputs : list of str
        For each network, a key of ``TO_PROBABILITIES``.
    weights : list of int
        How often each network counts (an HQ member chosen twice counts twice).
    voting : {"soft", "hard"}
        Average the probabilities, or the one-hot votes.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet._export import ProbabilityGraph
    >>> graph = ProbabilityGraph([nn.Linear(4, 3)], ["softmax"], [1], "soft")
    >>> probabilities, class_index = graph(torch.zeros(2, 4))
    >>> probabilities.shape, class_index.shape
    (torch.Size([2, 3]), torch.Size([2]))
    >>> bool(torch.allclose(probabilities.sum(dim=1), torch.ones(2)))
    True
    """

    def __init__(self, networks, outputs, weights, voting):
        super().__init__()
        self.networks = nn.ModuleList(networks)
        self.outputs = list(outputs)
        self.weights = [float(weight) for weight in weights]
        self.voting = voting

    def forward(self, x):
        total = None
        for network, output, weight in zip(self.networks, self.outputs, self.weights):
            proba = TO_PROBABILITIES[output](network(x))
            if self.voting == "hard":
                classes = torch.arange(proba.shape[1], device=proba.device)
                proba = (proba.argmax(dim=1, keepdim=True) == classes).to(proba.dtype)
            vote = proba if weight == 1 else weight * proba
            total = vote if total is None else total + vote
        if len(self.networks) > 1 or self.weights[0] != 1:
            total = total / sum(self.weights)
        return total, total.argmax(dim=1)


# ---------------------------------------------------------------------------
# the formats
# ---------------------------------------------------------------------------


def _missing(*modules):
    return [name for name in modules if importlib.util.find_spec(name) is None]


def _require(modules, what):
    missing = _missing(*modules)
    if missing:
        raise ImportError(
            f"{what} needs {', '.join(modules)} (missing: {', '.join(missing)}); install "
            'them with: pip install "sklearn-dropnet[export]"'
        )


def _dynamic_batch():
    return ({0: torch.export.Dim("batch")},)


def _torch_version():
    return tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def _write_onnx(graph, example, path, metadata):
    _require(("onnx", "onnxscript", "onnxruntime"), "Exporting to .onnx")
    if _torch_version() < (2, 6):
        raise ImportError(
            f"Exporting to .onnx needs torch 2.6 or newer (its torch.export-based exporter); "
            f'this is torch {torch.__version__}: pip install "sklearn-dropnet[export]" upgrades it.'
        )
    import onnx

    with quiet_torch():
        program = torch.onnx.export(
            graph,
            (example,),
            None,
            dynamo=True,  # the default since torch 2.9
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=_dynamic_batch(),
            external_data=False,  # one file, the weights inside
            verbose=False,
        )
        program.model.metadata_props.update(metadata)
        program.save(path)
    # Weights the exporter put in a file of their own (over 2 GB) stay there.
    model = onnx.load(path, load_external_data=False)
    _strip_onnx_debug_info(model)
    onnx.save(model, path)


def _clear(message, *fields):
    for field in fields:
        if field in message.DESCRIPTOR.fields_by_name:
            message.ClearField(field)


def _strip_onnx_debug_info(model):
    """Clear what torch's exporter records for debugging: each node's, value's
    and graph's ``metadata_props`` and ``doc_string`` (the stack trace of the
    line of Python that made each node, with the build machine's absolute
    paths; the FX node; the module path; the graph signature). The model's
    own ``metadata_props`` (``classes``, ``producer``, ``estimator``) stay."""

    def strip_graph(graph):
        _clear(graph, "metadata_props", "doc_string")
        for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
            _clear(value, "metadata_props", "doc_string")
        for node in graph.node:
            strip_node(node)

    def strip_node(node):
        _clear(node, "metadata_props", "doc_string")
        for attribute in node.attribute:
            _clear(attribute, "doc_string")
            if attribute.HasField("g"):
                strip_graph(attribute.g)
            for subgraph in attribute.graphs:
                strip_graph(subgraph)

    strip_graph(model.graph)
    for function in model.functions:
        _clear(function, "metadata_props", "doc_string")
        for value in getattr(function, "value_info", ()):
            _clear(value, "metadata_props", "doc_string")
        for node in function.node:
            strip_node(node)


def _run_onnx(path, X):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, class_index = session.run(list(OUTPUT_NAMES), {INPUT_NAME: X})
    return probabilities, class_index


def _extra_files(metadata):
    return {f"{key}.json" if key == "classes" else key: value for key, value in metadata.items()}


def _write_exported_program(graph, example, path, metadata):
    with quiet_torch():
        program = torch.export.export(graph, (example,), dynamic_shapes=_dynamic_batch())
        # torch.export.save stores the example inputs, rows of the X given to
        # export; the program runs without them (torch.export.load gives None).
        with contextlib.suppress(AttributeError):  # an older torch without the setter
            program.example_inputs = None
        # Each node's stack trace: the build machine's paths and source lines.
        for module in program.graph_module.modules():
            if isinstance(module, torch.fx.GraphModule):
                for node in module.graph.nodes:
                    node.stack_trace = None
        torch.export.save(program, path, extra_files=_extra_files(metadata))


def _run_exported_program(path, X):
    with quiet_torch(), torch.no_grad():
        probabilities, class_index = torch.export.load(path).module()(torch.from_numpy(X))
    return probabilities.numpy(), class_index.numpy()


class _UnfaithfulTrace(Exception):
    """torch.jit.trace warned that its trace may not compute what the network does
    (``caught``: its TracerWarnings)."""

    def __init__(self, caught):
        super().__init__(str(caught[0].message))
        self.caught = caught


def _eager_failure(graph, example):
    """The error ``graph`` raises on ``example`` run as it is (no exporter), or None."""
    try:
        with torch.no_grad():
            graph(example)
    except Exception as exc:
        return exc
    return None


def _error_line(error):
    """``Type: message`` of ``error``'s first line; for an error raised in the
    TorchScript interpreter (whose first line says only that an operation failed),
    its last line, where torch puts the original error as ``Type: message``."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and "failed in the TorchScript interpreter" in lines[0]:
        return lines[-1].strip()
    return f"{type(error).__name__}: {first_line(error)}"


def _is_harmless(tracer_warning):
    # "torch.tensor results are registered as constants in the trace. You can
    # safely ignore this warning if you use this function to create tensors
    # out of constant variables": warned again to the user, not an error.
    return "registered as constants" in str(tracer_warning.message)


def _write_torchscript(graph, example, path, metadata):
    with quiet_torch() as caught:
        script = torch.jit.trace(graph, example)
        # A TracerWarning says that the trace may not generalise: a tensor turned
        # into a Python bool, number or index (an `if` on a tensor's value), a loop
        # over a tensor, a trace that did not reproduce the network. torch ignores
        # those raised in its own modules (an nn.GRU's checks), and so do we.
        unfaithful = [
            item for item in caught
            if issubclass(item.category, torch.jit.TracerWarning) and not _is_harmless(item)
        ]  # fmt: skip
        for item in unfaithful:
            caught.remove(item)
        if not unfaithful:
            torch.jit.save(script, path, _extra_files=_extra_files(metadata))
    if unfaithful:
        raise _UnfaithfulTrace(unfaithful)


def _run_torchscript(path, X):
    with quiet_torch(), torch.no_grad():
        probabilities, class_index = torch.jit.load(path)(torch.from_numpy(X))
    return probabilities.numpy(), class_index.numpy()


# suffix -> (what it is, how to write it, how to run it)
FORMATS = {
    ".onnx": ("ONNX", _write_onnx, _run_onnx),
    ".pt2": ("torch.export program", _write_exported_program, _run_exported_program),
    ".pt": ("TorchScript", _write_torchscript, _run_torchscript),
}


def _format(path):
    suffix = Path(path).suffix.lower()
    if Path(path).expanduser().is_dir():  # before its suffix: a folder named "out" has none
        raise IsADirectoryError(f"Cannot export to {os.fspath(path)!r}: it is a folder; give a file name.")
    if suffix not in FORMATS:
        raise ValueError(
            f"Cannot export to {os.fspath(path)!r}: the format follows the file's suffix, "
            f"one of {', '.join(FORMATS)} ({', '.join(name for name, *_ in FORMATS.values())}); "
            f"got {suffix or 'no suffix'!r}."
        )
    return FORMATS[suffix]


def _check_folder(path):
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot export to {os.fspath(path)!r}: the folder {folder} does not exist.")


def _scratch_folder(path):
    """A new hidden folder beside ``path`` to write the file in before it is checked;
    an OSError that names ``path`` and its folder where none can be made there."""
    try:
        return Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent))
    except OSError as exc:
        raise type(exc)(
            f"Cannot export to {os.fspath(path)!r}: no file can be written in the folder "
            f"{path.parent} ({exc.strerror or exc}). Export to a folder you can write in."
        ) from None


def labels_json(classes):
    """The labels as JSON; dates and durations as NumPy writes them
    (``tolist`` gives nanosecond ones as integers)."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "mM":
        classes = classes.astype(str)
    return json.dumps(classes.tolist(), default=str)


# ---------------------------------------------------------------------------
# the mixins
# ---------------------------------------------------------------------------


class ExportMixin:
    """``export(path)``: write the fitted estimator as one ONNX, torch.export
    or TorchScript file that runs without this package.

    A subclass says what the graph holds through ``_exported_networks()``:
    ``(networks, outputs, weights, voting)`` as :class:`ProbabilityGraph`
    takes them, and what the file is checked against through
    ``_exported_reference(X)``.
    """

    def export(self, path, X=None):
        """Write the fitted model to ``path`` as one file; the format follows the suffix.

        - ``.onnx``: ONNX (runs with ONNX Runtime alone; needs
          ``pip install "sklearn-dropnet[export]"`` to write);
        - ``.pt2``: a :func:`torch.export.export` program (load it with
          :func:`torch.export.load`, then ``.module()``);
        - ``.pt``: TorchScript (:func:`torch.jit.load`; PyTorch deprecates
          TorchScript, prefer ``.pt2``).

        The file has one input, ``input`` (float32, shape ``(batch,
        *input_shape_)``, any batch size), and two outputs:
        ``probabilities`` (float32, ``(batch, n_classes)``, the columns in the
        order of ``classes_``) and ``class_index`` (int64, ``(batch,)``):
        ``classes_[class_index]`` is what ``predict`` returns. The labels
        themselves are stored in the file as JSON: the ONNX metadata
        property ``classes``, or the extra file ``classes.json`` of a
        ``.pt2``/``.pt`` file. An ensemble is written as one graph that
        combines its team as ``predict_proba`` does (with
        ``voting="hard"``, ``probabilities`` is each class's share of the
        team's votes). Inputs are given as they are given to
        ``predict_proba``, already scaled: a pipeline's other steps are not
        part of the file.

        The file is written beside ``path`` under a temporary name, run (in
        ONNX Runtime, or torch) on ``X``, or on random inputs, and compared
        with this estimator's probabilities; only then is it moved to
        ``path``. A file that disagrees by more than 1e-5, or that cannot be
        checked, is deleted and an error raised; a file already at ``path``
        is then left as it was. The file computes on the CPU in float32: a
        network fitted on a GPU is compared with its copy on the CPU, since
        its ``predict_proba`` there uses TF32 kernels (about 1e-3 away).

        A ``.pt`` file is a trace (:func:`torch.jit.trace`): it records the
        operations one example input went through. A network whose
        ``forward`` runs Python control flow on tensor values (``if
        x.max() > 1:``) would be recorded with one branch for every input,
        so ``export`` refuses it when torch warns of it (``TracerWarning``);
        ``.pt2`` and ``.onnx`` (:func:`torch.export.export`) refuse it too.

        The ``.onnx`` and ``.pt2`` files hold no debugging records of torch
        (stack traces naming the files and lines of the network's source);
        ``.pt`` files keep TorchScript's. No rows of ``X`` are stored.

        Parameters
        ----------
        path : str or path-like
            The file to write, ending in ``.onnx``, ``.pt2`` or ``.pt``. Its
            folder must exist; a file already there is replaced once the new
            one passed its check.
        X : array-like of shape (n_samples, ...) or torch Dataset, default=None
            Inputs to check the file on (its first 16 rows; one row will
            do), given as to ``predict_proba``. By default, random
            standard-normal float32 inputs of ``input_shape_``; pass real
            rows where the network accepts only some values (an
            ``nn.Embedding`` taking token ids).

        Returns
        -------
        path : pathlib.Path
            The file written.

        Raises
        ------
        ValueError
            For another suffix, when the model holds something other than
            torch networks (an ensemble member that is a scikit-learn tree),
            when ``X`` is not of ``input_shape_`` or the estimator fails
            on it, when torch cannot export the network, or, for ``.pt``,
            when :func:`torch.jit.trace` warns that its trace would not
            compute what the network does.
        RuntimeError
            When the file's probabilities differ from ``predict_proba`` by
            more than 1e-5 (the message names the likely causes).
        ImportError
            For ``.onnx`` without ``onnx``, ``onnxscript`` and ``onnxruntime``.

        Examples
        --------
        >>> import tempfile, os
        >>> import onnxruntime
        >>> from sklearn.datasets import load_digits
        >>> from sklearn_dropnet import DropNetClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> X = (X / 16).astype("float32")
        >>> clf = DropNetClassifier(
        ...     module__hidden_layer_sizes=(32, 16), prune_ratio=0.5, max_epochs=2, random_state=0
        ... ).fit(X, y)
        >>> path = clf.export(os.path.join(tempfile.mkdtemp(), "digits.onnx"))
        >>> session = onnxruntime.InferenceSession(path)
        >>> probabilities, class_index = session.run(None, {"input": X[:5]})
        >>> bool((clf.classes_[class_index] == clf.predict(X[:5])).all())
        True
        """
        check_is_fitted(self)
        name, write, run = _format(path)
        _check_folder(path)
        path = Path(path).expanduser()
        networks, outputs, weights, voting = self._exported_networks()
        on_cpu = _on_the_cpu(networks)
        networks = [_inference_copy(network) for network in networks]
        graph = ProbabilityGraph(networks, outputs, weights, voting).eval()
        given = X is not None
        X = _check_inputs(self._exported_input_shape(), X)
        metadata = {
            "classes": labels_json(self.classes_),
            "producer": "sklearn-dropnet",
            "estimator": type(self).__name__,
        }
        # Two rows to trace (one row cannot show torch.export that the batch is free).
        example = torch.from_numpy(X[:2] if len(X) > 1 else np.repeat(X, 2, axis=0))
        # Written beside path under its own name, moved there once checked: a file
        # already at path stays as it was when export fails.
        folder = _scratch_folder(path)
        try:
            written = folder / path.name
            try:
                write(graph, example, written, metadata)
            except ImportError:
                raise
            except _UnfaithfulTrace as exc:
                raise ValueError(unfaithful_trace_message(type(self).__name__, path, exc.caught)) from None
            except Exception as exc:
                failure = _eager_failure(graph, example)
                if failure is not None:  # the network itself fails on the rows it was traced with
                    advice = "" if given else " Pass rows it accepts: export(path, X=X_test[:16])."
                    inputs = "the X given" if given else "random standard-normal inputs"
                    raise ValueError(
                        f"Cannot export {type(self).__name__} as a {name} file: its network failed on "
                        f"{inputs} ({_error_line(failure)}).{advice}"
                    ) from exc
                raise ValueError(refused_message(type(self).__name__, name, path, exc)) from exc
            self._check_export(written, name, run, X, given, path, None if on_cpu else graph)
            # The file, and its weights where the exporter put them in a file of their own.
            for file in sorted(folder.iterdir(), key=lambda file: file == written):
                os.replace(file, path.parent / file.name)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return path

    def _check_export(self, written, name, run, X, given, path, graph=None):
        """Run the file ``written`` on ``X`` (all rows, then one) against the estimator;
        raise if it differs or cannot be run (``given``: whether ``X`` came from the
        user; ``path``: where it was to go). For networks on a GPU, against ``graph``,
        their CPU copy that was exported: ``predict_proba`` there computes with
        TF32 kernels, about 1e-3 from any float32 file."""
        inputs = "the X given" if given else "random standard-normal inputs"
        kept = f"; the file already at {os.fspath(path)} was left as it was" if path.exists() else ""
        try:
            expected = self._exported_reference(X) if graph is None else _graph_probabilities(graph, X)
            outputs = [run(written, X)[0]]
        except Exception as exc:
            advice = "" if given else " Pass rows it accepts: export(path, X=X_test[:16])."
            raise ValueError(
                f"Cannot check the exported {name} file, so it was not written{kept}: the estimator "
                f"or the file failed on {inputs} ({_error_line(exc)}).{advice}"
            ) from exc
        try:
            outputs.append(run(written, X[:1])[0])
        except Exception as exc:
            raise ValueError(
                f"The exported {name} file ran on {len(X)} rows of {inputs} but failed on a batch of one "
                f"row ({_error_line(exc)}), so it was not written{kept}. A "
                "deployed network must take any batch size: a step such as x.squeeze() drops the batch "
                "dimension of a single row (x.flatten(1) or x.squeeze(-1) keep it)."
            ) from exc
        for probabilities in outputs:
            difference = float(np.max(np.abs(probabilities - expected[: len(probabilities)])))
            if not difference <= _CHECK_ATOL:
                raise RuntimeError(
                    f"The exported {name} file gave probabilities up to {difference:.3g} away "
                    f"from {type(self).__name__}.predict_proba on {len(probabilities)} row(s) of {inputs}, "
                    f"so it was not written{kept}. {MISMATCH_CAUSES[name]}"
                )

    def _exported_input_shape(self):
        raise NotImplementedError

    def _exported_networks(self):
        raise NotImplementedError

    def _exported_reference(self, X):
        raise NotImplementedError


def _check_inputs(input_shape, X=None):
    """The float32 rows to check an exported file on: the first of ``X``, or random ones."""
    if X is None:
        return np.random.default_rng(0).standard_normal((_CHECK_ROWS, *input_shape)).astype(np.float32)
    if isinstance(X, torch.utils.data.Dataset):  # as predict takes it: (x, label) pairs or inputs alone
        items = [X[index] for index in range(min(len(X), _CHECK_ROWS))]
        X = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
        X = [x.numpy() if isinstance(x, torch.Tensor) else x for x in X]
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"export's X must be numeric rows of shape (n_samples, *{input_shape}): {exc}") from exc
    if X.ndim < 1 or X.shape[1:] != tuple(input_shape) or not len(X):
        raise ValueError(
            f"export's X must be rows of shape (n_samples, *{tuple(input_shape)}), the inputs the "
            f"network was fitted on; got an array of shape {X.shape}."
        )
    return np.ascontiguousarray(X[:_CHECK_ROWS])


def _inference_copy(network):
    """A copy of ``network`` on the CPU, in eval mode, without gradients, its weight norms
    and parametrizations computed once into plain weights."""
    network = plain_weights(deep_copy(network).cpu().eval())
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


def _on_the_cpu(networks):
    """Whether every weight and buffer of ``networks`` is on the CPU."""
    return all(tensor.device.type == "cpu" for network in networks for tensor in network.state_dict().values())


def _graph_probabilities(graph, X):
    """The probabilities the graph written to the file computes, in torch on the CPU."""
    with torch.no_grad():
        return graph(torch.from_numpy(X))[0].double().numpy()


def _quiet_predict(method, X):
    """``method(X)`` without the warning that ``X`` has no feature names."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return np.asarray(method(X), dtype=np.float64)


class NetworkExportMixin(ExportMixin):
    """``export`` for an estimator holding one fitted skorch network in ``net_``.

    The network is ``net_.module_``; its output is turned into probabilities
    as ``net_``'s ``predict_nonlinearity`` does: a softmax, or none when the
    module returns probabilities itself (``criterion=torch.nn.NLLLoss``).
    """

    def _exported_input_shape(self):
        return tuple(self.input_shape_)

    def _exported_networks(self):
        nonlinearity = self.net_.predict_nonlinearity
        output = "identity" if nonlinearity is None else getattr(nonlinearity, "__name__", "")
        output = {"_softmax": "softmax"}.get(output, output)
        if output not in TO_PROBABILITIES:
            raise ValueError(
                f"Cannot export a network whose predict_nonlinearity is {nonlinearity!r}; "
                f"export knows {tuple(TO_PROBABILITIES)}."
            )
        return [self.net_.module_], [output], [1], "soft"

    def _exported_reference(self, X):
        return _quiet_predict(self.predict_proba, X)


class TeamExportMixin(ExportMixin):
    """``export`` for an ensemble: its team (``selected_`` indices into
    ``estimators_``, repeats counting twice) combined by ``voting``.

    Each member of the team must be a :class:`NetworkExportMixin` estimator
    (``DropNetClassifier``), possibly wrapped in
    :class:`~sklearn.frozen.FrozenEstimator`.
    """

    def _team(self):
        """``(names, members, counts)`` of the team's distinct members."""
        indices, counts = np.unique(self.selected_, return_counts=True)
        names = [
            name for name, member in self.named_estimators_.items()
            if not (isinstance(member, str) and member == "drop")
        ]  # fmt: skip
        members, others = [], []
        for index in indices:
            member = self.estimators_[index]
            while isinstance(member, FrozenEstimator):
                member = member.estimator
            if not isinstance(member, NetworkExportMixin):
                others.append((names[index], index, type(member).__name__))
            members.append(member)
        if others:
            if len(others) == 1:
                ((name, index, kind),) = others
                which = f"its member {name!r} (estimators_[{index}]) is a {kind}, not a torch network"
            else:
                listed = [f"{name!r} (estimators_[{index}], a {kind})" for name, index, kind in others]
                which = f"its members {', '.join(listed[:-1])} and {listed[-1]} are not torch networks"
            raise ValueError(
                f"Cannot export the team: {which}. Only teams of DropNetClassifier members "
                "(also inside FrozenEstimator) can be exported; leave the others out of "
                "estimators, or refit."
            )
        return [names[i] for i in indices], members, counts

    def _exported_input_shape(self):
        names, members, _ = self._team()
        shapes = {name: tuple(member.input_shape_) for name, member in zip(names, members)}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"Cannot export the team: its members take inputs of different shapes {shapes}.")
        return next(iter(shapes.values()))

    def _exported_networks(self):
        _, members, counts = self._team()
        networks, outputs = [], []
        for member in members:
            (network,), (output,), _, _ = member._exported_networks()
            networks.append(network)
            outputs.append(output)
        return networks, outputs, [int(count) for count in counts], self.voting

    def _exported_reference(self, X):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            votes, counts = self._team_votes(X)
        return votes / counts.sum()
