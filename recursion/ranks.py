"""One replica under ``accelerate launch`` (or ``torchrun``): which process does what.

Training is data parallel: every process runs the Trainer on its shard of each batch. Everything
else — building the data, scoring, generating, selecting, probing, writing the manifest — runs on
rank 0 alone; the other ranks wait for rank 0's word before each training stage (:meth:`Ranks.agree`,
a broadcast on a CPU ``gloo`` group, so a long rank-0 stage never trips a GPU collective's
watchdog). A launcher that loses one process ends the others (torchrun's agent does), so a rank-0
error never leaves the rest waiting.

In a single process (no ``WORLD_SIZE`` above 1 in the environment) every method is trivial and no
process group is created.
"""
from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache

#: How long a waiting rank waits for rank 0 (a whole generation's scoring, generation and probes).
WAIT = timedelta(hours=48)


def world_size() -> int:
    """Processes of this launch (``WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's rank (``RANK``; 0 without a launcher)."""
    return int(os.environ.get("RANK", "0") or 0)


@lru_cache(maxsize=1)
def _join(cpu: bool):
    """Join this launch's process group (once per process) and make the gloo group ranks wait on."""
    import torch.distributed as dist
    from accelerate import PartialState

    PartialState(cpu=cpu, timeout=WAIT)
    return dist.new_group(backend="gloo", timeout=WAIT)


class Ranks:
    """This process's place in the launch; :meth:`from_env` joins the process group when there are several."""

    def __init__(self, rank: int = 0, world_size: int = 1, group=None):
        self.rank, self.world_size, self._group = rank, world_size, group

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the process that runs every stage but training's other shards."""
        return self.rank == 0

    @classmethod
    def from_env(cls, *, cpu: bool = False) -> Ranks:
        """The launch of this process; with several processes, the process group is initialized
        (accelerate's ``PartialState``: NCCL on GPUs, gloo with ``cpu``) and a gloo group made for waiting."""
        if world_size() <= 1:
            return cls()
        import torch.distributed as dist

        group = _join(cpu)
        return cls(dist.get_rank(), dist.get_world_size(), group)

    def agree(self, value=None):
        """Rank 0's ``value`` on every rank (each rank blocks until rank 0 gets here)."""
        if self.world_size <= 1:
            return value
        import torch.distributed as dist

        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]
