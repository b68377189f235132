"""Batches from decoded uint8 tensors: resize, flip and normalise a whole batch at once.

Small images (CIFAR's 32x32) are decoded once; per-image PIL transforms every epoch were the
lesson loop's main data cost. Resizing on the batch is one interpolate call. The images may
live on a GPU (moved there once): then every batch is cut, resized and normalised there,
with no trip through the host. The shuffle order always comes from a CPU generator, so the
same seed gives the same batches on every device and in every process of a distributed run.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_square(x: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """A float (N,3,S,S) batch at ``size`` x ``size`` (the weights' ``interpolation``): the
    one resize of squares, used by training and inside every inference network
    (core.inference.forward.InputResize)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode=interpolation, align_corners=False,
                         antialias=x.shape[-1] > size)


def to_model_input(x: torch.Tensor, image_size: int, mean, std, flip_mask=None,
                   channels_last: bool = True, interpolation: str = "bilinear") -> torch.Tensor:
    """uint8 (N,3,S,S) -> normalised float (N,3,image_size,image_size), on x's device."""
    x = resize_square(x.float().div_(255), image_size, interpolation)
    if flip_mask is not None and flip_mask.any():
        flip_mask = flip_mask.to(x.device)
        x[flip_mask] = x[flip_mask].flip(-1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    x = (x - m) / s
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class BatchLoader:
    """Iterates (inputs, labels) over decoded images in seeded, per-epoch shuffled order.

    ``share``: a function that picks this process's part of each batch (see
    core.training.distributed); ``device``: where batches go (default: the images');
    ``visit``: the indices of the images this pass goes over (default: all of them; see
    core.training.sampling).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 image_size: int, mean, std, *, shuffle: bool = False, flip: bool = False,
                 seed: int = 0, channels_last: bool = True, share=None, device=None,
                 interpolation: str = "bilinear", visit: torch.Tensor | None = None):
        self.images, self.labels = images, labels
        self.visit = visit
        # where batches are made: the images' device, or a GPU they did not fit on (each
        # batch is then cut in host RAM and moved)
        self.device = torch.device(device) if device is not None else images.device
        self.batch_size, self.image_size = batch_size, image_size
        self.mean, self.std = mean, std
        self.shuffle, self.flip, self.channels_last = shuffle, flip, channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self.share = share
        self.interpolation = interpolation

    def _bounds(self) -> list[int]:
        """Batch start offsets. Validation: batches of ``batch_size``, the last one short.
        Training: the N images are cut into ceil(N / batch_size) batches whose sizes differ
        by at most one image, so no step sees a tiny remainder (a 1-image step is a noisy
        one, and BatchNorm cannot train on one sample), no batch is larger than asked
        (memory), and the cut depends on N and the batch size only: the same steps for
        one process or any number of them (core.training.distributed shares each batch).
        (Batch sizes of 1-2 would still leave 1-image batches: there, fewer batches.)"""
        n = self.count
        if not self.shuffle or n == 0:
            return list(range(0, n, self.batch_size)) + [n]
        count = -(-n // self.batch_size)
        while count > 1 and n // count < 2:
            count -= 1
        base, extra = divmod(n, count)
        return [i * base + min(i, extra) for i in range(count + 1)]

    def __len__(self) -> int:
        return len(self._bounds()) - 1

    @property
    def count(self) -> int:
        """Images one pass goes over."""
        return len(self.labels) if self.visit is None else len(self.visit)

    def indices(self):
        """(indices, flip mask or None) per batch, for callers that fetch inputs themselves
        (the frozen-prefix cache). Indices are CPU tensors into ``images``; with ``share``,
        only this process's part of each global batch."""
        for idx, flips, _ in self.shares():
            yield idx, flips

    def shares(self):
        """(indices, flip mask or None, size of the whole global batch) per batch."""
        n = self.count
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.visit is not None:
            order = self.visit[order]
        bounds = self._bounds()
        for start, end in zip(bounds, bounds[1:]):
            idx = order[start:end]
            flips = torch.rand(len(idx), generator=self.generator) < 0.5 if self.flip else None
            if self.share is not None:
                part = self.share(len(idx))
                idx, flips = idx[part], None if flips is None else flips[part]
            yield idx, flips, end - start

    def inputs(self, idx: torch.Tensor, flips=None) -> torch.Tensor:
        images = self.images[idx.to(self.images.device)].to(self.device, non_blocking=True)
        return to_model_input(images, self.image_size, self.mean, self.std, flips,
                              self.channels_last, self.interpolation)

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        return self.labels[idx.to(self.labels.device)].to(self.device)

    def __iter__(self):
        for idx, flips in self.indices():
            yield self.inputs(idx, flips), self.targets(idx)
