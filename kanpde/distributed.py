"""Data-parallel training across processes (``torchrun``): the process group, shards and sums over ranks.

Every rank draws the same global collocation points from the seed and trains on its own
contiguous shard of each part (interior, boundary, initial). Each rank's loss term is its
share Σ_local e² / N_global of the global mean (the counts are summed over ranks), so that
summing losses and gradients over ranks gives exactly the single-process loss and gradient
on the same global points, up to round-off. Summing the gradients is one ``all_reduce`` per
loss evaluation, done by hand rather than by DistributedDataParallel: the model is called
through ``Field.jet`` (not ``forward``, where DDP prepares its reduction), L-BFGS evaluates the
loss several times per step, grid extension replaces the parameters, and DDP would average
where the shares must be added. Identical gradients and losses give every rank the same
optimizer steps and line-search decisions, so parameters stay identical; :func:`check_identical`
verifies it. This module is a low layer: it imports only torch and the points.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from kanpde.geometry import Points

__all__ = ["World", "SINGLE", "from_environment", "process_group", "local_device", "shard", "sum_over_ranks",
           "reduce_gradients", "broadcast_state", "broadcast_object", "on_main", "check_identical"]

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: ``rank`` of ``size`` (``local_rank`` on its node)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only one that writes files and shows progress."""
        return self.rank == 0


SINGLE = World()
"""The world of a plain single-process run."""


def _environment_integer(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdecimal():
        raise ValueError(f"{name}: environment variable must be a non-negative integer, got {value!r}")
    return int(value)


def from_environment() -> World:
    """The world set up by torchrun (WORLD_SIZE, RANK, LOCAL_RANK), or by an existing process group."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _environment_integer("LOCAL_RANK", 0))
    size = _environment_integer("WORLD_SIZE", 1)
    rank, local_rank = _environment_integer("RANK", 0), _environment_integer("LOCAL_RANK", 0)
    if size < 1 or rank >= size:
        raise ValueError(f"RANK: must be below WORLD_SIZE ({size}), got {rank}")
    return World(rank, size, local_rank)


def local_device(device: torch.device, world: World) -> torch.device:
    """One GPU per rank on its node (``cuda:LOCAL_RANK``); CPU ranks share the CPU."""
    if world.parallel and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


@contextmanager
def process_group(device: torch.device) -> Iterator[World]:
    """The world of this process, with its process group joined for the duration (gloo on CPU, nccl on
    CUDA). A group that already exists (the caller's) is used and left alone."""
    world = from_environment()
    created = world.parallel and not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield world
        if created:  # all ranks done before any closes its connections (rank 0 writes the results last)
            dist.barrier()
    finally:
        if created:
            dist.destroy_process_group()


# -- data ---------------------------------------------------------------------------------
def shard(points: Points, world: World) -> Points:
    """This rank's contiguous part of every kind of point (sizes differ by at most one across ranks)."""
    if not world.parallel:
        return points

    def part(x: torch.Tensor) -> torch.Tensor:
        return torch.tensor_split(x, world.size)[world.rank]

    return Points(part(points.interior), part(points.boundary), part(points.boundary_face),
                  part(points.boundary_normal), part(points.initial))


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks (detached; a copy: the argument is left as it was)."""
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total


def reduce_gradients(parameters: Iterable[torch.nn.Parameter], values: torch.Tensor) -> torch.Tensor:
    """Sum every parameter's gradient and ``values`` over ranks, in one all_reduce; returns the summed values.

    A missing gradient counts as zero, so that every rank sends the same layout.
    """
    parameters = [p for p in parameters if p.requires_grad]
    gradients = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in parameters]
    flat = torch.cat([*gradients, values.detach().reshape(-1).to(gradients[0].dtype if gradients else values.dtype)])
    dist.all_reduce(flat)
    pieces = torch.split(flat, [p.numel() for p in parameters] + [values.numel()])
    for parameter, gradient in zip(parameters, pieces):
        parameter.grad = gradient.view_as(parameter)
    return pieces[-1].view_as(values)


# -- state --------------------------------------------------------------------------------
def broadcast_state(module: torch.nn.Module, world: World) -> None:
    """Copy rank 0's parameters and buffers (grids included) into every rank's ``module``, in place."""
    if world.parallel:
        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, 0)


def broadcast_object(value: T, world: World) -> T:
    """Rank 0's ``value`` (any picklable object, e.g. a checkpoint read from disk) on every rank."""
    if not world.parallel:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, 0)
    return box[0]


def on_main(action: Callable[[], T], world: World) -> T | None:
    """Run ``action`` on rank 0 only (the other ranks get None); an exception it raises (a refused
    run directory, say) is raised on every rank, so that none waits for the others forever."""
    result, failure = None, None
    if world.is_main:
        try:
            result = action()
        except Exception as error:  # handed to the other ranks, then raised everywhere
            failure = error
    failure = broadcast_object(failure, world)
    if failure is not None:
        raise failure
    return result


def check_identical(module: torch.nn.Module, world: World) -> None:
    """Raise if any parameter or buffer differs between ranks (bitwise: elementwise max equals min)."""
    if not world.parallel:
        return
    state = module.state_dict()
    flat = torch.cat([tensor.detach().reshape(-1).double() for tensor in state.values()])
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    if torch.equal(high, low):
        return
    offsets = torch.tensor([tensor.numel() for tensor in state.values()]).cumsum(0)
    first = int(torch.searchsorted(offsets, int((high != low).nonzero()[0]), right=True))
    raise RuntimeError(f"data-parallel training: {list(state)[first]} differs between ranks "
                       f"(max difference {float((high - low).abs().max()):.3e})")
