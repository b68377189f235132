"""Saves are atomic and durable: the one helper every writer uses (core.paths.atomic_path)
flushes the temp file before renaming it and the folder after, and no file of a run folder
is written any other way.

``os.fsync`` is observed, not replaced: each call is recorded as the path its descriptor
names at that moment (Linux's /proc/self/fd), then the real fsync runs.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.paths import atomic_path, write_text_atomic
from core.runs.layout import LOCK_FILE
from tests.conftest import tiny_config

needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="reads which file a descriptor names from /proc")


@pytest.fixture
def fsyncs(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = os.fsync

    def recording(fd):
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


def synced_temp_of(calls: list[str], target: Path) -> int:
    """Index of the fsync of ``target``'s temp file (.NAME.<pid>-<id>.tmp beside it)."""
    for i, path in enumerate(calls):
        p = Path(path)
        if p.parent == target.parent and p.name.startswith(f".{target.name}.") \
                and p.name.endswith(".tmp"):
            return i
    raise AssertionError(f"{target.name} was never flushed through a temp file: {calls}")


@needs_proc
def test_the_temp_file_is_flushed_before_the_rename_and_the_folder_after(tmp_path, fsyncs):
    target = tmp_path / "new" / "model.json"
    write_text_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    first = synced_temp_of(fsyncs, target)
    # the folder holding the rename, then (new folder) its parent, both after the file
    assert fsyncs[first + 1:] == [str(target.parent), str(tmp_path)]


@needs_proc
def test_a_failed_write_flushes_nothing_and_keeps_the_old_file(tmp_path, fsyncs):
    target = tmp_path / "checkpoint.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and fsyncs == []
    assert not list(tmp_path.glob(".*.tmp"))


@needs_proc
def test_every_file_of_a_run_folder_is_written_durably(image_folder, tmp_path, fsyncs):
    from core.training.trainer import Trainer

    run = tmp_path / "run"
    result = Trainer(tiny_config(image_folder, epochs=1, freeze_epochs=0, precision="32"),
                     run_dir=run).fit()
    assert result.status == "finished"
    # (training.lock is the lock's own file, not a saved result: filelock keeps it)
    files = sorted(p for p in run.iterdir() if p.is_file() and p.name != LOCK_FILE)
    assert {"config.json", "checkpoint.pt", "model.pt", "metrics.csv"} <= {p.name for p in files}
    for path in files:  # each one through a flushed temp file, the folder flushed after it
        i = synced_temp_of(fsyncs, path)
        assert str(run) in fsyncs[i + 1:], f"{path.name}: folder not flushed after the rename"
