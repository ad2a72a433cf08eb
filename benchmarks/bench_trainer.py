"""Training throughput: dataengine's trainer vs the Hugging Face Trainer, same model and data.

Both train the same LlamaForCausalLM (same preset, same initial weights) with AdamW, the same
batch size, sequence length, schedule and gradient clipping, on the same packed samples of
one blend version (the demo corpus, 512-token BPE). Throughput is steady state: tokens of
steps after the first ``--skip`` steps over their wall time (startup, compilation and the
final save are excluded for both). Runs alternate (ours, HF, ours, HF, ...) and the best of
``--repeats`` is compared, because other jobs share the machine.

    python benchmarks/bench_trainer.py --preset small --seq-len 256 --steps 40 --repeats 2
    python benchmarks/bench_trainer.py --preset small --seq-len 256 --precision defaults  # each one's default
    python benchmarks/bench_trainer.py --preset 124m --seq-len 1024 --batch 16 --device cuda --precision bf16  # GPU: + MFU

Needs `accelerate` for the HF Trainer (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataengine.trainer.config import load_config  # noqa: E402
from dataengine.trainer.data import TrainStream, load_manifest  # noqa: E402
from dataengine.trainer.loop import train  # noqa: E402
from dataengine.trainer.model import build_model, flops_per_token, gpu_peak_flops, model_config  # noqa: E402
from dataengine.warehouse import Warehouse, init_warehouse  # noqa: E402
from dataengine.warehouse.blends import Blends  # noqa: E402
from dataengine.warehouse.tokenizers import register_tokenizer, train_tokenizer  # noqa: E402
from trainer_common import add_shape_args  # noqa: E402


def build_blend(root: Path) -> tuple[dict, object]:
    init_warehouse(root)
    wh = Warehouse(root)
    with gzip.open(resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz", "rt") as fh:
        recs = [json.loads(line) for line in fh]
    wh.write_table("docs", pa.table({"id": [r["id"] for r in recs], "text": [r["text"] for r in recs]}))
    tok = register_tokenizer(wh, "bench-bpe512", train_tokenizer((r["text"] for r in recs), 512), source="docs")
    blends = Blends(wh)
    blends.create({"name": "bench", "components": [{"name": "all", "sql": "SELECT id, text FROM docs", "weight": 1}]})
    return load_manifest(blends.freeze("bench", tokenizer="bench-bpe512")["manifest"]), tok


def run_ours(manifest, tok, args, out: Path) -> tuple[float, str]:
    """Steady-state tokens/s of our trainer, and the precision it trained in."""
    cfg = load_config(None, {
        "steps": args.steps, "model.preset": args.preset, "model.seq_len": args.seq_len,
        "data.micro_batch_size": args.batch, "data.val_fraction": 0.05, "data.val_samples": 8,
        "optimizer.name": "adamw", "schedule.warmup_steps": 5, "log_every": 1,
        "eval_every": args.steps, "checkpoint_every": args.steps, "runtime.threads": args.threads,
        "runtime.device": args.device, "runtime.compile": args.compile, "progress": False,
        "runtime.precision": {"fp32": "fp32", "bf16": "bf16", "defaults": "auto"}[args.precision],
    })
    summary = train(manifest, cfg, out, tok.tokenizer, resume=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady = [r for r in rows if "loss" in r and r["step"] > args.skip]
    tokens_per_step = args.batch * args.seq_len
    seconds = sum(tokens_per_step / r["tokens_per_s"] for r in steady)
    return tokens_per_step * len(steady) / seconds, summary["precision"]


class _Samples(torch.utils.data.Dataset):
    """The same packed windows our trainer reads, as HF Trainer examples."""

    def __init__(self, stream: TrainStream, n: int):
        self.stream, self.n = stream, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        ids = torch.from_numpy(self.stream.reader[i][:-1].astype(np.int64))
        return {"input_ids": ids, "labels": ids}


def run_hf(manifest, tok, args, out: Path) -> float:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    torch.set_num_threads(args.threads)
    cfg = model_config(args.preset, manifest["vocab_size"], manifest["eos_id"], args.seq_len)
    model = build_model(cfg, seed=0)
    stream = TrainStream(manifest, args.seq_len, None, args.batch, 1, 1, args.steps, 0.05)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if args.device == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    targs = TrainingArguments(
        output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch,
        learning_rate=3e-3, weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0, warmup_steps=5,
        lr_scheduler_type="cosine", logging_steps=args.steps, save_strategy="no", report_to=[],
        # "defaults": TrainingArguments' own default precision (fp32 unless bf16=True is asked for)
        use_cpu=args.device == "cpu", bf16=args.precision == "bf16", dataloader_num_workers=0, seed=0,
        torch_compile=args.compile, disable_tqdm=True,
    )
    Trainer(model=model, args=targs, train_dataset=_Samples(stream, args.steps * args.batch),
            callbacks=[Clock()]).train()
    steady = len(stamps) - 1 - args.skip
    return args.batch * args.seq_len * steady / (stamps[-1] - stamps[args.skip])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_args(ap, steps=40)
    ap.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the throughput")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--compile", action="store_true", help="torch.compile in both trainers")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "defaults"],
                    help="fp32 or bf16 autocast in both trainers (bf16 on CPU needs AVX512-BF16/AMX), or each "
                         "trainer's default: ours `precision: auto`, the HF Trainer's fp32")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest, tok = build_blend(tmp / "wh")
        ours, hf = [], []
        for r in range(args.repeats):
            tps, ours_precision = run_ours(manifest, tok, args, tmp / f"ours{r}")
            ours.append(tps)
            hf.append(run_hf(manifest, tok, args, tmp / f"hf{r}"))
            print(f"repeat {r}: ours {ours[-1]:,.0f} tok/s, HF Trainer {hf[-1]:,.0f} tok/s", flush=True)
    cfg = model_config(args.preset, manifest["vocab_size"], manifest["eos_id"], args.seq_len)
    model = build_model(cfg)
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "preset": args.preset, "parameters": sum(p.numel() for p in model.parameters()),
        "seq_len": args.seq_len, "batch": args.batch, "steps": args.steps, "compile": args.compile, "precision": args.precision,
        "ours_trained_in": ours_precision, "hf_trained_in": "bf16" if args.precision == "bf16" else "fp32",
        "ours_tokens_per_s": [round(x) for x in ours], "hf_tokens_per_s": [round(x) for x in hf],
        "speedup_best": max(ours) / max(hf),
    }
    peak = gpu_peak_flops(torch.device(args.device))
    if peak:
        result["mfu_ours"] = flops_per_token(model, args.seq_len) * max(ours) / peak
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
