"""Evaluation speed: the suite now against its frozen copy before shared prefixes, in one run.

Both score the same checkpoint with the same loaded model, task by task, then the whole suite; before
(`bench/eval_before.py`) each task tokenizes its items and is scored on its own, whole sequences only;
now (`cdsynth.eval.suite`) the suite is tokenized once per evaluation job (timed apart: a job scores
several checkpoints with it) and each item's shared prefix is scored once. The frozen copy reads the
items through the package, which now reads them once per process, so its per-task times leave out the
JSON parsing it did for every checkpoint. It checks that
both give the same scores and the same winner on every item, and prints a Markdown table for
bench/RESULTS.md.

python bench/eval_throughput.py --checkpoint results/models/tiny/seed42/step800 --max-items all

`--job RUN` times instead a whole evaluation job, `evaluate_run` on every `--stride`-th checkpoint of
RUN, as the workflow's evaluate rule runs it: once with the package of commit a306471 (extracted from git)
and once with the working tree's, each in a fresh process.

python bench/eval_throughput.py --job results/models/tiny/seed42 --max-items 30 --stride 4 --window 64
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import eval_before as before
import numpy as np
import torch
from transformers import AutoTokenizer

from cdsynth.checkpoints import load_causal_lm
from cdsynth.eval import suite
from cdsynth.eval.metrics import CHOICE_TASKS
from cdsynth.io import read_json
from cdsynth.spec.evaluation import Evaluation
from cdsynth.spec.paths import EVALUATED_FILE


def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0]}, {len(names)} cores" if names else platform.processor() or "CPU"


def timed(run):
    start = time.perf_counter()
    value = run()
    return value, time.perf_counter() - start


def before_runs(model, tokenizer, args, window) -> dict:
    """Task -> a call of the frozen evaluation returning (results, predictions rows)."""
    data, items, batch = args.data_dir, args.max_items, args.batch_size
    runs = {"perplexity": lambda: before.perplexity_task(model, tokenizer, args.test, items, batch, window)}
    for task in CHOICE_TASKS:
        runs[task] = lambda t=task: before.choice_task(model, tokenizer, data, t, items, batch)
    runs["wug"] = lambda: before.wug_task(model, tokenizer, data, items, batch)
    runs["reading"] = lambda: before.reading_task(model, tokenizer, data, batch, args.predictor)[1:]
    return runs


def same_winners(old_rows: list[dict], new_rows: list[dict]) -> tuple[bool, float]:
    """(every item's winner the same, the largest difference of a candidate's log-probability)."""
    winners = [row.get("correct") for row in old_rows] == [row.get("correct") for row in new_rows]
    diffs = [
        np.max(np.abs(np.subtract(a["logprobs"], b["logprobs"])))
        for a, b in zip(old_rows, new_rows)
        if a.get("logprobs") is not None
    ]
    values = [abs(a["value"] - b["value"]) for a, b in zip(old_rows, new_rows) if a.get("value") is not None]
    return winners and len(old_rows) == len(new_rows), float(max(diffs + values, default=0.0))


BEFORE = "a306471"  # the commit whose evaluation `eval_before.py` freezes
JOB = """
import sys, time
from cdsynth.eval.suite import evaluate_run
from cdsynth.spec.evaluation import Evaluation
run, test, out, data, items, batch, window, predictor, stride, threads = sys.argv[1:]
settings = Evaluation(data, None if items == "all" else int(items), int(batch), int(window), predictor)
start = time.perf_counter()
evaluate_run(run, int(stride), test, out, settings, int(threads), model_name="bench")
print(f"JOB_SECONDS {time.perf_counter() - start:.1f}")
"""


def job_seconds(src: Path, args, out: Path) -> float:
    """Seconds of one `evaluate_run` with the package at `src`, in a fresh process (model loads included)."""
    argv = [args.job, args.test, out, args.data_dir, args.max_items or "all", args.batch_size, args.window]
    argv += [args.predictor, args.stride, args.threads]
    env = os.environ | {"PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", JOB, *map(str, argv)], env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.split("JOB_SECONDS")[-1])


def compare_jobs(args) -> None:
    """A whole evaluation job, before and now, on the same run and settings."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", BEFORE, "src"], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        before_s = job_seconds(Path(tmp) / "src", args, Path(tmp) / "before")
        now_s = job_seconds(Path(__file__).resolve().parents[1] / "src", args, Path(tmp) / "now")
        checkpoints = len(read_json(Path(tmp) / "now" / EVALUATED_FILE))
    print(f"evaluation job of {args.job}: {checkpoints} checkpoints, {args.threads} threads,")
    print(f"window {args.window}, items per subtask: {args.max_items or 'all'}")
    print(f"before ({BEFORE}): {before_s:.1f} s; now: {now_s:.1f} s; {before_s / now_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=Path("results/models/tiny/seed42/step800"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/babylm2025_eval"))
    parser.add_argument("--test", type=Path, default=Path("results/corpus/test.arrow"))
    parser.add_argument("--max-items", default="all", help="items per subtask, or all (the full data)")
    parser.add_argument("--batch-size", type=int, default=64, help="longest sequences per batch")
    parser.add_argument("--predictor", default="official", choices=["official", "joint"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--job", type=Path, help="a run directory: time its whole evaluation job instead")
    parser.add_argument("--stride", type=int, default=4, help="with --job: every stride-th checkpoint")
    parser.add_argument("--window", type=int, default=64, help="with --job: perplexity window (demo: 64)")
    args = parser.parse_args()
    args.max_items = None if args.max_items == "all" else int(args.max_items)
    if args.job:
        compare_jobs(args)
        return
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(args.checkpoint, device)
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    settings = Evaluation(
        str(args.data_dir), args.max_items, args.batch_size, reading_predictor=args.predictor
    )
    window = suite.evaluation_window(args.checkpoint, settings)
    tasks, tokenize_s = timed(lambda: suite.suite_tasks(tokenizer, args.test, settings, window))
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu_name()
    items = args.max_items or "all"
    print(f"{args.checkpoint} on {device} ({name}), {args.threads} threads, items per subtask: {items}")
    print("| task | items | before (s) | now (s) | speed-up | same winners | largest difference |")
    print("|---|---|---|---|---|---|---|")
    total_before = 0.0
    for task, run in before_runs(model, tokenizer, args, window).items():
        (_, old_rows), old_s = timed(run)
        mine = [t for t in tasks if t.name == task]
        (_, new_rows), new_s = timed(lambda m=mine: suite.score_tasks(model, m, args.batch_size))
        same, diff = same_winners(old_rows, new_rows)
        total_before += old_s
        print(
            f"| {task} | {len(new_rows):,} | {old_s:.1f} | {new_s:.1f} | {old_s / new_s:.1f}x | "
            f"{'yes' if same else 'NO'} | {diff:.1e} |",
            flush=True,
        )
    _, all_s = timed(lambda: suite.score_tasks(model, tasks, args.batch_size))
    print(
        f"| all tasks | | {total_before:.1f} | {all_s:.1f} | {total_before / all_s:.1f}x | | |\n"
        f"\ntokenizing the suite, once per evaluation job: {tokenize_s:.1f} s; "
        f"a job's first checkpoint: {tokenize_s + all_s:.1f} s ({total_before / (tokenize_s + all_s):.1f}x)"
    )


if __name__ == "__main__":
    main()
