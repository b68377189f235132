"""Fitting a preset to the data it meets (``TrainConfig.fit_data``). No torch import: the GUI
reads the rule's figures from here.

A preset is tuned on one kind of data; the fast ones were tuned on CIFAR-10 (45,000 thumbnails
upscaled to 176 px, where fine-tuning the later layers pays). A small folder of real photos is
another case, the textbook one of the lesson: few images, much like ImageNet's, so the
pretrained features are kept whole and only the head learns, from where the ImageNet head
already points (core.models.head_init), at a resolution that keeps the photos' detail.

Measured on the shared ants/bees photos (245 train / 153 val images, EfficientNet-Lite0,
3 epochs, seeds 1-3): fast-cpu as tuned for CIFAR 92.2% (176 px, centre crop); only the head,
matched start, 256 px 98.0% (all three seeds), 224 px 97.4%; only the head from a random start
at 256 px 94.1-95.4%; the later layers too at 256 px 96.7%.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.config import TrainConfig
from core.preprocess import is_photo

SMALL_PER_CLASS = 300  # fewer training images per class than this: "small"
PHOTO_SIZE = 256  # the least image size for a small photo folder
# only the head trains, on features computed once: an epoch is a fraction of a second
SMALL_EPOCHS = 10
SMALL_PHOTOS = "small-photo-folder"  # Adjustment.reason
FIT_KEYS = ("image_size", "epochs", "freeze", "freeze_epochs", "head_init")  # what fitting may change


@dataclass(frozen=True)
class DataProfile:
    """What the data is, known before it is decoded (core.data.datasets.profile_data)."""
    images: int
    classes: int
    median_side: int | None  # the shorter side of a typical image; None: unknown

    def photos(self, image_size: int) -> bool:
        return is_photo(self.median_side, image_size)


@dataclass(frozen=True)
class Adjustment:
    key: str  # a TrainConfig field
    old: object
    new: object
    reason: str  # SMALL_PHOTOS

    def describe(self) -> str:
        return f"{self.key}: {self.old} -> {self.new}"


def fit_to_data(cfg: TrainConfig, profile: DataProfile) -> list[Adjustment]:
    """Change ``cfg`` in place for ``profile`` (when ``cfg.fit_data``, and only for pretrained
    weights: random features are no place to train a head alone); what changed, and why.
    Applying it again to its own result changes nothing."""
    images = profile.images if cfg.limit is None else min(profile.images, cfg.limit)
    small = images < SMALL_PER_CLASS * profile.classes
    if not cfg.fit_data or cfg.weights == "none" or not (profile.photos(cfg.image_size)
                                                         and small):
        return []
    # no larger than the photos' shorter side: more pixels than the photo has add nothing
    size = max(cfg.image_size, min(PHOTO_SIZE, profile.median_side))
    epochs = max(cfg.epochs, SMALL_EPOCHS)
    wanted = {"image_size": size, "epochs": epochs, "freeze": "backbone",
              "freeze_epochs": max(cfg.freeze_epochs, epochs)}
    if cfg.weights == "imagenet":  # a file's head is not ImageNet's
        wanted["head_init"] = "imagenet"
    changes = []
    for key, value in wanted.items():
        old = getattr(cfg, key)
        if old != value:
            setattr(cfg, key, value)
            changes.append(Adjustment(key, old, value, SMALL_PHOTOS))
    return changes


def summary(changes: list[Adjustment], profile: DataProfile) -> str:
    return (f"a small folder of photos ({profile.images} images, {profile.classes} classes, "
            f"typically {profile.median_side} px): only the head trains, from the ImageNet "
            f"classes the images look like, at a higher resolution "
            f"({', '.join(c.describe() for c in changes)})")
