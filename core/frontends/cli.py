"""Command line: ``train``, ``predict`` and ``evaluate`` over the same engine as the GUI.

User mistakes end with one clear line on stderr and exit code 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys
import time

from core.errors import TransferLabError

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    from core.config import BN_POLICIES, OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULERS
    from core.catalog import MODEL_NAMES

    p = argparse.ArgumentParser(prog="transferlab", description="Transfer learning for image "
                                "classifiers. Without a command, opens the desktop app.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune a pretrained network")
    t.add_argument("--model", choices=MODEL_NAMES)
    t.add_argument("--weights", help="imagenet (default), none, or a state-dict file")
    t.add_argument("--data", help="cifar10, cifar100, an image folder or a .tar.gz of one")
    t.add_argument("--preset", choices=sorted(PRESETS), help="seed = the lesson's recipe")
    for flag, kind in [("epochs", int), ("freeze-epochs", int), ("lr", float),
                       ("batch-size", int), ("image-size", int), ("val-split", float),
                       ("limit", int), ("seed", int), ("threads", int), ("log-every", int),
                       ("unfreeze-lr-factor", float), ("weight-decay", float),
                       ("backbone-lr-factor", float), ("label-smoothing", float)]:
        t.add_argument(f"--{flag}", type=kind)
    t.add_argument("--freeze", help="what the frozen phase freezes: backbone (default), bn, "
                   "none, upto:PATH (all before PATH), through:PATH (PATH too), PATH or a range "
                   "like features.0-13 (comma-separated)")
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--scheduler", choices=SCHEDULERS)
    t.add_argument("--flip", action="store_true", default=None, help="random horizontal flips")
    t.add_argument("--bn", dest="bn_policy", choices=BN_POLICIES,
                   help="BatchNorm statistics: frozen-eval (default: frozen layers keep theirs), "
                   "eval (all keep theirs, also after unfreezing), train (the lesson's way)")
    t.add_argument("--device", help="auto (default: CUDA, then MPS, then CPU), cpu, cuda, "
                   "cuda:N or mps")
    t.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default: bf16 on CUDA GPUs that support it, else 32), 32, bf16, "
                   "16-mixed")
    t.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the layers that train (slow start, faster epochs)")
    t.add_argument("--out", help="run folder (default: a new one under the runs folder)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    pr = sub.add_parser("predict", help="classify images")
    pr.add_argument("model_file", nargs="?", help="a model.pt from a training run")
    pr.add_argument("images", nargs="*", help="image files or folders")
    pr.add_argument("--model", choices=MODEL_NAMES, help="a plain ImageNet model instead")
    pr.add_argument("--topk", type=int, default=1)
    ev = sub.add_parser("evaluate", help="accuracy and confusion matrix on a labelled folder")
    ev.add_argument("model_file")
    ev.add_argument("--data", required=True, help="folder with one sub-folder per class")
    ev.add_argument("--batch-size", type=int, default=64)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate}[
            args.command](args)
    except TransferLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def config_from_args(args, validate: bool = True):
    from core.config import TrainConfig, apply_preset

    cfg = TrainConfig()
    if args.preset:
        apply_preset(cfg, args.preset)
    for key in ("model", "weights", "data", "epochs", "freeze_epochs", "lr", "batch_size",
                "image_size", "val_split", "limit", "seed", "threads", "log_every", "freeze",
                "optimizer", "scheduler", "flip", "bn_policy", "unfreeze_lr_factor",
                "weight_decay", "backbone_lr_factor", "label_smoothing", "device",
                "precision", "compile"):
        value = getattr(args, key, None)
        if value is not None:
            setattr(cfg, key, value)
    return cfg.validate() if validate else cfg


def cmd_train(args) -> int:
    from core.frontends.console import ConsoleReporter
    from core.progress import TaskState
    from core.training.distributed import Distributed
    from core.training.trainer import Trainer

    if args.resume:
        if not args.out:
            raise TransferLabError("--resume needs --out RUN_FOLDER.")
        cfg = _resume_config(args.out, args)
    else:
        cfg = config_from_args(args)
    dist = Distributed.from_env()
    reporter = ConsoleReporter()
    observers = [reporter] if dist.is_main else []  # one log and one progress bar per run
    state = TaskState(on_progress=reporter.on_progress if dist.is_main else None)
    trainer = Trainer(cfg, observers, state, args.out, resume=args.resume)
    try:
        result = trainer.fit()
    finally:
        if trainer.runtime is not None:
            trainer.runtime.dist.close()
    return 0 if result.status == "finished" else 1


# What --resume may change: how the run is executed, not what it computes.
RESUME_MAY_CHANGE = {"epochs", "device", "precision", "threads", "compile", "log_every"}


def _resume_config(run_dir, args):
    import json
    from pathlib import Path

    from core.config import TrainConfig

    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise TransferLabError(f"{run_dir} has no config.json to resume from.")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TransferLabError(f"{path} is unreadable ({exc}).") from exc
    cfg = TrainConfig.from_dict(saved)
    given = config_from_args(args, validate=False)
    defaults = TrainConfig()
    for key, value in vars(given).items():
        if getattr(args, key, None) is None and getattr(defaults, key) == value:
            continue  # not given on this command line
        if key in RESUME_MAY_CHANGE:
            setattr(cfg, key, value)
        elif value != getattr(cfg, key):
            raise TransferLabError(
                f"--resume continues the run as it was configured: {key} is "
                f"{getattr(cfg, key)!r} in {path}, not {value!r}. Start a new run (another "
                f"--out) to change it.")
    return cfg.validate()


def cmd_predict(args) -> int:
    from core.inference.predict import load_imagenet_model, load_model_file, predict_paths

    images = list(args.images)
    if args.model:
        if args.model_file:
            images.insert(0, args.model_file)
        lm = load_imagenet_model(args.model)
    else:
        if not args.model_file:
            raise TransferLabError("Give a model file (model.pt) or --model NAME.")
        lm = load_model_file(args.model_file)
    if not images:
        raise TransferLabError("No images given.")
    results = predict_paths(lm, images, max(1, args.topk))
    if not results:
        raise TransferLabError("No image files found in the given paths.")
    for r in results:
        if r.error:
            print(f"{r.path}\tskipped: {r.error}")
        else:
            print(f"{r.path}\t" + "\t".join(f"{c}\t{p:.4f}" for c, p in r.topk))
    return 0 if any(not r.error for r in results) else EXIT_USER_ERROR


def cmd_evaluate(args) -> int:
    from core.data.batches import BatchLoader
    from core.data.folder import decode_files, find_layout, list_files
    from core.inference.metrics import evaluate
    from core.inference.predict import load_model_file
    from core.progress import TaskState

    lm = load_model_file(args.model_file)
    layout = find_layout(args.data)
    unknown = [c for c in layout.classes if c not in lm.classes]
    if unknown:
        raise TransferLabError(f"Folder classes not known to the model: {', '.join(unknown)} "
                               f"(model classes: {', '.join(lm.classes)}).")
    files = [(path, lm.classes.index(layout.classes[label]))
             for path, label in list_files(layout.train_root, layout.classes)]
    pre = lm.preprocessing
    split = decode_files(files, pre.image_size, TaskState())
    loader = BatchLoader(split.images, split.labels, args.batch_size, pre.image_size,
                         pre.mean, pre.std, channels_last=False)
    result = evaluate(lm.model, loader, len(lm.classes))
    print(result.format_confusion(lm.classes))
    if split.skipped:
        print(f"skipped {len(split.skipped)} unreadable files")
    print(f"accuracy: {result.accuracy:.2f}%")
    return 0
