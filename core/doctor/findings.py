"""From measurements to findings: duplicate pairs (leakage apart), outliers, and the flags
of the set itself (class imbalance, tiny classes, odd formats and sizes).

``idx`` below maps a row of the readable images' arrays back to the check's item index.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from core.doctor.items import Items
from core.doctor.neighbours import BLANK_SPREAD, Z, Neighbours, robust_z
from core.doctor.report import Duplicate, Outlier, SetFlag

IMBALANCE = 3.0  # largest class / smallest class
TINY_CLASS = 20  # training images
SMALL_SIDE = 0.25  # shorter side under this share of the dataset's median
WIDE = 4.0  # aspect ratio


def duplicates(nb: Neighbours, items: Items, idx: list[int], splits: dict[int, str]
               ) -> list[Duplicate]:
    """Pairs, most similar first; of a pair across splits, ``b`` is the training copy (the
    one to remove: the validation set stays as it was), otherwise the later file."""
    out = []
    for a, b, cos, ham, pix in nb.pairs:
        ia, ib = idx[a], idx[b]
        sa, sb = splits[ia], splits[ib]
        if sa != sb and sa == "train":
            ia, ib, sa, sb = ib, ia, sb, sa
        sim = max(cos, 1 - ham / 64, pix)
        out.append(Duplicate(items.rels[ia], items.rels[ib], round(min(1.0, sim), 4),
                             sa != sb, sa, sb))
    return sorted(out, key=lambda d: (-d.similarity, d.a, d.b))


def outliers(nb: Neighbours, items: Items, idx: list[int], splits: dict[int, str],
             spread: np.ndarray) -> list[Outlier]:
    """Blank frames, then images unlike their class or the whole dataset, most unusual
    first (score: a logistic of the robust z-score, 0.5 at the threshold)."""
    z_all, z_class = robust_z(nb.knn_all), robust_z(nb.knn_class)
    out = []
    for row, i in enumerate(idx):
        label = items.classes[items.labels[i]]
        if spread[row] < BLANK_SPREAD:
            out.append(Outlier(items.rels[i], 1.0, "blank (almost one colour)", label,
                               splits[i]))
            continue
        z = max(z_all[row], z_class[row])
        if z >= Z:
            why = "unlike the dataset" if z_all[row] >= Z else f"unlike the other {label}"
            score = 1 / (1 + math.exp(-(z - Z)))
            out.append(Outlier(items.rels[i], round(score, 4), why, label, splits[i]))
    return sorted(out, key=lambda o: (-o.score, o.rel))


def set_flags(items: Items, idx: list[int], splits: dict[int, str], sizes: np.ndarray
              ) -> list[SetFlag]:
    """The Data tab's format flag, class counts, and sizes far from the dataset's."""
    return (_count_flags(items, idx, splits) + _format_flags(items)
            + _size_flags(items, idx, sizes))


def _count_flags(items: Items, idx: list[int], splits: dict[int, str]) -> list[SetFlag]:
    counts = np.bincount([items.labels[i] for i in idx if splits[i] == "train"],
                         minlength=len(items.classes))
    out = []
    big, small = int(counts.argmax()), int(counts.argmin())
    if counts[small] and counts[big] / counts[small] >= IMBALANCE:
        out.append(SetFlag("imbalance", f"Classes are imbalanced: '{items.classes[big]}' has "
                           f"{counts[big]} training images, '{items.classes[small]}' "
                           f"{counts[small]} ({counts[big] / counts[small]:.1f}x)."))
    for c, n in enumerate(counts.tolist()):
        if n < TINY_CLASS:
            out.append(SetFlag("tiny class", f"'{items.classes[c]}' has only {n} training "
                               f"image{'s' * (n != 1)}; a class learns poorly from fewer "
                               f"than {TINY_CLASS}."))
    return out


def _format_flags(items: Items) -> list[SetFlag]:
    from core.data.summary import format_of, rare_formats

    if items.root is None:
        return []
    by_class: dict[int, list[str]] = defaultdict(list)
    for rel, label in zip(items.rels, items.labels):
        by_class[label].append(rel)
    out = []
    for label, rels in sorted(by_class.items()):
        rare = rare_formats([Path(r) for r in rels])
        if rare:
            odd = tuple(r for r in rels if format_of(r) in rare)
            kinds = ", ".join(f"{n} {s}" for s, n in sorted(rare.items()))
            out.append(SetFlag("odd format", f"Unusual format in '{items.classes[label]}': "
                               f"{kinds}.", odd))
    return out


def _size_flags(items: Items, idx: list[int], sizes: np.ndarray) -> list[SetFlag]:
    """``sizes``: (width, height) per readable image."""
    if not len(idx):
        return []
    short, long = sizes.min(1), sizes.max(1)
    median = float(np.median(short))
    small = [items.rels[i] for row, i in enumerate(idx) if short[row] < SMALL_SIDE * median]
    wide = [items.rels[i] for row, i in enumerate(idx) if long[row] > WIDE * short[row]]
    out = []
    if small:
        out.append(SetFlag("odd size", f"{len(small)} image{'s are' if len(small) > 1 else ' is'}"
                           f" much smaller than the others (shorter side under "
                           f"{SMALL_SIDE * median:.0f} px; the median is {median:.0f}).",
                           tuple(small)))
    if wide:
        out.append(SetFlag("odd size", f"{len(wide)} image{'s are' if len(wide) > 1 else ' is'}"
                           f" more than {WIDE:.0f} times as wide as high (or high as wide): "
                           f"the centre crop keeps little of {'them' if len(wide) > 1 else 'it'}.",
                           tuple(wide)))
    return out
