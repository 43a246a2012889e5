"""``module`` is anything that builds a network, as in skorch; and what the network returns is checked."""

import functools
import io
import warnings

import joblib
import numpy as np
import pytest
import torch
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._net import DropNetNet
from sklearn_dropnet.models import MLP


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)  # 3 classes
    return X, y


class Net(nn.Module):
    """A torchvision-style network: ``num_classes`` outputs."""

    def __init__(self, n_inputs=6, hidden=10, num_classes=1000):
        super().__init__()
        self.hidden, self.act, self.out = nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


class FixedNet(Net):
    """Three outputs, and no ``num_classes`` argument."""

    def __init__(self, hidden=10):
        super().__init__(hidden=hidden, num_classes=3)


def builder(*, hidden=10, **kwargs):
    """Like ``torchvision.models.resnet18``: keyword arguments passed on to the class."""
    return Net(hidden=hidden, **kwargs)


def fixed_builder(**kwargs):
    return FixedNet(**kwargs)


def shape_builder(input_shape, n_classes, hidden=10):
    return Net(n_inputs=input_shape[0], hidden=hidden, num_classes=n_classes)


def not_a_network(**kwargs):
    return "a network"


def fit(module, data, **params):
    X, y = data
    params = {"prune_ratio": 0.3, "max_epochs": 1, "random_state": 0, **params}
    return DropNetClassifier(module=module, **params).fit(X, y)


@pytest.mark.parametrize(
    "module, params, hidden",
    [
        (Net, {}, 10),
        (builder, {"module__hidden": 8}, 8),
        (functools.partial(Net, hidden=12), {}, 12),
        (functools.partial(builder, hidden=7), {}, 7),
        (fixed_builder, {"module__hidden": 9}, 9),
        (shape_builder, {}, 10),
    ],
    ids=["class", "builder", "partial-class", "partial-builder", "builder-refusing-num_classes", "input_shape"],
)
def test_module_is_any_callable_that_builds_a_network(data, module, params, hidden):
    clf = fit(module, data, **params)
    assert clf.pruning_history_[0]["units_per_layer"] == {"hidden": hidden}
    assert clf.module_.out.out_features == 3  # num_classes from the data
    assert clf.predict(data[0][:4]).shape == (4,)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(data[0]), clf.predict_proba(data[0]))


def test_a_builder_gets_the_same_network_whether_or_not_it_refuses_num_classes(data):
    # The second call, without num_classes, starts from the same random state.
    refused = fit(fixed_builder, data, prune_ratio=0.0)
    direct = fit(FixedNet, data, prune_ratio=0.0)
    for key, value in direct.initial_module_.state_dict().items():
        assert torch.equal(refused.initial_module_.state_dict()[key], value)


def test_a_num_classes_the_user_sets_is_kept(data):
    with pytest.raises(ValueError, match=r"one score per class, a tensor of shape \(n_samples, 3\).* returned \(32, 5\)"):
        fit(builder, data, module__num_classes=5)
    with pytest.raises(ValueError, match=r"returned \(32, 4\)"):
        fit(functools.partial(Net, num_classes=4), data)


@pytest.mark.parametrize("module", [None, MLP], ids=["default", "MLP"])
def test_the_default_module_takes_the_data_parameters_the_user_sets(data, module):
    clf = fit(module, data, module__n_classes=3, module__input_shape=(6,))
    assert clf.predict_proba(data[0][:2]).shape == (2, 3)
    with pytest.raises(ValueError, match=r"one score per class, a tensor of shape \(n_samples, 3\).* returned \(32, 5\)"):
        fit(module, data, module__n_classes=5)


class ProbabilitiesAndLogits(Net):
    """ultralytics' classification head: the logits in training, ``(probabilities, logits)`` in eval mode."""

    def forward(self, x):
        logits = super().forward(x)
        return logits if self.training else (logits.softmax(1), logits)


def test_a_module_returning_several_tensors_is_named_with_the_fix(data):
    with pytest.raises(ValueError, match=r"one score per class, .* it returned a tuple of 2 \(\(32, 3\), \(32, 3\)\) in "
                       r"eval mode; return the class scores alone \(wrap the module in one whose forward picks them"):  # fmt: skip
        fit(ProbabilitiesAndLogits, data)


class LambdaNet(Net):
    """A function stored as an attribute: the network cannot be pickled."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.last = lambda x: x

    def forward(self, x):
        return self.last(super().forward(x))


def test_a_network_that_cannot_be_pickled_is_warned_at_fit(data):
    with pytest.warns(UserWarning, match=r"The network cannot be pickled \(AttributeError: .*lambda.*\), so neither can "
                      r"the fitted estimator .* not as lambdas or local functions stored as attributes") as caught:  # fmt: skip
        fit(LambdaNet, data)
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="The network cannot be pickled")
        fit(Net, data)


def test_a_builder_that_cannot_be_pickled_is_named_at_fit(data):
    def local_builder(**kwargs):
        return Net(**kwargs)

    for module in (lambda **kwargs: Net(**kwargs), local_builder):
        with pytest.raises(TypeError, match=r"module=<function .*> cannot be pickled .* top level of a module"):
            fit(module, data)


def test_a_builder_must_return_a_network(data):
    with pytest.raises(TypeError, match=r"returned a str, not a torch.nn.Module"):
        fit(not_a_network, data)
    with pytest.raises(ValueError, match=r"module__\* parameters need module to be what builds the network"):
        fit(Net(num_classes=3), data, module__hidden=4)


def compiled_builder(hidden=10, num_classes=1000):
    return torch.compile(Net(hidden=hidden, num_classes=num_classes))


@pytest.mark.parametrize("compiled", ["instance", "builder"])
def test_a_compiled_network_is_pruned_uncompiled_with_a_warning(data, compiled):
    """torch.compile's wrapper would compile again every round, and hide the layers' names."""
    module = torch.compile(Net(num_classes=3)) if compiled == "instance" else compiled_builder
    with pytest.warns(UserWarning, match=r"module is a torch.compile'd network: .* torch.compile\(clf.module_\)") as caught:
        clf = fit(module, data)
    assert caught[0].filename == __file__
    assert type(clf.module_) is Net
    assert set(clf.pruning_history_[-1]["units_per_layer"]) == {"hidden"}
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(data[0]), clf.predict_proba(data[0]))


class SoftmaxNet(Net):
    """skorch's README module: it ends in a softmax."""

    def __init__(self, log=False):
        super().__init__(num_classes=3)
        self.log = log

    def forward(self, x):
        logits = super().forward(x)
        return torch.log_softmax(logits, dim=-1) if self.log else torch.softmax(logits, dim=-1)


def test_a_softmax_before_cross_entropy_is_warned_with_both_fixes(data):
    with pytest.warns(UserWarning, match=r"outputs are probabilities .* torch.nn.CrossEntropyLoss takes logits") as caught:
        fit(SoftmaxNet, data)
    message = str(caught[0].message)
    assert "criterion=torch.nn.NLLLoss" in message and "return the logits" in message
    assert caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit(SoftmaxNet, data, criterion=nn.NLLLoss)  # skorch takes the log: right
        fit(Net, data)  # logits: right
        fit(functools.partial(SoftmaxNet, log=True), data)  # log-probabilities: cross-entropy is right too


@pytest.mark.parametrize("criterion", [nn.BCEWithLogitsLoss, nn.MSELoss])
def test_a_loss_that_cannot_take_class_indices_is_named_before_training(data, criterion, monkeypatch):
    from sklearn_dropnet._net import DropNetNet

    trained = []
    monkeypatch.setattr(DropNetNet, "train_round", lambda self, *args: trained.append(1))
    for loss in (criterion, criterion()):  # a class, an instance
        name = loss.__name__ if isinstance(loss, type) else type(loss).__name__
        with pytest.raises(
            ValueError,
            match=rf"criterion=torch.nn.{name} cannot take the module's output \(shape \(32, 3\): one score per "
            r"class\) with class indices as targets .* Use criterion=torch.nn.CrossEntropyLoss",
        ), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit(Net, data, criterion=loss)
        assert not [w for w in caught if "target size" in str(w.message)]  # torch's, before the error
    assert not trained


class PositiveScores(Net):
    """Class scores after a ReLU, shifted: never negative, yet not probabilities."""

    def __init__(self, shift=1.0):
        super().__init__(num_classes=3)
        self.shift = shift

    def forward(self, x):
        return torch.relu(super().forward(x)) + self.shift


class NegativeOnLaterRows(Net):
    """Scores that are negative for some rows only: not on the first two."""

    def forward(self, x):
        return torch.softmax(super().forward(x), dim=-1) - 0.5 * (x[:, :1] > 1.5)


def test_scores_that_are_not_probabilities_are_warned_with_nll_loss_though_none_is_negative(data):
    with pytest.warns(UserWarning, match=r"outputs are not probabilities \(its rows on 32 training samples do not sum to 1\)"):
        fit(PositiveScores, data, criterion=nn.NLLLoss, prune_ratio=0.0, max_epochs=1)


def test_negative_outputs_on_rows_past_the_first_two_are_seen(data):
    X, y = data
    X = np.concatenate([np.zeros((100, 6), np.float32), np.full((20, 6), 2.0, np.float32)])
    with pytest.raises(ValueError, match=r"outputs are not probabilities \(some of its outputs on 32 training samples are negative\)"):
        fit(NegativeOnLaterRows, (X, y), criterion=nn.NLLLoss, prune_ratio=0.0, max_epochs=1)


@pytest.mark.parametrize(
    ("module", "what"),
    [(functools.partial(SoftmaxNet, log=True), "log-probabilities"), (Net, "not probabilities")],
    ids=["log_softmax", "logits"],
)
def test_negative_outputs_with_nll_loss_are_refused_before_training(data, module, what, monkeypatch):
    # skorch takes the log of NLLLoss's input: a negative output's loss is NaN (PyTorch's MNIST
    # example returns log_softmax for F.nll_loss, which takes log-probabilities as they are).
    trained = []
    monkeypatch.setattr(DropNetNet, "train_round", lambda self, data, teacher=None: trained.append(1))
    with pytest.raises(ValueError, match=rf"outputs are {what} .* training could only diverge\. Return probabilities"):
        fit(module, data, criterion=nn.NLLLoss, prune_ratio=0.0)
    assert not trained
