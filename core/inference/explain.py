"""Where the model looked: Grad-CAM (Selvaraju et al., 2017) on forward hooks, mapped back
onto the original photo (the model saw a centre crop; the heat map covers that region).

Written here in a few lines rather than taken from the ``grad-cam`` package, which pulls
OpenCV, matplotlib, scikit-learn and ttach into the app for this one computation; a test
holds this one to that package's maps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.catalog import CAM_LAYERS
from core.data.batches import to_model_input
from core.data.images import open_rgb, square
from core.errors import TransferLabError


def crop_box(width: int, height: int, resize: int, crop: int) -> tuple[int, int, int, int]:
    """The region of the original image that the centre crop covers: (left, top, right, bottom)."""
    scale = resize / min(width, height)
    cw, ch = crop / scale, crop / scale
    left, top = (width - cw) / 2, (height - ch) / 2
    return (max(0, round(left)), max(0, round(top)), min(width, round(left + cw)),
            min(height, round(top + ch)))


def cam_map(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor,
            class_index: int) -> np.ndarray:
    """Grad-CAM of ``model`` for ``class_index`` on one input ``x`` (1, 3, H, W): the
    ``layer``'s activations weighted by their spatially averaged gradients, rectified,
    scaled to [0, 1] and resized to (H, W)."""
    seen = []
    hook = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # gradients reach the layer even if frozen
            score = model(x)[0, class_index]
            grads = torch.autograd.grad(score, seen[0])[0]
    finally:
        hook.remove()
    activation = seen[0].detach()
    cam = _unit(F.relu((grads.mean((2, 3), keepdim=True) * activation).sum(1))[0])
    return _unit(F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear",
                               align_corners=False)[0, 0]).numpy().astype(np.float32)


def _unit(cam: torch.Tensor) -> torch.Tensor:
    cam = cam - cam.min()
    return cam / (cam.max() + 1e-7)


def gradcam(lm, path: str | Path, class_index: int) -> np.ndarray:
    """A float32 heat map in [0, 1] with the photo's own (height, width), for a model.pt or
    an ImageNet network (core.inference.predict.LoadedModel)."""
    from PIL import Image

    if not hasattr(lm, "net"):
        raise TransferLabError("Grad-CAM needs the PyTorch model (model.pt): an exported "
                               "file gives no gradients.")
    pre = lm.preprocessing
    img = open_rgb(path)
    pixels = torch.from_numpy(square(img, pre.resize_size, pre.crop_size, pre.interpolation))
    x = to_model_input(pixels.permute(2, 0, 1)[None], pre.crop_size, pre.mean, pre.std,
                       channels_last=False)
    layer = lm.model.get_submodule(CAM_LAYERS[lm.arch])
    with lm.lock:
        heat = cam_map(lm.model, layer, lm.net.network_input(x), class_index)
    w, h = img.size
    left, top, right, bottom = crop_box(w, h, pre.resize_size, pre.crop_size)
    region = Image.fromarray(heat).resize((right - left, bottom - top),
                                                    Image.BILINEAR)
    out = np.zeros((h, w), dtype=np.float32)
    out[top:bottom, left:right] = np.clip(np.asarray(region, dtype=np.float32), 0, 1)
    return out
