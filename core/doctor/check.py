"""The data doctor's check: label issues, duplicates (leakage apart), outliers and the set's
own flags, for any dataset source the app accepts, with progress and cancel.

    report = run_check("~/Pictures/pets", state=TaskState(on_progress=print))
    print(report.headline())  # "12 images may be in the wrong class, 3 photos are in ..."

Steps: list the files (core.doctor.items), compute or load the features
(core.doctor.features), cross-validated heads and cleanlab (core.doctor.label_issues),
neighbours (core.doctor.neighbours), findings (core.doctor.findings). Findings a review has
kept (core.review) are left out of the report.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.doctor import findings as F
from core.doctor.features import DEFAULT_BACKBONE, Backbone, compute
from core.doctor.items import Items, assign_splits, list_items
from core.doctor.label_issues import find, out_of_sample_probs
from core.doctor.neighbours import knn_probs, reduce, search
from core.doctor.prior import imagenet_prior
from core.doctor.report import CheckReport, LabelIssue
from core.errors import TransferLabError
from core.progress import TaskState

MIN_IMAGES = 10
MAP_DIMS = 50  # what the dataset map is computed from (PCA of the features)


def run_check(source: str, model_file: str | None = None, backbone: str = DEFAULT_BACKBONE,
              state: TaskState | None = None) -> CheckReport:
    """Check ``source``; with ``model_file`` (a run's model.pt) its fine-tuned network makes
    the features and its probabilities count for the images it did not train on."""
    state = state or TaskState()
    start = time.perf_counter()
    items = list_items(source, state)
    state.report("Loading the network", 0, 0)
    net = Backbone.from_run(model_file) if model_file else Backbone.imagenet(backbone)
    feats = compute(items, net, state)
    idx = [i for i in range(len(items)) if feats.ok[i]]
    if len(idx) < MIN_IMAGES:
        raise TransferLabError(f"{source} has only {len(idx)} readable images; a check needs "
                               f"at least {MIN_IMAGES}.")
    val_split, seed = _split_rule(model_file)
    splits = assign_splits(items, idx, val_split, seed)
    labels = np.array([items.labels[i] for i in idx])
    x = feats.feats[idx]
    nb = search(x, feats.phash[idx], labels, state, net.final_dims, feats.thumbs[idx],
                feats.stats[idx, 1:3])
    probs, info = _probabilities(feats, idx, labels, len(items.classes), nb, net, state)
    info.update(run_images=_blend_run(probs, feats, items, idx, splits, net),
                network=net.ident.split("|")[0], val_name=items.val_name, images=len(items),
                computed=feats.computed, precision=feats.precision)
    report = _report(items, feats, idx, splits, labels, probs, nb)
    report.info = dict(info, oos_accuracy=round(float((probs.argmax(1) == labels).mean()), 4),
                       seconds=round(time.perf_counter() - start, 1))
    report.map_input = reduce(x, MAP_DIMS).numpy()
    return _without_kept(report, items)


def _report(items: Items, feats, idx: list[int], splits: dict[int, str], labels: np.ndarray,
            probs: np.ndarray, nb) -> CheckReport:
    report = CheckReport(items.source, str(items.root or ""), items.classes,
                         _counts(items, idx, splits), editable=items.editable)
    report.label_issues = [
        LabelIssue(items.rels[idx[r]], items.classes[labels[r]], items.classes[s],
                   round(score, 4), splits[idx[r]]) for r, s, score in find(labels, probs)]
    report.duplicates = F.duplicates(nb, items, idx, splits)
    report.outliers = F.outliers(nb, items, idx, splits, feats.stats[idx, 0])
    report.set_flags = F.set_flags(items, idx, splits, feats.stats[idx, 1:3])
    report.unreadable = [(items.rels[i], why) for i, why in sorted(feats.errors.items())]
    report.rows, report.labels = [items.rels[i] for i in idx], labels.tolist()
    report.splits, report.predicted = [splits[i] for i in idx], probs.argmax(1).tolist()
    return report


def trained_on(model_file: str, source: str) -> bool:
    """Whether the run of ``model_file`` trained on ``source`` (its config's data)."""
    import os

    from core.models.model_file import read_model_file

    try:
        data = (read_model_file(model_file).get("config") or {}).get("data", "")
    except TransferLabError:
        return False
    norm = lambda p: os.path.normcase(os.path.abspath(os.path.expanduser(p)))  # noqa: E731
    return data == source or norm(data) == norm(source)


def check_for_review(source: str, model_file: str | None = None,
                     state: TaskState | None = None):
    """(report, review session or None) for the Review view: the session of a folder whose
    files may change, opened (and an interrupted change settled) before the check, so the
    check sees the files as they are. ``model_file`` (the run the app just trained) is used
    only when that run trained on ``source``."""
    from core.doctor.items import CIFAR

    if model_file and not trained_on(model_file, source):
        model_file = None
    session = None
    if source not in CIFAR:
        from core.data.datasets import folder_root
        from core.review.session import ReviewSession

        root = folder_root(Path(source).expanduser(), state or TaskState())
        if root == Path(source).expanduser():
            session = ReviewSession(root)
    try:
        return run_check(source, model_file, state=state), session
    except BaseException:
        if session is not None:
            session.close()
        raise


def _probabilities(feats, idx: list[int], labels: np.ndarray, classes: int, nb, net: Backbone,
                   state: TaskState) -> tuple[np.ndarray, dict]:
    """Out-of-sample probabilities: the mean of the cross-validated heads', the nearest
    neighbours' and, when ImageNet knows the classes, ImageNet's own (core.doctor.prior)."""
    heads, info = out_of_sample_probs(feats.feats[idx], labels, classes, state)
    views = [heads, knn_probs(nb.knn, labels, classes)]
    if net.classes is None:  # an ImageNet backbone: its head's categories
        prior, agree = imagenet_prior(feats.top_p[idx], feats.top_i[idx], labels, classes)
        info["imagenet_agreement"] = round(agree, 4)
        if prior is not None:
            views.append(prior)
    info["views"] = ["heads", "neighbours", "imagenet"][:len(views)]
    return sum(views) / len(views), info


def _split_rule(model_file: str | None) -> tuple[float, int]:
    """(val_split, seed) of the run when one is given, else training's defaults."""
    from core.config import TrainConfig

    cfg = TrainConfig()
    if model_file:
        from core.models.model_file import read_model_file

        config = read_model_file(model_file).get("config") or {}
        return float(config.get("val_split", cfg.val_split)), int(config.get("seed", cfg.seed))
    return cfg.val_split, cfg.seed


def _blend_run(probs: np.ndarray, feats, items: Items, idx: list[int],
               splits: dict[int, str], net: Backbone) -> int:
    """Average the run's probabilities into ``probs`` for images it did not train on;
    returns how many. Classes are matched by name (a run on other classes adds nothing)."""
    if net.classes is None:
        return 0
    order = [net.classes.index(c) if c in net.classes else -1 for c in items.classes]
    if -1 in order:
        return 0
    run = feats.head_probs(len(net.classes))[:, order]
    rows = [r for r, i in enumerate(idx) if splits[i] != "train"]
    for r in rows:
        p = run[idx[r]]
        probs[r] = (probs[r] + p / max(p.sum(), 1e-12)) / 2
    return len(rows)


def _counts(items: Items, idx: list[int], splits: dict[int, str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i in idx:
        out.setdefault(splits[i], [0] * len(items.classes))[items.labels[i]] += 1
    return out


def _without_kept(report: CheckReport, items: Items) -> CheckReport:
    if items.root is None:
        return report
    from core.review.journal import read

    try:
        kept = read(items.root).kept
    except TransferLabError:
        kept = set()  # a damaged journal: the review says so when it opens
    return report.without(kept) if kept else report
