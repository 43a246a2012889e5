"""What fit, prune and predict check of their input: a Dataset's labels, a list's samples."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet._data import LabelledData, dataset_labels, split_validation
from sklearn_dropnet._inputs import training_data


def quick(**params):
    """A quick estimator: one epoch, a tiny MLP, no pruning unless asked."""
    return DropNetClassifier(
        **{"max_epochs": 1, "prune_ratio": 0, "module__hidden_layer_sizes": (8,), "random_state": 0, **params}
    )


class Digits(Dataset):
    """torchvision style: the labels are kept in ``targets``; the indices read are recorded."""

    def __init__(self, X, y):
        self.data, self.targets = torch.as_tensor(X), torch.as_tensor(y)
        self.read = []

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        self.read.append(index)
        return self.data[index], int(self.targets[index])


class EvenOdd(Digits):
    """Relabels its items in ``__getitem__`` (without a ``target_transform``): ``targets`` is stale."""

    def __getitem__(self, index):
        x, label = super().__getitem__(index)
        return x, label % 2


def test_items_that_relabel_targets_give_the_labels_trained_on(digits):
    X, y = digits
    dataset = EvenOdd(X[:200], y[:200])
    np.testing.assert_array_equal(dataset_labels(dataset), y[:200] % 2)
    np.testing.assert_array_equal(dataset_labels(Subset(dataset, range(50, 150))), y[50:150] % 2)
    data = training_data(quick(), dataset, None)
    np.testing.assert_array_equal(data.y, y[:200] % 2)
    np.testing.assert_array_equal([data.X[i][1] for i in range(len(data))], y[:200] % 2)
    clf = quick().fit(dataset)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert set(clf.predict(X[200:260])) <= {0, 1}


def test_honest_targets_are_read_with_a_sample_of_items_only(digits):
    X, y = digits
    dataset = Digits(X[:300], y[:300])
    np.testing.assert_array_equal(dataset_labels(dataset), y[:300])
    assert dataset.read == np.unique(np.linspace(0, 299, 16).round().astype(int)).tolist()
    small = Digits(X[:5], y[:5])
    np.testing.assert_array_equal(dataset_labels(small), y[:5])
    assert small.read == [0, 1, 2, 3, 4]


def test_one_hot_labels_in_a_dataset_are_named_with_the_fix(digits):
    X, y = digits
    one_hot = TensorDataset(torch.as_tensor(X[:40]), torch.eye(10)[y[:40]])
    message = (
        r"whose label is one class label \(a scalar\); item 0's label is a Tensor of shape \(10,\)\. "
        r"Pass class indices instead: for one-hot labels, TensorDataset\(X, labels\.argmax\(1\)\)\."
    )
    with pytest.raises(ValueError, match=message):
        quick().fit(one_hot)


@pytest.fixture(scope="module")
def fitted_on_images(digits):
    X, y = digits
    images = X[:200].reshape(-1, 1, 8, 8)
    return quick().fit(images, y[:200]), images, y[:200]


@pytest.mark.parametrize("method", ["predict", "predict_proba", "prune"])
def test_a_list_of_mis_shaped_samples_is_refused_as_an_array_is(fitted_on_images, method):
    clf, images, y = fitted_on_images
    wrong = images.reshape(-1, 1, 4, 16)
    args = (y,) if method == "prune" else ()
    message = r"X has samples of shape \(1, 4, 16\), but DropNetClassifier was fitted on samples of shape \(1, 8, 8\)\."
    with pytest.raises(ValueError, match=message):
        getattr(clf, method)(wrong, *args)
    with pytest.raises(ValueError, match=message):
        getattr(clf, method)(wrong.tolist(), *args)


def test_a_list_of_well_shaped_samples_predicts_as_the_array_does(fitted_on_images):
    clf, images, _ = fitted_on_images
    np.testing.assert_array_equal(clf.predict_proba(images[:20].tolist()), clf.predict_proba(images[:20]))
    np.testing.assert_array_equal(clf.predict(images[:20].tolist()), clf.predict(images[:20]))


@pytest.mark.parametrize("shape, warned", [((8, 8, 1), True), ((1, 8, 8), False), ((4, 4, 4), False), ((8, 8), False)])
def test_images_that_look_channels_last_are_warned(digits, shape, warned):
    import warnings

    X, y = digits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training_data(quick(), X[:40].reshape(-1, *shape), y[:40])
    messages = [str(w.message) for w in caught if "channels last" in str(w.message)]
    expected = [
        "The samples have shape (8, 8, 1): PyTorch's layers read them as 8 channels of 8 x 1 images. If the "
        "last axis holds the channels (channels last, as PIL, OpenCV and TensorFlow store images), move it "
        "first: X.transpose(0, 3, 1, 2)."
    ]
    assert messages == (expected if warned else [])


def test_score_takes_a_dataset_as_fit_and_predict_do(digits):
    X, y = digits
    data = TensorDataset(torch.as_tensor(X[:200]), torch.as_tensor(y[:200]))
    clf = quick().fit(data)
    assert clf.score(data) == clf.score(X[:200], y[:200]) == clf.score(data, y[:200])
    assert clf.score(data, np.zeros(200, int)) == np.mean(clf.predict(X[:200]) == 0)  # y given: the truth
    with pytest.raises(ValueError, match=r"score needs the labels y, unless X is a torch Dataset"):
        clf.score(X[:200])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_integers_that_float32_would_round_are_warned(digits, as_tensor):
    X, y = digits
    ids = (X[:60] * 16).astype(np.int64)
    big = torch.as_tensor(ids + 16_777_217) if as_tensor else ids + 16_777_217
    with pytest.warns(UserWarning, match=r"X holds integers up to 16,777,233, past 2\*\*24 = 16,777,216"):
        training_data(quick(), big, y[:60])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        training_data(quick(), ids, y[:60])  # small ids are exact


@pytest.mark.parametrize("container", ["dataframe", "list"])
def test_integers_that_float32_would_round_are_warned_in_a_dataframe_or_a_list(digits, container):
    X, y = digits
    stamps = 1_700_000_000 + np.arange(60, dtype=np.int64)  # Unix times
    X = pd.DataFrame({"time": stamps, "pixel": X[:60, 0]}) if container == "dataframe" else [[t, 1] for t in stamps]
    with pytest.warns(UserWarning, match=r"X holds integers up to 1,700,000,059, past 2\*\*24"):
        training_data(quick(), X, y[:60])


def test_sparse_x_is_refused_naming_the_dense_step_of_a_pipeline(digits):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = digits
    message = r"takes dense X, and X is a sparse csr_matrix .* OneHotEncoder\(sparse_output=False\)"
    with pytest.raises(TypeError, match=message):
        make_pipeline(OneHotEncoder(handle_unknown="ignore"), quick()).fit(X[:100] > 0.5, y[:100])
    clf = quick().fit(X[:100], y[:100])
    with pytest.raises(TypeError, match=message):
        clf.predict(sp.csr_matrix(X[:5]))


def test_a_class_of_one_row_leaves_the_validation_split_stratified():
    y = np.repeat([0, 1, 2], [300, 15, 1])
    data = LabelledData(np.zeros((len(y), 2), np.float32), y)
    for seed in range(20):
        train, valid = split_validation(data, 0.1, 3, seed)
        assert np.bincount(valid.y, minlength=3).tolist() == [30, 2, 0]  # as many of class 1 each time
        assert sorted(np.bincount(train.y).tolist()) == [1, 13, 270]
    y = np.repeat([0, 1, 2], [300, 15, 2])  # every class splits: unchanged
    train, valid = split_validation(LabelledData(np.zeros((len(y), 2), np.float32), y), 0.1, 3, 0)
    assert np.bincount(valid.y, minlength=3).tolist() == [30, 2, 0]


class UnpaddedSequences(Dataset):
    """Sequences of 3 channels and lengths 5 to 11, as a speech or text dataset yields them."""

    def __init__(self, n=40):
        self.lengths = 5 + np.arange(n) % 7

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, index):
        return torch.ones(3, int(self.lengths[index])), int(index % 2)


class Conv1dNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act, self.out = torch.nn.Conv1d(3, 8, 3), torch.nn.ReLU(), torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.act(self.conv(x)).mean(-1))


def test_inputs_of_different_shapes_in_a_dataset_are_named_with_the_fix():
    with pytest.raises(ValueError, match=r"item 0 is \(3, 5\), item \d+ is \(3, \d+\).*pad_sequence"):
        quick(module=Conv1dNet).fit(UnpaddedSequences())


def test_the_shape_check_leaves_torchs_generator_as_it_was():
    before = torch.get_rng_state()
    data = training_data(quick(), TensorDataset(torch.zeros(30, 3, 6), torch.arange(30) % 2), None)
    assert data.X[0][0].shape == (3, 6)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_validation_split_that_leaves_no_training_row_is_refused(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"validation_fraction=0.999 holds out all 400 rows \(rounded up\), "
                                         r"leaving none to train on: lower it"):  # fmt: skip
        quick(validation_fraction=0.999).fit(X[:400], y[:400])


def test_a_validation_split_smaller_than_the_classes_is_warned(digits):
    X, y = digits
    with pytest.warns(UserWarning, match=r"validation_fraction=0.001 holds out 1 of 400 rows, fewer than the "
                                         r"10 classes: the validation accuracy .* cannot see every class"):  # fmt: skip
        quick(validation_fraction=0.001).fit(X[:400], y[:400])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="validation_fraction")
        quick(validation_fraction=0.1).fit(X[:400], y[:400])
