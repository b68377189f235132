"""The split record (split.json): a run records which images it trains and validates on when it
starts; evaluating its validation split and resuming it use the record, not a new split of the
folder as it is now, and say which recorded files are gone and which are new. Folders,
archives and the built-in sets (CIFAR: indices)."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

from core.config import TrainConfig
from core.errors import TransferLabError
from core.events import EventCollector, LogLine
from core.frontends.cli import main
from core.inference.evaluate import evaluate_model
from core.progress import TaskState
from core.runs import RunRecord, layout
from core.runs.split import SplitRecord, load_split, to_record
from core.training.trainer import Trainer
from tests.conftest import COLORS, clone_run, make_folder, make_image, tiny_config


def _files(run: Path, role: str) -> set[str]:
    body = json.loads((run / layout.SPLIT_FILE).read_text())
    return {e[0] for e in body["listed"] + body["held_out"] if e[3] == role}


def _add_images(data: Path, n: int = 4) -> None:
    """New images in every class: a fresh seeded split of the folder would now differ."""
    for c, cls in enumerate(sorted(p.name for p in data.iterdir())):
        for i in range(n):
            make_image(data / cls / f"new-{i}.jpg", COLORS[c], seed=500 + 10 * c + i)


def test_a_run_records_its_split_when_it_starts(trained_run, tmp_path):
    body = json.loads((trained_run / layout.SPLIT_FILE).read_text())
    data = Path(json.loads((trained_run / layout.CONFIG_FILE).read_text())["data"])
    assert body["counts"] == {"train": 18, "val": 6, "unused": 0, "skipped": 0}
    for rel, size, label, role in body["listed"]:
        assert (data / rel).stat().st_size == size and rel.startswith(f"class_{label}/")
    record = RunRecord(trained_run).split
    assert record.assignment().count("val") == 6
    tampered = tmp_path / layout.SPLIT_FILE
    tampered.write_text(json.dumps(dict(body, listed=body["listed"][:-1])))
    with pytest.raises(TransferLabError, match="damaged"):
        SplitRecord.read(tampered)


def test_evaluate_uses_the_recorded_validation_files_and_says_what_changed(trained_run,
                                                                           tmp_path, capsys):
    run, data = clone_run(trained_run, tmp_path)
    recorded = _files(run, "val")
    gone = sorted(recorded)[0]
    (data / gone).unlink()
    _add_images(data)
    ev = evaluate_model(run / layout.MODEL_FILE)
    assert {Path(r.path).relative_to(data).as_posix() for r in ev.images} == recorded - {gone}
    assert f"1 file of the run's split is gone ({Path(gone).name})" in ev.split_note
    assert "12 new files in the data" in ev.split_note and "not used" in ev.split_note
    assert main(["evaluate", str(run / layout.MODEL_FILE)]) == 0
    assert "note: 1 file of the run's split is gone" in capsys.readouterr().out


def test_a_run_without_a_record_says_its_split_was_made_again(trained_run, tmp_path):
    run, _ = clone_run(trained_run, tmp_path)
    (run / layout.SPLIT_FILE).unlink()
    ev = evaluate_model(run / layout.MODEL_FILE)
    assert len(ev.images) == 6 and ev.split_note.startswith("This run has no split record")


def test_resume_trains_on_the_recorded_split(trained_run, tmp_path):
    run, data = clone_run(trained_run, tmp_path)
    _add_images(data)
    events = EventCollector()
    trainer = Trainer(tiny_config(data, epochs=3, ema=0.9), [events], run_dir=run,
                      resume=True)
    assert trainer.fit().status == "finished"
    val = {Path(p).relative_to(data).as_posix() for p in trainer.data.val_paths}
    assert val == _files(run, "val") and len(trainer.data.train.labels) == 18
    notes = [e.message for e in events.of(LogLine) if "not part of the run's split" in e.message]
    assert notes and "12 new files" in notes[0]


def test_the_evaluate_tab_says_when_validation_files_are_gone(qtbot, trained_run, tmp_path):
    from gui.evaluate_tab import EvaluateTab

    run, data = clone_run(trained_run, tmp_path)
    for rel in sorted(_files(run, "val"))[:2]:
        (data / rel).unlink()
    tab = EvaluateTab()
    qtbot.addWidget(tab)
    tab.set_torch_ready()
    tab.set_model(str(run / layout.MODEL_FILE))
    tab.set_data(None)  # the run's validation split
    tab.evaluate()
    qtbot.waitUntil(lambda: tab.worker is None, timeout=60_000)
    assert "Evaluated 4 images" in tab.message.text()
    assert "2 files of the run's split are gone" in tab.message.text()


def _round_trip(ds, source: str, tmp_path: Path):
    path = tmp_path / layout.SPLIT_FILE
    path.write_text(json.dumps(to_record(ds.assignment, source)))
    record = SplitRecord.read(path)
    cfg = TrainConfig(data=source, image_size=32)
    return record, *load_split(record, cfg, TaskState())


def test_an_archives_split_is_recorded_inside_it_and_loads_again(tmp_path):
    from core.data.datasets import load_dataset

    folder = make_folder(tmp_path / "src" / "pets", classes=2, per_class=6)
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="pets")
    ds = load_dataset(str(archive), 32, 0.25, seed=3)
    record, again, check = _round_trip(ds, str(archive), tmp_path)
    assert [e[0] for e in record.body["listed"]][:2] == ["class_0/000.jpg", "class_0/001.jpg"]
    assert not check.differs and again.val_paths == ds.val_paths
    assert torch.equal(again.train.images, ds.train.images)
    assert torch.equal(again.val.labels, ds.val.labels)


def test_a_builtin_sets_split_is_its_indices(tmp_path, monkeypatch):
    from core.data.datasets import load_dataset
    from tests.test_data import serve_fake_cifar10

    serve_fake_cifar10(tmp_path, monkeypatch)  # 20 training, 4 test images
    ds = load_dataset("cifar10", 32, seed=1, limit=8)
    record, again, check = _round_trip(ds, "cifar10", tmp_path)
    counts = json.loads((tmp_path / layout.SPLIT_FILE).read_text())["counts"]
    assert record.body["train_size"] == 20 and counts["train"] == 8
    assert sum(hi - lo for lo, hi in record.body["train_ranges"]) == 8
    assert not check.differs
    assert torch.equal(again.train.images, ds.train.images)
    assert torch.equal(again.val.images, ds.val.images)
