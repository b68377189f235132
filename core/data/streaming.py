"""Images read from disk batch by batch, for folders too big to decode into RAM.

The rule: a split is decoded once into RAM when its decoded size, ``images x 3 x side x
side`` bytes (uint8), is at most ``ram_limit_bytes()``: this process's share of a quarter of
the machine's physical memory, or of ``TRANSFERLAB_RAM_LIMIT_MB`` when that is set (the
budgets live in core.data.memory). A bigger split streams: only its file list and labels
stay in memory, and each batch is decoded when the loop asks for it (on a few threads;
Pillow releases the GIL while decoding), so memory stays bounded by a batch whatever the
folder's size. The price: every epoch decodes
every image again, where an in-RAM split decodes each image once.

``StreamedImages`` stands in for the uint8 ``(N, 3, S, S)`` tensor of a decoded split:
indexing it with a tensor of indices decodes those images, with an int one image.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from core.data.images import UnreadableImage, header_problem, load_square
from core.data.memory import RAM_LIMIT_ENV, describe_share, image_limit, physical_memory

__all__ = ["RAM_LIMIT_ENV", "StreamedImages", "decode_or_stream", "physical_memory",
           "ram_limit_bytes", "should_stream", "take"]
from core.progress import TaskState

def ram_limit_bytes() -> int:
    """This process's budget for a decoded split (core.data.memory.image_limit)."""
    return image_limit()


def decoded_bytes(n_images: int, side: int) -> int:
    return n_images * 3 * side * side


def should_stream(n_images: int, side: int) -> bool:
    return decoded_bytes(n_images, side) > ram_limit_bytes()


class StreamedImages:
    """A lazily decoded ``(N, 3, side, side)`` uint8 image set over a list of files."""

    dtype = torch.uint8

    def __init__(self, paths: list[str], side: int, device: torch.device | None = None,
                 threads: int | None = None, crop: float = 1.0, interpolation: str = "bilinear"):
        self.paths, self.side, self.crop = list(paths), side, crop
        self.interpolation = interpolation
        self._device = torch.device("cpu") if device is None else torch.device(device)
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.failed: dict[str, str] = {}  # files that broke only when decoded (shown black)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), 3, self.side, self.side))

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def nbytes_if_decoded(self) -> int:
        return decoded_bytes(len(self.paths), self.side)

    def to(self, device) -> "StreamedImages":
        """Batches are decoded on the CPU and handed over on ``device``."""
        out = StreamedImages(self.paths, self.side, device, self.threads, self.crop,
                             self.interpolation)
        out.failed = self.failed
        return out

    def subset(self, idx) -> "StreamedImages":
        out = StreamedImages([self.paths[i] for i in _as_list(idx)], self.side, self._device,
                             self.threads, self.crop, self.interpolation)
        out.failed = self.failed
        return out

    def _one(self, path: str) -> torch.Tensor:
        try:
            return load_square(path, self.side, self.crop, self.interpolation)
        except UnreadableImage as exc:  # passed the scan, failed in full: keep the batch going
            self.failed[path] = str(exc)
            return torch.zeros((3, self.side, self.side), dtype=torch.uint8)

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, int) or (torch.is_tensor(idx) and idx.dim() == 0):
            return self._one(self.paths[int(idx)]).to(self._device)
        paths = [self.paths[i] for i in _as_list(idx)]
        if len(paths) > 1 and self.threads > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                images = list(pool.map(self._one, paths))
        else:
            images = [self._one(p) for p in paths]
        if not images:
            return torch.empty((0, 3, self.side, self.side), dtype=torch.uint8,
                               device=self._device)
        return torch.stack(images).to(self._device)

    def describe(self) -> str:
        gb = self.nbytes_if_decoded / 1024**3
        return (f"images stream from disk: decoded they would take {gb:.2f} GB, more than "
                f"the {ram_limit_bytes() / 1024**3:.2f} GB allowed ({describe_share()})")


def _as_list(idx) -> list[int]:
    if torch.is_tensor(idx):
        return idx.cpu().tolist()
    return [int(i) for i in idx]


def take(images, idx):
    """``images[idx]`` for a decoded tensor; the same subset, still streamed, otherwise."""
    return images.subset(idx) if isinstance(images, StreamedImages) else images[idx]


def stream_files(files: list[tuple[Path, int]], side: int, state: TaskState,
                 stage: str = "Checking images", crop: float = 1.0,
                 interpolation: str = "bilinear"):
    """A streamed split: every file's header is checked (with progress), nothing decoded."""
    from core.data.folder import Split

    paths, labels, skipped = [], [], []
    for i, (path, label) in enumerate(files):
        if i % 512 == 0:
            state.check()
            state.report(stage, i, len(files))
        why = header_problem(path)  # the decoder's own reasons (core.data.images)
        if why:
            skipped.append((str(path), why))
            continue
        paths.append(str(path))
        labels.append(label)
    state.report(stage, len(files), len(files))
    return Split(StreamedImages(paths, side, crop=crop, interpolation=interpolation),
                 torch.tensor(labels, dtype=torch.long), skipped)


def decode_or_stream(files: list[tuple[Path, int]], side: int, state: TaskState,
                     stage: str = "Decoding images", crop: float = 1.0,
                     interpolation: str = "bilinear"):
    """The one place that applies the rule above (``crop``: see core.data.folder.framing;
    ``interpolation``: the weights' resampling filter)."""
    from core.data.folder import decode_files

    if should_stream(len(files), side):
        return stream_files(files, side, state, crop=crop, interpolation=interpolation)
    return decode_files(files, side, state, stage, crop, interpolation)
