"""`dataengine train`: pretrain a decoder on a blend version, or post-train a model on one.

Single process:  dataengine train --blend web@3 --config train.yaml
Several:         torchrun --nproc_per_node=8 -m dataengine.cli train --blend web@3 --config train.yaml
Post-training:   dataengine train --stage sft --blend chat@1 --init RUN/model --config post.yaml
                 (stages: sft, rm, dpo, grpo; see docs/posttraining.md)
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out


def train(
    blend: str = typer.Option(..., "--blend", help="blend version NAME@V (NAME alone: the latest version)"),
    stage: str = typer.Option("pretrain", "--stage", help="pretrain | sft | rm | dpo | grpo"),
    init: Optional[str] = typer.Option(None, "--init", help="post-training: model folder, .gguf, smollm2 "
                                                            "(default) or a recorded run_id"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="training config YAML (docs/trainer.md)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="run folder (default WAREHOUSE/training/NAME@V-<config hash>)"),
    tokenizer: Optional[str] = typer.Option(None, help="export with this tokenizer (default: the version's)"),
    steps: Optional[int] = typer.Option(None, help="override the config's steps"),
    set_: List[str] = typer.Option([], "--set", help="config override, e.g. optimizer.name=muon (repeatable)"),
    force: bool = typer.Option(False, "--force",
                               help="resume even if the checkpoint used another blend/tokenizer/init model"),
    fresh: bool = typer.Option(False, "--fresh", help="ignore existing checkpoints in the run folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Train on exactly the tokens (or rows) of a blend version; resumes from the run folder."""
    overrides = api.parse_overrides(set_)
    if steps is not None:
        overrides["steps"] = steps
    summary = api.train(open_cli_warehouse(), blend, config=config, overrides=overrides, output=output,
                        tokenizer=tokenizer, force=force, fresh=fresh, progress=not quiet, stage=stage, init=init)
    if summary is None:  # not rank 0
        return
    if stage != "pretrain":
        out(api.describe_post_training(summary))
        return
    out(
        f"trained {summary['parameters']:,}-parameter model on {summary['blend_ref']} for {summary['steps']} steps "
        f"({summary['tokens']:,} tokens): loss {summary['final_loss']:.4f}, validation {summary['final_val_loss']:.4f} "
        f"(unigram baseline {summary['unigram_val_loss']:.4f}); model {summary['model_path']}; "
        f"report {summary['report_path']}"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
