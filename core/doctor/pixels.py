"""Whether two images are the same photo, by their pixels: the check's last word on a pair.

The network's features and the perceptual hash see a photo as a whole; a copy cropped a
little and scaled back moves both about as far as a different photo of the same scene does
(10,040 CIFAR-10 images with copies planted: cropped copies at cosine 0.71-0.90 and 10-22
bits of pHash, while 93 pairs of different originals were within 12 bits and above 0.8).
So each image keeps a small grey thumbnail (``SIDE`` px, the whole image squeezed square),
and a candidate pair (near neighbours by their features) is compared by its edges: the
thumbnails minus their local mean (what a crop or re-encoding keeps and a similar-looking
other photo does not share), one of them zoomed by up to ``ZOOMS`` and shifted to its
corners and edges, as it is and mirrored, by normalised correlation; a pair that comes close
(``REFINE``) is compared again on a finer grid (``FINE_ZOOMS``, ``FINE_STEPS``). On those
planted CIFAR-10 images the copy and its original scored 0.979 or more when cropped, 0.969
or more re-encoded (0.83-0.85 resized to 0.6: the hash finds those), and of 24,238 other
candidate pairs the most alike scored 0.941, but for one pair CIFAR itself holds twice.
Photos at their own size score lower (their 32-px thumbnails move more with a crop: 0.86-0.97
for the planted ones, at most 0.27 between different photos), where the features and the
hash find the copies.
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
CAP = 2**25  # floats of one chunk's partners side by side (128 MB); beyond it, row by row
ROWS = 512  # rows at a time then


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
    band = _band(x.shape[-1])  # box sums as two small matrix products: oneDNN's
    box = band.T @ x @ band  # one-channel convolutions and cumulative sums were slow
    x = (x[..., 2:-2, 2:-2] - box / 25).flatten(1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-6)


def _band(n: int) -> torch.Tensor:
    """(n, n-4): column j sums rows j..j+4 (a 5-wide box without padding)."""
    i = torch.arange(n)[:, None]
    j = torch.arange(n - 4)[None, :]
    return ((i >= j) & (i < j + 5)).float()


@torch.no_grad()
def similarity(thumbs: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """For each (i, j): the best correlation of the edges, either image zoomed into the
    other, as it is or mirrored, in [-1, 1]. Each image's zoomed views are made once
    (``CHUNK`` images at a time) and compared with all its partners at once."""
    out = torch.full((len(pairs),), -1.0)
    if not pairs:
        return out.numpy()
    p = torch.tensor(pairs)
    images = torch.from_numpy(thumbs).float()[:, None]
    edges = torch.stack([_edges(images), _edges(images.flip(-1))], 1)  # (N, 2, D)
    src, dst = torch.cat([p[:, 0], p[:, 1]]), torch.cat([p[:, 1], p[:, 0]])
    order = torch.argsort(src, stable=True)
    src, dst, pid = src[order], dst[order], torch.arange(len(p)).repeat(2)[order]
    theta = _affines()
    grid = F.affine_grid(theta.repeat(min(CHUNK, len(thumbs)), 1, 1),
                         (min(CHUNK, len(thumbs)) * len(theta), 1, SIDE, SIDE),
                         align_corners=False)
    bounds = torch.searchsorted(src, torch.arange(0, len(thumbs) + CHUNK, CHUNK))
    for c in range(len(bounds) - 1):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        if lo < hi:
            best = _chunk(images, edges, grid, len(theta), src[lo:hi], dst[lo:hi])
            out.scatter_reduce_(0, pid[lo:hi], best, "amax")
    close = (out >= REFINE).nonzero().squeeze(1)
    if len(close):
        out[close] = torch.maximum(out[close], _fine(images, edges, p[close]))
    return out.numpy()


def _chunk(images: torch.Tensor, edges: torch.Tensor, grid: torch.Tensor, v: int,
           src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The best score of each row (``src`` zoomed vs ``dst``; ``src`` sorted, its images
    within one chunk): one batched product with each image's partners side by side, or,
    where one image has so many partners that padding would not fit in ``CAP``, by rows."""
    mine = torch.unique(src)  # views only of the images that have partners
    views = F.grid_sample(images[mine].repeat_interleave(v, 0), grid[:len(mine) * v],
                          align_corners=False)
    views = _edges(views).view(len(mine), v, -1)
    row = torch.searchsorted(mine, src)
    slot = torch.arange(len(src)) - torch.searchsorted(src, src)  # rank among its own
    width, d = int(slot.max()) + 1, views.shape[-1]
    if len(mine) * width * 2 * d <= CAP:
        partners = torch.zeros((len(mine), width, 2, d))
        partners[row, slot] = edges[dst]
        scores = torch.bmm(views, partners.view(len(mine), 2 * width, d).transpose(1, 2))
        return scores.view(len(mine), v, width, 2).amax((1, 3))[row, slot]
    best = torch.empty(len(src))
    for b in range(0, len(src), ROWS):
        part = slice(b, b + ROWS)
        best[part] = torch.einsum("pvd,pod->pvo", views[row[part]],
                                  edges[dst[part]]).amax((1, 2))
    return best


def _fine(images: torch.Tensor, edges: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The best correlation of each pair on the fine grid, both ways, either way round."""
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
        best = torch.einsum("pvd,pod->pvo", views, edges[both[:, 1]]).amax((1, 2))
        out.append(torch.maximum(best[:len(part)], best[len(part):]))
    return torch.cat(out)
