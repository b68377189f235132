"""Bad input (issue 12): odd images simply work, broken ones are skipped with their reason,
wrong files and options are refused in one line, and nothing saved is lost."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.config import TrainConfig
from core.data import images
from core.data.datasets import load_dataset
from core.data.images import MAX_IMAGE_PIXELS, UnreadableImage, open_rgb
from core.errors import TransferLabError
from core.frontends.cli import main
from core.inference.predict import load_model_file, predict_paths
from core.models import build_model
from core.models.model_file import MODEL_VERSION, model_payload
from core.preprocess import Preprocessing
from tests.conftest import make_folder, make_image


# --- helpers --------------------------------------------------------------------------------
def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of ``width`` x ``height`` zeros: a few hundred KB on disk that would
    decode to width*height*3 bytes as RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def rgb_mean(path) -> np.ndarray:
    return np.asarray(open_rgb(path), dtype=np.float64).mean(axis=(0, 1))


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


# --- images that must simply work ----------------------------------------------------------
def test_16_bit_png_keeps_its_grey_levels(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    pixels = np.asarray(open_rgb(tmp_path / "deep.png"))
    assert pixels.mean() == pytest.approx(ramp.mean() / 257, abs=1)  # not clipped to white
    assert pixels.min() == 0 and pixels.max() == 255


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    Image.fromarray(arr).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    img = open_rgb(tmp_path / "rotated.jpg")
    assert img.size == (20, 40)  # upright: portrait
    top, bottom = np.asarray(img)[:10].mean(axis=(0, 1)), np.asarray(img)[-10:].mean(axis=(0, 1))
    assert top[0] > 200 and bottom[0] < 60  # the stored left half is now on top


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "1", "LA", "I", "F"])
def test_other_colour_modes_decode_to_rgb(tmp_path, mode):
    base = Image.new("RGB", (32, 32), (200, 120, 40))
    img = base.convert(mode) if mode not in ("I", "F") else base.convert("L").convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.tif" if mode in ("I", "F") else "x.png")
    img.save(path)
    out = open_rgb(path)
    assert out.mode == "RGB" and out.size == (32, 32)
    expected = np.asarray(img.convert("RGB"), dtype=float).mean()
    assert np.asarray(out, dtype=float).mean() == pytest.approx(expected, abs=12)


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)  # black, fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    assert rgb_mean(tmp_path / "clear.png").tolist() == [255, 255, 255]
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "clear_pal.png", transparency=0)
    assert rgb_mean(tmp_path / "clear_pal.png").tolist() == [255, 255, 255]


def test_webp_upper_case_extensions_and_non_ascii_names_train(tmp_path):
    root = tmp_path / "photos"
    for i in range(4):
        make_image(root / "chats" / f"čaj_{i}.JPG", (220, 40, 40), seed=i)
        make_image(root / "犬" / f"写真_{i}.WebP", (40, 200, 60), seed=10 + i, fmt="WEBP")
    ds = load_dataset(str(root), 32, val_split=0.25)
    assert ds.classes == ["chats", "犬"] and ds.skipped == []
    assert len(ds.train.labels) + len(ds.val.labels) == 8


def test_a_10000_by_10000_class_photo_loads_without_a_warning(tmp_path):
    # 90 MP: over Pillow's default warning size (89.5 MP), under TransferLab's stated limit
    path = png_bomb(tmp_path / "big.png", 9500, 9500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_rgb(path).size == (9500, 9500)


# --- files that are skipped and named with the reason -----------------------------------------
def test_a_decompression_bomb_is_refused_with_the_limit(tmp_path):
    path = png_bomb(tmp_path / "bomb.png", 30000, 30000)
    assert path.stat().st_size < 200_000
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(UnreadableImage, match=f"{MAX_IMAGE_PIXELS:,} pixels"):
            open_rgb(path)
        # between the limit and twice it, Pillow would only warn: refused all the same
        with pytest.raises(UnreadableImage, match="too large: 153,760,000 pixels"):
            open_rgb(png_bomb(tmp_path / "half.png", 12400, 12400))
    assert not seen  # a refusal, never Pillow's warning


@pytest.mark.parametrize("name, make, reason", [
    ("notes.jpg", lambda p: p.write_text("this is not an image"), "not an image"),
    ("zero.jpg", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ("dot.png", lambda p: Image.new("RGB", (1, 1)).save(p), "too small (1x1 pixels"),
    ("cut.jpg", lambda p: p.write_bytes(_jpeg_bytes()[:600]), "corrupt image"),
    ("loop.jpg", lambda p: os.symlink(p.name, p), "symbolic link loop"),
    ("gone.jpg", lambda p: os.symlink("missing.jpg", p), "broken symbolic link"),
])
def test_a_bad_file_gets_its_reason(tmp_path, name, make, reason):
    path = tmp_path / name
    make(path)
    with pytest.raises(UnreadableImage) as exc:
        open_rgb(path)
    assert str(exc.value).startswith(reason)


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, "JPEG")
    return buf.getvalue()


def test_permission_denied_is_said_as_such(tmp_path, monkeypatch):
    path = make_image(tmp_path / "private.jpg", (10, 10, 10))
    if os.geteuid() != 0:  # a real unreadable file where the OS enforces it
        path.chmod(0)
        with pytest.raises(UnreadableImage, match="^permission denied"):
            open_rgb(path)
        path.chmod(0o644)

    def refuse(*_a, **_k):  # root reads anything: the OS's answer, injected
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(images, "open", refuse, raising=False)
    with pytest.raises(UnreadableImage, match="^permission denied") as exc:
        open_rgb(path)
    assert "corrupt" not in str(exc.value)


def test_a_messy_folder_trains_and_lists_every_skip(tmp_path):
    root = make_folder(tmp_path / "messy", classes=2, per_class=6)
    png_bomb(root / "class_0" / "bomb.png", 30000, 30000)
    Image.new("RGB", (1, 1)).save(root / "class_0" / "dot.png")
    (root / "class_1" / "zero.jpg").write_bytes(b"")
    os.symlink("loop.jpg", root / "class_1" / "loop.jpg")
    os.symlink("nowhere.jpg", root / "class_1" / "gone.jpg")
    os.symlink("..", root / "class_1" / "up")  # a folder loop: never followed
    odd = os.fsdecode(b"caf\xe9.jpg")  # not valid UTF-8
    (root / "class_1" / odd).write_bytes((root / "class_1" / "000.jpg").read_bytes())
    for _ in range(2):  # the second time from the decode cache
        ds = load_dataset(str(root), 32, val_split=0.25)
        reasons = {Path(p).name: why for p, why in ds.skipped}
        assert reasons["bomb.png"].startswith("too large")
        assert reasons["dot.png"].startswith("too small")
        assert reasons["zero.jpg"].startswith("empty file")
        assert reasons["loop.jpg"] == "symbolic link loop"
        assert reasons["gone.jpg"].startswith("broken symbolic link")
        assert len(reasons) == 5
        assert ds.class_counts(ds.train)["class_1"] + ds.class_counts(ds.val)["class_1"] == 7


# --- refused with a reason -------------------------------------------------------------------
def test_a_class_whose_files_are_all_unreadable_is_refused(tmp_path):
    root = make_folder(tmp_path / "d", classes=2, per_class=4)
    for i in range(3):
        (root / "broken" / f"{i}.jpg").parent.mkdir(exist_ok=True)
        (root / "broken" / f"{i}.jpg").write_text("not a picture")
    with pytest.raises(TransferLabError, match="No readable image in the class folder 'broken'.*"
                                               "not an image"):
        load_dataset(str(root), 32)


def test_empty_and_one_class_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TransferLabError, match="no class folders with images"):
        load_dataset(str(tmp_path / "empty"), 32)
    make_folder(tmp_path / "one", classes=1, per_class=3)
    with pytest.raises(TransferLabError, match="only one class"):
        load_dataset(str(tmp_path / "one"), 32)


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
    from core.training import run_folder

    store = run_folder.RunStore(tmp_path / "run")
    store.save_checkpoint({"epoch": 1})
    real_save = torch.save

    def full_disk(obj, f, *a, **k):  # torch.save reports ENOSPC as a RuntimeError
        real_save(obj, f, *a, **k)
        Path(f).write_bytes(Path(f).read_bytes()[:10])
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 10 vs 64"
                           "\nPytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(run_folder.torch, "save", full_disk)
    with pytest.raises(TransferLabError, match="previous checkpoint.pt is unchanged") as exc:
        store.save_checkpoint({"epoch": 2})
    assert "\n" not in str(exc.value)
    monkeypatch.undo()
    assert torch.load(store.checkpoint_path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in store.dir.iterdir()] == ["checkpoint.pt"]  # no temp file left


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
    from core.training.run_folder import RunStore

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


# --- the GUI shows the reasons ----------------------------------------------------------------
def test_the_data_tab_lists_skipped_files_with_reasons(qtbot, tmp_path):
    from gui.data_tab import DataTab

    root = make_folder(tmp_path / "messy", classes=2, per_class=4)
    png_bomb(root / "class_0" / "bomb.png", 30000, 30000)
    Image.new("RGB", (1, 1)).save(root / "class_1" / "dot.png")
    tab = DataTab(image_size_provider=lambda: 32)
    qtbot.addWidget(tab)
    tab.torch_ready = True
    with qtbot.waitSignal(tab.scanned, timeout=60_000):
        tab.set_source(str(root))
    text = tab.skipped.toPlainText()
    assert "bomb.png: too large" in text and "dot.png: too small (1x1 pixels" in text
    (root / "class_1").rename(tmp_path / "gone")
    for i in range(2):
        (root / "class_1" / f"{i}.jpg").parent.mkdir(exist_ok=True)
        (root / "class_1" / f"{i}.jpg").write_text("text")
    tab.scan()
    qtbot.waitUntil(lambda: "No readable image" in tab.summary.text(), timeout=60_000)
    assert "class_1" in tab.summary.text()


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
