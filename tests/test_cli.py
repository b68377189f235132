import subprocess
import sys

import pytest
import torch

from core.frontends.cli import main
from tests.conftest import REPO, make_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run through the real entry point (a subprocess, as a user would run it)."""
    tmp = tmp_path_factory.mktemp("cli")
    folder = make_folder(tmp / "shapes")
    run = tmp / "run"
    env = {"TRANSFERLAB_HOME": str(tmp / "home"), "TRANSFERLAB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "train", "--model", "mobilenet_v2",
         "--weights", "none", "--data", str(folder), "--epochs", "2", "--freeze-epochs", "1",
         "--image-size", "32", "--batch-size", "8", "--out", str(run), "--log-every", "2"],
        capture_output=True, text=True, env=env, timeout=240)
    return proc, folder, run


def test_train_prints_the_lessons_lines(trained):
    proc, _, run = trained
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Epoch 1 End | Train Loss: " in out and "| Train Acc: " in out and "| Val Acc: " in out
    assert "Epoch [1/2], Step [2/5], Loss: " in out  # 33 images: ceil(33/8) batches
    assert "Start: frozen " in out and "backbone unfrozen, LR x0.1" in out
    assert (run / "model.pt").exists() and (run / "checkpoint.pt").exists()


def test_predict_and_evaluate(trained, capsys):
    _, folder, run = trained
    assert main(["predict", str(run / "model.pt"), str(folder / "class_1"), "--topk", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 12
    path, c1, p1, c2, p2 = lines[0].split("\t")
    assert path.endswith("000.jpg") and float(p1) >= float(p2)
    assert main(["evaluate", str(run / "model.pt"), "--data", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("accuracy: ")
    assert "class_2" in out.splitlines()[0]


def run_error(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    return err


def test_bad_input_gives_one_clear_line(tmp_path, trained, capsys):
    _, folder, run = trained
    assert "Data folder not found" in run_error(
        ["train", "--data", str(tmp_path / "nope"), "--weights", "none"], capsys)
    (tmp_path / "empty").mkdir()
    assert "no class folders" in run_error(
        ["train", "--data", str(tmp_path / "empty"), "--weights", "none"], capsys)
    make_folder(tmp_path / "one", classes=1, per_class=2)
    assert "only one class" in run_error(
        ["train", "--data", str(tmp_path / "one"), "--weights", "none"], capsys)
    assert "--lr must be positive" in run_error(["train", "--lr", "-1"], capsys)
    text = tmp_path / "a.txt"
    text.write_text("hello")
    code = main(["predict", str(run / "model.pt"), str(text)])
    assert code == 2 and "skipped: not an image" in capsys.readouterr().out
    assert "Model file not found" in run_error(["predict", str(tmp_path / "x.pt"), str(text)],
                                                capsys)


def test_model_file_of_another_architecture(tmp_path, trained, capsys):
    _, folder, run = trained
    payload = torch.load(run / "model.pt", weights_only=True)
    payload["arch"] = "resnet18"
    torch.save(payload, tmp_path / "wrong.pt")
    assert "does not match the resnet18 architecture" in run_error(
        ["predict", str(tmp_path / "wrong.pt"), str(folder)], capsys)
    torch.save(payload["state_dict"], tmp_path / "plain.pt")
    assert "not a TransferLab model" in run_error(
        ["evaluate", str(tmp_path / "plain.pt"), "--data", str(folder)], capsys)


def test_unknown_model_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "vgg99"])
    assert exc.value.code == 2 and "invalid choice: 'vgg99'" in capsys.readouterr().err


def test_resume_from_the_cli(trained, capsys):
    _, folder, run = trained
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "Resuming" in out and "Epoch 3 End" in out and "Epoch 2 End" not in out


def test_a_run_folder_that_cannot_be_written(trained, capsys, tmp_path):
    _, folder, _ = trained
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the run folder's parent should be")
    err = run_error(["train", "--data", str(folder), "--weights", "none",
                     "--out", str(blocker / "run")], capsys)
    assert "Cannot create the run folder" in err


def test_a_write_that_fails_midway_keeps_the_old_file(tmp_path, monkeypatch):
    """The same target, a write that dies half-way (a full disk): the old text survives."""
    import errno
    import os
    import pathlib

    from core.errors import TransferLabError
    from core.paths import write_text_atomic

    target = tmp_path / "metrics.csv"
    write_text_atomic(target, "old")
    real = pathlib.Path.write_text

    def dies_midway(self, text, *args, **kw):
        real(self, text[: len(text) // 2], *args, **kw)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_text", dies_midway)
    with pytest.raises(TransferLabError, match="Cannot write .*metrics.csv: No space left"):
        write_text_atomic(target, "new and longer")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temp file left
    write_text_atomic(target, "new and longer")  # and the same call works once it can
    assert target.read_text() == "new and longer"


def test_a_write_under_a_file_is_refused_and_changes_nothing(tmp_path):
    from core.errors import TransferLabError
    from core.paths import write_text_atomic

    blocker = tmp_path / "metrics.csv"
    write_text_atomic(blocker, "old")
    with pytest.raises(TransferLabError, match="Cannot write"):
        write_text_atomic(blocker / "sub" / "x.csv", "new")
    assert blocker.read_text() == "old"
