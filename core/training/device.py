"""Which device and numeric precision a run uses: one place for the rules.

``--device auto`` picks CUDA, then Apple's MPS, then the CPU; a named device that is absent is
one clear error. ``--precision auto`` is bf16 on GPUs that compute it in hardware. On a CPU
it depends on the processor (bf16 autocast was 3x slower on an AVX2 machine; on AMX ones
oneDNN runs bf16 matrix products ~14x faster than float32), so there it is decided by timing
the run's own network both ways (core.training.autotune), cached per machine and recorded
in the run. fp16 ("16-mixed") gets a GradScaler.
"""
from __future__ import annotations

import contextlib
import os
import types
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


def gpu_bf16_native(capability: tuple[int, int], hip: bool = False) -> bool:
    """Whether a GPU computes bf16 in hardware: NVIDIA GPUs from compute capability 8.0
    (A100, RTX 30xx, H100...), and AMD's (ROCm). A V100 (7.0) or T4 (7.5) only emulates it,
    several times slower than float32, yet ``torch.cuda.is_bf16_supported()`` says True for
    them unless asked ``including_emulation=False``."""
    return hip or capability[0] >= 8


def _cuda_bf16_native(device: torch.device) -> bool:
    return gpu_bf16_native(torch.cuda.get_device_capability(device), bool(torch.version.hip))


def resolve_precision(precision: str, device: torch.device) -> str:
    precision = str(precision or "auto")
    if precision not in PRECISIONS:
        raise TransferLabError(f"--precision must be one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        if device.type == "cuda" and _cuda_bf16_native(device):
            return "bf16"
        return "auto" if device.type == "cpu" else "32"  # the CPU's is measured (autotune)
    if precision == "16-mixed" and device.type == "cpu":
        raise TransferLabError("--precision 16-mixed needs a GPU; on a CPU use 32 or bf16.")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TransferLabError(f"--precision bf16: {describe_device(device)} has no bf16 "
                               f"support; use 16-mixed or 32.")
    return precision


@dataclass
class Precision:
    """Autocast around forward passes, and a GradScaler for fp16. ``forward_only``: the
    precision applies to passes without gradients (cache, validation); training stays 32."""
    name: str  # "32", "bf16" or "16-mixed"
    device: torch.device
    forward_only: bool = False
    reason: str = ""  # how "auto" chose, for the log

    def __post_init__(self):
        self.dtype = {"bf16": torch.bfloat16, "16-mixed": torch.float16}.get(self.name)
        self.scaler = torch.amp.GradScaler(self.device.type) \
            if self.name == "16-mixed" and not self.forward_only else None

    def _autocast(self, enabled: bool):
        if self.dtype is None or not enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def autocast(self):
        """For training forward passes."""
        return self._autocast(not self.forward_only)

    def forward_autocast(self):
        """For passes without gradients: the frozen-prefix cache, validation."""
        return self._autocast(True)

    def describe(self) -> str:
        text = f"{self.name} for forward passes, 32 for training" if self.forward_only \
            else self.name
        return f"{text} ({self.reason})" if self.reason else text

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, opt: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()


def cpu_bf16_units() -> str:
    """'amx_bf16', 'avx512_bf16' or '' (Linux's /proc/cpuinfo; elsewhere '')."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return ""
    return next((f for f in ("amx_bf16", "avx512_bf16") if f in flags), "")


def _fp32_forward(self, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        return type(self).forward(self, x.float())


def strided_depthwise_in_fp32(model: torch.nn.Module, on: bool = True) -> int:
    """Run the strided depthwise convolutions of ``model`` in float32 even under bf16
    autocast (``on``), or as their class does again. On a CPU with AMX, oneDNN computes the
    input gradient of a stride-2 depthwise convolution in bf16 with a generic kernel
    (brgconv_strided:avx512_core_bf16) 20x slower than its float32 one (jit_dw): 0.5 of the
    1.2 s a 64-image EfficientNet-Lite0 step spent in oneDNN; in float32 the step runs 2.2x
    faster than without it. Numbers change only by being more exact. Returns how many."""
    count = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels \
                and max(m.stride) > 1:
            if on:
                m.forward = types.MethodType(_fp32_forward, m)
            else:
                m.__dict__.pop("forward", None)
            count += 1
    return count


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" in os.environ and os.environ["OMP_NUM_THREADS"].isdigit():
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
