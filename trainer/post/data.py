"""Examples of a post-training blend version: its rows, the held-out split, the weighted order.

The rows come from the version's row export (warehouse/row_export.py), already normalized
and with each component's reasoning toggle applied. The held-out split is the pretraining
rule (trainer/data.py: ``val_fraction`` of every component, drawn with the blend version's
content hash), so it is a property of the blend version, the same for every run and stage.

:class:`ExampleOrder` says which row is the ``i``-th example of a run: components take turns
by Megatron's deficit rule (the one with the largest ``weight * (j + 1) - taken`` goes next)
within the phase ``i`` falls in, and each component's rows come in a seeded permutation per
epoch. It is a pure function of (manifest, seed, i), so a resumed run sees the same examples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dataengine.core.errors import DataEngineError
from dataengine.trainer.data import validation_documents
from dataengine.warehouse.row_export import read_rows


def load_manifest(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


class BlendRows:
    """Every component's rows and their train / held-out split."""

    def __init__(self, manifest: dict, val_fraction: float):
        if manifest.get("shape", "text") == "text":
            raise DataEngineError(f"{manifest['blend']}@{manifest['version']} is a text blend: post-training needs "
                                  "chat, preference or verifiable rows (see docs/posttraining.md)")
        self.manifest = manifest
        self.shape = manifest["shape"]
        self.components = [c for c in manifest["components"] if c["documents"] > 0]
        if not self.components:
            raise DataEngineError(f"{manifest['blend']}@{manifest['version']} has no valid rows")
        self.rows = {c["name"]: read_rows(c["rows_path"]) for c in self.components}
        held = validation_documents({**manifest, "components": self.components}, val_fraction)
        self.val_index = held
        self.train_index = {
            c["name"]: np.setdiff1d(np.arange(c["documents"], dtype=np.int64), held[c["name"]])
            for c in self.components
        }

    def val_rows(self, limit: int | None = None) -> list[dict]:
        """Held-out rows, components interleaved, at most ``limit``."""
        per = [[self.rows[c["name"]][int(i)] for i in self.val_index[c["name"]]] for c in self.components]
        out = [row for group in _interleave(per) for row in group]
        return out[:limit] if limit is not None else out

    def order(self, seed: int | None, total: int) -> "ExampleOrder":
        return ExampleOrder(self, self.manifest.get("seed", 1234) if seed is None else seed, total)


def _interleave(lists: list[list]) -> list[list]:
    longest = max((len(x) for x in lists), default=0)
    return [[x[i] for x in lists if i < len(x)] for i in range(longest)]


class ExampleOrder:
    """The run's example stream: ``order[i]`` is a row (dict with ``id``)."""

    def __init__(self, rows: BlendRows, seed: int, total: int):
        self.rows, self.seed = rows, seed
        comps = [c for c in rows.components if len(rows.train_index[c["name"]])]
        if not comps:
            raise DataEngineError("every row of the blend version is held out: lower data.val_fraction")
        self.names = [c["name"] for c in comps]
        phases = rows.manifest.get("phases") or [{"name": "main", "token_share": 1.0}]
        self.phases, bounds, acc = [], [], 0.0
        shares = sum(p["token_share"] for p in phases)
        for p in phases:
            members = [i for i, c in enumerate(comps) if c.get("phase", "main") == p["name"]]
            acc += p["token_share"]
            if members:
                w = np.array([comps[i]["weight"] for i in members], dtype=np.float64)
                self.phases.append({"members": members, "weights": w / w.sum(), "taken": np.zeros(len(members)),
                                    "choice": []})
                bounds.append(round(acc / shares * total))
        bounds[-1] = max(bounds[-1], total)
        self.bounds = bounds
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    def _phase(self, i: int) -> tuple[int, int]:
        start = 0
        for p, end in enumerate(self.bounds):
            if i < end or p == len(self.bounds) - 1:
                return p, i - start
            start = end
        raise AssertionError

    def _component(self, p: int, j: int) -> tuple[int, int]:
        phase = self.phases[p]
        while len(phase["choice"]) <= j:
            n = len(phase["choice"])
            c = int(np.argmax(phase["weights"] * (n + 1) - phase["taken"]))
            phase["choice"].append((phase["members"][c], int(phase["taken"][c])))
            phase["taken"][c] += 1
        return phase["choice"][j]

    def _permutation(self, comp: int, epoch: int) -> np.ndarray:
        key = (comp, epoch)
        if key not in self._perms:
            index = self.rows.train_index[self.names[comp]]
            self._perms[key] = index[np.random.default_rng([self.seed, comp, epoch]).permutation(len(index))]
            if len(self._perms) > 8:
                self._perms.pop(next(iter(self._perms)))
        return self._perms[key]

    def __getitem__(self, i: int) -> dict:
        comp, k = self._component(*self._phase(i))
        n = len(self.rows.train_index[self.names[comp]])
        epoch, pos = divmod(k, n)
        return self.rows.rows[self.names[comp]][int(self._permutation(comp, epoch)[pos])]

    def component_name(self, i: int) -> str:
        return self.names[self._component(*self._phase(i))[0]]
