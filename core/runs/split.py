"""split.json: which images a run trains and validates on, recorded when it starts.

A folder's (or archive's) record lists every file of the data set relative to its root, in
listing order, with its size, label and role (train, val, unused: left out by --limit,
skipped: unreadable), the side and framing they were decoded at, and a SHA-256 of all that.
A built-in set's (CIFAR) lists the official training images used, as index ranges, and the
split's sizes. Resuming the run and evaluating its validation split load the record
(core.data.assignment) instead of splitting the folder again as it is today, and say which
recorded files are gone and which files are new (``SplitCheck``).

Version 2 adds ``review``: the review journal state of the data folder when the run started
(core.review.journal.journal_state; None for a built-in set, an archive or a folder never
reviewed), so a resume can say the data was reviewed since. Version 1 records read with none.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.catalog import ARCHIVE_SUFFIXES
from core.data.assignment import ROLES, Assignment
from core.errors import TransferLabError
from core.review.journal import journal_state

SPLIT_FORMAT = "transferlab-split"
SPLIT_VERSION = 2  # 2: "review" (the data's review journal state); 1 reads without it
SHOWN = 3  # file names quoted in a message


def to_record(a: Assignment, source: str) -> dict:
    """The JSON record of ``a`` (``source``: the run's --data)."""
    body = {"source": source, "classes": list(a.classes), "val_source": a.val_source,
            "review": review_state(source, a.root)}
    if a.builtin:
        body |= {"builtin": a.builtin, "train_size": a.train_size,
                 "train_ranges": _ranges(a.train_indices)}
    else:
        body |= {"side": a.side, "crop": a.crop,
                 "listed": _entries(a.root, a.listed), "held_out": _entries(a.root, a.held_out)}
    counts = {role: a.count(role) for role in ROLES}
    return {"format": SPLIT_FORMAT, "version": SPLIT_VERSION, "counts": counts, **body,
            "sha256": _digest(body)}


@dataclass
class SplitRecord:
    body: dict
    path: Path

    @classmethod
    def read(cls, path: Path) -> "SplitRecord | None":
        """The record (None when the run has none: runs made before split.json)."""
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TransferLabError(f"{path} is unreadable ({exc}).") from exc
        if not isinstance(d, dict) or d.get("format") != SPLIT_FORMAT:
            raise TransferLabError(f"{path} is not a TransferLab split record.")
        if not isinstance(d.get("version"), int) or d["version"] > SPLIT_VERSION:
            raise TransferLabError(f"{path} was written by a newer TransferLab (split format "
                                   f"{d.get('version')}).")
        body = {k: v for k, v in d.items() if k not in ("format", "version", "counts", "sha256")}
        if _digest(body) != d.get("sha256"):
            raise TransferLabError(f"{path} is damaged (its SHA-256 does not match its "
                                   f"content). Delete it to split the data again.")
        return cls(body, path)

    @property
    def builtin(self) -> str:
        return self.body.get("builtin", "")

    @property
    def review(self) -> str | None:
        """The data's review journal state when the run started (None: never reviewed, not
        a folder, or a record older than version 2)."""
        return self.body.get("review")

    def assignment(self) -> Assignment:
        b = self.body
        if self.builtin:
            return Assignment(b["classes"], b["val_source"], self.builtin,
                              train_indices=[i for lo, hi in b["train_ranges"]
                                             for i in range(lo, hi)],
                              train_size=b["train_size"])
        entry = (lambda e: (e[0], int(e[2]), e[3]))
        return Assignment(b["classes"], b["val_source"], side=int(b["side"]),
                          crop=float(b["crop"]), listed=[entry(e) for e in b["listed"]],
                          held_out=[entry(e) for e in b["held_out"]])

    def check(self, root: Path | None, train_size: int = 0) -> "SplitCheck":
        """The record against the data as it is now (``root``: a folder set's root;
        ``train_size``: a built-in set's training images)."""
        if self.builtin:
            changed = [] if train_size == self.body["train_size"] else [
                (f"{self.builtin} training split: {self.body['train_size']} images, now "
                 f"{train_size}", "train")]
            return SplitCheck(True, changed=changed)
        recorded = {e[0]: (e[1], e[3]) for e in (*self.body["listed"], *self.body["held_out"])}
        now = _listing(root, self.body["classes"])
        gone = [(rel, role) for rel, (_, role) in recorded.items() if rel not in now]
        changed = [(rel, role) for rel, (size, role) in recorded.items()
                   if rel in now and now[rel] != size]
        new = sorted(rel for rel in now if rel not in recorded)
        review = None
        if "review" in self.body:  # (version 1 records did not note it)
            state = review_state(self.body["source"], root)
            if state != self.review:
                review = (self.review, state)
        return SplitCheck(True, gone, new, changed, review)


@dataclass
class SplitCheck:
    """How the data differs from a run's split record (data; ``describe`` words it)."""
    recorded: bool  # False: the run has no record (older runs): the data was split anew
    gone: list[tuple[str, str]] = field(default_factory=list)  # (file, role) no longer there
    new: list[str] = field(default_factory=list)  # files the record does not name: not used
    changed: list[tuple[str, str]] = field(default_factory=list)  # (file, role), other size
    review: tuple[str | None, str | None] | None = None  # (recorded, now) when they differ

    @property
    def differs(self) -> bool:
        return not self.recorded or bool(self.gone or self.new or self.changed or self.review)

    def describe(self, roles=ROLES) -> str:
        """One paragraph for a log line, the CLI or the GUI ("" when all is as recorded).
        ``roles``: the parts that matter here (evaluate: the validation files)."""
        if not self.recorded:
            return ("This run has no split record (it predates them): its validation images "
                    "were chosen again from the data as it is now, with the run's seed.")
        parts = []
        gone = [f for f, role in self.gone if role in roles]
        changed = [f for f, role in self.changed if role in roles]
        if gone:
            parts.append(f"{_count(gone, 'file')} of the run's split {_are(gone)} gone "
                         f"({_names(gone)}): left out.")
        if changed:
            parts.append(f"{_count(changed, 'file')} of the run's split changed since it "
                         f"started ({_names(changed)}).")
        if self.new:
            parts.append(f"{_count(self.new, 'new file')} in the data ({_names(self.new)}) "
                         f"{_are(self.new, 'is', 'are')} not part of the run's split: not used.")
        if self.review:
            was, now = (state or "none" for state in self.review)
            parts.append(f"The data's review journal moved on since the run started (then "
                         f"{was}, now {now}): the Review relabelled, removed or put back "
                         f"images since.")
        return " ".join(parts)


def load_split(record: SplitRecord | None, cfg, state, weights=None):
    """The run's data as it trained on it: ``(Dataset, SplitCheck)``. ``record``: the run's
    SplitRecord, or None for older runs (the data is split again, seeded, as then);
    ``weights``: the model's preprocessing (its interpolation, as in training)."""
    from core.data.datasets import load_dataset

    if record is None:
        ds = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed, state, cfg.limit,
                          cfg.crop or 1.0, weights)  # (whole squares: runs before framing was
        # recorded)
        return ds, SplitCheck(False)
    ds = load_dataset(cfg.data, cfg.image_size, state=state, weights=weights,
                      assignment=record.assignment())
    return ds, record.check(ds.assignment.root, ds.assignment.train_size)


# --- helpers ----------------------------------------------------------------------------------

def review_state(source: str, root: Path | None) -> str | None:
    """The review journal state of the run's data folder ``root`` (``source``: its --data):
    None for a built-in set (no root) and an archive (unpacked into the cache: only a
    folder is reviewed in place)."""
    if root is None or Path(source).name.endswith(ARCHIVE_SUFFIXES):
        return None
    return journal_state(root)


def _entries(root: Path, entries) -> list[list]:
    return [[rel, _size(root / rel), label, role] for rel, label, role in entries]


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _digest(body: dict) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _ranges(indices: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def _listing(root: Path, classes: list[str]) -> dict[str, int]:
    """Every image file of the data set now: {path relative to root: size}."""
    from core.data.folder import find_layout, image_files

    try:
        layout = find_layout(root)
    except TransferLabError:
        return {}
    now = {}
    for folder in filter(None, (layout.train_root, layout.held_out_root)):
        for class_dir in sorted({*classes, *layout.classes}):
            for path in image_files(folder / class_dir) if (folder / class_dir).is_dir() else ():
                now[path.relative_to(root).as_posix()] = _size(path)
    return now


def _count(items, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _are(items, one: str = "is", many: str = "are") -> str:
    return one if len(items) == 1 else many


def _names(items) -> str:
    shown = ", ".join(Path(f).name for f in items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
