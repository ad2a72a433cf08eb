"""Process group, device and model wrapping for one process or a torchrun launch.

torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; without them this is a single process and
nothing distributed is touched. gloo on CPU (tests), NCCL on GPUs. DDP replicates the model;
FSDP2 (``fully_shard``, one unit per decoder layer, then the root) shards it, on GPUs and, over
gloo, on CPU (which is how CI exercises the sharded code and its checkpoints).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dataengine.core.errors import DataEngineError


@dataclass
class DistEnv:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device_pref: str = "auto") -> DistEnv:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise DataEngineError("runtime.device is cuda but no CUDA device is available")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=device if use_cuda else None)
    return DistEnv(rank, world, local_rank, device)


def shutdown(env: DistEnv) -> None:
    if env.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()


def mean_across_ranks(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.active:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= env.world
    return value


def sum_across_ranks(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.active:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def wrap_model(model, env: DistEnv, strategy: str, bf16: bool):
    """DDP or FSDP2 around ``model`` (already on its device); unchanged for one process."""
    if not env.active:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[env.local_rank] if env.device.type == "cuda" else None)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
    for layer in model.model.layers:
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    return model


def gradient_sync(model, enabled: bool, strategy: str, env: DistEnv):
    """Context that skips the gradient all-reduce on all but the last micro-batch."""
    import contextlib

    if not env.active:
        return contextlib.nullcontext()
    if strategy == "ddp":
        return contextlib.nullcontext() if enabled else model.no_sync()
    model.set_requires_gradient_sync(enabled)  # FSDP2
    return contextlib.nullcontext()


def parameter_checksums(model, env: DistEnv) -> list[float] | None:
    """Every rank's float64 sum of |parameters| (replicated models only): equal when in sync."""
    inner = getattr(model, "module", model)
    local = torch.tensor(sum(float(p.detach().double().abs().sum()) for p in inner.parameters()), dtype=torch.float64)
    if not env.active:
        return [float(local)]
    gathered = [torch.zeros_like(local) for _ in range(env.world)]
    dist.all_gather(gathered, local)
    return [float(t) for t in gathered]
