"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for the HTTP backend tests.

It serves a real (tiny, random) transformers model, or the answers of a ``responder``
function (deterministic answers for tests that check content), and can be told to misbehave:
``faults[n]`` applies to the n-th request it receives (1-based): a status code (``"500"``, ``"429"``),
``"sleep"`` (say nothing for ``sleep_seconds``, past the client's timeout, then hang up), ``"drop"``
(close the socket without answering), ``"garbage"`` (200 with a body that is not JSON) or
``"nochoices"`` (200 with JSON that is not a completion). Requests whose messages contain ``poison`` get a
500 every time, until the test clears it. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LLMServer:
    def __init__(self, model_dir: str | None, model_name: str = "tiny", responder=None):
        self.model_name = model_name
        self.responder = responder  # messages -> answer text, instead of a model (deterministic tests)
        self.delay = 0.0  # seconds each completion takes (tests that kill a client mid-run)
        if model_dir is not None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
            self.torch = torch
            torch.set_num_threads(1)  # requests are served one at a time anyway (model lock)
        self.faults: dict[int, str] = {}
        self.poison: str | None = None
        self.sleep_seconds = 3.0
        self.received = 0  # every request that arrived
        self.generated = 0  # requests answered with a completion
        self.generated_prompts: list[str] = []
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": "not found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.received += 1
                    fault = server.faults.pop(server.received, None)
                    poison = server.poison
                if fault == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault == "sleep":  # answer nothing until the client has given up
                    time.sleep(server.sleep_seconds)
                    self.close_connection = True
                    return
                if fault == "garbage":
                    self._raw(200, b"<html><body>502 Bad Gateway from a proxy</body></html>")
                    return
                if fault == "nochoices":
                    self._json(200, {"object": "error", "message": "model is loading"})
                    return
                if fault and fault.isdigit():  # "500", "429", "400", ...
                    self._json(int(fault), {"error": {"message": f"injected {fault}"}})
                    return
                contents = " ".join(m.get("content", "") for m in body.get("messages", []))
                if poison and poison in contents:
                    self._json(500, {"error": {"message": "poisoned request"}})
                    return
                try:
                    self._json(200, server.complete(body))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout fault)

            def _json(self, status: int, payload: dict) -> None:
                self._raw(status, json.dumps(payload).encode())

            def _raw(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    # -- the model ---------------------------------------------------------------------
    def complete(self, body: dict) -> dict:
        if self.delay:
            time.sleep(self.delay)
        if self.responder is not None:
            return self.scripted(body)
        prompt = self.tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        max_tokens = int(body.get("max_tokens") or 16)
        temperature = float(body.get("temperature") or 0)
        enc = self.tok(prompt, return_tensors="pt", add_special_tokens=False)
        kwargs = {"max_new_tokens": max_tokens, "pad_token_id": self.tok.pad_token_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=float(body.get("top_p") or 1.0))
        else:
            kwargs.update(do_sample=False)
        with self._model_lock:
            self.torch.manual_seed(int(body.get("seed") or 0))
            with self.torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        finish = "length"
        if self.tok.eos_token_id in new:
            new, finish = new[: new.index(self.tok.eos_token_id)], "stop"
        with self._lock:
            self.generated += 1
            self.generated_prompts.append(prompt)
        return {
            "id": f"chatcmpl-{self.generated}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": self.tok.decode(new, skip_special_tokens=True)},
                 "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": enc["input_ids"].shape[1], "completion_tokens": len(new),
                      "total_tokens": enc["input_ids"].shape[1] + len(new)},
        }


    def scripted(self, body: dict) -> dict:
        """The responder's answer, with word counts as token usage."""
        text = self.responder(body["messages"])
        prompt_words = sum(len(m.get("content", "").split()) for m in body["messages"])
        with self._lock:
            self.generated += 1
            self.generated_prompts.append(body["messages"][-1].get("content", ""))
        return {
            "id": f"chatcmpl-{self.generated}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(text.split()),
                      "total_tokens": prompt_words + len(text.split())},
        }


# -- fixtures shared by the generator tests (imported into each test module) -------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random Llama chat model + BPE tokenizer, built once per test session."""
    from dataengine.trainer.tiny_model import build_tiny_chat_model

    return str(build_tiny_chat_model(tmp_path_factory.mktemp("tiny-llm") / "model", vocab_size=1024))


@pytest.fixture(scope="session")
def llm_server(tiny_model_dir):
    server = LLMServer(tiny_model_dir)
    server.base_url = server.start()
    yield server
    server.stop()
