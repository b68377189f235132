"""Same answer everywhere (issue 20): one decoder, one preprocessing, one forward path.

A tiny model (EfficientNet-Lite0, whose weights ask for bicubic resizing, trained at 32 px on
24 px images, so the network enlarges its input itself) and a fixed set of odd images
(tests/odd_images.py). ``predict`` on model.pt, on the exported .onnx and .pt2, ``evaluate``
on all three and the Inference tab must give the same top-1 and probabilities within 1e-4
for every readable image, and the same skip reason for every unreadable one. The bundle
runs the same comparison (scripts/dist_smoke_test.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.frontends.cli import main
from tests.odd_images import (UNREADABLE, differences, from_evaluation_rows, from_lines,
                              vector)

TOL = 1e-4
FORMATS = ("model.pt", "model.onnx", "model.pt2")


@pytest.fixture
def run(parity_run):
    return parity_run  # (tests/conftest.py: trained once for the whole session)


def _by_name(predictions) -> dict:
    """file name -> class probabilities (in CLASSES order), or the skip reason."""
    return {Path(p.path).name: p.error or vector(p.topk) for p in predictions}


def _from_evaluation(ev) -> dict:
    return from_evaluation_rows(ev.images, ev.skipped)


def assert_same(reference: dict, other: dict, what: str, tol: float = TOL) -> None:
    problems = differences(reference, other, what, tol)
    assert not problems, "\n".join(problems)


def test_predict_evaluate_and_every_format_agree_on_odd_images(run):
    from core.inference.evaluate import evaluate_model
    from core.inference.exported import load_classifier
    from core.inference.predict import predict_paths

    run_dir, odd = run
    results = {f: predict_paths(load_classifier(run_dir / f), [odd], topk=2) for f in FORMATS}
    reference = _by_name(results["model.pt"])
    for name, phrase in UNREADABLE.items():
        assert phrase in reference[name]
    assert sum(not isinstance(v, str) for v in reference.values()) == 9
    for f in FORMATS:
        assert_same(reference, _by_name(results[f]), f"predict {f}")
        assert_same(reference, _from_evaluation(evaluate_model(run_dir / f, str(odd))),
                    f"evaluate {f}")
    # the out-of-distribution score travels in every format (its own tolerance)
    scores = {f: np.array([r.ood_score for r in results[f] if not r.error]) for f in FORMATS}
    assert np.isfinite(scores["model.pt"]).all()
    for f in FORMATS[1:]:
        assert np.abs(scores[f] - scores["model.pt"]).max() < 1e-3


def test_the_cli_prints_what_the_engine_computes(run, capsys):
    from core.inference.exported import load_classifier
    from core.inference.predict import predict_paths

    run_dir, odd = run
    reference = _by_name(predict_paths(load_classifier(run_dir / "model.pt"), [odd], topk=2))
    for f in FORMATS:
        assert main(["predict", str(run_dir / f), str(odd), "--topk", "2"]) == 0
        printed = from_lines(capsys.readouterr().out)
        assert_same(reference, printed, f"CLI predict {f}", tol=TOL + 5e-5)  # 4 decimals


def test_the_runs_validation_split_is_read_as_predict_reads_its_files(run):
    """Evaluate (no --data) decodes the run's images through training's cache: the same
    pixels, resize and network as predict on each file (issue 11)."""
    from core.inference.evaluate import evaluate_model
    from core.inference.exported import load_classifier
    from core.inference.predict import predict_paths

    run_dir, _ = run
    for f in FORMATS:
        ev = evaluate_model(run_dir / f)
        assert ev.source == "val" and len(ev.images) >= 10
        predicted = _by_name(predict_paths(load_classifier(run_dir / f),
                                           [r.path for r in ev.images], topk=2))
        assert_same(predicted, _from_evaluation(ev), f"evaluate {f} on the run's split")


def test_the_inference_tab_shows_the_same_numbers(run, qtbot):
    from core.inference.exported import load_classifier
    from core.inference.predict import predict_paths
    from gui.inference_tab import InferenceTab

    run_dir, odd = run
    reference = _by_name(predict_paths(load_classifier(run_dir / "model.pt"), [odd], topk=2))
    for f in ("model.pt", "model.onnx"):
        tab = InferenceTab()
        qtbot.addWidget(tab)
        tab.torch_ready = True
        tab.topk.setValue(2)
        with qtbot.waitSignal(tab.modelLoaded, timeout=60_000):
            tab.handle_drop([str(run_dir / f)])  # a dropped model file becomes the model
        with qtbot.waitSignal(tab.predictionsDone, timeout=120_000):
            tab.handle_drop([str(odd)])
        assert_same(reference, _by_name(tab.predictions), f"Inference tab {f}")
        skipped = tab.skipped_view.toPlainText()
        assert all(f"{name}: {reference[name]}" in skipped for name in UNREADABLE)
        tab.shutdown()
