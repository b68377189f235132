"""Start the Qt application: the window first, PyTorch in the background."""
from __future__ import annotations

import argparse
import time

T0 = time.perf_counter()


def parse_args(argv: list[str]) -> argparse.Namespace:
    from gui.main_window import TABS

    p = argparse.ArgumentParser(prog="transferlab", description="TransferLab desktop app")
    p.add_argument("--screenshot", metavar="FILE.png",
                   help="render the window to a PNG (after loading) and exit")
    p.add_argument("--tab", choices=TABS, default=None)
    p.add_argument("--run", metavar="RUN_DIR", help="open a finished run's charts")
    p.add_argument("--data", metavar="SOURCE", help="dataset to show: cifar10, a folder…")
    p.add_argument("--predict", nargs="+", metavar="IMAGE",
                   help="images (or folders) to classify in the Inference tab; a model file "
                   "among them (model.pt, .onnx, .pt2) is loaded first and used (with "
                   "--screenshot, the predictions are printed too)")
    p.add_argument("--cam", action="store_true", help="with --predict: show the Grad-CAM")
    p.add_argument("--color-scheme", choices=("auto", "light", "dark"), default="auto",
                   help="auto follows the system where Qt can tell it; dark forces dark colours")
    return p.parse_args(argv)


def run_app(argv: list[str]) -> int:
    args = parse_args(argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["TransferLab"])
    app.setApplicationName("TransferLab")
    app.setStyle("Fusion")
    if args.color_scheme != "auto":
        from gui.style import dark_palette

        app.setPalette(dark_palette() if args.color_scheme == "dark"
                       else app.style().standardPalette())
    from PySide6.QtGui import QIcon

    from gui.resources import resource_path

    app.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
    from gui.main_window import MainWindow
    from gui.style import STYLESHEET

    app.setStyleSheet(STYLESHEET)
    window = MainWindow()
    if args.data:
        window.data_tab.set_source(args.data)
    if args.tab:
        window.select_tab(args.tab)
    window.show()
    window.shown_after_s = time.perf_counter() - T0
    QTimer.singleShot(0, window.start_loading_torch)
    if args.run:
        window.torchReady.connect(lambda: window.open_run(args.run))
    if args.predict:
        _predict_on_start(window, args.predict, args.cam)
    if args.screenshot:
        return _screenshot(app, window, args)
    return app.exec()


def _predict_on_start(window, paths: list[str], cam: bool) -> None:
    from pathlib import Path

    from core.catalog import MODEL_FILE_SUFFIXES

    tab = window.inference_tab
    models = [p for p in paths if p.lower().endswith(MODEL_FILE_SUFFIXES)]
    images = [p for p in paths if p not in models]
    once = {"done": False}

    def go(_text):
        ours = not models or Path(tab.lm.source) == Path(models[0]).expanduser()
        if ours and not once["done"]:  # (the default model may load first)
            once["done"] = True
            tab.predict(images)

    tab.modelLoaded.connect(go)
    if models:
        window.torchReady.connect(lambda: tab.load_model_file(models[0]))
    if cam:
        tab.predictionsDone.connect(lambda _n: tab.cam_box.setChecked(True))


def _busy(window) -> bool:
    workers = [window.data_tab.worker, window.model_tab.structure_worker,
               *window.inference_tab.workers.values()]
    return any(w is not None and w.thread.isRunning() for w in workers)


def _screenshot(app, window, args) -> int:
    """Wait for PyTorch (and a dataset scan, if any), render the window, quit."""
    from PySide6.QtCore import QTimer

    status = {"code": 1}

    def shoot():
        wanted = bool(args.predict) and not window.inference_tab.predictions
        if _busy(window) or wanted:
            QTimer.singleShot(200, shoot)
            return
        ok = window.grab().save(args.screenshot, "PNG")
        print(f"window shown after {window.shown_after_s:.2f} s; PyTorch ready after "
              f"{window.torch_ready_after_s:.2f} s; saved {args.screenshot}"
              if ok else f"could not write {args.screenshot}")
        if args.cam:
            print(f"grad-cam: {window.inference_tab.cam.status.text()}")
        for p in window.inference_tab.predictions:  # what the tab computed, in full
            print("\t".join([p.path, f"skipped: {p.error}"] if p.error else
                            [p.path] + [f"{c}\t{v:.8f}" for c, v in p.topk]))
        status["code"] = 0 if ok else 2
        window.close()
        app.quit()

    def failed(message: str) -> None:
        print(f"error: PyTorch failed to load: {message}")
        status["code"] = 2
        app.quit()

    window.torchReady.connect(lambda: QTimer.singleShot(800, shoot))
    window.torchFailed.connect(failed)
    app.exec()
    return status["code"]
