"""Whether two images are the same photo, by their pixels: the check's last word on a pair.

The network's features and the perceptual hash see a photo as a whole; a copy cropped a
little and scaled back moves both about as far as a different photo of the same scene does
(10,040 CIFAR-10 images with copies planted: cropped copies at cosine 0.71-0.90 and 10-22
bits of pHash, while 93 pairs of different originals were within 12 bits and above 0.8).
So each image keeps a small grey thumbnail (``SIDE`` px, the whole image squeezed square),
and a candidate pair (near neighbours by their features) is compared by its edges: the
thumbnails minus their local mean (what a crop or re-encoding keeps and a similar-looking
other photo does not share), one of them zoomed by up to ``ZOOMS`` and shifted to its
corners and edges, by normalised correlation; a pair that comes close (``REFINE``) is
compared again on a finer grid of zooms and shifts (``FINE_ZOOMS``, ``FINE_STEPS``). On those planted images the copy and its
original scored 0.96-1.0 when cropped or re-encoded (0.78-0.85 resized to 0.6: the hash
finds those), different photos at most 0.92 except one pair CIFAR itself holds twice.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIDE = 32
ZOOMS = (1.0, 1.08, 1.16, 1.25, 1.35)
FINE_ZOOMS = tuple(round(1 + 0.03 * k, 2) for k in range(13))  # 1.0 ... 1.36
FINE_STEPS = 5  # shifts along each axis, from one edge to the other
REFINE = 0.75  # a coarse score from which the pair is compared on the fine grid
SAME = 0.95  # correlation of the edges at which two images are one photo
AGREE = 0.5  # below it the edges contradict the features' "the same photo"
CHUNK = 256  # images whose views are made at once


def thumbnail(img) -> np.ndarray:
    """uint8 (SIDE, SIDE): the PIL image in grey, squeezed square."""
    from PIL import Image

    return np.asarray(img.convert("L").resize((SIDE, SIDE), Image.Resampling.BILINEAR),
                      np.uint8)


def _affines(zooms=ZOOMS, steps: int = 3) -> torch.Tensor:
    """(V, 2, 3): each zoom, shifted in ``steps`` from edge to edge along each axis."""
    out = []
    for z in zooms:
        s, m = 1 / z, 1 - 1 / z
        offsets = (0.0,) if z == 1.0 else tuple(np.linspace(-m, m, steps).tolist())
        out += [[[s, 0.0, tx], [0.0, s, ty]] for tx in offsets for ty in offsets]
    return torch.tensor(out)


def _edges(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) -> (B, (S-4)^2): the image minus its 5x5 mean (its edges and texture),
    the 2-pixel border left out, as centred unit vectors."""
    box = _box5(_box5(x, -1), -2)  # separable sums by cumulative sums: convolutions with
    x = (x[..., 2:-2, 2:-2] - box / 25).flatten(1)  # one channel are slow in oneDNN
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-6)


def _box5(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sums of 5 neighbouring values along ``dim`` (4 shorter: no padding)."""
    c = x.cumsum(dim)
    n = x.shape[dim]
    return c.narrow(dim, 4, n - 4) - torch.cat(
        [torch.zeros_like(c.narrow(dim, 0, 1)), c.narrow(dim, 0, n - 5)], dim)


@torch.no_grad()
def similarity(thumbs: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """For each (i, j): the best correlation of the edges, either image zoomed into the
    other, in [-1, 1]. Each image's zoomed views are made once (``CHUNK`` images at a time)
    and compared with all its partners at once."""
    out = torch.full((len(pairs),), -1.0)
    if not pairs:
        return out.numpy()
    p = torch.tensor(pairs)
    src, dst = torch.cat([p[:, 0], p[:, 1]]), torch.cat([p[:, 1], p[:, 0]])
    order = torch.argsort(src, stable=True)
    src, dst, pid = src[order], dst[order], torch.arange(len(p)).repeat(2)[order]
    images = torch.from_numpy(thumbs).float()[:, None]
    flat = _edges(images)
    theta = _affines()
    v = len(theta)
    grid = F.affine_grid(theta.repeat(CHUNK, 1, 1), (CHUNK * v, 1, SIDE, SIDE),
                         align_corners=False)
    bounds = torch.searchsorted(src, torch.arange(0, len(thumbs) + CHUNK, CHUNK))
    for c, start in enumerate(range(0, len(thumbs), CHUNK)):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        if lo == hi:
            continue
        local = src[lo:hi] - start
        mine = torch.unique(local)  # views only of the chunk's images that have partners
        part = images[start + mine].repeat_interleave(v, 0)
        views = _edges(F.grid_sample(part, grid[:len(part)], align_corners=False))
        views = views.view(len(mine), v, -1)
        row = torch.searchsorted(mine, local)
        slot = torch.arange(hi - lo) - torch.searchsorted(local, local)  # rank among its own
        partners = torch.zeros((len(mine), int(slot.max()) + 1, views.shape[-1]))
        partners[row, slot] = flat[dst[lo:hi]]
        best = torch.bmm(views, partners.transpose(1, 2)).amax(1)
        out.scatter_reduce_(0, pid[lo:hi], best[row, slot], "amax")
    close = (out >= REFINE).nonzero().squeeze(1)
    if len(close):
        out[close] = torch.maximum(out[close], _fine(images, flat, p[close]))
    return out.numpy()


def _fine(images: torch.Tensor, flat: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The best correlation of each pair on the fine grid, both ways."""
    theta = _affines(FINE_ZOOMS, FINE_STEPS)
    v, out = len(theta), []
    for start in range(0, len(pairs), 16):
        part = pairs[start:start + 16]
        both = torch.cat([part, part.flip(1)])  # (a zoomed vs b), (b zoomed vs a)
        grid = F.affine_grid(theta.repeat(len(both), 1, 1), (len(both) * v, 1, SIDE, SIDE),
                             align_corners=False)
        views = F.grid_sample(images[both[:, 0]].repeat_interleave(v, 0), grid,
                              align_corners=False)
        views = _edges(views).view(len(both), v, -1)
        best = torch.einsum("pvd,pd->pv", views, flat[both[:, 1]]).amax(1)
        out.append(torch.maximum(best[:len(part)], best[len(part):]))
    return torch.cat(out)
