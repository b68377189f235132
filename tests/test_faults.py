"""Faults: a training process killed with SIGKILL, saves killed at random moments, a loss
that diverges, a disk that fills up. Each one must leave a run folder that loads and resumes."""
import errno
import json
import hashlib
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch

from core.errors import TransferLabError
from core.events import BatchEnd, EventCollector
from core.frontends.cli import main
from core.runs import read_batches, read_metrics
from core.runs.listing import summarize
from core.runs.store import RunStore
from core.training.trainer import Trainer
from tests.conftest import REPO, make_folder, tiny_config

sys.path.insert(0, str(REPO / "scripts"))
import kill_saves  # noqa: E402

pytestmark = pytest.mark.slow  # killed processes and full disks: `make test-slow` (CI runs it too)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_files(run):
    return {p.name: digest(p) for p in sorted(run.iterdir()) if p.is_file()}


# --- kill -9 mid-epoch, then --resume ----------------------------------------------------
def _train_cmd(*args):
    return [sys.executable, "-u", str(REPO / "main.py"), "train", *args]


def test_sigkill_mid_epoch_then_resume_is_one_continuous_run(tmp_path, qtbot):
    folder = make_folder(tmp_path / "data", per_class=20)  # 45 train images: 12 batches of 3-4
    run = tmp_path / "run"
    env = {"TRANSFERLAB_HOME": str(tmp_path / "home"), "TRANSFERLAB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen(
        _train_cmd("--model", "mobilenet_v2", "--weights", "none", "--data", str(folder),
                   "--epochs", "3", "--freeze-epochs", "1", "--image-size", "32",
                   "--batch-size", "4", "--val-split", "0.25", "--log-every", "1",
                   "--out", str(run)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    watchdog = threading.Timer(420, proc.kill)  # a hung child fails the test, never the suite
    watchdog.start()
    seen = []
    try:
        for line in proc.stdout:  # the signal: the log line of epoch 2's third batch
            seen.append(line)
            if line.startswith("Epoch [2/3], Step [3/"):
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait()
    finally:
        watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 0  # killed inside epoch 2: epoch 1's checkpoint is the last
    assert [h["epoch"] for h in read_metrics(run)] == [1]
    # the engine recorded "running"; its process is gone, so the runs list says failed
    assert json.loads((run / "status.json").read_text())["status"] == "running"
    killed = summarize(run)
    assert (killed.status, killed.epochs) == ("failed", 1)
    assert "killed or crashed" in killed.status_message

    resumed = subprocess.run(_train_cmd("--out", str(run), "--resume"), capture_output=True,
                             text=True, env=env, timeout=420)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(run.glob(".*.tmp"))  # nothing a killed save might have left
    out = resumed.stdout
    assert "Resuming" in out and "after epoch 1" in out
    assert "Epoch 1 End" not in out and "Epoch 2 End" in out and "Epoch 3 End" in out
    assert [h["epoch"] for h in read_metrics(run)] == [1, 2, 3]
    assert summarize(run).status == "finished"
    assert summarize(run).date == killed.date  # when the run first started
    batches = [(b["epoch"], b["batch"]) for b in read_batches(run)]
    # 45 images in ceil(45 / 4) = 12 batches an epoch: no gap, no repeat
    assert batches == [(e, b) for e in (1, 2, 3) for b in range(1, 13)]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2 and [h["epoch"] for h in ck["history"]] == [1, 2, 3]
    changes = ck["callbacks"]["FreezeSchedule"]["changes"]
    assert [c["reason"] for c in changes][-1] in ("schedule", "resume")
    # the reopened run's charts: one line through epochs 1-3, batches in order
    from gui.train_tab import TrainTab

    tab = TrainTab(lambda: None)
    qtbot.addWidget(tab)
    tab.show_run(str(run), read_metrics(run), read_batches(run))
    assert list(tab.charts.curves["train_loss"].getData()[0]) == [1.0, 2.0, 3.0]
    xs = list(tab.charts.curves["batch_raw"].getData()[0])
    assert len(xs) == 36 and all(a < b for a, b in zip(xs, xs[1:]))


# --- saves killed at random moments ------------------------------------------------------
def test_saves_killed_at_random_moments_leave_only_whole_files(tmp_path):
    """The short version of scripts/kill_saves.py (which kills hundreds of times)."""
    run = tmp_path / "run"
    stats = kill_saves.kill_many(run, kills=12, max_delay=0.05, n=200_000, seed=1)
    assert stats["kills"] == 12 and stats["problems"] == []
    (run / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"PK\x03\x04 half a zip")  # as a kill leaves
    (run / ".notes.txt.keep.tmp").write_text("not ours")
    removed = RunStore(run, resume=True).removed_temps  # resuming cleans up
    assert ".checkpoint.pt.k1ll3d.tmp" in removed and len(removed) == len(
        stats["stale_temp_files"]) + 1
    assert [p.name for p in run.glob(".*.tmp")] == [".notes.txt.keep.tmp"]
    assert kill_saves.check_folder(run) == []


def test_the_kill_checker_catches_a_torn_file(tmp_path):
    """check_folder must flag what a non-atomic save would leave: a cut-off checkpoint."""
    run = tmp_path / "run"
    kill_saves.save_round(RunStore(run), 5, 1000)
    assert kill_saves.check_folder(run) == []
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    (run / "metrics.csv").write_text("epoch,phase\n1,fro")
    problems = kill_saves.check_folder(run)
    assert any(p.startswith("checkpoint.pt") for p in problems)
    assert any(p.startswith("metrics.csv") for p in problems)


# --- a loss that diverges ----------------------------------------------------------------
def tiny(folder, **kw):
    return tiny_config(folder, **{"epochs": 1, "freeze_epochs": 0, **kw})


def test_a_diverging_loss_stops_and_keeps_the_last_good_files(image_folder, tmp_path):
    run = tmp_path / "r"
    Trainer(tiny(image_folder), run_dir=run).fit()
    before = run_files(run)
    good = torch.load(run / "checkpoint.pt", weights_only=True)
    # resume with an absurd learning rate: Adam's first step moves every weight by ~1e38
    # (a resume continues the run as recorded, so the record is what says so here)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(dict(config, lr=1e38)))
    events = EventCollector()
    diverging = Trainer(tiny(image_folder, epochs=2, lr=1e38), [events], run_dir=run,
                        resume=True)
    result = diverging.fit()
    assert result.status == "failed"
    assert "diverged" in result.message and "epoch 2" in result.message
    assert "lower learning rate" in result.message
    assert len(events.of(BatchEnd)) >= 1  # it did train in epoch 2 before stopping
    in_memory = [p.detach().abs().max() for p in diverging.model.parameters()]
    assert max(in_memory) > 1e30  # the weights in memory are ruined...
    after = run_files(run)
    for name in ("checkpoint.pt", "model.pt", "metrics.csv", "batches.csv"):
        assert after[name] == before[name], name  # ...the saved files are untouched
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == good["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values() if v.is_floating_point())
    from core.inference.predict import load_model_file, predict_paths

    lm = load_model_file(run / "model.pt")
    [r] = predict_paths(lm, [image_folder / "class_0" / "000.jpg"], topk=3)
    assert r.topk and all(0 <= p <= 1 for _, p in r.topk)


# --- a full disk ---------------------------------------------------------------------------
class _FullDisk:
    """A file object that takes ``room`` bytes and then fails as a full disk does."""

    def __init__(self, path, room):
        self.f, self.room = open(path, "wb"), room

    def write(self, data):
        if len(data) > self.room:
            self.f.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()


def test_a_checkpoint_save_that_hits_a_full_disk_keeps_the_old_one(tmp_path, monkeypatch):
    import torch.serialization as ser

    store = RunStore(tmp_path / "run")
    store.save_checkpoint({"epoch": 1, "w": torch.arange(1000.0)})
    old = digest(store.checkpoint_path)
    # torch.save writes through our file object, which runs out of room after 2 KB
    monkeypatch.setattr(ser, "_open_zipfile_writer",
                        lambda name: ser._open_zipfile_writer_buffer(_FullDisk(name, 2048)))
    with pytest.raises(TransferLabError) as err:
        store.save_checkpoint({"epoch": 2, "w": torch.arange(100_000.0)})
    message = str(err.value)
    assert message.startswith(f"Cannot write {store.checkpoint_path}")
    assert message.endswith("The previous checkpoint.pt is unchanged.")
    assert "\n" not in message
    monkeypatch.undo()
    assert digest(store.checkpoint_path) == old
    assert torch.load(store.checkpoint_path, weights_only=True)["epoch"] == 1
    assert not list((tmp_path / "run").glob(".*.tmp"))  # the partial temp file is gone


def test_a_metrics_write_that_hits_a_full_disk_is_one_clear_error(tmp_path, monkeypatch):
    import pathlib

    store = RunStore(tmp_path / "run")
    store.write_metrics([{"epoch": 1}], [])
    old = (tmp_path / "run" / "metrics.csv").read_text()
    real = pathlib.Path.write_text

    def full(self, text, *a, **k):
        real(self, text[:10], *a, **k)  # part of it lands, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(TransferLabError, match="No space left on device. The previous "
                                               "metrics.csv is unchanged"):
        store.write_metrics([{"epoch": 1}, {"epoch": 2}], [])
    monkeypatch.undo()
    assert (tmp_path / "run" / "metrics.csv").read_text() == old
    assert not list((tmp_path / "run").glob(".*.tmp"))


@pytest.fixture
def small_disk(tmp_path):
    """A real 96 MB tmpfs (a run here peaks at ~63 MB) (needs mount rights: root in a container that allows it)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'not root'}); "
                    f"the fault-injecting writer tests above cover the same code")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder):
    """Fill the file system holding ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_training_onto_a_full_disk_says_so_and_loses_nothing(small_disk, image_folder,
                                                             capsys):
    run = small_disk / "run"
    args = ["train", "--model", "mobilenet_v2", "--weights", "none", "--data",
            str(image_folder), "--epochs", "1", "--freeze-epochs", "0", "--image-size", "32",
            "--batch-size", "8", "--val-split", "0.25", "--out", str(run)]
    assert main(args) == 0
    before = run_files(run)
    filler = _fill(small_disk)
    capsys.readouterr()
    code = main(["train", "--out", str(run), "--resume", "--epochs", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: Cannot write ") and "Traceback" not in err
    assert "the disk is full" in err or "No space left on device" in err
    assert len(err.strip().splitlines()) == 1
    assert run_files(run) == before and not list(run.glob(".*.tmp"))
    # room for config.json but not for a checkpoint: the save at the end of epoch 2 fails
    filler.unlink()
    reserve = small_disk / "reserve"
    reserve.write_bytes(b"\0" * 65536)
    filler = _fill(small_disk)
    reserve.unlink()
    code = main(["train", "--out", str(run), "--resume", "--epochs", "2"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: Cannot write {run}/") and ".pt: the disk is full" in err
    assert err.strip().endswith("is unchanged.")
    after = run_files(run)
    for name in ("checkpoint.pt", "model.pt", "metrics.csv", "batches.csv"):
        assert after[name] == before[name], name
    assert not list(run.glob(".*.tmp"))
    filler.unlink()  # room again: the same command continues the run
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    assert [h["epoch"] for h in read_metrics(run)] == [1, 2]
