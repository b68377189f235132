"""Smoke test of the PyInstaller build (`make dist-test`): slow, not in the default suite.

Runs dist/TransferLab/TransferLab offscreen: renders --screenshot (launch-to-window time),
trains one tiny epoch through the CLI entry of the same binary, predicts one image with the
result, and prints the dist size.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dist" / "TransferLab" / "TransferLab"


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def run(args, env, timeout=600):
    t = time.perf_counter()
    proc = subprocess.run([str(APP), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    return proc, time.perf_counter() - t


def make_images(root: Path) -> Path:
    from PIL import Image

    for c, colour in enumerate([(220, 40, 40), (40, 200, 60)]):
        for i in range(12):
            p = root / f"class_{c}" / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40, 40), tuple(max(0, v - 3 * i) for v in colour)).save(p)
    return root


def main() -> int:
    if not APP.exists():
        print(f"no build at {APP}: run `make dist` first")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="tl-dist-"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TRANSFERLAB_HOME=str(tmp / "home"),
               TRANSFERLAB_OFFLINE="1")
    failures = []
    shot = tmp / "shot.png"
    proc, secs = run(["--screenshot", str(shot), "--tab", "model"], env)
    ok = proc.returncode == 0 and shot.exists()
    print(f"screenshot: {'ok' if ok else 'FAILED'} ({proc.stdout.strip()}; whole run "
          f"{secs:.1f} s)")
    ok or failures.append(("screenshot", proc.stderr[-2000:]))
    data = make_images(tmp / "data")
    proc, secs = run(["train", "--model", "efficientnet_lite0", "--data", str(data),
                      "--epochs", "1", "--image-size", "64", "--batch-size", "8",
                      "--out", str(tmp / "run")], env)
    ok = proc.returncode == 0 and (tmp / "run" / "model.pt").exists()
    lines = [ln for ln in proc.stdout.splitlines() if "End |" in ln]
    print(f"train one epoch: {'ok' if ok else 'FAILED'} in {secs:.1f} s: "
          f"{lines[-1] if lines else ''}")
    ok or failures.append(("train", proc.stderr[-2000:]))
    proc, secs = run(["predict", str(tmp / "run" / "model.pt"),
                      str(data / "class_1" / "3.png")], env)
    ok = proc.returncode == 0 and "class_" in proc.stdout
    print(f"predict: {'ok' if ok else 'FAILED'} in {secs:.1f} s: {proc.stdout.strip()}")
    ok or failures.append(("predict", proc.stderr[-2000:]))
    print(f"dist size: {size_of(APP.parent) / 1024**3:.2f} GB ({APP.parent})")
    for name, err in failures:
        print(f"--- {name} stderr ---\n{err}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
