"""What the model sees of a packed window, and batches made ready before the step asks.

Document masking: a packed window holds the end of one document, an EOS, the start of the
next, ... Restarting the position ids after every EOS makes transformers build a block-causal
mask (its packed-sequence support: no attention across documents) and gives each document
its own rotary positions from 0, as if it had been fed alone. The EOS stays with the
document it ends. Nothing changes in the data: the boundaries are the EOS tokens the blend
export already writes after every document.

Prefetching: step ``s`` reads a fixed set of samples (trainer/data.py), so the next steps'
batches can be cut, converted and (on CUDA) pinned in a background thread while the current
step computes; the training loop then only waits when the reader falls behind, and says
how long it waited (``data_wait_s`` in metrics.jsonl).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


def document_position_ids(inputs: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Positions that restart at 0 after every ``eos_id`` in each row of ``inputs`` (batch, seq)."""
    idx = torch.arange(inputs.size(1), device=inputs.device).expand_as(inputs)
    after_eos = torch.where(inputs == eos_id, idx + 1, torch.zeros_like(idx))  # a document starts at idx + 1
    starts = torch.cat([torch.zeros_like(after_eos[:, :1]), after_eos[:, :-1]], dim=1).cummax(dim=1).values
    return idx - starts


@dataclass
class MicroBatch:
    """One micro-batch: inputs, targets and (with document masking) position ids, on the device."""

    inputs: torch.Tensor
    targets: torch.Tensor
    position_ids: torch.Tensor | None = None

    @property
    def tokens(self) -> int:
        return self.targets.numel()

    def to(self, device: torch.device) -> "MicroBatch":
        """On ``device``; asynchronous from pinned memory (see :func:`micro_batch`)."""
        if self.inputs.device == device:
            return self
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return MicroBatch(move(self.inputs), move(self.targets), move(self.position_ids))


def micro_batch(window: np.ndarray | torch.Tensor, eos_id: int | None, pin: bool = False) -> MicroBatch:
    """A (batch, seq_len + 1) window of tokens as model inputs and shifted targets, on the CPU.

    ``eos_id``: restart positions at document boundaries (document masking); None: one causal
    sequence per row. ``pin``: in pinned memory, so that ``.to(cuda)`` copies asynchronously."""
    window = torch.as_tensor(window)
    inputs, targets = window[:, :-1], window[:, 1:]
    positions = document_position_ids(inputs, eos_id) if eos_id is not None else None
    if pin:
        inputs, targets = inputs.pin_memory(), targets.pin_memory()
        positions = None if positions is None else positions.pin_memory()
    return MicroBatch(inputs, targets, positions)


class Prefetcher:
    """Yields ``make(step)`` for steps ``start..stop-1`` in order, computed ``depth`` steps ahead
    in a daemon thread. ``depth=0`` computes each step's batches on demand (no thread).

    Errors in the thread reach the caller at the step that needed the batch; ``close()`` stops
    the thread (the loop calls it in a ``finally``)."""

    _DONE = object()

    def __init__(self, make: Callable[[int], object], start: int, stop: int, depth: int = 2):
        self.make, self.start, self.stop, self.depth = make, start, stop, depth
        self.waited = 0.0  # seconds the last get() blocked
        self._stop = threading.Event()
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        if depth > 0 and stop > start:
            self._queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._fill, name="batch-prefetch", daemon=True)
            self._thread.start()
        self._next = start

    def _fill(self) -> None:
        for step in range(self.start, self.stop):
            try:
                item = (step, self.make(step), None)
            except BaseException as exc:  # handed to the consumer, who raises it
                item = (step, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if self._stop.is_set() or item[2] is not None:
                return

    def get(self, step: int):
        """The batches of ``step`` (steps must be asked for in order)."""
        import time

        if step != self._next:
            raise ValueError(f"prefetcher expected step {self._next}, got {step}")
        self._next += 1
        t0 = time.perf_counter()
        if self._queue is None:
            value = self.make(step)
        else:
            got, value, exc = self._queue.get()
            if exc is not None:
                raise exc
            assert got == step
        self.waited = time.perf_counter() - t0
        return value

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
