"""How pixels become model input, stored with every saved model: the one preprocessing.

Prediction must use exactly what training used, so this travels inside checkpoints and model
files as a plain dict (``torch.load(weights_only=True)`` accepts it). The rule, every path
(training, ``predict`` on model.pt / .onnx / .pt2, ``evaluate``, the Inference tab):

1. decode (core.data.images.open_rgb: EXIF turned upright, transparency on white, 16-bit
   scaled);
2. shorter side resized to ``resize_size`` with the weights' own ``interpolation`` (PIL),
   centre square of ``crop_size`` cut: uint8 (core.data.images.load_pixels);
3. values / 255, minus ``mean``, divided by ``std`` per channel: ``normalise`` (numpy) here,
   core.data.batches.to_model_input (torch) in training; a test holds them equal;
4. when ``crop_size`` is not ``image_size`` (a model trained on images of another size than
   its input, CIFAR's 32 px thumbnails), the square is resized to ``image_size`` with the
   same interpolation *inside the network* (core.inference.forward.InputResize), so the
   exported ONNX and pt2 files do it too, with the very operator training used.

This module imports no torch: the ONNX path uses it without PyTorch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ImageNet models are evaluated on the centre 224/256 of the shorter side. Photos taken at
# their own resolution are framed like ImageNet's, so folders of such photos are trained and
# predicted on the same centre crop (core.data.folder.framing decides; on the shared ants/bees
# photos EfficientNet-Lite0's own ImageNet head scored 97.4% with it vs 96.7% on whole squares
# at 224 px, 98.7% vs 96.7% at 288 px). The weights' own crop share (Preprocessing.crop of
# their config) is used where it is known; this is the convention when it is not.
PHOTO_CROP = 0.875
# Resampling filters a weights' config may ask for (timm: "bicubic" for the EfficientNets;
# torchvision's ImageNet weights: bilinear). Names as timm and torch's interpolate spell them.
INTERPOLATIONS = ("bilinear", "bicubic")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024  # the network input sides a model file may declare


def is_photo(side: int | None, image_size: int) -> bool:
    """Images whose shorter side (``side``; None: unknown) is at least the network's input:
    real photos, framed with the weights' crop, not thumbnails (kept whole)."""
    return side is not None and side >= image_size


@dataclass(frozen=True)
class Preprocessing:
    image_size: int = 224  # the network's input side
    resize_size: int = 256  # shorter side before the centre crop
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)
    interpolation: str = "bilinear"  # PIL resize, and the network's input resize
    crop_size: int | None = None  # the centre square's side (None: image_size)

    def __post_init__(self):
        if self.crop_size is None:
            object.__setattr__(self, "crop_size", self.image_size)

    @property
    def crop(self) -> float:
        """The share of the shorter side the centre square covers."""
        return self.crop_size / self.resize_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        """Files written before interpolation and crop_size were recorded: bilinear, and a
        square of the network's own size (what those versions predicted with)."""
        return cls(
            image_size=int(d["image_size"]),
            resize_size=int(d["resize_size"]),
            mean=tuple(float(x) for x in d["mean"]),
            std=tuple(float(x) for x in d["std"]),
            interpolation=str(d.get("interpolation", "bilinear")),
            crop_size=int(d.get("crop_size") or d["image_size"]),
        )

    def problem(self) -> str | None:
        """What makes these settings impossible, in words; None when they are usable."""
        if not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            return f"an input size of {self.image_size} px"
        if not 0 < self.crop_size <= MAX_IMAGE_SIZE or self.resize_size < self.crop_size:
            return (f"a {self.crop_size} px square cut from a {self.resize_size} px side for "
                    f"a {self.image_size} px input")
        if len(self.mean) != 3 or len(self.std) != 3 or not all(s > 0 for s in self.std):
            return f"mean {self.mean} / std {self.std}"
        if self.interpolation not in INTERPOLATIONS:
            return f"interpolation {self.interpolation!r} (known: {', '.join(INTERPOLATIONS)})"
        return None

    def for_training(self, image_size: int, crop: float = 1.0,
                     side: int | None = None) -> "Preprocessing":
        """What a model trained at ``image_size`` on squares of ``side`` (None: image_size)
        covering ``crop`` of each image's shorter side expects: the same square, cut the
        same way, resized to image_size when it differs. The weights' mean, std and
        interpolation are kept."""
        side = side or image_size
        return Preprocessing(image_size, resize_for_crop(side, crop), self.mean, self.std,
                             self.interpolation, side)

    def describe(self) -> str:
        square = (f", resized to {self.image_size} px" if self.crop_size != self.image_size
                  else "")
        return (f"shorter side to {self.resize_size} px ({self.interpolation}), centre "
                f"{self.crop_size} px{square}; mean {tuple(round(m, 3) for m in self.mean)}, "
                f"std {tuple(round(s, 3) for s in self.std)}")


def resize_for_crop(size: int, crop: float) -> int:
    """The shorter side that leaves a ``size`` centre square covering ``crop`` of it."""
    return max(size, round(size / crop))


# Written out for exported models' metadata (their users preprocess by hand).
RESIZE_RULE = ("RGB (EXIF orientation applied, transparency on white); shorter side resized "
               "to resize_size with PIL's 'interpolation' filter, centre crop of crop_size x "
               "crop_size; values / 255, minus mean, divided by std (per channel); float32 "
               "NCHW of crop_size x crop_size (the network resizes it to image_size itself "
               "when they differ)")


def _pil_filter(interpolation: str):
    from PIL import Image

    return {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[interpolation]


def resize_center_crop_pil(img, resize: int, crop: int, interpolation: str = "bilinear"):
    """Shorter side to ``resize``, then the centre ``crop`` square (a PIL image)."""
    w, h = img.size
    scale = resize / min(w, h)
    if scale != 1:
        img = img.resize((max(crop, round(w * scale)), max(crop, round(h * scale))),
                         _pil_filter(interpolation))
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    return img.crop((left, top, left + crop, top + crop))


def normalise(pixels, pre: Preprocessing):
    """uint8 (N, S, S, 3) pixels -> normalised float32 (N, 3, S, S), the network's input.
    Step for step what core.data.batches.to_model_input computes (a test holds them equal)."""
    import numpy as np

    x = np.asarray(pixels).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255)
    mean = np.asarray(pre.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(pre.std, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)
