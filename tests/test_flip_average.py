"""Test-time flip averaging (``tta``): the accuracy a run reports is the one every later use of
its model.pt gives (evaluate, predict, the exported ONNX file), cached or not."""
import json

import numpy as np
import pytest
import torch

from core.inference.evaluate import evaluate_model
from core.inference.export import TOLERANCE, export_model
from core.inference.onnx_predict import load_onnx, predict_files
from core.inference.predict import load_model_file, predict_paths
from core.models.flip_average import FlipAverage
from core.training.trainer import Trainer
from tests.conftest import make_folder, tiny_config


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    # asymmetric pictures, so an image and its mirror give different outputs
    return make_folder(tmp_path_factory.mktemp("tta") / "shapes", classes=3, per_class=10,
                       size=(45, 37))


class _Log:
    def __init__(self, out):
        self.out = out

    def on_event(self, event):
        if type(event).__name__ == "LogLine":
            self.out.append(event.message)


def _train(folder, run, **kw):
    cfg = tiny_config(folder, **{"epochs": 1, "freeze_epochs": 0, "val_split": 0.3, **kw})
    return Trainer(cfg, run_dir=run).fit()


@pytest.mark.parametrize("cached", [False, True])
def test_the_reported_accuracy_is_what_evaluate_gives(folder, tmp_path, cached):
    # cached: everything but the head stays frozen, so validation runs on cached features
    kw = dict(freeze="backbone", freeze_epochs=5) if cached else {}
    logs = []
    # pretrained (offline) weights: a random network's outputs barely depend on the image
    cfg = tiny_config(folder, **{"epochs": 1, "freeze_epochs": 0, "val_split": 0.3,
                                 "tta": True, "model": "efficientnet_lite0",
                                 "weights": "imagenet", "precision": "32", **kw})
    result = Trainer(cfg, [_Log(logs)], run_dir=tmp_path / "run").fit()
    assert any("Caching the frozen layers" in m for m in logs) == cached
    model = tmp_path / "run" / "model.pt"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["tta"] is True
    lm = load_model_file(model)
    assert lm.flip_average
    ev = evaluate_model(model)
    assert ev.accuracy == pytest.approx(result.history[-1]["val_acc"], abs=1e-6)
    # the loss too: a wrong mirror half (or none) would move it
    assert ev.loss == pytest.approx(result.history[-1]["val_loss"], rel=2e-3, abs=1e-4)
    lm.flip_average = False
    assert evaluate_model(model, lm=lm).loss != pytest.approx(ev.loss, rel=1e-4)


def test_flip_average_is_the_mean_of_the_image_and_its_mirror():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 3))
    x = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        want = (net(x) + net(x.flip(-1))) / 2
        assert torch.allclose(FlipAverage(net)(x), want, atol=1e-6)
        assert not torch.allclose(net(x), want, atol=1e-3)


def test_model_pt_remembers_the_setting(folder, tmp_path):
    _train(folder, tmp_path / "run", tta=True)
    lm = load_model_file(tmp_path / "run" / "model.pt")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert lm.flip_average and torch.allclose(lm.net(x)[0], FlipAverage(lm.model)(x),
                                                  atol=1e-5)
    _train(folder, tmp_path / "plain")
    plain = load_model_file(tmp_path / "plain" / "model.pt")
    with torch.no_grad():
        assert not plain.flip_average and torch.allclose(plain.net(x)[0], plain.model(x),
                                                         atol=1e-5)


@pytest.mark.slow
def test_the_onnx_export_carries_the_averaging(folder, tmp_path):
    _train(folder, tmp_path / "run", tta=True)
    model = tmp_path / "run" / "model.pt"
    report = export_model(model, "onnx", tmp_path / "m.onnx")
    assert report.verification.ok
    ours = predict_files(load_onnx(tmp_path / "m.onnx"), [folder], topk=3)
    theirs = predict_paths(load_model_file(model), [folder], topk=3)
    for a, b in zip(ours, theirs):
        assert a.topk[0][0] == b.topk[0][0]
        assert np.allclose([p for _, p in a.topk], [p for _, p in b.topk], atol=TOLERANCE)
