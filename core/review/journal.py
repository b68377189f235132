"""The review journal of a dataset folder: the one home of its location, format and state.

Every change the Review makes to a dataset (relabel: a file moves to another class folder;
remove: it moves into the quarantine folder; keep: a finding is marked as reviewed) is a
*transaction* written to ``ROOT/.transferlab-review/journal.jsonl`` before anything moves:

    {"v": 1, "op": "begin", "id": "00007", "kind": "relabel", "target": "",
     "moves": [["train/ants/a.jpg", "train/bees/a.jpg"]], "keeps": [], "label": "...",
     "time": "2026-11-30T08:00:00"}
    {"v": 1, "op": "commit", "id": "00007"}           (or "abort", with "why")

Paths are relative to ROOT, with "/" separators. An undo or a redo is a transaction of its
own (kind "undo"/"redo", ``target`` the action it reverses or repeats, its exact moves), so
replaying the committed records gives the applied actions and the redo stack across app
restarts. Each line is flushed and fsync'd before the next step; a line torn by a crash can
only be the last one and is ignored. A ``begin`` with neither ``commit`` nor ``abort`` is an
interrupted transaction: ``core.review.session.recover`` settles it.

The folder's name starts with a dot, so the dataset lister (core.data.folder) never lists the
quarantined files nor the journal. This module imports no torch: the run record asks it for
``journal_state`` of its data.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import TransferLabError

REVIEW_DIR = ".transferlab-review"
JOURNAL = "journal.jsonl"
LOCK = "journal.lock"
REMOVED = "removed"  # quarantine: REVIEW_DIR/removed/<action id>/<path relative to ROOT>
FORMAT = 1
ACTIONS = ("relabel", "remove", "keep")
REVERSALS = ("undo", "redo")


@dataclass(frozen=True)
class Transaction:
    id: str
    kind: str  # one of ACTIONS or REVERSALS
    moves: tuple[tuple[str, str], ...] = ()  # (from, to), relative to ROOT
    keeps: tuple[str, ...] = ()  # finding keys marked as reviewed
    label: str = ""  # what the user did, in words
    target: str = ""  # for undo/redo: the action's id
    time: str = ""

    def record(self) -> dict:
        return {"v": FORMAT, "op": "begin", "id": self.id, "kind": self.kind,
                "target": self.target, "moves": [list(m) for m in self.moves],
                "keeps": list(self.keeps), "label": self.label, "time": self.time}

    @classmethod
    def from_record(cls, rec: dict) -> "Transaction":
        return cls(str(rec["id"]), str(rec["kind"]),
                   tuple((str(a), str(b)) for a, b in rec.get("moves", ())),
                   tuple(str(k) for k in rec.get("keeps", ())), str(rec.get("label", "")),
                   str(rec.get("target", "")), str(rec.get("time", "")))


@dataclass
class JournalState:
    done: list[Transaction] = field(default_factory=list)  # applied actions, oldest first
    undone: list[Transaction] = field(default_factory=list)  # redo stack, last undone last
    pending: Transaction | None = None  # begun, never committed nor aborted
    count: int = 0  # transactions begun so far (ids are numbered from it)
    exists: bool = False

    @property
    def kept(self) -> set[str]:
        return {k for t in self.done for k in t.keeps}

    @property
    def state_id(self) -> str | None:
        """Which review state the dataset's files are in: None when it was never reviewed,
        "review-0" when every change was undone (the files as they were), else
        "review-N-HASH" over the N applied changes that moved files."""
        if not self.exists:
            return None
        moving = [t for t in self.done if t.moves]
        if not moving:
            return "review-0"
        h = hashlib.sha256()
        for t in moving:
            h.update(json.dumps([t.id, t.moves]).encode())
        return f"review-{len(moving)}-{h.hexdigest()[:12]}"


def review_dir(root: str | os.PathLike) -> Path:
    return Path(root) / REVIEW_DIR


def journal_path(root: str | os.PathLike) -> Path:
    return review_dir(root) / JOURNAL


def quarantine_path(action_id: str, rel: str) -> str:
    """Where ``remove`` puts the file ``rel`` (relative to ROOT, like every journal path)."""
    return f"{REVIEW_DIR}/{REMOVED}/{action_id}/{rel}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _records(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TransferLabError(f"Cannot read the review journal {path}: "
                               f"{exc.strerror or exc}.") from None
    lines = text.split("\n")
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            # a line torn by a crash: a begin whose moves never started, or a commit/abort
            # whose transaction then reads as interrupted and is settled again
            continue
        if isinstance(rec, dict) and rec.get("v", 0) > FORMAT:
            raise TransferLabError(f"{path} was written by a newer TransferLab; update it to "
                                   f"review this dataset.")
        out.append(rec)
    return out


def _apply(state: JournalState, t: Transaction) -> None:
    if t.kind == "undo":
        moved = _take(state.done, t.target)
        if moved is not None:
            state.undone.append(moved)
    elif t.kind == "redo":
        moved = _take(state.undone, t.target)
        if moved is not None:
            state.done.append(moved)
    else:
        state.done.append(t)
        state.undone.clear()


def _take(stack: list[Transaction], action_id: str) -> Transaction | None:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i].id == action_id:
            return stack.pop(i)
    return None


def read(root: str | os.PathLike) -> JournalState:
    """Replay the journal of the dataset at ``root``."""
    path = journal_path(root)
    state = JournalState(exists=path.exists())
    begun: dict[str, Transaction] = {}
    for rec in _records(path):
        op, tid = rec.get("op"), str(rec.get("id", ""))
        if op == "begin":
            try:
                begun[tid] = Transaction.from_record(rec)
            except (KeyError, TypeError, ValueError):
                raise TransferLabError(f"The review journal {path} has a damaged record "
                                       f"({tid or 'no id'}).") from None
            state.count += 1
        elif op == "commit" and tid in begun:
            _apply(state, begun.pop(tid))
        elif op == "abort":
            begun.pop(tid, None)
    if begun:
        state.pending = list(begun.values())[-1]
    return state


def journal_state(root: str | os.PathLike) -> str | None:
    """The review state id of the dataset folder ``root`` (see ``JournalState.state_id``);
    None for a source that is not a folder or was never reviewed. Torch-free and cheap: a
    run records it with its data."""
    try:
        return read(root).state_id if Path(root).is_dir() else None
    except TransferLabError:
        return "review-damaged"


def append(root: str | os.PathLike, record: dict) -> None:
    """Add one record and make it durable before returning."""
    path = journal_path(root)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a torn last line stays apart from this one
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise TransferLabError(f"Cannot write the review journal {path}: "
                               f"{exc.strerror or exc}.") from None


def next_id(state: JournalState) -> str:
    return f"{state.count + 1:05d}"
