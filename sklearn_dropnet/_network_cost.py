"""Size and cost of a network: parameters, multiply-accumulates, latency."""

import time

import torch
import torch_pruning as tp


def count_parameters(module):
    """Number of parameters of ``module``.

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_dropnet._network_cost import count_parameters
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters())


def count_macs(module, example_input):
    """Multiply-accumulates of one forward pass for a single sample.

    Counted by Torch-Pruning's operation counter on ``example_input[:1]``.
    """
    was_training = module.training
    try:
        macs, _ = tp.utils.count_ops_and_params(module, example_input[:1])
    finally:
        module.train(was_training)
    return int(macs)


def time_inference(module, inputs, repeats=20, warmup=3):
    """Median seconds of ``module(inputs)`` in eval mode without gradients."""
    was_training = module.training
    module.eval()
    timings = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                module(inputs)
                if inputs.is_cuda:
                    torch.cuda.synchronize()
                if i >= warmup:
                    timings.append(time.perf_counter() - start)
    finally:
        module.train(was_training)
    timings.sort()
    return timings[len(timings) // 2]
