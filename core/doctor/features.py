"""Per-image features for the check: what the network sees, and a perceptual hash.

For every image: the network's pooled features at two depths (the last layer before the
head, and the last one at 1/16 of the input's side: textures and parts that the last layer
has already pooled away); a 64-bit perceptual hash (imagehash's pHash) that survives
re-encoding and resizing; a small grey thumbnail that tells a cropped copy from a look-alike
(core.doctor.pixels); the pixels' spread (a blank frame has almost none) and the image's own
size. With a trained run's model, also its
class probabilities. A run's network sees each image and its mirror image (features and
probabilities averaged, as the run validates with test-time flips); the ImageNet backbone
sees the image alone: the mirror's average doubled the time for one point of the
cross-validated heads' accuracy (10,040 CIFAR-10 thumbnails: 74.4% vs 73.4%, the same
planted flips among the 600 images ranked first, 79-80%).

The network is an ImageNet backbone (``Backbone.imagenet``) or a run's fine-tuned model
(``Backbone.from_run``). Rows are cached on disk per dataset and network, under the decoded
cache's rules (atomic writes, least-recently-used eviction under the same size cap); a row
is keyed by its file's size, modification time and inode, which a move inside the dataset
keeps, so a second check computes only new or changed images. A cancelled check keeps what
it computed. The network runs in float32 or bf16, whichever this CPU runs faster
(core.doctor.speed: timed once per CPU kind, then cached).
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from core.data import disk_cache
from core.data.batches import to_model_input
from core.data.images import UnreadableImage, resize_center_crop
from core.doctor import pixels, speed
from core.doctor.items import Items
from core.models.staging import stages
from core.paths import atomic_path, cache_dir
from core.preprocess import Preprocessing, resize_for_crop
from core.progress import TaskState

FEATURE_FORMAT = 3  # 3: + the grey thumbnails
TOP = 32  # classes of the network's own head kept per image
DEFAULT_BACKBONE = "efficientnet_lite0"  # its ImageNet weights ship with the app
BATCH = 32
SAVE_EVERY = 2048  # images between saves of the cache (a cancel loses less)
STATS = ("spread", "width", "height")


@dataclass
class Backbone:
    arch: str
    model: torch.nn.Module
    preprocessing: Preprocessing
    ident: str  # what the cache is keyed by
    classes: list[str] | None = None  # a run's classes: its probabilities are kept too
    fine_tuned: bool = False  # a run's network: sees the mirror image too, at its own size

    @classmethod
    def imagenet(cls, name: str = DEFAULT_BACKBONE) -> "Backbone":
        from core.models import build_model

        model, pre, _ = build_model(name, "imagenet", None)
        return cls(name, _ready(model), pre, f"imagenet:{name}")

    @classmethod
    def from_run(cls, model_file: str) -> "Backbone":
        import os

        from core.inference.predict import load_model_file

        lm = load_model_file(model_file)
        st = os.stat(model_file)
        return cls(lm.arch, _ready(lm.model), lm.preprocessing,
                   f"run:{os.path.abspath(model_file)}|{st.st_size}|{st.st_mtime_ns}",
                   lm.classes, fine_tuned=True)

    @property
    def final_dims(self) -> int:
        """How many of the feature columns (the first) are the last layer's."""
        from core.models.heads import head_path

        return int(self.model.get_submodule(head_path(self.model)).in_features)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, bf16: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (B,3,S,S) -> (features (B,D), the head's probabilities (B,classes)), for
        a run's network the mean over the image and its mirror image (float32; computed under
        bf16 autocast when ``bf16``)."""
        pre = self.preprocessing
        x = to_model_input(x, x.shape[-1], pre.mean, pre.std)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            f, p = self._taps(x)
            if self.fine_tuned:
                f2, p2 = self._taps(x.flip(-1))
                f, p = (f.float() + f2.float()) / 2, (p.float() + p2.float()) / 2
        return f.float(), p.float()

    def _taps(self, x: torch.Tensor):
        side, mid = x.shape[-1], None
        stage_list = stages(self.arch, self.model)
        for stage in stage_list[:-1]:
            x = stage.fn(x)
            if x.dim() == 4 and x.shape[-1] == -(-side // 16):
                mid = x.mean((2, 3))
        final = x.flatten(1) if x.dim() == 2 else x.mean((2, 3))
        parts = [final] if mid is None else [final, mid]
        return torch.cat(parts, 1), stage_list[-1].fn(final).softmax(1)


def _ready(model: torch.nn.Module) -> torch.nn.Module:
    """Evaluation mode, channels-last like its input (core.data.batches.to_model_input):
    oneDNN's convolutions are fastest so on CPUs."""
    return model.eval().to(memory_format=torch.channels_last)


@dataclass
class Features:
    """Rows aligned with the check's items; ``ok[i]`` False where item i is unreadable."""
    feats: torch.Tensor  # float32 (N, D)
    phash: np.ndarray  # uint64 (N,)
    thumbs: np.ndarray  # uint8 (N, pixels.SIDE, pixels.SIDE)
    stats: np.ndarray  # float32 (N, len(STATS))
    ok: np.ndarray  # bool (N,)
    errors: dict[int, str]
    top_p: np.ndarray  # float32 (N, TOP): the head's most likely classes' probabilities
    top_i: np.ndarray  # int64 (N, TOP): ... and which classes
    computed: int  # rows computed now (the rest came from the cache)
    precision: dict | None = None  # how the network ran (core.doctor.speed), when it did

    def head_probs(self, classes: int) -> np.ndarray:
        """(N, classes) probabilities of the network's head, from the kept top classes."""
        out = np.zeros((len(self.ok), classes))
        np.put_along_axis(out, self.top_i, self.top_p, axis=1)
        return out


def feature_size(median_side: int | None, pre: Preprocessing, own: bool = False
                 ) -> tuple[int, float]:
    """(input side, share of the shorter side kept) for the features. Photos as the network
    sees them (its own size and centre crop). Small images (CIFAR-like thumbnails) whole: at
    a run's own size for a run's network (``own``: the size it was fine-tuned at), else
    enlarged 4x but to no more than the network's size: a linear head on EfficientNet-Lite0
    features of CIFAR-10 was 76% right at 128 px and 78% at 224 (../shared/notes), for a
    third of the time."""
    if median_side is None or median_side >= pre.image_size:
        return pre.image_size, min(1.0, pre.image_size / pre.resize_size)
    if own:
        return pre.image_size, 1.0
    return min(pre.image_size, max(4 * median_side, 64)), 1.0


def _cache_path(items: Items, backbone: Backbone, size: int, crop: float):
    where = str(items.root) if items.root is not None else items.source
    key = hashlib.sha256(f"{FEATURE_FORMAT}|{backbone.ident}|{backbone.fine_tuned}|{size}|"
                         f"{crop}|{pixels.SIDE}|{where}".encode())
    return cache_dir() / "features" / f"{key.hexdigest()[:24]}.pt"


def _load_cache(path) -> dict:
    try:
        d = torch.load(path, weights_only=True)
        disk_cache.touch(path)  # a hit: least recently used entries go first
        return d
    except FileNotFoundError:
        return {}
    except Exception:  # noqa: BLE001 - a damaged cache is recomputed, not fatal
        path.unlink(missing_ok=True)
        return {}


def _save_cache(path, keys: list[str], f: Features) -> None:
    keep = [i for i, k in enumerate(keys) if f.ok[i] or i in f.errors]
    try:
        with atomic_path(path) as tmp:
            torch.save({"keys": [keys[i] for i in keep], "feats": f.feats[keep].half(),
                        "phash": torch.from_numpy(f.phash[keep].view(np.int64)),
                        "thumbs": torch.from_numpy(f.thumbs[keep]),
                        "stats": torch.from_numpy(f.stats[keep]),
                        "ok": torch.from_numpy(f.ok[keep]),
                        "top_p": torch.from_numpy(f.top_p[keep]).half(),
                        "top_i": torch.from_numpy(f.top_i[keep]).int(),
                        "errors": {keys[i]: f.errors[i] for i in keep if i in f.errors}}, tmp)
        disk_cache.enforce_cap(path.parent)
    except (OSError, RuntimeError):
        pass  # a read-only or full cache folder only costs time next check


def _sample_side(items: Items) -> int | None:
    from pathlib import Path

    from core.data.folder import median_side

    if items.root is None:
        return next(iter(items.arrays.values())).shape[1]
    return median_side([(Path(items.abspath(i)), 0) for i in range(len(items))])


def _decode(items: Items, i: int, size: int, crop: float):
    """(square uint8 (3,S,S), pHash, thumbnail, stats) of item ``i``, or the reason it is
    unreadable."""
    import imagehash

    try:
        img = items.image(i)
    except UnreadableImage as exc:
        return str(exc)
    square = resize_center_crop(img, resize_for_crop(size, crop), size)
    h = int(str(imagehash.phash(img)), 16)
    spread = float(square.float().std()) / 255
    return square, h, pixels.thumbnail(img), (spread, *img.size)


def compute(items: Items, backbone: Backbone, state: TaskState | None = None) -> Features:
    """Features of every item, from the cache where its file is unchanged."""
    state = state or TaskState()
    size, crop = feature_size(_sample_side(items), backbone.preprocessing,
                              own=backbone.fine_tuned)
    path = _cache_path(items, backbone, size, crop)
    cached = _load_cache(path)
    keys = [items.stat_key(i) for i in range(len(items))]
    row = {k: j for j, k in enumerate(cached.get("keys", []))}
    n = len(items)
    f = Features(torch.zeros(0), np.zeros(n, np.uint64),
                 np.zeros((n, pixels.SIDE, pixels.SIDE), np.uint8),
                 np.zeros((n, len(STATS)), np.float32), np.zeros(n, bool), {},
                 np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64), 0)
    if cached:
        _fill_from_cache(f, cached, [(i, row[k]) for i, k in enumerate(keys) if k in row], n)
    todo = [i for i, k in enumerate(keys) if k not in row]
    try:
        _compute_rows(items, backbone, f, todo, size, crop, state, lambda: _save_cache(
            path, keys, f))
    finally:
        if f.computed:
            _save_cache(path, keys, f)
    return f


def _fill_from_cache(f: Features, d: dict, pairs: list[tuple[int, int]], n: int) -> None:
    f.feats = torch.zeros((n, d["feats"].shape[1]))
    f.top_p = np.zeros((n, d["top_p"].shape[1]), np.float32)
    f.top_i = np.zeros((n, d["top_i"].shape[1]), np.int64)
    errors = d.get("errors", {})
    for i, j in pairs:
        k = d["keys"][j]
        if k in errors:
            f.errors[i] = errors[k]
            continue
        f.feats[i] = d["feats"][j].float()
        f.phash[i] = np.uint64(int(d["phash"][j]) & (2**64 - 1))
        f.thumbs[i] = d["thumbs"][j].numpy()
        f.stats[i] = d["stats"][j].numpy()
        f.ok[i] = bool(d["ok"][j])
        f.top_p[i] = d["top_p"][j].float().numpy()
        f.top_i[i] = d["top_i"][j].numpy()


def _compute_rows(items, backbone, f: Features, todo: list[int], size: int, crop: float,
                  state: TaskState, save) -> None:
    """Decode the next batch on a helper thread while the network runs on this one."""
    if not todo:
        return
    batches = [todo[k:k + BATCH] for k in range(0, len(todo), BATCH)]
    stage = "Computing features"
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(lambda b=batches[0]: [_decode(items, i, size, crop) for i in b])
        for b, batch in enumerate(batches):
            state.check()
            state.report(stage, b * BATCH, len(todo))
            decoded = ahead.result()
            if f.precision is None:  # (None again when this batch has no readable image)
                f.precision = _precision(backbone, decoded, size, len(todo) - b * BATCH)
            if b + 1 < len(batches):
                ahead = pool.submit(lambda nb=batches[b + 1]: [_decode(items, i, size, crop)
                                                              for i in nb])
            _store(backbone, f, batch, decoded,
                   f.precision is not None and f.precision["choice"] == "bf16")
            if (b + 1) % (SAVE_EVERY // BATCH) == 0:
                save()
    state.report(stage, len(todo), len(todo))


def _precision(backbone: Backbone, decoded: list, size: int, todo: int) -> dict | None:
    """float32 or bf16 for this network and size on this CPU (core.doctor.speed), timed on
    a decoded batch when not yet known; None when the batch has no readable image."""
    good = [d[0] for d in decoded if not isinstance(d, str)]
    if not good:
        return None
    key = speed.workload_key(backbone.arch, size, BATCH, 1 + backbone.fine_tuned)
    return speed.choose_precision(backbone.forward, torch.stack(good), key, todo)


def _store(backbone: Backbone, f: Features, batch: list[int], decoded: list,
           bf16: bool = False) -> None:
    good = [(i, d) for i, d in zip(batch, decoded) if not isinstance(d, str)]
    for i, d in zip(batch, decoded):
        if isinstance(d, str):
            f.errors[i] = d
    f.computed += len(batch)
    if not good:
        return
    feats, probs = backbone.forward(torch.stack([d[0] for _, d in good]), bf16)
    top = probs.topk(min(TOP, probs.shape[1]), dim=1)
    if f.feats.numel() == 0:
        f.feats = torch.zeros((len(f.ok), feats.shape[1]))
        f.top_p = np.zeros((len(f.ok), top.values.shape[1]), np.float32)
        f.top_i = np.zeros((len(f.ok), top.values.shape[1]), np.int64)
    rows = [i for i, _ in good]
    f.feats[torch.tensor(rows)] = feats.float()
    f.top_p[rows] = top.values.float().numpy()
    f.top_i[rows] = top.indices.numpy()
    for i, (_, h, thumb, stats) in good:
        f.phash[i] = np.uint64(h)
        f.thumbs[i] = thumb
        f.stats[i] = stats
        f.ok[i] = True
