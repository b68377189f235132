"""Where the model looked: Grad-CAM through the ``grad-cam`` library, mapped back onto the
original photo (the model saw a centre crop; the heat map covers that region of the image)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.catalog import CAM_LAYERS
from core.data.batches import to_model_input
from core.data.images import open_rgb, resize_center_crop
from core.inference.predict import LoadedModel


def crop_box(width: int, height: int, resize: int, crop: int) -> tuple[int, int, int, int]:
    """The region of the original image that the centre crop covers: (left, top, right, bottom)."""
    scale = resize / min(width, height)
    cw, ch = crop / scale, crop / scale
    left, top = (width - cw) / 2, (height - ch) / 2
    return (max(0, round(left)), max(0, round(top)), min(width, round(left + cw)),
            min(height, round(top + ch)))


def gradcam(lm: LoadedModel, path: str | Path, class_index: int) -> np.ndarray:
    """A float32 heat map in [0, 1] with the photo's own (height, width)."""
    from PIL import Image
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    pre = lm.preprocessing
    img = open_rgb(path)
    x = to_model_input(resize_center_crop(img, pre.resize_size, pre.image_size)[None],
                       pre.image_size, pre.mean, pre.std, channels_last=False)
    layer = lm.model.get_submodule(CAM_LAYERS[lm.arch])
    with lm.lock, GradCAM(model=lm.model, target_layers=[layer]) as cam:
        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(class_index)])[0]
    lm.model.eval()
    w, h = img.size
    left, top, right, bottom = crop_box(w, h, pre.resize_size, pre.image_size)
    region = Image.fromarray((heat * 255).astype(np.uint8)).resize((right - left, bottom - top),
                                                                  Image.BILINEAR)
    out = np.zeros((h, w), dtype=np.float32)
    out[top:bottom, left:right] = np.asarray(region, dtype=np.float32) / 255
    return out
