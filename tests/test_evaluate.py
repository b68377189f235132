import json
import math
from pathlib import Path

import pytest
import torch

from core.errors import TransferLabError
from core.frontends.cli import main
from core.inference import metrics as M
from core.inference.evaluate import (Evaluation, ImageResult, evaluate_model, load_evaluation,
                                     save_evaluation)
from core.progress import Cancelled, TaskState
from core.runs.evaluations import evaluation_paths
from tests.conftest import make_folder, make_image


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny real training run (1 epoch, random weights, 32 px), in its own home."""
    tmp = tmp_path_factory.mktemp("evalrun")
    folder = make_folder(tmp / "shapes", classes=3, per_class=10)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(tmp / "home"))
        mp.setenv("TRANSFERLAB_OFFLINE", "1")
        code = main(["train", "--model", "mobilenet_v2", "--weights", "none", "--data",
                     str(folder), "--epochs", "1", "--freeze-epochs", "0", "--image-size", "32",
                     "--batch-size", "8", "--val-split", "0.3", "--out", str(tmp / "run")])
    assert code == 0
    return folder, tmp / "run"


def _hand_case() -> Evaluation:
    """Classes a, b, c, d: d has no images and is never predicted; several cells tie at 1."""
    names = "abcd"
    pairs = [(0, 0), (0, 1), (0, 1), (1, 1), (1, 0), (2, 2), (2, 0), (2, 1)]
    confusion = M.confusion_matrix(torch.tensor([t for t, _ in pairs]),
                                   torch.tensor([p for _, p in pairs]), 4).tolist()
    images = [ImageResult(f"{i}.jpg", names[t], names[p], 0.2, 0.5, loss=float(i))
              for i, (t, p) in enumerate(pairs)]
    return Evaluation(list(names), images, confusion, "hand")


def test_per_class_metrics_by_hand_with_ties_and_an_empty_class():
    ev = _hand_case()
    assert ev.confusion == [[1, 2, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert ev.accuracy == pytest.approx(37.5)
    got = {m["class"]: m for m in ev.per_class()}
    expected = {  # precision = tp / predicted, recall = tp / support
        "a": (1 / 3, 1 / 3, 1 / 3, 3), "b": (1 / 4, 1 / 2, 1 / 3, 2),
        "c": (1.0, 1 / 3, 1 / 2, 3), "d": (0.0, 0.0, 0.0, 0)}
    for name, (p, r, f1, support) in expected.items():
        assert got[name]["precision"] == pytest.approx(p)
        assert got[name]["recall"] == pytest.approx(r)
        assert got[name]["f1"] == pytest.approx(f1)
        assert got[name]["support"] == support
    # ties at one image each keep (true, predicted) order
    assert ev.most_confused() == [("a", "b", 2), ("b", "a", 1), ("c", "a", 1), ("c", "b", 1)]
    assert ev.normalised()[0] == pytest.approx([1 / 3, 2 / 3, 0, 0])
    assert ev.normalised()[3] == [0, 0, 0, 0]
    assert [r.path for r in ev.cell("a", "b")] == ["2.jpg", "1.jpg"]  # highest loss first
    assert [r.path for r in ev.top_losses(3)] == ["7.jpg", "6.jpg", "4.jpg"]


def test_run_validation_split_reproduces_the_runs_accuracy(run, tmp_path):
    folder, run_dir = run
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    events = []
    ev = evaluate_model(run_dir / "model.pt", state=TaskState(on_progress=events.append))
    assert ev.source == "val" and len(ev.images) == 9  # 30% of 10 per class
    assert ev.accuracy == pytest.approx(saved["metrics"]["val_acc"], abs=1e-6)
    assert events[-1].stage == "Evaluating" and events[-1].done == events[-1].total == 9
    for r in ev.images:
        assert Path(r.path).is_file() and Path(r.path).parent.name == r.true
        assert r.loss == pytest.approx(-math.log(r.p_true), rel=1e-4, abs=1e-5)
        assert r.p_predicted >= r.p_true and (r.p_predicted == r.p_true) == r.correct
    assert sorted(r.true for r in ev.images) == ["class_0"] * 3 + ["class_1"] * 3 + ["class_2"] * 3
    assert len({r.path for r in ev.images}) == 9
    csv_path, json_path = save_evaluation(ev, run_dir)
    assert (csv_path, json_path) == evaluation_paths(run_dir, "val")
    back = load_evaluation(json_path)
    assert back.confusion == ev.confusion and back.classes == ev.classes
    assert [(r.path, r.predicted) for r in back.images] == [(r.path, r.predicted)
                                                            for r in ev.images]
    assert back.accuracy == pytest.approx(ev.accuracy)
    assert json.loads(json_path.read_text())["per_class"][0]["support"] == 3


def test_folder_evaluation_agrees_with_predict(run, tmp_path):
    from core.inference.predict import load_model_file, predict_paths

    folder, run_dir = run
    lm = load_model_file(run_dir / "model.pt")
    ev = evaluate_model(run_dir / "model.pt", folder, batch_size=7, lm=lm)
    assert len(ev.images) == 30 and sum(map(sum, ev.confusion)) == 30
    preds = predict_paths(lm, [r.path for r in ev.images], topk=1)
    for r, p in zip(ev.images, preds):
        assert p.topk[0][0] == r.predicted
        assert p.topk[0][1] == pytest.approx(r.p_predicted, abs=1e-5)


def test_folder_classes_must_match_the_model(run, tmp_path):
    folder, run_dir = run
    odd = make_folder(tmp_path / "odd", classes=3, per_class=2)
    make_image(odd / "zebra" / "0.jpg", (0, 0, 0))
    with pytest.raises(TransferLabError, match="not classes of the model: zebra"):
        evaluate_model(run_dir / "model.pt", odd)
    few = make_folder(tmp_path / "few", classes=2, per_class=2)
    with pytest.raises(TransferLabError, match="no images for: class_2") as exc:
        evaluate_model(run_dir / "model.pt", few)
    assert "\n" not in str(exc.value)


def test_cancel_stops_between_batches(run):
    folder, run_dir = run
    state = TaskState()

    def on_progress(event):
        if event.stage == "Evaluating" and event.done >= 8:
            state.cancel()

    state.on_progress = on_progress
    with pytest.raises(Cancelled):
        evaluate_model(run_dir / "model.pt", folder, batch_size=4, state=state)


def test_cli_evaluate_prints_table_matrix_pairs_and_accuracy(run, tmp_path, capsys):
    folder, run_dir = run
    out_json = tmp_path / "m.json"
    assert main(["evaluate", str(run_dir / "model.pt"), "--data", str(folder), "--json",
                 str(out_json), "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    saved = json.loads(out_json.read_text())
    assert lines[-1].startswith(f"accuracy: {saved['accuracy']:.2f}% ± ")
    assert lines[-1].endswith(f"on {saved['images']} images)")
    assert "true \\ predicted" in lines[0] and "class_2" in lines[0]
    assert any(line.split()[:1] == ["class"] and "precision" in line for line in lines)
    assert "most confused" in out or "no confusions" in out
    assert (run_dir / "evaluation-folder-shapes.json").exists()
    odd = make_folder(tmp_path / "odd", classes=1, per_class=2)
    make_image(odd / "zebra" / "0.jpg", (0, 0, 0))
    assert main(["evaluate", str(run_dir / "model.pt"), "--data", str(odd)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


# --- GUI ---------------------------------------------------------------------------------------

@pytest.fixture
def hand_eval(tmp_path):
    ev = _hand_case()
    for r in ev.images:
        make_image(tmp_path / r.path, (120, 60, 30))
    ev.images = [ImageResult(str(tmp_path / r.path), r.true, r.predicted, r.p_true,
                             r.p_predicted, r.loss) for r in ev.images]
    return ev


def test_clicking_a_cell_lists_exactly_that_cells_images(qtbot, hand_eval):
    from PySide6.QtCore import QPointF, Qt

    from gui.evaluate_tab import EvaluateTab

    tab = EvaluateTab()
    qtbot.addWidget(tab)
    tab.resize(1100, 700)
    tab.show()
    qtbot.waitExposed(tab)
    tab.show_evaluation(hand_eval)
    assert tab.table.rowCount() == 4 and "37.50%" in tab.accuracy.text()
    view = tab.heat
    for true, predicted in [(0, 1), (2, 0), (0, 0)]:
        scene_pos = tab.heat.image.mapToScene(QPointF(predicted + 0.5, true + 0.5))
        with qtbot.waitSignal(tab.listed, timeout=3000):
            qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.mapFromScene(scene_pos))
        t, p = "abcd"[true], "abcd"[predicted]
        expected = [r.path for r in hand_eval.images if r.true == t and r.predicted == p]
        assert sorted(tab.listed_paths()) == sorted(expected)
        assert tab.listed_paths() == [r.path for r in hand_eval.cell(t, p)]  # by loss
    first_pair = tab.pairs.item(0)
    assert first_pair.text() == "a → b: 2"
    with qtbot.waitSignal(tab.listed, timeout=3000):
        tab.pairs.itemClicked.emit(first_pair)
    assert tab.listed_paths() == [r.path for r in hand_eval.cell("a", "b")]
    qtbot.mouseClick(tab.top_button, Qt.LeftButton)
    assert tab.listed_paths() == [r.path for r in hand_eval.top_losses()]


def test_evaluate_tab_runs_in_a_worker_and_reopens_saved_results(qtbot, run):
    from PySide6.QtCore import Qt

    from gui.evaluate_tab import EvaluateTab

    folder, run_dir = run
    tab = EvaluateTab()
    qtbot.addWidget(tab)
    tab.set_torch_ready()
    for saved in run_dir.glob("evaluation-*"):
        saved.unlink()
    tab.set_model(str(run_dir / "model.pt"))
    assert tab.evaluation is None and tab.run_button.isEnabled()
    with qtbot.waitSignal(tab.evaluated, timeout=120_000) as blocker:
        qtbot.mouseClick(tab.run_button, Qt.LeftButton)
    ev = blocker.args[0]
    assert len(ev.images) == 9 and (run_dir / "evaluation-val.json").exists()
    qtbot.waitUntil(lambda: tab.worker is None)
    again = EvaluateTab()
    qtbot.addWidget(again)
    again.set_torch_ready()
    again.set_model(str(run_dir / "model.pt"))  # shown from the saved files, no worker
    assert again.worker is None and again.evaluation.confusion == ev.confusion
    assert [r.path for r in again.evaluation.images] == [r.path for r in ev.images]


def test_an_image_of_a_cell_opens_in_the_inference_tab_with_gradcam(qtbot, run):
    from gui.main_window import MainWindow

    folder, run_dir = run
    save_evaluation(evaluate_model(run_dir / "model.pt", folder), run_dir)
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.torchReady, timeout=60_000):
        w.start_loading_torch()
    w.evaluate_tab.set_model(str(run_dir / "model.pt"))
    ev = w.evaluate_tab.evaluation
    assert ev is not None and len(ev.images) == 30  # shown from the saved files
    w.evaluate_tab.show_cell(0, ev.classes.index(ev.images[0].predicted))
    item = w.evaluate_tab.images.item(0)
    tab = w.inference_tab
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        w.evaluate_tab.images.itemActivated.emit(item)  # (what a double click emits)
    assert w.tabs.currentWidget() is tab
    qtbot.waitUntil(lambda: tab.selected() is not None, timeout=10_000)
    assert tab.selected().path == w.evaluate_tab.listed_paths()[0]
    assert tab.cam_box.isChecked() and tab.lm.source == str(run_dir / "model.pt")
    w.close()
