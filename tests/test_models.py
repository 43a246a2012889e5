"""Tests of the architectures in ``sklearn_dropnet.models``."""

import copy
import pickle

import pytest
import torch
from torch import nn

from sklearn_dropnet.models import (
    MLP,
    VGG,
    BasicBlock,
    ModelA,
    ModelB,
    ModelC,
    ResNet18,
)

DIGITS_SHAPE = (1, 8, 8)
CIFAR_SHAPE = (3, 32, 32)

# Small versions of every model, so that the tests run in a few seconds.
SMALL_MODELS = [
    pytest.param(MLP, {"hidden_layer_sizes": (8, 6)}, id="MLP"),
    pytest.param(ModelA, {"hidden_layer_sizes": (8, 6)}, id="ModelA"),
    pytest.param(ModelB, {"channels": (4, 6)}, id="ModelB"),
    pytest.param(
        ModelC, {"channels": (4, 4, 8, 8), "hidden_layer_sizes": (16,)}, id="ModelC"
    ),
    pytest.param(VGG, {"depth": 11, "width": 1 / 16}, id="VGG11"),
    pytest.param(VGG, {"depth": 19, "width": 1 / 16}, id="VGG19"),
    pytest.param(ResNet18, {"width": 4}, id="ResNet18"),
]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run these tiny forward passes on one thread: when the cores are busy,
    two OpenMP threads make each small op ~100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def leaves(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("input_shape", [DIGITS_SHAPE, CIFAR_SHAPE])
@pytest.mark.parametrize("model_class, options", SMALL_MODELS)
def test_forward_and_backward_shapes(model_class, options, input_shape):
    torch.manual_seed(0)
    net = model_class(input_shape=input_shape, n_classes=7, **options)
    x = torch.randn(2, *input_shape)
    out = net(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 7)


@pytest.mark.parametrize("model_class, options", SMALL_MODELS)
def test_other_image_sizes(model_class, options):
    input_shape = (2, 13, 20)  # odd, non-square size
    net = model_class(input_shape=input_shape, n_classes=3, **options)
    assert net(torch.zeros(2, *input_shape)).shape == (2, 3)


@pytest.mark.parametrize("model_class, options", SMALL_MODELS)
def test_pickle_and_deepcopy(model_class, options):
    net = model_class(input_shape=CIFAR_SHAPE, n_classes=4, **options).eval()
    x = torch.randn(2, *CIFAR_SHAPE)
    for twin in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        torch.testing.assert_close(twin.eval()(x), net(x))


def _record_calls(net, x):
    """Run ``net(x)``; return the leaf modules called, in order, with the
    tensors each received and returned (kept alive so identities are safe)."""
    calls = []
    handles = [
        m.register_forward_hook(lambda m, args, out: calls.append((m, args[0], out)))
        for m in net.modules()
        if not list(m.children())
    ]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def _consumer(calls, start, tensor):
    """The first leaf module called after ``calls[start]`` that receives
    ``tensor`` (the same object) as its input."""
    for module, inp, _ in calls[start + 1 :]:
        if inp is tensor:
            return module
    return None


@pytest.mark.parametrize("input_shape", [DIGITS_SHAPE, CIFAR_SHAPE])
@pytest.mark.parametrize("model_class, options", SMALL_MODELS)
def test_pruning_conventions(model_class, options, input_shape):
    """Every hidden Linear/Conv2d feeds (through at most a BatchNorm) an
    activation module, and each activation module is called exactly once."""
    net = model_class(input_shape=input_shape, n_classes=5, **options)
    calls = _record_calls(net, torch.randn(2, *input_shape))
    shortcut_convs = {
        id(m)
        for block in leaves(net, BasicBlock)
        for m in block.shortcut.modules()
    }
    layers = [
        i
        for i, (m, _, _) in enumerate(calls)
        if isinstance(m, (nn.Linear, nn.Conv2d)) and id(m) not in shortcut_convs
    ]
    assert isinstance(calls[layers[-1]][0], nn.Linear)  # the output layer
    assert calls[layers[-1]][0].out_features == 5
    for i in layers[:-1]:
        module, _, out = calls[i]
        nxt = _consumer(calls, i, out)
        if isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d)):
            j = next(k for k, c in enumerate(calls) if c[0] is nxt and c[1] is out)
            nxt = _consumer(calls, j, calls[j][2])
        assert isinstance(nxt, nn.ReLU), f"{module} is followed by {nxt}"
    relus = [m for m, _, _ in calls if isinstance(m, nn.ReLU)]
    assert len(relus) == len({id(m) for m in relus}) == len(leaves(net, nn.ReLU))


@pytest.mark.parametrize("model_class", [ModelB, ModelC, VGG, ResNet18])
def test_conv_models_reject_flat_input_shape(model_class):
    with pytest.raises(ValueError, match=r"\(channels, height, width\)"):
        model_class(input_shape=(64,), n_classes=10)


def test_model_a_is_the_paper_mlp():
    net = ModelA(input_shape=DIGITS_SHAPE, n_classes=10)
    assert isinstance(net, MLP)
    assert [m.out_features for m in leaves(net, nn.Linear)] == [40, 40, 10]
    # 64*40+40 + 40*40+40 + 40*10+10
    assert n_params(net) == 2600 + 1640 + 410
    assert ModelA(input_shape=(64,), n_classes=10, hidden_layer_sizes=(20, 20))(
        torch.zeros(2, 64)
    ).shape == (2, 10)


def test_mlp_defaults():
    net = MLP(input_shape=(64,), n_classes=10)
    assert [m.out_features for m in leaves(net, nn.Linear)] == [256, 128, 10]
    assert [m.num_features for m in leaves(net, nn.BatchNorm1d)] == [256, 128]
    assert leaves(MLP(input_shape=(64,), n_classes=10, batch_norm=False), nn.BatchNorm1d) == []
    net = MLP(input_shape=(64,), n_classes=3, dropout=0.5, activation=nn.Tanh)
    assert len(leaves(net, nn.Dropout)) == 2 and len(leaves(net, nn.Tanh)) == 2


def test_model_b_parameter_count_on_digits():
    net = ModelB(input_shape=DIGITS_SHAPE, n_classes=10, channels=(64, 64))
    conv1 = 1 * 64 * 9 + 64
    conv2 = 64 * 64 * 9 + 64
    dense = (64 * 2 * 2) * 10 + 10  # 8x8 -> 4x4 -> 2x2
    assert n_params(net) == conv1 + conv2 + dense == 40138
    assert [m.out_channels for m in leaves(net, nn.Conv2d)] == [64, 64]
    assert ModelB(input_shape=DIGITS_SHAPE, n_classes=10).features[0].out_channels == 32


def test_model_b_on_mnist_size():
    net = ModelB(input_shape=(1, 28, 28), n_classes=10, channels=(20, 20))
    assert net.classifier[-1].in_features == 20 * 7 * 7


def test_model_c_defaults_and_pooling():
    net = ModelC(input_shape=CIFAR_SHAPE, n_classes=10)
    assert [m.out_channels for m in leaves(net, nn.Conv2d)] == [64, 64, 128, 128]
    assert [m.out_features for m in leaves(net, nn.Linear)] == [256, 10]
    assert len(leaves(net, nn.MaxPool2d)) == 4
    assert net.classifier[1].in_features == 128 * 2 * 2  # 32 -> 16 -> 8 -> 4 -> 2
    # On 8x8 digits the fourth pooling is skipped: 8 -> 4 -> 2 -> 1.
    net = ModelC(input_shape=DIGITS_SHAPE, n_classes=10)
    assert len(leaves(net, nn.MaxPool2d)) == 3
    assert net.classifier[1].in_features == 128
    assert net(torch.zeros(2, *DIGITS_SHAPE)).shape == (2, 10)


@pytest.mark.parametrize("depth, n_convs", [(11, 8), (13, 10), (16, 13), (19, 16)])
def test_vgg_depths(depth, n_convs):
    net = VGG(input_shape=CIFAR_SHAPE, n_classes=10, depth=depth, width=1 / 16)
    convs = leaves(net, nn.Conv2d)
    assert len(convs) == n_convs
    assert len(convs) + 3 == depth  # the original VGG has three linear layers
    assert len(leaves(net, nn.Linear)) == 1
    assert len(leaves(net, nn.BatchNorm2d)) == n_convs
    assert len(leaves(net, nn.MaxPool2d)) == 5
    assert convs[0].out_channels == 4 and convs[-1].out_channels == 32
    # Every conv is followed directly by a BatchNorm, then a ReLU.
    features = list(net.features)
    for i, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            assert isinstance(features[i + 1], nn.BatchNorm2d)
            assert isinstance(features[i + 2], nn.ReLU)


def test_vgg19_full_size_parameter_count():
    net = VGG(input_shape=CIFAR_SHAPE, n_classes=10)  # depth=19, width=1.0
    widths = [64, 64, 128, 128, 256, 256, 256, 256] + [512] * 8
    expected, c_in = 0, 3
    for c in widths:
        expected += c_in * c * 9 + c + 2 * c  # conv weight + bias, BN affine
        c_in = c
    expected += 512 * 10 + 10
    assert n_params(net) == expected


def test_vgg_rejects_unknown_depth():
    with pytest.raises(ValueError, match="depth must be one of"):
        VGG(input_shape=CIFAR_SHAPE, n_classes=10, depth=12)


def test_vgg_on_digits_skips_poolings():
    net = VGG(input_shape=DIGITS_SHAPE, n_classes=10, depth=16, width=1 / 16)
    assert len(leaves(net, nn.MaxPool2d)) == 3  # 8 -> 4 -> 2 -> 1


def test_resnet18_structure():
    net = ResNet18(input_shape=CIFAR_SHAPE, n_classes=10, width=4)
    stem_conv = net.stem[0]
    assert (stem_conv.kernel_size, stem_conv.stride) == ((3, 3), (1, 1))
    assert not leaves(net.stem, nn.MaxPool2d)
    blocks = leaves(net, BasicBlock)
    assert len(blocks) == 8
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    for i, (stage, width) in enumerate(zip(stages, (4, 8, 16, 32))):
        first, second = stage
        assert first.conv2.out_channels == second.conv2.out_channels == width
        assert isinstance(second.shortcut, nn.Identity)
        if i == 0:
            assert isinstance(first.shortcut, nn.Identity)
        else:
            assert first.conv1.stride == (2, 2)
            conv, bn = first.shortcut
            assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
            assert conv.stride == (2, 2) and isinstance(bn, nn.BatchNorm2d)
    # 1 stem + 8 blocks x 2 + 3 projections
    assert len(leaves(net, nn.Conv2d)) == 20
    assert net.classifier[-1].in_features == 32


def test_resnet18_full_size_parameter_count():
    # The usual CIFAR-10 ResNet-18 (e.g. kuangliu/pytorch-cifar) has 11,173,962.
    net = ResNet18(input_shape=CIFAR_SHAPE, n_classes=10)
    assert n_params(net) == 11_173_962


@pytest.mark.parametrize("stride, in_channels", [(1, 4), (2, 4), (1, 3)])
def test_basic_block_adds_in_place_before_relu2(stride, in_channels):
    """bn2's output tensor itself (the residual sum, added in place) is what
    relu2 receives."""
    block = BasicBlock(in_channels, 4, stride=stride)
    seen = {}

    def remember(name, tensor):
        seen[name] = tensor  # returns None: a hook's return value replaces outputs

    h1 = block.bn2.register_forward_hook(lambda m, a, out: remember("bn2", out))
    h2 = block.relu2.register_forward_hook(lambda m, a, out: remember("relu2", a[0]))
    x = torch.randn(2, in_channels, 6, 6)
    out = block(x)
    h1.remove()
    h2.remove()
    assert seen["relu2"] is seen["bn2"]
    # The sum really is bn2(conv2(.)) + shortcut(x).
    block.eval()
    with torch.no_grad():
        h = block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(x)))))
        torch.testing.assert_close(block(x), torch.relu(h + block.shortcut(x)))
    assert out.shape == (2, 4, 6 // stride, 6 // stride)


@pytest.mark.parametrize("model_class, options", SMALL_MODELS[2:])
def test_torch_pruning_can_remove_a_filter(model_class, options):
    """Torch-Pruning traces every conv model and removes a filter of its
    first conv layer consistently (the lead's engine builds on this)."""
    tp = pytest.importorskip("torch_pruning")
    net = model_class(input_shape=CIFAR_SHAPE, n_classes=10, **options).eval()
    example = torch.zeros(1, *CIFAR_SHAPE)
    graph = tp.DependencyGraph().build_dependency(net, example_inputs=example)
    conv = leaves(net, nn.Conv2d)[0]
    before = conv.out_channels
    group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[0])
    group.prune()
    assert conv.out_channels == before - 1
    assert net(torch.zeros(2, *CIFAR_SHAPE)).shape == (2, 10)


@pytest.mark.parametrize("model_class, options", SMALL_MODELS[2:])
def test_reset_parameters_redraws_he_weights(model_class, options):
    net = model_class(input_shape=CIFAR_SHAPE, n_classes=10, **options)
    layers = leaves(net, (nn.Conv2d, nn.Linear))
    assert all(m.bias is None or not m.bias.any() for m in layers)
    before = [m.weight.detach().clone() for m in layers]
    net(torch.randn(4, *CIFAR_SHAPE))  # moves BatchNorm running statistics
    net.reset_parameters()
    for m, w in zip(layers, before):
        assert m.weight.shape == w.shape and not torch.equal(m.weight, w)
    for bn in leaves(net, nn.BatchNorm2d):
        assert not bn.running_mean.any() and bool((bn.running_var == 1).all())


def test_he_initialisation_scale():
    torch.manual_seed(0)
    net = ModelB(input_shape=(1, 28, 28), n_classes=10, channels=(64, 64))
    conv2 = net.features[3]
    fan_in = 64 * 9
    std = conv2.weight.std().item()
    assert abs(std - (2 / fan_in) ** 0.5) < 0.1 * (2 / fan_in) ** 0.5


def test_reset_parameters_after_pruning():
    tp = pytest.importorskip("torch_pruning")
    net = ModelC(input_shape=CIFAR_SHAPE, n_classes=10, channels=(4, 4, 8, 8),
                 hidden_layer_sizes=(16,))
    graph = tp.DependencyGraph().build_dependency(
        net, example_inputs=torch.zeros(1, *CIFAR_SHAPE)
    )
    graph.get_pruning_group(
        net.features[3], tp.prune_conv_out_channels, idxs=[0, 1]
    ).prune()
    net.reset_parameters()
    assert net.features[3].out_channels == 2
    assert net(torch.zeros(2, *CIFAR_SHAPE)).shape == (2, 10)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: MLP(input_shape=(64,), n_classes=0), ValueError, "MLP: n_classes must be a positive integer, got 0"),
        (lambda: MLP(input_shape=(0,), n_classes=3), ValueError, "every entry of input_shape .* got 0"),
        (lambda: MLP(input_shape=(64,), n_classes=3, hidden_layer_sizes=(3.5,)), TypeError, "hidden_layer_sizes .* got 3.5"),
        (lambda: MLP(input_shape=(64,), n_classes=3, hidden_layer_sizes=32), TypeError, "hidden_layer_sizes must be a sequence"),
        (lambda: ModelA(input_shape=(64,), n_classes=3, hidden_layer_sizes=(-4,)), ValueError, "ModelA: every entry"),
        (lambda: ModelB(input_shape=(1, 8.7, 8), n_classes=3), TypeError, "ModelB: every entry of input_shape .* got 8.7"),
        (lambda: ModelB(input_shape=(1, 8, 8), n_classes=3, channels=8), TypeError, "channels must be a sequence"),
        (lambda: ModelC(input_shape=(1, 8, 8), n_classes=3, channels=(0, 4)), ValueError, "ModelC: every entry of channels"),
        (lambda: VGG(input_shape=(3, 32, 32), n_classes=10, width=-1), ValueError, "VGG: width must be a positive number"),
        (lambda: VGG(input_shape=(3, 32, 32), n_classes=10, width=float("nan")), ValueError, "width must be a positive"),
        (lambda: ResNet18(input_shape=(3, 32, 32), n_classes=10, width=2.5), TypeError, "ResNet18: width must be a positive integer"),
        (lambda: ResNet18(input_shape=(3, 32, 32), n_classes=10, width=0), ValueError, "ResNet18: width"),
        (lambda: BasicBlock(4, 4, stride=0), ValueError, "BasicBlock: stride must be a positive integer"),
    ],
)
def test_bad_sizes_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()
