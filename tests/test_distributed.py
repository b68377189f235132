"""Several processes, one run: torchrun with gloo on this CPU machine.

Tolerance: parameters of a 2-process run and of a 1-process run with the same global batch
and seed agree within atol 1e-4 (gradients are summed in another order; measured here: at
most 6e-8 apart after the freeze/unfreeze run, 1.3e-5 with the live toggle, where layer4
trains longer; a wrongly scaled gradient moves them ~1e-2); both ranks end bitwise identical; validation accuracy is
equal exactly (every image counted once). ResNet-18 because it has no dropout: dropout draws
its own random mask in each process, so a network with dropout trains statistically, not
bitwise, like the single process.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import make_folder

pytestmark = pytest.mark.slow  # torchrun processes: `make test-slow` (CI runs it too)

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "dist_worker.py"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def config(folder, **kw) -> dict:
    base = dict(model="resnet18", weights="none", data=str(folder), epochs=2,
                freeze_epochs=1, image_size=32, batch_size=9, val_split=0.25, log_every=0,
                optimizer="sgd", lr=0.05, bn_policy="eval", flip=True, seed=1, threads=1,
                device="cpu", precision="32")  # "auto" would time bf16 in each run anew
    base.update(kw)
    return base


def env() -> dict:
    # TORCH_DISABLE_SHARE_RDZV_TCP_STORE: with torchrun's shared rendezvous store a restarted
    # worker can read the previous attempt's addresses and fail to connect (pytorch#135712);
    # the README's elastic command sets it too.
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO),
             TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    e.pop("WORLD_SIZE", None)
    e.pop("RANK", None)
    return e


def run_worker(cfg: dict, out: Path, params: Path, *extra, nproc: int = 1, torchrun=(),
               timeout=240) -> subprocess.CompletedProcess:
    args = [str(WORKER), "--config", json.dumps(cfg), *(["--out", str(out)] if out else []),
            "--params", str(params), *extra]
    if nproc == 1 and not torchrun:
        cmd = [sys.executable, *args]
    else:
        cmd = [*TORCHRUN, *torchrun, f"--nproc_per_node={nproc}", *args]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def load(params: Path, rank: int) -> dict:
    return torch.load(f"{params}.rank{rank}", weights_only=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    # 36 images: 27 train (3 global batches of 9) / 9 validation
    return make_folder(tmp_path_factory.mktemp("dist") / "pets")


def assert_parity(single: dict, ranks: list[dict]) -> None:
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), f"ranks differ at {key}"
        if value.is_floating_point():
            assert torch.allclose(value, single["state"][key], rtol=0, atol=1e-4), key
    assert [h["val_acc"] for h in ranks[0]["history"]] == \
        [h["val_acc"] for h in single["history"]]
    for a, b in zip(ranks[0]["history"], single["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


@pytest.mark.parametrize("toggle", [None, "1:1"], ids=["freeze-unfreeze", "live-toggle"])
def test_two_processes_train_like_one(folder, tmp_path, toggle):
    """Epoch 1 frozen (cached prefix, DDP over the tail), epoch 2 unfrozen (DDP rebuilt over
    the whole network); optionally a live unfreeze of layer4 after batch 1."""
    cfg = config(folder)
    extra = ["--toggle-at", toggle, "--toggle-path", "layer4"] if toggle else []
    run_worker(cfg, tmp_path / "one", tmp_path / "p1", *extra)
    proc = run_worker(cfg, tmp_path / "two", tmp_path / "p2", *extra, nproc=2,
                      torchrun=["--standalone"])
    assert_parity(load(tmp_path / "p1", 0), [load(tmp_path / "p2", r) for r in (0, 1)])
    assert "2 processes" in proc.stdout  # the device line names the job's size
    assert proc.stdout.count("Epoch 2 End") == 1  # rank 0 alone logs
    assert (tmp_path / "two" / "model.pt").exists()
    if toggle:
        assert "User unfroze layer4" in proc.stdout


def test_two_processes_skip_the_images_one_process_skips(folder, tmp_path):
    """--skip-easy: each rank records the losses of its shares; the tables are summed, so
    both ranks draw the same images, the ones a single process draws."""
    cfg = config(folder, epochs=3, freeze_epochs=1, skip_easy=0.5)
    one = run_worker(cfg, tmp_path / "one", tmp_path / "p1", "--skip-from", "0")
    two = run_worker(cfg, tmp_path / "two", tmp_path / "p2", "--skip-from", "0", nproc=2,
                     torchrun=["--standalone"])
    assert_parity(load(tmp_path / "p1", 0), [load(tmp_path / "p2", r) for r in (0, 1)])
    visits = [line for line in one.stdout.splitlines() if " visits " in line]
    assert len(visits) == 2 and "of 27 training images" in visits[0]
    assert visits == [line for line in two.stdout.splitlines() if " visits " in line]


def test_uneven_shares_still_count_every_validation_image_once(tmp_path):
    """3 processes, 9 validation images in a batch: shares of 3; 27 train images in global
    batches of 8 cut evenly (7, 7, 7, 6: shares 3/2/2 and 2/2/2), as one process cuts them."""
    folder = make_folder(tmp_path / "pets")
    cfg = config(folder, batch_size=8, epochs=1, freeze_epochs=0)
    run_worker(cfg, tmp_path / "one", tmp_path / "p1")
    run_worker(cfg, tmp_path / "three", tmp_path / "p3", nproc=3, torchrun=["--standalone"])
    single = load(tmp_path / "p1", 0)
    assert_parity(single, [load(tmp_path / "p3", r) for r in (2, 0)])
    val = [h["val_acc"] * 9 / 100 for h in single["history"]]
    assert all(abs(v - round(v)) < 1e-6 for v in val)  # every image counted once


def test_a_short_last_batch_is_cut_alike_for_one_process_and_two(tmp_path):
    """72 images, batch 16, 10% validation: 66 training images, which left a 2-image last
    batch that one process kept and two processes (1 image each) joined to the one before:
    after 2 epochs the parameters were 0.05 apart. Now both take 5 batches of 13-14."""
    folder = make_folder(tmp_path / "pets", per_class=24)
    cfg = config(folder, batch_size=16, val_split=0.1, epochs=2, freeze_epochs=1)
    run_worker(cfg, tmp_path / "one", tmp_path / "p1")
    run_worker(cfg, tmp_path / "two", tmp_path / "p2", nproc=2, torchrun=["--standalone"])
    assert_parity(load(tmp_path / "p1", 0), [load(tmp_path / "p2", r) for r in (0, 1)])


def test_batchnorm_that_trains_validates_the_model_that_is_saved(folder, tmp_path):
    """--bn train on 2 processes: each updates its own running statistics, so the epoch's
    validation counted two slightly different models while model.pt held rank 0's. The
    statistics are averaged before validation: what the run reports is what evaluating
    model.pt on the same split gives, and both ranks hold the same buffers."""
    from core.inference.evaluate import evaluate_model

    # (a small step: the loss stays where probabilities are exact; evaluate, like every model
    # format, scores probabilities, so a loss beyond -log(float32's tiny) would be cut there)
    cfg = config(folder, epochs=1, freeze_epochs=0, bn_policy="train", flip=False, lr=0.005)
    run_worker(cfg, tmp_path / "run", tmp_path / "p", nproc=2, torchrun=["--standalone"])
    ranks = [load(tmp_path / "p", r) for r in (0, 1)]
    reported = ranks[0]["history"][-1]
    evaluated = evaluate_model(tmp_path / "run" / "model.pt")
    assert len(evaluated.images) == 9 and reported["val_loss"] < 50
    assert evaluated.loss == pytest.approx(reported["val_loss"], rel=1e-4)
    assert evaluated.accuracy == pytest.approx(reported["val_acc"], abs=1e-9)
    stats = [k for k in ranks[0]["state"] if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(ranks[0]["state"][k], ranks[1]["state"][k]) for k in stats)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_on_localhost_finish_one_run(folder, tmp_path):
    port = free_port()
    cfg = config(folder, epochs=1, freeze_epochs=0)
    procs = []
    for node in (0, 1):
        cmd = [*TORCHRUN, "--nnodes=2", f"--node_rank={node}", "--nproc_per_node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=tl",
               str(WORKER), "--config", json.dumps(cfg), "--out", str(tmp_path / "run"),
               "--params", str(tmp_path / "p")]
        procs.append(subprocess.Popen(cmd, env=env(), cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    a, b = load(tmp_path / "p", 0), load(tmp_path / "p", 1)
    assert all(torch.equal(v, b["state"][k]) for k, v in a["state"].items())
    assert (tmp_path / "run" / "model.pt").exists()


def test_a_killed_worker_restarts_and_resumes_from_the_checkpoint(folder, tmp_path):
    cfg = config(folder, epochs=3, freeze_epochs=0)
    run = tmp_path / "run"
    proc = run_worker(cfg, run, tmp_path / "p", "--kill-at", "2:2", "--kill-rank", "1",
                      nproc=2, torchrun=["--standalone", "--max-restarts=1"])
    assert f"Resuming {run} after epoch 1" in proc.stdout
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2", "3"]  # one continuous history
    assert not list(run.glob(".*.tmp"))  # nothing half-written left behind
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2
    final = load(tmp_path / "p", 0)
    assert final["status"] == "finished" and len(final["history"]) == 3


def test_jobs_without_out_get_their_own_folder_which_a_restart_finds_again(folder, tmp_path,
                                                                        isolated_home):
    """torchrun's default (static) rendezvous has no id: TORCHELASTIC_RUN_ID is "none" in every
    job, which named every such job's folder torchrun-none-<model>."""
    runs = isolated_home / "data" / "runs"
    cfg = config(folder, epochs=2, freeze_epochs=0)
    first = run_worker(cfg, None, tmp_path / "p1", "--kill-at", "2:1", "--kill-rank", "0",
                       torchrun=[f"--master-port={free_port()}", "--max-restarts=1"])
    [run] = runs.iterdir()
    assert run.name.startswith("torchrun-") and "-none-" not in run.name
    assert f"Resuming {run} after epoch 1" in first.stdout  # the restart found its folder
    assert [h["epoch"] for h in load(tmp_path / "p1", 0)["history"]] == [1, 2]
    run_worker(cfg, None, tmp_path / "p2", torchrun=[f"--master-port={free_port()}"])
    assert len(list(runs.iterdir())) == 2  # the next job: a folder of its own
