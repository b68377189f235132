"""How much memory a run may take, planned for the whole machine (one home for the rules).

What a training process holds besides the network: the decoded images (train and
validation) and the frozen-prefix cache (core.training.feature_cache), which can be much
larger (ResNet with flips keeps ~400 KB an image). The budgets are the node's, shared by the
processes that torchrun starts on it (``LOCAL_WORLD_SIZE``): four ranks on one machine each
get a quarter, where each used to take the whole of it.

- Decoded images: a split is decoded into RAM when it fits in this process's share of
  ``image_limit`` (a quarter of physical memory, or ``TRANSFERLAB_RAM_LIMIT_MB``);
  otherwise it streams from disk (core.data.streaming).
- Everything held (decoded images + the cache): this process's share of ``hold_limit``
  (half of physical memory, or ``TRANSFERLAB_RAM_LIMIT_MB``), and no more than the memory
  available when the cache is made. A cache that does not fit is not kept: the frozen
  layers run every epoch instead.
- On a GPU: images and the cache move there when they take at most half of its free
  memory; otherwise they stay in host RAM and each batch is moved.

Each fallback is logged once, with the figures. No torch import: the data layer and the
tests use it before torch is needed.
"""
from __future__ import annotations

import os

IMAGE_FRACTION = 0.25  # of physical memory: decoded images of all the node's processes
HOLD_FRACTION = 0.5  # of physical memory: decoded images + frozen-prefix cache, likewise
GPU_FRACTION = 0.5  # of a GPU's free memory, for the decoded images or the cache
RAM_LIMIT_ENV = "TRANSFERLAB_RAM_LIMIT_MB"  # the node's budget for both, in MB


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest 8 GB
        return 8 * 1024**3


def available_memory() -> int:
    """What the kernel says can be taken without swapping (Linux's MemAvailable); the
    physical memory where that cannot be asked."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return physical_memory()


def local_processes(environ=None) -> int:
    """How many training processes share this machine (torchrun's LOCAL_WORLD_SIZE)."""
    environ = os.environ if environ is None else environ
    try:
        return max(1, int(environ.get("LOCAL_WORLD_SIZE", 1)))
    except ValueError:
        return 1


def _env_limit(environ) -> int | None:
    value = environ.get(RAM_LIMIT_ENV)
    if value:
        try:
            return max(0, int(float(value) * 1024**2))
        except ValueError:
            pass  # a malformed value falls back to the default rule
    return None


def _process_share(fraction: float, environ=None) -> int:
    """This process's share of the node's budget: ``RAM_LIMIT_ENV`` MB, else ``fraction``
    of physical memory, divided among the processes on the machine."""
    environ = os.environ if environ is None else environ
    node = _env_limit(environ)
    if node is None:
        node = int(physical_memory() * fraction)
    return node // local_processes(environ)


def image_limit(environ=None) -> int:
    """This process's share of the node's budget for decoded images."""
    return _process_share(IMAGE_FRACTION, environ)


def hold_limit(environ=None) -> int:
    """This process's share of the node's budget for decoded images and cache together."""
    return _process_share(HOLD_FRACTION, environ)


def describe_share(default: str = "a quarter of RAM", environ=None) -> str:
    """Which budget applies, in words ("TRANSFERLAB_RAM_LIMIT_MB, shared by 4 processes on
    this machine"); ``default``: how the budget is set when the variable is not."""
    environ = os.environ if environ is None else environ
    n = local_processes(environ)
    rule = RAM_LIMIT_ENV if _env_limit(environ) is not None else default
    return f"{rule}, shared by {n} processes on this machine" if n > 1 else rule


def cache_room(cache_bytes: int, held_bytes: int, environ=None,
               available: int | None = None) -> str:
    """Why a frozen-prefix cache of ``cache_bytes`` cannot be kept in host RAM beside
    ``held_bytes`` already held ("" when it can)."""
    limit = hold_limit(environ)
    if held_bytes + cache_bytes > limit:
        return (f"it would take {format_bytes(cache_bytes)} beside {format_bytes(held_bytes)} "
                f"of decoded images, more than this process's {format_bytes(limit)} "
                f"({describe_share('half of RAM', environ)})")
    available = available_memory() if available is None else available
    if cache_bytes > 0.9 * available:
        return (f"it would take {format_bytes(cache_bytes)}, more than the "
                f"{format_bytes(available)} of memory available now")
    return ""


def gpu_fits(nbytes: int, free: int) -> bool:
    """Whether ``nbytes`` may move to a GPU with ``free`` bytes free."""
    return nbytes <= free * GPU_FRACTION


def format_bytes(n: int | float) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB"
