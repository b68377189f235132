"""How pixels become model input, stored with every saved model.

Prediction must use exactly what training used, so this travels inside checkpoints and model
files as a plain dict (``torch.load(weights_only=True)`` accepts it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ImageNet models are evaluated on the centre 224/256 of the shorter side. Photos taken at
# their own resolution are framed like ImageNet's, so folders of such photos are trained and
# predicted on the same centre crop (core.data.folder.framing decides; on the shared ants/bees
# photos EfficientNet-Lite0's own ImageNet head scored 97.4% with it vs 96.7% on whole squares
# at 224 px, 98.7% vs 96.7% at 288 px).
PHOTO_CROP = 0.875


def is_photo(side: int | None, image_size: int) -> bool:
    """Images whose shorter side (``side``; None: unknown) is at least the network's input:
    real photos, framed with PHOTO_CROP, not thumbnails (kept whole)."""
    return side is not None and side >= image_size


@dataclass(frozen=True)
class Preprocessing:
    image_size: int = 224
    resize_size: int = 256  # shorter side before the centre crop of image_size
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(
            image_size=int(d["image_size"]),
            resize_size=int(d["resize_size"]),
            mean=tuple(float(x) for x in d["mean"]),
            std=tuple(float(x) for x in d["std"]),
        )

    def for_training(self, image_size: int, crop: float = 1.0) -> "Preprocessing":
        """What a model trained at ``image_size`` expects: training sees the centre ``crop``
        of each image's shorter side resized to image_size, so prediction resizes the shorter
        side to image_size / crop and cuts the same centre square (crop 1: no margin)."""
        return Preprocessing(image_size, resize_for_crop(image_size, crop), self.mean, self.std)


def resize_for_crop(size: int, crop: float) -> int:
    """The shorter side that leaves a ``size`` centre square covering ``crop`` of it."""
    return max(size, round(size / crop))


# The rule every front end applies, written out for exported models' metadata. The torch path
# is core.data.images.resize_center_crop + core.data.batches.to_model_input; the numpy path
# below (for onnxruntime, no torch) follows it step by step, and a test checks they agree.
RESIZE_RULE = ("RGB; shorter side resized to resize_size (PIL bilinear), centre crop of "
               "image_size x image_size; values / 255, minus mean, divided by std (per channel); "
               "float32 NCHW")


def resize_center_crop_pil(img, resize: int, crop: int):
    """Shorter side to ``resize``, then the centre ``crop`` square (a PIL image)."""
    from PIL import Image

    w, h = img.size
    scale = resize / min(w, h)
    if scale != 1:
        img = img.resize((max(crop, round(w * scale)), max(crop, round(h * scale))),
                         Image.BILINEAR)
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    return img.crop((left, top, left + crop, top + crop))


def to_input_array(images, pre: Preprocessing):
    """RGB PIL images -> normalised float32 (N, 3, S, S) numpy array, the model's input."""
    import numpy as np

    arrays = [np.asarray(resize_center_crop_pil(img.convert("RGB"), pre.resize_size,
                                                pre.image_size), dtype=np.uint8)
              for img in images]
    x = np.stack(arrays).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255)
    mean = np.asarray(pre.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(pre.std, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)
