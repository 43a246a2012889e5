"""DropNet on CIFAR-sized data on a GPU: time per epoch and per batch, dense against pruned.

Trains a ``DropNetClassifier`` (ResNet-18 by default, or VGG-16) on 50,000
CIFAR-10-sized images (3x32x32, 10 classes) and prunes it to
``--prune-ratio`` of its filters in rounds of ``--drop-fraction``,
``--epochs`` epochs a round, on ``--device``. The images are CIFAR-10's when
``--data-dir`` names a folder holding ``cifar-10-batches-py``; otherwise
synthetic images of the same shape and number (a fixed random pattern per
class plus noise), so the timings are those of a CIFAR-10 run while the
accuracies are not CIFAR-10's.

Prints, per round: filters left, parameters, multiply-accumulates per image,
epochs, the seconds of the whole round (scoring, surgery, training,
validation and tracing) and of its training epochs alone, and the training
seconds per epoch with their ratio to the dense round's. Then, dense and
pruned and their ratio: parameters, the bytes of the saved weights, the
bytes of activations per image, multiply-accumulates per image, the median
time of one forward pass over ``--batch-size`` images and, on a CUDA
device, the peak memory that pass allocates beyond the weights and the
images. Last, the time of DropNet's scoring pass (the forward pass with the
activation hooks) over 10,240 training images against a plain forward pass
over the same batches. All ratios come from this one run.

Usage::

    python benchmarks/bench_gpu.py --device cuda                    # about a minute on one H100
    python benchmarks/bench_gpu.py --device cuda --data-dir ~/data  # CIFAR-10 itself
    python benchmarks/bench_gpu.py --quick                          # smoke run on the CPU, seconds
"""

import argparse
import time

import numpy as np
import torch

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._device import check_device
from sklearn_dropnet.datasets import load_cifar10
from sklearn_dropnet.models import VGG, ResNet18
from sklearn_dropnet.pruning._network_cost import network_costs, peak_cuda_bytes
from sklearn_dropnet.pruning._probes import inspect_network
from sklearn_dropnet.pruning._unit_scores import collect_activation_statistics


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data-dir", help="folder holding cifar-10-batches-py (default: synthetic images)")
    parser.add_argument("--model", choices=("resnet18", "vgg16"), default="resnet18")
    parser.add_argument(
        "--width", type=float, default=None, help="ResNet-18: filters of its first stage (64); VGG: x (1)"
    )
    parser.add_argument("--n-train", type=int, default=50_000, help="synthetic training images")
    parser.add_argument("--prune-ratio", type=float, default=0.8)
    parser.add_argument("--drop-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per round")
    parser.add_argument("--train-batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for training")
    parser.add_argument("--batch-size", type=int, default=1024, help="images per timed forward pass")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--save", help="write the fitted estimator here with joblib")
    parser.add_argument("--quick", action="store_true", help="tiny CPU smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.device, args.n_train, args.batch_size, args.repeats = "cpu", 256, 64, 3
        args.width = 4 if args.model == "resnet18" else 1 / 16
        args.prune_ratio, args.drop_fraction = 0.5, 0.5
    try:
        args.device = check_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def synthetic_cifar(n_train, n_test=10_000, seed=0):
    """CIFAR-10-shaped float32 images: a random 8x8 pattern per class, upscaled, plus noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((10, 3, 8, 8), dtype=np.float32).repeat(4, axis=2).repeat(4, axis=3)

    def draw(n):
        y = rng.integers(0, 10, n)
        X = rng.standard_normal((n, 3, 32, 32), dtype=np.float32)
        X *= 2.0
        X += patterns[y]
        return X, y

    X_train, y_train = draw(n_train)
    X_test, y_test = draw(n_test)
    return X_train, X_test, y_train, y_test


def load(args):
    if args.data_dir is None:
        return synthetic_cifar(args.n_train), "synthetic CIFAR-10-sized images"
    X_train, y_train = load_cifar10(args.data_dir, train=True, normalize=True)
    X_test, y_test = load_cifar10(args.data_dir, train=False, normalize=True)
    return (X_train, X_test, y_train, y_test), f"CIFAR-10 from {args.data_dir}"


def architecture(args):
    """The module class and its keyword arguments."""
    if args.model == "resnet18":
        return ResNet18, {"width": int(args.width or 64)}
    return VGG, {"depth": 16, "width": float(args.width or 1.0)}


def estimator(args):
    module, module_params = architecture(args)
    return DropNetClassifier(
        module,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=args.lr,
        batch_size=args.train_batch_size,
        max_epochs=args.epochs,
        patience=args.epochs,
        prune_ratio=args.prune_ratio,
        drop_fraction=args.drop_fraction,
        device=str(args.device),
        iterator_train__num_workers=args.workers,
        random_state=0,
        **{f"module__{key}": value for key, value in module_params.items()},
    )


def print_rounds(history):
    """One line per round; the per-epoch time and its ratio to the dense round count training alone."""
    dense_per_epoch = history[0]["train_seconds"] / history[0]["epochs"]
    print(f"{'round':>5} {'left':>7} {'filters':>8} {'params':>12} {'MACs':>14} {'valid acc':>9} "
          f"{'epochs':>6} {'round s':>8} {'train s':>8} {'s/epoch':>8} {'ratio':>6}")  # fmt: skip
    for record in history:
        per_epoch = record["train_seconds"] / record["epochs"]
        print(
            f"{record['round']:>5} {record['fraction_left']:>7.1%} {record['units']:>8,} "
            f"{record['params']:>12,} {record['macs']:>14,} {record['valid_accuracy']:>9.4f} "
            f"{record['epochs']:>6} {record['seconds']:>8.2f} {record['train_seconds']:>8.2f} "
            f"{per_epoch:>8.2f} {per_epoch / dense_per_epoch:>6.3f}"
        )


COLUMNS = {  # key: (heading, format)
    "params": ("params", "{:,}"),
    "saved": ("weights B", "{:,}"),
    "activations": ("activ. B/image", "{:,}"),
    "macs": ("MACs/image", "{:,}"),
    "seconds": ("forward ms", "{:.2f}"),
    "peak": ("peak CUDA MiB", "{:.1f}"),
}


def print_costs(costs, n_images, args):
    """Dense and pruned costs side by side, then the pruned/dense ratio of each."""
    keys = [key for key in COLUMNS if key in costs["dense"]]
    shown = {key: dict(costs[key]) for key in ("dense", "pruned")}
    for row in shown.values():
        row["seconds"] *= 1e3
        if "peak" in row:
            row["peak"] /= 2**20
    measured = "forward pass and peak memory" if "peak" in keys else "forward pass"
    print(f"\ncosts; {measured} over {n_images} images on {args.device} "
          f"(median of {args.repeats} passes):")  # fmt: skip
    print(f"{'network':7}" + "".join(f"{COLUMNS[key][0]:>16}" for key in keys))
    for name, row in shown.items():
        print(f"{name:7}" + "".join(f"{COLUMNS[key][1].format(row[key]):>16}" for key in keys))
    ratios = [costs["pruned"][key] / costs["dense"][key] for key in keys]
    print(f"{'ratio':7}" + "".join(f"{ratio:>16.3f}" for ratio in ratios))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_scoring_pass(module, X, device, batch_size=256):
    """Seconds of DropNet's activation statistics and of a plain forward pass over ``X``."""
    batches = [torch.as_tensor(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
    probes = inspect_network(module, batches[0][:2].to(device)).probes
    seconds = {}
    for name in ("plain", "scoring", "plain", "scoring"):  # the first two warm up
        sync(device)
        start = time.perf_counter()
        on_device = (batch.to(device) for batch in batches)
        if name == "scoring":
            collect_activation_statistics(module, on_device, probes)
        else:
            with torch.no_grad():
                for batch in on_device:
                    module(batch)
        sync(device)
        seconds[name] = time.perf_counter() - start
    return seconds


def main(argv=None):
    args = parse_args(argv)
    name = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {args.device} ({name}), {torch.get_num_threads()} CPU threads")
    start = time.perf_counter()
    (X_train, X_test, y_train, y_test), source = load(args)
    print(f"{len(X_train):,} training and {len(X_test):,} test images, {source} "
          f"({time.perf_counter() - start:.1f} s to load)")  # fmt: skip

    clf = estimator(args)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    print(f"\n{args.model}, {args.prune_ratio:.0%} of filters removed, {args.epochs} epoch(s) a round, "
          f"batch {args.train_batch_size}: fit {fit_seconds:.1f} s")  # fmt: skip
    print_rounds(clf.pruning_history_)
    print(f"test accuracy of the pruned network: {clf.score(X_test, y_test):.4f}")

    module, module_params = architecture(args)  # the dense network, for its cost only
    dense_net = module(input_shape=(3, 32, 32), n_classes=10, **module_params).to(args.device)
    batch = torch.as_tensor(X_test[: args.batch_size], device=args.device)
    networks = {"dense": dense_net, "pruned": clf.module_}
    costs = {key: network_costs(net, batch, args.repeats) for key, net in networks.items()}
    if args.device.type == "cuda":
        for key, net in networks.items():
            costs[key]["peak"] = peak_cuda_bytes(net, batch)
    print_costs(costs, len(batch), args)

    n_scored = min(len(X_train), 10_240)
    scoring = time_scoring_pass(dense_net.eval(), X_train[:n_scored], args.device)
    print(f"\ndense network over {n_scored:,} training images in batches of 256: scoring pass "
          f"{scoring['scoring']:.3f} s, plain forward pass {scoring['plain']:.3f} s, "
          f"ratio {scoring['scoring'] / scoring['plain']:.2f}")  # fmt: skip
    if args.save:
        import joblib

        joblib.dump(clf, args.save)
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
