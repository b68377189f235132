"""What the Review view lists: the check's findings as entries grouped by reason, and which
of them the review has already handled (their file moved by an applied change, or kept).

Plain data, no widgets: the view shows it, tests read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LABEL, LEAKAGE, DUPLICATE, OUTLIER, SET, UNREADABLE, SELECTION = (
    "label", "leakage", "duplicate", "outlier", "set", "unreadable", "selection")
TITLES = {LABEL: "Wrong class?", LEAKAGE: "In train and {val}", DUPLICATE: "Duplicates",
          OUTLIER: "Outliers", SET: "The set itself", UNREADABLE: "Unreadable files",
          SELECTION: "Selected on the map"}
HELP = {
    LABEL: "Images whose class is probably wrong, most likely first. R moves an image to the "
           "suggested class, 1-9 to another class.",
    LEAKAGE: "The same photo in training and validation: the reported accuracy is inflated. "
             "Remove drops the training copy (right), so validation stays as it was.",
    DUPLICATE: "The same photo twice (re-encoded, resized or cropped). Remove drops the "
               "right-hand copy.",
    OUTLIER: "Images unlike their class or the whole dataset: a blank frame, a screenshot, "
             "a document among photos.",
    SET: "Problems of the set as a whole, and the files they concern.",
    UNREADABLE: "Files that cannot be read as images: training skips them.",
    SELECTION: "The images selected on the map with the lasso.",
}


@dataclass(frozen=True)
class Entry:
    kind: str
    rel: str  # the file an action acts on (a duplicate pair: the copy to remove)
    given: str  # its class
    caption: str
    key: str  # what "keep" records
    suggested: str = ""  # label issues: the class it probably belongs to
    other: str = ""  # duplicates: the copy that stays
    score: float = 0.0


def _class_of(rel: str, classes: list[str]) -> str:
    parts = rel.split("/")
    return next((p for p in parts[:2] if p in classes), "")


def entries_from(report) -> dict[str, list[Entry]]:
    """Every finding of a ``core.doctor.report.CheckReport`` as entries, by reason."""
    cls = dict(zip(report.rows, (report.classes[i] for i in report.labels)))

    def given(rel: str) -> str:
        return cls.get(rel) or _class_of(rel, report.classes)

    out = {LABEL: [Entry(LABEL, i.rel, i.given, f"{_name(i.rel)}\n{i.given} → {i.suggested}",
                         i.key, i.suggested, score=i.score) for i in report.label_issues]}
    out[LEAKAGE], out[DUPLICATE] = [], []
    for d in report.duplicates:
        kind = LEAKAGE if d.across_splits else DUPLICATE
        caption = f"{d.split_a} | {d.split_b}: {_name(d.b)}\n{d.similarity:.0%} alike"
        out[kind].append(Entry(kind, d.b, given(d.b), caption, d.key, other=d.a,
                               score=d.similarity))
    out[OUTLIER] = [Entry(OUTLIER, o.rel, o.label, f"{_name(o.rel)}\n{o.why}", o.key,
                          score=o.score) for o in report.outliers]
    out[SET] = [Entry(SET, rel, given(rel), f"{_name(rel)}\n{f.kind}", f"set:{rel}")
                for f in report.set_flags for rel in f.paths]
    out[UNREADABLE] = [Entry(UNREADABLE, rel, given(rel), f"{_name(rel)}\n{why}",
                             f"unreadable:{rel}") for rel, why in report.unreadable]
    out[SELECTION] = []
    return out


def selection_entries(report, rows: list[int]) -> list[Entry]:
    """Map points (indices into ``report.rows``) as entries the Review actions act on."""
    out = []
    if report.predicted:  # the images that look like another class first
        rows = sorted(rows, key=lambda r: report.predicted[r] == report.labels[r])
    for r in rows:
        rel, label = report.rows[r], report.classes[report.labels[r]]
        predicted = report.classes[report.predicted[r]] if report.predicted else label
        hint = f"looks like {predicted}" if predicted != label else label
        out.append(Entry(SELECTION, rel, label, f"{_name(rel)}\n{hint}", f"map:{rel}",
                         predicted if predicted != label else ""))
    return out


def _name(rel: str) -> str:
    return Path(rel).name


def moved_files(done) -> set[str]:
    """The files applied changes moved away (``done``: core.review's applied actions)."""
    return {src for t in done for src, _ in t.moves}


def handled(entry: Entry, moved: set[str], kept: set[str]) -> bool:
    return entry.rel in moved or entry.other in moved or entry.key in kept
