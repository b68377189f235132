"""Relabel, remove, keep, undo and redo on a dataset folder, never losing a file.

A ``ReviewSession`` holds the folder's journal (core.review.journal) under a lock, so two
windows cannot change one dataset at once. Every change is checked first (its files exist,
no target exists: a name collision is refused, never overwritten), written to the journal,
then done file by file; a move that fails puts back the ones already done, so the files are
where they were before the change, and the journal says it was aborted. A change interrupted
by a crash is settled when the dataset is next opened: finished when every remaining move
is still possible, otherwise put back.

A dataset on a read-only disk, or a folder whose permissions deny writing, opens read-only:
``read_only`` says why, and every change is refused with that reason.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import TransferLabError
from core.review import journal as J
from core.review.moves import fsync_dir, move_no_replace, settle, writable

Move = tuple[str, str]


def relabel_target(rel: str, given: str, new: str) -> str:
    """``rel`` (ROOT/<class>/… or ROOT/<split>/<class>/…) moved to the class folder ``new``."""
    parts = rel.split("/")
    for i in range(min(2, len(parts) - 1)):
        if parts[i] == given:
            return "/".join(parts[:i] + [new] + parts[i + 1:])
    raise TransferLabError(f"{rel} is not in a class folder named '{given}'.")


class ReviewSession:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().absolute()
        self.read_only = writable(self.root)
        self.recovered = ""  # what opening did about an interrupted change, in words
        self._lock = None
        if not self.read_only:
            self._take_lock()
        self.state = J.read(self.root)
        if self.state.pending is not None:
            if self.read_only:
                self.recovered = (f"An interrupted change ({self.state.pending.label}) cannot "
                                  f"be settled while the dataset is read-only.")
            else:
                self.recovered = self._recover(self.state.pending)

    def _take_lock(self) -> None:
        from filelock import FileLock, Timeout

        try:
            J.review_dir(self.root).mkdir(exist_ok=True)
            lock = FileLock(str(J.review_dir(self.root) / J.LOCK), timeout=0)
            lock.acquire()
        except Timeout:
            self.read_only = "another TransferLab window is reviewing this dataset"
        except OSError as exc:
            self.read_only = f"cannot write in {self.root}: {exc.strerror or exc}"
        else:
            self._lock = lock

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- what the user can do -----------------------------------------------------------
    @property
    def kept(self) -> set[str]:
        return self.state.kept

    @property
    def undo_label(self) -> str:
        return self.state.done[-1].label if self.state.done else ""

    @property
    def redo_label(self) -> str:
        return self.state.undone[-1].label if self.state.undone else ""

    def relabel(self, items: list[tuple[str, str, str]], label: str = "",
                new_names: bool = False) -> J.Transaction:
        """Move each (path relative to ROOT, its class, the new class) to the new class.
        A name the new class already has is refused, unless ``new_names``: then the file
        gets a free name there ("cat-2.jpg")."""
        moves, taken = [], set()
        for rel, given, new in items:
            dst = relabel_target(rel, given, new)
            if new_names:
                dst = self._free_name(dst, taken)
            taken.add(dst)
            moves.append((rel, dst))
        moves = tuple(moves)
        classes = sorted({new for _, _, new in items})
        return self._do("relabel", moves, (), label or
                        f"Relabel {_count(moves)} to {', '.join(classes)}")

    def collisions(self, items: list[tuple[str, str, str]]) -> list[str]:
        """The relabel targets of ``items`` that already exist (what ``relabel`` refuses)."""
        return [dst for dst in (relabel_target(rel, g, n) for rel, g, n in items)
                if os.path.lexists(self._abs(dst))]

    def _free_name(self, rel: str, taken: set[str]) -> str:
        stem, dot, ext = rel.rpartition(".")
        if not dot or "/" in ext:
            stem, ext = rel, ""
        candidate, n = rel, 1
        while candidate in taken or os.path.lexists(self._abs(candidate)):
            n += 1
            candidate = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
        return candidate

    def remove(self, rels: list[str], label: str = "") -> J.Transaction:
        """Move the files into the quarantine folder (undo puts them back)."""
        tid = J.next_id(self.state)
        moves = tuple((rel, J.quarantine_path(tid, rel)) for rel in rels)
        return self._do("remove", moves, (), label or f"Remove {_count(moves)}")

    def keep(self, keys: list[str], label: str = "") -> J.Transaction:
        """Mark findings as reviewed: a later check does not raise them again."""
        return self._do("keep", (), tuple(keys), label or f"Keep {_count(keys)}")

    def undo(self) -> J.Transaction | None:
        if not self.state.done:
            return None
        t = self.state.done[-1]
        back = tuple((dst, src) for src, dst in reversed(t.moves))
        return self._run(J.Transaction(J.next_id(self.state), "undo", back, (),
                                       f"Undo: {t.label}", t.id, J.now()))

    def redo(self) -> J.Transaction | None:
        if not self.state.undone:
            return None
        t = self.state.undone[-1]
        return self._run(J.Transaction(J.next_id(self.state), "redo", t.moves, (),
                                       f"Redo: {t.label}", t.id, J.now()))

    # --- doing it -----------------------------------------------------------------------
    def _do(self, kind: str, moves: tuple[Move, ...], keeps: tuple[str, ...],
            label: str) -> J.Transaction:
        if not moves and not keeps:
            raise TransferLabError("Nothing is selected.")
        return self._run(J.Transaction(J.next_id(self.state), kind, moves, keeps, label,
                                       "", J.now()))

    def _abs(self, rel: str) -> Path:
        return self.root / rel

    def _check(self, moves: tuple[Move, ...]) -> None:
        if self.read_only:
            raise TransferLabError(f"This dataset is reviewed read-only: {self.read_only}.")
        sources = {src for src, _ in moves}
        seen: set[str] = set()
        for src, dst in moves:
            if not os.path.lexists(self._abs(src)):
                raise TransferLabError(f"{src} is no longer there (moved or deleted outside "
                                       f"TransferLab?). Nothing was moved; check again.")
            if os.path.lexists(self._abs(dst)) or dst in seen or dst in sources:
                raise TransferLabError(
                    f"{dst} already exists: TransferLab never replaces a file. Rename or "
                    f"remove one of the two first. Nothing was moved.")
            seen.add(dst)

    def _run(self, t: J.Transaction) -> J.Transaction:
        self._check(t.moves)
        for _, dst in t.moves:
            self._abs(dst).parent.mkdir(parents=True, exist_ok=True)
        J.append(self.root, t.record())
        done: list[Move] = []
        try:
            for src, dst in t.moves:
                move_no_replace(self._abs(src), self._abs(dst))
                done.append((src, dst))
        except OSError as exc:
            self._put_back(t, done, f"{exc.strerror or exc} ({exc.filename})")
            raise TransferLabError(f"Could not move {Path(src).name}: {exc.strerror or exc}. "
                                   f"Nothing was changed.") from None
        self._sync(t.moves)
        J.append(self.root, {"v": J.FORMAT, "op": "commit", "id": t.id})
        self.state = J.read(self.root)
        return t

    def _put_back(self, t: J.Transaction, done: list[Move], why: str) -> None:
        """Undo the moves of a failed change, then record that it was aborted. If a file
        cannot be put back, the change stays pending and is settled on the next opening."""
        try:
            for src, dst in reversed(done):
                move_no_replace(self._abs(dst), self._abs(src))
        except OSError as exc:
            raise TransferLabError(
                f"Could not put {Path(dst).name} back ({exc.strerror or exc}); the change "
                f"stays in the journal and is settled when the dataset is next opened.") from None
        self._sync(done)
        J.append(self.root, {"v": J.FORMAT, "op": "abort", "id": t.id, "why": why})
        self.state = J.read(self.root)

    def _sync(self, moves) -> None:
        for folder in {self._abs(p).parent for m in moves for p in m}:
            fsync_dir(folder)

    def _recover(self, t: J.Transaction) -> str:
        where = [settle(self._abs(s), self._abs(d)) for s, d in t.moves]
        todo = [m for m, w in zip(t.moves, where) if w == "todo"]
        lost = where.count("lost")
        if all(not os.path.lexists(self._abs(dst)) for _, dst in todo):
            try:
                for src, dst in todo:
                    self._abs(dst).parent.mkdir(parents=True, exist_ok=True)
                    move_no_replace(self._abs(src), self._abs(dst))
                self._sync(t.moves)
                J.append(self.root, {"v": J.FORMAT, "op": "commit", "id": t.id})
                self.state = J.read(self.root)
                note = f"; {lost} file(s) were missing" if lost else ""
                return f"Finished a change that was interrupted: {t.label}{note}."
            except OSError:
                pass  # put back what was done instead
        done = [(s, d) for s, d in t.moves
                if os.path.lexists(self._abs(d)) and not os.path.lexists(self._abs(s))]
        self._put_back(t, done, "interrupted; put back when the dataset was next opened")
        return f"Put back a change that was interrupted: {t.label}."


def _count(items) -> str:
    n = len(items)
    return f"{n} image{'s' * (n != 1)}"


def settle_pending(root: str | os.PathLike) -> str:
    """At start: finish or put back a change a crash interrupted in the dataset at ``root``
    (what was done, in words; "" when nothing was pending or the folder is not a dataset
    that was reviewed). Cheap when there is nothing to do: one small file is read."""
    path = J.journal_path(Path(root).expanduser())
    try:
        if not path.is_file() or J.read(path.parent.parent).pending is None:
            return ""
    except TransferLabError as exc:
        return str(exc)
    session = ReviewSession(path.parent.parent)
    try:
        return session.recovered or session.read_only
    finally:
        session.close()
