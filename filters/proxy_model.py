"""A proxy causal LM whose per-sample loss gradients describe the samples (G-Vendi, Prismatic).

Per sample: the mean token loss (on the whole text, or on the response given the prompt),
its gradient with respect to a chosen subset of the parameters (default: the last decoder
block and the head), projected to ``d`` dimensions with the seeded Rademacher projection
of :mod:`dataengine.kernels.rademacher` and L2-normalised.

Per-sample gradients come from ``torch.func``: ``vmap(grad_and_value(loss))`` over a padded
micro-batch. Rows are right-padded and padding tokens carry no loss, so under the causal
mask a sample's loss, and so its gradient, is exactly that of the sample alone. Only the
chosen parameters are differentiated: the backward pass stops at the first of them, and the
frozen layers below run as one batched forward inside the ``vmap``.

Tied embeddings (SmolLM2's head *is* its input embedding): the head's gradient is taken
through its use as the output projection only (``functional_call(tie_weights=False)``), so
the backward pass never has to reach the input layer.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from dataengine.core.errors import StageError

#: Names that stand for parts of any decoder-only model (anything else is a glob over
#: parameter names, e.g. ``model.layers.2[89].*``).
LAST_BLOCK = "last_block"
HEAD = "head"
DEFAULT_PARAMS = (LAST_BLOCK, HEAD)
IGNORE = -100


@dataclass
class Encoded:
    """One sample as token ids with labels (``IGNORE`` where no loss is taken)."""

    ids: list[int]
    labels: list[int]

    @property
    def loss_tokens(self) -> int:
        return sum(1 for t in self.labels[1:] if t != IGNORE)


# -- choosing the parameters ------------------------------------------------------------------

def decoder_layers(model) -> tuple[str, Any]:
    """(name, ModuleList) of the decoder blocks: the largest list of identical modules."""
    import torch

    best, best_size = None, 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) and len({type(m) for m in module}) == 1:
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = (name, module), size
    if best is None:
        raise StageError(f"{type(model).__name__}: no list of decoder blocks found; name parameters with globs instead")
    return best


def head_parameter_names(model) -> list[str]:
    """The output projection's parameters and the final norm (the norms beside the block list)."""
    layers_name, _ = decoder_layers(model)
    parent_name = layers_name.rpartition(".")[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    names = []
    for child_name, child in parent.named_children():
        if "norm" in type(child).__name__.lower() or child_name in ("norm", "ln_f", "final_layernorm", "final_layer_norm"):
            prefix = f"{parent_name}.{child_name}" if parent_name else child_name
            names += [f"{prefix}.{n}" for n, _ in child.named_parameters()]
    head = model.get_output_embeddings()
    if head is None:
        raise StageError(f"{type(model).__name__} has no output embeddings (is it a causal LM?)")
    head_name = next(name for name, module in model.named_modules(remove_duplicate=False) if module is head)
    names += [f"{head_name}.{n}" for n, _ in head.named_parameters(remove_duplicate=False)]
    return names


def select_parameters(model, specs: Sequence[str]) -> list[str]:
    """Parameter names for ``specs`` (``last_block``, ``head``, globs), in the model's order."""
    all_names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    chosen: set[str] = set()
    for spec in specs:
        if spec == LAST_BLOCK:
            name, layers = decoder_layers(model)
            prefix = f"{name}.{len(layers) - 1}."
            found = [n for n in all_names if n.startswith(prefix)]
        elif spec == HEAD:
            found = head_parameter_names(model)
        else:
            found = [n for n in all_names if fnmatch.fnmatchcase(n, spec)]
        if not found:
            raise StageError(f"parameter spec {spec!r} matches no parameter of {type(model).__name__}")
        chosen.update(found)
    return [n for n in all_names if n in chosen]


# -- turning rows into token ids ----------------------------------------------------------------

def as_messages(value: Any, what: str) -> list[dict] | None:
    """A list of {role, content} from a list of dicts/structs or its JSON text; None for plain text."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{what} is neither text nor a non-empty list of messages")
    out = []
    for m in value:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or not m.get("role"):
            raise ValueError(f"{what} has a message without role and text content")
        out.append({"role": m["role"], "content": m["content"]})
    return out


class Encoder:
    """Rows -> :class:`Encoded`, with the tokenizer's chat template for prompt/response rows."""

    def __init__(self, tokenizer, max_tokens: int):
        self.tok = tokenizer
        self.max_tokens = max_tokens
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def text(self, text: str) -> Encoded:
        ids = self.tok(text, add_special_tokens=True, truncation=True, max_length=self.max_tokens)["input_ids"]
        return Encoded(list(ids), list(ids))

    def prompt_response(self, prompt: Any, response: str) -> Encoded:
        """Loss on the response only; the prompt is text (one user turn) or a message list."""
        messages = as_messages(prompt, "prompt") or [{"role": "user", "content": str(prompt)}]
        if self.chat:
            prompt_text = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            response_text = response + (self.tok.eos_token or "")
        else:
            prompt_text = "\n\n".join(m["content"] for m in messages) + "\n\n"
            response_text = response
        p, r = self._ids(prompt_text), self._ids(response_text)
        budget = self.max_tokens
        keep_r = min(len(r), max(budget - len(p), budget // 2))
        keep_p = max(budget - keep_r, 0)
        p = p[len(p) - keep_p:] if keep_p else []
        r = r[:keep_r]
        return Encoded(p + r, [IGNORE] * len(p) + r)

    def messages(self, value: Any) -> Encoded:
        """A conversation: loss on its last assistant message, given the turns before it."""
        messages = as_messages(value, "messages")
        if messages is None:
            raise ValueError("messages is not a list of {role, content}")
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            raise ValueError("the conversation has no assistant reply after a prompt")
        return self.prompt_response(messages[:last], messages[last]["content"])


@dataclass(frozen=True)
class RowColumns:
    """Which columns hold a sample: text, a prompt/response pair, or a conversation."""

    text: str = "text"
    prompt: str | None = None
    response: str | None = None
    messages: str | None = None

    def required(self) -> tuple[str, ...]:
        if self.messages:
            return (self.messages,)
        if self.prompt:
            return (self.prompt, self.response)
        return (self.text,)

    def encode(self, encoder: Encoder, batch) -> list[Encoded | None]:
        """One sample per row of an Arrow table; None where there is nothing to score (nulls).
        A malformed conversation raises ValueError naming the row."""
        if self.messages:
            values = batch.column(self.messages).to_pylist()
            return [None if m is None else _row(i, encoder.messages, m) for i, m in enumerate(values)]
        if self.prompt:
            prompts = batch.column(self.prompt).to_pylist()
            responses = batch.column(self.response).to_pylist()
            return [None if q is None or not r else _row(i, encoder.prompt_response, q, r)
                    for i, (q, r) in enumerate(zip(prompts, responses))]
        return [None if not t else encoder.text(t) for t in batch.column(self.text).to_pylist()]

    def texts(self, batch) -> list[str | None]:
        """Each row as plain text (what an embedding model reads)."""
        if self.messages:
            out = []
            for m in batch.column(self.messages).to_pylist():
                try:
                    msgs = as_messages(m, "messages") if m is not None else None
                except ValueError:
                    msgs = None
                out.append("\n\n".join(x["content"] for x in msgs) if msgs else None)
            return out
        if self.prompt:
            out = []
            for q, r in zip(batch.column(self.prompt).to_pylist(), batch.column(self.response).to_pylist()):
                try:
                    msgs = as_messages(q, "prompt") if q is not None else None
                except ValueError:
                    msgs = None
                prompt = "\n\n".join(x["content"] for x in msgs) if msgs else q
                out.append(None if prompt is None or not r else f"{prompt}\n\n{r}")
            return out
        return [t or None for t in batch.column(self.text).to_pylist()]


def _row(index: int, fn, *args):
    try:
        return fn(*args)
    except ValueError as exc:
        raise ValueError(f"row {index}: {exc}") from None


# -- the model ----------------------------------------------------------------------------------

class ProxyModel:
    """A loaded proxy and the per-sample projected gradients of its loss."""

    def __init__(self, model, tokenizer, params: Sequence[str] = DEFAULT_PARAMS, dim: int = 1024, seed: int = 0,
                 max_tokens: int = 512, device: str = "cpu"):
        import torch

        self.model = model
        for p in model.parameters():
            p.requires_grad_(False)
        self.encoder = Encoder(tokenizer, max_tokens)
        self.dim, self.seed, self.device = dim, seed, device
        self.param_names = select_parameters(model, params)
        named = dict(model.named_parameters(remove_duplicate=False))
        self.params = {n: named[n].detach() for n in self.param_names}
        self.offsets = {}
        total = 0
        for n in self.param_names:
            self.offsets[n] = total
            total += self.params[n].numel()
        self.num_columns = total
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self._torch = torch

    @classmethod
    def load(cls, spec: str, params: Sequence[str] = DEFAULT_PARAMS, dim: int = 1024, seed: int = 0,
             max_tokens: int = 512, device: str = "cpu") -> "ProxyModel":
        """Load ``spec`` (``smollm2``, a Hugging Face folder, a ``.gguf``) as a float32 proxy."""
        import torch

        from dataengine.core.causal_lm import load_causal_lm

        # eager attention: SDPA's CPU kernels have no vmap batching rule (a slow per-sample fallback)
        model, tok = load_causal_lm(spec, device=device, attn_implementation="eager", dtype=torch.float32)
        return cls(model, tok, params, dim, seed, max_tokens, device)

    def describe(self) -> dict:
        return {"parameters": len(self.param_names), "columns": self.num_columns, "dim": self.dim, "seed": self.seed}

    # -- the loss of one sample (the function torch.func transforms) --------------------------
    def loss(self, params: dict, ids, labels):
        """Mean token cross-entropy of one sample (1-D ``ids``/``labels``) under ``params``."""
        torch = self._torch
        from torch.func import functional_call

        out = functional_call(self.model, params, args=(), kwargs={"input_ids": ids[None], "use_cache": False},
                              tie_weights=False)
        logits = out.logits[0, :-1].float()
        target = labels[1:]
        mask = (target != IGNORE).to(logits.dtype)
        losses = torch.nn.functional.cross_entropy(logits, target.clamp(min=0), reduction="none")
        return (losses * mask).sum() / mask.sum().clamp(min=1)

    def per_sample_gradients(self, batch: Sequence[Encoded]) -> tuple[dict, Any]:
        """({name: (b, *shape)}, losses (b,)) for one padded micro-batch, with ``vmap``."""
        torch = self._torch
        from torch.func import grad_and_value, vmap

        length = max(len(e.ids) for e in batch)
        ids = torch.full((len(batch), length), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), length), IGNORE, dtype=torch.long)
        for i, e in enumerate(batch):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            labels[i, : len(e.labels)] = torch.tensor(e.labels)
        ids, labels = ids.to(self.device), labels.to(self.device)
        return vmap(grad_and_value(self.loss), in_dims=(None, 0, 0))(self.params, ids, labels)

    def project(self, grads: dict) -> Any:
        """Concatenated per-sample gradients (never built) -> (b, dim), parameter by parameter."""
        from dataengine.kernels.rademacher import project_add

        torch = self._torch
        n = next(iter(grads.values())).shape[0]
        out = torch.zeros((n, self.dim), dtype=torch.float32, device=self.device)
        for name in self.param_names:
            g = grads.pop(name).reshape(n, -1)
            project_add(g.float().contiguous(), out, self.seed, self.offsets[name])
            del g
        return out

    def gradients(self, samples: Sequence[Encoded | None], batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """(unit vectors (n, dim) float32, losses (n,)); rows without loss tokens are NaN.

        Samples are sorted by length into micro-batches (less padding) and put back in order.
        """
        torch = self._torch
        n = len(samples)
        vectors = np.full((n, self.dim), np.nan, dtype=np.float32)
        losses = np.full(n, np.nan, dtype=np.float32)
        todo = [i for i, s in enumerate(samples) if s is not None and s.loss_tokens > 0]
        todo.sort(key=lambda i: len(samples[i].ids))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            grads, loss = self.per_sample_gradients([samples[i] for i in chunk])
            projected = self.project(grads)
            norms = projected.norm(dim=1, keepdim=True)
            unit = torch.where(norms > 0, projected / norms.clamp(min=1e-30), torch.full_like(projected, float("nan")))
            vectors[chunk] = unit.cpu().numpy()
            losses[chunk] = loss.detach().float().cpu().numpy()
        return vectors, losses
