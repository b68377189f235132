"""The dataset as a 2-D map: each image's features (the check's 50-dimensional PCA summary)
placed by openTSNE, so that similar images lie together.

openTSNE (FFT-accelerated t-SNE) is the app's method: bench/map_compute.py measured it
against umap-learn on this kind of machine (see there for the figures) and it needs no JIT
compilation at first use; umap-learn, a development package here, is kept for the
benchmark. Progress and cancel reach the optimisation through openTSNE's callbacks.
"""
from __future__ import annotations

import contextlib
import sys

import numpy as np

from core.progress import TaskState

METHODS = ("tsne", "umap")
ITERATIONS = (250, 500)  # openTSNE's defaults: early exaggeration, then the rest
CALLBACK_EVERY = 25


def embed(x: np.ndarray, state: TaskState | None = None, method: str = "tsne",
          threads: int | None = None) -> np.ndarray:
    """(N, 2) float32 coordinates of the rows of ``x`` (seeded: the same map every time)."""
    state = state or TaskState()
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) < 5:
        return np.zeros((len(x), 2), np.float32)
    if method == "umap":
        import umap

        state.report("Drawing the map (UMAP)", 0, 0)
        return umap.UMAP(random_state=0, n_jobs=1).fit_transform(x).astype(np.float32)
    with _unasked("pynndescent"):
        return _tsne(x, state, threads or _threads(len(x)))


def _threads(n: int) -> int:
    """Threads for openTSNE: one below 10,000 points (its Barnes-Hut steps are short, and
    threads waiting for each other cost more than they save; on the loaded 2-core machine 63
    points took 152 s on 2 threads, 82 s on 1), up to 4 above (FFT steps are long)."""
    import os

    return 1 if n < 10_000 else max(1, min(4, os.cpu_count() or 1))


@contextlib.contextmanager
def _unasked(module: str):
    """openTSNE asks whether ``module`` is installed by importing it; for pynndescent (a
    development package here, pulled in by umap-learn) that imports and compiles numba code,
    a minute on a loaded machine, although euclidean data never uses it. While this is open,
    the question is answered "no" unless the module is loaded already."""
    if module in sys.modules:
        yield
        return
    sys.modules[module] = None  # import_module raises ImportError
    try:
        yield
    finally:
        if sys.modules.get(module, 0) is None:
            del sys.modules[module]


def _tsne(x: np.ndarray, state: TaskState, threads: int) -> np.ndarray:
    from openTSNE import TSNE

    total = sum(ITERATIONS)
    done = [0]

    def progress(iteration, _error, _embedding):
        done[0] += CALLBACK_EVERY
        state.report("Drawing the map (t-SNE)", min(done[0], total), total)
        state.check()  # raises Cancelled: the optimisation stops there
        return False

    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), random_state=0,
                n_jobs=threads, early_exaggeration_iter=ITERATIONS[0], n_iter=ITERATIONS[1],
                callbacks=progress, callbacks_every_iters=CALLBACK_EVERY, verbose=False)
    state.report("Drawing the map (t-SNE)", 0, total)
    return np.asarray(tsne.fit(x), dtype=np.float32)


def cached_embed(x: np.ndarray, state: TaskState | None = None) -> np.ndarray:
    """``embed(x)``, kept on disk (keyed by the bytes of ``x``) under the decoded cache's
    rules: reopening a check of the same images draws the same map at once."""
    import hashlib

    from core.data import disk_cache
    from core.paths import atomic_path, cache_dir

    import torch

    x = np.ascontiguousarray(x, dtype=np.float32)
    key = hashlib.sha256(x.tobytes() + str(x.shape).encode()).hexdigest()[:24]
    path = cache_dir() / "maps" / f"{key}.pt"
    try:
        coords = torch.load(path, weights_only=True).numpy()
        disk_cache.touch(path)
        if coords.shape == (len(x), 2):
            return coords
    except Exception:  # noqa: BLE001 - missing or damaged: computed again
        pass
    coords = embed(x, state)
    try:
        with atomic_path(path) as tmp:
            torch.save(torch.from_numpy(coords), tmp)
        disk_cache.enforce_cap(path.parent)
    except (OSError, RuntimeError):
        pass  # a read-only cache only costs time next time
    return coords
