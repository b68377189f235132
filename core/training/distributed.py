"""Several processes, one run: torchrun's environment, the process group and DDP.

``torchrun --nproc_per_node=N main.py train ...`` (or ``--nnodes=M`` with a c10d rendezvous)
sets RANK, WORLD_SIZE and LOCAL_RANK; ``Distributed.from_env`` reads them and
``init`` joins the group (gloo on CPU, nccl on CUDA). With one process every method is a
cheap no-op, so the loop has no special case for it.

The rules the loop follows:
- ``--batch-size`` is the global batch. An epoch's N images are cut into ceil(N / B)
  batches whose sizes differ by at most one (core.data.batches: the same cut for any number
  of processes, so W processes take the steps one process takes). Each global batch (the
  same seeded order on every rank) is cut into contiguous shares, the first ``n mod W``
  ranks taking one image more.
- Each rank's loss is scaled by ``W * n_rank / B`` so that DDP's averaged gradient is exactly
  the gradient of the global batch's mean loss.
- Validation is split into contiguous shards without padding and the confusion matrix and
  loss sum are all-reduced: every image is counted once.
- BatchNorm layers that train normalise with each rank's own batch statistics; their
  running statistics are averaged over the ranks before every validation, so all ranks
  validate, and model.pt holds, one model.
- Only rank 0 writes files and logs; the wrapper is rebuilt with the optimizer whenever the
  trainable set changes (changing ``requires_grad`` under a live DDP breaks gradient sync).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    restart_count: int = 0  # torchrun's TORCHELASTIC_RESTART_COUNT: > 0 after a restart
    run_id: str = ""
    initialised: bool = False

    @classmethod
    def from_env(cls, env=None) -> "Distributed":
        env = os.environ if env is None else env
        return cls(rank=int(env.get("RANK", 0)), world=int(env.get("WORLD_SIZE", 1)),
                   local_rank=int(env.get("LOCAL_RANK", 0)),
                   restart_count=int(env.get("TORCHELASTIC_RESTART_COUNT", 0) or 0),
                   run_id=env.get("TORCHELASTIC_RUN_ID", ""))

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def init(self, device: torch.device) -> None:
        import torch.distributed as dist

        if not self.enabled or self.initialised or dist.is_initialized():
            self.initialised = self.initialised or (self.enabled and dist.is_initialized())
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend)
        self.initialised = True

    def close(self) -> None:
        import torch.distributed as dist

        if self.initialised and dist.is_initialized():
            dist.destroy_process_group()
        self.initialised = False

    # --- collectives (no-ops with one process) --------------------------------------------
    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist
            dist.barrier()

    def all_reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all ranks, in place."""
        if self.enabled:
            import torch.distributed as dist
            dist.all_reduce(tensor)
        return tensor

    @torch.no_grad()
    def average_batchnorm_(self, module: nn.Module) -> None:
        """Every rank's BatchNorm running statistics replaced by their mean over the ranks.
        BatchNorm layers that train update their statistics from each rank's own share, so
        without this the ranks would validate W slightly different models while model.pt
        holds rank 0's (PyTorch's SyncBatchNorm runs on GPUs only; this works on gloo too)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        buffers = [b for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for b in (m.running_mean, m.running_var) if b is not None]
        if not buffers:
            return
        flat = torch.cat([b.detach().flatten().double() for b in buffers])
        dist.all_reduce(flat)
        flat /= self.world
        for b, avg in zip(buffers, flat.split([b.numel() for b in buffers])):
            b.copy_(avg.view_as(b))

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (a run folder's path, say)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # --- sharding ------------------------------------------------------------------------
    def share(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items (sizes differ by at most one)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """DDP over ``module``'s trainable parameters (rebuilt by the loop on every change)."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        return DDP(module, device_ids=ids, forward_sync_buffers=False)
