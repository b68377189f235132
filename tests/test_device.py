"""Device and precision choices (unit-tested on the CPU) and the GPU-only paths (skipped here
with a reason; bench/gpu_check.sh runs them on a GPU machine)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import TrainConfig
from core.errors import TransferLabError
from core.training.device import (Precision, available_devices, describe_device,
                                  resolve_device, resolve_precision)
from core.training.distributed import Distributed
from core.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (this machine has "
                                "none: bench/gpu_check.sh runs these on a GPU machine)")
no_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks the message for a missing GPU")


def test_auto_falls_back_to_the_cpu_and_says_what_it_found():
    if HAS_CUDA:
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto") == torch.device("cpu")
    assert available_devices()[-1][0] == "cpu"
    assert describe_device(torch.device("cpu")) == f"CPU, {torch.get_num_threads()} threads"


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_an_absent_gpu_is_one_clear_error(name):
    with pytest.raises(TransferLabError, match="no CUDA GPU found"):
        resolve_device(name)


@no_cuda
def test_cli_device_cuda_without_a_gpu_is_one_error_line(image_folder, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "train", "--model",
                           "mobilenet_v2", "--weights", "none", "--data", str(image_folder),
                           "--epochs", "1", "--image-size", "32", "--device", "cuda",
                           "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line
    assert proc.stderr.startswith("error: --device cuda: no CUDA GPU found")
    assert not (tmp_path / "run").exists()  # a failed start leaves no folder


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu"])
def test_unknown_device_names_are_refused(bad):
    with pytest.raises(TransferLabError, match="--device"):
        TrainConfig(device=bad).validate()


def test_precision_rules_on_the_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "auto"  # settled by timing the network
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(TransferLabError, match="16-mixed needs a GPU"):
        resolve_precision("16-mixed", cpu)
    with pytest.raises(TransferLabError, match="--precision"):
        resolve_precision("64", cpu)


def test_bf16_forward_only_keeps_training_in_float32():
    p = Precision("bf16", torch.device("cpu"), forward_only=True, reason="auto: timed")
    layer = torch.nn.Linear(4, 2)
    with p.autocast():  # training stays float32
        assert layer(torch.randn(3, 4)).dtype == torch.float32
    with p.forward_autocast():  # cache filling and validation use bf16
        assert layer(torch.randn(3, 4)).dtype == torch.bfloat16
    assert p.describe() == "bf16 for forward passes, 32 for training (auto: timed)"


def test_strided_depthwise_convolutions_stay_float32_under_bf16_autocast():
    """The speed trick of bf16 training on AMX CPUs, against the plain path: the stride-2
    depthwise convolutions give float32's exact numbers under autocast, the rest of the
    network is bf16 as before, and switching it off restores the plain module."""
    from core.models import build_model
    from core.training.device import strided_depthwise_in_fp32

    torch.manual_seed(0)
    model, _, _ = build_model("efficientnet_lite0", "none", 10)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1
             and max(m.stride) > 1]
    assert strided_depthwise_in_fp32(model) == len(convs) == 4
    conv, y = convs[0], torch.randn(2, convs[0].in_channels, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kept = conv(y.bfloat16())
        assert model.conv_stem(x).dtype == torch.bfloat16  # the others still bf16
        out = model(x)
    assert kept.dtype == torch.float32
    assert torch.equal(kept, type(conv).forward(conv, y.bfloat16().float()))
    with torch.no_grad():
        plain = model(x)
    assert torch.allclose(out.float(), plain, atol=0.05 * plain.abs().max())  # bf16 rounding
    strided_depthwise_in_fp32(model, on=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(y.bfloat16()).dtype == torch.bfloat16


def test_bf16_autocast_runs_the_forward_in_bf16_on_the_cpu():
    p = Precision("bf16", torch.device("cpu"))
    layer = torch.nn.Linear(4, 2)
    with p.autocast():
        out = layer(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16 and p.scaler is None


def test_a_bf16_run_trains_and_reports_its_precision(image_folder, tmp_path):
    from core.events import EventCollector, LogLine

    events = EventCollector()
    cfg = TrainConfig(model="mobilenet_v2", weights="none", data=str(image_folder), epochs=1,
                      freeze_epochs=0, image_size=32, batch_size=8, val_split=0.25,
                      log_every=0, precision="bf16", device="cpu")
    result = Trainer(cfg, [events], run_dir=tmp_path / "r").fit()
    assert result.status == "finished"
    assert "Device: CPU, " in " ".join(e.message for e in events.of(LogLine))
    assert any("precision bf16" in e.message for e in events.of(LogLine))


def test_shares_cover_a_batch_exactly_once():
    for world in (1, 2, 3, 4):
        for n in range(0, 13):
            parts = [Distributed(rank=r, world=world).share(n) for r in range(world)]
            covered = [i for part in parts for i in range(n)[part]]
            assert covered == list(range(n))
            sizes = [part.stop - part.start for part in parts]
            assert max(sizes) - min(sizes) <= 1


def test_torchrun_environment_is_read():
    d = Distributed.from_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                              "TORCHELASTIC_RESTART_COUNT": "2", "TORCHELASTIC_RUN_ID": "x"})
    assert (d.rank, d.world, d.local_rank, d.restart_count, d.run_id) == (1, 4, 1, 2, "x")
    assert d.enabled and not d.is_main
    assert not Distributed.from_env({}).enabled


# --- the paths only a GPU runs ---------------------------------------------------------------
@needs_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["32", "bf16", "16-mixed"])
def test_gpu_run_keeps_data_and_cache_on_the_device(image_folder, tmp_path, precision):
    cfg = TrainConfig(model="mobilenet_v2", weights="none", data=str(image_folder), epochs=2,
                      freeze_epochs=1, image_size=64, batch_size=8, val_split=0.25,
                      log_every=0, precision=precision, device="cuda")
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    loop = trainer.prepare()
    assert loop.train_images.device.type == "cuda"
    result = trainer.fit()
    assert result.status == "finished"
    assert next(trainer.model.parameters()).device.type == "cuda"


@needs_cuda
@pytest.mark.gpu
def test_gpu_cache_lives_on_the_device(image_folder, tmp_path):
    cfg = TrainConfig(model="mobilenet_v2", weights="none", data=str(image_folder), epochs=1,
                      freeze_epochs=1, image_size=64, batch_size=8, val_split=0.25,
                      log_every=0, device="cuda")
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    trainer.fit()
    assert trainer.caches is not None and trainer.caches.device.type == "cuda"


@pytest.mark.parametrize("capability, hip, native", [
    ((7, 0), False, False),  # V100: bf16 only emulated
    ((7, 5), False, False),  # T4
    ((8, 0), False, True),  # A100
    ((8, 9), False, True),  # L4, RTX 40xx
    ((9, 0), False, True),  # H100 / H200
    ((9, 4), True, True),  # ROCm (capability numbers mean something else there)
])
def test_auto_precision_takes_bf16_only_where_a_gpu_has_it_in_hardware(capability, hip, native):
    from core.training.device import gpu_bf16_native

    assert gpu_bf16_native(capability, hip) is native


@needs_cuda
def test_auto_precision_on_this_gpu_agrees_with_torch_without_emulation():
    device = torch.device("cuda", 0)
    expected = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "32"
    assert resolve_precision("auto", device) == expected
