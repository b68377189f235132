"""Issue 24 items 3 and 5: what the Train form shows is what runs (a setting the user set by hand
survives Fit to data, the fields show what fitting chose, no stale note, no preset title that
fitting belies), and the freeze plan in words. Each test failed on the code before the fix."""
from __future__ import annotations

import json

import pytest

from core.config import PRESETS, freeze_plan
from core.events import RecipeFitted
from core.recipe import HEAD_ONLY, DataProfile, TrialResult, plan
from tests.conftest import make_folder, tiny_config


# --- item 5: the plan in words ------------------------------------------------------------------
@pytest.mark.parametrize("epochs, frozen, spec, factor, words", [
    (3, 100, "early", 0.1, "The early (high-resolution) layers stay frozen for the whole run "
                           "(3 epochs)."),
    (3, 3, "backbone", 0.1, "All layers but the new head stay frozen for the whole run"),
    (5, 2, "backbone", 0.1, "All layers but the new head stay frozen for the first 2 of 5 "
                            "epochs, then all layers train at learning rate x0.1."),
    (5, 2, "early,depthwise:5", 1.0, "The early (high-resolution) layers and the depthwise "
                                     "convolutions of 5x5 or larger stay frozen for the first 2 "
                                     "of 5 epochs, then all layers train at the same learning"),
    (5, 2, "features.0-13", 0.5, "Layers features.0-13 stay frozen for the first 2 of 5"),
    (5, 0, "backbone", 0.1, "Nothing is frozen: all layers train from the first epoch."),
    (5, 2, "none", 0.1, "Nothing is frozen"),
])
def test_the_freeze_plan_in_words(epochs, frozen, spec, factor, words):
    assert freeze_plan(epochs, frozen, spec, factor).startswith(words)


def test_the_form_names_the_plan_next_to_frozen_epochs(qtbot):
    from gui.train_form import TrainForm

    form = TrainForm()
    qtbot.addWidget(form)
    form.freeze_spec = lambda: "early"  # what the Model tab's ticks freeze
    form.set_values({"epochs": 3, "freeze_epochs": 100})
    assert form.plan.text() == "The early (high-resolution) layers stay frozen for the whole " \
                               "run (3 epochs)."
    form.fields["epochs"].setValue(5)  # the user's edit
    form.fields["freeze_epochs"].setValue(2)
    assert form.plan.text().endswith("for the first 2 of 5 epochs, then all layers train at "
                                     "learning rate x0.1.")


def test_the_plan_follows_the_model_tabs_freeze(window):
    form = window.train_tab.form
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    p = PRESETS["fast-cpu"]
    assert form.plan.text() == freeze_plan(p["epochs"], p["freeze_epochs"], p["freeze"],
                                           form.values()["unfreeze_lr_factor"])
    assert "whole run" in form.plan.text()


# --- item 3: the preset's title does not name what fitting may change -------------------------
def test_a_preset_fitted_to_the_data_names_no_size_fitting_may_change(qtbot):
    from gui.train_form import TrainForm

    form = TrainForm()
    qtbot.addWidget(form)
    for name, p in PRESETS.items():
        title = form.preset.itemText(form.preset.findData(name))
        if p.get("fit_data"):
            assert f"{p['image_size']} px" not in title and "fitted to the data" in title
        else:
            assert f"({p['image_size']} px)" in title


# --- item 3: a hand-set value survives Fit to data ----------------------------------------------
def test_hand_edits_since_the_preset_are_what_fitting_keeps(qtbot, tmp_path):
    from gui.train_form import TrainForm

    form = TrainForm()
    qtbot.addWidget(form)
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    assert form.fit_keep() == frozenset()  # the preset's values are not the user's
    form.fields["image_size"].setValue(224)  # as a user types it
    form.fields["lr"].setValue(0.002)  # not something fitting changes
    assert form.fit_keep() == {"image_size"}
    # a head-only win on a small folder changes the size, except where the user set it
    cfg = tiny_config(tmp_path, **dict(form.values(), model="efficientnet_lite0",
                                       weights="imagenet", freeze="early"))
    profile, won = DataProfile(80, 2, 500), TrialResult(20, 60, 19, 15)
    assert plan(cfg, profile, won).head_only["image_size"] != 224
    kept = plan(cfg, profile, won, keep=form.fit_keep())
    assert "image_size" not in kept.head_only
    assert not any(c.key == "image_size" for c in kept.changes)
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))  # chosen again: its values
    assert form.fit_keep() == frozenset()


def photos(tmp_path):
    return make_folder(tmp_path / "photos", classes=2, per_class=8, size=(80, 60))


def prepare(window, qtbot, folder):
    """Fit to data on, the head alone for the whole run (no trial: fitting only widens the
    validation share of a small folder, 0.1 -> 0.25), all set as a preset or a reopened run
    would: none of it by hand."""
    with qtbot.waitSignal(window.data_tab.scanned, timeout=30_000):
        window.data_tab.set_source(str(folder))
    window.model_tab.set_model("efficientnet_lite0", "imagenet")
    window.model_tab.set_freeze_spec("backbone")
    window.train_tab.form.set_values(dict(epochs=1, freeze_epochs=2, image_size=48,
                                          batch_size=8, val_split=0.1, fit_data=True,
                                          precision="32", ema=0.0, tta=False))


def run_to_the_end(window, qtbot):
    tab = window.train_tab
    with qtbot.waitSignal(tab.runFinished, timeout=180_000) as finished:
        tab.start()
    assert finished.args[0].status == "finished", finished.args[0].message
    qtbot.waitUntil(lambda: not tab.running, timeout=30_000)
    return json.loads((tab.worker.trainer.store.dir / "config.json").read_text())


def test_fitting_shows_its_values_and_a_hand_set_one_survives_it(window, qtbot, tmp_path):
    tab, form = window.train_tab, window.train_tab.form
    prepare(window, qtbot, photos(tmp_path))
    first = run_to_the_end(window, qtbot)
    assert first["val_split"] == 0.25  # fitted: the form said 0.1
    assert form.values()["val_split"] == 0.25  # the field shows what ran
    assert not tab.fit_note.isHidden() and "0.1 → <b>0.25</b>" in tab.fit_note.text()
    form.fields["val_split"].setValue(0.15)  # the user's own share
    form.fields["image_size"].setValue(64)
    assert tab.fit_note.isHidden()  # it spoke of other values
    second = run_to_the_end(window, qtbot)
    assert tab.worker.keep == {"val_split", "image_size"}
    assert (second["val_split"], second["image_size"]) == (0.15, 64)
    assert tab.fit_note.isHidden()  # nothing was fitted: no note of the first run's


def test_the_fields_show_what_a_fitted_run_uses(window, qtbot):
    tab, form = window.train_tab, window.train_tab.form
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    form.fields["val_split"].setValue(0.2)
    tab.kept = {"val_split": 0.2}  # what start() records of the run it launches
    changes = (("image_size", 176, 256), ("epochs", 3, 10), ("freeze", "early,depthwise:5",
               "backbone"), ("freeze_epochs", 100, 10), ("head_init", "random", "imagenet"))
    tab._on_recipe_fitted(RecipeFitted(changes, HEAD_ONLY, "", (HEAD_ONLY,) * 5,
                                       TrialResult(20, 60, 19, 15)))
    v = form.values()
    assert (v["image_size"], v["epochs"], v["freeze_epochs"], v["head_init"]) == \
        (256, 10, 10, "imagenet")
    assert window.model_tab.freeze_spec == "backbone"
    assert not window.model_tab.ticked_by_hand
    note = tab.fit_note.text()
    assert "Image size (px): 176 → <b>256</b>" in note and "Epochs: 3 → <b>10</b>" in note
    assert "Kept as you set them: Validation share 0.2" in note
    assert form.fit_keep() == {"val_split"}  # fitted values are not the user's edits
    form.preset.setCurrentIndex(form.preset.findData("seed"))
    assert tab.fit_note.isHidden()


def test_hand_edits_are_remembered_across_sessions(qtbot):
    from gui.main_window import MainWindow

    first = MainWindow()
    qtbot.addWidget(first)
    first.train_tab.form.fields["image_size"].setValue(192)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.train_tab.form.fit_keep() == {"image_size"}


def test_a_reopened_run_names_its_own_frozen_layers(window, tmp_path):
    """Opening a run puts its recipe in the form and its freeze in the Model tab: the plan
    sentence names that freeze, not the one the Model tab had before."""
    from core.training.trainer import Trainer

    run = tmp_path / "run"
    Trainer(tiny_config(make_folder(tmp_path / "d"), freeze="early"), run_dir=run).fit()
    window.model_tab.set_freeze_spec("backbone")
    window.train_tab.form.update_plan()
    assert window.train_tab.form.plan.text().startswith("All layers but the new head")
    window.open_run(str(run))
    assert window.train_tab.form.plan.text() == freeze_plan(2, 1, "early", 0.1)
