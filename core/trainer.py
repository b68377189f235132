"""The training loop: two-phase fine-tuning that knows nothing of its observers.

Observers get plain-data events (core.events); a TaskState carries stop, pause and queued
actions (freeze toggles) in, checked between batches only, so the model is never touched from
another thread mid-step.
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import torch
from torch import nn

from core import events as ev
from core.config import TrainConfig
from core.data import Dataset, load_dataset
from core.data.batches import BatchLoader
from core.feature_cache import PrefixCaches
from core.errors import StopTraining, TransferLabError
from core.layers import LayerTree, apply_bn_policy
from core.metrics import evaluate
from core.models import build_model, head_path
from core.models.staging import frozen_prefix, stages
from core.optim import build_optimizer, lr_at, set_lr, unfrozen
from core.progress import Cancelled, TaskState
from core.run_store import (RunStore, history_row, model_payload, new_run_dir,
                             read_batches)


class Trainer:
    def __init__(self, config: TrainConfig, callbacks=(), state: TaskState | None = None,
                 run_dir: str | Path | None = None, resume: bool = False):
        self.cfg = config.validate()
        self.callbacks = list(callbacks)
        self.state = state or TaskState()
        self.store = RunStore(run_dir or new_run_dir(config.model))
        self.resume = resume
        self.history: list[dict] = []
        self.batch_log: list[dict] = []  # every batch's loss, for reopening a run's charts
        self.model = self.tree = self.opt = self.data = None
        self._epoch, self._batch = 0, 0

    # --- plumbing -----------------------------------------------------------------------
    def emit(self, event) -> None:
        for cb in self.callbacks:
            cb.on_event(event)

    def log(self, message: str) -> None:
        self.emit(ev.LogLine(message))

    # --- set-up -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load data and model (slow: called inside the worker thread, not the GUI's)."""
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.data: Dataset = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed,
                                          self.state, cfg.limit)
        self.state.check()
        model, pre, info = build_model(cfg.model, cfg.weights, len(self.data.classes),
                                       self.state.download_progress("Downloading weights"))
        self.log(f"{cfg.model}: weights {info.kind} ({info.source}); BatchNorm statistics: "
                 f"{cfg.effective_bn_policy()}")
        self.preprocessing = pre.for_training(cfg.image_size)
        self.model = model.to(memory_format=torch.channels_last) if cfg.channels_last else model
        self.head = head_path(self.model)
        self.tree = LayerTree(self.model)
        self.stage_list = stages(cfg.model, self.model)
        self.caches: PrefixCaches | None = None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    def loaders(self) -> tuple[BatchLoader, BatchLoader]:
        cfg, pre = self.cfg, self.preprocessing
        common = dict(image_size=cfg.image_size, mean=pre.mean, std=pre.std,
                      channels_last=cfg.channels_last)
        train = BatchLoader(self.data.train.images, self.data.train.labels, cfg.batch_size,
                            shuffle=True, flip=cfg.flip, seed=cfg.seed + self._epoch, **common)
        val = BatchLoader(self.data.val.images, self.data.val.labels, max(cfg.batch_size, 64),
                          **common)
        return train, val

    # --- freezing -----------------------------------------------------------------------
    def set_freeze(self, spec: str | None = None, path: str | None = None,
                   trainable: bool = False, message: str = "") -> None:
        """Change what is frozen (a whole spec, or one subtree) and rebuild the optimizer.

        Queue this through ``state.queue`` from other threads: it then runs between batches.
        """
        if spec is not None:
            self.tree.apply_spec(spec, self.head, self.cfg.model)
        if path is not None:
            self.tree.set_trainable(path, trainable)
        self.opt = build_optimizer(self.cfg, self.model, self.opt, self.head)
        self._plan_cache()
        phase = self.phase
        summary = self.tree.summary()
        self.log(f"{message or 'Trainable layers changed'}: {summary} "
                 f"({self.tree.trainable_tensors()} trainable tensors)")
        self.emit(ev.PhaseChanged(self._epoch + 1, self._batch, phase, summary,
                                  self.tree.frozen_spec(), message))

    def _plan_cache(self) -> None:
        """Cache the frozen prefix when it is valid and worth it; drop a stale cache."""
        cfg = self.cfg
        k = 0
        if cfg.cache_frozen and cfg.effective_bn_policy() != "train":
            k = frozen_prefix(self.tree, self.stage_list)
        if k == (self.caches.k if self.caches else 0):
            return
        self.caches = None
        if k:
            self._cache_epoch = self._epoch  # the epoch that fills the cache
            self.caches = PrefixCaches(self.stage_list, k, len(self.data.train.labels),
                                       len(self.data.val.labels), cfg.flip)
            self.log(f"Caching the frozen layers up to {self.stage_list[k - 1].path or 'pool'} "
                     f"({k} stages): epochs after the first skip them")

    def _forward(self, loader: BatchLoader, idx, flips) -> torch.Tensor:
        if self.caches is not None:
            return self.caches.forward_tail(self.caches.train.features(loader, idx, flips))
        return self.model(loader.inputs(idx, flips))

    def _validate(self, loader: BatchLoader):
        n = len(self.data.classes)
        if self.caches is not None:
            return evaluate(self.model, self.caches.val.batches(loader), n, self.state,
                            forward=self.caches.forward_tail)
        return evaluate(self.model, loader, n, self.state)

    @property
    def phase(self) -> str:
        frozen, _ = self.tree.counts()
        return "frozen" if frozen else "unfrozen"

    def _enter_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        if epoch == 0 or self.opt is None:
            spec = "none" if unfrozen(cfg, epoch) else cfg.freeze
            self.set_freeze(spec=spec, message="Start" if epoch == 0 else "Resume")
        elif unfrozen(cfg, epoch) and not unfrozen(cfg, epoch - 1):
            self.set_freeze(spec="none", message=f"Epoch {epoch + 1}: backbone unfrozen, "
                            f"LR x{cfg.unfreeze_lr_factor:g}")

    # --- the loop -----------------------------------------------------------------------
    def fit(self) -> ev.FitEnd:
        try:
            return self._fit()
        except Cancelled:
            return self._finish("stopped", "Stopped by the user.")
        except StopTraining as exc:
            return self._finish("failed", str(exc))

    def _fit(self) -> ev.FitEnd:
        self.prepare()
        start = self._restore() if self.resume else 0
        cfg = self.cfg
        self.store.write_config(cfg.to_dict())
        train_loader, _ = self.loaders()
        self.emit(ev.RunStarted(str(self.store.dir), cfg.model, list(self.data.classes),
                                len(self.data.train.labels), len(self.data.val.labels),
                                cfg.epochs, start, len(train_loader), self.tree.summary(),
                                self.data.describe()))
        self.log(self.data.describe())
        self._t0, self._images_done = time.perf_counter(), 0
        for epoch in range(start, cfg.epochs):
            self._epoch, self._batch = epoch, 0
            self._enter_epoch(epoch)
            self._run_epoch(epoch)
        return self._finish("finished", "")

    def _run_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        train_loader, val_loader = self.loaders()
        started = time.perf_counter()
        train_loss, train_acc = self._train_one_epoch(epoch, train_loader)
        seconds = time.perf_counter() - started
        result = self._validate(val_loader)
        event = ev.EpochEnd(epoch + 1, cfg.epochs, self.phase, train_loss, train_acc,
                            result.loss, result.accuracy, lr_at(cfg, epoch),
                            time.perf_counter() - started,
                            len(self.data.train.labels) / max(seconds, 1e-9))
        self.history.append(history_row(event))
        if self.caches is not None and epoch == self._cache_epoch:
            self.log(f"Cached features: {self.caches.nbytes / 1024**3:.2f} GB in RAM")
        self._save(epoch, result.accuracy)
        self.emit(event)
        self.log(ev.epoch_line(epoch + 1, train_loss, train_acc, result.accuracy) +
                 f" (val loss {result.loss:.4f}, {event.seconds:.0f} s)")

    def _train_one_epoch(self, epoch: int, loader: BatchLoader) -> tuple[float, float]:
        cfg = self.cfg
        self._set_bn_modes()
        total_loss, correct, seen = 0.0, 0, 0
        tick = time.perf_counter()
        for i, (idx, flips) in enumerate(loader.indices()):
            self._batch = i  # batches done: what a queued toggle's event reports
            # pause / stop / queued freeze toggles, between batches only
            if self.state.check():
                self._set_bn_modes()  # a toggle may have frozen (or unfrozen) BatchNorm
            self._batch = i + 1
            lr = lr_at(cfg, epoch, i / len(loader))
            set_lr(self.opt, lr)
            y = loader.labels[idx]
            loss, out = self._step(loader, idx, flips, y)
            total_loss += loss * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
            self._images_done += len(y)
            now = time.perf_counter()
            self._emit_batch(epoch, i, len(loader), loss, lr, len(y) / max(now - tick, 1e-9))
            tick = now
            if cfg.log_every and (i + 1) % cfg.log_every == 0:
                self.log(f"Epoch [{epoch + 1}/{cfg.epochs}], Step [{i + 1}/{len(loader)}], "
                         f"Loss: {loss:.4f}")
        return total_loss / max(seen, 1), 100.0 * correct / max(seen, 1)

    def _set_bn_modes(self) -> None:
        """Train mode, then the BatchNorm policy: also after a toggle, so a layer unfrozen
        mid-epoch gets train-mode BatchNorm at once (policy permitting), not next epoch."""
        self.model.train()
        apply_bn_policy(self.model, self.cfg.effective_bn_policy())
        self._bn_trains = any(m.training for m in self.model.modules()
                              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))

    def _chunks(self, n: int) -> list[slice]:
        """Micro-batches for one optimizer step. On CPU, forward+backward over 16 images at a
        time runs ~3x faster than over 64 (cache-sized activations); the gradients are summed
        before the step, so the step is the batch's. Only used while no BatchNorm layer is in
        train mode: then the result is the same as one pass over the whole batch."""
        size = self.cfg.micro_batch
        if not size or size >= n or self._bn_trains:
            return [slice(0, n)]
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _step(self, loader: BatchLoader, idx, flips, y) -> tuple[float, torch.Tensor]:
        self.opt.zero_grad(set_to_none=True)
        total, outs = 0.0, []
        for part in self._chunks(len(idx)):
            out = self._forward(loader, idx[part], None if flips is None else flips[part])
            loss = self.criterion(out, y[part])
            if not torch.isfinite(loss):
                raise StopTraining(
                    f"The loss became {loss.item()} at epoch {self._epoch + 1}, batch "
                    f"{self._batch}: training diverged. Try a lower learning rate "
                    f"(now {self.cfg.lr:g}).")
            (loss * (len(out) / len(idx))).backward()
            total += loss.item() * len(out)
            outs.append(out.detach())
        self.opt.step()
        return total / len(idx), torch.cat(outs)

    def _emit_batch(self, epoch, i, n, loss, lr, ips) -> None:
        self.batch_log.append({"epoch": epoch + 1, "batch": i + 1, "batches": n, "loss": loss,
                               "lr": lr})
        elapsed = time.perf_counter() - self._t0
        remaining = (self.cfg.epochs - epoch) * n - (i + 1)
        rate = self._images_done / max(elapsed, 1e-9) / self.cfg.batch_size
        self.emit(ev.BatchEnd(epoch + 1, self.cfg.epochs, i + 1, n, loss, lr, ips,
                              remaining / max(rate, 1e-9)))

    # --- persistence --------------------------------------------------------------------
    def _save(self, epoch: int, val_acc: float) -> None:
        cfg, pre = self.cfg.to_dict(), self.preprocessing.to_dict()
        best = max((h["val_acc"] for h in self.history[:-1]), default=-1.0)
        metrics = {"val_acc": val_acc, "epoch": epoch + 1}
        if val_acc > best:
            self.store.save_model(model_payload(self.cfg.model, self.model, self.data.classes,
                                                pre, cfg, metrics))
        self.store.save_checkpoint({
            "epoch": epoch, "config": cfg, "classes": list(self.data.classes),
            "preprocessing": pre, "history": self.history, "freeze": self.tree.frozen_spec(),
            "state_dict": self.model.state_dict(), "optimizer": self.opt.state_dict()})
        self.store.write_metrics(self.history, self.batch_log)

    def _restore(self) -> int:
        ck = self.store.load_checkpoint()
        if ck["config"]["model"] != self.cfg.model:
            raise TransferLabError(f"{self.store.dir} holds a {ck['config']['model']} run, "
                                   f"not {self.cfg.model}.")
        if list(ck["classes"]) != list(self.data.classes):
            raise TransferLabError(f"The data's classes differ from the run's: {ck['classes']}")
        self.model.load_state_dict(ck["state_dict"])
        self._epoch = ck["epoch"] + 1
        self.set_freeze(spec=ck["freeze"], message="Resume")
        self.opt.load_state_dict(ck["optimizer"])
        self.history = list(ck["history"])
        self.batch_log = [b for b in read_batches(self.store.dir) if b["epoch"] <= ck["epoch"] + 1]
        self.log(f"Resuming {self.store.dir} after epoch {ck['epoch'] + 1}")
        return ck["epoch"] + 1

    def _finish(self, status: str, message: str) -> ev.FitEnd:
        best = max((h["val_acc"] for h in self.history), default=None)
        event = ev.FitEnd(status, len(self.history), best, str(self.store.dir), message,
                          list(self.history))
        self.emit(event)
        return event
