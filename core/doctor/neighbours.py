"""Near neighbours of every image in one blocked pass: duplicate pairs and outliers.

Features are compared by cosine similarity after a PCA to ``DIMS`` dimensions (the pass is
N x N: 60,000 images at 1,400 dimensions would cost 5 TFLOP, at 128 about 0.5); candidate
pairs are then confirmed on the full features. Perceptual hashes are compared by Hamming
distance over all pairs (numpy's popcount on XOR, in blocks).

A pair is a duplicate when its features agree (cosine >= ``COSINE``), or its hashes do
(Hamming distance <= ``HAMMING`` of 64 bits: pHash survives re-encoding and resizing), or
both nearly do (cosine >= ``COSINE_NEAR`` and distance <= ``HAMMING_NEAR``), or their
pixels do (core.doctor.pixels: each image and its ``VERIFY_K`` nearest by the features, when
at cosine ``VERIFY_COSINE`` or more, compared by their edges, zoomed and shifted): a slightly
cropped photo moves its hash by 4-24 bits and its features to 0.92-0.97, where two unrelated
photos' hashes differ by 32 bits give or take 4. On the planted ants/bees photos
(bench/check_planted.py) the features alone found 34 of 40 planted copies, all the missed
ones cropped; with the hashes, 40. A "near" distance measured on each dataset instead (the
one only 1 in 1,000 of its pairs come within) lost two of those crops, at 20 and 24 bits. On
3,000 CIFAR-10 images the rule also flagged 11 pairs of original images: the 5 looked at are
CIFAR's own near-duplicates. On 10,040 CIFAR-10 thumbnails the features and hashes found 28 of
40 planted copies: every cropped one was missed (cosine 0.71-0.90, 10-22 bits), though each
copy's nearest image was its original; with the pixels, 40 of 40. The features' verdict
stands only where the pixels do not contradict it (``pixels.AGREE``), between images of one
shape: images of one flat colour with different noise are one texture to the network
(cosine 0.95-0.98) but share no edges (0.1-0.16); every planted copy, photo or thumbnail,
scored 0.83 or more.

An outlier is an image far from its nearest neighbours: the cosine distance to its ``K``-th
nearest image (Sun et al., "Out-of-distribution detection with deep nearest neighbors",
2022), in the dataset and in its own class, compared with every image's by a robust z-score
(median and MAD); above ``Z`` it is flagged. A blank frame (almost no spread in its pixels)
is flagged as such. Measured on the last layer's features: on the planted photos the
placeholder GIF, a screenshot and a page of text scored 5.4-5.9 and the most unusual real
photo 4.1; as the mean distance in the PCA-reduced space, the screenshot and the page were
not even among the 12 most unusual.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.doctor import pixels

DIMS = 128
COSINE = 0.95
HAMMING = 8
COSINE_NEAR, HAMMING_NEAR = 0.90, 24
K = 10
VERIFY_K, VERIFY_COSINE = 3, 0.5
Z = 4.0
BLANK_SPREAD = 0.02  # pixel standard deviation, share of the full range
BLOCK = 256
HASH_BLOCK = 128  # rows of 64-bit hashes XORed with all at once


@dataclass
class Neighbours:
    pairs: list[tuple[int, int, float, int, float]]  # (i, j, cosine, hamming, pixels), i < j
    knn_all: np.ndarray  # cosine distance to the K-th nearest image
    knn_class: np.ndarray  # ... to the K-th nearest of the same class
    knn: np.ndarray  # (N, K) the K nearest images, nearest first


def normalised(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=1)


def reduce(x: torch.Tensor, dims: int = DIMS) -> torch.Tensor:
    """Centred, PCA-reduced and L2-normalised rows (seeded: the same answer every time)."""
    x = normalised(x)
    x = x - x.mean(0, keepdim=True)
    if x.shape[1] > dims and x.shape[0] > dims:
        torch.manual_seed(0)
        _, _, v = torch.pca_lowrank(x, q=dims, center=False, niter=4)
        x = x @ v
    return normalised(x)


def search(feats: torch.Tensor, phash: np.ndarray, labels: np.ndarray, state=None,
           final_dims: int | None = None, thumbs: np.ndarray | None = None,
           sizes: np.ndarray | None = None) -> Neighbours:
    """Every pair of images that may be duplicates, and each image's neighbourhood.
    ``final_dims``: how many leading feature columns are the last layer's, which alone
    measure how unusual an image is (a placeholder GIF among photos: 5.9 MADs out on
    them, 3.1 with the earlier layer's textures beside them). ``thumbs``: each image's
    grey thumbnail (core.doctor.pixels), which confirms a pair by its pixels; ``sizes``:
    each image's (width, height)."""
    n = len(feats)
    full, small = normalised(feats), reduce(feats)
    last = normalised(feats[:, :final_dims]) if final_dims else full
    knn_all, knn_class = np.zeros(n, np.float32), np.zeros(n, np.float32)
    lab = torch.from_numpy(labels)
    k = min(K, max(1, n - 1))
    knn = np.zeros((n, k), np.int64)
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, n, BLOCK):
        if state is not None:
            state.check()
            state.report("Comparing images", start, n)
        sims = small[start:start + BLOCK] @ small.T
        rows = torch.arange(start, min(n, start + BLOCK))
        sims[torch.arange(len(rows)), rows] = -2.0  # not its own neighbour
        top = sims.topk(k, 1)
        knn[rows] = top.indices.numpy()
        knn_all[rows] = _kth_distance(last, rows, sims, k)
        same = sims.masked_fill(lab[None, :] != lab[rows][:, None], -2.0)
        knn_class[rows] = _kth_distance(last, rows, same, k)
        for i, j in (sims >= COSINE_NEAR - 0.05).nonzero().tolist():
            a, b = int(rows[i]), j
            if a < b:
                pairs[(a, b)] = float(full[a] @ full[b])
    hamming = _hash_pairs(phash, HAMMING)  # "near" pairs are among the cosine candidates
    near = _nearest_pairs(knn, full) if thumbs is not None else set()
    cands = sorted(set(pairs) | set(hamming) | near)
    out = _confirmed(cands, pairs, hamming, full, phash, thumbs, sizes)
    if state is not None:
        state.report("Comparing images", n, n)
    return Neighbours(out, knn_all, knn_class, knn)


def _confirmed(cands: list[tuple[int, int]], cosines: dict, hamming: dict,
               full: torch.Tensor, phash: np.ndarray, thumbs: np.ndarray | None,
               sizes: np.ndarray | None) -> list[tuple[int, int, float, int, float]]:
    """The candidate pairs that are duplicates, with (cosine, Hamming distance, pixels).
    The pixels are compared where the hash has not settled it; they overrule the
    features' "the same photo" only between images of one shape (a square crop of a wide
    photo is the same photo, but its squeezed thumbnail is not the other's)."""
    cos = [cosines.get(c) for c in cands]
    cos = [float(full[a] @ full[b]) if v is None else v for v, (a, b) in zip(cos, cands)]
    ham = [hamming.get(c, _hamming(phash[c[0]], phash[c[1]])) for c in cands]
    verify = [k for k, h in enumerate(ham) if h > HAMMING] if thumbs is not None else []
    pix = np.full(len(cands), np.nan)
    pix[verify] = pixels.similarity(thumbs, [cands[k] for k in verify])
    out = []
    for k, (a, b) in enumerate(cands):
        p = pix[k]
        by_features = cos[k] >= COSINE or (cos[k] >= COSINE_NEAR and ham[k] <= HAMMING_NEAR)
        vetoed = p < pixels.AGREE and (sizes is None or _same_shape(sizes[a], sizes[b]))
        if ham[k] <= HAMMING or p >= pixels.SAME or (by_features and not vetoed):
            out.append((a, b, cos[k], ham[k], 0.0 if np.isnan(p) else float(p)))
    return out


def _same_shape(a, b, within: float = 0.1) -> bool:
    """Whether two (width, height) have the same aspect ratio, within 10%."""
    return abs(np.log((a[0] * b[1]) / max(a[1] * b[0], 1e-9))) <= np.log1p(within)


def _nearest_pairs(knn: np.ndarray, full: torch.Tensor) -> set[tuple[int, int]]:
    """(i, j), i < j, for each image and its ``VERIFY_K`` nearest at ``VERIFY_COSINE``+."""
    k = min(VERIFY_K, knn.shape[1])
    a = torch.arange(len(knn)).repeat_interleave(k)
    b = torch.from_numpy(knn[:, :k].reshape(-1))
    keep = (full[a] * full[b]).sum(1) >= VERIFY_COSINE
    return {(min(i, j), max(i, j)) for i, j in zip(a[keep].tolist(), b[keep].tolist())}


def _kth_distance(full: torch.Tensor, rows: torch.Tensor, sims: torch.Tensor, k: int
                  ) -> np.ndarray:
    """Each row's cosine distance to its k-th nearest image, measured on the full features
    among the 2k nearest by the reduced ones (the reduction keeps what most images share,
    so an image unlike all of them looks ordinary there; on the full features it does not).
    Candidates masked out of ``sims`` (-2) count as far away."""
    cand = sims.topk(min(2 * k, sims.shape[1]), 1)
    cos = torch.einsum("bd,bkd->bk", full[rows], full[cand.indices])
    cos = cos.masked_fill(cand.values <= -2, -1.0)
    return (1 - cos.topk(k, 1).values[:, -1]).numpy()


def _hamming(a, b) -> int:
    return int(np.bitwise_count(np.uint64(a) ^ np.uint64(b)))


def _hash_pairs(phash: np.ndarray, within: int) -> dict[tuple[int, int], int]:
    """(i, j) -> Hamming distance for every pair within ``within`` bits."""
    out = {}
    h = phash.astype(np.uint64)
    for start in range(0, len(h), HASH_BLOCK):
        d = np.bitwise_count(h[start:start + HASH_BLOCK, None] ^ h[None, :])
        for i, j in zip(*np.nonzero(d <= within)):
            a = start + int(i)
            if a < j:
                out[(a, int(j))] = int(d[i, j])
    return out


def robust_z(x: np.ndarray) -> np.ndarray:
    med = np.median(x)
    mad = np.median(np.abs(x - med)) * 1.4826
    return (x - med) / max(mad, 1e-6)


def knn_probs(knn: np.ndarray, labels: np.ndarray, classes: int, prior: float = 0.5
              ) -> np.ndarray:
    """Class probabilities from the given classes of each image's nearest neighbours (its
    own label never counts), smoothed by ``prior`` pseudo-votes per class."""
    votes = np.zeros((len(knn), classes))
    rows = np.arange(len(knn))
    for j in range(knn.shape[1]):
        votes[rows, labels[knn[:, j]]] += 1
    return (votes + prior) / (knn.shape[1] + prior * classes)
