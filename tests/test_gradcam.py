"""Grad-CAM on hooks (issue 20, item 2): the same maps as the ``grad-cam`` package (a
development requirement only, for this comparison), without its OpenCV, matplotlib,
scikit-learn and ttach in the app."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from core.catalog import CAM_LAYERS
from core.inference.explain import cam_map
from core.models import build_model
from tests.conftest import REPO


@pytest.mark.parametrize("arch", ["mobilenet_v2", "resnet18", "efficientnet_lite0"])
def test_maps_equal_the_grad_cam_packages(arch):
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model, _, _ = build_model(arch, "none", 5)
    model.eval()
    layer = model.get_submodule(CAM_LAYERS[arch])
    x = torch.randn(1, 3, 64, 96)
    ours = [cam_map(model, layer, x, cls) for cls in range(2)]
    assert all(p.grad is None for p in model.parameters())  # nothing accumulates
    for cls in range(2):
        with grad_cam.GradCAM(model=model, target_layers=[layer]) as cam:
            theirs = cam(input_tensor=x, targets=[ClassifierOutputTarget(cls)])[0]
        assert ours[cls].shape == theirs.shape == (64, 96)
        assert np.abs(ours[cls] - theirs).max() < 1e-4


def test_the_app_computes_maps_without_the_package():
    code = ("import sys; from core.inference.explain import gradcam; "
            "from core.inference.predict import load_imagenet_model; "
            "from PIL import Image; Image.new('RGB', (80, 60), (200, 90, 30)).save('/tmp/tl.png'); "
            "lm = load_imagenet_model('efficientnet_lite0'); h = gradcam(lm, '/tmp/tl.png', 1); "
            "assert h.shape == (60, 80); "
            "gone = [m for m in ('pytorch_grad_cam', 'cv2', 'ttach', 'matplotlib', 'sklearn') "
            "if m in sys.modules]; assert not gone, gone")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_bundle_keeps_scikit_learn_and_leaves_grad_cams_extras_out():
    """The data doctor needs scikit-learn at run time; grad-cam's own dependencies are not
    the app's any more (build.spec's Analysis excludes)."""
    spec = (REPO / "build.spec").read_text()
    excludes = re.search(r"excludes=\[(.*?)\]", spec, re.S).group(1)
    names = set(re.findall(r'"([\w.]+)"', excludes))
    assert not names & {"sklearn", "scipy"}
    assert {"pytorch_grad_cam", "ttach", "cv2", "matplotlib"} <= names
    requirements = (REPO / "requirements.txt").read_text().lower()
    assert "grad-cam" not in requirements and "grad_cam" not in requirements
