"""Images whose given class is probably wrong, from out-of-sample probabilities.

Each image's class probabilities come from a head that never saw that image: the images
are cut into ``FOLDS`` class-balanced folds and a head is trained on the features of the
others (a softmax regression; the folds' heads are fitted together in one full-batch L-BFGS
run, seconds once the features exist). Its L2 strength is chosen at run time, on held-out
images of the first fold, by log-loss: calibrated probabilities are what cleanlab's estimate
of the noise needs.

The head's probabilities are averaged with those of the image's nearest neighbours' given
classes (core.doctor.neighbours.knn_probs) and, when ImageNet knows the classes, ImageNet's
own (core.doctor.prior): out-of-sample views whose errors differ. cleanlab (confident
learning) then estimates how many labels are wrong, and the images whose given class is
least probable are the issues (``find``). On the planted ants/bees photos
(bench/check_planted.py) the heads alone ranked 13 of the 20 flips first, the three views
together 18.

With a trained run's probabilities at hand (``core.doctor.features.Backbone.from_run``),
they are averaged in only for images the run did not train on (its validation split): on
its own training images a network has learned the given labels, mistakes included.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

FOLDS = 5
L2_GRID = (3e-3, 3e-2, 3e-1, 3.0)
ITERATIONS = 30  # L-BFGS steps: the held-out accuracy stops moving well before


def fold_ids(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """A fold number per image, each class spread evenly over the folds (seeded)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        rng.shuffle(idx)
        out[idx] = np.arange(len(idx)) % folds
    return out


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per feature, over all images (no label is used)."""
    return (x - x.mean(0)) / x.std(0).clamp(min=1e-6)


def fit_heads(x: torch.Tensor, y: torch.Tensor, classes: int, l2: torch.Tensor,
              train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax regressions, one per row of ``train`` (H, N) (which images it learns from)
    with its own L2 penalty ``l2`` (H,) on the mean loss, all in one L-BFGS run: the sum of
    independent convex problems has each one's optimum as its own, and a few large tensor
    operations per step cost far less than many small ones. Returns (weights (H, D, C),
    biases (H, C))."""
    h, d = train.shape[0], x.shape[1]
    w = torch.zeros((h, d, classes), requires_grad=True)
    b = torch.zeros((h, classes), requires_grad=True)
    mask = train.float()
    count = mask.sum(1).clamp(min=1)
    target = y.expand(h, -1)[..., None]
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=ITERATIONS, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logp = (torch.einsum("nd,hdc->hnc", x, w) + b[:, None, :]).log_softmax(-1)
        nll = -logp.gather(2, target).squeeze(-1)
        loss = ((nll * mask).sum(1) / count).sum() + (l2 * w.pow(2).sum((1, 2))).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


@torch.no_grad()
def _probs(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (x @ w + b).softmax(-1)


def choose_l2(x: torch.Tensor, y: torch.Tensor, classes: int, folds: np.ndarray) -> float:
    """The grid value with the lowest log-loss on fold 0, heads trained on folds 2+
    (fold 1 is left out so that the choice costs less than a whole cross-validation)."""
    train = torch.from_numpy(folds >= 2)
    test = torch.from_numpy(folds == 0)
    grid = torch.tensor(L2_GRID)
    w, b = fit_heads(x, y, classes, grid, train.expand(len(grid), -1))
    with torch.no_grad():
        losses = [float(torch.nn.functional.nll_loss(
            _probs(x[test], w[k], b[k]).clamp(min=1e-12).log(), y[test]))
            for k in range(len(grid))]
    return L2_GRID[int(np.argmin(losses))]


def out_of_sample_probs(feats: torch.Tensor, labels: np.ndarray, classes: int,
                        state=None, folds: int = FOLDS) -> tuple[np.ndarray, dict]:
    """(N, classes) probabilities, each from a head trained without that image; and how
    they were made (the L2 chosen, the heads' agreement with the given labels)."""
    with one_thread():
        return _out_of_sample(standardise(feats.float()), labels, classes, state, folds)


@contextlib.contextmanager
def one_thread():
    """The heads' tensors are small: threads would spend more time waiting for each other
    than computing (on the shared 2-core machine, 2 threads took 4x longer than 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _out_of_sample(x: torch.Tensor, labels: np.ndarray, classes: int, state, folds: int):
    y = torch.from_numpy(labels).long()
    folds = min(folds, max(2, int(np.bincount(labels).min())))
    fid = fold_ids(labels, folds)
    if state is not None:
        state.check()
        state.report("Cross-validating heads", 0, 2)
    l2 = choose_l2(x, y, classes, fid)
    if state is not None:
        state.check()
        state.report("Cross-validating heads", 1, 2)
    held = torch.from_numpy(np.stack([fid == f for f in range(folds)]))
    w, b = fit_heads(x, y, classes, torch.full((folds,), l2), ~held)
    probs = torch.zeros((len(x), classes))
    for f in range(folds):
        probs[held[f]] = _probs(x[held[f]], w[f], b[f])
    p = probs.numpy().astype(np.float64)
    acc = float((p.argmax(1) == labels).mean())
    return p, {"l2": l2, "folds": folds, "head_accuracy": round(acc, 4)}


def find(labels: np.ndarray, probs: np.ndarray) -> list[tuple[int, int, float]]:
    """(image index, suggested class, score) of each likely label issue, most likely first.

    How many: cleanlab's calibrated estimate of the number of label issues
    (``num_label_issues(..., "off_diagonal_calibrated")``, which its documentation offers as
    the cutoff for a ranking); which: the images whose given class is least probable
    (self-confidence). The suggested class is the most probable other class; score = 1 - the
    probability of the given class."""
    from cleanlab.count import num_label_issues

    if len(np.unique(labels)) < 2:
        return []
    n = num_label_issues(labels, probs, estimation_method="off_diagonal_calibrated")
    given = probs[np.arange(len(labels)), labels]
    order = np.argsort(given, kind="stable")[:n]
    others = probs.copy()
    others[np.arange(len(labels)), labels] = -1
    return [(int(i), int(others[i].argmax()), float(1 - given[i])) for i in order]
