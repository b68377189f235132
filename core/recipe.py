"""Fitting a preset to the data it meets (``TrainConfig.fit_data``), decided by measuring.
No torch import: the GUI shows what fitting does before Start.

A preset is tuned on one kind of data; the fast ones on CIFAR-10 (45,000 thumbnails, where
fine-tuning the later layers pays). A small folder is another case: with few images, training
only the head on ImageNet's frozen features can beat fine-tuning (the shared ants/bees photos:
98.0% against 92.2%, classes ImageNet already knows), or lose to it (a folder of 17 flower
species: 92.65% against 94.85%). Counting images cannot tell the two apart, so for a small
folder both are tried on the user's own training images (core.training.data_fit): each trains
on 3/4 of them and is scored on the other quarter, and the head alone replaces the preset's
fine-tuning only when it classifies more of those held-out images right. Nothing here depends
on one folder: the figures come from the data at hand, at the start of each run, and travel in
the ``RecipeFitted`` event with the decision.

``plan(cfg, profile)`` is the pure rule: what the counts settle before Start (a larger
validation share for small folders, whether a trial runs, what it compares), and with the
trial's figures (``measured``) the decision. ``fit_to_data`` applies a plan to a config.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from core.config import TrainConfig

SMALL_PER_CLASS = 300  # fewer training images per class than this: a trial decides
FIX_RES = 8 / 7  # the head alone sees photos at this multiple of the network's own input size
SMALL_EPOCHS = 10  # only the head trains, on features computed once: epochs cost little
TRIAL_HOLD_OUT = 0.25  # share of the training images a trial holds out to score candidates
# A validation split smaller than this many images moves in steps of more than a point per
# image; a small folder without a held-out folder gets a larger share, at most MAX_VAL_SPLIT
# (3/4 of the images still train). A larger split, not repeated runs: it costs no extra time
# and the run keeps one validation set that every epoch, chart and model.pt refer to.
VAL_IMAGES = 100
MAX_VAL_SPLIT = 0.25

# Adjustment.reason / RecipeFitted.reason, with the words front ends show for each
SMALL_VALIDATION = "small-validation"
HEAD_ONLY = "head-only-measured"
FINE_TUNE = "fine-tune-measured"
REASONS = {SMALL_VALIDATION: "a small folder: a larger validation split",
           HEAD_ONLY: "training only the head was measured more accurate on your images",
           FINE_TUNE: "fine-tuning was measured at least as accurate on your images"}
HEAD_ONLY_KEYS = ("image_size", "epochs", "freeze", "freeze_epochs", "head_init")
FIT_KEYS = HEAD_ONLY_KEYS + ("val_split",)  # every setting fitting may change


@dataclass(frozen=True)
class DataProfile:
    """What the data is, known before it is decoded (core.data.datasets.profile_data)."""
    images: int
    classes: int
    median_side: int | None  # the shorter side of a typical image; None: unknown
    held_out: bool = False  # a val/ or test/ folder validates, not a share of the images
    identity: str = ""  # changes when any file does (cache keys); "" for built-in sets


@dataclass(frozen=True)
class Adjustment:
    key: str  # a TrainConfig field
    old: object
    new: object
    reason: str  # a key of REASONS

    def describe(self) -> str:
        return f"{self.key}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class TrialResult:
    """Both candidates trained on the same ``trained_on`` training images, scored on the same
    ``held_out`` others: how many each classified right."""
    held_out: int
    trained_on: int
    head_only: int
    fine_tune: int
    seconds: float = 0.0  # the trial's own time (0 when it came from the cache)
    cached: bool = False
    # each candidate's mean held-out loss (cross-entropy): what breaks a tie of counts
    # (None in trials remembered before it was measured)
    head_only_loss: float | None = None
    fine_tune_loss: float | None = None

    def accuracy(self, correct: int) -> float:
        return 100.0 * correct / max(self.held_out, 1)

    @property
    def head_only_wins(self) -> bool:
        """More held-out images right, or as many with a lower held-out loss. With a few
        dozen held-out photos a tie of counts is common (ants/bees, seed 2: 60 of 61 each,
        then fine-tuning validated at 90.8% where the head alone reaches ~98%); the loss
        tells the candidates apart by how sure they were of the right class. Without
        losses (an older remembered trial) a tie keeps the preset."""
        if self.head_only != self.fine_tune:
            return self.head_only > self.fine_tune
        losses = (self.head_only_loss, self.fine_tune_loss)
        return None not in losses and losses[0] < losses[1]

    def describe(self) -> str:
        if not self.held_out:
            return "too few images a class to hold any out for a trial: the preset's recipe"
        tie = "" if self.head_only != self.fine_tune or self.head_only_loss is None else \
            f" (a tie: held-out loss {self.head_only_loss:.3f} vs {self.fine_tune_loss:.3f})"
        return (f"head only {self.accuracy(self.head_only):.1f}% vs fine-tuning "
                f"{self.accuracy(self.fine_tune):.1f}% on {self.held_out} held-out training "
                f"images (trained on {self.trained_on}){tie}"
                + (", remembered from an earlier start" if self.cached else
                   f", measured in {self.seconds:.0f} s"))


@dataclass(frozen=True)
class FitPlan:
    changes: tuple[Adjustment, ...] = ()
    head_only: dict = field(default_factory=dict)  # the head-only candidate's settings
    measured: TrialResult | None = None

    @property
    def pending(self) -> bool:
        """A trial has to run (on the decoded data) before the plan is final."""
        return bool(self.head_only) and self.measured is None

    @property
    def reason(self) -> str:
        if self.measured is not None:
            return HEAD_ONLY if self.measured.head_only_wins else FINE_TUNE
        return self.changes[0].reason if self.changes else ""

    def describe(self) -> str:
        parts = [REASONS[self.reason]] if self.reason else []
        if self.measured is not None:
            parts.append(self.measured.describe())
        if self.pending:
            parts.append("the head alone and fine-tuning are tried on your training images "
                         "when the run starts")
        if self.changes:
            parts.append(", ".join(c.describe() for c in self.changes))
        return "; ".join(parts)


def describe_rule() -> str:
    """What fitting does, in words (the CLI's help and the Train form's tooltip)."""
    return (f"with fewer than {SMALL_PER_CLASS} training images per class, the head alone "
            f"(on frozen ImageNet features, {SMALL_EPOCHS}+ epochs, at the network's best size "
            f"for frozen features) and the preset's fine-tuning are each trained on "
            f"{1 - TRIAL_HOLD_OUT:.0%} of the training images at the start, and the one that "
            f"classifies more of the others right is used; without a val/ folder, validation "
            f"gets at least {VAL_IMAGES} images (up to {MAX_VAL_SPLIT:.0%})")


FIT_RULE = describe_rule()  # (core.config names it in the fit_data setting's help)


def native_size(model: str) -> int:
    from core.catalog import MODELS

    return next((m.input_size for m in MODELS if m.name == model), 224)


def head_only_settings(cfg: TrainConfig, profile: DataProfile) -> dict:
    """The head-only candidate: the whole pretrained network frozen, its head trained from the
    ImageNet classes the images resemble (when they do, core.models.head_init), at the size
    where frozen features see objects as large as in their own training (FixRes: a network
    trained on random crops at N px is best evaluated at ~1.15 N), never above the photos'
    own shorter side nor below the preset's size."""
    size = round(native_size(cfg.model) * FIX_RES)
    if profile.median_side is not None:
        size = min(size, profile.median_side)
    epochs = max(cfg.epochs, SMALL_EPOCHS)
    wanted = {"image_size": max(cfg.image_size, size), "epochs": epochs, "freeze": "backbone",
              "freeze_epochs": max(cfg.freeze_epochs, epochs)}
    if cfg.weights == "imagenet":  # a file's head is not ImageNet's
        wanted["head_init"] = "imagenet"
    return wanted


def validation_share(cfg: TrainConfig, profile: DataProfile) -> float:
    """The share that gives VAL_IMAGES validation images, between the config's and
    MAX_VAL_SPLIT; a held-out folder keeps the config's (unused) share."""
    if profile.held_out or profile.images <= 0:
        return cfg.val_split
    wanted = min(MAX_VAL_SPLIT, VAL_IMAGES / profile.images)
    return max(cfg.val_split, round(wanted, 2))


def plan(cfg: TrainConfig, profile: DataProfile, measured: TrialResult | None = None,
         keep: frozenset[str] | set[str] = frozenset()) -> FitPlan:
    """What fitting does to ``cfg`` for ``profile`` (pure: ``cfg`` is not changed). Settings
    named in ``keep`` (the user's own edits) are never changed. Random weights are not fitted:
    random features are no place to train a head alone. Planning again on the fitted config
    changes nothing."""
    if not cfg.fit_data or cfg.weights == "none":
        return FitPlan()
    changes = []
    share = validation_share(cfg, profile)
    if share != cfg.val_split and "val_split" not in keep:
        changes.append(Adjustment("val_split", cfg.val_split, share, SMALL_VALIDATION))
    images = round(profile.images * (1 - (0 if profile.held_out else share)))
    if cfg.limit is not None:
        images = min(images, cfg.limit)
    if images >= SMALL_PER_CLASS * profile.classes or already_head_only(cfg):
        return FitPlan(tuple(changes))
    candidate = {k: v for k, v in head_only_settings(cfg, profile).items() if k not in keep}
    if measured is not None and measured.head_only_wins:
        changes += [Adjustment(k, getattr(cfg, k), v, HEAD_ONLY) for k, v in candidate.items()
                    if getattr(cfg, k) != v]
    return FitPlan(tuple(changes), candidate, measured)


def already_head_only(cfg: TrainConfig) -> bool:
    """The config trains only the head for the whole run: nothing left to decide."""
    return cfg.freeze == "backbone" and cfg.freeze_epochs >= cfg.epochs


def candidates(cfg: TrainConfig, fitted: FitPlan) -> dict[str, TrainConfig]:
    """The two configs a trial compares (the preset as it is, and the head alone)."""
    return {FINE_TUNE: replace(cfg), HEAD_ONLY: replace(cfg, **fitted.head_only)}


def fit_to_data(cfg: TrainConfig, profile: DataProfile, measured: TrialResult | None = None,
                keep: frozenset[str] | set[str] = frozenset()) -> FitPlan:
    """``plan`` applied to ``cfg`` in place."""
    fitted = plan(cfg, profile, measured, keep)
    for change in fitted.changes:
        setattr(cfg, change.key, change.new)
    return fitted
