"""The data doctor's check on tiny generated datasets with planted mistakes (core.doctor)."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from core.doctor.check import run_check
from core.review.session import ReviewSession
from tests.conftest import COLORS, make_image

SIDE = (24, 24)


def planted(root: Path, per_class: int = 16) -> dict:
    """train/ + val/ of three colour classes; planted: a red image filed under green, a
    re-encoded and resized copy of a training image in val/, and a blank frame."""
    for split, n in (("train", per_class), ("val", per_class // 4)):
        for c in range(3):
            for i in range(n):
                make_image(root / split / f"c{c}" / f"{split}{c}_{i:02d}.png", COLORS[c], SIDE,
                           seed=(0 if split == "train" else 50) + c * 100 + i)
    flipped = make_image(root / "train" / "c1" / "odd_red.png", COLORS[0], SIDE, seed=999)
    original = root / "train" / "c2" / "train2_03.png"
    copy = root / "val" / "c2" / "copy.jpg"
    Image.open(original).resize((30, 30)).save(copy, quality=80)
    Image.new("RGB", SIDE, (128, 128, 128)).save(root / "train" / "c0" / "blank.png")
    return {"flipped": "train/c1/odd_red.png", "original": "train/c2/train2_03.png",
            "copy": "val/c2/copy.jpg", "blank": "train/c0/blank.png"}


def test_check_finds_the_planted_mistakes_and_a_relabel_fixes_one(tmp_path):
    root = tmp_path / "colours"
    p = planted(root)
    report = run_check(str(root))
    issues = {i.rel: i for i in report.label_issues}
    assert p["flipped"] in issues
    assert issues[p["flipped"]].given == "c1" and issues[p["flipped"]].suggested == "c0"
    assert len(report.label_issues) <= 3  # the colour classes are easy: little else
    leak = [(d.a, d.b) for d in report.leakage]
    # b: the training copy, to remove first; images of one colour with other noise are one
    # texture to the network, but not the same photo (their pixels say so)
    assert leak == [(p["copy"], p["original"])]
    assert p["blank"] in {o.rel for o in report.outliers}
    assert report.headline().startswith(f"{len(report.label_issues)} image")
    assert "in both train and val" in report.headline()

    out = tmp_path / "report.json"
    report.write_json(out)
    data = json.loads(out.read_text())
    first = data["label_issues"][0]
    assert set(first) >= {"path", "given", "suggested", "score"}
    assert first["path"] == str(root / report.label_issues[0].rel)
    assert set(data["duplicates"][0]) >= {"a", "b", "similarity", "across_splits"}
    assert set(data["outliers"][0]) >= {"path", "score"}
    scores = [i["score"] for i in data["label_issues"]]
    assert scores == sorted(scores, reverse=True)

    s = ReviewSession(root)
    s.relabel([(p["flipped"], "c1", "c0")])
    s.keep([o.key for o in report.outliers])
    s.close()
    again = run_check(str(root))
    assert again.info["computed"] == 0  # the moved file kept its cached features
    assert again.leakage == report.leakage  # (from the cached thumbnails and hashes)
    assert "train/c0/odd_red.png" not in {i.rel for i in again.label_issues}
    assert again.outliers == [] and again.kept >= 1  # kept ones are not raised again
    assert again.counts["train"][0] == report.counts["train"][0] + 1


def test_a_changed_file_is_the_only_one_computed_again(tmp_path):
    root = tmp_path / "colours"
    planted(root, per_class=8)
    run_check(str(root))
    make_image(root / "train" / "c0" / "new.png", COLORS[0], SIDE, seed=4242)
    again = run_check(str(root))
    assert again.info["computed"] == 1


def test_unreadable_files_and_odd_formats_are_reported(tmp_path):
    root = tmp_path / "colours"
    planted(root, per_class=12)
    (root / "train" / "c0" / "notes.jpg").write_text("not an image")
    make_image(root / "train" / "c1" / "one.gif", COLORS[1], SIDE, seed=7, fmt="GIF")
    report = run_check(str(root))
    assert [(r, w) for r, w in report.unreadable] == [("train/c0/notes.jpg", "not an image")]
    odd = {p for f in report.set_flags if f.kind == "odd format" for p in f.paths}
    assert "train/c1/one.gif" in odd and "val/c2/copy.jpg" in odd  # a JPEG among PNGs too


def test_cli_check_with_a_trained_run_writes_the_json(tmp_path, capsys):
    from core.frontends.cli import main
    from core.training.trainer import Trainer
    from tests.conftest import tiny_config

    root = tmp_path / "colours"
    planted(root, per_class=8)
    run = tmp_path / "run"
    Trainer(tiny_config(root, epochs=1, freeze_epochs=1), [], None, str(run)).fit()
    out = tmp_path / "report.json"
    assert main(["check", str(root), "--model", str(run / "model.pt"), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["network"].startswith("run:")
    assert summary["run_images"] == sum(summary["counts"]["val"])  # its held-out images
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == summary["headline"]
    assert f"saved: {out}" in printed
    from core.doctor.check import trained_on  # the app offers a run only for its own data

    assert trained_on(str(run / "model.pt"), str(root))
    assert not trained_on(str(run / "model.pt"), str(tmp_path / "other"))


def test_cli_check_of_a_missing_folder_is_one_line(tmp_path, capsys):
    from core.frontends.cli import main

    assert main(["check", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Data folder not found")


def test_a_slightly_cropped_thumbnail_in_val_is_leakage(tmp_path):
    """Small images move their features and hash with a crop as far as a look-alike does;
    their pixels tell (core.doctor.pixels)."""
    import pytest

    data = pytest.importorskip("skimage.data", reason="scikit-image (requirements-dev.txt)")
    root = tmp_path / "thumbs"
    planted(root, per_class=8)
    photo = Image.fromarray(data.chelsea()).resize((32, 32), Image.Resampling.BICUBIC)
    photo.save(root / "train" / "c0" / "cat.png")
    photo.crop((3, 3, 29, 29)).resize((32, 32)).save(root / "val" / "c0" / "cat-crop.jpg",
                                                      quality=90)
    report = run_check(str(root))
    assert ("val/c0/cat-crop.jpg", "train/c0/cat.png") in [(d.a, d.b) for d in report.leakage]


def test_label_suggestions_on_a_weak_signal_come_with_a_caution():
    from core.doctor.report import WEAK_SIGNAL, CheckReport, LabelIssue, format_report

    report = CheckReport("data", "/data", ["a", "b"], {"train": [5, 5]})
    report.label_issues = [LabelIssue("train/a/1.jpg", "a", "b", 0.9, "train")]
    report.info = {"oos_accuracy": WEAK_SIGNAL - 0.11, "network": "imagenet:efficientnet_lite0"}
    advice = report.label_advice()
    assert "74%" in advice and "--model" in advice and advice in format_report(report)
    assert report.to_json()["summary"]["label_advice"] == advice
    report.info["oos_accuracy"] = WEAK_SIGNAL + 0.05  # a strong signal: no caution
    assert report.label_advice() == ""
    report.info.update(oos_accuracy=0.5, network="run:/runs/x/model.pt")  # already a run
    assert report.label_advice() == ""
