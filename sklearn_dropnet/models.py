"""Network architectures from the DropNet paper, ready for ``module=``.

Every model takes ``input_shape`` (the shape of one sample, without the
batch dimension) and ``n_classes`` as keyword arguments.
:class:`~sklearn_dropnet.DropNetClassifier` fills both in from the data, so a
user only sets the architecture's own options through ``module__*``
parameters, e.g. ``DropNetClassifier(module=ModelB, module__channels=(64, 64))``.

The models:

- :class:`MLP` / :class:`ModelA` -- fully connected (the paper's Model A).
- :class:`ModelB` -- two conv blocks and a linear head (MNIST CNN).
- :class:`ModelC` -- conv blocks, a dense layer, a linear head (CIFAR-10 CNN).
- :class:`VGG` -- VGG-11/13/16/19 with BatchNorm and a CIFAR-style head.
- :class:`ResNet18` -- CIFAR-style ResNet-18 built from :class:`BasicBlock`.

Convolutional models expect images shaped ``(n, C, H, W)``, so their
``input_shape`` is ``(C, H, W)``. Layer sizes after flattening are computed
from ``input_shape``, so any image size works: 8x8 digits as well as 32x32
CIFAR images. A max pooling is skipped once the feature map is 1 pixel high
or wide, so deep models still run on tiny images.

How the models are written
--------------------------
DropNet scores a unit (a ``Linear`` output node or a ``Conv2d`` filter) by the
output of the activation that follows its layer. The engine finds it
however a network is written -- an activation module or a function
(``F.relu``, ``torch.relu``, ``x.relu_()``), through BatchNorm, pooling and
residual adds written in place or not (see :ref:`dropnet_units`) -- so
custom architectures need no conventions. The models here use activation
modules, one instance per use, and add a residual block's skip connection
in place before its final activation::

    out = self.bn2(self.conv2(out))
    out += self.shortcut(x)
    out = self.relu2(out)

which ``torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))`` would
prune the same way: every layer adding into the block's output (the
projection shortcut's convolution too) is scored by ``relu2``.

Initialisation
--------------
:class:`MLP` and :class:`ModelA` keep PyTorch's default initialisation
(:class:`MLP` normalises with BatchNorm by default). The
convolutional models draw conv and linear weights with He initialisation
(``kaiming_normal_``, fan-in, ReLU gain) and zero biases, which lets the
deeper plain networks train with SGD; their ``reset_parameters()`` method
draws new initial weights in place, also after units have been removed.
"""

import math
from collections.abc import Iterable
from numbers import Integral, Real

from torch import nn

__all__ = ["MLP", "ModelA", "ModelB", "ModelC", "VGG", "BasicBlock", "ResNet18"]


def _positive_int(value, name, model_name):
    """``value`` as an int, or a ``ValueError``/``TypeError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{model_name}: {name} must be a positive integer, got {value!r}.")
    if value < 1:
        raise ValueError(f"{model_name}: {name} must be a positive integer, got {value!r}.")
    return int(value)


def _positive_ints(values, name, model_name):
    """A sequence of positive integers, as a tuple of ints."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{model_name}: {name} must be a sequence of positive integers, got {values!r}.")
    return tuple(_positive_int(v, f"every entry of {name}", model_name) for v in values)


def _image_shape(input_shape, model_name):
    """Return ``input_shape`` as a ``(C, H, W)`` tuple, or raise."""
    shape = _positive_ints(input_shape, "input_shape", model_name)
    if len(shape) != 3:
        raise ValueError(
            f"{model_name} needs images: input_shape must be (channels, height, "
            f"width), got {tuple(input_shape)!r}. Reshape flat features to "
            f"(n, C, H, W), e.g. X.reshape(-1, 1, 8, 8) for scikit-learn's digits."
        )
    return shape


def _conv_blocks(in_channels, spatial, channels, activation, batch_norm=False):
    """Stack ``Conv3x3 (same) [-> BN] -> activation -> MaxPool2`` blocks.

    Channel widths are given in ``channels``; the entry ``"M"`` is a separate
    max pooling (the VGG configuration style). When ``channels`` holds only
    integers, every conv block ends with a pooling. A pooling is skipped
    once the feature map is 1 pixel high or wide.

    Returns the layers, the number of output channels and the output
    ``(height, width)``.
    """
    height, width = spatial
    layers = []
    for c in channels:
        if c != "M":
            layers.append(nn.Conv2d(in_channels, c, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(activation())
            in_channels = c
        pool_here = c == "M" or "M" not in channels
        if pool_here and min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
    return layers, in_channels, (height, width)


def _dense_head(in_features, hidden_layer_sizes, n_classes, activation):
    """``Flatten -> [Linear -> activation]* -> Linear(n_classes)``."""
    layers = [nn.Flatten()]
    for size in hidden_layer_sizes:
        layers += [nn.Linear(in_features, size), activation()]
        in_features = size
    layers.append(nn.Linear(in_features, n_classes))
    return layers


class _HeInitialized(nn.Module):
    """Base of the convolutional models: He initialisation.

    PyTorch's default initialisation shrinks the signal layer after layer,
    so a plain ReLU network as deep as Model C barely trains with SGD at
    the paper's learning rate 0.1: in a check on scikit-learn's digits
    (1200 training images, batch 32, 10 epochs) it stayed at chance, while
    the He-initialised network reached 0.95 test accuracy.
    """

    def reset_parameters(self):
        """Draw new initial weights, in place; works on a pruned network too.

        Conv and linear weights are drawn from He's normal distribution
        (``nn.init.kaiming_normal_``, fan-in, ReLU gain), biases are set to
        zero, and BatchNorm layers are reset (unit scale, zero shift, fresh
        running statistics).
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()


class MLP(nn.Module):
    """Fully connected network: flatten, then ``Linear -> [BatchNorm] -> activation``.

    This is the network ``DropNetClassifier(module=None)`` builds. With
    ``batch_norm=False`` and ``hidden_layer_sizes=(20, 20)`` or ``(40, 40)``
    it is the paper's Model A (see :class:`ModelA`).

    BatchNorm is on by default because it makes the paper's
    ``reinit="rewind"`` work on MLPs (the estimator's default is
    ``reinit="none"``, fine-tuning): a pruned layer keeps initial weights
    scaled for the dense fan-in, which BatchNorm normalises away. Measured on
    digits (70/30 split, 80% of units removed, two seeds): without BatchNorm
    the pruned network lost 1.5 to 3 points of test accuracy, with it 0.2
    to 0.7.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample; it is flattened, so ``(64,)`` and ``(1, 8, 8)``
        both give 64 inputs.
    n_classes : int
        Number of output units (logits).
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Width of each hidden layer; these are the units DropNet prunes.
    activation : type of nn.Module, default=nn.ReLU
        Activation module class placed after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each activation (0 disables it).
    batch_norm : bool, default=True
        Put a ``BatchNorm1d`` between each hidden layer and its activation.

    See Also
    --------
    ModelA : The paper's MLP (no BatchNorm, 40-40 hidden units).

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.models import MLP
    >>> net = MLP(input_shape=(64,), n_classes=10, hidden_layer_sizes=(32, 16))
    >>> net(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """

    def __init__(
        self,
        input_shape,
        n_classes,
        hidden_layer_sizes=(256, 128),
        activation=nn.ReLU,
        dropout=0.0,
        batch_norm=True,
    ):
        super().__init__()
        name = type(self).__name__
        n_classes = _positive_int(n_classes, "n_classes", name)
        hidden_layer_sizes = _positive_ints(hidden_layer_sizes, "hidden_layer_sizes", name)
        layers = [nn.Flatten()]
        width = math.prod(_positive_ints(input_shape, "input_shape", name))
        for size in hidden_layer_sizes:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class ModelA(MLP):
    """The paper's Model A: an :class:`MLP` with two hidden layers of 40.

    ``Flatten -> Linear(h1) -> ReLU -> Linear(h2) -> ReLU -> Linear(n_classes)``.
    The paper uses ``h`` in {20, 40} on MNIST.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample; it is flattened.
    n_classes : int
        Number of output units (logits).
    hidden_layer_sizes : tuple of int, default=(40, 40)
        Width of each hidden layer.
    activation : type of nn.Module, default=nn.ReLU
        Activation module class placed after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each activation (0 disables it).

    See Also
    --------
    MLP : The same network with other default widths, and BatchNorm on by default.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.models import ModelA
    >>> net = ModelA(input_shape=(1, 8, 8), n_classes=10)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> [m.out_features for m in net.layers if isinstance(m, torch.nn.Linear)]
    [40, 40, 10]
    """

    def __init__(
        self,
        input_shape,
        n_classes,
        hidden_layer_sizes=(40, 40),
        activation=nn.ReLU,
        dropout=0.0,
    ):
        super().__init__(
            input_shape,
            n_classes,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            dropout=dropout,
            batch_norm=False,
        )


class ModelB(_HeInitialized):
    """The paper's Model B, a small CNN for MNIST.

    ``Conv3x3(c1, same) -> ReLU -> MaxPool2 -> Conv3x3(c2, same) -> ReLU ->
    MaxPool2 -> Flatten -> Linear(n_classes)``. The paper uses ``c`` in
    {20, 32, 64}.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one image, ``(channels, height, width)``.
    n_classes : int
        Number of output units (logits).
    channels : tuple of int, default=(32, 32)
        Number of filters of each conv layer (one pooled block per entry);
        these are the units DropNet prunes.
    activation : type of nn.Module, default=nn.ReLU
        Activation module class placed after each conv layer.

    Attributes
    ----------
    features : nn.Sequential
        The conv blocks.
    classifier : nn.Sequential
        ``Flatten -> Linear``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.models import ModelB
    >>> net = ModelB(input_shape=(1, 8, 8), n_classes=10, channels=(4, 8))
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape, n_classes, channels=(32, 32), activation=nn.ReLU):
        super().__init__()
        in_channels, height, width = _image_shape(input_shape, "ModelB")
        n_classes = _positive_int(n_classes, "n_classes", "ModelB")
        layers, out_channels, (height, width) = _conv_blocks(
            in_channels, (height, width), _positive_ints(channels, "channels", "ModelB"), activation
        )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            *_dense_head(out_channels * height * width, (), n_classes, activation)
        )
        self.reset_parameters()

    def forward(self, x):
        return self.classifier(self.features(x))


class ModelC(_HeInitialized):
    """The paper's Model C, a CNN for CIFAR-10.

    ``[Conv3x3(c, same) -> ReLU -> MaxPool2] x 4 -> Flatten -> Linear(256) ->
    ReLU -> Linear(n_classes)``. The paper uses channels 64-64-128-128 or
    128-128-256-256. A pooling is skipped once the feature map is 1 pixel
    wide, so 8x8 digit images work too.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one image, ``(channels, height, width)``.
    n_classes : int
        Number of output units (logits).
    channels : tuple of int, default=(64, 64, 128, 128)
        Number of filters of each conv layer (one pooled block per entry).
    hidden_layer_sizes : tuple of int, default=(256,)
        Width of each dense hidden layer between the conv blocks and the
        output layer.
    activation : type of nn.Module, default=nn.ReLU
        Activation module class placed after each conv and hidden layer.

    Attributes
    ----------
    features : nn.Sequential
        The conv blocks.
    classifier : nn.Sequential
        ``Flatten -> [Linear -> activation]* -> Linear``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.models import ModelC
    >>> net = ModelC(input_shape=(3, 32, 32), n_classes=10,
    ...              channels=(4, 4, 8, 8), hidden_layer_sizes=(16,))
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        input_shape,
        n_classes,
        channels=(64, 64, 128, 128),
        hidden_layer_sizes=(256,),
        activation=nn.ReLU,
    ):
        super().__init__()
        in_channels, height, width = _image_shape(input_shape, "ModelC")
        n_classes = _positive_int(n_classes, "n_classes", "ModelC")
        hidden_layer_sizes = _positive_ints(hidden_layer_sizes, "hidden_layer_sizes", "ModelC")
        layers, out_channels, (height, width) = _conv_blocks(
            in_channels, (height, width), _positive_ints(channels, "channels", "ModelC"), activation
        )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            *_dense_head(
                out_channels * height * width,
                tuple(hidden_layer_sizes),
                n_classes,
                activation,
            )
        )
        self.reset_parameters()

    def forward(self, x):
        return self.classifier(self.features(x))


_VGG_CFGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
         512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
         512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}  # fmt: skip


def _scaled(channels, width):
    """Multiply a channel count by ``width``, keeping at least one channel."""
    return max(1, int(round(channels * width)))


class VGG(_HeInitialized):
    """VGG with BatchNorm and a CIFAR-style head.

    The standard VGG configurations (Simonyan & Zisserman, 2015): 3x3 convs,
    each followed by ``BatchNorm2d`` and ``ReLU``, with five max poolings.
    The head is ``AdaptiveAvgPool2d(1) -> Flatten -> Linear(n_classes)``,
    as usual for CIFAR-10 (on 32x32 inputs the last feature map is already
    1x1). Poolings are skipped once the feature map is 1 pixel wide.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one image, ``(channels, height, width)``.
    n_classes : int
        Number of output units (logits).
    depth : {11, 13, 16, 19}, default=19
        Which standard configuration: the number of weight layers of the
        original VGG, whose head has three linear layers. With the single
        linear layer of the CIFAR-style head, the network has ``depth - 3``
        conv layers (8, 10, 13 or 16).
    width : float, default=1.0
        Multiplier of every conv layer's number of filters (64 .. 512 at
        1.0); e.g. ``width=1 / 16`` gives 4 .. 32 filters, handy for tests.

    Attributes
    ----------
    features : nn.Sequential
        ``Conv -> BatchNorm -> ReLU`` blocks and poolings.
    classifier : nn.Sequential
        ``AdaptiveAvgPool2d -> Flatten -> Linear``.

    References
    ----------
    K. Simonyan and A. Zisserman, "Very Deep Convolutional Networks for
    Large-Scale Image Recognition", ICLR 2015.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.models import VGG
    >>> net = VGG(input_shape=(3, 32, 32), n_classes=10, depth=11, width=1 / 16)
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    8
    """

    def __init__(self, input_shape, n_classes, depth=19, width=1.0):
        super().__init__()
        in_channels, height, width_px = _image_shape(input_shape, "VGG")
        n_classes = _positive_int(n_classes, "n_classes", "VGG")
        if isinstance(width, bool) or not isinstance(width, Real) or not 0 < width < math.inf:
            raise ValueError(f"VGG: width must be a positive number (a multiplier), got {width!r}.")
        if depth not in _VGG_CFGS:
            raise ValueError(
                f"depth must be one of {sorted(_VGG_CFGS)}, got {depth!r}."
            )
        cfg = tuple(c if c == "M" else _scaled(c, width) for c in _VGG_CFGS[depth])
        layers, out_channels, _ = _conv_blocks(
            in_channels, (height, width_px), cfg, nn.ReLU, batch_norm=True
        )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(out_channels, n_classes)
        )
        self.reset_parameters()

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BatchNorm and a skip connection.

    ``conv1 -> bn1 -> relu1 -> conv2 -> bn2``, then the shortcut is added in
    place and ``relu2`` follows (see the module docstring for why in place).
    The shortcut is the identity, or ``Conv1x1 -> BatchNorm2d`` (a
    projection) when the stride or the number of channels changes.

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    out_channels : int
        Number of filters of both convs.
    stride : int, default=1
        Stride of ``conv1`` and of the projection shortcut.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.models import BasicBlock
    >>> block = BasicBlock(4, 8, stride=2)
    >>> block(torch.zeros(2, 4, 8, 8)).shape
    torch.Size([2, 8, 4, 4])
    >>> type(block.shortcut[0]).__name__
    'Conv2d'
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        in_channels = _positive_int(in_channels, "in_channels", "BasicBlock")
        out_channels = _positive_int(out_channels, "out_channels", "BasicBlock")
        stride = _positive_int(stride, "stride", "BasicBlock")
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)  # in place: bn2's output tensor flows into relu2
        out = self.relu2(out)
        return out


class ResNet18(_HeInitialized):
    """CIFAR-style ResNet-18.

    A 3x3 stem ``Conv -> BatchNorm -> ReLU`` (no initial max pooling), four
    stages of two :class:`BasicBlock` each with ``width``, ``2 * width``,
    ``4 * width`` and ``8 * width`` filters (stride 2 at the start of stages
    2-4), then ``AdaptiveAvgPool2d(1) -> Flatten -> Linear(n_classes)``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one image, ``(channels, height, width)``.
    n_classes : int
        Number of output units (logits).
    width : int, default=64
        Number of filters of the stem and the first stage.

    Attributes
    ----------
    stem : nn.Sequential
        ``Conv2d -> BatchNorm2d -> ReLU``.
    layer1, layer2, layer3, layer4 : nn.Sequential
        The four stages, two :class:`BasicBlock` each.
    classifier : nn.Sequential
        ``AdaptiveAvgPool2d -> Flatten -> Linear``.

    References
    ----------
    K. He, X. Zhang, S. Ren and J. Sun, "Deep Residual Learning for Image
    Recognition", CVPR 2016.

    Examples
    --------
    >>> import torch
    >>> from sklearn_dropnet.models import ResNet18
    >>> net = ResNet18(input_shape=(3, 32, 32), n_classes=10, width=4)
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape, n_classes, width=64):
        super().__init__()
        in_channels, _, _ = _image_shape(input_shape, "ResNet18")
        n_classes = _positive_int(n_classes, "n_classes", "ResNet18")
        width = _positive_int(width, "width", "ResNet18")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        stages = []
        channels = width
        for i, stage_width in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(channels, stage_width, stride=stride),
                    BasicBlock(stage_width, stage_width),
                )
            )
            channels = stage_width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, n_classes)
        )
        self.reset_parameters()

    def forward(self, x):
        out = self.stem(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.classifier(out)
