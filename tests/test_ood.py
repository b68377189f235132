"""The out-of-distribution score (issue 24, item 2): calibrated at the end of a run, stored in
model.pt, kept in every prediction and exported file, shown as a warning in the Inference tab.
How well it separates a real run's validation photos from other subjects is measured by
bench/ood.py (slow; figures in its output)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.inference import ood


def test_ledoit_wolf_is_scikit_learns():
    sklearn_cov = pytest.importorskip("sklearn.covariance")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 60, generator=g, dtype=torch.float64) @ torch.randn(60, 60, generator=g,
                                                                               dtype=torch.float64)
    x = x - x.mean(0)
    ours, shrinkage = ood.ledoit_wolf(x)
    theirs, their_shrinkage = sklearn_cov.ledoit_wolf(x.numpy(), assume_centered=True)
    assert shrinkage == pytest.approx(their_shrinkage, rel=1e-9) and 0 < shrinkage < 1
    assert np.allclose(ours.numpy(), theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n, rank", [(300, 256), (60, 256), (300, 8)])
def test_the_stored_score_is_the_mahalanobis_distance(monkeypatch, n, rank):
    """Kept as the top eigen-directions plus one variance for the rest: exact when those
    directions cover the covariance (up to RANK of them, or fewer images than RANK), the
    rest's mean variance otherwise."""
    monkeypatch.setattr(ood, "RANK", rank)
    g = torch.Generator().manual_seed(1)
    d, k = 32, 3
    labels = torch.arange(k).repeat(n // k)
    feats = torch.randn(len(labels), d, generator=g) * torch.linspace(0.2, 3, d) + labels[:, None]
    val = torch.randn(50, d, generator=g) * 2
    stats = ood.fit_stats(feats, labels, val, k)
    means = torch.stack([feats[labels == c].double().mean(0) for c in range(k)])
    cov, _ = ood.ledoit_wolf(feats.double() - means[labels])
    precision = torch.linalg.inv(cov)
    probe = torch.randn(20, d, generator=g) * 3
    diff = probe.double()[:, None] - means[None]
    exact = torch.einsum("nkd,de,nke->nk", diff, precision, diff).min(1).values.sqrt()
    got = ood.Unfamiliarity(stats).distance(probe).double()
    if rank >= d or n < rank:
        assert torch.allclose(got, exact, rtol=1e-4)
    else:  # an approximation, but the same order
        assert (got / exact).sub(1).abs().max() < 0.5
    threshold = torch.quantile(ood.Unfamiliarity(stats).distance(val).double(), ood.QUANTILE)
    assert stats["threshold"] == pytest.approx(float(threshold), rel=1e-6)


def test_a_finished_run_flags_other_subjects_and_not_its_own_images(parity_run, tmp_path):
    from PIL import Image

    from core.inference.predict import load_model_file, predict_paths

    run_dir, _ = parity_run
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    assert saved["ood"]["val_images"] >= ood.MIN_VALIDATION
    lm = load_model_file(run_dir / "model.pt")
    data = run_dir.parent / "data"
    own = [r.ood_score for r in predict_paths(lm, [data])]
    rng = np.random.default_rng(0)
    for i in range(6):  # other subjects: smooth blue-grey scenes, nothing like red/green noise
        sky = np.linspace(60, 220, 24)[:, None, None] * np.array([0.4, 0.6, 1.0])
        arr = np.broadcast_to(sky, (24, 24, 3)) + rng.normal(0, 3, (24, 24, 3))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(tmp_path / f"sky{i}.png")
    other = [r.ood_score for r in predict_paths(lm, [tmp_path])]
    assert np.mean(np.array(own) <= 1.0) >= 0.8  # the run's own images: mostly familiar
    assert min(other) > 1.0 and min(other) > max(own)


def test_a_model_without_a_calibration_predicts_without_a_score(parity_run, tmp_path):
    from core.inference.predict import load_model_file, predict_paths

    run_dir, odd = parity_run
    payload = torch.load(run_dir / "model.pt", weights_only=True)
    with_score = predict_paths(load_model_file(run_dir / "model.pt"), [odd / "green"])
    del payload["ood"]
    torch.save(payload, tmp_path / "old.pt")
    without = predict_paths(load_model_file(tmp_path / "old.pt"), [odd / "green"])
    assert all(r.ood_score is None for r in without)
    assert [r.topk for r in without] == [r.topk for r in with_score]


def test_a_damaged_calibration_is_one_line(parity_run, tmp_path, capsys):
    from core.frontends.cli import main

    run_dir, odd = parity_run
    payload = torch.load(run_dir / "model.pt", weights_only=True)
    payload["ood"]["basis"] = payload["ood"]["basis"][:5]
    torch.save(payload, tmp_path / "bad.pt")
    assert main(["predict", str(tmp_path / "bad.pt"), str(odd)]) == 2
    assert "damaged out-of-distribution calibration" in capsys.readouterr().err


def test_the_inference_tab_warns_about_an_unfamiliar_photo(parity_run, qtbot, tmp_path):
    from PIL import Image

    from core.inference.predict import load_model_file
    from gui.inference_tab import InferenceTab
    from gui.prediction_table import TOP1_COL

    run_dir, _ = parity_run
    sky = np.broadcast_to(np.linspace(60, 220, 24)[:, None, None] * [0.4, 0.6, 1.0],
                          (24, 24, 3))
    Image.fromarray(sky.astype(np.uint8)).save(tmp_path / "sky.png")
    familiar = run_dir.parent / "data" / "red" / "00.png"
    tab = InferenceTab()
    qtbot.addWidget(tab)
    tab.torch_ready = True
    tab._model_loaded(load_model_file(run_dir / "model.pt"))
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.predict([str(tmp_path / "sky.png"), str(familiar)])
    rows = {r.path: i for i, r in enumerate(tab.table_model.rows)}
    tab.table.selectRow(tab.proxy.mapFromSource(
        tab.table_model.index(rows[str(tmp_path / "sky.png")], 0)).row())
    assert tab.ood_note.isVisibleTo(tab) and "Unlike the images" in tab.ood_note.text()
    top1 = tab.table_model.index(rows[str(tmp_path / "sky.png")], TOP1_COL)
    assert tab.table_model.data(top1).startswith("⚠")
    tab.table.selectRow(tab.proxy.mapFromSource(
        tab.table_model.index(rows[str(familiar)], 0)).row())
    assert not tab.ood_note.isVisibleTo(tab)
    tab.shutdown()
