"""Start a training run: in this process, or through torchrun with one process per GPU (DDP).

python -m cdsynth.train.launch --spec spec.json     # what torchrun runs in each process
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from cdsynth.spec.training import TrainSettings
from cdsynth.train.trainer import train


def launch(cfg: TrainSettings, gpus: int, **paths: str) -> None:
    """Train in this process, or through torchrun with one process per GPU when there are several."""
    available = torch.cuda.device_count()
    if gpus <= 1 or available < 2:
        if gpus > available:
            print(f"asked for {gpus} GPUs, {available} visible: training on what is there", file=sys.stderr)
        train(cfg, **paths)
        return
    spec = Path(f"{paths['out_dir']}.spec.json")
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({"config": asdict(cfg), **paths}))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={min(gpus, available)}",
        "-m",
        "cdsynth.train.launch",
        "--spec",
        str(spec),
    ]
    subprocess.run(command, check=True)
    spec.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train one model (torchrun-compatible).")
    parser.add_argument(
        "--spec",
        required=True,
        help="JSON file: {config, train_shards, valid_shards, tokenizer_dir, out_dir}",
    )
    spec = json.loads(Path(parser.parse_args(argv).spec).read_text())
    recipe = spec.pop("config")
    cfg = TrainSettings.of(recipe, recipe.pop("arch"), recipe.pop("seed"))
    train(cfg, **spec)


if __name__ == "__main__":
    main()
