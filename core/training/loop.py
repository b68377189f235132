"""The training loop: epochs of batches over a network and a dataset, knowing nothing of its
observers (plain-data events, core.events) nor of freezing or saving (callbacks,
core.training.callbacks).

A TaskState carries stop, pause and queued actions (live freeze toggles) in; they are checked
between batches only, so the model is never touched from another thread mid-step. The loop
runs on any device, in any precision, in one process or as one rank of a torchrun job.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from core import events as ev
from core.config import TrainConfig
from core.data.batches import BatchLoader
from core.data.datasets import Dataset
from core.data.memory import format_bytes
from core.errors import StopTraining
from core.models.flip_average import FlipAverage, flip_average
from core.inference.metrics import EvalResult, evaluate
from core.models.layers import apply_bn_policy
from core.models.staging import StageStack, frozen_prefix
from core.progress import Cancelled, TaskState
from core.runs.files import history_row
from core.training.device import Precision, strided_depthwise_in_fp32
from core.training.distributed import Distributed
from core.training.feature_cache import PrefixCaches, random_shift
from core.training.eta import EtaClock
from core.training.optim import build_optimizer, lr_at, set_lr, unfrozen
from core.training.placement import cache_device, held_bytes, images_device
from core.training.runtime import Network, Runtime

__all__ = ["FitLoop", "Network", "Runtime", "format_bytes"]


class FitLoop:
    def __init__(self, cfg: TrainConfig, net: Network, data: Dataset, callbacks=(),
                 state: TaskState | None = None, runtime: Runtime | None = None,
                 run_dir: str = ""):
        self.cfg, self.net, self.data = cfg, net, data
        self.callbacks = list(callbacks)
        self.state = state or TaskState()
        if runtime is None:
            cpu = torch.device("cpu")
            runtime = Runtime(cpu, Precision("32", cpu), Distributed())
        self.rt = runtime
        # per image: the step averages them; callbacks may read them (``batch_losses``)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing,
                                             reduction="none")
        self._batch_losses = self._visit = None
        self._later_share = 1.0  # the share of the training images later epochs visit
        self._history: list[dict] = []
        self._batch_log: list[dict] = []  # every batch's loss, for reopening a run's charts
        self.opt = self.caches = None
        self.trained: nn.Module = net.model  # what forward passes go through (DDP, compiled)
        self._start_epoch = self._epoch = self.batch = 0
        self._run_dir = run_dir
        self._restored_optimizer: dict | None = None  # loaded when the optimizer is built
        # (prefix stages, features of every training image) computed before the run, by
        # core.training.data_fit's trial: the training cache starts full with them
        self.feature_seed = None
        self._bn_trains = False
        self._bn_trained = False  # some BatchNorm updated its statistics since validation
        # speed-only settings (the config's, until the run's tuner decides: core.training.tuner)
        self.micro_batch, self.channels_last = cfg.micro_batch, cfg.channels_last
        self.memory_notes: list[str] = []  # fallbacks the memory plan took, logged at start
        self.eta = EtaClock()  # time left, from the current phase's measured speed
        dev = runtime.device
        where = images_device(data, dev, self.memory_notes)
        self.train_images, self.train_labels = (data.train.images.to(where),
                                                data.train.labels.to(dev))
        self.val_images, self.val_labels = data.val.images.to(where), data.val.labels.to(dev)

    # --- plumbing -----------------------------------------------------------------------
    def emit(self, event) -> None:
        """Observers hear events on rank 0 only: one log, one progress bar per run."""
        if not self.rt.dist.is_main:
            return
        if isinstance(event, ev.PhaseChanged):  # the trainable set changed: so does the speed
            self.eta.restart()
        for cb in self.callbacks:
            cb.on_event(event)

    def log(self, message: str) -> None:
        self.emit(ev.LogLine(message))

    def _hook(self, name: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, name, None)
            if fn is not None:
                fn(self, *args)

    @property
    def model(self) -> nn.Module:
        return self.net.model

    # --- read-only facts (callbacks read them; the loop and ``restore`` change them) -------
    run_dir = property(lambda self: self._run_dir, doc="the run folder ('' when none)")
    epoch = property(lambda self: self._epoch, doc="0-based index of the current epoch")
    start_epoch = property(lambda self: self._start_epoch, doc="the first epoch of this fit")
    history = property(lambda self: list(self._history), doc="one metrics row per epoch")
    batch_log = property(lambda self: list(self._batch_log), doc="one row per batch")
    batch_losses = property(lambda self: self._batch_losses,
                            doc="(indices, loss of each) of this rank's share of the last batch")

    def set_visits(self, visit: torch.Tensor | None, later_share: float = 1.0) -> None:
        """The training images the coming epochs go over (None: all; core.training.sampling),
        and the share of them the epochs after it are expected to visit (for the ETA)."""
        self._visit, self._later_share = visit, later_share

    def restore(self, epochs_done: int, history: list[dict], batch_log: list[dict],
                state_dict: dict, optimizer: dict | None) -> None:
        """Continue a saved run: the loop's own state (callbacks restore theirs through
        ``load_state_dict``). The optimizer's state is loaded as soon as the optimizer is
        built for the restored trainable layers (the freeze schedule's resume)."""
        self.model.load_state_dict(state_dict)
        self._epoch = self._start_epoch = epochs_done
        self._history = list(history)
        self._batch_log = list(batch_log)
        self._restored_optimizer = optimizer

    @property
    def phase(self) -> str:
        frozen, _ = self.net.tree.counts()
        return "frozen" if frozen else "unfrozen"

    # --- what trains --------------------------------------------------------------------
    def trainable_changed(self, reason: str, message: str) -> None:
        """After the freeze schedule (or a user) changed ``requires_grad``: rebuild the
        optimizer (keeping moments), the feature-cache plan and the DDP wrapper, then say
        so. ``reason``: "start", "resume", "schedule" or "user" (see ev.PhaseChanged)."""
        self.opt = build_optimizer(self.cfg, self.model, self.opt, self.net.head)
        if self._restored_optimizer is not None:  # a resumed run: its moments and steps
            self.opt.load_state_dict(self._restored_optimizer)
            self._restored_optimizer = None
        self._plan_cache()
        if self.rt.tuner is not None and reason != ev.USER:  # a live toggle keeps them
            self.rt.tuner.decide(self)
        self._wrap()
        tree = self.net.tree
        summary = tree.summary()
        self.log(f"{message}: {summary} ({tree.trainable_tensors()} trainable tensors)")
        self.emit(ev.PhaseChanged(self.epoch + 1, self.batch, self.phase, summary,
                                  tree.frozen_spec(), message, reason))

    def _wrap(self) -> None:
        p = self.rt.precision  # bf16 training on a CPU: strided depthwise convolutions in 32
        strided_depthwise_in_fp32(self.model, self.rt.device.type == "cpu" and
                                  p.name == "bf16" and not p.forward_only)
        module = StageStack(self.caches.tail) if self.caches is not None else self.model
        module = self.rt.dist.wrap(module, self.rt.device)
        self.trained = torch.compile(module) if self.rt.compile else module

    def _plan_cache(self) -> None:
        """Cache the frozen prefix when it is valid and worth it; drop a stale cache."""
        cfg = self.cfg
        k = 0
        if cfg.cache_frozen and cfg.effective_bn_policy() != "train":
            k = frozen_prefix(self.net.tree, self.net.stage_list)
        if k == (self.caches.k if self.caches else 0):
            return
        self.caches = None
        if k:
            self._cache_epoch = self.epoch  # the epoch that fills most of the cache
            self.caches = PrefixCaches(self.net.stage_list, k, len(self.train_labels),
                                       len(self.val_labels), cfg.flip, self._placement,
                                       lambda: self.rt.precision.forward_autocast(), tta=cfg.tta)
            self.caches.set_layout(self.channels_last)
            seed, self.feature_seed = self.feature_seed, None  # good for one start only
            if seed is not None and seed.k == k:
                self.caches.train.seed(seed.store, seed.filled)
            cut = self.net.stage_list[k - 1].path or "pool"
            once = "image and orientation, the first time it is drawn" if cfg.flip else "image"
            self.log(f"Caching the frozen layers up to {cut} ({k} stages): computed once per "
                     f"{once}, then reused")

    def set_layout(self, channels_last: bool) -> None:
        """Activations (batches, cached features) and weights in channels_last or not."""
        self.channels_last = channels_last
        self.model.to(memory_format=torch.channels_last if channels_last
                      else torch.contiguous_format)
        if self.caches is not None:
            self.caches.set_layout(channels_last)

    def _placement(self, nbytes: int) -> torch.device | None:
        """Where the frozen-prefix cache (both splits, ``nbytes``) lives (or None: nowhere)."""
        return cache_device(nbytes, self.rt.device,
                            held_bytes(self.train_images) + held_bytes(self.val_images), self.log)

    # --- the loop -----------------------------------------------------------------------
    def loaders(self) -> tuple[BatchLoader, BatchLoader]:
        cfg, pre, dist = self.cfg, self.net.preprocessing, self.rt.dist
        common = dict(image_size=cfg.image_size, mean=pre.mean, std=pre.std,
                      interpolation=pre.interpolation, channels_last=self.channels_last,
                      device=self.rt.device,
                      share=dist.share if dist.enabled else None)
        train = BatchLoader(self.train_images, self.train_labels, cfg.batch_size,
                            shuffle=True, flip=cfg.flip, seed=cfg.seed + self.epoch,
                            visit=self._visit, **common)
        val = BatchLoader(self.val_images, self.val_labels, max(cfg.batch_size, 64), **common)
        return train, val

    def fit(self) -> ev.FitEnd:
        try:
            return self._fit()
        except Cancelled:
            return self._finish("stopped", "Stopped by the user.")
        except StopTraining as exc:
            return self._finish("failed", str(exc))
        except BaseException as exc:  # recorded (the run folder says "failed"), then raised
            self._hook("on_exception", exc)
            raise

    def _fit(self) -> ev.FitEnd:
        cfg = self.cfg
        self._hook("on_fit_start")
        train_loader, _ = self.loaders()
        self.emit(ev.RunStarted(self.run_dir, cfg.model, list(self.data.classes),
                                len(self.data.train.labels), len(self.data.val.labels),
                                cfg.epochs, self.start_epoch, len(train_loader),
                                self.net.tree.summary(), self.data.describe()))
        self.log(self.data.describe())
        self.log(f"Device: {self.rt.describe()}")
        for note in self.memory_notes:
            self.log(note)
        self._t0, self._images_done = time.perf_counter(), 0
        for epoch in range(self._start_epoch, cfg.epochs):
            self._epoch, self.batch = epoch, 0
            self._hook("on_epoch_start", epoch)
            self._run_epoch(epoch)
        self.state.wait_if_paused()  # a Pause asked for during the last epoch holds here
        return self._finish("finished", "")

    def _run_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        if self.rt.tuner is not None:
            self.rt.tuner.recheck_threads(self)
        train_loader, val_loader = self.loaders()
        started = time.perf_counter()
        train_loss, train_acc = self._train_one_epoch(epoch, train_loader)
        seconds = time.perf_counter() - started
        if self._bn_trained:  # (one model on every rank: the one validated and saved)
            self.rt.dist.average_batchnorm_(self.model)
            self._bn_trained = False
        self._hook("on_validation_start")
        result = self.validate(val_loader)
        event = ev.EpochEnd(epoch + 1, cfg.epochs, self.phase, train_loss, train_acc,
                            result.loss, result.accuracy, lr_at(cfg, epoch),
                            time.perf_counter() - started,
                            train_loader.count / max(seconds, 1e-9))
        self._history.append(history_row(event))
        if self.caches is not None and self.caches.kept and epoch == self._cache_epoch:
            where = "GPU memory" if self.caches.device.type == "cuda" else "RAM"
            self.log(f"Cached features: {format_bytes(self.caches.nbytes)} in {where}")
        self._hook("on_validation_end", event)
        self.emit(event)
        from core.allocator import peak_rss_bytes

        self.log(ev.epoch_line(epoch + 1, train_loss, train_acc, result.accuracy) +
                 f" (val loss {result.loss:.4f}, {event.seconds:.0f} s, peak RAM "
                 f"{format_bytes(peak_rss_bytes())})")

    def validate(self, loader: BatchLoader) -> EvalResult:
        n, dist = len(self.data.classes), self.rt.dist
        reduce = dist.all_reduce_ if dist.enabled else None
        autocast = self.rt.precision.forward_autocast
        if self.caches is not None:
            tail = self.caches.forward_tail
            forward = (lambda pair: flip_average(tail(pair[0]), tail(pair[1]))) \
                if self.cfg.tta else tail
            return evaluate(self.model, self.caches.val.batches(loader, self.cfg.tta), n,
                            self.state, forward=forward, reduce=reduce, autocast=autocast)
        forward = FlipAverage(self.model) if self.cfg.tta else None
        return evaluate(self.model, loader, n, self.state, forward=forward, reduce=reduce,
                        autocast=autocast)

    def _train_one_epoch(self, epoch: int, loader: BatchLoader) -> tuple[float, float]:
        cfg = self.cfg
        self.set_bn_modes()
        totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, images (all ranks)
        tick = time.perf_counter()
        n_batches = len(loader)
        for i, (idx, flips, n_global) in enumerate(loader.shares()):
            self.batch = i  # batches done: what a queued toggle's event reports
            if self.state.check():  # pause / stop / queued freeze toggles, between batches
                self.set_bn_modes()  # a toggle may have frozen (or unfrozen) BatchNorm
            self.batch = i + 1
            lr = lr_at(cfg, epoch, i / n_batches)
            set_lr(self.opt, lr)
            batch = self._step(loader, idx, flips, n_global)
            totals += batch
            loss = float(batch[0] / batch[2])
            self._images_done += n_global
            now = time.perf_counter()
            self._emit_batch(epoch, i, n_batches, loss, lr, n_global, now - tick)
            self._hook("on_train_batch_end", epoch, i + 1)
            tick = now
            if cfg.log_every and (i + 1) % cfg.log_every == 0:
                self.log(f"Epoch [{epoch + 1}/{cfg.epochs}], Step [{i + 1}/{n_batches}], "
                         f"Loss: {loss:.4f}")
        seen = max(float(totals[2]), 1.0)
        return float(totals[0]) / seen, 100.0 * float(totals[1]) / seen

    def set_bn_modes(self) -> None:
        """Train mode, then the BatchNorm policy: also after a toggle, so a layer unfrozen
        mid-epoch gets train-mode BatchNorm at once (policy permitting), not next epoch."""
        self.model.train()
        apply_bn_policy(self.model, self.cfg.effective_bn_policy())
        self._bn_trains = any(m.training for m in self.model.modules()
                              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
        self._bn_trained = self._bn_trained or self._bn_trains

    def chunks(self, n: int) -> list[slice]:
        """Micro-batches for one optimizer step. On a CPU, forward+backward over 16 images at
        a time runs ~3x faster than over 64 (cache-sized activations); the gradients are
        summed before the step, so the step is the batch's. Only used while no BatchNorm
        layer is in train mode (then the result equals one pass over the whole batch), and
        not on GPUs, which want large batches."""
        size = self.micro_batch
        if not size or size >= n or self._bn_trains or self.rt.device.type != "cpu":
            return [slice(0, n)]
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _forward(self, loader: BatchLoader, idx, flips) -> torch.Tensor:
        if self.caches is not None:
            feats = self.caches.train.features(loader, idx, flips)
            return self.trained(random_shift(feats, self.cfg.feature_shift))
        return self.trained(loader.inputs(idx, flips))

    def _step(self, loader: BatchLoader, idx, flips, n_global: int) -> torch.Tensor:
        """One optimizer step over this process's share of a global batch; returns the
        (loss sum, correct, images) of the whole global batch, summed over processes."""
        rt = self.rt
        self.opt.zero_grad(set_to_none=True)
        stats = torch.zeros(3, dtype=torch.float64, device=rt.device)
        parts = self.chunks(len(idx))
        # each share's mean loss counts n_share/n_global of the batch; DDP averages over ranks
        scale = rt.dist.world / n_global
        losses = []
        for j, part in enumerate(parts):
            y = loader.targets(idx[part])
            last = j == len(parts) - 1
            # DDP: gradients are exchanged once per step, on the last micro-batch
            with _no_sync(self.trained, not last), rt.precision.autocast():
                out = self._forward(loader, idx[part], None if flips is None else flips[part])
                per_image = self.criterion(out.float(), y)
                loss = per_image.mean()
            losses.append(per_image.detach())
            with _no_sync(self.trained, not last):
                rt.precision.backward(loss * (len(y) * scale))
            stats += torch.stack([loss.detach().double() * len(y),
                                  (out.detach().argmax(1) == y).sum().double(),
                                  stats.new_tensor(float(len(y)))])
        self._batch_losses = (idx, torch.cat(losses))
        stats = rt.dist.all_reduce_(stats).cpu()
        if not torch.isfinite(stats[0]):
            raise StopTraining(
                f"The loss became {float(stats[0] / stats[2])} at epoch {self.epoch + 1}, "
                f"batch {self.batch}: training diverged. Try a lower learning rate "
                f"(now {self.cfg.lr:g}).")
        rt.precision.step(self.opt)
        return stats

    def _emit_batch(self, epoch, i, n, loss, lr, images: int, seconds: float) -> None:
        self._batch_log.append({"epoch": epoch + 1, "batch": i + 1, "batches": n, "loss": loss,
                               "lr": lr})
        fills_cache = self.caches is not None and epoch == self._cache_epoch
        later = n if self._visit is not None else max(1, round(n * self._later_share))
        eta, scope = self.eta.batch_done(time.perf_counter(), seconds, epoch, i, n,
                                         self.cfg.epochs, fills_cache,
                                         lambda e: unfrozen(self.cfg, e), later)
        self.emit(ev.BatchEnd(epoch + 1, self.cfg.epochs, i + 1, n, loss, lr,
                              images / max(seconds, 1e-9), eta, scope))

    def _finish(self, status: str, message: str) -> ev.FitEnd:
        best = max((h["val_acc"] for h in self.history), default=None)
        event = ev.FitEnd(status, len(self.history), best, self.run_dir, message,
                          list(self.history))
        self._hook("on_fit_done", event)
        self.emit(event)
        return event


def _no_sync(module: nn.Module, skip: bool):
    """DDP's ``no_sync`` (gradients stay local) when ``skip``; otherwise nothing."""
    import contextlib

    no_sync = getattr(module, "no_sync", None)
    return no_sync() if skip and no_sync is not None else contextlib.nullcontext()
