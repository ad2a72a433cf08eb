"""Post-training speed: SFT tokens/s vs TRL's SFTTrainer, and where GRPO's time goes, on CPU.

SFT: both train the same chat model (a Llama built offline from the demo corpus, ``--hidden``
wide, ``--layers`` deep, 512-token BPE, ChatML) on the same conversations ("Continue: <start of a
corpus document>" -> its next characters), fp32, AdamW, packing into rows of ``--max-len``
tokens (ours: best fit in stream order; TRL: best-fit decreasing, its padding-free default),
loss on the assistant reply only (ours: assistant-only; TRL: prompt-completion data with
``completion_only_loss``), ``--batch`` rows per step, the same thread count. Throughput is
steady state: non-padding tokens of the steps after the first ``--skip`` over their wall
time, and over the process's CPU time (the fair clock when other jobs share the machine). Each run is its own process; runs alternate (ours, TRL, ours, TRL) and the best of
``--repeats`` is compared, because other jobs share the machine.

GRPO: the "pick 7" task of the tests from an SFT'd copy of the same model, ``--grpo-steps``
steps with longer completions; reports rollout tokens/s (transformers ``generate`` on the
policy) and the share of step time spent in rollouts vs updates.

    python benchmarks/bench_posttrain.py --repeats 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import pyarrow as pa


def conversations(n_chars_prompt: int = 200, n_chars_reply: int = 600) -> list[dict]:
    with gzip.open(resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz", "rt") as fh:
        docs = [json.loads(line)["text"] for line in fh]
    out = []
    for i, text in enumerate(docs):
        if len(text) < n_chars_prompt + 100:
            continue
        out.append({"id": f"c{i:04d}", "prompt": "Continue: " + text[:n_chars_prompt],
                    "reply": text[n_chars_prompt : n_chars_prompt + n_chars_reply]})
    return out


def build(root: Path, args) -> tuple[str, str]:
    """(warehouse root, model folder) with the chat blend `bench-chat@1` frozen."""
    import dataengine as de
    from dataengine.trainer.tiny_model import build_tiny_chat_model

    wh = de.open_warehouse(root / "wh", create=True)
    rows = [{"id": c["id"], "messages": [{"role": "user", "content": c["prompt"]},
                                         {"role": "assistant", "content": c["reply"]}]} for c in conversations()]
    wh.write_table("chat", pa.Table.from_pylist(rows))
    de.create_blend(wh, "bench-chat", {"all": ("SELECT id, messages FROM chat", 1.0)})
    de.freeze_blend(wh, "bench-chat")
    model = build_tiny_chat_model(root / "model", hidden_size=args.hidden, layers=args.layers)
    return str(root / "wh"), str(model)


def run_ours(wh_root: str, model: str, out: Path, args) -> dict:
    import dataengine as de
    from dataengine.trainer.post.sft import SftStage

    cpu_marks: list[float] = []
    step = SftStage.train_step

    def timed(self, *a, **kw):  # CPU time per step: a fair clock on a machine other jobs share
        out_ = step(self, *a, **kw)
        cpu_marks.append(time.process_time())
        return out_

    SftStage.train_step = timed
    start_cpu = time.process_time()
    summary = de.train(wh_root, "bench-chat@1", stage="sft", init=model, output=out, fresh=True, progress=False,
                       overrides={"steps": args.steps, "model.seq_len": args.max_len, "data.micro_batch_size": args.batch,
                                  "data.val_fraction": 0.0, "eval_every": 10**6, "checkpoint_every": 10**6,
                                  "optimizer.lr": 1e-4, "runtime.precision": "fp32", "runtime.threads": args.threads})
    steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steady = [s for s in steps if "loss" in s][args.skip:]
    tokens, seconds = sum(s["tokens"] for s in steady), sum(s["seconds"] for s in steady)
    marks = [start_cpu, *cpu_marks]
    cpu = marks[-1] - marks[args.skip]
    return {"tokens_per_s": tokens / seconds, "tokens_per_cpu_s": tokens / cpu, "tokens": tokens, "seconds": seconds,
            "final_loss": summary["final_loss"]}


def run_trl(model: str, out: Path, args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    torch.set_num_threads(args.threads)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": c["prompt"]}],
                               "completion": [{"role": "assistant", "content": c["reply"]}]} for c in conversations()])

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks = []

        def on_step_end(self, a, state, control, **kw):
            self.marks.append((time.perf_counter(), state.num_input_tokens_seen, time.process_time()))

    clock = Clock()
    cfg = SFTConfig(output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch,
                    learning_rate=1e-4, max_grad_norm=1.0, packing=True, packing_strategy="bfd", max_length=args.max_len,
                    completion_only_loss=True, logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=True,
                    bf16=False, fp16=False, dataloader_num_workers=0, include_num_input_tokens_seen="non_padding",
                    lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, disable_tqdm=True)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32), args=cfg,
                         train_dataset=data, processing_class=AutoTokenizer.from_pretrained(model), callbacks=[clock])
    trainer.train()
    marks = clock.marks[args.skip - 1 :]  # from the end of step `skip` on, as for ours
    (t0, n0, c0), (t1, n1, c1) = marks[0], marks[-1]
    return {"tokens_per_s": (n1 - n0) / (t1 - t0), "tokens_per_cpu_s": (n1 - n0) / (c1 - c0), "tokens": n1 - n0,
            "seconds": t1 - t0}


def run_grpo(wh_root: str, model: str, out: Path, args) -> dict:
    import dataengine as de

    wh = de.open_warehouse(wh_root)
    rows = [{"id": f"d{i}", "messages": [{"role": "user", "content": "Pick a digit."},
                                         {"role": "assistant", "content": str(i % 10)}]} for i in range(200)]
    wh.write_table("digits", pa.Table.from_pylist(rows))
    wh.write_table("seven", pa.Table.from_pylist(
        [{"id": f"v{i}", "prompt": "Pick a digit.", "answer": "7", "reward_kind": "exact"} for i in range(200)]))
    for name in ("digits", "seven"):
        de.create_blend(wh, name, {name: (f"SELECT * FROM {name}", 1.0)})
        de.freeze_blend(wh, name)
    common = {"model.seq_len": 64, "runtime.threads": args.threads, "runtime.precision": "fp32"}
    sft = de.train(wh, "digits@1", stage="sft", init=model, output=out / "sft", fresh=True, progress=False,
                   overrides={**common, "steps": 40, "optimizer.lr": 1e-3, "data.micro_batch_size": 8})
    summary = de.train(wh, "seven@1", stage="grpo", init=sft["model_path"], output=out / "grpo", fresh=True,
                       progress=False, overrides={
                           **common, "steps": args.grpo_steps, "optimizer.lr": 1e-3, "grpo.group_size": 8,
                           "grpo.prompts_per_step": 4, "grpo.max_new_tokens": args.grpo_tokens, "grpo.temperature": 1.2,
                           "grpo.dynamic_sampling": False, "data.micro_batch_size": 32, "eval_every": 10**6,
                           "checkpoint_every": 10**6})
    m = summary["stage_metrics"]
    return {k: m[k] for k in ("rollout_tokens_per_s", "rollout_seconds", "update_seconds", "rollout_share")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--grpo-steps", type=int, default=8)
    ap.add_argument("--grpo-tokens", type=int, default=48)
    ap.add_argument("--role", choices=["ours", "trl", "grpo"], help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.role:  # a child process: one measurement, printed as JSON
        root = Path(args.root)
        wh_root, model = str(root / "wh"), str(root / "model")
        out = root / f"{args.role}-{time.time_ns()}"
        fn = {"ours": lambda: run_ours(wh_root, model, out, args), "trl": lambda: run_trl(model, out, args),
              "grpo": lambda: run_grpo(wh_root, model, out, args)}[args.role]
        print("RESULT " + json.dumps(fn()))
        return

    root = Path(tempfile.mkdtemp(prefix="bench-posttrain-"))
    build(root, args)
    passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("role", "root")]

    def child(role: str) -> dict:
        proc = subprocess.run([sys.executable, __file__, f"--role={role}", f"--root={root}", *passthrough],
                              capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{role} failed:\n{proc.stderr[-3000:]}")
        return json.loads(line[len("RESULT "):])

    ours, trl = [], []
    for _ in range(args.repeats):
        ours.append(child("ours"))
        trl.append(child("trl"))
    grpo = child("grpo")
    best_ours, best_trl = max(r["tokens_per_s"] for r in ours), max(r["tokens_per_s"] for r in trl)
    import torch
    import transformers
    import trl as trl_pkg

    print(json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl_pkg.__version__},
        "settings": {k: v for k, v in vars(args).items() if k not in ("role", "root")},
        "sft": {"ours_tokens_per_s": [round(r["tokens_per_s"]) for r in ours],
                "trl_tokens_per_s": [round(r["tokens_per_s"]) for r in trl],
                "ratio_best": round(best_ours / best_trl, 3),
                "ours_tokens_per_cpu_s": [round(r["tokens_per_cpu_s"]) for r in ours],
                "trl_tokens_per_cpu_s": [round(r["tokens_per_cpu_s"]) for r in trl],
                "ratio_best_cpu": round(max(r["tokens_per_cpu_s"] for r in ours)
                                        / max(r["tokens_per_cpu_s"] for r in trl), 3),
                "load_average": os.getloadavg()},
        "grpo": grpo,
    }, indent=1))


if __name__ == "__main__":
    main()
