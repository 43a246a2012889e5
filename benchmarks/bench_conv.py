"""What physical filter removal buys: parameters, multiply-accumulates, CPU time.

1. ResNet-18 and VGG-16 (CIFAR-style, 32x32 inputs) with 80% of their
   filters removed layer-wise (20% of every unit group left, the residual
   stream included). The filters are chosen by weight L1 norm on the
   untrained networks: which ones go does not change the cost, only how
   many. Prints parameters, the bytes ``torch.save`` writes for the weights,
   the bytes of all layer outputs per image, multiply-accumulates per image
   and the median CPU inference time of a batch, dense and pruned, and
   their ratios.
2. Model B (64-64 filters) on scikit-learn's digits as 8x8 images, trained
   and pruned by DropNet to 10% of its filters: test accuracy and the same
   cost figures.

The multiply-accumulate ratio is what the hardware must do; the time ratio
is what a CPU delivers, which for small layers is held back by per-layer
overheads.

Usage::

    python benchmarks/bench_conv.py               # under a minute on 2 cores
    python benchmarks/bench_conv.py --width 0.5   # half-width networks, quicker
    python benchmarks/bench_conv.py --device cuda --batch-size 256 --skip-model-b
"""

import argparse
import copy
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._device import check_device
from sklearn_dropnet.datasets import load_digits_images
from sklearn_dropnet.ensemble._parallel import limit_torch_threads
from sklearn_dropnet.models import VGG, ModelB, ResNet18
from sklearn_dropnet.pruning._network_cost import network_costs
from sklearn_dropnet.pruning._probes import inspect_network
from sklearn_dropnet.pruning._surgery import find_unit_groups, remove_units
from sklearn_dropnet.pruning._unit_scores import score_units
from sklearn_dropnet.pruning._unit_selection import choose_units_to_drop

# The settings tests/test_conv_pruning.py uses for the same claim.
MODEL_B_SETTINGS = {
    "module__channels": (64, 64),
    "lr": 0.003,
    "batch_size": 64,
    "max_epochs": 40,
    "patience": 5,
    "reinit": "none",
    "random_state": 2,
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0, help="multiplier of the standard widths")
    parser.add_argument("--prune-ratio", type=float, default=0.8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10, help="timed forward passes (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="where to time the ResNet-18 and VGG-16 passes")
    parser.add_argument("--skip-model-b", action="store_true")
    args = parser.parse_args()
    try:
        args.device = check_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def print_comparison(name, dense, pruned, extra=""):
    print(f"\n{name}{extra}")
    print(f"  {'':10} {'dense':>14} {'pruned':>14} {'ratio':>8}")
    rows = (("params", "params"), ("saved", "saved (B)"), ("activations", "activ. (B)"),
            ("macs", "MACs"), ("seconds", "time (s)"))  # fmt: skip
    for key, label in rows:
        fmt = "{:>14,.0f}" if key != "seconds" else "{:>14.4f}"
        print(
            f"  {label:10} {fmt.format(dense[key])} {fmt.format(pruned[key])} "
            f"{pruned[key] / dense[key]:>8.3f}"
        )


def prune_structurally(net, example, prune_ratio):
    """Remove ``prune_ratio`` of every unit group's filters, lowest L1 norm first."""
    structure = inspect_network(net, example)
    groups = find_unit_groups(net, example, structure)
    n_units = sum(g.size for g in groups)
    rng = np.random.default_rng(0)
    scores = score_units(net, groups, structure.probes, "l1", None, rng)
    drop = choose_units_to_drop(scores, round(prune_ratio * n_units), "layer", rng)
    remove_units(net, example, drop)
    left = sum(g.size for g in find_unit_groups(net, example, inspect_network(net, example)))
    return n_units, left, len(groups)


def bench_large(args):
    torch.manual_seed(0)
    batch = torch.randn(args.batch_size, 3, 32, 32, device=args.device)
    example = batch[:2]
    models = {
        "ResNet-18": ResNet18(input_shape=(3, 32, 32), n_classes=10, width=max(1, round(64 * args.width))),
        "VGG-16": VGG(input_shape=(3, 32, 32), n_classes=10, depth=16, width=args.width),
    }
    for name, net in models.items():
        net.to(args.device).eval()
        dense = network_costs(net, batch, args.repeats)
        pruned_net = copy.deepcopy(net)
        start = time.perf_counter()
        n_units, left, n_groups = prune_structurally(pruned_net, example, args.prune_ratio)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            assert pruned_net(batch).shape == (args.batch_size, 10)
        pruned = network_costs(pruned_net, batch, args.repeats)
        print_comparison(
            name,
            dense,
            pruned,
            f": {n_units} -> {left} filters ({left / n_units:.1%} left, {n_groups} unit groups), "
            f"surgery {seconds:.2f} s, batch {args.batch_size}x3x32x32 on {args.device}",
        )


def bench_model_b(args):
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    start = time.perf_counter()
    # One thread, as in the test: training this tiny network on two threads
    # is several times slower, and gives other (equally valid) numbers.
    with limit_torch_threads(1):
        clf = DropNetClassifier(ModelB, prune_ratio=0.0, **MODEL_B_SETTINGS).fit(X_train, y_train)
        dense_accuracy = clf.score(X_test, y_test)
        dense_net = copy.deepcopy(clf.module_).cpu()
        clf.prune(X_train, y_train, prune_ratio=0.9)
    seconds = time.perf_counter() - start
    pruned_accuracy = clf.score(X_test, y_test)
    batch = torch.as_tensor(X_test)
    dense = network_costs(dense_net, batch, args.repeats * 4)
    pruned = network_costs(clf.module_, batch, args.repeats * 4)
    record = clf.pruning_history_[-1]
    print_comparison(
        "Model B 64-64 on digits",
        dense,
        pruned,
        f": {record['units_per_layer']} filters left ({record['fraction_left']:.1%}), "
        f"test accuracy {dense_accuracy:.4f} -> {pruned_accuracy:.4f} "
        f"({len(clf.pruning_history_) - 1} rounds, {seconds:.0f} s), batch {len(batch)}x1x8x8",
    )


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), device {args.device}")
    if args.device.type == "cuda":
        print(f"  {torch.cuda.get_device_name(args.device)}")
    bench_large(args)
    if not args.skip_model_b:
        bench_model_b(args)


if __name__ == "__main__":
    main()
