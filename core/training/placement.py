"""Where a run's decoded images and its frozen-prefix cache live: the GPU when they take at
most half its free memory, else host RAM when this process's budget has room
(core.data.memory), else (the cache only) nowhere: the frozen prefix then runs every epoch.
"""
from __future__ import annotations

import torch

from core.data.datasets import Dataset
from core.data.memory import cache_room, format_bytes, gpu_fits


def held_bytes(images) -> int:
    """Host memory a decoded split holds (a streamed one holds a batch at a time)."""
    if torch.is_tensor(images) and images.device.type == "cpu":
        return images.numel() * images.element_size()
    return 0


def images_device(data: Dataset, dev: torch.device, notes: list[str]) -> torch.device:
    """A GPU holds the decoded images when they take at most half its free memory;
    otherwise they stay in host RAM and each batch moves (why: appended to ``notes``)."""
    if dev.type != "cuda":
        return dev
    nbytes = held_bytes(data.train.images) + held_bytes(data.val.images)
    free, _ = torch.cuda.mem_get_info(dev)
    if gpu_fits(nbytes, free):
        return dev
    notes.append(
        f"The decoded images ({format_bytes(nbytes)}) would take more than half of the "
        f"GPU's free memory ({format_bytes(free)}): they stay in host RAM and each batch "
        f"is moved to the GPU.")
    return torch.device("cpu")


def cache_device(nbytes: int, dev: torch.device, held: int, log) -> torch.device | None:
    """Where a cache of ``nbytes`` lives, for a run on ``dev`` whose decoded images hold
    ``held`` bytes of host RAM; a fallback is said through ``log``."""
    gpu_full = ""
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        if gpu_fits(nbytes, free):
            return dev
        gpu_full = f"more than half of the GPU's free memory ({format_bytes(free)})"
    why = cache_room(nbytes, held)
    if not why:
        if gpu_full:
            log(f"The feature cache ({format_bytes(nbytes)}) would take {gpu_full}: "
                f"it is kept in host RAM.")
        return torch.device("cpu")
    where = f"on the GPU it would take {gpu_full}; in host RAM " if gpu_full else ""
    log(f"The frozen layers' outputs are not cached ({where}{why}): they are computed "
        f"again every epoch.")
    return None
