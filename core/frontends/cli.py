"""Command line: ``train``, ``predict``, ``evaluate``, ``export`` and ``runs`` over the same
engine as the GUI.

Each subcommand is a ``Command``: a name, a line of help, a function that adds its arguments
to its own parser and a function that runs it and returns the exit code. Adding one is
adding a ``Command`` to ``COMMANDS`` (its functions may live in their own module). User
mistakes end with one clear line on stderr and exit code 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

from core.catalog import EXPORT_FORMATS
from core.errors import TransferLabError
from core.frontends.config_flags import config_from_args  # noqa: F401 - (callers import it here)

EXIT_USER_ERROR = 2
HELP_FLAGS = ("-h", "--help", "-V", "--version")


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors: ``error: …`` and exit 2, no usage block."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class _Version(argparse.Action):
    """``--version``: TransferLab's version with torch's and timm's (read without importing
    them, so it answers at once)."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version (and torch's and timm's) and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from core.version import version_text

        print(version_text())  # stdout, as argparse's own version action and other tools do
        parser.exit(0)


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
    p = Parser(prog="transferlab", description="Transfer learning for image "
                                "classifiers. Without a command, opens the desktop app.")
    p.add_argument("-V", "--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(parser)
        parser.set_defaults(run=command.run)
    return p


def is_cli(argv: list[str]) -> bool:
    """Whether ``main.py ARGV`` asks for the command line rather than the app."""
    return bool(argv) and (argv[0] in {c.name for c in COMMANDS} or argv[0] in HELP_FLAGS)


def main(argv: list[str] | None = None) -> int:
    _printable_streams()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except TransferLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# --- train ------------------------------------------------------------------------------------
def train_arguments(p: argparse.ArgumentParser) -> None:
    from core.config import PRESETS
    from core.frontends.config_flags import add_config_flags
    from core.runs.resume import RESUME_MAY_CHANGE

    p.add_argument("--preset", choices=sorted(PRESETS), help="a named recipe (seed = the "
                   "lesson's); --config and the settings below override it")
    p.add_argument("--config", metavar="FILE", help="settings from a JSON file, e.g. a run's "
                   "own config.json to repeat that run exactly; the settings below override it")
    p.add_argument("--out", help="run folder (default: a new one under the runs folder)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out, with its "
                   f"own settings (may change: {', '.join(sorted(RESUME_MAY_CHANGE))})")
    add_config_flags(p)


def cmd_train(args) -> int:
    from core.frontends.console import ConsoleReporter
    from core.progress import TaskState
    from core.training.distributed import Distributed
    from core.training.trainer import Trainer

    if args.resume:
        if not args.out:
            raise TransferLabError("--resume needs --out RUN_FOLDER.")
        if args.config:
            raise TransferLabError("--resume continues a run with its own config.json; "
                                   "--config starts a new one (leave one of them out).")
        cfg = _resume_config(args.out, args)
    else:
        cfg = config_from_args(args)
    dist = Distributed.from_env()
    reporter = ConsoleReporter()
    observers = [reporter] if dist.is_main else []  # one log and one progress bar per run
    state = TaskState(on_progress=reporter.on_progress if dist.is_main else None)
    trainer = Trainer(cfg, observers, state, args.out, resume=args.resume,
                      keep=getattr(args, "fit_keep", frozenset()))
    try:
        result = trainer.fit()
    finally:
        if trainer.runtime is not None:
            trainer.runtime.dist.close()
    return 0 if result.status == "finished" else 1


def _resume_config(run_dir, args):
    """The run's recorded config with the settings given on this command line (a --preset's
    too). The trainer refuses those a resume may not change (core.runs.resume: --epochs,
    --device, --precision, --threads, --compile and --log-every may change)."""
    from core.config import PRESETS
    from core.frontends.config_flags import given_settings
    from core.runs import RunRecord

    cfg = RunRecord(run_dir).config
    given = dict(PRESETS[args.preset] if args.preset else {}, **given_settings(args))
    for key, value in given.items():
        setattr(cfg, key, value)
    return cfg


# --- predict ----------------------------------------------------------------------------------
def predict_arguments(p: argparse.ArgumentParser) -> None:
    from core.catalog import MODEL_NAMES

    p.add_argument("model_file", nargs="?", help="a model.pt from a training run, or an "
                   "exported .onnx (run with onnxruntime alone) or .pt2 file")
    p.add_argument("images", nargs="*", help="image files or folders")
    p.add_argument("--model", choices=MODEL_NAMES, help="a plain ImageNet model instead")
    p.add_argument("--topk", type=positive_int, default=1, help="classes per image "
                   "(default: 1)")
    p.add_argument("--json", metavar="FILE", help="also write one JSON record per input, "
                   "skipped files included with the reason ('-': standard output instead of "
                   "the table)")
    p.add_argument("--csv", metavar="FILE", help="the same records as CSV ('-': standard "
                   "output)")


def cmd_predict(args) -> int:
    from core.frontends import records

    if args.json == records.STDOUT and args.csv == records.STDOUT:
        raise TransferLabError("--json - and --csv - cannot both go to standard output; "
                               "give one of them a file.")
    results = _predict(args)
    recs = [records.record(r) for r in results]
    if args.json:
        records.write(records.to_json(recs), args.json)
    if args.csv:
        records.write(records.to_csv(recs, args.topk), args.csv)
    if records.STDOUT not in (args.json, args.csv):
        for r in results:
            print(f"{r.path}\tskipped: {r.error}" if r.error else
                  f"{r.path}\t" + "\t".join(f"{c}\t{p:.4f}" for c, p in r.topk))
    return 0 if any(not r.error for r in results) else EXIT_USER_ERROR


def _predict(args) -> list:
    images = list(args.images)
    if args.model:
        if args.model_file:
            images.insert(0, args.model_file)
        run = _torch_predictor(args.model, None)
    elif not args.model_file:
        raise TransferLabError("Give a model file (model.pt, .onnx or .pt2) or --model NAME.")
    elif args.model_file.lower().endswith(".onnx"):  # onnxruntime alone: torch is not imported
        from core.inference.onnx_predict import load_onnx, predict_files

        om = load_onnx(args.model_file)
        run = lambda files, k: predict_files(om, files, k)  # noqa: E731
    else:
        run = _torch_predictor(None, args.model_file)
    if not images:
        raise TransferLabError("No images given.")
    results = run(images, args.topk)
    if not results:
        raise TransferLabError("No image files found in the given paths.")
    return results


def _torch_predictor(imagenet_name, model_file):
    from core.inference.exported import load_classifier
    from core.inference.predict import load_imagenet_model, predict_paths

    lm = load_imagenet_model(imagenet_name) if imagenet_name else load_classifier(model_file)
    return lambda files, k: predict_paths(lm, files, k)


# --- evaluate and export ----------------------------------------------------------------------
def evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file", help="a model.pt, or an exported .onnx or .pt2 file")
    p.add_argument("--data", help="folder with one sub-folder per class (default: the run's "
                   "own validation split)")
    p.add_argument("--json", help="also write the metrics JSON here")
    p.add_argument("--batch-size", type=positive_int, default=64)


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
    from core.uncertainty import AccuracyInterval

    interval = AccuracyInterval.from_percent(ev.accuracy, len(ev.images))
    print(f"accuracy: {ev.accuracy:.2f}% ± {interval.plus_minus:.1f} (95% interval "
          f"{interval.low:.1f}–{interval.high:.1f}% on {interval.n} images)")
    return 0


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", required=True, help="the file to write")


def cmd_export(args) -> int:
    from core.inference.export import export_model

    report = export_model(args.model_file, args.format, args.out, log=print)
    print(f"exported: {report.path} (+ {report.metadata_path.name})")
    return 0


# --- runs (the files and their reading: core.runs) ---------------------------------------------
def runs_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("folders", nargs="*", help="folders of runs, or run folders (default: the "
                   "runs folder)")
    r.add_argument("--json", action="store_true", help="print one JSON list (every run's "
                   "summary and settings)")


RUNS_COLUMNS = ("run", "date", "model", "data", "epochs", "best val acc", "wall time",
                "status", "folder")


def cmd_runs(args) -> int:
    import json
    from pathlib import Path

    from core.frontends.console import format_duration
    from core.paths import runs_dir
    from core.runs.listing import list_runs

    missing = [f for f in args.folders if not Path(f).expanduser().is_dir()]
    if missing:
        raise TransferLabError(f"Not a folder: {missing[0]}")
    runs = list_runs([str(Path(f).expanduser()) for f in args.folders] or [str(runs_dir())])
    if args.json:
        print(json.dumps([r.to_json() for r in runs], indent=2))
        return 0
    rows = [(r.name, r.date, r.model, r.data, f"{r.epochs}/{r.planned_epochs}",
             "" if r.best_val_acc is None else f"{r.best_val_acc:.2f}%",
             format_duration(r.wall_s), r.status, r.path) for r in runs]
    widths = [max(len(str(v)) for v in column) for column in zip(RUNS_COLUMNS, *rows)]
    for row in (RUNS_COLUMNS, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    if not runs:
        print("(no runs)")
    return 0


# --- check (the data doctor: core.doctor) ---------------------------------------------------------
def check_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("data", help="cifar10, cifar100, an image folder or a .tar.gz of one")
    c.add_argument("--model", help="a run's model.pt: its fine-tuned network makes the "
                   "features, and its predictions count for the images it did not train on")
    c.add_argument("--json", help="write every finding here (paths as given under DATA, "
                   "each list most likely first)")
    c.add_argument("--show", type=positive_int, default=10, help="findings printed per kind")


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


COMMANDS = (
    Command("train", "fine-tune a pretrained network", train_arguments, cmd_train),
    Command("predict", "classify images", predict_arguments, cmd_predict),
    Command("evaluate", "per-class metrics, confusion matrix and accuracy", evaluate_arguments,
            cmd_evaluate),
    Command("export", "ONNX or torch.export file, verified against PyTorch", export_arguments,
            cmd_export),
    Command("runs", "list training runs, as the Runs view does", runs_arguments, cmd_runs),
    Command("check", "find wrong labels, duplicates (train/val leakage apart), outliers and "
            "odd files in a dataset", check_arguments, cmd_check),
)
