"""The trainer: one implementation for baselines and mixtures, resumable bit for bit on CPU.

A run works in `<out>.partial/` (`cdsynth.resumable`): a checkpoint directory per save step and a
`state.pt` with everything needed to continue (model, optimizer, scheduler, RNG, step, metrics), so a
killed job continues from its last save. Only when the last step is done does `<out>/` appear, whole:
`step<N>/` checkpoints, metrics.csv and curve.png, and a folder per tracker of `train.loggers`
(`cdsynth.train.loggers`).

Several GPUs train through torchrun (DDP, `cdsynth.train.launch`); with one device or none, call
`train()` directly.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import transformers
from tqdm import tqdm

from cdsynth.data.shards import load_documents
from cdsynth.data.tokenizer import load_tokenizer, save_tokenizer, tokenizer_fingerprint
from cdsynth.errors import ConfigError, DataError
from cdsynth.io import atomic_path, read_json
from cdsynth.resumable import WorkDir
from cdsynth.spec.schedule import babylm_steps
from cdsynth.spec.training import TrainSettings
from cdsynth.threads import set_torch_threads
from cdsynth.train.curve import plot_training_curve
from cdsynth.train.loggers import write_trackers
from cdsynth.train.models import build_model, save_model
from cdsynth.train.packing import MixedBatches, batch_source, packed_in_order

# Positions whose vocabulary-sized logits the loss computes at once (see `chunked_lm_loss`).
LOSS_CHUNK = 4096

METRIC_FIELDS = [
    "step",
    "tokens",
    "words_real",
    "words_synthetic",
    "train_loss",
    "val_loss",
    "lr",
    "elapsed_s",
    "tokens_per_s",
    "synthetic_ratio",
]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> tuple[Dist, torch.device]:
    """Join the torchrun process group if there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(), torch.device("cuda" if torch.cuda.is_available() else "cpu")
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), world, local_rank), device


def lr_factor(step: int, cfg: TrainSettings) -> float:
    """Linear warmup, then cosine decay to `min_lr_ratio` of the peak at the last step.

    Step `step` (0-based) of the warm-up trains at (step + 1) / warmup_steps of the peak, or, with
    `warmup_from_zero`, at step / warmup_steps as Hugging Face's `get_cosine_schedule_with_warmup` does
    (so the first update has lr 0).
    """
    if step < cfg.warmup_steps:
        return (step + (0 if cfg.warmup_from_zero else 1)) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def run_fingerprint(cfg: TrainSettings, *inputs: str) -> str:
    """Identifies what a saved state belongs to, so a changed config never resumes a stale run. Neither
    the threads nor the loggers change what it trains (the loggers write from the history when the run
    publishes), and leaving the loggers out keeps the fingerprints of the runs saved before they existed."""
    settings = {key: value for key, value in asdict(cfg).items() if key != "loggers"}
    payload = json.dumps([settings | {"threads": None}, inputs], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def make_optimizer(model: torch.nn.Module, cfg: TrainSettings, device: torch.device) -> torch.optim.AdamW:
    """AdamW decaying matrices only (not norms), fused on GPU."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def chunk_loss_sum(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed cross entropy of one chunk of positions, on float32 logits as Hugging Face's loss takes them."""
    return torch.nn.functional.cross_entropy(head(hidden).float(), labels, ignore_index=-100, reduction="sum")


def chunked_lm_loss(
    hidden: torch.Tensor, head: torch.nn.Module, ids: torch.Tensor, chunk: int = LOSS_CHUNK
) -> torch.Tensor:
    """Mean cross entropy of predicting ids[:, i + 1] from hidden[:, i], `chunk` positions at a time.

    The value of `model(input_ids=ids, labels=ids).loss` (float32 logits, mean over batch x (block - 1)
    positions), without its float32 logits for the whole micro batch (16 x 1024 x 32000 x 4 bytes = 2 GB,
    held several times over). Each chunk is checkpointed: autograd keeps the chunk's hidden states, not its
    logits, and recomputes the head for the chunk in backward, so at most one chunk of logits exists at a
    time (for one extra head matmul per token). A micro batch of one chunk (the demo's 16 x 64) is not
    checkpointed: its logits are small, and the recomputation would cost the demo ~10% of its training time.
    """
    labels = torch.nn.functional.pad(ids[:, 1:], (0, 1), value=-100).flatten()  # the last position: none
    hidden = hidden.flatten(0, 1)
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, len(labels), chunk):
        part = (head, hidden[start : start + chunk], labels[start : start + chunk])
        if torch.is_grad_enabled() and len(labels) > chunk:
            total = total + torch.utils.checkpoint.checkpoint(
                chunk_loss_sum, *part, use_reentrant=False, preserve_rng_state=False
            )
        else:
            total = total + chunk_loss_sum(*part)
    return total / (ids.shape[0] * (ids.shape[1] - 1))


def next_token_loss(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """A causal LM's training loss on `ids`: its base model (no KV cache: nothing reuses it), then the head
    in chunks (`chunked_lm_loss`)."""
    hidden = model.base_model(input_ids=ids, use_cache=False).last_hidden_state
    return chunked_lm_loss(hidden, model.get_output_embeddings(), ids)


class NextTokenLoss(torch.nn.Module):
    """`next_token_loss` as a module, so that torch.compile and DDP wrap the whole loss, head included.

    DDP reduces gradients only in a backward that follows a forward through the DDP module itself (calling
    the wrapped model's parts directly would skip the reduction silently), so the body and the chunked head
    must both run inside one `forward`; the parameters are the language model's own.
    """

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return next_token_loss(self.lm, input_ids)


def to_device(blocks: np.ndarray, device: torch.device) -> torch.Tensor:
    """Token blocks as int64 on `device` in one copy: from pinned memory and asynchronous on CUDA."""
    ids = torch.from_numpy(blocks).long()
    return ids.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else ids


@torch.inference_mode()
def validation_loss(
    model: torch.nn.Module, blocks: np.ndarray, cfg: TrainSettings, device, ddp: Dist
) -> float:
    """Mean next-token loss over the validation blocks, split across ranks."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    mine = to_device(blocks[ddp.rank :: ddp.world], device)
    for start in range(0, len(mine), cfg.micro_batch_size):
        ids = mine[start : start + cfg.micro_batch_size]
        with autocast(device):
            loss = next_token_loss(model, ids)
        total[0] += loss.double() * ids.numel()
        total[1] += ids.numel()
    if ddp.world > 1:
        dist.all_reduce(total)
    model.train()
    return (total[0] / total[1]).item()


def mean_over_ranks(value: float, device: torch.device, ddp: Dist) -> float:
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.item() / ddp.world


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def save_checkpoint(model, tokenizer, path: Path, info: dict[str, Any]) -> None:
    with atomic_path(path, directory=True) as tmp:
        save_model(model, tmp)
        save_tokenizer(tokenizer, tmp)
        (tmp / "checkpoint.json").write_text(json.dumps(info, indent=2) + "\n")


def save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def write_metrics(rows: list[dict[str, Any]], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


@dataclass
class Run:
    """The live objects of one training run; `model` is the `NextTokenLoss` of `raw_model`, as trained
    (compiled, DDP-wrapped)."""

    cfg: TrainSettings
    ddp: Dist
    device: torch.device
    raw_model: torch.nn.Module
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    tokenizer: Any
    work: WorkDir


def optimizer_step(run: Run, blocks: np.ndarray) -> float:
    """Forward/backward over this rank's micro batches of one global batch, then one AdamW step."""
    cfg, micro = run.cfg, run.cfg.micro_batch_size
    accum = len(blocks) // micro
    total = torch.zeros((), device=run.device)
    step_ids = to_device(blocks, run.device)
    for index in range(accum):
        ids = step_ids[index * micro : (index + 1) * micro]
        sync = run.ddp.world == 1 or index == accum - 1
        with contextlib.nullcontext() if sync else run.model.no_sync(), autocast(run.device):
            loss = run.model(ids) / accum
        loss.backward()
        total += loss.detach()
    if cfg.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(run.raw_model.parameters(), cfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    step_loss = total.item()
    return mean_over_ranks(step_loss, run.device, run.ddp) if run.ddp.world > 1 else step_loss


def save_progress(run: Run, step: int, history: list[dict[str, Any]], mark: str | None) -> None:
    """Checkpoint directory plus the full state to resume from (main rank only)."""
    row = history[-1]
    info = row | {"words": row["words_real"] + row["words_synthetic"], "mark": mark, "seed": run.cfg.seed}
    save_checkpoint(run.raw_model, run.tokenizer, run.work.path / f"step{step}", info)
    state = {
        "step": step,
        "history": history,
        "rng": rng_state(),
        "model": run.raw_model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
    }
    save_state(run.work.path / "state.pt", state)


def start_run(cfg: TrainSettings, data_ids: tuple[str, ...], tokenizer_dir, out_dir) -> Run:
    ddp, device = setup_distributed()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    tokenizer = load_tokenizer(tokenizer_dir)
    raw_model = build_model(cfg.arch, tokenizer, cfg.seed).to(device)
    optimizer = make_optimizer(raw_model, cfg, device)
    model = NextTokenLoss(raw_model)
    model = torch.compile(model) if cfg.compile else model
    if ddp.world > 1:
        device_ids = [ddp.local_rank] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    return Run(
        cfg=cfg,
        ddp=ddp,
        device=device,
        raw_model=raw_model,
        model=model,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg)),
        tokenizer=tokenizer,
        work=WorkDir(out_dir, {"run": run_fingerprint(cfg, *data_ids)}),
    )


def check_out_dir(out_dir: Path) -> None:
    """The finished run replaces `out_dir` whole, so it may only hold an earlier run, or nothing."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "metrics.csv").is_file():
        raise ConfigError(f"{out_dir}: not empty and not a training run; train into a new or empty directory")


def split_batch(cfg: TrainSettings, world: int) -> int:
    """Sequences per rank per step; the global batch must split into ranks x micro batches."""
    per_rank = cfg.batch_size // world
    if cfg.batch_size % world or per_rank % cfg.micro_batch_size:
        raise ConfigError(
            f"train.batch_size {cfg.batch_size} does not split into {world} devices x micro batches "
            f"of {cfg.micro_batch_size}: choose a batch size divisible by devices x micro_batch_size"
        )
    return per_rank


def load_data(
    cfg: TrainSettings, train_shards, valid_shards, tokenizer_dir, synthetic_shards=None
) -> tuple[MixedBatches, np.ndarray, tuple[str, ...]]:
    """The batch source, the validation blocks and an id of every input (for the run fingerprint)."""
    batches = batch_source(cfg.data_order, train_shards, tokenizer_dir, synthetic_shards)
    used = [train_shards, valid_shards] + ([synthetic_shards] if cfg.mixture else [])
    ids = tuple(json.dumps(read_json(Path(d) / "meta.json")["shards"]) for d in used)
    valid = validation_blocks(cfg, valid_shards, tokenizer_dir)
    return batches, valid, (*ids, tokenizer_fingerprint(tokenizer_dir))


def validation_blocks(cfg: TrainSettings, shards_dir, tokenizer_dir) -> np.ndarray:
    """`eval_blocks` blocks spread evenly over the test documents packed in order, so every source counts."""
    blocks = packed_in_order(load_documents(shards_dir, tokenizer_dir).tokens, cfg.block_size)
    if len(blocks) == 0:
        raise DataError(f"{shards_dir}: fewer test tokens than one block of {cfg.block_size}; add test text.")
    return blocks[np.unique(np.linspace(0, len(blocks) - 1, cfg.eval_blocks).round().astype(int))]


def train(
    cfg: TrainSettings,
    train_shards: str | os.PathLike,
    valid_shards: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    synthetic_shards: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Train (or resume) one run and publish `out_dir/step<N>/` checkpoints, metrics.csv, curve.png and the
    folders of its loggers."""
    check_out_dir(Path(out_dir))
    transformers.utils.logging.disable_progress_bar()
    set_torch_threads(cfg.threads)
    batches, valid_blocks, data_ids = load_data(
        cfg, train_shards, valid_shards, tokenizer_dir, synthetic_shards
    )
    run = start_run(cfg, data_ids, tokenizer_dir, out_dir)
    ddp, per_rank = run.ddp, split_batch(cfg, run.ddp.world)
    start, history = resume(run)
    if ddp.main and cfg.mixture:
        seen = batches.ratio_seen(cfg.steps)
        print(f"mixture {cfg.mixture.slug}: {seen:.2%} of the sequences are synthetic")
    tokens_per_step = cfg.batch_size * cfg.block_size
    saves = save_schedule(cfg, batches)
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        desc=f"train seed{cfg.seed}",
        unit="step",
        disable=not ddp.main,
        mininterval=1 if sys.stderr.isatty() else 15,
    )
    losses, clock, clock_step = [], time.perf_counter(), start
    for step in range(start + 1, cfg.steps + 1):
        blocks = batches.batch(step - 1)[ddp.rank * per_rank : (ddp.rank + 1) * per_rank]
        losses.append(optimizer_step(run, blocks))
        elapsed = time.perf_counter() - clock
        speed = (step - clock_step) * tokens_per_step / max(elapsed, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{speed:,.0f}", refresh=False)
        if step not in saves:
            continue
        words_real, words_synthetic = batches.words_seen(step)
        history.append(
            {
                "step": step,
                "tokens": step * tokens_per_step,
                "words_real": round(words_real),
                "words_synthetic": round(words_synthetic),
                "train_loss": round(float(np.mean(losses)), 6),
                "val_loss": round(validation_loss(run.raw_model, valid_blocks, cfg, run.device, ddp), 6),
                "lr": run.scheduler.get_last_lr()[0],
                "elapsed_s": round((history[-1]["elapsed_s"] if history else 0.0) + elapsed, 3),
                "tokens_per_s": round(speed, 1),
                "synthetic_ratio": round(batches.ratio_seen(step), 6),
            }
        )
        if ddp.main:
            save_progress(run, step, history, saves[step])
            tqdm.write(
                f"step {step}: train loss {history[-1]['train_loss']:.4f}, val {history[-1]['val_loss']:.4f}"
            )
        losses, clock, clock_step = [], time.perf_counter(), step
    bar.close()
    if ddp.main:
        publish(run, history)
    if ddp.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return history


def save_schedule(cfg: TrainSettings, batches: MixedBatches) -> dict[int, str | None]:
    """{step: its BabyLM mark or None} for every step the run saves (`cdsynth.spec.schedule`)."""
    saves: dict[int, str | None] = dict.fromkeys(cfg.checkpoints.fixed_steps(cfg.steps))
    if cfg.checkpoints.babylm:
        saves |= babylm_steps([sum(batches.words_seen(step)) for step in range(cfg.steps + 1)])
    return saves


def resume(run: Run) -> tuple[int, list]:
    """Continue from the last state this very run saved (a work dir of other settings is discarded)."""
    if run.ddp.main:
        run.work.open()
    if run.ddp.world > 1:
        dist.barrier()
    state_path = run.work.path / "state.pt"
    if not state_path.exists():
        return 0, []
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    run.raw_model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    if run.ddp.main:
        print(f"resuming from step {state['step']} ({state_path})", file=sys.stderr)
    return state["step"], state["history"]


def publish(run: Run, history: list[dict[str, Any]]) -> None:
    """Put the checkpoints, metrics.csv, curve.png and the trackers' folders at the run's output, in one
    rename."""
    write_metrics(history, run.work.path / "metrics.csv")
    plot_training_curve(history, run.work.path / "curve.png", title=run.work.out.as_posix())
    trackers = write_trackers(run.cfg.loggers, history, run.work.path, name=run.work.out.as_posix())
    run.work.publish([*(f"step{row['step']}" for row in history), "metrics.csv", "curve.png", *trackers])
