"""Size and cost of a network: parameters, bytes, multiply-accumulates, latency."""

import contextlib
import io
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ._eval_mode import eval_mode, evaluate
from ._sites import record_forward


def count_parameters(module):
    """Number of parameters of ``module``.

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._network_cost import count_parameters
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters())


def saved_bytes(module):
    """Bytes that ``torch.save`` writes for ``module``'s state dict.

    What a device stores to run the network: weights, biases and buffers
    (such as BatchNorm's running statistics) in their dtypes, plus the
    file's small fixed overhead.

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._network_cost import saved_bytes
    >>> 4_004_000 < saved_bytes(nn.Linear(1000, 1000)) < 4_010_000
    True
    """
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


def activation_bytes(module, example_input):
    """Bytes of the outputs of every leaf module in a forward pass, per sample.

    The activations a forward pass creates for one sample (a module called
    twice counts twice; a module returning several tensors counts its
    first): what training keeps for the backward pass, and an upper bound on
    what inference holds at once. The leaf-module calls are those recorded
    by the trace that finds the prunable layers.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._network_cost import activation_bytes
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> activation_bytes(net, torch.zeros(2, 4))  # (8 + 8 + 3) float32 values
    76
    """
    samples = example_input[:2]  # a BatchNorm without running statistics needs two
    calls, _ = record_forward(module, samples)
    outputs = [call.output for call in calls if call.module is not None and call.output is not None]
    return sum(out.numel() * out.element_size() for out in outputs) // len(samples)


def peak_cuda_bytes(module, inputs):
    """Peak CUDA memory that ``module(inputs)`` allocates, in bytes.

    Measured, not counted: the highest ``torch.cuda.max_memory_allocated``
    reaches during one forward pass in eval mode without gradients, less
    what was allocated before it (the weights and ``inputs``). It holds the
    activations alive at once, the output and the workspaces of the kernels.
    A first pass warms the kernels up and is not measured.

    Parameters
    ----------
    module : torch.nn.Module
        The network, on the CUDA device that holds ``inputs``.
    inputs : torch.Tensor
        A batch on a CUDA device.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``inputs`` is not on a CUDA device: torch keeps no peak-memory
        statistics for the CPU.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._network_cost import peak_cuda_bytes
    >>> net = nn.Linear(4, 1000).cuda()  # doctest: +SKIP
    >>> peak_cuda_bytes(net, torch.zeros(256, 4, device="cuda"))  # doctest: +SKIP
    1024000
    """
    if inputs.device.type != "cuda":
        raise ValueError(
            f"peak_cuda_bytes measures CUDA memory, but the inputs are on {inputs.device}; "
            "move the network and the inputs to a CUDA device."
        )
    device = inputs.device
    with eval_mode(module), torch.inference_mode():
        module(inputs)
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        module(inputs)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before


def count_macs(module, example_input):
    """Multiply-accumulates of one forward pass for a single sample.

    Counted by PyTorch's :class:`torch.utils.flop_counter.FlopCounterMode`
    on the first two samples of ``example_input`` (a BatchNorm without
    running statistics needs two), divided by their number: the matrix
    products of linear layers,
    convolutions (grouped ones per group) and attention, two FLOPs to a
    multiply-accumulate. Element-wise work (biases, normalisation,
    activations, pooling) is not a multiply-accumulate and is not counted.
    Recurrent layers and attention are counted through their unfused
    kernels (oneDNN and the attention fast path are off while counting):
    the fused ones hide their products from the counter.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_dropnet.pruning._network_cost import count_macs
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> count_macs(net, torch.zeros(5, 4))  # 4 * 8 + 8 * 3
    56
    """
    samples = example_input[:2]
    with _countable_kernels(), FlopCounterMode(display=False) as counter:
        evaluate(module, samples)
    return counter.get_total_flops() // (2 * len(samples))


@contextlib.contextmanager
def _countable_kernels():
    """Within the block, the kernels whose matrix products the counter sees: a CPU
    nn.LSTM's oneDNN kernel, the fused eval-mode path of nn.TransformerEncoder
    (and of nn.MultiheadAttention) and the CPU's flash attention count nothing."""
    mha = getattr(torch.backends, "mha", None)  # its switch: torch 2.2 and later
    fastpath = mha.get_fastpath_enabled() if hasattr(mha, "get_fastpath_enabled") else None
    mkldnn = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    if fastpath is not None:
        mha.set_fastpath_enabled(False)
    try:
        with _math_attention():  # the CPU's flash attention counts nothing either
            yield
    finally:
        torch._C._set_mkldnn_enabled(mkldnn)
        if fastpath is not None:
            mha.set_fastpath_enabled(fastpath)


def _math_attention():
    """scaled_dot_product_attention through its plain matrix products (torch 2.3 and later)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def network_costs(module, batch, repeats=20):
    """Every cost above for ``module``, as the benchmarks print them dense and pruned.

    Returns
    -------
    dict
        ``params``, ``saved`` (bytes), ``activations`` (bytes per sample),
        ``macs`` (per sample) and ``seconds`` (median time of one pass over
        ``batch``).
    """
    return {
        "params": count_parameters(module),
        "saved": saved_bytes(module),
        "activations": activation_bytes(module, batch),
        "macs": count_macs(module, batch),
        "seconds": time_inference(module, batch, repeats=repeats),
    }


def time_inference(module, inputs, repeats=20, warmup=3):
    """Median seconds of ``module(inputs)`` in eval mode without gradients."""
    timings = []
    with eval_mode(module), torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            module(inputs)
            if inputs.is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                timings.append(time.perf_counter() - start)
    timings.sort()
    return timings[len(timings) // 2]

