"""The memory allocator setting TransferLab runs with (no torch import: main.py uses it first).

glibc's malloc serves every large tensor with its own mmap and unmaps it when freed, so each
training batch faults in and zeroes fresh pages: the kernel took 25-35% of all CPU time here,
and `GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184` (keep
freed memory for the next batch) doubled a MobileNetV2 train step (../shared/notes, PyTorch's
CPU performance guide says the same of tuned allocators). glibc reads the variable once, at
process start, so ``main.py`` re-executes itself with it before anything else runs. The price
is memory: freed blocks are kept, so RSS stays at the run's peak (the log reports it).
"""
from __future__ import annotations

import os
import platform
import sys

TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"
OPT_OUT = "TRANSFERLAB_MALLOC"  # "system": leave the allocator alone


def tuned(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    return "glibc.malloc.mmap_max=0" in environ.get("GLIBC_TUNABLES", "")


def reexec_env(environ=None) -> dict | None:
    """The environment to restart with, or None when no restart is needed (not glibc, the
    user opted out, or GLIBC_TUNABLES already sets mmap_max, by us or by the user)."""
    environ = dict(os.environ if environ is None else environ)
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    if environ.get(OPT_OUT) == "system" or "glibc.malloc.mmap_max" in \
            environ.get("GLIBC_TUNABLES", ""):
        return None
    current = environ.get("GLIBC_TUNABLES", "")
    environ["GLIBC_TUNABLES"] = f"{current}:{TUNABLES}" if current else TUNABLES
    return environ


def ensure_tuned() -> None:
    """Re-execute this process with the tuned allocator if it is not in place yet (same pid,
    so torchrun and job schedulers keep tracking it). Call before any heavy import."""
    env = reexec_env()
    if env is None:
        return
    frozen = getattr(sys, "frozen", False)
    argv = [sys.executable, *(sys.argv[1:] if frozen else sys.orig_argv[1:])]
    try:
        os.execve(sys.executable, argv, env)
    except OSError:
        return  # cannot restart (odd launcher): run with the system allocator


def describe(environ=None) -> str:
    return "glibc malloc tuned" if tuned(environ) else "system malloc"


def peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
