"""Network architectures from the DropNet paper, ready for ``module=``.

Every model takes ``input_shape`` (the shape of one sample, without the
batch dimension) and ``n_classes`` as keyword arguments.
:class:`~sklearn_dropnet.DropNetClassifier` fills both in from the data, so a
user only sets the architecture's own options through ``module__*``
parameters. Each hidden layer is followed by an activation *module*, which is
how DropNet finds the post-activation values it scores.
"""

import math

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """Fully connected network: flatten, then ``Linear -> activation`` blocks.

    With ``hidden_layer_sizes=(20, 20)`` or ``(40, 40)`` this is the paper's
    Model A.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample; it is flattened, so ``(64,)`` and ``(1, 8, 8)``
        both give 64 inputs.
    n_classes : int
        Number of output units (logits).
    hidden_layer_sizes : tuple of int, default=(128, 64)
        Width of each hidden layer; these are the units DropNet prunes.
    activation : type of nn.Module, default=nn.ReLU
        Activation module class placed after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each activation (0 disables it).

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
        hidden_layer_sizes=(128, 64),
        activation=nn.ReLU,
        dropout=0.0,
    ):
        super().__init__()
        layers = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), activation()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)
