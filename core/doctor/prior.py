"""ImageNet's own opinion of each image, when ImageNet knows the dataset's classes.

A folder of ants and bees is what ImageNet's head already tells apart ("ant", "bee"), and it
never saw the folder's labels: a third, independent out-of-sample view next to the
cross-validated heads and the neighbours. Each class is matched to the ImageNet category
its images are most often taken for (core.models.head_init's matching, one category per
class, the surest first); the matched categories' probabilities, renormalised, are the
prior. It is used only where those categories alone classify the images as labelled at
least as well as a new head's start needs (head_init.MIN_SAMPLE_ACCURACY): CIFAR-10's
thumbnails match ImageNet poorly and get no prior.
"""
from __future__ import annotations

import numpy as np
import torch

IMAGENET_CLASSES = 1000


def imagenet_prior(top_p: np.ndarray, top_i: np.ndarray, labels: np.ndarray, classes: int
                   ) -> tuple[np.ndarray | None, float]:
    """((N, classes) probabilities or None, how well the matched categories alone agree
    with the given labels). ``top_p``/``top_i``: each image's most likely ImageNet
    categories (core.doctor.features.Features)."""
    from core.models.head_init import MIN_SAMPLE_ACCURACY, assign

    if classes > IMAGENET_CLASSES or top_i.size == 0 or top_i.max() >= IMAGENET_CLASSES:
        return None, 0.0
    sums = np.zeros((classes, IMAGENET_CLASSES))
    np.add.at(sums, (np.repeat(labels, top_i.shape[1]), top_i.ravel()), top_p.ravel())
    counts = np.bincount(labels, minlength=classes).clip(min=1)
    picks = assign(torch.from_numpy(sums / counts[:, None]))
    p = np.stack([np.where(top_i == k, top_p, 0).sum(1) for k in picks], 1)
    known = p.sum(1) > 0
    agree = float(((p.argmax(1) == labels) & known).mean())
    if agree < MIN_SAMPLE_ACCURACY:
        return None, agree
    p = p + 1e-3 / classes  # an image none of the categories fits: nearly uniform
    return p / p.sum(1, keepdims=True), agree
