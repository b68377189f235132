"""How pixels become model input, stored with every saved model.

Prediction must use exactly what training used, so this travels inside checkpoints and model
files as a plain dict (``torch.load(weights_only=True)`` accepts it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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

    def for_training(self, image_size: int) -> "Preprocessing":
        """What a model trained at ``image_size`` expects: training sees whole centre
        squares resized to image_size, so prediction resizes the shorter side to the same
        size (no extra crop margin)."""
        return Preprocessing(image_size, image_size, self.mean, self.std)
