import csv
import json

import pytest
import torch

from core.config import TrainConfig, apply_preset
from core.events import BatchEnd, EpochEnd, EventCollector, FitEnd, PhaseChanged, RunStarted
from core.training.optim import lr_at
from core.inference.predict import load_model_file, predict_paths
from core.progress import TaskState
from core.training.trainer import Trainer


def tiny(folder, **kw):
    base = dict(model="mobilenet_v2", weights="none", data=str(folder), epochs=2,
                freeze_epochs=1, image_size=32, batch_size=8, val_split=0.25, log_every=2)
    base.update(kw)
    return TrainConfig(**base)


def test_lesson_schedule_is_reproduced_exactly():
    cfg = apply_preset(TrainConfig(), "seed")
    lrs = [lr_at(cfg, e) for e in range(cfg.epochs)]
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5, 1e-5])
    assert (cfg.model, cfg.image_size, cfg.batch_size, cfg.optimizer) == \
        ("mobilenet_v2", 224, 64, "adam")


def test_two_phase_run_emits_events_and_saves_the_run(image_folder, tmp_path):
    events = EventCollector()
    run = tmp_path / "run"
    trainer = Trainer(tiny(image_folder), [events], run_dir=run)
    result = trainer.fit()
    assert result.status == "finished" and result.epochs_done == 2
    started = events.of(RunStarted)[0]
    assert started.n_train == 27 and started.n_val == 9 and started.batches_per_epoch == 4
    assert started.frozen_summary.startswith("frozen ")
    epochs = events.of(EpochEnd)
    assert [e.phase for e in epochs] == ["frozen", "unfrozen"]
    assert [e.lr for e in epochs] == pytest.approx([1e-3, 1e-4])
    phases = events.of(PhaseChanged)
    assert phases[0].frozen_spec == "features" and phases[1].frozen_spec == "none"
    assert len(events.of(BatchEnd)) == 8
    assert isinstance(events.events[-1], FitEnd)
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    lm = load_model_file(run / "model.pt")
    assert lm.classes == ["class_0", "class_1", "class_2"] and lm.preprocessing.image_size == 32


def test_frozen_phase_changes_no_frozen_weight_or_statistic(image_folder, tmp_path):
    trainer = Trainer(tiny(image_folder, epochs=1), run_dir=tmp_path / "r")
    trainer.prepare()  # builds the network, so its weights can be read before fitting
    before = {k: v.clone() for k, v in trainer.model.features.state_dict().items()}
    head_before = trainer.model.classifier[1].weight.clone()
    trainer.fit()
    after = trainer.model.features.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "num_batches" not in k)
    assert not torch.equal(head_before, trainer.model.classifier[1].weight)
    assert len(trainer.opt.param_groups[0]["params"]) == 2  # only the head's weight and bias


def test_training_learns_with_offline_imagenet_weights(image_folder, tmp_path):
    cfg = tiny(image_folder, model="efficientnet_lite0", weights="imagenet", epochs=3,
               freeze_epochs=3, image_size=64, lr=3e-3)
    result = Trainer(cfg, run_dir=tmp_path / "r").fit()
    assert result.best_val_acc >= 88.0, result.history


def test_stop_pause_and_queued_actions_act_between_batches(image_folder, tmp_path):
    state = TaskState()
    seen = []

    class StopAfterThree(EventCollector):
        def on_event(self, event):
            super().on_event(event)
            if isinstance(event, BatchEnd):
                seen.append(event.batch)
                if event.batch == 2:
                    state.queue(lambda: seen.append("action"))
                if event.batch == 3:
                    state.cancel()

    events = StopAfterThree()
    result = Trainer(tiny(image_folder), [events], state, run_dir=tmp_path / "r").fit()
    assert result.status == "stopped" and result.message == "Stopped by the user."
    assert seen == [1, 2, "action", 3]
    assert not events.of(EpochEnd)


def test_a_toggle_during_training_rebuilds_the_optimizer(image_folder, tmp_path):
    state = TaskState()
    holder = {}

    class Toggle(EventCollector):
        def on_event(self, event):
            super().on_event(event)
            if isinstance(event, BatchEnd) and event.batch == 1:
                t = holder["trainer"]
                state.queue(lambda: t.set_freeze(path="features.18", trainable=True,
                                                 message="User unfroze features.18"))

    events = Toggle()
    trainer = Trainer(tiny(image_folder, epochs=1), [events], state, run_dir=tmp_path / "r")
    holder["trainer"] = trainer
    trainer.fit()
    change = [e for e in events.of(PhaseChanged) if e.reason == "user"][0]
    assert change.message == "User unfroze features.18"
    assert change.batch == 1  # applied before batch 2 ran
    assert "features.18" not in change.frozen_spec.split(",")
    groups = trainer.opt.param_groups
    assert [len(g["params"]) for g in groups] == [2, 3]  # head; conv+bn of block 18


def test_diverging_loss_stops_with_a_clear_message(image_folder, tmp_path):
    cfg = tiny(image_folder, optimizer="sgd", lr=1e38, epochs=1, freeze_epochs=0)
    result = Trainer(cfg, run_dir=tmp_path / "r").fit()
    assert result.status == "failed" and "diverged" in result.message


def test_resume_continues_after_the_last_checkpoint(image_folder, tmp_path):
    run = tmp_path / "r"
    Trainer(tiny(image_folder, epochs=1), run_dir=run).fit()
    events = EventCollector()
    cfg = tiny(image_folder, epochs=2)
    result = Trainer(cfg, [events], run_dir=run, resume=True).fit()
    assert events.of(RunStarted)[0].start_epoch == 1
    assert [e.epoch for e in events.of(EpochEnd)] == [2]
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_predictions_from_a_saved_model(image_folder, tmp_path):
    run = tmp_path / "r"
    Trainer(tiny(image_folder, epochs=1), run_dir=run).fit()
    lm = load_model_file(run / "model.pt")
    results = predict_paths(lm, [image_folder], topk=3)
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in results}
    assert by_name["notes.jpg"].error == "not an image"
    good = [r for r in results if not r.error]
    assert len(good) == 36
    for r in good:
        probs = [p for _, p in r.topk]
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1, abs=1e-5)  # topk=3 of 3 classes: all of them


def test_discriminative_learning_rates(image_folder, tmp_path):
    cfg = tiny(image_folder, epochs=1, freeze_epochs=0, backbone_lr_factor=0.1, lr=2e-3)
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    trainer.fit()
    head, rest = trainer.opt.param_groups
    assert len(head["params"]) == 2 and head["lr"] == pytest.approx(2e-3)
    assert rest["lr"] == pytest.approx(2e-4)


def test_micro_batches_give_the_same_step_as_the_whole_batch(image_folder, tmp_path):
    """With BatchNorm in eval mode, 16-image chunks with summed gradients = one 64 pass."""
    weights = {}
    for micro in (0, 4):
        cfg = tiny(image_folder, epochs=1, freeze_epochs=0, bn_policy="eval", batch_size=16,
                   micro_batch=micro, seed=3, flip=True)
        trainer = Trainer(cfg, run_dir=tmp_path / str(micro))
        trainer.fit()
        assert len(trainer.loop.chunks(16)) == (4 if micro else 1)
        weights[micro] = trainer.model.features[5].conv[0][0].weight.detach().clone()
    assert torch.allclose(weights[0], weights[4], atol=1e-5)


def test_micro_batches_stay_off_while_batchnorm_trains(image_folder, tmp_path):
    trainer = Trainer(tiny(image_folder, freeze_epochs=0, bn_policy="train", micro_batch=4),
                      run_dir=tmp_path / "r")
    loop = trainer.prepare()
    loop.set_bn_modes()
    assert loop.chunks(16) == [slice(0, 16)]


def test_unfreezing_mid_epoch_puts_that_batchnorm_in_train_mode_at_once(image_folder,
                                                                         tmp_path):
    state = TaskState()
    seen = {}

    class Toggle(EventCollector):
        def on_event(self, event):
            super().on_event(event)
            t = holder["trainer"]
            if isinstance(event, BatchEnd) and event.batch == 1:
                state.queue(lambda: t.set_freeze(path="features.18", trainable=True))
            if isinstance(event, BatchEnd) and event.batch == 2:
                seen["bn_training"] = t.model.features[18][1].training

    holder = {}
    trainer = Trainer(tiny(image_folder, epochs=1, freeze_epochs=1), [Toggle()], state,
                      run_dir=tmp_path / "r")
    holder["trainer"] = trainer
    trainer.fit()
    assert seen["bn_training"] is True  # frozen-eval policy: unfrozen BatchNorm trains
