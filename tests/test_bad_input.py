"""Bad input (issue 12): wrong files and options are refused in one line, prediction keeps
every readable image, and nothing saved is lost (images themselves: test_bad_images.py)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import TrainConfig
from core.data.datasets import load_dataset
from core.errors import TransferLabError
from core.frontends.cli import main
from core.inference.predict import load_model_file, predict_paths
from core.models import build_model
from core.models.model_file import MODEL_VERSION, model_payload
from core.preprocess import Preprocessing
from tests.conftest import make_folder, make_image, png_bomb


# --- helpers --------------------------------------------------------------------------------
def run_error(argv, capsys) -> str:
    """A CLI call that must end with exactly one 'error:' line and exit code 2."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "usage:" not in err
    return err


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A real model.pt (random weights, 2 classes, 32 px) written the way training writes it."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    model, _, _ = build_model("mobilenet_v2", "none", 2)
    pre = Preprocessing(32, 32).to_dict()
    torch.save(model_payload("mobilenet_v2", model, ["cat", "dog"], pre, {}, {}), path)
    return path



def test_negative_limit_is_refused_by_the_loader(tmp_path):
    with pytest.raises(TransferLabError, match="--limit must be at least 1"):
        load_dataset(str(make_folder(tmp_path / "d", classes=2, per_class=3)), 32, limit=-5)


@pytest.mark.parametrize("argv, words", [
    (["--lr", "inf"], "--lr must be positive and finite"),
    (["--lr", "nan"], "--lr must be positive and finite"),
    (["--limit", "-5"], "--limit must be at least 1"),
    (["--threads", "-1"], "--threads must be at least 1"),
    (["--label-smoothing", "2"], "--label-smoothing must be in [0, 1)"),
    (["--weight-decay", "-0.1"], "--weight-decay must be in [0, 1]"),
    (["--unfreeze-lr-factor", "inf"], "--unfreeze-lr-factor must be positive and finite"),
    (["--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_bad_training_options_are_one_line(argv, words, capsys):
    assert words in run_error(["train", "--weights", "none", *argv], capsys)


def test_label_smoothing_just_below_one_is_valid():
    TrainConfig(label_smoothing=0.99).validate()
    with pytest.raises(TransferLabError):
        TrainConfig(label_smoothing=1.0).validate()


def test_evaluate_batch_size_zero_and_a_missing_command(capsys, model_file, tmp_path):
    err = run_error(["evaluate", str(model_file), "--data", str(tmp_path), "--batch-size", "0"],
                    capsys)
    assert "--batch-size: must be at least 1, got 0" in err
    assert "the following arguments are required" in run_error([], capsys)


# --- model files ------------------------------------------------------------------------------
def _variant(model_file: Path, tmp_path: Path, change) -> Path:
    payload = torch.load(model_file, weights_only=True)
    change(payload)
    torch.save(payload, tmp_path / "variant.pt")
    return tmp_path / "variant.pt"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo this-must-never-run",))


@pytest.mark.parametrize("make, words", [
    (lambda m, t: _variant(m, t, lambda p: p.pop("classes")), "has no list of class names"),
    (lambda m, t: _variant(m, t, lambda p: p.update(version=MODEL_VERSION + 1)),
     "was saved by a newer TransferLab"),
    (lambda m, t: _variant(m, t, lambda p: p.update(arch="vgg99")), "does not know ('vgg99'"),
    (lambda m, t: _variant(m, t, lambda p: p.update(classes=["a", "b", "c"])),
     "with its 3 classes: 0 missing, 0 unexpected and 2 mis-shaped tensors"),
    (lambda m, t: _variant(m, t, lambda p: p.update(arch="resnet18")),
     "does not match the resnet18 architecture"),
    (lambda m, t: _variant(m, t, lambda p: p.update(preprocessing={"image_size": 1})),
     "has no valid preprocessing"),
    (lambda m, t: _write(t / "cut.pt", m.read_bytes()[:5000]), "damaged, truncated"),
    (lambda m, t: _write(t / "noise.pt", np.random.default_rng(1).bytes(4096)),
     "damaged, truncated"),
    (lambda m, t: _write(t / "empty.pt", b""), "damaged, truncated"),
    (lambda m, t: _save(t / "evil.pt", {"x": _Evil()}), "holds Python objects (posix.system)"),
    (lambda m, t: _save(t / "module.pt", torch.nn.Linear(2, 2)), "holds Python objects"),
])
def test_a_wrong_model_file_is_one_line(model_file, tmp_path, capsys, make, words):
    path = make(model_file, tmp_path)
    err = run_error(["predict", str(path), str(tmp_path)], capsys)
    assert words in err
    assert "weights_only" not in err and "for ResNet:" not in err and "Error(s)" not in err


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def test_weights_of_another_architecture_are_named_in_full(model_file, tmp_path, capsys):
    folder = make_folder(tmp_path / "d", classes=2, per_class=3)
    err = run_error(["train", "--model", "resnet18", "--weights", str(model_file), "--data",
                     str(folder), "--epochs", "1", "--image-size", "32",
                     "--out", str(tmp_path / "run")], capsys)
    assert "does not fit resnet18" in err and "missing" in err and "another architecture" in err


# --- prediction never loses the other images' results ----------------------------------------
def test_one_bomb_in_a_dropped_folder_keeps_every_other_result(model_file, tmp_path):
    folder = make_folder(tmp_path / "drop", classes=2, per_class=3)
    png_bomb(folder / "class_0" / "bomb.png", 30000, 30000)
    results = predict_paths(load_model_file(model_file), [folder], topk=2, batch_size=4)
    assert len(results) == 7
    bombs = [r for r in results if r.error]
    assert [Path(r.path).name for r in bombs] == ["bomb.png"]
    assert "too large" in bombs[0].error
    assert all(len(r.topk) == 2 for r in results if not r.error)


def test_predict_prints_a_non_utf8_name_on_a_strict_utf8_stdout(model_file, tmp_path,
                                                                monkeypatch):
    odd = tmp_path / os.fsdecode(b"caf\xe9.jpg")
    make_image(odd, (200, 30, 30))
    raw = io.BytesIO()
    strict = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", strict)
    assert main(["predict", str(model_file), str(odd)]) == 0
    strict.flush()
    assert b"caf\xe9.jpg\t" in raw.getvalue()  # the name's own bytes, as ls shows them


# --- run folders: nothing saved is lost -------------------------------------------------------
def _fake_run(run: Path, data: str) -> None:
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(TrainConfig(data=data, weights="none").to_dict()))
    (run / "model.pt").write_bytes(b"the old model")


def test_an_existing_run_folder_is_refused_and_left_alone(tmp_path, capsys):
    folder = make_folder(tmp_path / "d", classes=2, per_class=3)
    run = tmp_path / "run"
    _fake_run(run, str(folder))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    err = run_error(["train", "--data", str(folder), "--weights", "none", "--epochs", "1",
                     "--image-size", "32", "--out", str(run)], capsys)
    assert "already holds a training run" in err and "--resume" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("flag, value, key", [("--data", "elsewhere", "data"),
                                              ("--lr", "0.5", "lr")])
def test_resume_refuses_other_data_or_lr(tmp_path, capsys, flag, value, key):
    run = tmp_path / "run"
    _fake_run(run, str(tmp_path / "d"))
    before = (run / "config.json").read_text()
    err = run_error(["train", "--out", str(run), "--resume", flag, value], capsys)
    assert f"{key} is" in err and "Start a new run" in err
    assert (run / "config.json").read_text() == before


@pytest.mark.parametrize("content, words", [
    (b"garbage", "is damaged or not a TransferLab checkpoint"),
    ({"version": 99}, "newer"),
])
def test_a_damaged_or_newer_checkpoint_on_resume_is_one_line(tmp_path, capsys, content,
                                                               words):
    folder = make_folder(tmp_path / "d", classes=2, per_class=3)
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(folder), weights="none", image_size=32, epochs=1,
                      freeze_epochs=0, batch_size=4)
    _fake_run(run, str(folder))
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    if isinstance(content, bytes):
        (run / "checkpoint.pt").write_bytes(content)
    else:
        good = {"epoch": 1, "config": cfg.to_dict(), "classes": ["class_0", "class_1"],
                "state_dict": {}, "optimizer": {}, "history": [], "freeze": "none"}
        torch.save({**good, **content}, run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    assert words in run_error(["train", "--out", str(run), "--resume"], capsys)
    assert (run / "checkpoint.pt").read_bytes() == before


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from core.runs.store import RunStore

    store = RunStore(tmp_path / "run")
    store.save_checkpoint({"epoch": 1})
    real_save = torch.save

    def full_disk(obj, f, *a, **k):  # torch.save reports ENOSPC as a RuntimeError
        real_save(obj, f, *a, **k)
        Path(f).write_bytes(Path(f).read_bytes()[:10])
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 10 vs 64"
                           "\nPytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(TransferLabError, match="previous checkpoint.pt is unchanged") as exc:
        store.save_checkpoint({"epoch": 2})
    assert "\n" not in str(exc.value)
    monkeypatch.undo()
    assert torch.load(store.checkpoint_path, weights_only=True) == {"epoch": 1}
    assert not list(store.dir.glob(".*.tmp"))  # no temp file left


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    from core.paths import write_text_atomic

    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "metrics.csv", "a,b\n")
    finally:
        os.umask(old)
    assert (tmp_path / "metrics.csv").stat().st_mode & 0o777 == mode


def test_a_killed_saves_temp_file_is_removed_at_the_next_save_and_on_resume(tmp_path):
    from core.paths import write_text_atomic
    from core.runs.store import RunStore

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    run = tmp_path / "run"
    run.mkdir()
    left = run / f".checkpoint.pt.{dead}-0a1b2c3d.tmp"  # a save killed mid-write
    older = run / ".model.pt.x7Yq_2ab.tmp"  # the old mkstemp naming
    live = run / f".model.pt.{os.getpid()}-00000000.tmp"  # another save, still running here
    for p in (left, older, live):
        p.write_bytes(b"partial")
    write_text_atomic(run / "checkpoint.pt", "new")
    assert not left.exists() and older.exists() and live.exists()
    (run / "config.json").write_text("{}")
    RunStore(run, resume=True)
    assert not older.exists() and live.exists()



def test_the_inference_tab_names_a_bomb_and_keeps_the_other_results(qtbot, tmp_path,
                                                                    model_file):
    from gui.inference_tab import InferenceTab

    folder = make_folder(tmp_path / "drop", classes=2, per_class=2)
    png_bomb(folder / "class_1" / "bomb.png", 30000, 30000)
    tab = InferenceTab()
    qtbot.addWidget(tab)
    tab.torch_ready = True
    tab._model_loaded(load_model_file(model_file))
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(folder)])
    assert tab.table_model.rowCount() == 4
    assert "bomb.png: too large" in tab.skipped_view.toPlainText()
    tab.shutdown()
