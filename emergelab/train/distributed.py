"""Data parallelism under torchrun: process group set-up and gradient averaging.

Launched by `torchrun --nproc_per_node=N`, every process runs the same entry point; gradients are
averaged with one all-reduce per step (gloo on CPU, NCCL on CUDA) and only rank 0 writes the run
directory. Without torchrun's environment this is a 1-process world and does nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_world(device: torch.device) -> World:
    """Join the torchrun process group if launched by torchrun, else a 1-process world."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return World()
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world


def average_gradients(model: torch.nn.Module, world: World) -> None:
    """Mean of each parameter's gradient over all ranks (one flat all-reduce)."""
    if world.world_size == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def all_reduce_mean(value: float, world: World, device: torch.device) -> float:
    if world.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / world.world_size


def all_reduce_sum(value: float, world: World, device: torch.device) -> float:
    if world.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def barrier(world: World) -> None:
    if world.world_size > 1:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
