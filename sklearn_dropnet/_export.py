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
import copy
import importlib.util
import io
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

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


@contextlib.contextmanager
def _quiet_torch():
    """Silence what torch's exporters print and warn about our own calls
    (progress lines, TorchScript's deprecation)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _torch_version():
    return tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def _write_onnx(graph, example, path, metadata):
    _require(("onnx", "onnxscript", "onnxruntime"), "Exporting to .onnx")
    if _torch_version() < (2, 6):
        raise ImportError(
            f"Exporting to .onnx needs torch 2.6 or newer (its torch.export-based exporter); "
            f'this is torch {torch.__version__}: pip install "sklearn-dropnet[export]" upgrades it.'
        )
    with _quiet_torch():
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


def _run_onnx(path, X):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, class_index = session.run(list(OUTPUT_NAMES), {INPUT_NAME: X})
    return probabilities, class_index


def _extra_files(metadata):
    return {f"{key}.json" if key == "classes" else key: value for key, value in metadata.items()}


def _write_exported_program(graph, example, path, metadata):
    with _quiet_torch():
        program = torch.export.export(graph, (example,), dynamic_shapes=_dynamic_batch())
        torch.export.save(program, path, extra_files=_extra_files(metadata))


def _run_exported_program(path, X):
    with _quiet_torch(), torch.no_grad():
        probabilities, class_index = torch.export.load(path).module()(torch.from_numpy(X))
    return probabilities.numpy(), class_index.numpy()


def _write_torchscript(graph, example, path, metadata):
    with _quiet_torch():
        script = torch.jit.trace(graph, example)
        torch.jit.save(script, path, _extra_files=_extra_files(metadata))


def _run_torchscript(path, X):
    with _quiet_torch(), torch.no_grad():
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
    if Path(path).expanduser().is_dir():
        raise IsADirectoryError(f"Cannot export to {os.fspath(path)!r}: it is a folder; give a file name.")


def _labels_json(classes):
    return json.dumps(np.asarray(classes).tolist(), default=str)


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

        After writing, the file is run (in ONNX Runtime, or torch) on ``X``,
        or on random inputs, and compared with this estimator's
        probabilities; a file that disagrees by more than 1e-5, or that
        cannot be checked, is removed and an error raised.

        Parameters
        ----------
        path : str or path-like
            The file to write, ending in ``.onnx``, ``.pt2`` or ``.pt``. Its
            folder must exist; the file is overwritten.
        X : array-like of shape (n_samples, ...), default=None
            Inputs to check the file on (its first 16 rows), given as to
            ``predict_proba``. By default, random standard-normal float32
            inputs of ``input_shape_``; pass real rows where the network
            accepts only some values (an ``nn.Embedding`` taking token ids).

        Returns
        -------
        path : pathlib.Path
            The file written.

        Raises
        ------
        ValueError
            For another suffix, when the model holds something other than
            torch networks (an ensemble member that is a scikit-learn tree),
            or when ``X`` is not of ``input_shape_`` or the estimator fails
            on it.
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
        networks = [_inference_copy(network) for network in networks]
        graph = ProbabilityGraph(networks, outputs, weights, voting).eval()
        given = X is not None
        X = _check_inputs(self._exported_input_shape(), X)
        metadata = {
            "classes": _labels_json(self.classes_),
            "producer": "sklearn-dropnet",
            "estimator": type(self).__name__,
        }
        try:
            write(graph, torch.from_numpy(X[:2]), path, metadata)
        except ImportError:
            raise
        except Exception as exc:
            raise ValueError(
                f"torch could not export {type(self).__name__}'s network as {name} "
                f"({os.fspath(path)}): {_described(exc)}"
                + (". Another format (.pt2, .pt) may export it." if name == "ONNX" else "")
            ) from exc
        self._check_export(path, name, run, X, given)
        return path

    def _check_export(self, path, name, run, X, given):
        """Run the file on ``X`` (all rows, then one) against the estimator; remove it if it differs
        or cannot be run (``given``: whether ``X`` came from the user)."""
        inputs = "the X given" if given else "random standard-normal inputs"
        try:
            expected = self._exported_reference(X)
            outputs = [run(path, rows)[0] for rows in (X, X[:1])]
        except Exception as exc:
            path.unlink(missing_ok=True)
            advice = "" if given else " Pass rows it accepts: export(path, X=X_test[:16])."
            raise ValueError(
                f"Cannot check the exported {name} file, so it was removed: the estimator or the "
                f"file failed on {inputs} ({type(exc).__name__}: {_first_line(exc)}).{advice}"
            ) from exc
        for probabilities in outputs:
            difference = float(np.max(np.abs(probabilities - expected[: len(probabilities)])))
            if not difference <= _CHECK_ATOL:
                path.unlink(missing_ok=True)
                raise RuntimeError(
                    f"The exported {name} file gave probabilities up to {difference:.3g} away "
                    f"from {type(self).__name__}.predict_proba on {len(probabilities)} row(s) of {inputs}; "
                    "it was removed. Please report this with the model."
                )

    def _exported_input_shape(self):
        raise NotImplementedError

    def _exported_networks(self):
        raise NotImplementedError

    def _exported_reference(self, X):
        raise NotImplementedError


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(error):
    return (_ANSI_ESCAPE.sub("", str(error)).strip().splitlines() or [""])[0]


def _described(error):
    """``Type: first line`` of ``error``, and of its first cause where that says more
    (torch's ONNX exporter wraps the unsupported operator's name two causes deep)."""
    text = f"{type(error).__name__}: {_first_line(error)}"
    root = error
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    if root is not error:
        text += f" (caused by {type(root).__name__}: {_first_line(root)})"
    return text


def _check_inputs(input_shape, X=None):
    """The float32 rows to check an exported file on: the first of ``X``, or random ones."""
    if X is None:
        return np.random.default_rng(0).standard_normal((_CHECK_ROWS, *input_shape)).astype(np.float32)
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
    """A copy of ``network`` on the CPU, in eval mode, without gradients."""
    network = copy.deepcopy(network).cpu().eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


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
        members = []
        for index in indices:
            member = self.estimators_[index]
            while isinstance(member, FrozenEstimator):
                member = member.estimator
            if not isinstance(member, NetworkExportMixin):
                raise ValueError(
                    f"Cannot export the team: its member {names[index]!r} (estimators_[{index}]) "
                    f"is a {type(member).__name__}, not a torch network. Only teams of "
                    "DropNetClassifier members (also inside FrozenEstimator) can be exported; "
                    "leave the others out of estimators, or refit."
                )
            members.append(member)
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
