"""Which device and numeric precision a run uses: one place for the rules.

``--device auto`` picks CUDA, then Apple's MPS, then the CPU; a named device that is absent is
one clear error. ``--precision auto`` is bf16 on CUDA GPUs that support it, and full float32
elsewhere (on a CPU bf16 autocast was 3x slower on an AVX2 machine of this kind and gained
nothing for training on an AMX one: ../shared/notes). fp16 ("16-mixed") gets a GradScaler.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from core.errors import TransferLabError

from core.config import PRECISIONS  # noqa: E402 - the one list of precision names


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """The torch.device for ``name``; under torchrun, ``cuda`` means this rank's GPU."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif _mps_available():
            name = "mps"
        else:
            return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise TransferLabError("--device mps: Apple's Metal (MPS) is not available on this "
                                   "computer. Use --device auto or cpu.")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise TransferLabError(f"--device {name}: no CUDA GPU found on this computer "
                                   f"(found: {describe_device(torch.device('cpu'))}). "
                                   f"Use --device auto or cpu.")
        index = (local_rank or 0) if name == "cuda" else _index(name)
        if index >= count:
            raise TransferLabError(f"--device {name}: this computer has {count} CUDA GPU(s), "
                                   f"numbered 0 to {count - 1}.")
        return torch.device("cuda", index)
    raise TransferLabError(f"--device must be auto, cpu, cuda, cuda:N or mps, not '{name}'.")


def _index(name: str) -> int:
    try:
        return int(name.split(":", 1)[1])
    except ValueError:
        raise TransferLabError(f"--device {name}: N in cuda:N must be a number.") from None


def describe_device(device: torch.device) -> str:
    """Words for the GUI and the log: 'CUDA: NVIDIA H200', 'CPU, 2 threads'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU, {torch.get_num_threads()} threads"


def available_devices() -> list[tuple[str, str]]:
    """(value for --device, description) of everything found, best first (for the GUI)."""
    found = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            found.append((f"cuda:{i}", describe_device(torch.device("cuda", i))))
    if _mps_available():
        found.append(("mps", describe_device(torch.device("mps"))))
    found.append(("cpu", describe_device(torch.device("cpu"))))
    return found


def resolve_precision(precision: str, device: torch.device) -> str:
    precision = str(precision or "auto")
    if precision not in PRECISIONS:
        raise TransferLabError(f"--precision must be one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "32"
    if precision == "16-mixed" and device.type == "cpu":
        raise TransferLabError("--precision 16-mixed needs a GPU; on a CPU use 32 or bf16.")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TransferLabError(f"--precision bf16: {describe_device(device)} has no bf16 "
                               f"support; use 16-mixed or 32.")
    return precision


@dataclass
class Precision:
    """Autocast around forward passes, and a GradScaler for fp16."""
    name: str  # "32", "bf16" or "16-mixed"
    device: torch.device

    def __post_init__(self):
        self.dtype = {"bf16": torch.bfloat16, "16-mixed": torch.float16}.get(self.name)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.name == "16-mixed" else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, opt: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" in os.environ and os.environ["OMP_NUM_THREADS"].isdigit():
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
