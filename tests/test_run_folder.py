"""The run folder's one home (core.runs): nothing else names its files, RunRecord reads every
part without torch, callbacks keep their own state in the checkpoint (format 3, format 2
still resumes), every setting is checked before the folder exists, a resume never plans
fewer epochs than done, and ``transferlab runs`` lists runs as the Runs view does."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import TransferLabError
from core.frontends.cli import main
from core.runs import RunRecord
from core.runs import layout
from core.training.trainer import Trainer
from tests.conftest import REPO, clone_run, tiny_config

RUN_FILE_NAMES = {layout.CONFIG_FILE, layout.METRICS_FILE, layout.BATCHES_FILE,
                  layout.FREEZE_CHANGES_FILE, layout.STATUS_FILE, layout.LABEL_FILE,
                  layout.SPLIT_FILE, layout.CHECKPOINT_FILE, layout.MODEL_FILE,
                  layout.DECISIONS_FILE, layout.LOCK_FILE}


def _names_a_run_file(text: str) -> bool:
    """A string constant that is a run file's name, a path ending in one, or an evaluation
    file's name (prose that mentions a file, like help texts, is not a name)."""
    text = text.strip()
    return text.startswith(layout.EVALUATION_PREFIX) or any(
        text == name or text.endswith(("/" + name, "\\" + name)) for name in RUN_FILE_NAMES)


def test_no_module_outside_core_runs_names_a_run_file():
    sources = [REPO / "main.py", *sorted((REPO / "core").rglob("*.py")),
               *sorted((REPO / "gui").rglob("*.py"))]
    found = []
    for path in sources:
        if path.is_relative_to(REPO / "core" / "runs"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    _names_a_run_file(node.value):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert len(sources) > 60 and not found, "\n".join(found)
    # the check itself: a literal the old code had is caught
    assert _names_a_run_file("config.json") and _names_a_run_file("/model.pt")
    assert _names_a_run_file("evaluation-val.json")
    assert not _names_a_run_file("a model.pt from a training run")


def test_a_run_record_reads_every_part_without_torch(trained_run):
    code = ("import sys, json; from core.runs import RunRecord; r = RunRecord.open(sys.argv[1]);"
            "print(json.dumps([r.config.model, len(r.history), len(r.batches),"
            " len(r.freeze_changes), r.status['status'], r.split.body['val_source'],"
            " r.has_model, r.has_checkpoint, r.busy, r.evaluations,"
            " 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, str(trained_run)], capture_output=True,
                         text=True, cwd=REPO, check=True).stdout
    assert json.loads(out) == ["mobilenet_v2", 2, 6, 2, "finished", "25% split (seed 0)",
                               True, True, False, [], False]
    with pytest.raises(TransferLabError, match="no config.json"):
        RunRecord.open(trained_run.parent)


# --- callbacks keep their own state -----------------------------------------------------------
def test_the_checkpoint_holds_each_callbacks_state_under_its_name(trained_run):
    ck = torch.load(trained_run / layout.CHECKPOINT_FILE, weights_only=True)
    assert (ck["format"], ck["version"], ck["epoch"]) == ("transferlab-checkpoint", 3, 1)
    callbacks = ck["callbacks"]
    assert set(callbacks) == {"Checkpointing", "FreezeSchedule", "WeightAveraging"}
    assert [c["reason"] for c in callbacks["FreezeSchedule"]["changes"]] == ["start",
                                                                             "schedule"]
    assert callbacks["FreezeSchedule"]["spec"] == "none"  # all unfrozen in epoch 2
    assert callbacks["WeightAveraging"]["step"] == 6  # 3 batches x 2 epochs
    assert callbacks["Checkpointing"]["best_val_acc"] == max(h["val_acc"] for h in ck["history"])
    assert not {"freeze", "freeze_changes", "averaging"} & set(ck)  # (format 2's places)


def test_the_loop_exposes_facts_callbacks_cannot_overwrite(image_folder, tmp_path):
    loop = Trainer(tiny_config(image_folder, epochs=1), run_dir=tmp_path / "r").prepare()
    for name in ("epoch", "history", "run_dir", "start_epoch", "batch_log"):
        with pytest.raises(AttributeError):
            setattr(loop, name, 3)
    loop.history.append({"epoch": 99})  # a copy: the loop's own history is untouched
    assert loop.history == [] and loop.run_dir == str(tmp_path / "r")
    assert not hasattr(loop, "averaging") and not hasattr(loop, "restored_averaging")


def _as_format_2(path: Path) -> None:
    """Rewrite a checkpoint as TransferLab wrote it before callbacks kept their state."""
    ck = torch.load(path, weights_only=True)
    callbacks = ck.pop("callbacks")
    ck.update(version=2, freeze=callbacks["FreezeSchedule"]["spec"],
              freeze_changes=callbacks["FreezeSchedule"]["changes"],
              averaging=callbacks["WeightAveraging"])
    del ck["format"]
    torch.save(ck, path)


def test_a_format_2_checkpoint_still_resumes(trained_run, tmp_path):
    run, data = clone_run(trained_run, tmp_path)
    _as_format_2(run / layout.CHECKPOINT_FILE)
    saved = torch.load(run / layout.CHECKPOINT_FILE, weights_only=True)
    trainer = Trainer(tiny_config(data, epochs=3, ema=0.9), run_dir=run, resume=True)
    result = trainer.fit()
    assert result.status == "finished" and result.epochs_done == 3
    ck = torch.load(run / layout.CHECKPOINT_FILE, weights_only=True)
    assert ck["version"] == 3
    averaging = ck["callbacks"]["WeightAveraging"]
    assert averaging["step"] == saved["averaging"]["step"] + 3  # continued, not restarted
    reasons = [c["reason"] for c in ck["callbacks"]["FreezeSchedule"]["changes"]]
    assert reasons == ["start", "schedule", "resume"]


def test_a_resume_may_not_plan_fewer_epochs_than_it_did(trained_run, tmp_path, capsys):
    run, _ = clone_run(trained_run, tmp_path)
    before = (run / layout.CONFIG_FILE).read_text()
    assert main(["train", "--out", str(run), "--resume", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "has done 2 epochs: --epochs must be at least that" in err
    assert (run / layout.CONFIG_FILE).read_text() == before


# --- validate first ---------------------------------------------------------------------------
def test_a_bad_freeze_spec_leaves_no_run_folder(image_folder, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--model", "mobilenet_v2", "--weights", "none", "--data",
            str(image_folder), "--epochs", "1", "--freeze-epochs", "1", "--image-size", "32",
            "--batch-size", "8", "--out", str(run)]
    assert main([*args, "--freeze", "upto:features.99"]) == 2
    assert "no layer 'features.99'" in capsys.readouterr().err
    assert not run.exists()  # so the same --out is free for the corrected command


# --- transferlab runs -------------------------------------------------------------------------
def test_the_runs_command_lists_runs_like_the_runs_view(trained_run, tmp_path, capsys):
    from core.runs import set_label

    run, _ = clone_run(trained_run, tmp_path)
    set_label(run, "first try")
    (tmp_path / "not-a-run").mkdir()
    assert main(["runs", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["run", "date", "model"] and len(lines) == 2
    assert lines[1].startswith("first try") and "mobilenet_v2" in lines[1]
    assert "2/2" in lines[1] and "finished" in lines[1] and str(run) in lines[1]
    assert main(["runs", "--json", str(tmp_path)]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["name"], entry["path"], entry["epochs"], entry["status"]) == (
        "first try", str(run), 2, "finished")
    assert entry["has_model"] and entry["config"]["ema"] == 0.9
    assert main(["runs", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: Not a folder")
