"""The files TransferLab writes are taken by its own commands (issue 20, item 13), and an
export says what it is doing and can be cancelled (issue 24, item 7)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from core.frontends.cli import main
from core.progress import Cancelled, TaskState


def test_predict_and_evaluate_take_the_exported_files(parity_run, capsys, tmp_path):
    run_dir, odd = parity_run
    for f in ("model.onnx", "model.pt2"):
        assert main(["predict", str(run_dir / f), str(odd / "green" / "plain.jpg")]) == 0
        assert capsys.readouterr().out.split("\t")[1] in ("red", "green")
        assert main(["evaluate", str(run_dir / f), "--data", str(odd)]) == 0
        out = capsys.readouterr().out
        assert "accuracy:" in out and f"evaluation-folder-odd-{f}.csv" in out
    # outside its run folder an exported file evaluates a folder, and says what else it needs
    alone = tmp_path / "alone.onnx"
    shutil.copy(run_dir / "model.onnx", alone)
    assert main(["evaluate", str(alone)]) == 2
    assert "give --data FOLDER" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["model.onnx", "model.pt2"])
def test_export_of_an_exported_file_names_it_and_the_right_command(parity_run, capsys,
                                                                  tmp_path, name):
    run_dir, _ = parity_run
    assert main(["export", str(run_dir / name), "--format", "pt2", "--out",
                 str(tmp_path / "again.pt2")]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "damaged" not in err
    assert "is an exported" in err and "needs the model.pt it was exported from" in err
    assert not (tmp_path / "again.pt2").exists()


def test_a_checkpoint_is_named_as_such(parity_run, capsys):
    run_dir, odd = parity_run
    assert main(["predict", str(run_dir / "checkpoint.pt"), str(odd)]) == 2
    assert "is a training checkpoint" in capsys.readouterr().err


def test_model_pt_records_the_weights_own_preprocessing(parity_run):
    """EfficientNet-Lite0's timm config: bicubic, mean/std 0.5; trained on 24 px squares
    (the data's own size) enlarged to 32 px by the network."""
    from timm.data import resolve_data_config

    import timm

    run_dir, _ = parity_run
    pre = torch.load(run_dir / "model.pt", weights_only=True)["preprocessing"]
    timm_cfg = resolve_data_config(pretrained_cfg=timm.get_pretrained_cfg(
        "tf_efficientnet_lite0").to_dict())
    assert pre["interpolation"] == timm_cfg["interpolation"] == "bicubic"
    assert tuple(pre["mean"]) == timm_cfg["mean"] and tuple(pre["std"]) == timm_cfg["std"]
    assert (pre["image_size"], pre["crop_size"], pre["resize_size"]) == (32, 24, 24)
    meta = json.loads((run_dir / "model.onnx.json").read_text())
    assert meta["preprocessing"]["interpolation"] == "bicubic"
    assert meta["input"]["shape"] == ["batch", 3, 24, 24]


@pytest.mark.slow
def test_export_reports_its_steps_and_stops_when_cancelled(parity_run, tmp_path):
    from core.inference.export import STEP_EXPORT, STEP_IMAGES, STEP_VERIFY, export_model

    run_dir, _ = parity_run
    events = []
    export_model(run_dir / "model.pt", "onnx", tmp_path / "m.onnx", log=lambda _: None,
                 state=TaskState(on_progress=events.append))
    stages = [e.stage for e in events]
    assert stages[0] == STEP_IMAGES and f"{STEP_EXPORT} to ONNX" in stages
    verify = [(e.done, e.total) for e in events if e.stage == STEP_VERIFY]
    assert verify[0] == (0, 16) and verify[-1] == (16, 16) and len(verify) == 17

    state = TaskState()

    def cancel_while_reading(event):  # (the Evaluate tab's test cancels mid-export)
        if event.stage == STEP_IMAGES and event.done == 3:
            state.cancel()

    state.on_progress = cancel_while_reading
    with pytest.raises(Cancelled):
        export_model(run_dir / "model.pt", "pt2", tmp_path / "c.pt2", log=lambda _: None,
                     state=state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]


def test_the_evaluate_tab_shows_export_steps_and_cancels(parity_run, qtbot, tmp_path):
    from gui.evaluate_tab import EvaluateTab

    run_dir, _ = parity_run
    tab = EvaluateTab()
    qtbot.addWidget(tab)
    tab.torch_ready = True
    tab.set_model(str(run_dir / "model.pt"))
    tab.export_to(str(tmp_path / "m.pt2"), "pt2")
    qtbot.waitUntil(lambda: tab.message.text().startswith("Exporting to torch.export"),
                    timeout=120_000)
    tab.cancel_button.click()
    assert tab.message.text().startswith("Cancelled")
    qtbot.waitUntil(lambda: tab.worker is None, timeout=120_000)
    assert tab.message.text().startswith("Cancelled") and tab.export_button.isEnabled()
    assert list(tmp_path.iterdir()) == []
