"""A whole training run from a config: what the CLI and the GUI's worker call.

``Trainer`` wires the parts together, Lightning-style: it loads the data and builds the
network (unless they are handed in), resolves the device, precision and torchrun
environment, and runs a ``FitLoop`` with ``Checkpointing`` and a ``FreezeSchedule`` in front
of the caller's observers. A resumed run (``resume=True``, or a worker torchrun restarted)
trains with its recorded config (core.runs.resume) on its recorded split (core.runs.split).
Every setting is checked before the run folder is made: a mistake leaves nothing behind.
"""
from __future__ import annotations

import random
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from core.config import TrainConfig
from core.data.datasets import Dataset, load_dataset, profile_data
from core.data.batches import to_model_input
from core.models import build_model, head_path, imagenet_preprocessing, replace_head
from core.models.head_init import replace_from_imagenet, weights_identity
from core.models.layers import LayerTree, parse_spec
from core.models.probe_head import start_as_probe
from core.models.staging import stages
from core.progress import TaskState
from core.runs.layout import RunPaths, new_run_dir
from core.runs.record import RunRecord
from core.runs.resume import check_epochs, resumed_config
from core.runs.split import load_split
from core.runs.store import RunStore
from core.training.checkpointing import Checkpointing
from core.training.device import Precision, resolve_device, resolve_precision, set_threads
from core.training.distributed import Distributed
from core.training.freezing import FreezeSchedule
from core.training.loop import FitLoop, Network, Runtime
from core.training.ood_calibration import OodCalibration
from core.training.averaging import WeightAveraging
from core.training.sampling import EasySkipping
from core.training.torchrun import job_id
from core.training.tuner import make_tuner


def build_network(cfg: TrainConfig, data: Dataset, state: TaskState | None = None,
                  log=print, start_head: bool = True) -> Network:
    """The configured model with a fresh head for ``data``'s classes (slow: not on a GUI
    thread). ``head_init="imagenet"`` starts the head from matched ImageNet rows (not worth
    it, ``start_head=False``, when a checkpoint's weights replace them)."""
    state = state or TaskState()
    model, pre, info = build_model(cfg.model, cfg.weights, None,
                                   state.download_progress("Downloading weights"),
                                   drop_path=cfg.drop_path)
    log(f"{cfg.model}: weights {info.kind} ({info.source}); BatchNorm statistics: "
        f"{cfg.effective_bn_policy()}")
    # the weights' own preprocessing, framed as the data were decoded (the squares' side)
    pre = pre.for_training(cfg.image_size, data.crop, data.train.images.shape[-1])
    head = head_path(model)
    if start_head:
        new_head(cfg, model, head, pre, data, info, state, log)
    else:
        replace_head(model, len(data.classes))
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return Network(cfg.model, model, head, pre, LayerTree(model), stages(cfg.model, model))


def new_head(cfg: TrainConfig, model, head: str, pre, data: Dataset, info,
             state: TaskState, log) -> None:
    """Replace ``model``'s head by one for ``data``'s classes, started as ``head_init`` says
    (the ImageNet rows only with ImageNet weights; random when they do not match)."""
    to_input = partial(to_model_input, image_size=cfg.image_size, mean=pre.mean,
                       std=pre.std, channels_last=False, interpolation=pre.interpolation)
    if cfg.head_init == "imagenet" and info.kind == "imagenet":
        state.report("Matching classes to ImageNet", 0, 0)
        start = replace_from_imagenet(model, head, data.train.images, data.train.labels,
                                      data.classes, to_input, cfg.seed,
                                      f"{cfg.model}|{weights_identity(cfg.weights)}|"
                                      f"{info.source}|{pre.to_dict()}")
        if start is not None:
            log(start.describe())
            return
    replace_head(model, len(data.classes))
    layer = model.get_submodule(head)
    if cfg.head_init == "zero":
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
        log("the new head starts at zero")
    elif cfg.head_init == "probe":
        t0 = time.perf_counter()
        probe = start_as_probe(model, head, data.train.images, data.train.labels,
                               len(data.classes), to_input, cfg.seed,
                               state.download_progress("Fitting the head to the features"))
        log(f"{probe.describe()} ({time.perf_counter() - t0:.0f} s)")


def resolve_runtime(cfg: TrainConfig, dist: Distributed | None = None) -> Runtime:
    dist = dist or Distributed.from_env()
    device = resolve_device(cfg.device, dist.local_rank if dist.enabled else None)
    precision = resolve_precision(cfg.precision, device)
    # "auto" on a CPU is settled by timing the network when training starts (tuner)
    return Runtime(device, Precision("32" if precision == "auto" else precision, device),
                   dist, cfg.compile)


class Trainer:
    """``Trainer(config, callbacks, state, run_dir, resume).fit()``; ``net`` and ``data`` may
    be handed in (tests, or a GUI that already holds them)."""

    def __init__(self, config: TrainConfig, callbacks=(), state: TaskState | None = None,
                 run_dir: str | Path | None = None, resume: bool = False, *,
                 net: Network | None = None, data: Dataset | None = None,
                 runtime: Runtime | None = None, keep: frozenset[str] = frozenset()):
        self.cfg = replace(config).validate()  # a copy: fitting it to the data changes it
        self.keep = frozenset(keep)  # settings the user set by hand: fitting leaves them
        self.feature_seed = None  # what a fitting trial's winner computed (FitLoop)
        self.observers = list(callbacks)
        self.state = state or TaskState()
        self.run_dir, self.resume = run_dir, resume
        self.net, self.data, self.runtime = net, data, runtime
        self.freeze: FreezeSchedule | None = None
        self.store: RunStore | None = None
        self.loop: FitLoop | None = None

    # --- set-up -------------------------------------------------------------------------
    def _log(self, message: str) -> None:
        from core.events import LogLine

        self._emit(LogLine(message))

    def prepare(self) -> FitLoop:
        """Data, network, device and run folder (slow: called in a worker thread)."""
        if self.loop is None:
            try:
                self.loop = self._prepare()
            except BaseException:
                self.close()
                raise
        return self.loop

    def _prepare(self) -> FitLoop:
        set_threads(self.cfg.threads)
        self.runtime = self.runtime or resolve_runtime(self.cfg)
        rt = self.runtime
        rt.dist.init(rt.device)
        self.store = self._open_run()  # a resumed run's config replaces self.cfg here
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self._load_data()
        self.state.check()
        if self.net is None:
            self.net = build_network(cfg, self.data, self.state, self._log,
                                     start_head=not self.resume)
        parse_spec(cfg.freeze, self.net.tree, self.net.head, cfg.model)  # a bad --freeze
        self.net.model.to(rt.device)
        self.store.begin()  # the lock, and the folder: every setting has been checked
        # the speed choices (core.training.tuner): timed or looked up when training starts
        rt.tuner = make_tuner(cfg, rt, self.store.dir, self.resume)
        self.freeze = FreezeSchedule(cfg)
        # weight averaging after checkpointing: model.pt gets the average, the checkpoint both
        averaging = [WeightAveraging(cfg.ema)] if cfg.ema else []
        checkpointing = Checkpointing(self.store, self.resume, *averaging)
        skipping = [EasySkipping(cfg.skip_easy, cfg.seed)] if cfg.skip_easy else []
        # the out-of-distribution score is calibrated on model.pt before checkpointing marks
        # the run finished (core.inference.ood); checkpointing restores a resume first
        loop = FitLoop(cfg, self.net, self.data,
                       [OodCalibration(), checkpointing, self.freeze, *averaging,
                        *skipping, *self.observers], self.state, rt, run_dir=str(self.store.dir))
        loop.feature_seed, self.feature_seed = self.feature_seed, None
        return loop

    def _load_data(self) -> None:
        """The data (unless handed in), after fitting the recipe to it; the framing used is
        recorded in the config (config.json), so a resume frames alike."""
        cfg = self.cfg
        if self.resume and cfg.crop is None:
            cfg.crop = 1.0  # a run made before framing was recorded: whole squares
        if self.data is None:
            with _main_first(self.runtime.dist):  # rank 0 unpacks and decodes first
                if self.resume:  # the images it trained and validated on, as recorded
                    split = RunRecord(self.store.dir).split
                    self.data, check = load_split(split, cfg, self.state,
                                                  imagenet_preprocessing(cfg.model))
                    if check.differs:
                        self._log(check.describe())
                elif cfg.fit_data and self.net is None:
                    self._fit_to_data()  # decodes the data at the size that trains
                else:
                    self.data = self._decode(cfg.image_size)
        cfg.crop = self.data.crop

    def _decode(self, image_size: int) -> Dataset:
        cfg = self.cfg
        return load_dataset(cfg.data, image_size, cfg.val_split, cfg.seed, self.state,
                            cfg.limit, cfg.crop, imagenet_preprocessing(cfg.model))

    def _fit_to_data(self) -> None:
        """core.recipe's plan: what the counts settle, then (small folders) what a trial of
        the candidates on the training images measures; the data decoded at the size that
        trains."""
        from core.events import RecipeFitted
        from core.recipe import fit_to_data, plan

        cfg, keep = self.cfg, self.keep
        before = replace(cfg)
        profile = profile_data(cfg.data, self.state)
        fitted = fit_to_data(cfg, profile, keep=keep)  # the counted part (validation share)
        decoded = {}

        def data_for(size: int) -> Dataset:
            if size not in decoded:
                decoded[size] = self._decode(size)
            return decoded[size]

        if fitted.pending:
            from core.training.data_fit import run_trial

            measured, seeds = run_trial(cfg, fitted, profile, data_for, self.runtime,
                                        self.state, self._log)
            fitted = plan(before, profile, measured, keep)
            fit_to_data(cfg, profile, measured, keep)
            self.feature_seed = seeds.get(fitted.reason)  # the winner's frozen features
        self.data = data_for(cfg.image_size)
        if fitted.changes or fitted.measured:
            event = RecipeFitted(tuple((c.key, c.old, c.new) for c in fitted.changes),
                                 fitted.reason, f"Fitted to the data: {fitted.describe()}",
                                 tuple(c.reason for c in fitted.changes), fitted.measured)
            self._log(event.message)
            self._emit(event)

    def _emit(self, event) -> None:
        if self.runtime is None or self.runtime.dist.is_main:
            for cb in self.observers:
                cb.on_event(event)

    def _open_run(self) -> RunStore:
        """The run folder, checked (nothing written yet). Under torchrun rank 0 names it and
        every rank uses that name; a restarted worker resumes it as it was recorded."""
        dist = self.runtime.dist
        run_dir = self.run_dir
        if run_dir is None and dist.is_main:
            run_dir = new_run_dir(self.cfg.model, job_id(dist.run_id))
        run_dir = dist.broadcast(str(run_dir) if run_dir is not None else None)
        restarted = dist.restart_count > 0
        if restarted:  # torchrun restarted the job: continue where it stopped
            self.resume = RunPaths(run_dir).checkpoint.exists()
        store = RunStore(run_dir, resume=self.resume or restarted, writer=dist.is_main)
        if self.resume:  # rank 0 reads config.json; every rank trains with what it says
            cfg = None
            if dist.is_main:
                record = RunRecord(store.dir)
                cfg = resumed_config(record.config, self.cfg, str(record.paths.config),
                                     restarted)
                check_epochs(cfg, len(record.history_or_empty()), str(store.dir))
                cfg = cfg.to_dict()
            self.cfg = TrainConfig.from_dict(dist.broadcast(cfg))
        return store

    def fit(self):
        try:
            return self.prepare().fit()
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the run folder (its lock); the process's end does it too."""
        if self.store is not None:
            self.store.close()

    # --- what the GUI's worker and tests reach through the facade -----------------------
    @property
    def model(self):
        return self.net.model if self.net else None

    @property
    def tree(self):
        return self.net.tree if self.net else None

    @property
    def opt(self):
        return self.loop.opt if self.loop else None

    @property
    def caches(self):
        return self.loop.caches if self.loop else None

    def set_freeze(self, spec: str | None = None, path: str | None = None,
                   trainable: bool = False, message: str = "") -> None:
        """A live change (queue it through ``state.queue``: it runs between batches)."""
        if self.loop is None or self.freeze is None:
            return  # nothing built yet: the run starts with the schedule's own spec
        self.freeze.loop = self.loop
        self.freeze.apply(spec=spec, path=path, trainable=trainable, message=message)


class _main_first:
    """Rank 0 runs the block first; the other ranks wait, then run it (reading its cache)."""

    def __init__(self, dist: Distributed):
        self.dist = dist

    def __enter__(self):
        if not self.dist.is_main:
            self.dist.barrier()

    def __exit__(self, exc_type, *exc):
        if self.dist.is_main and exc_type is None:
            self.dist.barrier()
        return False
