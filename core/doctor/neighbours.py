"""Near neighbours of every image in one blocked pass: duplicate pairs and outliers.

Features are compared by cosine similarity after a PCA to ``DIMS`` dimensions (the pass is
N x N: 60,000 images at 1,400 dimensions would cost 5 TFLOP, at 128 about 0.5); candidate
pairs are then confirmed on the full features. Perceptual hashes are compared by Hamming
distance over all pairs (numpy's popcount on XOR, in blocks).

A pair is a duplicate when its features agree (cosine >= ``COSINE``), or its hashes do
(Hamming distance <= ``HAMMING`` of 64 bits: pHash survives re-encoding and resizing), or
both nearly do: cosine >= ``COSINE_NEAR`` and a distance that only one pair in
``1 / RARE_HASH`` of this dataset comes as close as (measured on a sample of its pairs, at
most ``HAMMING_NEAR``). A slightly cropped photo moves its hash by 4-24 bits and its features
to 0.92-0.97; two different photos differ by 32 bits give or take 4, but CIFAR's 32 px
thumbnails hash alike far more often (6% of their pairs within 24 bits), hence the measure.
On the planted ants/bees photos (bench/check_planted.py) the features alone found 34 of 40
planted copies, all the missed ones cropped; with the hashes, 40.

An outlier is an image far from its nearest neighbours: the mean cosine distance to its
``K`` nearest images, in the dataset and in its own class, compared with every image's by a
robust z-score (median and MAD); above ``Z`` it is flagged. A blank frame (almost no spread
in its pixels) is flagged as such.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DIMS = 128
COSINE = 0.95
HAMMING = 8
COSINE_NEAR, HAMMING_NEAR = 0.90, 24
RARE_HASH = 1e-3  # the share of a dataset's pairs whose hashes may be as close as a "near"
K = 10
Z = 4.0
BLANK_SPREAD = 0.02  # pixel standard deviation, share of the full range
BLOCK = 256
HASH_BLOCK = 128  # rows of 64-bit hashes XORed with all at once


@dataclass
class Neighbours:
    pairs: list[tuple[int, int, float, int]]  # (i, j, cosine, hamming) with i < j
    knn_all: np.ndarray  # mean cosine distance to the K nearest images
    knn_class: np.ndarray  # ... to the K nearest of the same class
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


def search(feats: torch.Tensor, phash: np.ndarray, labels: np.ndarray, state=None
           ) -> Neighbours:
    """Every pair of images that may be duplicates, and each image's neighbourhood."""
    n = len(feats)
    full, small = normalised(feats), reduce(feats)
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
        knn_all[rows] = (1 - top.values).mean(1).numpy()
        knn[rows] = top.indices.numpy()
        same = sims.masked_fill(lab[None, :] != lab[rows][:, None], -2.0)
        top = same.topk(k, 1).values
        knn_class[rows] = (1 - top.clamp(min=-1)).mean(1).numpy()
        for i, j in (sims >= COSINE_NEAR - 0.05).nonzero().tolist():
            a, b = int(rows[i]), j
            if a < b:
                pairs[(a, b)] = float(full[a] @ full[b])
    near = near_hamming(phash)
    hamming = _hash_pairs(phash, HAMMING)  # "near" pairs are among the cosine candidates
    out = []
    for (a, b) in sorted(set(pairs) | set(hamming)):
        cos = pairs.get((a, b))
        if cos is None:
            cos = float(full[a] @ full[b])
        ham = hamming.get((a, b), _hamming(phash[a], phash[b]))
        if cos >= COSINE or ham <= HAMMING or (cos >= COSINE_NEAR and ham <= near):
            out.append((a, b, cos, ham))
    if state is not None:
        state.report("Comparing images", n, n)
    return Neighbours(out, knn_all, knn_class, knn)


def _hamming(a, b) -> int:
    return int(np.bitwise_count(np.uint64(a) ^ np.uint64(b)))


def near_hamming(phash: np.ndarray, pairs: int = 200_000) -> int:
    """The Hamming distance that only ``RARE_HASH`` of this dataset's pairs come within
    (a seeded sample of pairs), at most ``HAMMING_NEAR``."""
    if len(phash) < 2:
        return HAMMING
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(phash), (2, pairs))
    keep = a != b
    d = np.bitwise_count(phash[a[keep]].astype(np.uint64) ^ phash[b[keep]].astype(np.uint64))
    return int(min(HAMMING_NEAR, max(HAMMING, np.quantile(d, RARE_HASH))))


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
