"""The tuned malloc setting: main.py restarts itself with it (core/allocator.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import allocator

REPO = Path(__file__).resolve().parents[1]
glibc_only = pytest.mark.skipif(allocator.reexec_env({}) is None,
                                reason="the tuned setting is for glibc on Linux")


@glibc_only
def test_the_setting_is_added_to_what_the_user_has():
    env = allocator.reexec_env({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})
    assert env["GLIBC_TUNABLES"] == f"glibc.cpu.hwcaps=-AVX512F:{allocator.TUNABLES}"
    assert allocator.tuned(env)


@pytest.mark.parametrize("environ", [
    {"GLIBC_TUNABLES": allocator.TUNABLES},  # already restarted
    {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=5"},  # the user's own choice wins
    {"TRANSFERLAB_MALLOC": "system"},  # opted out
])
def test_no_restart_when_set_or_declined(environ):
    assert allocator.reexec_env(environ) is None


def run_train(folder: Path, out: Path, **env_extra) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "train", "--model",
                           "mobilenet_v2", "--weights", "none", "--data", str(folder),
                           "--epochs", "1", "--freeze-epochs", "0", "--image-size", "32",
                           "--batch-size", "8", "--out", str(out)],
                          env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@glibc_only
@pytest.mark.slow
def test_the_cli_restarts_itself_with_the_tuned_allocator(image_folder, tmp_path):
    out = run_train(image_folder, tmp_path / "a")
    assert "glibc malloc tuned" in out
    assert "peak RAM" in out  # the price of keeping freed memory is shown
    out = run_train(image_folder, tmp_path / "b", TRANSFERLAB_MALLOC="system")
    assert "system malloc" in out
