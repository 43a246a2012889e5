"""A helper of the tests that pass a torch ``Dataset`` as ``X``.

Imported by ``test_dataset_messages.py`` and ``test_dropnet.py`` (pytest
puts this folder on ``sys.path``); not a test module itself.
"""

from torch.utils.data import Dataset


class Items(Dataset):
    """A Dataset whose item ``i`` is ``items[i]``, whatever that is: an ``(x, label)``
    pair, an input alone, a pair whose ``x`` is a dict."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]
