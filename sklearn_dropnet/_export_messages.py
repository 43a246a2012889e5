"""The messages of :mod:`sklearn_dropnet._export`: why torch refused a network,
why a file disagrees with ``predict_proba``, and what to do about it."""

import linecache
import os
import re

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def first_line(error):
    """The first line of ``error``'s message without terminal colours (torch's ONNX
    exporter colours its own), ``""`` for none: it follows ``Type: `` in messages
    (``sklearn_dropnet.cli.errors.first_line``, which stands alone, falls back to the type)."""
    return (_ANSI_ESCAPE.sub("", str(error)).strip().splitlines() or [""])[0]


def described(error):
    """``Type: first line`` of ``error``, and of its first cause where that says more
    (torch's ONNX exporter wraps the unsupported operator's name two causes deep)."""
    text = f"{type(error).__name__}: {first_line(error)}"
    root = error
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    if root is not error:
        text += f" (caused by {type(root).__name__}: {first_line(root)})"
    return text


# Why a file may disagree with predict_proba, and what to try, by format.
MISMATCH_CAUSES = {
    "TorchScript": (
        "Likely causes: Python control flow on tensor values in the network's forward that "
        "the trace froze to one branch without a warning; randomness at inference (dropout "
        "that stays on in eval mode, as F.dropout(x, p) without training=self.training does; "
        "torch.rand* in forward); a row's output depending on the other rows of its batch "
        "(statistics over the batch). Try .pt2 or .onnx: torch.export records the network "
        "without a trace and refuses such control flow instead of freezing it."
    ),
    "torch.export program": (
        "Likely causes: randomness at inference (dropout that stays on in eval mode, as "
        "F.dropout(x, p) without training=self.training does; torch.rand* in forward); a "
        "row's output depending on the other rows of its batch (statistics over the batch). "
        ".onnx is built from the same torch.export program and would differ alike; fix the "
        "network's forward."
    ),
    "ONNX": (
        "Likely causes: randomness at inference (dropout that stays on in eval mode, as "
        "F.dropout(x, p) without training=self.training does; torch.rand* in forward); a "
        "row's output depending on the other rows of its batch (statistics over the batch); "
        "an operator that ONNX Runtime computes otherwise than torch. Where a .pt2 file of "
        "the same model passes this check, it is the last: use .pt2."
    ),
}

# Where torch.export's data-dependent errors say the user's code stopped it.
_CALL_RAISED = re.compile(
    r'The following call raised this error:\s*File "([^"]+)", line (\d+), in \S+\s*\n\s*(\S[^\n]*)'
)


def _causes(error):
    """``error`` and the exceptions it was raised from, or during."""
    seen = []
    while error is not None and not any(error is other for other in seen):
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _data_dependent(error):
    """Where torch.export stopped on Python control flow on a tensor's value: `` (at
    FILE:LINE, `code`)``, ``""`` when it does not say, ``None`` for another error."""
    causes = _causes(error)
    if not any(
        "GuardOnDataDependentSymNode" in {cls.__name__ for cls in type(cause).__mro__}
        or "data-dependent" in first_line(cause)
        for cause in causes
    ):
        return None
    for cause in causes:
        found = _CALL_RAISED.search(_ANSI_ESCAPE.sub("", str(cause)))
        if found:
            filename, line, code = found.groups()
            return f" (at {filename}:{line}, `{code.strip()}`)"
    return ""


def refused_message(owner, name, path, error):
    """The error for a network torch could not export as ``name``."""
    message = f"torch could not export {owner}'s network as {name} ({os.fspath(path)}): {described(error)}"
    where = _data_dependent(error)
    if where is not None:
        return (
            f"{message}. The network's forward runs Python control flow on a tensor's "
            f"value{where}, which torch.export cannot record: .onnx and .pt2 fail alike, "
            "and .pt (a trace) would freeze the branch its example took. Write that step "
            "without Python control flow on tensors, e.g. x = torch.where(condition, a, b) "
            "in place of an if on the condition."
        )
    return message + (". Another format (.pt2, .pt) may export it." if name == "ONNX" else "")


# torch.jit's TracerWarnings for a tensor's value or length turned into a Python value.
_CONTROL_FLOW = re.compile(r"Converting a tensor to a Python|Iterating over a tensor|Using len to get tensor shape")


def unfaithful_trace_message(owner, path, caught):
    """The error for a network whose TorchScript trace would not compute what it does."""
    head = f"Cannot export {owner}'s network as TorchScript ({os.fspath(path)})"
    distinct = list({(str(item.message), item.filename, item.lineno): item for item in caught}.values())
    control_flow = [item for item in distinct if _CONTROL_FLOW.match(str(item.message))]
    if control_flow:
        first = control_flow[0]
        code = linecache.getline(first.filename, first.lineno).strip()
        where = f"{first.filename}:{first.lineno}" + (f", `{code}`" if code else "")
        more = f" (and {len(control_flow) - 1} more such warning(s))" if len(control_flow) > 1 else ""
        return (
            f"{head}: its forward runs Python control flow on tensor values, which "
            f"torch.jit.trace cannot record. torch warned at {where}: {first_line(first.message)}{more} "
            "A trace would freeze the branch its example input took and take it for every "
            "input, silently wrong for the others. Write that step without Python control flow "
            "on tensors, e.g. x = torch.where(condition, a, b) in place of an if on the "
            "condition, then export again."
        )
    said = dict.fromkeys(
        first_line(item.message).removesuffix(" Detailed error:").removesuffix(" Nodes:") for item in distinct
    )
    return (
        f"{head}: torch.jit.trace warned that its trace may not compute what the network "
        f"does ({' '.join(said)}). A network that is random in eval mode (dropout that stays "
        "on, as F.dropout(x, p) without training=self.training does; torch.rand* in forward) "
        "cannot give predict_proba's probabilities in any format; otherwise try .pt2 or "
        ".onnx, which torch.export writes without a trace."
    )
