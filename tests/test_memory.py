"""Memory is planned before it is taken (core.data.memory): budgets are the machine's,
shared by torchrun's processes on it; what does not fit falls back (stream, no cache, host
RAM instead of the GPU) with one log line saying why."""
from __future__ import annotations

import pytest
import torch

from core.data import memory, streaming
from core.events import EventCollector, LogLine
from core.training.trainer import Trainer
from tests.conftest import tiny_config

MB = 1024**2


def test_the_processes_of_one_machine_share_its_image_budget(monkeypatch):
    monkeypatch.setenv(memory.RAM_LIMIT_ENV, "4")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert not streaming.should_stream(1000, 32)  # 3 MB of 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun --nproc_per_node=4
    assert streaming.ram_limit_bytes() == 1 * MB
    assert streaming.should_stream(1000, 32)  # 3 MB of this process's 1
    monkeypatch.delenv(memory.RAM_LIMIT_ENV)
    assert memory.image_limit() == int(memory.physical_memory() * 0.25) // 4
    assert memory.hold_limit() == int(memory.physical_memory() * 0.5) // 4


def test_the_cache_needs_room_beside_the_images_in_this_process_share():
    one = {memory.RAM_LIMIT_ENV: "8", "LOCAL_WORLD_SIZE": "1"}
    four = dict(one, LOCAL_WORLD_SIZE="4")
    plenty = 64 * 1024**3
    assert memory.cache_room(5 * MB, 2 * MB, one, plenty) == ""
    why = memory.cache_room(5 * MB, 2 * MB, four, plenty)
    assert "5.0 MB beside 2.0 MB" in why and "2.0 MB" in why and "shared by 4 processes" in why
    assert "available now" in memory.cache_room(5 * MB, 0, one, available=4 * MB)


def test_the_gpu_takes_what_fits_in_half_its_free_memory():
    assert memory.gpu_fits(3 * MB, 8 * MB) and memory.gpu_fits(4 * MB, 8 * MB)
    assert not memory.gpu_fits(5 * MB, 8 * MB)


def run(folder, tmp_path, name):
    # ResNet-18 frozen before layer2 at 64 px with flips: the cache keeps 2 x 64 x 16 x 16
    # floats an image (~128 KB, 4 MB in all) where the decoded images take ~0.2 MB
    cfg = tiny_config(folder, model="resnet18", image_size=64, epochs=2, freeze_epochs=2,
                      freeze="upto:layer2", flip=True, batch_size=8, precision="32",
                      optimizer="sgd", lr=0.01, seed=2)
    events = EventCollector()
    trainer = Trainer(cfg, [events], run_dir=tmp_path / name)
    result = trainer.fit()
    assert result.status == "finished"
    return trainer, [e.message for e in events.of(LogLine)]


@pytest.mark.slow
def test_a_cache_without_room_is_not_kept_and_trains_alike(image_folder, tmp_path,
                                                            monkeypatch):
    from core.training.feature_cache import FeatureCache

    # the baseline keeps float32 features (not float16), so the two runs must agree exactly
    monkeypatch.setattr(FeatureCache, "_storage_dtype", staticmethod(lambda f: torch.float32))
    monkeypatch.setenv(memory.RAM_LIMIT_ENV, "64")
    cached, _ = run(image_folder, tmp_path, "cached")
    assert cached.caches.kept and cached.caches.nbytes > 3 * MB
    monkeypatch.setenv(memory.RAM_LIMIT_ENV, "2")  # the images fit, the cache does not
    plain, log = run(image_folder, tmp_path, "plain")
    assert not plain.caches.kept and plain.caches.nbytes == 0
    said = [m for m in log if "not cached" in m]
    assert len(said) == 1 and "TRANSFERLAB_RAM_LIMIT_MB" in said[0], log
    assert not any(m.startswith("Cached features") for m in log)
    a, b = cached.model.state_dict(), plain.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # computed, not read back: the same run
