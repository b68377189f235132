"""One process at a time on a run (an OS lock, core.runs.lock), and a resume of any kind,
an elastic restart included, continues the run exactly as it was recorded."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from core.errors import TransferLabError
from core.runs import RunBusy, RunRecord, layout
from core.runs.store import delete_run
from core.training.trainer import Trainer
from tests.conftest import REPO, clone_run, tiny_config


@pytest.mark.slow
def test_two_resumes_started_together_train_the_run_once(trained_run, tmp_path):
    run, _ = clone_run(trained_run, tmp_path)
    env = {"TRANSFERLAB_HOME": str(tmp_path / "home"), "TRANSFERLAB_OFFLINE": "1",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO / "main.py"), "train", "--out", str(run), "--resume",
           "--epochs", "5", "--threads", "1"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], outs
    refused = outs[codes.index(2)][1]
    assert refused.startswith(f"error: {run} is being trained by another process")
    assert len(refused.strip().splitlines()) == 1
    record = RunRecord(run)
    assert [h["epoch"] for h in record.history] == [1, 2, 3, 4, 5]  # once each
    assert [b["epoch"] for b in record.batches] == [e for e in range(1, 6) for _ in range(3)]
    assert record.status["status"] == "finished" and not record.busy


def test_a_run_being_trained_cannot_be_resumed_or_deleted(trained_run, tmp_path):
    run, data = clone_run(trained_run, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from core.runs import RunLock; "
         "lock = RunLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); "
         "time.sleep(120)", str(run)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert RunRecord(run).busy
        with pytest.raises(RunBusy, match="being trained by another process"):
            Trainer(tiny_config(data, epochs=3, ema=0.9), run_dir=run, resume=True).fit()
        with pytest.raises(TransferLabError, match="nothing was deleted"):
            delete_run(run)
        assert (run / layout.CONFIG_FILE).exists()
    finally:
        holder.kill()
        holder.wait()
    assert not RunRecord(run).busy  # the OS let go with the process
    assert delete_run(run) == [] and not run.exists()


def test_an_elastic_restart_continues_the_run_as_recorded(trained_run, tmp_path):
    """torchrun runs the same command line again after a crash: its settings (not fitted,
    fewer epochs than done) must not replace the run's."""
    from core.training.device import Precision
    from core.training.distributed import Distributed
    from core.training.loop import Runtime

    run, data = clone_run(trained_run, tmp_path)  # a run planned for 3 epochs, 2 done:
    config = json.loads((run / layout.CONFIG_FILE).read_text())
    (run / layout.CONFIG_FILE).write_text(json.dumps(dict(config, epochs=3)))
    before = (run / layout.CONFIG_FILE).read_text()
    command_line = tiny_config(data, epochs=1, image_size=48, batch_size=4, ema=0.9)
    cpu = torch.device("cpu")
    restarted = Runtime(cpu, Precision("32", cpu), Distributed(restart_count=1, run_id="job"))
    trainer = Trainer(command_line, run_dir=run, runtime=restarted)
    result = trainer.fit()
    assert (result.status, result.epochs_done) == ("finished", 3)
    assert (trainer.cfg.image_size, trainer.cfg.batch_size) == (32, 8)
    assert trainer.cfg.crop == config["crop"] and trainer.data.crop == config["crop"]
    assert json.loads((run / layout.CONFIG_FILE).read_text()) == json.loads(before)
