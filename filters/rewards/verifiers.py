"""Verifiable rewards: does a completion's answer match the reference? One function per kind.

Every verifier returns ``(reward, status)`` and never raises for what a completion contains:
``status`` is ``correct`` (reward 1), ``wrong`` (0), ``unparseable`` (0: no answer could be
read from the completion), ``bad_answer`` (0: the reference itself could not be read),
``timeout`` (0: code ran past its limits) or ``error`` (0: the verifier failed on this row).

- ``math``: answer equivalence by `math-verify <https://github.com/huggingface/Math-Verify>`_
  (numbers, fractions, percentages, LaTeX, ``\\boxed{}``, sets, intervals, equations); a GSM8K
  ``#### N`` final line is read as the answer on either side.
- ``exact``: the whole completion equals the answer after trimming, collapsing whitespace,
  dropping a final period and (unless ``case_sensitive``) case folding.
- ``choice``: the multiple-choice letter the completion picks ("Answer: B", "the answer is (B)",
  ``\\boxed{B}``, a lone "B"), read by math-verify's string extraction.
- ``code``: the completion's program (its last fenced code block, or all of it) followed by the
  answer's test code, run in :mod:`dataengine.filters.rewards.sandbox`; reward 1 when it exits 0.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass

STATUSES = ("correct", "wrong", "unparseable", "bad_answer", "timeout", "error")

_GSM8K = re.compile(r"####\s*([^\n]+)")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.S)
_BOXED_LETTER = re.compile(r"\\boxed\{\s*\\?(?:text\{)?\s*([A-Za-z])\s*\}?\s*\}")
_BRACKETED_LETTER = re.compile(r"[\(\[]\s*([A-Za-z])\s*[\)\]]")


@dataclass(frozen=True)
class VerifierOptions:
    choices: str = "ABCD"
    case_sensitive: bool = False
    code_time_limit: float = 5.0
    code_memory_mb: int = 512
    code_output_kb: int = 64
    math_timeout: int = 5  # seconds per parse/compare (only in a main thread: math-verify uses SIGALRM)


def _math_timeout(options: VerifierOptions) -> int | None:
    return options.math_timeout if threading.current_thread() is threading.main_thread() else None


def _gsm8k_final(text: str) -> str | None:
    found = _GSM8K.findall(text)
    return found[-1].strip() if found else None


def verify_math(completion: str, answer: str, options: VerifierOptions) -> tuple[float, str]:
    from math_verify import parse, verify

    timeout = _math_timeout(options)
    gold_text = _gsm8k_final(answer) or answer
    gold = parse(gold_text, fallback_mode="no_fallback", parsing_timeout=timeout)
    if not gold and any(c in gold_text for c in "\\^{}_"):  # bare LaTeX ("x^2+1"): read it as math mode
        gold = parse(f"${gold_text}$", fallback_mode="no_fallback", parsing_timeout=timeout)
    if not gold:
        return 0.0, "bad_answer"
    pred_text = _gsm8k_final(completion) or completion
    pred = parse(pred_text, parsing_timeout=timeout)
    if not pred:
        return 0.0, "unparseable"
    return (1.0, "correct") if verify(gold, pred, timeout_seconds=timeout) else (0.0, "wrong")


def _normalize_exact(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.split()).rstrip(".").strip()
    return text if case_sensitive else text.casefold()


def verify_exact(completion: str, answer: str, options: VerifierOptions) -> tuple[float, str]:
    got = _normalize_exact(completion, options.case_sensitive)
    if not got:
        return 0.0, "unparseable"
    return (1.0, "correct") if got == _normalize_exact(answer, options.case_sensitive) else (0.0, "wrong")


def verify_choice(completion: str, answer: str, options: VerifierOptions) -> tuple[float, str]:
    from math_verify import StringExtractionConfig, parse, verify

    letters = tuple(options.choices.upper())
    config = [StringExtractionConfig(strings=letters, lowercase=False)]
    gold = parse(answer.strip().strip("().[]").upper(), config, parsing_timeout=_math_timeout(options))
    if not gold:
        return 0.0, "bad_answer"
    # "(B)" and "\boxed{B}" are how models often write a pick: present them as a plain letter
    text = _BOXED_LETTER.sub(lambda m: f" {m.group(1).upper()} ", completion)
    text = _BRACKETED_LETTER.sub(lambda m: f" {m.group(1)} " if m.group(1).upper() in letters else m.group(0), text)
    pred = parse(text, config, parsing_timeout=_math_timeout(options))
    if not pred:
        return 0.0, "unparseable"
    return (1.0, "correct") if verify(gold, pred, timeout_seconds=_math_timeout(options)) else (0.0, "wrong")


def extract_program(completion: str) -> str | None:
    """The last fenced code block (Python or unlabelled), else the whole completion; None if empty."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(completion)]
    python = [body for lang, body in blocks if lang in ("", "python", "py", "python3")]
    program = python[-1] if python else (blocks[-1][1] if blocks else completion)
    return program if program.strip() else None


def verify_code(completion: str, answer: str, options: VerifierOptions) -> tuple[float, str]:
    from dataengine.filters.rewards.sandbox import run_python

    program = extract_program(completion)
    if program is None:
        return 0.0, "unparseable"
    try:
        compile(program, "<completion>", "exec")  # compiling runs nothing
    except (SyntaxError, ValueError):
        return 0.0, "unparseable"
    tests = answer
    if answer.lstrip().startswith("["):  # a JSON list of test statements
        try:
            tests = "\n".join(json.loads(answer))
        except (ValueError, TypeError):
            pass
    result = run_python(program.rstrip() + "\n\n" + tests + "\n", options.code_time_limit, options.code_memory_mb,
                        options.code_output_kb)
    if result.timed_out:
        return 0.0, "timeout"
    return (1.0, "correct") if result.ok else (0.0, "wrong")


VERIFIERS = {"math": verify_math, "exact": verify_exact, "choice": verify_choice, "code": verify_code}


def score(kind: str, completion, answer, options: VerifierOptions) -> tuple[float, str]:
    """The reward of one completion; any failure inside a verifier is ``error`` (0), never raised."""
    if kind not in VERIFIERS:
        return 0.0, "bad_answer"
    if completion is None or not isinstance(completion, str):
        return 0.0, "unparseable"
    if answer is None:
        return 0.0, "bad_answer"
    try:
        return VERIFIERS[kind](completion, str(answer), options)
    except Exception:  # noqa: BLE001 - a verifier bug or a pathological input costs this row only
        return 0.0, "error"
    except BaseException as exc:  # math-verify's TimeoutException derives from BaseException
        if type(exc).__name__ == "TimeoutException":
            return 0.0, "timeout"
        raise
