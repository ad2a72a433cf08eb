"""Reading a run's ``metrics.jsonl`` (one JSON line per logged step).

The run's HTML report (loss and throughput curves) is drawn by ``dataengine.reports.training``
with the same charts as every other report; ``dataengine.api.train`` writes it when a run ends.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
