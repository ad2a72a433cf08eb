"""Blends: definitions, immutable versions, Megatron export, deterministic weighted sampling."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import demo_records, run_cli
from dataengine.trainer.blend_reader import BlendReader
from dataengine.warehouse.blends import BlendError, Blends, parse_component_spec
from dataengine.warehouse.export import export_version
from dataengine.warehouse.tokenizers import load_tokenizer


@pytest.fixture
def corpus(wh):
    recs = demo_records()
    words = [len(r["text"].split()) for r in recs]
    wh.write_table(
        "docs",
        pa.table({"id": [r["id"] for r in recs], "text": [r["text"] for r in recs], "words": words}),
    )
    return wh


MIX = {
    "name": "mix",
    "components": [
        {"name": "long", "sql": "SELECT id, text FROM docs WHERE words > 250", "weight": 0.7},
        {"name": "short", "sql": "SELECT id, text FROM docs WHERE words <= 250", "weight": 0.3, "max_epochs": 2},
    ],
}


@pytest.mark.slow
def test_freeze_is_reproducible_and_versions_are_immutable(corpus):
    blends = Blends(corpus)
    blends.create(MIX)
    v1 = blends.freeze("mix")
    v2 = blends.freeze("mix")
    assert v1["content_hash"] == v2["content_hash"] and v2["version"] == v1["version"] + 1
    long_v1 = {c["component"]: c for c in v1["components"]}["long"]
    assert long_v1["rows"] + {c["component"]: c for c in v1["components"]}["short"]["rows"] == 400

    corpus.write_table("docs", pa.table({"id": ["new-doc"], "text": ["fresh " * 300], "words": [300]}))
    v3 = blends.freeze("mix")
    assert v3["content_hash"] != v1["content_hash"]
    # the old version still reads its old rows (time travel through the pinned snapshot)
    old = blends.version("mix@1")
    old_long = [c for c in old["components"] if c["component"] == "long"][0]
    ids = [i for b in blends.iter_component(old_long["sql"], old["snapshot_id"]) for i in b.column("id").to_pylist()]
    assert "new-doc" not in ids and len(ids) == long_v1["rows"]
    diff = blends.diff("mix@1", "mix@3")
    long_row = [r for r in diff["components"] if r["component"] == "long"][0]
    assert long_row["ids_added"] == 1 and long_row["ids_removed"] == 0 and long_row["status"] == "changed"


@pytest.mark.slow
def test_effective_epochs_and_cap_warning(corpus):
    blends = Blends(corpus)
    blends.create(MIX)
    v = blends.freeze("mix", target_tokens=2_000_000)
    short = [c for c in v["components"] if c["component"] == "short"][0]
    assert short["effective_epochs"] == pytest.approx(2_000_000 * 0.3 / short["tokens"])
    assert any("'short'" in w and "cap 2" in w for w in v["warnings"])


def test_bad_components_are_rejected_at_create_time(corpus):
    blends = Blends(corpus)
    with pytest.raises(BlendError, match="selects no 'text' column"):
        blends.create({"name": "b", "components": [{"name": "x", "sql": "SELECT id FROM docs", "weight": 1}]})
    with pytest.raises(BlendError, match="Table with name nope does not exist"):
        blends.create({"name": "b", "components": [{"name": "x", "sql": "SELECT * FROM nope", "weight": 1}]})
    with pytest.raises(BlendError, match="syntax error"):
        blends.create({"name": "b", "components": [{"name": "x", "sql": "SELEC id, text FROM docs", "weight": 1}]})
    assert not corpus.table_exists("dataengine.blends")


def test_component_spec_keeps_colons_in_sql():
    c = parse_component_spec("web=SELECT id, text FROM t WHERE score::DOUBLE > 0.5:0.25:4")
    assert (c.name, c.sql, c.weight, c.max_epochs) == ("web", "SELECT id, text FROM t WHERE score::DOUBLE > 0.5", 0.25, 4)
    with pytest.raises(BlendError, match="missing weight"):
        parse_component_spec("web=SELECT 1")


def _read_megatron(prefix: str):
    """Independent reader written from the published MMIDIDX layout."""
    raw = Path(prefix + ".idx").read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    version, = struct.unpack_from("<Q", raw, 9)
    code, = struct.unpack_from("<B", raw, 17)
    n, = struct.unpack_from("<Q", raw, 18)
    d, = struct.unpack_from("<Q", raw, 26)
    off = 34
    sizes = struct.unpack_from(f"<{n}i", raw, off)
    pointers = struct.unpack_from(f"<{n}q", raw, off + 4 * n)
    docs = struct.unpack_from(f"<{d}q", raw, off + 12 * n)
    dtype = {8: "<u2", 4: "<i4"}[code]
    data = Path(prefix + ".bin").read_bytes()
    seqs = [np.frombuffer(data, dtype=dtype, count=s, offset=p) for s, p in zip(sizes, pointers)]
    return version, code, list(docs), seqs


@pytest.mark.slow
def test_megatron_files_read_back_by_independent_reader(corpus):
    blends = Blends(corpus)
    blends.create(MIX)
    v = blends.freeze("mix")
    manifest = json.loads(Path(v["manifest"]).read_text())
    tok = load_tokenizer("gpt2")
    for comp in manifest["components"]:
        version, code, doc_idx, seqs = _read_megatron(comp["prefix"])
        assert version == 1 and code == 8  # uint16 for GPT-2's 50,257 ids
        assert doc_idx == list(range(len(seqs) + 1)) and len(seqs) == comp["rows"]
        assert sum(len(s) for s in seqs) == comp["tokens"]
        sql = [c["sql"] for c in v["components"] if c["component"] == comp["name"]][0]
        texts = [t for b in blends.iter_component(sql, v["snapshot_id"]) for t in b.column("text").to_pylist()]
        # one document per sequence, in id order within each part, each ending with EOS
        assert all(int(s[-1]) == tok.eos_id for s in seqs)
        decoded = sorted(tok.tokenizer.decode([int(x) for x in s[:-1]]) for s in seqs)
        assert decoded == sorted(texts)
    # exporting again is a cache hit: same manifest file, untouched
    before = Path(v["manifest"]).stat().st_mtime_ns
    assert export_version(blends, "mix@1") == Path(v["manifest"])
    assert Path(v["manifest"]).stat().st_mtime_ns == before


@pytest.mark.slow
def test_sampled_shares_match_weights_and_resume_is_exact(corpus):
    blends = Blends(corpus)
    blends.create(MIX)
    manifest = Blends(corpus).freeze("mix")["manifest"]
    reader = BlendReader(manifest, seq_len=32, seed=7)
    picks = [reader.component_of(i)[0] for i in range(10_000)]
    share_long = picks.count(reader.names.index("long")) / len(picks)
    assert abs(share_long - 0.7) < 0.01
    full = [reader[i] for i in range(200)]
    assert all(len(s) == 33 for s in full)
    resumed = BlendReader(manifest, seq_len=32, seed=7)
    again = list(resumed.iter_from(120, 200))
    assert all(np.array_equal(a, b) for a, b in zip(full[120:], again))
    other_seed = BlendReader(manifest, seq_len=32, seed=8)
    assert not all(np.array_equal(a, other_seed[i]) for i, a in enumerate(full[:20]))


@pytest.mark.slow
def test_two_phase_blend_switches_at_token_share(corpus):
    blends = Blends(corpus)
    blends.create(
        {
            "name": "phased",
            "phases": [{"name": "broad", "token_share": 0.75}, {"name": "hq", "token_share": 0.25}],
            "components": [
                {"name": "all", "sql": "SELECT id, text FROM docs", "weight": 1, "phase": "broad"},
                {"name": "long", "sql": "SELECT id, text FROM docs WHERE words > 250", "weight": 1, "phase": "hq"},
            ],
        }
    )
    manifest = blends.freeze("phased")["manifest"]
    reader = BlendReader(manifest, seq_len=16, total_samples=1000)
    comps = [reader.names[reader.component_of(i)[0]] for i in range(1000)]
    assert comps[:750] == ["all"] * 750 and comps[750:] == ["long"] * 250


@pytest.mark.slow
def test_cli_blend_roundtrip_and_trained_tokenizer(corpus, tmp_path):
    w = corpus.config.root
    proc = run_cli("blend", "create", "cli", "-c", "all=SELECT id, text FROM docs:1", warehouse=w, check=True)
    assert "revision 1" in proc.stdout
    run_cli("blend", "freeze", "cli", warehouse=w, check=True)
    shown = run_cli("blend", "show", "cli@1", warehouse=w, check=True).stdout
    assert "cli@1" in shown and "400" in shown
    listed = run_cli("blend", "list", warehouse=w, check=True).stdout
    assert "cli" in listed
    run_cli("tokenizer", "train", "--blend", "cli@1", "--vocab-size", "600", "--name", "tiny", warehouse=w, check=True)
    out = run_cli("blend", "export", "cli@1", "--tokenizer", "tiny", warehouse=w, check=True).stdout
    assert "tokens" in out
    tok = load_tokenizer("tiny", corpus)
    assert tok.vocab_size <= 600
    rows = corpus.sql("SELECT name, vocab_size FROM dataengine.tokenizers").to_pylist()
    assert rows == [{"name": "tiny", "vocab_size": tok.vocab_size}]
    bad = run_cli("blend", "create", "bad", "-c", "x=SELECT id FROM docs:1", warehouse=w)
    assert bad.returncode == 1 and "selects no 'text' column" in bad.stderr


@pytest.mark.slow
def test_blend_from_yaml_file(corpus, tmp_path):
    path = tmp_path / "blend.yaml"
    path.write_text(
        "name: fromfile\n"
        "phases: [{name: a, token_share: 0.5}, {name: b, token_share: 0.5}]\n"
        "components:\n"
        "  - {name: x, sql: 'SELECT id, text FROM docs', weight: 1, phase: a}\n"
        "  - {name: y, sql: 'SELECT id, text FROM docs WHERE words > 100', weight: 2, phase: b}\n"
    )
    proc = run_cli("blend", "create", "--file", str(path), warehouse=corpus.config.root, check=True)
    assert "fromfile revision 1: 2 component(s)" in proc.stdout
    rows = corpus.sql("SELECT component, phase, weight FROM dataengine.blend_components ORDER BY component").to_pylist()
    assert rows == [{"component": "x", "phase": "a", "weight": 1.0}, {"component": "y", "phase": "b", "weight": 2.0}]
    path.write_text("name: broken\nphases: [{name: a, token_share: 0.4}]\ncomponents: [{name: x, sql: 'SELECT id, text FROM docs', weight: 1, phase: a}]\n")
    bad = run_cli("blend", "create", "--file", str(path), warehouse=corpus.config.root)
    assert bad.returncode == 1 and "token shares must sum to 1" in bad.stderr


@pytest.mark.slow
def test_blend_composition_html_report(corpus, tmp_path):
    Blends(corpus).create(MIX)
    Blends(corpus).freeze("mix")
    out = tmp_path / "blend.html"
    run_cli("blend", "show", "mix@1", "--html", str(out), warehouse=corpus.config.root, check=True)
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 3 and "<script" not in page
    assert 'data-chart="token share per component (%)" data-mark="rect" data-points="4"' in page  # planned + available
    assert "long" in page and "short" in page and "<td class=\"num\">70</td>" in page  # sampled share %
