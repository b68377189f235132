"""Big folders: the stream-or-decode rule, streamed training, and the decoded cache's cap.
(Speed and memory figures come from bench/load.py, not from here.)"""
import os
import time

import pytest
import torch

from core.config import TrainConfig
from core.data import disk_cache, streaming
from core.data.datasets import load_dataset
from core.data.folder import decode_files, list_files, find_layout
from core.events import EventCollector, LogLine
from core.paths import cache_dir
from core.progress import TaskState
from core.training.trainer import Trainer
from tests.conftest import make_folder


def test_the_rule_streams_only_what_does_not_fit(monkeypatch):
    monkeypatch.setenv(streaming.RAM_LIMIT_ENV, "2")  # MB
    assert streaming.decoded_bytes(1000, 32) == 3_072_000
    assert streaming.should_stream(1000, 32)
    assert not streaming.should_stream(600, 32)
    monkeypatch.delenv(streaming.RAM_LIMIT_ENV)
    assert streaming.ram_limit_bytes() == int(streaming.physical_memory() * 0.25)
    assert streaming.physical_memory() > 256 * 1024**2


def test_a_folder_over_the_limit_streams(image_folder, monkeypatch):
    monkeypatch.setenv(streaming.RAM_LIMIT_ENV, "0.01")  # 10 KB: everything streams
    reports = []
    ds = load_dataset(str(image_folder), 32, 0.25, state=TaskState(reports.append))
    assert isinstance(ds.train.images, streaming.StreamedImages)
    assert isinstance(ds.val.images, streaming.StreamedImages)
    assert any(r.stage == "Checking images" and r.done == r.total == 38 for r in reports)
    assert "stream from disk" in ds.describe()
    assert len(ds.train.images) == len(ds.train.labels) and ds.train.images.shape[1:] == \
        (3, 32, 32)
    monkeypatch.delenv(streaming.RAM_LIMIT_ENV)
    assert isinstance(load_dataset(str(image_folder), 32, 0.25).train.images, torch.Tensor)


def test_streamed_batches_hold_the_same_pixels_as_decoded_ones(image_folder):
    whole = (image_folder / "class_2" / "000.jpg").read_bytes()
    (image_folder / "class_2" / "late.jpg").write_bytes(whole[: len(whole) * 4 // 5])
    layout = find_layout(image_folder)
    files = list_files(layout.train_root, layout.classes)
    decoded = decode_files(files, 32, TaskState())
    streamed = streaming.stream_files(files, 32, TaskState())
    # the header check skips what is no image at all, or cut before its size, with why
    why = {os.path.basename(p): reason for p, reason in streamed.skipped}
    assert sorted(why) == ["broken.jpg", "notes.jpg"] and why["notes.jpg"] == "not an image"
    # a JPEG cut near its end passes the header check; decoding fails later: shown black
    paths = streamed.images.paths
    broken = [i for i, p in enumerate(paths) if p.endswith("late.jpg")]
    assert len(broken) == 1
    good = torch.tensor([i for i in range(len(paths)) if i not in broken])
    assert torch.equal(streamed.images[good], decoded.images)  # same files, same order
    assert torch.equal(streamed.labels[good], decoded.labels)
    assert streamed.images[broken[0]].sum() == 0
    assert list(streamed.images.failed) == [paths[broken[0]]]
    sub = streaming.take(streamed.images, good[:5])  # a subset stays streamed
    assert isinstance(sub, streaming.StreamedImages) and torch.equal(
        sub[torch.arange(5)], decoded.images[:5])


@pytest.mark.slow
def test_streamed_training_runs_and_writes_no_decoded_cache(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "data", per_class=8)
    monkeypatch.setenv(streaming.RAM_LIMIT_ENV, "0.01")
    events = EventCollector()
    cfg = TrainConfig(model="mobilenet_v2", weights="none", data=str(folder), epochs=1,
                      freeze_epochs=0, image_size=32, batch_size=6, val_split=0.25)
    result = Trainer(cfg, [events], run_dir=tmp_path / "run").fit()
    assert result.status == "finished" and len(result.history) == 1
    assert any("stream from disk" in e.message for e in events.of(LogLine))
    assert not list((cache_dir() / "decoded").glob("*.pt"))  # nothing decoded in bulk


def test_limit_keeps_a_streamed_subset(image_folder, monkeypatch):
    monkeypatch.setenv(streaming.RAM_LIMIT_ENV, "0.01")
    ds = load_dataset(str(image_folder), 32, 0.25, limit=9)
    assert isinstance(ds.train.images, streaming.StreamedImages)
    assert len(ds.train.images) == len(ds.train.labels) == 9


def _decode(folder):
    layout = find_layout(folder)
    return decode_files(list_files(layout.train_root, layout.classes), 40, TaskState())


def test_the_decoded_cache_keeps_under_its_cap_and_evicts_the_least_recently_used(
        tmp_path, monkeypatch):
    folders = [make_folder(tmp_path / f"d{i}", classes=2, per_class=6 + i) for i in range(4)]
    store = cache_dir() / "decoded"
    _decode(folders[0])
    one = max(size for _, size, _ in disk_cache.entries(store))
    monkeypatch.setenv(disk_cache.CAP_ENV, str(2.9 * one * 1.1 / 1024**2))  # ~2 entries fit
    _decode(folders[1])
    a, b = [p for _, _, p in disk_cache.entries(store)]
    hour_ago = time.time() - 3600
    os.utime(a, (hour_ago, hour_ago))  # d0 used an hour ago, d1 half an hour ago
    os.utime(b, (hour_ago + 1800, hour_ago + 1800))
    _decode(folders[0])  # a hit: d0 becomes the most recently used
    _decode(folders[2])  # over the cap: the least recently used (d1) goes
    left = {p for _, _, p in disk_cache.entries(store)}
    assert a in left and b not in left and len(left) == 2
    assert sum(s for _, s, _ in disk_cache.entries(store)) <= disk_cache.cap_bytes()
    again = _decode(folders[1])  # evicted means decoded again, never wrong
    assert len(again.labels) == 14


def test_an_entry_bigger_than_the_cap_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setenv(disk_cache.CAP_ENV, "0.001")
    split = _decode(make_folder(tmp_path / "d", classes=2, per_class=6))
    assert len(split.labels) == 12
    assert disk_cache.entries(cache_dir() / "decoded") == []
