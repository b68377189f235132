"""Training settings and named presets, saved with every run as ``config.json``."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

from core.errors import TransferLabError

OPTIMIZERS = ("adam", "adamw", "sgd")
BN_POLICIES = ("auto", "frozen-eval", "eval", "train")  # see core.models.layers.apply_bn_policy
SCHEDULERS = ("step", "cosine", "none")
PRECISIONS = ("auto", "32", "bf16", "16-mixed")  # see core.training.device
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?|mps"
HEAD_INITS = ("random", "imagenet")  # see core.models.head_init


@dataclass
class TrainConfig:
    model: str = "mobilenet_v2"
    weights: str = "imagenet"  # "imagenet", "none" or a state-dict file
    data: str = "cifar10"  # "cifar10", "cifar100", a folder or an archive of one
    epochs: int = 5
    freeze_epochs: int = 2  # epochs with ``freeze`` applied; then everything trains
    freeze: str = "backbone"  # a freeze spec, see core.models.layers.parse_spec
    lr: float = 1e-3
    unfreeze_lr_factor: float = 0.1
    backbone_lr_factor: float = 1.0  # LR of every layer but the head, relative to --lr
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "step"
    step_size: int = 3
    gamma: float = 0.1
    batch_size: int = 64
    image_size: int = 224
    val_split: float = 0.1
    limit: int | None = None  # keep only this many training images
    flip: bool = False  # random horizontal flips
    bn_policy: str = "auto"  # see core.models.layers.apply_bn_policy; "train" = the lesson
    channels_last: bool = True
    cache_frozen: bool = True  # compute a frozen prefix once (core.training.feature_cache)
    micro_batch: int = 16  # images per forward/backward inside a batch (FitLoop.chunks); 0 = off
    label_smoothing: float = 0.0
    head_init: str = "random"  # "imagenet": start each class's row from its best ImageNet match
    fit_data: bool = False  # let core.recipe fit these settings to the data
    crop: float | None = None  # share of a photo's shorter side used; None: from the data
    feature_shift: int = 0  # random translation of cached feature maps, in cells (augmentation)
    ema: float = 0.0  # decay of a weight average used for validation and model.pt; 0 = off
    tta: bool = False  # validate and predict on each image and its mirror (flip_average)
    seed: int = 0
    log_every: int = 200
    threads: int | None = None
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps (core.training.device)
    precision: str = "auto"  # auto, 32, bf16, 16-mixed
    compile: bool = False  # torch.compile the part of the network that trains

    def validate(self) -> "TrainConfig":
        """Refuse values that would train on nonsense; each message names the option and
        its valid range (the one home of those ranges)."""
        for ok, message in self._checks():
            if not ok:
                raise TransferLabError(message + ".")
        return self

    def _checks(self) -> list[tuple[bool, str]]:
        def real(x) -> bool:  # a finite number: --lr inf or nan trains NaN weights
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        return [
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.freeze_epochs >= 0, "--freeze-epochs cannot be negative"),
            (real(self.lr) and self.lr > 0, f"--lr must be positive and finite, got {self.lr}"),
            (real(self.unfreeze_lr_factor) and self.unfreeze_lr_factor > 0,
             "--unfreeze-lr-factor must be positive and finite"),
            (real(self.backbone_lr_factor) and self.backbone_lr_factor >= 0,
             "--backbone-lr-factor must be zero or more, and finite"),
            (real(self.weight_decay) and 0 <= self.weight_decay <= 1,
             "--weight-decay must be in [0, 1]"),
            (real(self.momentum) and 0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (real(self.gamma) and 0 < self.gamma <= 1, "gamma must be in (0, 1]"),
            (self.step_size >= 1, "step_size must be at least 1"),
            (real(self.ema) and 0 <= self.ema < 1, f"--ema must be in [0, 1), got {self.ema}"),
            (real(self.label_smoothing) and 0 <= self.label_smoothing < 1,
             f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.micro_batch >= 0, "micro_batch cannot be negative"),
            (16 <= self.image_size <= 1024, "--image-size must be between 16 and 1024"),
            (self.limit is None or self.limit >= 1,
             f"--limit must be at least 1 (or left out for all images), got {self.limit}"),
            (self.threads is None or self.threads >= 1,
             f"--threads must be at least 1, got {self.threads}"),
            (self.log_every >= 0, "--log-every cannot be negative"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.scheduler in SCHEDULERS, f"--scheduler must be one of {', '.join(SCHEDULERS)}"),
            (real(self.val_split) and 0 < self.val_split < 1,
             "--val-split must be between 0 and 1"),
            (0 <= self.feature_shift <= 8, "--feature-shift must be between 0 and 8 cells"),
            (self.crop is None or (real(self.crop) and 0.5 <= self.crop <= 1),
             f"crop must be between 0.5 and 1, got {self.crop}"),
            (self.head_init in HEAD_INITS,
             f"--head-init must be one of {', '.join(HEAD_INITS)}"),
            (self.bn_policy in BN_POLICIES, f"--bn must be one of {', '.join(BN_POLICIES)}"),
            (str(self.precision) in PRECISIONS,
             f"--precision must be one of {', '.join(PRECISIONS)}"),
            (re.fullmatch(DEVICE_PATTERN, str(self.device)) is not None,
             "--device must be auto, cpu, cuda, cuda:N or mps"),
        ]

    def effective_bn_policy(self) -> str:
        """``auto``: pretrained statistics are kept ("eval"); a network trained from random
        weights has no statistics worth keeping, so only frozen layers keep theirs."""
        if self.bn_policy != "auto":
            return self.bn_policy
        return "frozen-eval" if self.weights == "none" else "eval"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


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
    "fast-cpu": dict(model="efficientnet_lite0", weights="imagenet", epochs=3,
                     freeze_epochs=100, freeze="early,depthwise:5", lr=1e-3,
                     backbone_lr_factor=0.2,
                     optimizer="adamw", weight_decay=0.0, scheduler="cosine", batch_size=64,
                     image_size=176, flip=True, bn_policy="auto", ema=0.998, tta=True,
                     fit_data=True),
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


def apply_preset(config: TrainConfig, name: str) -> TrainConfig:
    if name not in PRESETS:
        raise TransferLabError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    for key, value in PRESETS[name].items():
        setattr(config, key, value)
    return config
