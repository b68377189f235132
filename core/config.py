"""Training settings and named presets, saved with every run as ``config.json``.

Each setting is described once, here: its default, help, valid range or choices and flag name
travel as the dataclass field's metadata (``Option``). ``TrainConfig.validate`` checks from
that description, the CLI's ``train`` flags are generated from it
(core.frontends.config_flags) and the Train form takes its ranges, defaults, choices and
tooltips from it (gui/train_form.py); tests/test_options.py fails when they drift apart.
"""
from __future__ import annotations

import importlib
import math
import numbers
import re
import typing
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from typing import Callable

from core.catalog import DATASETS, MODEL_NAMES, MODELS
from core.errors import TransferLabError

OPTIMIZERS = ("adam", "adamw", "sgd")
BN_POLICIES = ("auto", "frozen-eval", "eval", "train")  # see core.models.layers.apply_bn_policy
SCHEDULERS = ("step", "cosine", "none")
PRECISIONS = ("auto", "32", "bf16", "16-mixed")  # see core.training.device
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?|mps"
HEAD_INITS = ("random", "imagenet", "probe", "zero")  # core.models.head_init, .probe_head
SEED_MAX = 2**31 - 1  # what every seeded generator (and a Qt spin box) accepts
# the weight average's decay at step t (1-based) is min(decay, (1 + t) / (EMA_WARMUP + t))
# (core.training.averaging.ema_decay)
EMA_WARMUP = 10


@dataclass(frozen=True)
class Range:
    """Valid numbers: ``low``/``high`` None = unbounded; an open end excludes the bound."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, x) -> bool:
        return not ((self.low is not None and (x < self.low or self.low_open and x == self.low))
                    or (self.high is not None
                        and (x > self.high or self.high_open and x == self.high)))

    def describe(self, integer: bool) -> str:
        """'at least 1', 'positive and finite', 'between 16 and 1024', 'in [0, 1)'."""
        lo, hi = _number(self.low), _number(self.high)
        if hi is None:
            words = ("positive" if self.low_open else "zero or more") if self.low == 0 else \
                f"{'above' if self.low_open else 'at least'} {lo}"
            return words
        if integer and not (self.low_open or self.high_open):
            return f"between {lo} and {hi}"
        return f"in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"


def _number(x) -> str | None:
    return None if x is None else str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Option:
    """What a front end needs to know of one setting (the default is the field's own)."""
    help: str  # may name another setting ("{lr}") or a constant of ``facts`` in braces
    range: Range | None = None
    choices: tuple[str, ...] = ()
    pattern: str = ""  # a regular expression the whole value matches
    pattern_text: str = ""  # the same in words, for messages
    flag: str = ""  # the command-line name; default: --field-name
    metavar: str = ""  # what the CLI's help calls a text value
    none_means: str = ""  # what None stands for, where None is allowed
    facts: str = ""  # a module whose constants fill ``help`` (imported only when it is read)


def opt(default, help: str, **kw):  # noqa: A002 - argparse's word
    return field(default=default, metadata={"option": Option(help, **kw)})


ABOVE_0 = Range(0, low_open=True)
AT_LEAST_0, AT_LEAST_1 = Range(0), Range(1)
SHARE = Range(0, 1, high_open=True)  # [0, 1)


@dataclass
class TrainConfig:
    model: str = opt("mobilenet_v2", "the ImageNet-pretrained network to start from",
                     choices=MODEL_NAMES)
    weights: str = opt("imagenet", "imagenet (the network's ImageNet weights), none (random) "
                       "or a state-dict file to start from", metavar="WEIGHTS")
    data: str = opt("cifar10", f"{', '.join(name for name, _ in DATASETS)}, a folder of images "
                    "(one sub-folder per class, or train/ and val/ with them) or an archive "
                    "of one (.tar.gz, .zip)", metavar="SOURCE")
    epochs: int = opt(5, "epochs in all, the frozen ones included", range=AT_LEAST_1)
    freeze_epochs: int = opt(2, "epochs at the start in which {freeze} stays frozen; "
                             "then everything trains, at {unfreeze_lr_factor} times the "
                             "learning rate", range=AT_LEAST_0)
    freeze: str = opt("backbone", "what the frozen phase freezes: backbone, bn, none, early "
                      "(the high-resolution layers), depthwise (every depthwise convolution), "
                      "depthwise:K (those with K x K kernels or larger), upto:PATH (all before "
                      "PATH), through:PATH (PATH too), PATH or a range like features.0-13; "
                      "comma-separated", metavar="SPEC")
    lr: float = opt(1e-3, "learning rate of the new head", range=ABOVE_0)
    unfreeze_lr_factor: float = opt(0.1, "learning rates are multiplied by this when the "
                                    "frozen phase ends (the lesson's x0.1)", range=ABOVE_0)
    backbone_lr_factor: float = opt(1.0, "learning rate of every layer but the head, relative "
                                    "to {lr} (0: they stay as they are)", range=AT_LEAST_0)
    optimizer: str = opt("adam", "the optimizer", choices=OPTIMIZERS)
    weight_decay: float = opt(0.0, "weight decay (decoupled for adamw)", range=Range(0, 1))
    momentum: float = opt(0.9, "momentum of sgd", range=SHARE)
    scheduler: str = opt("step", "learning-rate schedule: step (x {gamma} every {step_size} "
                         "epochs), cosine (down to zero over the run) or none",
                         choices=SCHEDULERS)
    step_size: int = opt(3, "epochs between the step schedule's cuts", range=AT_LEAST_1)
    gamma: float = opt(0.1, "factor of each cut of the step schedule",
                       range=Range(0, 1, low_open=True))
    batch_size: int = opt(64, "images per optimizer step (under torchrun: over all "
                          "processes)", range=AT_LEAST_1)
    image_size: int = opt(224, "side of the square network input, in pixels",
                          range=Range(16, 1024))
    val_split: float = opt(0.1, "share of the training images held out for validation (when "
                           "the data has no validation split of its own)",
                           range=Range(0, 1, low_open=True, high_open=True))
    limit: int | None = opt(None, "train on only this many images (for quick tries)",
                            range=AT_LEAST_1, none_means="all images")
    flip: bool = opt(False, "random horizontal flips of the training images")
    bn_policy: str = opt("auto", "BatchNorm statistics: auto (eval for pretrained weights, "
                         "frozen-eval from scratch), frozen-eval (frozen layers keep theirs), "
                         "eval (all keep theirs, also after unfreezing), train (all update: "
                         "the lesson's way)", choices=BN_POLICIES, flag="bn")
    channels_last: bool = opt(True, "channels-last memory layout (faster convolutions)")
    cache_frozen: bool = opt(True, "compute the output of frozen early layers once per image "
                             "and train only the rest (core.training.feature_cache)")
    micro_batch: int = opt(16, "images per forward and backward pass inside a batch (a CPU "
                           "runs small ones faster); 0: the whole batch at once",
                           range=AT_LEAST_0)
    label_smoothing: float = opt(0.0, "label smoothing of the training loss", range=SHARE)
    drop_path: float = opt(0.0, "stochastic depth: the chance that the last residual block is "
                           "skipped in a training step (earlier blocks less); timm networks "
                           "only; 0: off", range=Range(0, 0.5))
    head_init: str = opt("random", "how the new head starts: random; imagenet (each "
                         "class's row starts as the ImageNet class its training images look "
                         "most like); probe (a linear probe of the pretrained features, "
                         "fitted on a sample of the training images before the first step); "
                         "or zero", choices=HEAD_INITS)
    fit_data: bool = opt(False, "fit the recipe to the data: {FIT_RULE}. Settings fitting "
                         "changes, given by name, stay as given (the log says what changed "
                         "and why)", facts="core.recipe")
    crop: float | None = opt(None, "share of a photo's shorter side kept by the centre crop",
                             range=Range(0.5, 1), none_means="from the data")
    skip_easy: float = opt(0.0, "share of the training images each epoch after the first "
                           "leaves out, drawn mostly from those learned best at their last "
                           "visit (time saved where a step changes least; "
                           "core.training.sampling); 0: every image every epoch",
                           range=Range(0, 0.9))
    feature_shift: int = opt(0, "random shift of the cached feature maps, in cells "
                             "(augmentation)", range=Range(0, 8))
    ema: float = opt(0.0, "decay of a weight average that validation and model.pt use (e.g. "
                     f"0.998; 0: off), warmed up as (1+t)/({EMA_WARMUP}+t) at step t while "
                     f"that is lower (0.998 from step "
                     f"{round((EMA_WARMUP * 0.998 - 1) / (1 - 0.998)):,} on); the checkpoint "
                     "keeps both",
                     range=SHARE)
    tta: bool = opt(False, "test-time flips: validate and predict on each image and its "
                    "mirror image (model.pt remembers it)")
    seed: int = opt(0, "seed of the validation split, the initial head and the batch order",
                    range=Range(0, SEED_MAX))
    log_every: int = opt(200, "print the loss every N batches (0: never)", range=AT_LEAST_0)
    threads: int | None = opt(None, "CPU threads", range=AT_LEAST_1,
                              none_means="PyTorch's choice")
    device: str = opt("auto", "auto (a CUDA GPU, then Apple's MPS, then the CPU), cpu, cuda, "
                      "cuda:N or mps", pattern=DEVICE_PATTERN,
                      pattern_text="auto, cpu, cuda, cuda:N or mps", metavar="DEVICE")
    precision: str = opt("auto", "auto: bf16 on GPUs with native bf16, on a CPU decided by a "
                         "timed check on the real model, cached per machine; 32; bf16; "
                         "16-mixed (fp16 with loss scaling, GPUs only)", choices=PRECISIONS)
    compile: bool = opt(False, "torch.compile the layers that train (slower start, faster "
                        "epochs)")

    def validate(self) -> "TrainConfig":
        """Refuse values that would train on nonsense; each message names the option and what
        it accepts, as the fields' descriptions say."""
        for name in OPTIONS:
            problem = value_problem(name, getattr(self, name))
            if problem:
                raise TransferLabError(f"{flag(name)} must be {problem}.")
        timm_models = [m.name for m in MODELS if m.family == "timm"]
        if self.drop_path and self.model in MODEL_NAMES and self.model not in timm_models:
            raise TransferLabError(f"{flag('drop_path')} works with {', '.join(timm_models)}, "
                                   f"not {self.model}; set it to 0 or choose one of those.")
        return self

    def effective_bn_policy(self) -> str:
        """``auto``: pretrained statistics are kept ("eval"); a network trained from random
        weights has no statistics worth keeping, so only frozen layers keep theirs."""
        if self.bn_policy != "auto":
            return self.bn_policy
        return "frozen-eval" if self.weights == "none" else "eval"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, strict: bool = False) -> "TrainConfig":
        """Unknown keys are ignored (a newer or older run's), or refused when ``strict``."""
        unknown = sorted(set(d) - set(OPTIONS))
        if strict and unknown:
            raise TransferLabError(f"Unknown setting{'s' * (len(unknown) > 1)} "
                                   f"{', '.join(map(repr, unknown))}; known: "
                                   f"{', '.join(OPTIONS)}.")
        return cls(**{k: v for k, v in d.items() if k in OPTIONS})


OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in fields(TrainConfig)}
DEFAULTS: dict[str, object] = TrainConfig().to_dict()
TYPE_WORDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
NUMBER_TYPES = {int: numbers.Integral, float: numbers.Real}  # numpy's numbers count too


@cache
def value_type(name: str) -> tuple[type, bool]:
    """A setting's type (int, float, str or bool) and whether it may be None."""
    hint = typing.get_type_hints(TrainConfig)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return (args[0] if args else hint), bool(args)


def flag(name: str) -> str:
    return "--" + (OPTIONS[name].flag or name.replace("_", "-"))


def help_text(name: str, refer: Callable[[str], str] = flag) -> str:
    """The setting's help, other settings named as ``refer`` calls them (the CLI: by flag,
    the Train form: by label), constants filled in from ``facts``."""
    o = OPTIONS[name]
    facts = vars(importlib.import_module(o.facts)) if o.facts else {}
    return o.help.format(**facts, **{key: refer(key) for key in OPTIONS})


def value_problem(name: str, value) -> str:
    """What is wrong with ``value`` for setting ``name`` ('at least 1, got 0'), or ''."""
    o, (kind, nullable) = OPTIONS[name], value_type(name)
    if value is None:
        return "" if nullable else f"{TYPE_WORDS[kind]}, got None"
    ok_type = isinstance(value, NUMBER_TYPES.get(kind, kind)) and (
        kind is bool or not isinstance(value, bool))
    if not ok_type:
        return f"{TYPE_WORDS[kind]}, got {value!r}"
    words = o.range.describe(kind is int) if o.range else ""
    if kind is float and o.range and o.range.high is None:
        words += " and finite"  # --lr inf or nan would train NaN weights
    if kind is float and not math.isfinite(value):
        return f"{words or 'finite'}, got {value}"
    if o.range is not None and value not in o.range:
        alt = f" (or left out: {o.none_means})" if nullable else ""
        return f"{words}{alt}, got {value}"
    if o.choices and value not in o.choices:
        return f"one of {', '.join(o.choices)}, got {value!r}"
    if o.pattern and re.fullmatch(o.pattern, value) is None:
        return f"{o.pattern_text}, got {value!r}"
    return ""


# The lesson's recipe, exactly: MobileNetV2 at 224 px, 2 frozen epochs then everything at x0.1,
# Adam 1e-3, StepLR(3, 0.1), 5 epochs, batch 64.
PRESETS: dict[str, dict] = {
    "seed": dict(model="mobilenet_v2", weights="imagenet", epochs=5, freeze_epochs=2,
                 freeze="backbone", lr=1e-3, unfreeze_lr_factor=0.1, optimizer="adam",
                 scheduler="step", step_size=3, gamma=0.1, batch_size=64, image_size=224,
                 flip=False),
    # Measured on 2 CPU cores (bench/time_to_accuracy.py, whole CIFAR-10 split): EfficientNet-
    # Lite0 (offline ImageNet weights); its high-resolution layers stay frozen for the whole
    # run, so their output is computed once (core.training.feature_cache) and only the rest
    # trains, the head at 1e-3 and the pretrained layers at 2e-4. The 5x5 depthwise filters
    # stay frozen too: a CPU computes their weight gradients 14-28x slower than 3x3 ones
    # (bench/depthwise_grad.py), so without them an epoch takes ~240 s instead of ~310 s;
    # the higher backbone LR (0.2 instead of 0.1) more than made up the 0.06 points that
    # freezing them cost. 93.34% in 14.4 min, 0.42x the lesson's frozen epoch measured in the
    # same run (was 93.04% in 18-21 min, 0.47-0.56x). A weight EMA validated 0.3-1.1 points
    # above the raw weights mid-run, and test-time flips +0.4.
    # 2026-11-30, Sapphire Rapids (AVX-512 + AMX), whole split with a second held-out slice
    # (bench/unseen_accuracy.py): Lite0 at 176 px 92.36 / 92.82% in 0.61x; EfficientNet-Lite1
    # at 160 px, at about the same cost per epoch (bench/capacity.py: 1.05x), 93.50 / 93.40%
    # in 0.60x: the larger network at a smaller size. Epochs after the first leave out half
    # of the images, mostly those already learned (skip_easy, core.training.sampling): on
    # the same 10,000 images 90.74% against 90.86% without (skip 0.4: 91.00%), with those
    # epochs' steps halved.
    "fast-cpu": dict(model="efficientnet_lite1", weights="imagenet", epochs=3,
                     freeze_epochs=100, freeze="early,depthwise:5", lr=1e-3,
                     backbone_lr_factor=0.2,
                     optimizer="adamw", weight_decay=0.0, scheduler="cosine", batch_size=64,
                     image_size=160, flip=True, bn_policy="auto", ema=0.998, tta=True,
                     fit_data=True, skip_easy=0.5),
    # One modern GPU: compute is cheap, so everything trains from the first batch at the
    # model's native 224 px (no resize loss for the pretrained features), the pretrained
    # layers at a tenth of the head's LR (what made fast-cpu's first epoch 82% instead of
    # 32%), bf16 autocast (precision auto), decoded images resident on the GPU, a larger batch
    # with AdamW + cosine, flips and label smoothing against the overfitting fast-cpu shows
    # (train 99% vs val 92%). EfficientNet-Lite0 because its ImageNet weights need no
    # download. Not yet timed on a GPU: bench/gpu_check.sh measures it.
    "fast-gpu": dict(model="efficientnet_lite0", weights="imagenet", epochs=5,
                     freeze_epochs=0, freeze="none", lr=1e-3, backbone_lr_factor=0.1,
                     optimizer="adamw", weight_decay=0.05, scheduler="cosine", batch_size=128,
                     image_size=224, flip=True, label_smoothing=0.1, bn_policy="auto",
                     precision="auto", device="auto", fit_data=True),
}


# What a freeze spec's parts freeze, in words (core.models.layers parses the spec itself)
FREEZE_WORDS = {"backbone": "all layers but the new head", "bn": "the BatchNorm layers",
                "all": "all layers (the new head too)",
                "early": "the early (high-resolution) layers",
                "depthwise": "the depthwise convolutions"}
FREEZE_PREFIXES = {"depthwise:": "the depthwise convolutions of {0}x{0} or larger",
                   "upto:": "the layers before {0}", "through:": "the layers up to {0}"}


def freeze_words(spec: str) -> str:
    """'early,depthwise:5' -> 'the early (high-resolution) layers and the depthwise
    convolutions of 5x5 or larger'; a path or range is named as it is; '' when it freezes
    nothing."""
    parts = []
    for part in (p.strip() for p in spec.split(",") if p.strip() not in ("", "none")):
        prefix = next((k for k in FREEZE_PREFIXES if part.startswith(k)), None)
        parts.append(FREEZE_WORDS.get(part) or (
            FREEZE_PREFIXES[prefix].format(part[len(prefix):]) if prefix else f"layers {part}"))
    return " and ".join(parts)


def freeze_plan(epochs: int, freeze_epochs: int, freeze: str,
                unfreeze_lr_factor: float) -> str:
    """The run's freeze plan in a sentence (the Train form, the CLI's start log), as
    core.training.optim.unfrozen applies it: ``freeze_epochs >= epochs`` keeps the freeze for
    the whole run, 0 never applies it."""
    what = freeze_words(freeze)
    if freeze_epochs == 0 or not what:
        return "Nothing is frozen: all layers train from the first epoch."
    what = what[:1].upper() + what[1:]
    if freeze_epochs >= epochs:
        return f"{what} stay frozen for the whole run ({epochs} epoch{'s' * (epochs != 1)})."
    lr = "at the same learning rate" if unfreeze_lr_factor == 1 else \
        f"at learning rate x{unfreeze_lr_factor:g}"
    return (f"{what} stay frozen for the first {freeze_epochs} of {epochs} epochs, then all "
            f"layers train {lr}.")


def apply_preset(config: TrainConfig, name: str) -> TrainConfig:
    if name not in PRESETS:
        raise TransferLabError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    for key, value in PRESETS[name].items():
        setattr(config, key, value)
    return config
