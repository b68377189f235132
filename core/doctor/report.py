"""What a check found, as plain data: the one home of the ``--json`` shape and of the
finding keys that the review journal's "keep" marks refer to.

``--json FILE`` writes at least (other tools read it; keep the shape)::

    {"label_issues": [{"path", "given", "suggested", "score"}],
     "duplicates": [{"a", "b", "similarity", "across_splits"}],
     "outliers": [{"path", "score"}]}

with paths as given under DATA and each list sorted most likely first, plus ``set_flags``,
``unreadable`` and ``summary``. Torch-free: the GUI reads reports on its own thread.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace

LABEL, DUPLICATE, LEAKAGE, OUTLIER, SET = "label", "duplicate", "leakage", "outlier", "set"
# below this share of labels agreed with by the cross-validated heads, the label suggestions
# come with a caution (CheckReport.label_advice): the planted ants/bees photos agreed 93%
# (suggestions 90% right), CIFAR-10 thumbnails 74% (34%), a run's network on them 88% (74%)
WEAK_SIGNAL = 0.85


@dataclass(frozen=True)
class LabelIssue:
    rel: str  # relative to the dataset root, "/" separators
    given: str
    suggested: str
    score: float  # how likely the given class is wrong, 0-1
    split: str = "train"

    @property
    def key(self) -> str:
        return f"{LABEL}:{self.rel}"


@dataclass(frozen=True)
class Duplicate:
    a: str
    b: str  # the copy to remove first: the training copy of a pair across splits
    similarity: float  # 0-1
    across_splits: bool
    split_a: str = "train"
    split_b: str = "train"

    @property
    def key(self) -> str:
        return f"{DUPLICATE}:{'|'.join(sorted((self.a, self.b)))}"


@dataclass(frozen=True)
class Outlier:
    rel: str
    score: float  # how unlike the rest, 0-1
    why: str = ""  # "blank", "unlike its class", "unlike the dataset"
    label: str = ""
    split: str = "train"

    @property
    def key(self) -> str:
        return f"{OUTLIER}:{self.rel}"


@dataclass(frozen=True)
class SetFlag:
    kind: str  # "imbalance", "tiny class", "odd format", "odd size", "unreadable"
    message: str
    paths: tuple[str, ...] = ()


@dataclass
class CheckReport:
    source: str  # DATA as given
    root: str  # the dataset folder ("" for CIFAR)
    classes: list[str]
    counts: dict[str, list[int]]  # split -> images per class
    label_issues: list[LabelIssue] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    outliers: list[Outlier] = field(default_factory=list)
    set_flags: list[SetFlag] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (rel, reason)
    kept: int = 0  # findings left out because the review kept them
    info: dict = field(default_factory=dict)  # how it was computed (model, seconds, accuracy)
    editable: str = ""  # why the files cannot be changed ("" when they can)
    # per readable image, for the dataset map (not written to JSON): its file, class index,
    # split, out-of-sample predicted class and a 50-dimensional summary of its features
    rows: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    predicted: list[int] = field(default_factory=list)
    map_input: object = None  # float32 numpy (len(rows), 50)

    def path(self, rel: str) -> str:
        """A file as given under DATA."""
        return os.path.join(self.source, *rel.split("/"))

    def abspath(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/")) if self.root else ""

    @property
    def leakage(self) -> list[Duplicate]:
        return [d for d in self.duplicates if d.across_splits]

    def headline(self) -> str:
        """"12 images may be in the wrong class, 3 photos are in both train and val, …"."""
        parts = []
        n = len(self.label_issues)
        if n:
            parts.append(f"{n} image{'s may be' if n != 1 else ' may be'} in the wrong class")
        leak, inside = len(self.leakage), len(self.duplicates) - len(self.leakage)
        if leak:
            parts.append(f"{leak} photo{'s are' if leak != 1 else ' is'} in both train and "
                         f"{self.info.get('val_name', 'val')}")
        if inside:
            parts.append(f"{inside} duplicate pair{'s' * (inside != 1)} within a split")
        if self.outliers:
            parts.append(f"{len(self.outliers)} outlier{'s' * (len(self.outliers) != 1)}")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable file"
                         f"{'s' * (len(self.unreadable) != 1)}")
        if not parts:  # (the set's own flags, such as a tiny class, are listed apart)
            return "No wrong labels, duplicates, outliers or unreadable files found."
        text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        return text[0].upper() + text[1:] + "."

    def label_advice(self) -> str:
        """A caution when the label suggestions rest on a weak signal ("" otherwise): the
        ImageNet features' cross-validated heads agreeing with fewer than ``WEAK_SIGNAL`` of
        the labels. On 10,040 CIFAR-10 thumbnails with 500 flips planted (74% agreement)
        1,366 images were flagged, a third of them flipped, and taking every suggestion cost
        3.1 points of clean validation accuracy; a run trained on the same noisy data
        (``--model``, 88% agreement) flagged 617, 74% of them flipped."""
        agree = self.info.get("oos_accuracy")
        if not self.label_issues or agree is None or agree >= WEAK_SIGNAL or \
                str(self.info.get("network", "")).startswith("run:"):
            return ""
        return (f"The label suggestions are uncertain here: the network's view of these "
                f"images agrees with only {agree:.0%} of the labels. Review each one rather "
                f"than taking them all; a run trained on this data (check --model, or Check "
                f"after training) gives stronger ones.")

    def to_json(self) -> dict:
        return {
            "label_issues": [{"path": self.path(i.rel), "given": i.given,
                              "suggested": i.suggested, "score": round(i.score, 4),
                              "split": i.split} for i in self.label_issues],
            "duplicates": [{"a": self.path(d.a), "b": self.path(d.b),
                            "similarity": round(d.similarity, 4),
                            "across_splits": d.across_splits} for d in self.duplicates],
            "outliers": [{"path": self.path(o.rel), "score": round(o.score, 4), "why": o.why}
                         for o in self.outliers],
            "set_flags": [{"kind": f.kind, "message": f.message,
                           "paths": [self.path(p) for p in f.paths]} for f in self.set_flags],
            "unreadable": [{"path": self.path(p), "reason": why} for p, why in self.unreadable],
            "summary": {"headline": self.headline(), "classes": self.classes,
                        "counts": self.counts, "kept": self.kept, **self.info,
                        "label_advice": self.label_advice()},
        }

    def write_json(self, path: str | os.PathLike) -> None:
        from core.paths import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")

    def without(self, keys: set[str]) -> "CheckReport":
        """The report less the findings whose keys are in ``keys`` (kept in the review)."""
        out = replace(self, label_issues=[i for i in self.label_issues if i.key not in keys],
                      duplicates=[d for d in self.duplicates if d.key not in keys],
                      outliers=[o for o in self.outliers if o.key not in keys])
        out.kept = self.kept + (len(self.label_issues) + len(self.duplicates)
                                + len(self.outliers)) - (len(out.label_issues)
                                                         + len(out.duplicates)
                                                         + len(out.outliers))
        return out


def format_report(report: CheckReport, show: int = 10) -> str:
    """The check as text: the headline, then up to ``show`` findings of each kind."""
    lines = [report.headline()]
    info = report.info
    if info:
        lines.append(f"({info.get('images', 0)} images, features from {info.get('network')}"
                     f", {info.get('computed', 0)} computed now; cross-validated heads "
                     f"{info.get('oos_accuracy', 0):.1%} right; {info.get('seconds', 0):.0f} s)")
        if report.label_advice():
            lines.append(report.label_advice())
        if info.get("precision"):
            p = info["precision"]
            why = "; ".join(x for x in (p["reason"], p.get("source")) if x)
            lines.append(f"(the network ran in {'bf16' if p['choice'] == 'bf16' else 'float32'}"
                         f": {why})")

    def section(title: str, rows: list[str], total: int) -> None:
        if total:
            more = f" (first {show})" if total > show else ""
            lines.append(f"\n{title}: {total}{more}")
            lines.extend("  " + r for r in rows[:show])

    section("Label issues (file, given -> suggested, score)",
            [f"{report.path(i.rel)}  {i.given} -> {i.suggested}  {i.score:.2f}"
             for i in report.label_issues], len(report.label_issues))
    section(f"In both train and {info.get('val_name', 'val')} (leakage)",
            [f"{report.path(d.a)} = {report.path(d.b)}  {d.similarity:.3f}"
             for d in report.leakage], len(report.leakage))
    inside = [d for d in report.duplicates if not d.across_splits]
    section("Duplicates", [f"{report.path(d.a)} = {report.path(d.b)}  {d.similarity:.3f}"
                           for d in inside], len(inside))
    section("Outliers", [f"{report.path(o.rel)}  {o.why}  {o.score:.2f}"
                         for o in report.outliers], len(report.outliers))
    section("Unreadable", [f"{report.path(p)}: {why}" for p, why in report.unreadable],
            len(report.unreadable))
    for flag in report.set_flags:
        lines.append(f"\n{flag.kind}: {flag.message}")
    if report.kept:
        lines.append(f"\n{report.kept} finding(s) kept in an earlier review are not shown.")
    return "\n".join(lines)
