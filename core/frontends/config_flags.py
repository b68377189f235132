"""The ``train`` command's settings flags, generated from TrainConfig's field descriptions
(core.config.OPTIONS): one flag per setting, with its type, choices, help, valid range and
default; booleans as ``--flag/--no-flag``. Nothing here lists a setting by hand.

Where a setting's value comes from, lowest first: TrainConfig's default, ``--preset``,
``--config FILE`` (a run's own config.json, or any JSON object of settings), then the flags
typed on the command line.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.config import (DEFAULTS, OPTIONS, TrainConfig, apply_preset, flag, help_text,
                         value_type)
from core.errors import TransferLabError

NONE_WORD = "none"  # a nullable setting given as this is None ("--limit none": all images)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field. Flags not typed are absent from the parsed namespace
    (``argparse.SUPPRESS``), so ``given_settings`` tells typed values from defaults."""
    group = parser.add_argument_group(
        "settings", "Saved in the run's config.json. Each comes from, last wins: its default, "
        "--preset, --config FILE, the flag. A setting that fitting to the data would change, "
        "given as a flag, turns --fit-data off unless that is given too.")
    for name in OPTIONS:
        kind, nullable = value_type(name)
        common = dict(dest=name, default=argparse.SUPPRESS, help=flag_help(name))
        if kind is bool:
            group.add_argument(flag(name), action=argparse.BooleanOptionalAction, **common)
        else:
            group.add_argument(flag(name), type=_converter(kind, nullable),
                               choices=OPTIONS[name].choices or None,
                               metavar=OPTIONS[name].metavar or _metavar(kind, nullable),
                               **common)


def flag_help(name: str) -> str:
    """The setting's help, what it accepts and its default (argparse %-formats help)."""
    o, (kind, _) = OPTIONS[name], value_type(name)
    text = help_text(name)
    if o.range is not None:
        text += f"; {o.range.describe(kind is int)}"
    return f"{text} (default: {default_text(name)})".replace("%", "%%")


def default_text(name: str) -> str:
    value = DEFAULTS[name]
    if value is None:
        return OPTIONS[name].none_means
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _metavar(kind: type, nullable: bool) -> str | None:
    word = {int: "N", float: "X"}.get(kind)
    return f"{word}|{NONE_WORD}" if word and nullable else word


def _converter(kind: type, nullable: bool):
    def convert(text: str):
        if nullable and text.lower() == NONE_WORD:
            return None
        return kind(text)

    convert.__name__ = kind.__name__  # argparse's message: "invalid int value: 'many'"
    return convert


def given_settings(args: argparse.Namespace) -> dict:
    """The settings typed on this command line, by field name."""
    return {name: getattr(args, name) for name in OPTIONS if hasattr(args, name)}


def read_settings_file(path: str | Path) -> dict:
    """The settings of a JSON file: a run's config.json (what it records about its making is
    left out) or a hand-written object with some settings. Unknown names and wrong values
    are one error line that names the file."""
    from core.version import PROVENANCE_KEY

    path = Path(path).expanduser()
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TransferLabError(f"Settings file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise TransferLabError(f"Cannot read settings from {path}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(settings, dict):
        raise TransferLabError(f"{path} holds no settings (a JSON object of setting names "
                               f"and values, like a run's config.json).")
    settings.pop(PROVENANCE_KEY, None)
    try:
        TrainConfig.from_dict(settings, strict=True).validate()
    except TransferLabError as exc:
        raise TransferLabError(f"{path}: {exc}") from None
    return settings


def config_from_args(args: argparse.Namespace, validate: bool = True) -> TrainConfig:
    """Default < --preset < --config FILE < typed flags. Fitting to the data (--fit-data, on
    in the fast presets) is turned off by a typed setting it would change, unless
    --fit-data is typed too."""
    from core.recipe import FIT_KEYS

    cfg = TrainConfig()
    if getattr(args, "preset", None):
        apply_preset(cfg, args.preset)
    if getattr(args, "config", None):
        for key, value in read_settings_file(args.config).items():
            setattr(cfg, key, value)
    given = given_settings(args)
    for key, value in given.items():
        setattr(cfg, key, value)
    if "fit_data" not in given and given.keys() & set(FIT_KEYS):
        cfg.fit_data = False  # a setting asked for by name wins over the preset's fitting
    args.fit_keep = frozenset(given.keys() & set(FIT_KEYS))  # --fit-data leaves these as given
    return cfg.validate() if validate else cfg
