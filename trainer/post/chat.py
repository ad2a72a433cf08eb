"""Conversations -> token ids with the model's chat template, and which tokens are the assistant's.

Which tokens get a loss is decided on the rendered text, not on token patterns: the assistant
turn ``i`` spans from the end of ``render(messages[:i], add_generation_prompt=True)`` to the
end of ``render(messages[:i + 1])``: its content and the template's end-of-turn marker (so the
model learns to stop), never the ``<|im_start|>assistant`` header, user or system text. Tokens
are mapped to those character spans through the fast tokenizer's offsets. This works for any
template that renders a conversation's prefix as a prefix of the whole (ChatML, Llama 3,
SmolLM2, ...); a template that rewrites earlier turns (e.g. one that strips past reasoning)
is refused with a clear error instead of silently masking the wrong tokens. (TRL's
``assistant_only_loss`` needs ``{% generation %}`` markers in the template, which few
templates have; this rule needs none.)

A tokenizer without a chat template (a model from ``dataengine train`` pretraining) gets
:data:`FALLBACK_TEMPLATE`: ChatML headers with the tokenizer's EOS token ending each turn, so
generation stops where the reply ends. The template used is saved with the trained model.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataengine.core.errors import DataEngineError

FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class ChatTemplateError(DataEngineError):
    pass


@dataclass
class Encoded:
    input_ids: list[int]
    loss_mask: list[bool]  # True where the token is a target of the loss
    truncated: bool = False


def ensure_chat_template(tokenizer, template: str | None = None) -> str:
    """Set (and return) the template the run uses: ``template``, the tokenizer's, or the fallback."""
    if template:
        tokenizer.chat_template = template
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_TEMPLATE
    if tokenizer.eos_token is None:
        raise ChatTemplateError("the tokenizer has no EOS token: cannot end assistant turns")
    return tokenizer.chat_template


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict], only_last: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """(rendered conversation, character spans of the assistant turns)."""
    full = render(tokenizer, messages)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or (only_last and i != len(messages) - 1):
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True) if i else _generation_header(tokenizer)
        upto = render(tokenizer, messages[: i + 1])
        if not (full.startswith(upto) and upto.startswith(before)):
            raise ChatTemplateError(
                "the chat template does not render a conversation's prefix as a prefix of the whole "
                "(it rewrites earlier turns), so assistant tokens cannot be located; set chat_template in the training config"
            )
        spans.append((len(before), len(upto)))
    return full, spans


def _generation_header(tokenizer) -> str:
    """What the template puts before the first assistant turn of a conversation that opens with one."""
    return render(tokenizer, [], add_generation_prompt=True) if _renders_empty(tokenizer) else ""


def _renders_empty(tokenizer) -> bool:
    try:
        render(tokenizer, [], add_generation_prompt=True)
        return True
    except Exception:  # noqa: BLE001 - templates may index messages[0]
        return False


def encode_spans(tokenizer, text: str, spans: list[tuple[int, int]], max_len: int) -> Encoded:
    """Token ids of ``text`` and a mask of the tokens that start inside ``spans``; cut at ``max_len``."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    mask = [any(a <= start < b for a, b in spans) for start, _ in offsets]
    truncated = len(ids) > max_len
    return Encoded(ids[:max_len], mask[:max_len], truncated)


def encode_chat(tokenizer, messages: list[dict], max_len: int, assistant_only: bool = True) -> Encoded:
    """A conversation for SFT: ids and the loss mask (assistant turns, or every token but the first)."""
    text, spans = assistant_spans(tokenizer, messages)
    if not assistant_only:
        spans = [(0, len(text))]
    return encode_spans(tokenizer, text, spans, max_len)


def encode_reply(tokenizer, prompt: list[dict], reply: str, max_len: int) -> Encoded:
    """A prompt and one assistant reply (preference data): the mask covers the reply only."""
    text, spans = assistant_spans(tokenizer, [*prompt, {"role": "assistant", "content": reply}], only_last=True)
    return encode_spans(tokenizer, text, spans, max_len)


def encode_prompt(tokenizer, prompt: list[dict]) -> list[int]:
    """The prompt ids a rollout continues from (generation header appended)."""
    text = render(tokenizer, prompt, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]
