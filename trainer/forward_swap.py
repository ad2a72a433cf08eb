"""Swap the ``forward`` of every module of one class in a model, and swap it back.

The CPU training pieces (trainer/rotary.py, trainer/rmsnorm.py) replace transformers' forward
on the training model's instances only: the class, the parameters and the state dict stay
transformers', so checkpoints and the HF export never see the swap.
"""

from __future__ import annotations

import types


def swap_forward(model, module_class: type, forward, enabled: bool = True) -> None:
    """Bind ``forward`` on every ``module_class`` instance in ``model`` (``enabled``), or drop that
    binding so the class's own forward runs again."""
    for module in model.modules():
        if isinstance(module, module_class):
            if enabled:
                module.forward = types.MethodType(forward, module)
            elif "forward" in module.__dict__:
                del module.forward
