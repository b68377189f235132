"""The trial that fits a small folder's recipe (core.training.data_fit), what it and the
ImageNet class matching remember between starts, and the uncertainty of an accuracy
(core.uncertainty)."""
from dataclasses import replace

import pytest
import torch

from conftest import make_folder, tiny_config
from core.recipe import FINE_TUNE, HEAD_ONLY, TRIAL_HOLD_OUT, DataProfile


# --- the uncertainty of an accuracy --------------------------------------------------------
@pytest.mark.parametrize("correct, n", [(45, 48), (23, 24), (0, 10), (10, 10), (4654, 5000),
                                        (1, 3)])
def test_the_wilson_interval_is_scipys(correct, n):
    from scipy.stats import binomtest

    from core.uncertainty import AccuracyInterval

    ref = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    interval = AccuracyInterval(correct, n)
    assert interval.low == pytest.approx(100 * ref.low, abs=1e-6)
    assert interval.high == pytest.approx(100 * ref.high, abs=1e-6)
    assert interval.low <= interval.percent <= interval.high


def test_an_accuracy_on_few_images_says_how_uncertain_it_is():
    from core.uncertainty import AccuracyInterval

    few = AccuracyInterval.from_percent(93.75, 48)  # what 45 of 48 right prints as
    assert (few.correct, few.describe()) == (45, "93.8% ± 7.3")
    assert few.describe_long() == "93.8% ± 7.3 (95% interval 83.2–97.9% on 48 images)"
    many = AccuracyInterval(4654, 5000)
    assert many.plus_minus < 1 < few.plus_minus
    assert AccuracyInterval(0, 0).describe() == "0.0% ± 50.0"  # nothing measured: anything


def test_a_finished_training_says_how_uncertain_its_best_accuracy_is():
    import io

    from core.events import FitEnd, RunStarted
    from core.frontends.console import ConsoleReporter

    out = io.StringIO()
    console = ConsoleReporter(out, io.StringIO())
    console.on_event(RunStarted("run", "m", ["a", "b"], 100, 48, 1, 0, 2, "", ""))
    console.on_event(FitEnd("finished", 1, 93.75, "run"))
    assert "best val acc 93.75% ± 7.3 (95% interval, 48 images)" in out.getvalue()


# --- the ImageNet class matching is remembered ---------------------------------------------
def test_the_imagenet_class_matching_is_remembered_for_the_same_images():
    from test_recipe import Pixels, coloured, to_input

    from core.models.head_init import replace_from_imagenet

    labels = torch.arange(3).repeat(10)
    images = coloured(labels)

    def start(imgs, identity="pixels|weights|pre"):
        model = Pixels()
        forwards = []
        model.register_forward_hook(lambda *_: forwards.append(1))
        result = replace_from_imagenet(model, "fc", imgs, labels, ["r", "g", "b"], to_input,
                                       identity=identity)
        return result, len(forwards), model

    first, computed, _ = start(images)
    again, recomputed, model = start(images)
    assert computed > 0 and recomputed == 0  # the second start reads the first one's match
    assert again == first and again.used
    assert (model(to_input(images)).argmax(1) == labels).all()  # the rows were copied alike
    _, other_net, _ = start(images, identity="another network")
    assert other_net > 0
    changed = images.clone()
    changed[0, 0, 0, 0] += 1  # one pixel of one image
    _, other_pixels, _ = start(changed)
    assert other_pixels > 0


# --- the trial ---------------------------------------------------------------------------
def test_the_trial_key_follows_the_files_and_the_settings():
    from core.config import TrainConfig
    from core.training.data_fit import cache_key

    cfg = TrainConfig(fit_data=True)
    configs = {FINE_TUNE: cfg, HEAD_ONLY: replace(cfg, freeze="backbone")}
    profile = DataProfile(100, 2, 300, identity="abc")
    key = cache_key(configs, profile)
    assert key == cache_key(dict(configs), replace(profile))
    assert key != cache_key(configs, replace(profile, identity="abd"))  # a file changed
    assert key != cache_key({**configs, FINE_TUNE: replace(cfg, lr=0.01)}, profile)
    assert key == cache_key({**configs, FINE_TUNE: replace(cfg, threads=1, log_every=5)},
                            profile)  # how fast it runs is not what it learns
    assert cache_key(configs, replace(profile, identity="")) is None  # built-in sets


def test_the_folder_profile_names_its_files_and_its_held_out_folder(tmp_path):
    from core.data.datasets import profile_data

    folder = make_folder(tmp_path / "d", classes=2, per_class=4, size=(50, 40))
    first = profile_data(str(folder))
    assert (first.images, first.classes, first.median_side, first.held_out) == (8, 2, 40, False)
    assert first.identity == profile_data(str(folder)).identity
    make_folder(tmp_path / "d", classes=2, per_class=5, size=(50, 40))  # one more a class
    assert profile_data(str(folder)).identity != first.identity
    make_folder(tmp_path / "e" / "train", classes=2, per_class=4)
    make_folder(tmp_path / "e" / "val", classes=2, per_class=2)
    assert profile_data(str(tmp_path / "e")).held_out


def test_a_small_folder_trains_the_way_a_trial_on_its_own_images_measured_best(tmp_path):
    """The decision comes from both candidates trained on 3/4 of the training images and
    scored on the rest; the next start on the same data recalls it and trains alike."""
    from core.data.datasets import profile_data
    from core.events import EventCollector, RecipeFitted
    from core.training.data_fit import recall
    from core.training.trainer import Trainer

    folder = make_folder(tmp_path / "photos", classes=2, per_class=10, size=(80, 60))
    cfg = tiny_config(folder, model="efficientnet_lite0", weights="imagenet", fit_data=True,
                      precision="32", val_split=0.2, flip=True, tta=True, freeze="early",
                      freeze_epochs=10)  # fast-cpu's way: the early layers stay frozen
    runs, stem_images = [], []
    for i in range(2):
        events = EventCollector()
        trainer = Trainer(cfg, [events], run_dir=tmp_path / f"run{i}")
        loop = trainer.prepare()
        seen = []  # images through the first layer: the frozen prefix computing features
        loop.model.conv_stem.register_forward_hook(lambda m, x, out: seen.append(len(out)))
        result = loop.fit()
        (fitted,) = events.of(RecipeFitted)
        runs.append((fitted, trainer.cfg, result.history))
        stem_images.append(sum(seen))
    (first, cfg1, history1), (second, cfg2, history2) = runs
    trial = first.trial
    assert cfg1.val_split == 0.25  # 20 images: a larger validation share than 10%
    # per class: 10 images, 2 validate, 8 train: the trial holds 2 out and trains on 6
    assert TRIAL_HOLD_OUT == 0.25 and (trial.held_out, trial.trained_on) == (4, 12)
    assert not trial.cached and trial.seconds > 0
    head_only = trial.head_only > trial.fine_tune
    assert first.reason == (HEAD_ONLY if head_only else FINE_TUNE)
    assert (cfg1.freeze, cfg1.image_size) == (("backbone", 60) if head_only else
                                              (cfg.freeze, cfg.image_size))
    assert ("image_size", 32, 60) in first.changes if head_only else True
    # the second start: the same measurement, remembered, and the same training
    assert second.trial == replace(trial, seconds=0.0, cached=True)
    learned = [[(h["train_loss"], h["val_loss"], h["val_acc"]) for h in history]
               for history in (history1, history2)]
    assert cfg2 == cfg1 and learned[1] == learned[0]
    # the first start's run began with the trial winner's features of its training images
    # (image and mirror): its frozen layers saw those 2 x 16 images fewer
    assert stem_images[1] - stem_images[0] == 2 * 16
    # what the Train form can show before the next Start, without decoding or training
    remembered = recall(cfg, profile_data(str(folder)))
    assert remembered.measured == second.trial and not remembered.pending
    assert tuple((c.key, c.old, c.new) for c in remembered.changes) == first.changes


def test_a_folder_too_small_to_hold_images_out_keeps_the_preset(tmp_path):
    from core.events import EventCollector, RecipeFitted
    from core.training.trainer import Trainer

    folder = make_folder(tmp_path / "tiny", classes=2, per_class=2, size=(80, 60))
    events = EventCollector()
    cfg = tiny_config(folder, model="efficientnet_lite0", weights="imagenet", fit_data=True,
                      precision="32")
    trainer = Trainer(cfg, [events], run_dir=tmp_path / "run")
    assert trainer.fit().status == "finished"
    (fitted,) = events.of(RecipeFitted)
    assert fitted.reason == FINE_TUNE and fitted.trial.held_out == 0
    assert "too few images a class" in fitted.message and trainer.cfg.freeze == cfg.freeze


def test_a_tie_of_counts_goes_to_the_candidate_with_the_lower_held_out_loss():
    """ants/bees, seed 2: both candidates got 60 of 61 held-out photos right; the preset's
    fine-tuning then validated at 90.8% where the head alone reaches ~98%. The held-out loss
    breaks the tie; a trial remembered without losses keeps the preset as before."""
    from core.recipe import TrialResult

    tie = dict(held_out=61, trained_on=184, head_only=60, fine_tune=60)
    assert TrialResult(**tie, head_only_loss=0.05, fine_tune_loss=0.12).head_only_wins
    assert not TrialResult(**tie, head_only_loss=0.12, fine_tune_loss=0.05).head_only_wins
    assert not TrialResult(**tie).head_only_wins  # (remembered before losses were kept)
    more = dict(tie, fine_tune=61)  # more right wins whatever the losses
    assert not TrialResult(**more, head_only_loss=0.01, fine_tune_loss=0.5).head_only_wins
    described = TrialResult(**tie, head_only_loss=0.05, fine_tune_loss=0.12).describe()
    assert "a tie: held-out loss 0.050 vs 0.120" in described
