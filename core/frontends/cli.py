"""Command line: ``train``, ``predict`` and ``evaluate`` over the same engine as the GUI.

User mistakes end with one clear line on stderr and exit code 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys

from core.catalog import EXPORT_FORMATS
from core.errors import TransferLabError

EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors: ``error: …`` and exit 2, no usage block."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _printable_streams() -> None:
    """File names that are not valid UTF-8 reach Python as lone surrogates; print them as the
    bytes they are (UTF-8 streams) or escaped (others) instead of crashing mid-listing."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", "") or "").lower().replace("-", "")
        try:
            stream.reconfigure(errors="surrogateescape" if encoding == "utf8"
                               else "backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass  # not a text stream we may reconfigure (a test's capture, a closed pipe)


def build_parser() -> argparse.ArgumentParser:
    from core.catalog import MODEL_NAMES
    from core.config import BN_POLICIES, HEAD_INITS, OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULERS
    from core.recipe import FIT_KEYS, PHOTO_SIZE, SMALL_EPOCHS, SMALL_PER_CLASS

    p = Parser(prog="transferlab", description="Transfer learning for image "
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
                       ("backbone-lr-factor", float), ("label-smoothing", float),
                       ("feature-shift", int), ("ema", float)]:
        t.add_argument(f"--{flag}", type=kind)
    t.add_argument("--freeze", help="what the frozen phase freezes: backbone (default), bn, "
                   "none, early (the high-resolution layers), depthwise (every depthwise "
                   "convolution), depthwise:K (those with K x K kernels or larger), "
                   "upto:PATH (all before PATH), through:PATH (PATH too), PATH or a range "
                   "like features.0-13 (comma-separated)")
    t.add_argument("--fit-data", action=argparse.BooleanOptionalAction, default=None,
                   help=f"fit the preset to the data: a folder of photos with fewer than "
                   f"{SMALL_PER_CLASS} per class trains only the head, from matched ImageNet "
                   f"classes when they match, at {PHOTO_SIZE} px or more, for "
                   f"{SMALL_EPOCHS}+ epochs (on in the fast presets; off by itself when any of "
                   f"{', '.join('--' + k.replace('_', '-') for k in FIT_KEYS)} is given)")
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--head-init", choices=HEAD_INITS,
                   help="random (default), or imagenet: each class's row of the new head "
                   "starts as the ImageNet class its training images look most like")
    t.add_argument("--scheduler", choices=SCHEDULERS)
    t.add_argument("--flip", action="store_true", default=None, help="random horizontal flips")
    t.add_argument("--tta", action="store_true", default=None,
                   help="test-time flip averaging: validate and predict on each image and its "
                        "mirror image (model.pt remembers it)")
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
    pr.add_argument("model_file", nargs="?", help="a model.pt from a training run, or an "
                    "exported .onnx file (run with onnxruntime alone)")
    pr.add_argument("images", nargs="*", help="image files or folders")
    pr.add_argument("--model", choices=MODEL_NAMES, help="a plain ImageNet model instead")
    pr.add_argument("--topk", type=int, default=1)
    ev = sub.add_parser("evaluate", help="per-class metrics, confusion matrix and accuracy")
    ev.add_argument("model_file")
    ev.add_argument("--data", help="folder with one sub-folder per class (default: the run's "
                    "own validation split)")
    ev.add_argument("--json", help="also write the metrics JSON here")
    ev.add_argument("--batch-size", type=positive_int, default=64)
    ex = sub.add_parser("export", help="ONNX or torch.export file, verified against PyTorch")
    ex.add_argument("model_file")
    ex.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    ex.add_argument("--out", required=True, help="the file to write")
    add_check_parser(sub)
    return p


def add_check_parser(sub) -> None:
    c = sub.add_parser("check", help="find wrong labels, duplicates (train/val leakage "
                       "apart), outliers and odd files in a dataset")
    c.add_argument("data", help="cifar10, cifar100, an image folder or a .tar.gz of one")
    c.add_argument("--model", help="a run's model.pt: its fine-tuned network makes the "
                   "features, and its predictions count for the images it did not train on")
    c.add_argument("--json", help="write every finding here (paths as given under DATA, "
                   "each list most likely first)")
    c.add_argument("--show", type=positive_int, default=10, help="findings printed per kind")


def main(argv: list[str] | None = None) -> int:
    _printable_streams()
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate,
                "export": cmd_export, "check": cmd_check}[args.command](args)
    except TransferLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def config_from_args(args, validate: bool = True):
    from core.config import TrainConfig, apply_preset
    from core.recipe import FIT_KEYS

    cfg, given = TrainConfig(), set()
    if args.preset:
        apply_preset(cfg, args.preset)
    for key in ("model", "weights", "data", "epochs", "freeze_epochs", "lr", "batch_size",
                "image_size", "val_split", "limit", "seed", "threads", "log_every", "freeze",
                "optimizer", "scheduler", "flip", "bn_policy", "unfreeze_lr_factor",
                "weight_decay", "backbone_lr_factor", "label_smoothing", "feature_shift", "ema", "tta",
                "head_init", "device", "precision", "compile"):
        value = getattr(args, key, None)
        if value is not None:
            setattr(cfg, key, value)
            given.add(key)
    if getattr(args, "fit_data", None) is not None:
        cfg.fit_data = args.fit_data
    elif given & set(FIT_KEYS):  # a setting asked for by name wins over the preset's fitting
        cfg.fit_data = False
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
    from pathlib import Path

    from core.config import TrainConfig
    from core.training.run_folder import read_config

    cfg = read_config(run_dir)
    path = Path(run_dir) / "config.json"
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
    images = list(args.images)
    if args.model:
        if args.model_file:
            images.insert(0, args.model_file)
        run = _torch_predictor(args.model, None)
    elif not args.model_file:
        raise TransferLabError("Give a model file (model.pt or .onnx) or --model NAME.")
    elif args.model_file.lower().endswith(".onnx"):  # onnxruntime alone: torch is not imported
        from core.inference.onnx_predict import load_onnx, predict_files

        om = load_onnx(args.model_file)
        run = lambda files, k: predict_files(om, files, k)  # noqa: E731
    else:
        run = _torch_predictor(None, args.model_file)
    if not images:
        raise TransferLabError("No images given.")
    results = run(images, max(1, args.topk))
    if not results:
        raise TransferLabError("No image files found in the given paths.")
    for r in results:
        if r.error:
            print(f"{r.path}\tskipped: {r.error}")
        else:
            print(f"{r.path}\t" + "\t".join(f"{c}\t{p:.4f}" for c, p in r.topk))
    return 0 if any(not r.error for r in results) else EXIT_USER_ERROR


def _torch_predictor(imagenet_name, model_file):
    from core.inference.predict import load_imagenet_model, load_model_file, predict_paths

    lm = load_imagenet_model(imagenet_name) if imagenet_name else load_model_file(model_file)
    return lambda files, k: predict_paths(lm, files, k)


def cmd_evaluate(args) -> int:
    import json
    from pathlib import Path

    from core.events import LogLine
    from core.frontends.console import ConsoleReporter
    from core.inference.evaluate import evaluate_model, format_report, save_evaluation
    from core.paths import write_text_atomic
    from core.progress import TaskState

    reporter = ConsoleReporter()
    state = TaskState(on_progress=reporter.on_progress)
    ev = evaluate_model(args.model_file, args.data, args.batch_size, state)
    reporter.on_log_line(LogLine(format_report(ev)))  # clears the progress line first
    if ev.skipped:
        print(f"skipped {len(ev.skipped)} unreadable files")
    csv_path, json_path = save_evaluation(ev, Path(args.model_file).expanduser().parent)
    print(f"saved: {csv_path} and {json_path.name}")
    if args.json:
        write_text_atomic(args.json, json.dumps(ev.to_json(), indent=2) + "\n")
    print(f"accuracy: {ev.accuracy:.2f}%")
    return 0


def cmd_export(args) -> int:
    from core.inference.export import export_model

    report = export_model(args.model_file, args.format, args.out, log=print)
    print(f"exported: {report.path} (+ {report.metadata_path.name})")
    return 0


def cmd_check(args) -> int:
    from core.doctor.check import run_check
    from core.doctor.report import format_report
    from core.events import LogLine
    from core.frontends.console import ConsoleReporter
    from core.progress import TaskState

    reporter = ConsoleReporter()
    report = run_check(args.data, args.model, state=TaskState(on_progress=reporter.on_progress))
    reporter.on_log_line(LogLine(format_report(report, args.show)))  # clears the progress line
    if args.json:
        report.write_json(args.json)
        print(f"saved: {args.json}")
    return 0
