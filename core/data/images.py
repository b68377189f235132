"""Decoding one image file into a uint8 tensor, shared by training data and prediction."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class UnreadableImage(Exception):
    """A file that is not an image or is corrupt; the message says why."""


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def open_rgb(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()  # decodes fully: a truncated JPEG fails here, not later
            return img.convert("RGB")
    except FileNotFoundError:
        raise UnreadableImage("file not found") from None
    except UnidentifiedImageError:
        raise UnreadableImage("not an image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImage(f"corrupt image ({exc})") from None


def resize_center_crop(img: Image.Image, resize: int, crop: int) -> torch.Tensor:
    """Shorter side to ``resize``, then the centre ``crop`` square, as a (3, crop, crop) uint8."""
    w, h = img.size
    scale = resize / min(w, h)
    if scale != 1:
        img = img.resize((max(crop, round(w * scale)), max(crop, round(h * scale))),
                         Image.BILINEAR)
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    img = img.crop((left, top, left + crop, top + crop))
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(crop, crop, 3) \
        .permute(2, 0, 1).contiguous()


def load_square(path: str | Path, size: int) -> torch.Tensor:
    return resize_center_crop(open_rgb(path), size, size)
