import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from core.catalog import MODEL_NAMES
from core.errors import TransferLabError
from core.frontends.cli import main
from core.inference import export as E
from core.inference.onnx_predict import load_onnx, metadata_path, predict_files
from core.inference.predict import load_model_file, predict_paths
from core.models import build_model
from core.models.model_file import model_payload
from core.preprocess import Preprocessing, normalise
from core.version import PROVENANCE_KEY, made_by
from tests.conftest import REPO, make_folder, make_image

SIZE = 32


def _model_file(tmp_path, arch, folder, size=SIZE):
    """A run folder holding a random-weights model.pt and a config.json naming ``folder``."""
    torch.manual_seed(0)
    model, _, _ = build_model(arch, "none", 3)
    with torch.no_grad():  # a sharper head than the default init: clear top-1 classes
        for name, p in model.named_parameters():
            if p.ndim == 2 and p.shape[0] == 3:
                p.mul_(20)
    run = tmp_path / f"run-{arch}"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": str(folder)}))
    pre = Preprocessing(size, size)
    torch.save(model_payload(arch, model, ["class_0", "class_1", "class_2"], pre.to_dict(), {}, {}),
               run / "model.pt")
    return run / "model.pt"


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "shapes", classes=3, per_class=5, size=(45, 37))


# one network in the default suite, every one in `make test-slow`
@pytest.mark.parametrize("arch", [a if a == "efficientnet_lite0" else
                                  pytest.param(a, marks=pytest.mark.slow) for a in MODEL_NAMES])
def test_round_trip_every_architecture(arch, tmp_path, folder):
    model = _model_file(tmp_path, arch, folder)
    lines = []
    for fmt in E.FORMATS:
        out = tmp_path / "out" / f"model.{fmt}"
        report = E.export_model(model, fmt, out, log=lines.append)
        check = report.verification
        assert check.ok and check.max_diff <= E.TOLERANCE
        assert check.source == "images from the run's data" and check.images == 15
        assert check.top1_agree == 15
        meta = json.loads(metadata_path(out).read_text())
        assert meta["classes"] == ["class_0", "class_1", "class_2"]
        assert meta["preprocessing"]["image_size"] == SIZE and "resize_rule" in meta["preprocessing"]
        assert meta[PROVENANCE_KEY] == made_by()  # this version, with torch's and timm's
        assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, metadata_path(out).name] + (
            ["model.onnx", "model.onnx.json"] if fmt == "pt2" else []))
    assert [line.split(" against")[0] for line in lines] == ["verified onnx", "verified pt2"]
    extra = {"transferlab.json": ""}  # the metadata also travels inside each file
    torch.export.load(tmp_path / "out" / "model.pt2", extra_files=extra)
    assert json.loads(extra["transferlab.json"])["classes"] == meta["classes"]
    # the .onnx alone (no torch in that path) gives model.pt's classes and top-1
    om = load_onnx(tmp_path / "out" / "model.onnx")
    inside = json.loads(om.session.get_modelmeta().custom_metadata_map["transferlab"])
    assert inside["classes"] == meta["classes"] and inside["input"]["layout"] == "NCHW"
    assert inside[PROVENANCE_KEY] == made_by()
    ours = predict_files(om, [folder], topk=3)
    theirs = predict_paths(load_model_file(model), [folder], topk=3)
    assert [r.path for r in ours] == [r.path for r in theirs] and len(ours) == 15
    for a, b in zip(ours, theirs):
        assert a.topk[0][0] == b.topk[0][0]
        assert np.allclose([p for _, p in a.topk], [p for _, p in b.topk], atol=E.TOLERANCE)


def _corrupting(writer):
    def write(net, path, meta, example):
        import copy

        bad = copy.deepcopy(net)
        with torch.no_grad():
            for p in bad.parameters():
                if p.ndim == 1 and p.shape[0] == 3:  # the head's bias
                    p[0] += 10
        writer(bad, path, meta, example)
    return write


@pytest.mark.parametrize("fmt", E.FORMATS)
@pytest.mark.slow
def test_a_corrupted_export_fails_and_leaves_no_file(fmt, tmp_path, folder, monkeypatch):
    model = _model_file(tmp_path, "mobilenet_v2", folder)
    monkeypatch.setitem(E.WRITERS, fmt, _corrupting(E.WRITERS[fmt]))
    out = tmp_path / "out" / f"model.{fmt}"
    lines = []
    with pytest.raises(TransferLabError, match="verification failed"):
        E.export_model(model, fmt, out, log=lines.append)
    assert "largest probability difference" in lines[0]
    assert list(out.parent.iterdir()) == []  # neither the file, nor its JSON, nor a temp file


@pytest.mark.slow
def test_a_tampered_onnx_file_fails_verification(tmp_path, folder):
    import onnx
    from onnx import numpy_helper

    model = _model_file(tmp_path, "resnet18", folder)
    out = tmp_path / "model.onnx"
    E.export_model(model, "onnx", out, log=lambda _: None)
    proto = onnx.load(str(out))
    bias = next(t for t in proto.graph.initializer if list(t.dims) == [3])
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + np.float32([5, 0, 0]), bias.name))
    onnx.save(proto, str(tmp_path / "tampered.onnx"))
    lm = load_model_file(model)
    x, source = E.verification_inputs(lm, model.parent)
    assert E.verify("onnx", out, lm, x, source).ok
    assert not E.verify("onnx", tmp_path / "tampered.onnx", lm, x, source).ok


@pytest.mark.parametrize("resize, crop, interpolation", [(32, 32, "bilinear"),
                                                          (40, 32, "bicubic")])
def test_numpy_preprocessing_equals_the_torch_path(tmp_path, resize, crop, interpolation):
    from core.data.batches import to_model_input
    from core.data.images import load_pixels, load_square

    pre = Preprocessing(crop, resize, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), interpolation)
    paths = [make_image(tmp_path / f"{i}.png", (200, 90, 30), size, seed=i)
             for i, size in enumerate([(50, 37), (33, 90), (32, 32), (101, 64)])]
    squares = [load_square(p, crop, pre.crop, interpolation) for p in paths]
    torch_x = to_model_input(torch.stack(squares), crop, pre.mean, pre.std, channels_last=False)
    pixels = np.stack([load_pixels(p, pre) for p in paths])
    assert np.array_equal(pixels, torch.stack(squares).permute(0, 2, 3, 1).numpy())
    numpy_x = normalise(pixels, pre)
    assert numpy_x.shape == (4, 3, crop, crop) and numpy_x.dtype == np.float32
    assert np.abs(numpy_x - torch_x.numpy()).max() < 1e-6


def test_cli_export_and_onnx_predict_without_torch(tmp_path, folder, capsys):
    model = _model_file(tmp_path, "mobilenet_v2", folder)
    out = tmp_path / "m.onnx"
    assert main(["export", str(model), "--format", "onnx", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "largest probability difference" in text and "top-1 agrees on 15/15" in text
    assert main(["predict", str(model), str(folder)]) == 0
    from_pt = capsys.readouterr().out.split()
    make_image(tmp_path / "extra" / "x.png", (0, 0, 0))
    code = ("import sys; from core.frontends.cli import main; "
            f"rc = main(['predict', {str(out)!r}, {str(folder)!r}]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    from_onnx = proc.stdout.split()
    assert from_onnx[0::3] == from_pt[0::3] and from_onnx[1::3] == from_pt[1::3]  # files, top-1
    assert np.allclose(np.array(from_onnx[2::3], float), np.array(from_pt[2::3], float),
                       atol=1e-3)


def test_export_refuses_a_folder_and_an_unknown_model(tmp_path, folder, capsys):
    model = _model_file(tmp_path, "mobilenet_v2", folder)
    assert main(["export", str(model), "--format", "pt2", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.pt"), "--format", "onnx", "--out",
                 str(tmp_path / "x.onnx")]) == 2
    assert "Model file not found" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
