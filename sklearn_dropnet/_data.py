"""Training data as arrays or as a torch ``Dataset``, behind one interface.

``fit`` accepts an array (tabular ``(n, features)`` or images
``(n, channels, height, width)``) with labels, or a torch ``Dataset`` of
``(x, label)`` pairs. :class:`LabelledData` hides the difference from the
pruning loop: it splits, iterates input batches and feeds skorch.
"""

import contextlib
import math
import threading

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
)

from ._device import preserved_generators
from ._user_warnings import warn

# DataLoader settings that would skip or reorder items: a pass that scores
# units, or gives each training row its teacher's output, reads every item in order.
_IN_ORDER = ("shuffle", "sampler", "batch_sampler", "drop_last", "generator")


def _kept_targets(dataset):
    """The labels a torchvision-style dataset keeps in ``targets`` (through
    ``Subset``s), or None: none kept, or a ``target_transform`` changes them."""
    if isinstance(dataset, Subset):
        inner = _kept_targets(dataset.dataset)
        return None if inner is None else inner[np.asarray(dataset.indices, dtype=int)]
    targets = getattr(dataset, "targets", None)
    if targets is None or len(targets) != len(dataset) or getattr(dataset, "target_transform", None) is not None:
        return None
    return np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets)


def dataset_labels(dataset):
    """Labels of a ``Dataset`` of ``(x, label)`` pairs, as a numpy array.

    Uses the ``targets`` attribute of torchvision-style datasets (and of
    the datasets under a ``Subset``) when there is one, no
    ``target_transform`` changes it, and the items of a sample spread over
    the dataset yield those labels; otherwise reads every item once (a
    subclass may relabel its items in ``__getitem__``).
    """
    targets = _kept_targets(dataset)
    if targets is not None and _items_agree(dataset, targets):
        return targets
    return np.asarray([_item_label(dataset[index], index) for index in range(len(dataset))])


def spread_indices(length, n_samples):
    """Up to ``n_samples`` indices evenly spaced over ``range(length)``, in order.

    >>> spread_indices(10, 4).tolist(), spread_indices(3, 16).tolist()
    ([0, 3, 6, 9], [0, 1, 2])
    """
    return np.unique(np.linspace(0, length - 1, min(n_samples, length)).round().astype(int))


def _items_agree(dataset, targets, n_samples=16):
    """Whether up to ``n_samples`` items, evenly spaced over ``dataset``, yield the labels in ``targets``."""
    indices = spread_indices(len(dataset), n_samples)
    labels = [_item_label(dataset[index], index) for index in indices.tolist()]
    return np.array_equal(np.asarray(labels), targets[indices])


def _item_label(item, index):
    """The label of item ``index``, an ``(x, label)`` pair, as one class label.

    Raises a ValueError, with the fix, for an item that is not a pair or
    whose label is not a scalar (one-hot labels, say).
    """
    check_dataset_item(item, index)
    label = item[1]
    if not isinstance(label, (torch.Tensor, np.ndarray, list, tuple)):
        return label
    shape = tuple(label.shape) if isinstance(label, (torch.Tensor, np.ndarray)) else (len(label),)
    if math.prod(shape) != 1:
        raise ValueError(
            "A Dataset passed as X must yield (x, label) pairs whose label is one class label "
            f"(a scalar); item {index}'s label is a {type(label).__name__} of shape {shape}. "
            "Pass class indices instead: for one-hot labels, TensorDataset(X, labels.argmax(1))."
        )
    return label.item() if isinstance(label, (torch.Tensor, np.ndarray)) else label[0]


def check_dataset_item(item, index, predicting=False):
    """Raise a ValueError unless ``item`` is an ``(x, label)`` pair or, to
    predict on, an ``(x,)`` tuple (``TensorDataset(X)``).

    A tuple or list passes when it is long enough: its first element is
    ``x``, its second the label. Anything else is named in the message, with
    the fix.

    Parameters
    ----------
    item : object
        Item ``index`` of a ``Dataset`` passed as ``X``.
    index : int
        Its index, for the message.
    predicting : bool, default=False
        The Dataset is to predict on: the label may be left out.
    """
    if isinstance(item, (tuple, list)) and len(item) >= (1 if predicting else 2):
        return
    if isinstance(item, (tuple, list)):
        found = f"a {type(item).__name__} of {len(item)} element{'' if len(item) == 1 else 's'}"
    else:
        found = f"a {type(item).__name__}, not a tuple"
    if predicting:
        expected, fix = "(x, label) pairs or (x,) tuples", "Pass TensorDataset(X), or X itself."
    else:
        expected, fix = "(x, label) pairs", "Pass the inputs with their labels, e.g. TensorDataset(X, y), and y=None."
    raise ValueError(f"A Dataset passed as X must yield {expected}; item {index} is {found}. {fix}")


class EncodedDataset(Dataset):
    """A ``Dataset`` of ``(x, label)`` pairs yielding float inputs and encoded labels."""

    def __init__(self, dataset, encoded_labels):
        self.dataset = dataset
        self.encoded_labels = encoded_labels

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        x = self.dataset[index][0]
        if not isinstance(x, torch.Tensor):
            array = np.asarray(x)
            if array.dtype.kind not in "biuf":
                raise TypeError(
                    "A Dataset passed as X must yield (x, label) pairs whose x is a tensor or an "
                    f"array of numbers; item {index}'s x is a {type(x).__name__}."
                )
            x = torch.as_tensor(array)
        return x.float(), int(self.encoded_labels[index])


def float_inputs(dataset):
    """``dataset``'s ``(x, label)`` pairs or ``(x,)`` tuples with float32 ``x`` and a placeholder label, to predict on."""
    return EncodedDataset(dataset, np.zeros(len(dataset), dtype=np.int64))


class NoSingleSampleBatches(Sampler):
    """Batches of ``batch_size`` indices from ``sampler``; a last batch of one joins the batch before.

    BatchNorm cannot normalise a batch of one sample in training mode.
    Merging it keeps every sample in every epoch, where ``drop_last`` would
    leave the same sample out of every epoch (training batches are not
    shuffled unless ``iterator_train__shuffle=True``).

    Parameters
    ----------
    sampler : torch.utils.data.Sampler
        The sample indices, in training order.
    batch_size : int
        Samples per batch; the last batch may hold ``batch_size + 1``.
    """

    def __init__(self, sampler, batch_size):
        self.sampler = sampler
        self.batch_size = batch_size

    def __iter__(self):
        batches = list(BatchSampler(self.sampler, self.batch_size, drop_last=False))
        if len(batches) > 1 and len(batches[-1]) == 1:
            last = batches.pop()
            batches[-1] += last
        yield from batches

    def __len__(self):
        n_batches = len(BatchSampler(self.sampler, self.batch_size, drop_last=False))
        return n_batches - (n_batches > 1 and len(self.sampler) % self.batch_size == 1)


class ArrayBatches(Dataset):
    """A skorch ``Dataset`` of arrays whose batches are sliced whole.

    The ``DataLoader`` calls ``__getitems__`` with a batch's indices, so a
    batch is one indexing of the arrays instead of one ``__getitem__`` and
    one tensor per sample, stacked again by the collate function. The
    batches, and the ``DataLoader``'s sampling and random draws, are the
    same.
    """

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.__getitems__([index])

    def __getitems__(self, indices):
        X = torch.from_numpy(self.X[indices])
        # skorch's placeholder for a missing y: one 0 per sample
        y = torch.zeros((len(indices), 1)) if self.y is None else torch.from_numpy(self.y[indices])
        return X, y


class SoftTargetBatches(ArrayBatches):
    """:class:`ArrayBatches` whose labels come with a teacher's log-probabilities.

    A batch is ``(X, (y, teacher_log_proba))``, which
    :meth:`~sklearn_dropnet._net.DropNetNet.get_loss` blends for distillation.
    """

    def __init__(self, X, y, teacher):
        super().__init__(X, y)
        self.teacher = teacher

    def __getitems__(self, indices):
        X, y = super().__getitems__(indices)
        return X, (y, torch.from_numpy(self.teacher[indices]))


class SoftTargetDataset(Dataset):
    """A ``Dataset`` of ``(x, label)`` pairs whose labels come with a teacher's
    log-probabilities: item ``i`` is ``(x, (label, teacher_log_proba[i]))``."""

    def __init__(self, dataset, teacher):
        self.dataset = dataset
        self.teacher = teacher

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        x, label = self.dataset[index]
        return x, (label, torch.from_numpy(self.teacher[index]))


def _as_batch(batch):
    """The collate function of :class:`ArrayBatches`: its batches are whole already."""
    return batch


def _sliced_whole(dataset, kwargs):
    """``(dataset, kwargs)`` for a ``DataLoader`` that slices skorch's array datasets whole.

    Only a plain skorch ``Dataset`` of NumPy arrays qualifies, and only when
    the caller sets no ``collate_fn`` of their own.
    """
    from skorch.dataset import Dataset as SkorchDataset

    if isinstance(dataset, ArrayBatches) and "collate_fn" not in kwargs:
        return dataset, {**kwargs, "collate_fn": _as_batch}
    if type(dataset) is not SkorchDataset or "collate_fn" in kwargs:
        return dataset, kwargs
    if not isinstance(dataset.X, np.ndarray) or not isinstance(dataset.y, (np.ndarray, type(None))):
        return dataset, kwargs
    return ArrayBatches(dataset.X, dataset.y), {**kwargs, "collate_fn": _as_batch}


_PREDICTING = threading.local()


@contextlib.contextmanager
def prediction_batches(batch_size):
    """Within it, :func:`inference_loader` makes batches of ``batch_size`` rows
    in this thread (None: the size it is given)."""
    _PREDICTING.batch_size = batch_size
    try:
        yield
    finally:
        _PREDICTING.batch_size = None


def inference_loader(dataset, batch_size, **kwargs):
    """The ``DataLoader`` skorch validates and predicts with (``iterator_valid``).

    :class:`torch.utils.data.DataLoader`, with arrays sliced a batch at a
    time (:class:`ArrayBatches`). Unless given one, it has a generator of
    its own: a ``DataLoader`` draws a seed for its workers on every pass,
    and predicting must not advance torch's global generator (nor wait for
    a fit in another thread that holds it, see
    :func:`~sklearn_dropnet._device.seeded_generators`).
    """
    dataset, kwargs = _sliced_whole(dataset, kwargs)
    kwargs.setdefault("generator", torch.Generator())
    batch_size = getattr(_PREDICTING, "batch_size", None) or batch_size
    return DataLoader(dataset, batch_size=batch_size, **kwargs)


def training_loader(dataset, batch_size, shuffle=False, drop_last=False, generator=None, **kwargs):
    """The ``DataLoader`` skorch trains with, without a last batch of one sample.

    skorch calls it as ``iterator_train`` with ``batch_size`` and the
    ``iterator_train__*`` parameters. When the batches would end with a
    single sample, that sample joins the batch before it (see
    :class:`NoSingleSampleBatches`); a user's ``sampler``,
    ``batch_sampler`` or ``drop_last=True`` is left as given. Arrays are
    sliced a batch at a time (:class:`ArrayBatches`).

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        The training data.
    batch_size : int
        Samples per batch.
    shuffle, drop_last, generator, **kwargs
        As for :class:`torch.utils.data.DataLoader`.

    Returns
    -------
    loader : torch.utils.data.DataLoader
    """
    dataset, kwargs = _sliced_whole(dataset, kwargs)
    users_batches = drop_last or kwargs.get("sampler") is not None or kwargs.get("batch_sampler") is not None
    if users_batches or not isinstance(batch_size, int) or len(dataset) % batch_size != 1:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=generator,
            **kwargs,
        )
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    batches = NoSingleSampleBatches(sampler, batch_size)
    return DataLoader(dataset, batch_sampler=batches, generator=generator, **kwargs)


class LabelledData:
    """Inputs with encoded labels, from arrays or from a ``Dataset``.

    Parameters
    ----------
    X : ndarray or EncodedDataset
    y : ndarray of int64
        Encoded labels (also held inside ``X`` when it is a dataset).
    """

    def __init__(self, X, y):
        self.X = X
        self.y = y

    @property
    def is_dataset(self):
        return isinstance(self.X, Dataset)

    def __len__(self):
        return len(self.y)

    def subset(self, indices):
        if self.is_dataset:
            # int indices, as a DataLoader gives them: a user's __getitem__ may need them
            sub = EncodedDataset(Subset(self.X.dataset, np.asarray(indices).tolist()), self.y[indices])
            return LabelledData(sub, self.y[indices])
        return LabelledData(self.X[indices], self.y[indices])

    def skorch_args(self):
        """``(X, y)`` as skorch's ``fit_loop``, ``predict`` and ``Dataset`` take them."""
        return (self.X, None) if self.is_dataset else (self.X, self.y)

    def skorch_dataset(self):
        from skorch.dataset import Dataset as SkorchDataset

        return self.X if self.is_dataset else SkorchDataset(self.X, self.y)

    def input_batches(self, device, batch_size=None, loader=None):
        """Yield the inputs in order, in batches, as tensors on ``device``.

        ``loader``: the ``iterator_valid__*`` settings of the estimator
        (without the prefix). ``batch_size``, else theirs, else 256, sizes
        the batches; a Dataset's items are also read with the other
        ``DataLoader`` settings (``num_workers``, ``pin_memory``,
        ``collate_fn``, ...), except those that would skip or reorder items.
        """
        settings = {key: value for key, value in (loader or {}).items() if key not in _IN_ORDER}
        batch_size = settings.pop("batch_size", None) if batch_size is None else batch_size
        batch_size = batch_size or 256
        if self.is_dataset:
            # a generator of its own: scoring must not advance torch's global one,
            # which shuffles the training rows (arrays and datasets train alike)
            for x, _ in DataLoader(self.X, batch_size=batch_size, generator=torch.Generator(), **settings):
                yield x.to(device)
        else:
            for start in range(0, len(self.X), batch_size):
                yield torch.as_tensor(self.X[start : start + batch_size]).to(device)

    def labelled_batches(self, device, batch_size=256):
        """Yield ``(inputs, labels)`` in batches, as tensors on ``device``."""
        for start in range(0, len(self), batch_size):
            part = self.subset(np.arange(start, min(start + batch_size, len(self))))
            inputs = next(iter(part.input_batches(device, batch_size=len(part))))
            yield inputs, torch.as_tensor(part.y, device=device)

    def with_soft_targets(self, teacher):
        """The data as a ``Dataset`` whose labels come with ``teacher``'s
        log-probabilities, one row per sample in order (for distillation)."""
        if self.is_dataset:
            return SoftTargetDataset(self.X, teacher)
        return SoftTargetBatches(self.X, self.y, teacher)

    def spread_inputs(self, device, n_samples, keep_generators=False):
        """``n_samples`` inputs evenly spaced over the data, as one tensor on ``device``.

        Spread rather than the first ones: data sorted by class (as iris and
        many image folders are) would otherwise show only its first class.
        ``keep_generators``: torch's generators are left as they were (a
        Dataset's random transforms draw from them), so that a read added
        for a check changes no training that follows.
        """
        indices = spread_indices(len(self), n_samples)
        with preserved_generators(device) if keep_generators else contextlib.nullcontext():
            return next(iter(self.subset(indices).input_batches(device, batch_size=len(indices))))

    def example(self, device):
        """The first two inputs, to trace the network with: a copy, not a view
        that would keep all the rows alive as long as the pruner."""
        return next(iter(self.input_batches(device, batch_size=2))).clone()


def split_validation(data, fraction, n_classes, seed):
    """Hold out ``fraction`` of ``data`` for validation, stratified.

    A class with a single sample keeps it for training; the other classes
    are split stratified when each side has room for every one of them,
    and the split is plain random otherwise. Returns ``(train, valid)``;
    ``valid`` is None without a validation split.
    Either way the training rows come in a random order (the split's, or
    a permutation): batches taken in the order given would each hold
    one class of data sorted by class.
    """
    from sklearn.model_selection import train_test_split

    y = data.y
    n_valid = math.ceil(fraction * len(y))
    n_train = len(y) - n_valid
    if fraction == 0:
        return data.subset(np.random.RandomState(seed).permutation(len(y))), None
    if n_train < 1:
        raise ValueError(
            f"validation_fraction={fraction:g} holds out all {len(y)} rows (rounded up), leaving none to "
            "train on: lower it, or set validation_fraction=0 to watch the training loss and accuracy."
        )
    counts = np.bincount(y, minlength=n_classes)
    present = np.count_nonzero(counts)
    if n_valid < present:
        warn(
            f"validation_fraction={fraction:g} holds out {n_valid} of {len(y)} rows, fewer than the "
            f"{present} classes: the validation accuracy that min_accuracy_ratio and the pruning history "
            "report cannot see every class. Raise validation_fraction, or set it to 0 to watch the "
            "training accuracy.",
            UserWarning,
        )
    single = counts[y] == 1
    rows = np.flatnonzero(~single)
    if min(len(rows) - n_valid, n_valid) >= np.count_nonzero(counts > 1):
        train, valid = train_test_split(rows, test_size=n_valid, stratify=y[rows], random_state=seed)
        if single.any():
            train = np.random.RandomState(seed).permutation(np.concatenate([train, np.flatnonzero(single)]))
    else:
        train, valid = train_test_split(np.arange(len(y)), test_size=n_valid, random_state=seed)
    return data.subset(train), data.subset(valid)
