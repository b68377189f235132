"""Frozen-prefix caching: compute the frozen leading stages once per image, train the rest.

When the first K stages are frozen and their BatchNorm layers are in eval mode, their output
is a fixed function of the image (and of its mirror image, when flips are on). The cache is
filled lazily, per image and orientation: a batch computes the prefix only for the images
(in the orientation drawn for them) that no earlier batch computed, so the first epoch costs
no more than a normal forward pass, and a later epoch computes only an orientation not drawn
before (half the time for an image's second visit); an image that easy-image skipping
(core.training.sampling) leaves out never costs its other orientation. Computing both up
front made fast-cpu's first epoch 666 s instead of 474 s on CIFAR-10 (bench/
unseen_accuracy.py, Sapphire Rapids, 2 threads). Features are kept in RAM (or GPU memory),
as float16 where their range allows. Dropout inside a cached prefix runs in eval mode (none
of the offered networks has any there).

Where the store lives is asked once, for the train and validation caches together, when the
first features show their size (``placement``: bytes -> device, or None when there is no
room, core.data.memory). Without room the caches keep nothing and compute the frozen
prefix on every use: the same features (up to the store's float16 rounding), more time.
The prefix runs with its BatchNorm folded into its convolutions (core.models.folding: the
same features up to rounding, 1.2-1.5x faster).
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from core.data.batches import BatchLoader
from core.models.folding import FoldedStages
from core.models.staging import Stage, run


class FeatureCache:
    def __init__(self, prefix: list[Stage], n: int, variants: int, placement=None,
                 autocast=None, folded: FoldedStages | None = None):
        self.prefix = prefix
        # the prefix's BatchNorm folded into its convolutions (it does not train)
        self.folded = folded or FoldedStages(prefix)
        self.variants = variants  # 2 with flips: the image and its mirror
        self.filled = torch.zeros(n, variants, dtype=torch.bool)  # (image, orientation)
        self.store: torch.Tensor | None = None
        # where the store lives: a function of (its size in bytes, this cache) -> device, or
        # None for no store at all; placement None: where the features are computed
        self.placement = placement
        self.autocast = autocast
        self.kept = True  # False: no room, the prefix runs on every use
        self.memory_format = torch.channels_last  # of the features handed out

    def _run_prefix(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.prefix:
            if isinstance(stage.fn, nn.Module):
                stage.fn.eval()
        with self.autocast() if self.autocast else contextlib.nullcontext():
            return self.folded(x)

    @property
    def nbytes(self) -> int:
        return 0 if self.store is None else self.store.numel() * self.store.element_size()

    def seed(self, store: torch.Tensor, filled: torch.Tensor | None = None) -> None:
        """Start with ``store``: this prefix's features of every image (and mirror image), in
        order, computed before the run (core.training.data_fit's trial); ``filled`` says
        which of them it holds (default: all)."""
        if store.shape[:2] != tuple(self.filled.shape):
            raise ValueError(f"features of shape {tuple(store.shape)} do not fit this cache")
        self.store = store
        self.filled[:] = True if filled is None else filled.to(torch.bool)

    @torch.no_grad()
    def _compute(self, loader: BatchLoader, idx: torch.Tensor,
                 variant: torch.Tensor) -> torch.Tensor:
        """The prefix's features of images ``idx``, each mirrored where ``variant`` is 1."""
        flips = variant.bool() if self.variants == 2 else None
        return self._run_prefix(loader.inputs(idx, flips)).float()

    @torch.no_grad()
    def _uncached(self, loader: BatchLoader, idx: torch.Tensor, flips) -> torch.Tensor:
        """The features the store would hold, computed now (no room to keep them)."""
        out = self._run_prefix(loader.inputs(idx, flips if self.variants == 2 else None))
        return self._laid_out(out.float())

    def _laid_out(self, out: torch.Tensor) -> torch.Tensor:
        return out.contiguous(memory_format=self.memory_format) if out.dim() == 4 else out

    @staticmethod
    def _storage_dtype(feats: torch.Tensor) -> torch.dtype:
        """float16 halves the memory and holds pretrained features (values of order 1); a
        prefix with random weights can produce values that float16 would flush to zero or
        overflow, so those stay float32."""
        magnitude = feats.abs()
        nonzero = magnitude[magnitude > 0]
        if len(nonzero) and magnitude.max() < 3e4 and nonzero.median() > 1e-3:
            return torch.float16
        return torch.float32

    def features(self, loader: BatchLoader, idx: torch.Tensor, flips=None) -> torch.Tensor:
        if not self.kept:
            return self._uncached(loader, idx, flips)
        variant = flips.long() if flips is not None and self.variants == 2 \
            else torch.zeros(len(idx), dtype=torch.long)
        todo = ~self.filled[idx, variant]
        if todo.any():
            missing, v = idx[todo], variant[todo]
            feats = self._compute(loader, missing, v)
            if self.store is None and not self._allocate(feats):
                return self._uncached(loader, idx, flips)
            dev = self.store.device
            self.store[missing.to(dev), v.to(dev)] = feats.to(dev, self.store.dtype)
            self.filled[missing, v] = True
        dev = self.store.device
        out = self.store[idx.to(dev), variant.to(dev)].to(loader.device, non_blocking=True)
        return self._laid_out(out.float())

    def _allocate(self, feats: torch.Tensor) -> bool:
        """The store for every image and orientation, shaped and typed after the first
        features computed, where placement puts it; False (nothing kept from now on) when
        there is no room."""
        shape = (*self.filled.shape, *feats.shape[1:])
        dtype = self._storage_dtype(feats)
        nbytes = torch.Size(shape).numel() * dtype.itemsize
        device = self.placement(nbytes, self) if self.placement else feats.device
        if device is None:
            self.kept = False
            return False
        self.store = torch.empty(shape, dtype=dtype, device=device)
        return True

    def batches(self, loader: BatchLoader, mirrored: bool = False):
        """(features, labels) over a whole split, for validation; ``mirrored``: (features of
        the images, of their mirror images) instead of features."""
        for idx, _ in loader.indices():
            feats = self.features(loader, idx)
            if mirrored:
                feats = (feats, self.features(loader, idx, torch.ones(len(idx), dtype=torch.bool)))
            yield feats, loader.targets(idx)


class PrefixCaches:
    """The train and validation caches for one cut point K; rebuilt when K changes."""

    def __init__(self, stage_list: list[Stage], k: int, n_train: int, n_val: int, flip: bool,
                 placement=None, autocast=None, tta: bool = False):
        self.k = k
        self.tail = stage_list[k:]
        self.placement = placement  # total bytes of both caches -> device or None (no room)
        self._where: tuple | None = None  # (device or None,): decided once, for both
        place = self._place if placement is not None else None
        folded = FoldedStages(stage_list[:k])  # (one folded copy for both)
        self.train = FeatureCache(stage_list[:k], n_train, 2 if flip else 1, place, autocast,
                                  folded)
        # with test-time flip averaging, validation needs the mirror images' features too
        self.val = FeatureCache(stage_list[:k], n_val, 2 if tta else 1, place, autocast,
                                folded)

    def _place(self, nbytes: int, cache: FeatureCache):
        """One decision for both caches, on their total size (from this cache's bytes per
        image and variant)."""
        if self._where is None:
            per_item = nbytes / max(len(cache.filled) * cache.variants, 1)
            items = sum(len(c.filled) * c.variants for c in (self.train, self.val))
            self._where = (self.placement(int(per_item * items)),)
        return self._where[0]

    @property
    def kept(self) -> bool:
        return self.train.kept and self.val.kept

    def set_layout(self, channels_last: bool) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.train.memory_format = self.val.memory_format = fmt

    def forward_tail(self, feats: torch.Tensor) -> torch.Tensor:
        return run(self.tail, feats)

    @property
    def nbytes(self) -> int:
        return self.train.nbytes + self.val.nbytes

    @property
    def device(self) -> torch.device:
        store = self.train.store
        return store.device if store is not None else torch.device("cpu")


def random_shift(feats: torch.Tensor, cells: int, generator=None) -> torch.Tensor:
    """Translate each cached feature map by up to ``cells`` cells in x and y (edges repeated):
    the cached path's counterpart of a random crop. At a stride-8 cut, one cell is 8 input
    pixels. Pooled (2-D) features are returned as they are."""
    if cells <= 0 or feats.dim() != 4:
        return feats
    n, _, h, w = feats.shape
    padded = torch.nn.functional.pad(feats, (cells, cells, cells, cells), mode="replicate")
    offsets = torch.randint(0, 2 * cells + 1, (n, 2), generator=generator)
    out = torch.empty_like(feats)  # (in the features' memory layout)
    for dy, dx in offsets.unique(dim=0).tolist():
        rows = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().flatten()
        rows = rows.to(feats.device)
        out[rows] = padded[rows, :, dy:dy + h, dx:dx + w]
    return out
