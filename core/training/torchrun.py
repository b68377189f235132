"""A torchrun job's name, for its run folder when no ``--out`` is given.

The folder must be the job's own (two jobs never share one) and the same after an elastic
restart (``--max-restarts``: the restarted workers resume it). torchrun's rendezvous id does
both when it has one (``--standalone`` makes one up; ``--rdzv-id ID``). With the default
static rendezvous it is "none" for every job, so "none" cannot name a folder: rank 0 draws a
random id once and keeps it in the store the torchrun agent hosts for the workers (it lives
as long as the job, across restarts), and every later attempt reads it back. Without such a
store there is no name that survives a restart: the user is asked for ``--out``.
"""
from __future__ import annotations

import os
import secrets
from datetime import timedelta

from core.errors import TransferLabError

JOB_KEY = "transferlab/job-id"


def job_id(run_id: str, env=None) -> str:
    """The job's name ("" outside torchrun). Called by rank 0 only."""
    env = os.environ if env is None else env
    if not run_id:
        return ""
    if run_id != "none":
        return run_id
    addr, port = env.get("MASTER_ADDR"), env.get("MASTER_PORT")
    if env.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or not addr or not port:
        raise TransferLabError(
            "This torchrun job has no rendezvous id and no store that outlives a restart, so "
            "it has no run folder of its own: give --out RUN_FOLDER (or torchrun --rdzv-id "
            "ID).")
    from torch.distributed import TCPStore

    store = TCPStore(addr, int(port), is_master=False, timeout=timedelta(seconds=60))
    value = store.compare_set(JOB_KEY, "", secrets.token_hex(4))  # the first attempt's wins
    return value.decode() if isinstance(value, bytes) else str(value)
