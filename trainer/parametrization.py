"""Width- and depth-aware parametrization, so a learning rate tuned on one size is right for another.

``completep`` follows CompleteP (Dey et al. 2025, "Don't be lazy: CompleteP enables
compute-efficient deep transformers": muP in width plus depth-muP with alpha = 1) and, for
Muon, the spectral reading of muP that "Practical Efficiency of Muon for Pretraining"
(Essential AI 2025) and Bernstein's modular norm rely on. With width multiplier
``w = hidden / base_hidden`` and depth multiplier ``d = layers / base_layers``:

==========================  ===============  ==============  ============  =============
parameter                   init (x HF's)    lr              weight decay  Adam eps
==========================  ===============  ==============  ============  =============
embedding / untied head     1                1               (none)        1
final norm gain             1/w              1/w             (none)        w
block norm gains, biases    1                1               (none)        1/d
q, k, v, gate, up  (Muon)   1/sqrt(w)        1               1             -
o, down            (Muon)   1/(sqrt(w) d)    1/d             d             -
q, k, v, gate, up  (AdamW)  1/sqrt(w)        1/w             w             1/(w d)
o, down            (AdamW)  1/(sqrt(w) d)    1/(w d)         w d           1/w
==========================  ===============  ==============  ============  =============

The papers state three of these as multipliers in the forward pass: logits x 1/w, each
residual branch x 1/d. A multiplier in front of a linear map equals scaling that map's
weights, so we fold them into the weights the multiplier meets first (logits: the final norm
gain, which feeds the head; residual branches: o_proj and down_proj) and adjust those
parameters' init, learning rate, decoupled weight decay and Adam epsilon so that training
follows exactly the multiplier form. The model therefore stays a plain ``LlamaForCausalLM``
at every step: checkpoints, the Hugging Face export, vLLM, FSDP2 and torch.compile see
nothing new.

Muon's update is orthogonalised and scaled by sqrt(max(1, rows/cols)) (``adjust_lr_fn:
original``), which already has the spectral norm muP asks of a hidden matrix at any width,
so its learning rate needs no width factor; with ``match_rms_adamw`` the update's RMS is
matched to AdamW's and the AdamW width rule applies. Width is assumed to grow with the head
count (head dim fixed), as it does in the presets from ``small`` up.

At the base shape every multiplier is 1: ``completep`` and ``standard`` (transformers'
initialisation, one learning rate per optimizer) are the same run there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

PARAMETRIZATIONS = ("completep", "standard")

# o_proj and down_proj write into the residual stream: they carry the 1/d branch multiplier
_BRANCH_OUTPUTS = ("o_proj.weight", "down_proj.weight")


@dataclass(frozen=True)
class Multipliers:
    """Factors on one parameter's initialisation, learning rate, weight decay and Adam epsilon."""

    init: float = 1.0
    lr: float = 1.0
    weight_decay: float = 1.0
    eps: float = 1.0


def shape_multipliers(hf_config, base_hidden: int, base_layers: int) -> tuple[float, float]:
    """(width, depth) multipliers of a model relative to the base shape."""
    return hf_config.hidden_size / base_hidden, hf_config.num_hidden_layers / base_layers


def role_of(name: str, param: torch.Tensor, model) -> str:
    """embedding | head | final_norm | block_vector | block_input | block_output."""
    if param is model.get_input_embeddings().weight:
        return "embedding"
    head = model.get_output_embeddings()
    if head is not None and param is head.weight:
        return "head"
    if ".layers." not in f".{name}":
        return "final_norm" if param.ndim == 1 else "head"
    if param.ndim < 2:
        return "block_vector"
    return "block_output" if name.endswith(_BRANCH_OUTPUTS) else "block_input"


def completep(role: str, optimizer: str, width: float, depth: float, muon_adjust_lr: str = "original") -> Multipliers:
    """The table in this module's docstring. ``optimizer``: the one that updates this parameter."""
    if role in ("embedding", "head"):
        return Multipliers()
    if role == "final_norm":
        return Multipliers(init=1 / width, lr=1 / width, eps=width)
    if role == "block_vector":
        return Multipliers(eps=1 / depth)
    out = role == "block_output"
    init = 1 / math.sqrt(width) / (depth if out else 1)
    if optimizer == "muon" and muon_adjust_lr != "match_rms_adamw":  # spectral scaling: no width factor
        return Multipliers(init=init, lr=1 / depth if out else 1.0, weight_decay=depth if out else 1.0)
    if optimizer == "muon":  # RMS matched to AdamW: AdamW's width rule, no epsilon
        return Multipliers(init=init, lr=1 / (width * (depth if out else 1)), weight_decay=width * (depth if out else 1))
    return Multipliers(init=init, lr=1 / (width * (depth if out else 1)), weight_decay=width * (depth if out else 1),
                       eps=1 / width if out else 1 / (width * depth))


def parameter_multipliers(model, parametrization: str, base_hidden: int, base_layers: int,
                          optimizer_of: dict[str, str], muon_adjust_lr: str = "original") -> dict[str, Multipliers]:
    """Multipliers per parameter name (each shared parameter once). ``optimizer_of`` maps a name to
    "muon" or "adamw" (see trainer/optim.py)."""
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"unknown parametrization {parametrization!r}: choose one of {', '.join(PARAMETRIZATIONS)}")
    width, depth = shape_multipliers(model.config, base_hidden, base_layers)
    out: dict[str, Multipliers] = {}
    for name, param in _unique_parameters(model):
        if parametrization == "standard":
            out[name] = Multipliers()
        else:
            out[name] = completep(role_of(name, param, model), optimizer_of[name], width, depth, muon_adjust_lr)
    return out


@torch.no_grad()
def apply_initialization(model, multipliers: dict[str, Multipliers]) -> None:
    """Scale transformers' initialisation by each parameter's ``init`` factor (N(0, s) x f = N(0, f s);
    norm gains 1 x f), so the draw itself, and its seed, stay transformers'."""
    for name, param in _unique_parameters(model):
        factor = multipliers[name].init
        if factor != 1.0:
            param.mul_(factor)


def _unique_parameters(model):
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if id(param) not in seen:
            seen.add(id(param))
            yield name, param
