"""Installed, the repository is ONE package: `dataengine.*`, nothing generic at the top level;
plugins from other packages are found through entry points; the README's Python example runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
GENERIC = ("connectors", "filters", "generators", "trainer", "kernels", "warehouse")


def _python(code: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-c", code], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_generic_names_do_not_import_but_dataengine_subpackages_do(tmp_path):
    code = textwrap.dedent(f"""
        import importlib, json
        out = {{}}
        for name in {GENERIC!r}:
            try:
                importlib.import_module(name)
                out[name] = "imported"
            except ModuleNotFoundError:
                out[name] = "missing"
            importlib.import_module("dataengine." + name)
        print(json.dumps(out))
    """)
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {name: "missing" for name in GENERIC}


def _source_copy(dest: Path) -> Path:
    """The source tree without virtualenvs, git data or build leftovers (a build writes build/ in place)."""
    import shutil

    def ignore(folder, names):
        top = Path(folder) == ROOT
        return [n for n in names if n in ("__pycache__",) or n.endswith(".egg-info")
                or (top and n in (".venv", ".git", "build", "dist", "demo-warehouse", ".pytest_cache"))]

    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


@pytest.mark.slow
def test_the_wheel_holds_only_dataengine(tmp_path):
    src = _source_copy(tmp_path / "src")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("dataengine-*.whl"))
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"dataengine", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "dataengine/filters/data/lid.176.ftz" in names and "dataengine/connectors/math/__init__.py" in names
    eps = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[dataengine.stages]" in eps and "langid = dataengine.filters.langid:LangId" in eps


PLUGIN = '''
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from dataengine.core import Stage, StageParams


class Shout(Stage):
    """Upper-cases the text into another column (a third-party stage)."""

    name = "shout"
    version = "1"
    description = "upper-case copy of the text"
    inputs = ("text",)

    class Params(StageParams):
        column: str = Field("shouted", description="output column")

    def output_columns(self):
        return {self.params.column: pa.string()}

    def process(self, batch):
        return batch.append_column(self.params.column, pc.utf8_upper(batch["text"]))
'''


def _install_plugin(folder: Path) -> dict:
    """A package on sys.path with a .dist-info declaring its entry point: what pip install leaves."""
    (folder / "shout_plugin").mkdir(parents=True)
    (folder / "shout_plugin" / "__init__.py").write_text(PLUGIN)
    info = folder / "shout_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dataengine.stages]\nshout = shout_plugin:Shout\n")
    (info / "RECORD").write_text("")
    import os

    return dict(os.environ, PYTHONPATH=str(folder))


@pytest.mark.slow
def test_a_plugin_stage_from_another_package_runs_from_the_cli(tmp_path, corpus_files):
    env = _install_plugin(tmp_path / "site")
    listing = run_cli("stages", "shout", env=env, check=True).stdout
    assert "shout" in listing and "shout-plugin" in listing and "upper-case copy" in listing
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    files = [str(f) for f in corpus_files[:2]]
    run_cli("ingest", "jsonl", *files, "-t", "docs", "-q", warehouse=w, check=True)
    run_cli("run", "--from", "docs", "--stage", "shout:column=loud", "--to", "docs", "--workers", "2",
            "--partitions", "2", "-q", warehouse=w, env=env, check=True)
    rows = json.loads(run_cli("sql", "SELECT text, loud FROM docs", "-f", "json", warehouse=w, check=True).stdout)
    assert len(rows) == 100 and all(r["loud"] == r["text"].upper() for r in rows)
    without = run_cli("run", "--from", "docs", "--stage", "shout", "--to", "docs", "-q", warehouse=w)
    assert without.returncode == 1 and "unknown stage 'shout'" in without.stderr


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "the README has a Python example"
    proc = _python(blocks[0], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout.splitlines()[-1]
