"""What makes a training run resumable and interruptible, and how it runs on several processes.

While `edgebert train --out DIR` runs, its work lives in `.DIR.partial/` next to DIR:
  state.pt        model, optimizer, scheduler, RNG states and progress, saved after every epoch and on
                  Ctrl-C or SIGTERM
  tokenizer.json  the (possibly extended) tokenizer, so a resumed run tokenizes identically
  best/           the best checkpoint so far (by the dev score)
On success `best/` becomes DIR and the partial directory is removed. `--resume` continues from state.pt.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError

STATE_FILE = "state.pt"
RESUMABLE_CHANGES = {"epochs", "patience"}  # config fields a resumed run may change


def partial_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


@dataclass
class Progress:
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # optimizer steps completed in the current epoch
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per evaluated epoch
    losses: list[float] = field(default_factory=list)  # training loss per optimizer step
    best: dict[str, Any] | None = None
    epochs_without_improvement: int = 0


def save_state(path: Path, model, optimizer, scheduler, progress: Progress, config: dict) -> None:
    """Write atomically: a crash while saving leaves the previous state intact."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": progress.__dict__,
        "config": config,
        "rng": {"python": random.getstate(), "numpy": _numpy_rng_state(), "torch": torch.get_rng_state()},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _numpy_rng_state() -> tuple:
    """numpy's RNG state with plain types (its ndarray would need unpickling numpy globals to load)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return kind, keys.tolist(), int(pos), int(has_gauss), float(cached)


def _load_plain(path: Path) -> dict:
    """Load with weights_only=True: tensors and plain containers only, never arbitrary pickled objects. A planted
    or foreign state.pt (one that would run code when unpickled) is refused instead of executed."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # UnpicklingError for disallowed globals, RuntimeError/EOFError for corrupt files
        raise InputError(
            f"{path} is not a training state this edgebert wrote (it holds objects other than tensors and plain "
            f"data, or it is corrupt: {str(exc).splitlines()[0][:200]}). It was not loaded. Start over with --force."
        ) from None
    if (
        not isinstance(state, dict)
        or not {"model", "optimizer", "scheduler", "progress", "config", "rng"} <= state.keys()
    ):
        raise InputError(f"{path} is not a training state this edgebert wrote. Start over with --force.")
    return state


def load_state(path: Path, model, optimizer, scheduler, config: dict) -> Progress:
    if not path.is_file():
        raise InputError(f"Nothing to resume: {path} does not exist. Start the run without --resume.")
    state = _load_plain(path)
    changed = sorted(k for k in config.keys() | state["config"].keys() if config.get(k) != state["config"].get(k))
    changed = [k for k in changed if k not in RESUMABLE_CHANGES]
    if changed:
        raise InputError(
            f"--resume needs the settings of the interrupted run; these differ: {changed}. "
            f"Pass the same options, or start over with --force."
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    random.setstate(state["rng"]["python"])
    kind, keys, pos, has_gauss, cached = state["rng"]["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["rng"]["torch"])
    return Progress(**state["progress"])


class StopRequest:
    """First Ctrl-C (or SIGTERM, as sent by `kill`, systemd, docker stop): finish the current optimizer step, save,
    exit. Second Ctrl-C: stop at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nstopping after this step to save a resumable state (Ctrl-C again to abort)", file=sys.stderr)

        try:
            previous = {signum: signal.signal(signum, handler) for signum in self.SIGNALS}
        except ValueError:  # not the main thread: leave the signals alone
            yield self
            return
        try:
            yield self
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)


class World:
    """This process's place in a data-parallel run started by `torchrun` (gloo on CPU); size 1 otherwise."""

    def __init__(self) -> None:
        self.size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.size > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model):
        if self.size == 1:
            return model
        return torch.nn.parallel.DistributedDataParallel(model)

    def shard(self, batches: list) -> list:
        """Every rank takes every size-th batch; all ranks run the same number of steps (DDP syncs each one)."""
        usable = len(batches) - len(batches) % self.size
        return batches[self.rank : usable : self.size]

    def agree(self, flag: bool) -> bool:
        """The main process's decision (e.g. stop early), shared with all ranks."""
        if self.size == 1:
            return flag
        tensor = torch.tensor([int(flag)])
        torch.distributed.broadcast(tensor, src=0)
        return bool(tensor.item())

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (a Ctrl-C reaches all torchrun workers, not always together)."""
        if self.size == 1:
            return flag
        tensor = torch.tensor([int(flag)])
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return bool(tensor.item())

    def share(self, obj):
        """The main process's object (e.g. the best metrics), on every rank."""
        if self.size == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.size > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.size > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def finish(partial: Path, out: Path) -> None:
    """Move partial/best into place as `out` (replacing it only now, if --force was given)."""
    best = partial / "best"
    if out.exists():
        old = partial / "replaced"
        os.replace(out, old)
    os.replace(best, out)
    shutil.rmtree(partial, ignore_errors=True)
