"""How DropNetClassifier trains between rounds: row order, distillation."""

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._data import LabelledData
from sklearn_dropnet._net import DropNetNet, distillation_loss


class RowOrder(Callback):
    """Records the first feature of every training row, epoch by epoch."""

    def on_epoch_begin(self, net, **kwargs):
        self.epochs = getattr(self, "epochs", [])
        self.epochs.append([])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.epochs[-1].extend(batch[0][:, 0].tolist())


def _orders(**params):
    X = np.arange(40, dtype=np.float32)[:, None].repeat(3, axis=1)
    y = np.arange(40) % 2
    clf = DropNetClassifier(
        prune_ratio=0, max_epochs=3, patience=5, validation_fraction=0, batch_size=8,
        module__hidden_layer_sizes=(4,), callbacks=[("order", RowOrder())], random_state=0, **params,
    ).fit(X, y)  # fmt: skip
    return dict(clf.net_.callbacks_)["order"].epochs


def test_rows_are_reshuffled_every_epoch_by_default():
    epochs = _orders()
    assert len(epochs) == 3 and all(sorted(e) == list(range(40)) for e in epochs)
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]


def test_rows_keep_one_order_when_asked():
    epochs = _orders(iterator_train__shuffle=False)
    assert sorted(epochs[0]) == list(range(40))
    assert epochs[0] == epochs[1] == epochs[2]
    assert epochs[0] != list(range(40))  # one seeded order, not the order given


def _tiny_net(weight, temperature, criterion=nn.CrossEntropyLoss):
    torch.manual_seed(0)
    net = DropNetNet(
        nn.Linear(3, 4), criterion=criterion, distill_weight=weight, distill_temperature=temperature,
        classes=list(range(4)), train_split=None,
    ).initialize()  # fmt: skip
    return net


@pytest.mark.parametrize("weight, temperature", [(0.0, 4.0), (0.5, 4.0), (0.8, 2.0), (1.0, 1.0)])
def test_distillation_blends_the_losses_and_their_gradients_as_specified(weight, temperature):
    net = _tiny_net(weight, temperature)
    X = torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 3, 1])
    teacher_log_p = torch.log_softmax(torch.randn(5, 4) * 3, dim=1)
    logits = net.module_(X)
    loss = net.get_loss(logits, (labels, teacher_log_p), X=X, training=True)
    loss.backward()
    # By hand: (1 - a) * cross-entropy + a * T**2 * KL(p_T || q_T), averaged over the rows.
    z, n, T, a = logits.detach(), len(X), temperature, weight
    p = torch.softmax(teacher_log_p / T, dim=1)
    q = torch.softmax(z / T, dim=1)
    onehot = torch.eye(4)[labels]
    cross_entropy = -(onehot * torch.log_softmax(z, dim=1)).sum() / n
    kl = (p * (torch.log(p) - torch.log(q))).sum() / n
    torch.testing.assert_close(loss.detach(), (1 - a) * cross_entropy + a * T**2 * kl)
    # d loss / d logits = ((1 - a) (softmax(z) - y) + a T (q - p)) / n; the weight's gradient follows.
    grad_logits = ((1 - a) * (torch.softmax(z, dim=1) - onehot) + a * T * (q - p)) / n
    torch.testing.assert_close(net.module_.weight.grad, grad_logits.T @ X)
    torch.testing.assert_close(net.module_.bias.grad, grad_logits.sum(0))


def test_without_soft_targets_the_loss_is_the_criterions():
    net = _tiny_net(0.7, 4.0)
    X, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 1])
    logits = net.module_(X)
    torch.testing.assert_close(net.get_loss(logits, labels, X=X), nn.functional.cross_entropy(logits, labels))


def test_distillation_of_a_module_that_returns_probabilities():
    # With NLLLoss the module ends in a softmax; its log is the student's logits.
    torch.manual_seed(0)
    logits = torch.randn(6, 3)
    teacher = torch.log_softmax(torch.randn(6, 3), dim=1)
    from_probabilities = distillation_loss(torch.softmax(logits, dim=1), teacher, 3.0, output_is_probability=True)
    torch.testing.assert_close(from_probabilities, distillation_loss(logits, teacher, 3.0))


def test_the_rounds_learn_from_the_dense_networks_soft_targets(digits, monkeypatch):
    X, y = digits
    seen = []
    original = DropNetNet.train_round

    def spy(self, data, teacher=None):
        seen.append(teacher)
        return original(self, data, teacher)

    monkeypatch.setattr(DropNetNet, "train_round", spy)
    clf = DropNetClassifier(
        distill_weight=0.5, prune_ratio=0.3, max_epochs=2, module__hidden_layer_sizes=(16,), random_state=0
    ).fit(X[:300], y[:300])
    rounds = len(clf.pruning_history_) - 1
    assert seen[0] is None and len(seen) == 1 + rounds  # the dense round learns from the labels
    teacher = seen[1]
    assert all(t is teacher for t in seen[1:])  # one teacher, computed once
    assert teacher.shape == (270, 10) and np.allclose(np.exp(teacher).sum(1), 1, atol=1e-5)
    plain = DropNetClassifier(prune_ratio=0.3, max_epochs=2, module__hidden_layer_sizes=(16,), random_state=0)
    seen.clear()
    plain.fit(X[:300], y[:300])
    assert all(t is None for t in seen)


def test_soft_targets_travel_with_their_rows():
    X = np.arange(20, dtype=np.float32)[:, None]
    data = LabelledData(X, np.arange(20) % 2)
    teacher = np.stack([np.arange(20), -np.arange(20)], axis=1).astype(np.float32)
    batch_X, (batch_y, batch_t) = data.with_soft_targets(teacher).__getitems__([3, 7, 11])
    assert batch_X[:, 0].tolist() == [3, 7, 11] and batch_y.tolist() == [1, 1, 1]
    assert batch_t[:, 0].tolist() == [3, 7, 11]


def test_class_weights_may_be_an_array_or_a_list_as_scikit_learn_makes_them(digits):
    from sklearn.utils.class_weight import compute_class_weight

    X, y = digits
    X, y = X[:300], y[:300]
    weights = compute_class_weight("balanced", classes=np.unique(y), y=y)
    fits = [
        DropNetClassifier(criterion__weight=w, max_epochs=2, prune_ratio=0.3, random_state=0).fit(X, y)
        for w in (
            weights,
            list(weights),
            torch.tensor(weights, dtype=torch.float32),
            torch.tensor(weights),  # float64, as torch.from_numpy gives it
            pd.Series(weights),
        )
    ]
    for clf in fits[1:]:
        np.testing.assert_allclose(clf.predict_proba(X), fits[0].predict_proba(X), rtol=0, atol=1e-6)
    unweighted = DropNetClassifier(max_epochs=2, prune_ratio=0.3, random_state=0).fit(X, y)
    assert not np.allclose(unweighted.predict_proba(X), fits[0].predict_proba(X))
    assert isinstance(fits[0].criterion__weight, np.ndarray)  # the parameter stays as given
    with pytest.raises(ValueError, match=r"criterion__weight must hold one weight per class, 10 in the order "
                                         r"of classes_ \(sorted labels\); got shape \(3,\)"):  # fmt: skip
        DropNetClassifier(criterion__weight=np.ones(3), max_epochs=1).fit(X, y)


@pytest.mark.parametrize("by_label", [{k: 1.0 for k in range(10)}, "series"])
def test_class_weights_by_label_are_refused_with_the_fix(digits, by_label):
    X, y = digits
    if by_label == "series":
        by_label = 1 / pd.Series(y).value_counts()  # in order of frequency, indexed by label
    with pytest.raises(TypeError, match=r"criterion__weight must hold one weight per class in the order of "
                                        r"classes_ .* not a (dict|Series) by label. From weights by label: "
                                        r"\[weights\[label\] for label in np.unique\(y\)\]"):  # fmt: skip
        DropNetClassifier(criterion__weight=by_label, max_epochs=1).fit(X[:100], y[:100])


def test_scikit_learns_names_get_ours_in_the_error():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'class_weight'; .* Here: class weights go "
                                        r"to the loss: criterion__weight=compute_class_weight\('balanced'"):  # fmt: skip
        DropNetClassifier(class_weight="balanced")
    with pytest.raises(TypeError, match=r"'hidden_layer_sizes'; .* Here: module__hidden_layer_sizes="):
        DropNetClassifier(hidden_layer_sizes=(64,))


class _BatchRecorder(nn.Module):
    """An MLP that records the sizes of the batches it sees in eval mode."""

    seen = []

    def __init__(self, input_shape=(64,), n_classes=10):
        super().__init__()
        self.hidden, self.act, self.out = nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, n_classes)

    def forward(self, x):
        if not self.training:
            type(self).seen.append(len(x))
        return self.out(self.act(self.hidden(x)))


def test_predictions_of_a_cheap_network_come_in_large_batches_and_validation_keeps_its_own(digits):
    X, y = digits
    _BatchRecorder.seen = []
    clf = DropNetClassifier(module=_BatchRecorder, max_epochs=2, prune_ratio=0.2, random_state=0).fit(X, y)
    assert 20 in _BatchRecorder.seen  # the validation split's 180 rows, in batches of 32: 5 x 32 + 20
    _BatchRecorder.seen = []
    proba = clf.predict_proba(X)
    assert max(_BatchRecorder.seen) == len(X)  # 1,797 rows of ~100 bytes of activations: one batch
    clf.set_params(iterator_valid__batch_size=32)  # the user's size is kept
    clf.net_.iterator_valid__batch_size = 32  # as a refit would pass it on
    _BatchRecorder.seen = []
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=0, atol=1e-6)
    assert max(_BatchRecorder.seen) == 32


class _HookSpy(_BatchRecorder):
    """Records, in eval mode, whether any of its modules holds a hook."""

    hooked = []

    def forward(self, x):
        if not self.training:
            type(self).hooked.append((self, any(m._forward_hooks or m._forward_pre_hooks for m in self.modules())))
        return super().forward(x)


def test_large_predictions_put_no_hook_on_the_network_other_threads_use(digits):
    # Measuring the activations for the batch size traced the shared network:
    # its hooks fired in other threads' predictions (IndexError) and made
    # joblib.dump fail while a thread predicted.
    from concurrent.futures import ThreadPoolExecutor

    X, y = digits
    clf = DropNetClassifier(module=_HookSpy, max_epochs=1, prune_ratio=0.2, random_state=0).fit(X, y)
    _HookSpy.hooked = []
    expected = clf.predict_proba(X)
    seen = [hooked for network, hooked in _HookSpy.hooked if network is clf.module_]
    assert seen and not any(seen)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: clf.predict_proba(X[:n]), [len(X), 1, 500, len(X)] * 5))
    for result in results:
        np.testing.assert_allclose(result, expected[: len(result)], rtol=0, atol=1e-6)


class _Breaks(nn.Module):
    """An MLP whose training forward raises from its ``fail_at``-th call on."""

    calls = 0
    fail_at = 1

    def __init__(self, input_shape=(64,), n_classes=10):
        super().__init__()
        self.hidden, self.act, self.out = nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, n_classes)

    def forward(self, x):
        if self.training:
            type(self).calls += 1
            if type(self).calls >= type(self).fail_at:
                raise KeyboardInterrupt
        return self.out(self.act(self.hidden(x)))


def test_a_fit_interrupted_before_the_dense_round_is_recorded_leaves_no_fitted_attribute(digits):
    from sklearn.exceptions import NotFittedError

    X, y = digits
    clf = DropNetClassifier(module=_Breaks, max_epochs=2, prune_ratio=0.5, random_state=0)
    _Breaks.calls, _Breaks.fail_at = 0, 1
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X[:300], y[:300])
    assert not [name for name in vars(clf) if name.endswith("_")]  # net_, classes_, input_shape_ were left
    with pytest.raises(NotFittedError):
        clf.predict(X[:3])
    _Breaks.calls, _Breaks.fail_at = 0, 10**9
    clf.fit(X[:300], y[:300])  # fits again
    _Breaks.calls, _Breaks.fail_at = 0, 40  # in a pruning round: the last completed round's network stays
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X[:300], y[:300])
    assert clf.pruning_history_ and clf.predict(X[:3]).shape == (3,)
