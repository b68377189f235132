"""``predict --json`` / ``--csv`` (issue 22): one record per input, skipped files included
with their reason, built from the result's own fields."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from core.frontends.cli import main
from core.frontends.records import record, to_csv
from core.inference.predict import Prediction
from core.models import build_model
from core.models.model_file import model_payload
from core.preprocess import Preprocessing
from tests.conftest import make_image


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A real model.pt (random weights, 3 classes, 32 px), as training writes it."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.manual_seed(0)
    model, _, _ = build_model("mobilenet_v2", "none", 3)
    pre = Preprocessing(32, 32).to_dict()
    torch.save(model_payload("mobilenet_v2", model, ["cat", "dog", "owl"], pre, {}, {}), path)
    return path


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    good = make_image(tmp_path / "in" / "a photo.jpg", (200, 40, 40))
    text = tmp_path / "in" / "notes.jpg"
    text.write_text("not an image")
    return [good, text]


def test_json_and_csv_files_hold_every_input(model_file, inputs, tmp_path, capsys):
    js, cs = tmp_path / "out.json", tmp_path / "out.csv"
    assert main(["predict", str(model_file), *map(str, inputs), "--topk", "2",
                 "--json", str(js), "--csv", str(cs)]) == 0
    assert "a photo.jpg\t" in capsys.readouterr().out  # the table still goes to the terminal
    recs = json.loads(js.read_text())
    assert [(Path(r["path"]).name, r["status"]) for r in recs] == [
        ("a photo.jpg", "ok"), ("notes.jpg", "skipped")]
    top = recs[0]["topk"]
    assert [t["class"] for t in top] != [] and len(top) == 2
    assert top[0]["probability"] >= top[1]["probability"] and recs[0]["error"] == ""
    assert "not an image" in recs[1]["error"] and recs[1]["topk"] == []
    rows = list(csv.DictReader(io.StringIO(cs.read_text())))
    assert list(rows[0])[:6] == ["path", "status", "class_1", "probability_1", "class_2",
                                 "probability_2"]
    assert rows[0]["class_1"] == top[0]["class"]
    assert float(rows[0]["probability_1"]) == pytest.approx(top[0]["probability"])
    assert rows[1]["status"] == "skipped" and rows[1]["class_1"] == ""
    assert rows[1]["error"] == recs[1]["error"]


def test_a_dash_sends_the_records_alone_to_stdout(model_file, inputs, capsys):
    assert main(["predict", str(model_file), *map(str, inputs), "--json", "-"]) == 0
    recs = json.loads(capsys.readouterr().out)  # nothing else on stdout
    assert [r["status"] for r in recs] == ["ok", "skipped"]
    assert main(["predict", str(model_file), str(inputs[1]), "--csv", "-"]) == 2  # all skipped
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["status"] for r in rows] == ["skipped"]


def test_both_to_stdout_is_one_error_line(model_file, inputs, capsys):
    assert main(["predict", str(model_file), str(inputs[0]), "--json", "-", "--csv", "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_a_field_the_result_gains_flows_into_both_formats():
    """No second list of columns: a field added to the prediction type (an out-of-
    distribution score) appears in JSON and CSV; the preview's pixel bytes do not."""

    @dataclass(frozen=True)
    class Scored(Prediction):
        ood_score: float = 0.0

    rec = record(Scored("a.jpg", [("cat", 0.9)], thumb=(1, 1, b"\0\0\0"), ood_score=0.42))
    assert rec["ood_score"] == 0.42 and "thumb" not in rec
    header, row = to_csv([rec], 1).splitlines()
    assert header == "path,status,class_1,probability_1,error,ood_score"
    assert row == "a.jpg,ok,cat,0.9,,0.42"
