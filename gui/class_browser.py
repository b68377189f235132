"""Browse every image of one class of a folder dataset, a page at a time, with file names.

The Data tab's grid shows a few samples per class; this window lets a user find the odd file
(a placeholder GIF filed as an ant) before training on it. Files whose format is rare in
their class are flagged. Listing the files and making thumbnails run in worker threads.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout)

from gui.image_utils import decoded_image
from gui.style import mix

PAGE = 48
THUMB = 96
TRAIN, VALIDATION, SKIPPED = "train", "validation", "skipped"


def class_files(source: str, name: str, state, val_files=frozenset(),
                skipped=frozenset()) -> list[tuple[Path, str]]:
    """(file, where it goes) for every image-named file of class ``name`` of a folder (or
    an archive, unpacked once by core) dataset: TRAIN, VALIDATION (in ``val_files``, the
    Data tab's split), SKIPPED (unreadable) or the held-out folder's name."""
    from core.data.datasets import extract_archive
    from core.data.folder import find_layout, image_files

    root = Path(source).expanduser()
    if root.is_file():
        root = extract_archive(root, state)
    layout = find_layout(root)

    def split(path: Path) -> str:
        return SKIPPED if str(path) in skipped else VALIDATION if str(path) in val_files \
            else TRAIN

    files = [(p, split(p)) for p in image_files(layout.train_root / name)]
    if layout.held_out_root is not None and (layout.held_out_root / name).is_dir():
        files += [(p, layout.held_out_root.name)
                  for p in image_files(layout.held_out_root / name)]
    return files


def thumbnails(files: list[Path], state) -> list[QImage]:
    """Small QImages as the model sees them (null for unreadable files); QImage is safe to
    make off the GUI thread."""
    out = []
    for path in files:
        state.check()
        out.append(decoded_image(str(path), THUMB))
    return out


class ClassBrowser(QDialog):
    def __init__(self, source: str, name: str, parent=None, val_files=frozenset(),
                 skipped=frozenset()):
        super().__init__(parent)
        self.setWindowTitle(f"Class “{name}” — all images")
        self.resize(820, 640)
        self.source, self.name = source, name
        self.files: list[tuple[Path, str]] = []
        self.rare: dict[str, int] = {}
        self.page = 0
        self.workers, self._retired = {}, []
        self.summary = QLabel("Listing files…")
        self.summary.setWordWrap(True)
        self.view = QListWidget()
        self.view.setViewMode(QListWidget.IconMode)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setGridSize(QSize(THUMB + 40, THUMB + 40))
        self.view.setResizeMode(QListWidget.Adjust)
        self.view.setMovement(QListWidget.Static)
        self.view.setWordWrap(True)
        self.view.itemDoubleClicked.connect(self._open_file)
        self.prev_btn, self.next_btn = QPushButton("◀ Previous"), QPushButton("Next ▶")
        self.page_label = QLabel()
        self.prev_btn.clicked.connect(lambda: self.show_page(self.page - 1))
        self.next_btn.clicked.connect(lambda: self.show_page(self.page + 1))
        nav = QHBoxLayout()
        nav.addWidget(self.prev_btn)
        nav.addWidget(self.page_label, 1, Qt.AlignCenter)
        nav.addWidget(self.next_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        layout.addLayout(nav)
        self._run("list", lambda state: class_files(source, name, state, val_files, skipped),
                  self._listed)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.files) // PAGE))

    def _run(self, role: str, fn, on_done) -> None:
        from core.frontends.qt_worker import TaskWorker

        old = self.workers.pop(role, None)
        if old is not None:  # it ends at its next check; its result is ignored, and it is
            old.state.cancel()  # kept referenced until its thread has finished
            old.done.disconnect()
            old.failed.disconnect()
            self._retired = [r for r in self._retired if r.thread.isRunning()] + [old]
        self.workers[role] = w = TaskWorker(fn)
        w.done.connect(on_done)
        w.failed.connect(self._failed)
        w.start()

    def _failed(self, message: str) -> None:
        self.summary.setText(message)

    def _listed(self, files) -> None:
        from core.data.summary import rare_formats

        self.rare = rare_formats([p for p, _ in files])
        self.files = sorted(files, key=lambda f: not self._flagged(f[0]))  # flagged first
        splits = Counter(split for _, split in files)
        parts = ", ".join(f"{n} {s}" for s, n in splits.items())
        text = (f"{len(files)} image files in “{self.name}” ({parts}); double-click one to "
                f"open it.")
        if self.rare:
            odd = ", ".join(f"{n} {s}" for s, n in sorted(self.rare.items()))
            text += f" ⚠ Unusual format for this class: {odd} — flagged, shown first."
        self.summary.setText(text)
        self.show_page(0)

    def show_page(self, page: int) -> None:
        self.page = min(max(page, 0), self.pages - 1)
        chunk = self.files[self.page * PAGE:(self.page + 1) * PAGE]
        self.view.clear()
        held_out = mix(self.palette().color(QPalette.ColorRole.Base),
                       self.palette().color(QPalette.ColorRole.Highlight), 0.25)
        for path, split in chunk:
            flag = "⚠ " if self._flagged(path) else ""
            item = QListWidgetItem(f"{flag}{path.name}" + ("" if split == TRAIN else
                                                          f"\n({split})"))
            if split != TRAIN:
                item.setBackground(held_out)
            item.setData(Qt.UserRole, str(path))
            item.setToolTip(f"{path}\n{split}" + ("\nunusual format for this class" if flag
                                                   else ""))
            self.view.addItem(item)
        self.page_label.setText(f"Page {self.page + 1} of {self.pages}")
        self.prev_btn.setEnabled(self.page > 0)
        self.next_btn.setEnabled(self.page < self.pages - 1)
        paths, page = [p for p, _ in chunk], self.page
        self._run("thumbs", lambda state: (page, thumbnails(paths, state)), self._thumbs_ready)

    def _flagged(self, path: Path) -> bool:
        from core.data.summary import format_of

        return format_of(path) in self.rare

    def _open_file(self, item) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(item.data(Qt.UserRole)))

    def _thumbs_ready(self, result) -> None:
        page, images = result
        if page != self.page:
            return
        for row, image in enumerate(images):
            item = self.view.item(row)
            if item is None:
                return
            if image.isNull():
                item.setText(item.text() + " (unreadable)")
            else:
                item.setIcon(QIcon(QPixmap.fromImage(image)))

    def done(self, result: int) -> None:  # noqa: A003 - QDialog's name
        for w in self.workers.values():
            w.state.cancel()
        super().done(result)
