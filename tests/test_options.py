"""Options described once (issue 22): every TrainConfig setting carries its help, range and
choices; validate(), the CLI's train flags and the Train form all follow that description,
and these tests fail when one of them drifts."""
from __future__ import annotations

import argparse
import html
import math
import subprocess
import sys
from dataclasses import fields

import pytest

from core.config import (DEFAULTS, OPTIONS, PRESETS, TrainConfig, flag, help_text,
                         value_problem, value_type)
from core.errors import TransferLabError
from core.frontends.cli import build_parser, main
from core.frontends.config_flags import config_from_args
from tests.conftest import REPO

RANGED = [name for name, o in OPTIONS.items() if o.range is not None]


def train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def flag_actions() -> dict[str, argparse.Action]:
    return {a.dest: a for a in train_parser()._actions if a.option_strings}


def outside(name: str) -> list:
    """Values just outside the setting's range, on each side that has an end."""
    rng, (kind, _) = OPTIONS[name].range, value_type(name)
    step = 1 if kind is int else 1e-6
    out = []
    if rng.low is not None:
        out.append(rng.low if rng.low_open else rng.low - step)
    if rng.high is not None:
        out.append(rng.high if rng.high_open else rng.high + step)
    return out


# --- the description itself ------------------------------------------------------------------
def test_every_setting_has_help_and_a_valid_default():
    for f in fields(TrainConfig):
        assert f.name in OPTIONS and OPTIONS[f.name].help.strip(), f"{f.name} has no help"
        assert len(help_text(f.name)) > 10  # every {placeholder} resolves
        assert value_problem(f.name, DEFAULTS[f.name]) == "", f.name
    TrainConfig().validate()


@pytest.mark.parametrize("name", RANGED)
def test_validate_refuses_just_outside_each_range(name):
    for value in outside(name):
        with pytest.raises(TransferLabError, match=f"^{flag(name)} must be "):
            TrainConfig(**{name: value}).validate()


@pytest.mark.parametrize("name", [n for n in OPTIONS if value_type(n)[0] is float])
def test_numbers_must_be_finite(name):
    with pytest.raises(TransferLabError, match="got nan"):
        TrainConfig(**{name: math.nan}).validate()


@pytest.mark.parametrize("settings, words", [
    ({"epochs": "5"}, "--epochs must be a whole number, got '5'"),
    ({"precision": 32}, "--precision must be a string, got 32"),
    ({"flip": 1}, "--flip must be true or false, got 1"),
    ({"model": "vgg99"}, "--model must be one of mobilenet_v2"),
    ({"device": "tpu"}, "--device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ({"limit": 0}, "--limit must be at least 1 (or left out: all images), got 0"),
    ({"image_size": 8}, "--image-size must be between 16 and 1024, got 8"),
])
def test_wrong_types_and_values_are_one_clear_message(settings, words):
    with pytest.raises(TransferLabError) as exc:
        TrainConfig(**settings).validate()
    assert words in str(exc.value)


def test_from_dict_strict_names_unknown_settings():
    assert TrainConfig.from_dict({"epochs": 3, "learning_rate": 1}).epochs == 3
    with pytest.raises(TransferLabError, match="Unknown setting 'learning_rate'"):
        TrainConfig.from_dict({"epochs": 3, "learning_rate": 1}, strict=True)


# --- the CLI ---------------------------------------------------------------------------------
def test_every_setting_is_one_generated_flag_with_its_help():
    actions = flag_actions()
    hand_written = set(actions) - set(OPTIONS)
    assert hand_written == {"help", "preset", "config", "out", "resume"}
    for name, option in OPTIONS.items():
        a = actions[name]
        assert flag(name) in a.option_strings and a.default is argparse.SUPPRESS
        assert help_text(name) in a.help.replace("%%", "%"), name
        assert tuple(a.choices or ()) == option.choices, name
        if value_type(name)[0] is bool:
            assert "--no-" + flag(name)[2:] in a.option_strings


def test_the_help_states_the_real_default():
    actions = flag_actions()
    assert "(default: auto)" in actions["bn_policy"].help  # it said frozen-eval once
    assert "(default: 224)" in actions["image_size"].help
    assert "(default: all images)" in actions["limit"].help
    assert "(default: on)" in actions["channels_last"].help
    assert "timed check on the real model" in actions["precision"].help


def test_each_default_given_as_a_flag_parses_back_to_itself():
    argv = ["train"]
    for name, value in DEFAULTS.items():
        if isinstance(value, bool):
            argv.append(flag(name) if value else "--no-" + flag(name)[2:])
        else:
            argv += [flag(name), "none" if value is None else str(value)]
    assert config_from_args(build_parser().parse_args(argv)).to_dict() == DEFAULTS


def test_flags_override_presets_and_only_typed_flags_count():
    args = build_parser().parse_args(["train", "--preset", "fast-cpu", "--epochs", "4",
                                      "--no-tta", "--limit", "none"])
    cfg = config_from_args(args)
    assert cfg.epochs == 4 and cfg.tta is False and cfg.limit is None
    assert cfg.model == PRESETS["fast-cpu"]["model"] != DEFAULTS["model"]  # the preset's
    assert cfg.fit_data is False  # --epochs is a setting fitting would change


@pytest.mark.parametrize("name", RANGED)
def test_the_cli_refuses_just_outside_each_range_in_one_line(name, capsys):
    for value in outside(name):
        assert main(["train", f"{flag(name)}={value!r}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag(name)} must be ") and err.count("\n") == 1


# --- the Train form --------------------------------------------------------------------------
@pytest.fixture
def form(qtbot):
    from gui.train_form import TrainForm

    f = TrainForm()
    qtbot.addWidget(f)
    return f


def test_the_form_starts_at_core_defaults_with_core_choices_and_help(form):
    from PySide6.QtWidgets import QComboBox

    from gui.train_form import DATA_COMBOS, field_label

    values = form.values()
    for key, w in form.fields.items():
        assert values[key] == DEFAULTS[key], key
        text = help_text(key, refer=lambda other: f"'{field_label(other)}'")
        assert html.escape(text[1:], quote=False) in w.toolTip(), key
        if isinstance(w, QComboBox) and key not in DATA_COMBOS:
            assert tuple(w.itemText(i) for i in range(w.count())) == OPTIONS[key].choices


def test_the_form_holds_exactly_what_core_accepts(form):
    """Each spin box's ends are valid settings and sit on core's bounds (image size was
    32-512 against core's 16-1024, the backbone LR factor >= 1e-4 where core allows 0)."""
    from PySide6.QtWidgets import QCheckBox, QComboBox

    for key, w in form.fields.items():
        if isinstance(w, (QCheckBox, QComboBox)):
            continue
        rng, nullable = OPTIONS[key].range, value_type(key)[1]
        low = w.minimum() + (1 if nullable else 0)  # one below: "all images" (None)
        for end, bound in ((low, rng.low), (w.maximum(), rng.high)):
            assert value_problem(key, end) == "", (key, end)
            if bound is not None:
                assert end == pytest.approx(bound, abs=1e-9), (key, end, bound)
        if rng.high is None:
            assert w.maximum() >= 1e6, key


def test_values_the_form_cannot_hold_are_not_silently_changed(form):
    exact = {"lr": 1e-7, "ema": 0.99995, "backbone_lr_factor": 0.0, "image_size": 1024,
             "label_smoothing": 0.125, "limit": None, "val_split": 0.333}
    form.set_values(exact)
    got = form.values()
    assert {k: got[k] for k in exact} == exact
    TrainConfig(**got).validate()


def test_the_form_does_not_import_torch():
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from gui.train_form import TrainForm; f = TrainForm(); f.toolTip(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={"QT_QPA_PLATFORM": "offscreen",
                                                     "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False", out.stderr
