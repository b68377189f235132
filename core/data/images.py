"""The one decoder and the one lister: image files into RGB pixels and squares, for training,
evaluation and prediction of every model format (the ONNX path included: no torch import).

The one home of what counts as an image file (``IMAGE_EXTENSIONS``, ``list_images``) and of
the size limits.
Anything a file can do wrong (not an image, truncated, empty, too small, a decompression
bomb, unreadable) ends as ``UnreadableImage`` whose message says why; nothing else escapes,
so one bad file never costs the results of the others.
"""
from __future__ import annotations

import errno
import os
import re
import threading
import warnings
from pathlib import Path

from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif",
                    ".tiff")
# A 12,000 x 12,500 photo still decodes (450 MB as RGB); a file that declares more is refused
# before any pixel is decoded. Pillow's guard is set to the same limit, and its warning (for
# sizes between the limit and twice it) is turned into the same refusal: never a warning,
# never an out-of-memory kill.
MAX_IMAGE_PIXELS = 150_000_000
MIN_IMAGE_SIDE = 8  # smaller images hold nothing to classify
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# Pillow's notes on damaged files ("Corrupt EXIF data", "Tag data larger than file"): the
# file then decodes or is skipped with its reason, so the note is noise on the console.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

# warnings.catch_warnings() swaps process-wide state: opens (header reads only) take turns.
_guard = threading.Lock()


class UnreadableImage(Exception):
    """A file that is not an image, is damaged or cannot be read; the message says why."""


def is_image_name(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def file_dialog_filter() -> str:
    """``Images (*.jpg *.png …)`` for file choosers."""
    return "Images (" + " ".join(f"*{e}" for e in IMAGE_EXTENSIONS) + ")"


def _os_reason(exc: OSError, path) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (the file cannot be read)"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a file"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(exc, FileNotFoundError):
        return ("broken symbolic link (its target is missing)" if os.path.islink(path)
                else "file not found")
    return f"cannot read the file ({exc.strerror or exc})"


def _too_large(exc: Warning | Exception) -> UnreadableImage:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels" if found else "its size"
    return UnreadableImage(f"too large: {size} is over the limit of {MAX_IMAGE_PIXELS:,} "
                           f"pixels (a possible decompression bomb)")


def _open_checked(f) -> Image.Image:
    """Read the header only and apply the limits; nothing is decoded yet."""
    try:
        with _guard, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(exc) from None
    except Image.UnidentifiedImageError:
        raise UnreadableImage("not an image") from None
    except OSError as exc:
        if exc.errno is not None:
            raise UnreadableImage(_os_reason(exc, f.name)) from None
        raise UnreadableImage(f"corrupt image ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a decoder's error on hostile data is the file's
        raise UnreadableImage(f"corrupt image ({type(exc).__name__}: {exc})") from None
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:  # an animated frame or a format Pillow checks later
        img.close()
        raise _too_large(Exception(f"({w * h} pixels)"))
    if min(w, h) < MIN_IMAGE_SIDE:
        img.close()
        raise UnreadableImage(f"too small ({w}x{h} pixels; at least {MIN_IMAGE_SIDE} on each "
                              f"side)")
    return img


def _open(path: str | os.PathLike):
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UnreadableImage(_os_reason(exc, path)) from None
    try:
        if os.fstat(f.fileno()).st_size == 0:
            raise UnreadableImage("empty file (0 bytes)")
        return f, _open_checked(f)
    except BaseException:
        f.close()
        raise


def header_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from the header, or None for a file that would be skipped."""
    try:
        f, img = _open(path)
    except UnreadableImage:
        return None
    with f, img:
        return img.size


def header_problem(path: str | os.PathLike) -> str:
    """Why ``path`` would be skipped, judged from its header alone ("" when it looks fine):
    the decoder's own reasons, cheap enough for 100,000 files (a truncated body is found
    only when decoded)."""
    try:
        f, img = _open(path)
    except UnreadableImage as exc:
        return str(exc)
    f.close()
    img.close()
    return ""


# --- which files are images ------------------------------------------------------------------
IGNORED_FOLDERS = ("__MACOSX",)  # resource forks that Mac-made zip archives carry along


def visible(name: str) -> bool:
    return not name.startswith(".") and name not in IGNORED_FOLDERS


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image-named files below ``folder``, sorted; hidden files and folders left out.
    os.walk rather than Path.rglob: rglob hashes every path in long GIL-holding stretches,
    which stalls the GUI thread. Symbolic links to folders are not followed (no loops); links
    to files are listed, and a broken or looping one is skipped with its reason when decoded."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if visible(d)]
        out += [os.path.join(dirpath, f) for f in filenames if visible(f) and is_image_name(f)]
    return [Path(p) for p in sorted(out)]


def list_images(paths) -> list[Path]:
    """What every prediction front end reads: files as given (a named file is tried whatever
    its name, and skipped with its reason if it is no image), folders searched recursively
    for image files."""
    out = []
    for p in map(Path, paths):
        out += image_files(p) if p.is_dir() else [p]
    return out


def _high_depth_to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float greyscale ("I;16", "I", "F") to "L". Pillow's own conversion clips at
    255, which turns a 16-bit PNG almost all white."""
    import numpy as np

    arr = np.asarray(img, dtype=np.float64)
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    lo, peak = min(0.0, float(arr.min())), float(arr.max())
    if img.mode == "F" and peak <= 1.0:
        hi = 1.0
    elif img.mode.startswith("I;16") or 255 < peak <= 65535:
        hi = 65535.0
    else:
        hi = max(peak, 255.0)
    out = (arr - lo) / max(hi - lo, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="L")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _high_depth_to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        # transparent areas become white, not whatever colour they happen to hold
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _upright(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a damaged EXIF block leaves the pixels as stored
        return img


def open_rgb(path: str | os.PathLike, draft: int | None = None) -> Image.Image:
    """The image as RGB, turned upright by its EXIF orientation; ``UnreadableImage`` if not.
    ``draft``: a thumbnail's side; a JPEG then decodes at the smallest scale that still
    covers it (several times faster; pixels as a smaller photo of the same scene)."""
    f, img = _open(path)
    with f, img:
        try:
            if draft:
                img.draft("RGB", (draft, draft))
            img.load()  # decodes fully: a truncated JPEG fails here, not later
            return _to_rgb(_upright(img))
        except MemoryError:
            raise UnreadableImage("too large to decode in the memory available") from None
        except OSError as exc:
            if exc.errno is not None:
                raise UnreadableImage(_os_reason(exc, path)) from None
            raise UnreadableImage(f"corrupt image ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on hostile data
            raise UnreadableImage(f"corrupt image ({type(exc).__name__}: {exc})") from None


def square(img: Image.Image, resize: int, crop: int, interpolation: str = "bilinear"):
    """Shorter side to ``resize`` (PIL ``interpolation``), then the centre ``crop`` square, as
    a (crop, crop, 3) uint8 numpy array (the rule: core.preprocess)."""
    import numpy as np

    from core.preprocess import resize_center_crop_pil

    return np.array(resize_center_crop_pil(img, resize, crop, interpolation), dtype=np.uint8)


def load_pixels(path: str | os.PathLike, pre):
    """What a model with Preprocessing ``pre`` sees of one file, before normalisation: a
    (crop_size, crop_size, 3) uint8 array. Every prediction (any format) reads files through
    this; training and evaluation decode through ``load_square``, which gives the same pixels
    for the model's own settings (a test holds them equal)."""
    return square(open_rgb(path), pre.resize_size, pre.crop_size, pre.interpolation)


def resize_center_crop(img: Image.Image, resize: int, crop: int,
                       interpolation: str = "bilinear"):
    """``square`` as a (3, crop, crop) uint8 tensor."""
    import torch

    return torch.from_numpy(square(img, resize, crop, interpolation)).permute(2, 0, 1) \
        .contiguous()


def load_square(path: str | os.PathLike, size: int, crop: float = 1.0,
                interpolation: str = "bilinear"):
    """The centre square covering ``crop`` of the shorter side, at ``size`` x ``size``
    (training's decode; for a model's own Preprocessing it equals ``load_pixels``)."""
    from core.preprocess import resize_for_crop

    return resize_center_crop(open_rgb(path), resize_for_crop(size, crop), size, interpolation)
