"""Keep what torch prints, logs and warns while it exports off the user's terminal.

torch's exporters print progress and graph dumps, log through their own
loggers and warn about their own internals (TorchScript's deprecation, an
``nn.GRU``'s shape checks). :func:`quiet_torch` keeps all of it back and
warns again only what the network's own code raised.
"""

import contextlib
import io
import logging
import os
import sys
import sysconfig
import warnings

import torch

# The export code itself: its warnings are about its calls into torch.
_OURS = {os.path.abspath(__file__), os.path.join(os.path.dirname(os.path.abspath(__file__)), "_export.py")}


def _library_folders():
    """The folders whose warnings are torch's own output: torch, ONNX and its
    exporter, and Python's standard library (not its site-packages)."""
    folders = [
        os.path.dirname(os.path.abspath(module.__file__))
        for module in map(sys.modules.get, ("torch", "onnx", "onnxscript", "onnx_ir", "onnxruntime"))
        if getattr(module, "__file__", None)
    ]
    paths = sysconfig.get_paths()
    sites = {os.path.abspath(paths[key]) for key in ("purelib", "platlib") if key in paths}
    return [os.path.abspath(paths["stdlib"])], folders, sites


def _from_library(filename, library):
    """Whether a warning raised at ``filename`` is torch's (or ONNX's, or Python's)
    own, or ours about our calls to them, rather than the network's code."""
    stdlib, folders, sites = library
    if filename.startswith("<frozen "):
        return True
    path = os.path.abspath(filename)
    if path in _OURS or any(path.startswith(f"{folder}{os.sep}") for folder in folders):
        return True
    in_site = any(path.startswith(site + os.sep) for site in sites)
    return not in_site and any(path.startswith(folder + os.sep) for folder in stdlib)


@contextlib.contextmanager
def _quiet_loggers(prefixes=("torch", "onnxscript", "onnx_ir")):
    """Turn off torch's loggers for a while (``sys.stderr`` is redirected too,
    which catches them where their handler follows it, as torch 2.14's does)."""
    loggers = [
        logger
        for name, logger in list(logging.Logger.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and name.split(".")[0] in prefixes and not logger.disabled
    ]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger in loggers:
            logger.disabled = False


@contextlib.contextmanager
def quiet_torch():
    """Keep what torch prints, logs and warns while exporting off the terminal.

    Yields the list of warnings raised meanwhile; a caller may take some out
    (``_write_torchscript`` turns torch.jit's ``TracerWarning`` into an
    error). On leaving, the warnings raised in other code than torch's,
    ONNX's or Python's own (the network's ``forward``, say) are warned again,
    as they were raised; the others, TorchScript's deprecation and the like,
    are dropped. TracerWarnings from inside torch's own modules are ignored
    as torch itself ignores them.
    """
    library = _library_folders()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        stack.enter_context(_quiet_loggers())
        caught = stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # torch.jit.TracerWarning.ignore_lib_warnings(): "all our shape checks in nn
        # will trigger them" (torch/jit/_trace.py), so torch ignores them outside torch.jit.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="torch.(?!jit)")
        yield caught
    shown = set()
    for caught_warning in caught:
        where = (caught_warning.filename, caught_warning.lineno)
        key = (caught_warning.category, str(caught_warning.message), *where)
        if key not in shown and not _from_library(caught_warning.filename, library):
            warnings.warn_explicit(caught_warning.message, caught_warning.category, *where)
        shown.add(key)
