"""PyTorch integration: :class:`IterableDataset` is :class:`arrowfeed.Loader` as a
``torch.utils.data.IterableDataset``, so ``DataLoader(loader, batch_size=None, num_workers=k)``
works. The workers split each epoch among themselves (every ``k``-th batch each, gathered by
that worker only) and the DataLoader hands their batches on in the order one process would:
no row repeated, none dropped. Importing this module imports torch.

>>> from arrowfeed.torch import IterableDataset                     # doctest: +SKIP
>>> ds = IterableDataset("s3://bucket/train", batch_size=256, format="torch")
>>> for batch in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
...     train_step(batch)
"""

import torch.utils.data

from . import Loader

__all__ = ["IterableDataset"]


class IterableDataset(Loader, torch.utils.data.IterableDataset):
    """:class:`arrowfeed.Loader` as a PyTorch ``IterableDataset``; the same arguments."""

    def __init__(self, *args, **kwargs):
        Loader.__init__(self, *args, **kwargs)
