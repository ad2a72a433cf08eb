"""Checkpoints that resume a run exactly, and refuse to resume a different one.

A checkpoint is ``OUTPUT/checkpoints/step-NNNNNNN/`` holding ``state.pt`` (model, optimizers,
schedulers, RNG states, data position) and ``meta.json`` (step, samples consumed, blend
manifest hash, tokenizer hash, config). It is written to a temporary folder and renamed,
so a kill during the write leaves the previous checkpoint as the latest one. Only rank 0
writes; with FSDP every rank takes part in gathering the full state first.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from dataengine.core.errors import DataEngineError

STEP_PREFIX = "step-"


class ResumeMismatch(DataEngineError):
    """A checkpoint belongs to another blend version or tokenizer."""


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _model_and_optim_state(model, optimizers, sharded: bool) -> tuple[dict, list[dict]]:
    if not sharded:
        inner = getattr(model, "module", model)  # DDP wraps the model
        return inner.state_dict(), [opt.state_dict() for opt in optimizers]
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return (get_model_state_dict(model, options=options),
            [get_optimizer_state_dict(model, opt, options=options) for opt in optimizers])


def save_checkpoint(folder: Path, step: int, model, optimizers, schedulers, meta: dict, rank: int = 0,
                    sharded: bool = False, keep: int = 2, extra: dict | None = None) -> Path | None:
    """Write checkpoint ``step`` under ``folder``; returns its path on rank 0.

    ``extra``: more state to restore with it (post-training: a reference model, counters)."""
    model_state, optim_states = _model_and_optim_state(model, optimizers, sharded)
    if rank != 0:
        return None
    final = folder / f"{STEP_PREFIX}{step:07d}"
    tmp = folder / f".tmp-{STEP_PREFIX}{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {
        "model": model_state,
        "optimizers": optim_states,
        "schedulers": [s.state_dict() for s in schedulers],
        "rng": rng_state(),
        "step": step,
    }
    if extra is not None:
        state["extra"] = extra
    torch.save(state, tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps({**meta, "step": step}, indent=1, default=str))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(STEP_PREFIX) and (p / "meta.json").exists())


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def check_compatible(meta: dict, manifest: dict, force: bool) -> list[str]:
    """Refuse (ResumeMismatch) to resume on another blend version or tokenizer unless forced;
    returns the differences that ``force`` let through."""
    diffs = []
    if meta.get("manifest_hash") != manifest["manifest_hash"]:
        diffs.append(
            f"checkpoint was trained on {meta.get('blend')}@{meta.get('blend_version')} "
            f"(manifest {meta.get('manifest_hash')}), this run uses {manifest['blend']}@{manifest['version']} "
            f"(manifest {manifest['manifest_hash']})"
        )
    if meta.get("tokenizer_hash") != manifest["tokenizer_hash"]:
        diffs.append(
            f"checkpoint tokenizer {meta.get('tokenizer')} ({meta.get('tokenizer_hash')}) differs from "
            f"{manifest['tokenizer']} ({manifest['tokenizer_hash']})"
        )
    if diffs and not force:
        raise ResumeMismatch("refusing to resume: " + "; ".join(diffs) + " (use --force to resume anyway, "
                             "or a new --output folder to start fresh)")
    return diffs


#: Config sections a resumed run must share with its checkpoint (a difference changes what the
#: restored optimizer state, schedule position and data position mean). ``steps``, evaluation
#: and checkpoint intervals and ``runtime`` may change between attempts.
RESUME_SECTIONS = ("model", "optimizer", "schedule", "data")
#: Model fields that change the shapes of the weights: no --force can resume across them.
SHAPE_FIELDS = ("model.preset", "model.overrides")


def config_differences(saved: dict | None, current: dict) -> list[tuple[str, object, object]]:
    """(dotted key, checkpoint value, this run's value) for every differing field of RESUME_SECTIONS."""
    if not saved:
        return []
    diffs = []

    def walk(prefix: str, a, b):
        if isinstance(a, dict) and isinstance(b, dict) and prefix not in SHAPE_FIELDS:
            for key in sorted(set(a) | set(b)):
                walk(f"{prefix}.{key}", a.get(key), b.get(key))
        elif _normalised(a) != _normalised(b):
            diffs.append((prefix, a, b))

    for section in RESUME_SECTIONS:
        walk(section, saved.get(section, {}), current.get(section, {}))
    return diffs


def _normalised(value):
    return list(value) if isinstance(value, tuple) else value


def check_config(saved: dict | None, current: dict, output, force: bool) -> list[str]:
    """Refuse to resume a checkpoint trained with another model (always) or other optimizer,
    schedule or data settings (unless forced); returns the differences ``force`` let through."""
    diffs = config_differences(saved, current)
    if not diffs:
        return []
    shown = "; ".join(f"{key}: checkpoint {old!r}, this run {new!r}" for key, old, new in diffs)
    if any(key in SHAPE_FIELDS for key, _, _ in diffs):
        raise ResumeMismatch(
            f"cannot resume the checkpoint in {output}: it was trained with another model ({shown}), whose "
            "weights do not fit this one; use a new --output folder to start fresh")
    if not force:
        raise ResumeMismatch(
            f"refusing to resume the checkpoint in {output} with other settings ({shown}); use --force to "
            "continue with the new settings, or a new --output folder to start fresh")
    return [f"config {shown}"]


def load_checkpoint(path: Path, model, optimizers, schedulers, sharded: bool = False,
                    restore_optimizers: bool = True) -> dict:
    """Restore everything saved by :func:`save_checkpoint` into live objects; returns the state."""
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    if sharded:
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                             set_optimizer_state_dict)

        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
        set_model_state_dict(model, state["model"], options=options)
        if restore_optimizers:
            for opt, s in zip(optimizers, state["optimizers"]):
                set_optimizer_state_dict(model, opt, s, options=options)
    else:
        getattr(model, "module", model).load_state_dict(state["model"])
        if restore_optimizers:
            for opt, s in zip(optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(s)
    if restore_optimizers:
        for sched, s in zip(schedulers, state["schedulers"], strict=True):
            sched.load_state_dict(s)
    set_rng_state(state["rng"])
    return state
