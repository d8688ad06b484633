"""Evaluation throughput: items/s per task for one checkpoint (default: the demo's tiny model).

python bench/eval_throughput.py --checkpoint results/models/tiny/seed42/step400 --max-items 50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from cdsynth.checkpoints import load_causal_lm
from cdsynth.eval import suite
from cdsynth.eval.metrics import CHOICE_TASKS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=Path("results/models/tiny/seed42/step400"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/babylm2025_eval"))
    parser.add_argument("--test", type=Path, default=Path("results/corpus/test.arrow"))
    parser.add_argument("--max-items", type=int, default=50, help="items per subtask")
    parser.add_argument("--batch-size", type=int, default=64, help="longest sequences per batch")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_causal_lm(args.checkpoint, device)
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    runs = {
        "perplexity (documents)": lambda: suite.perplexity_task(
            model, tokenizer, args.test, args.max_items, args.batch_size, args.window
        )[1],
        **{
            task: (
                lambda t=task: suite.choice_task(
                    model, tokenizer, args.data_dir, t, args.max_items, args.batch_size
                )[1]
            )
            for task in CHOICE_TASKS
        },
        "wug": lambda: suite.wug_task(model, tokenizer, args.data_dir, args.max_items, args.batch_size)[1],
        "reading + eye tracking (words)": lambda: suite.reading_task(
            model, tokenizer, args.data_dir, args.batch_size
        )[2],
    }
    print(
        f"{args.checkpoint} on {device}, {args.threads} threads, at most {args.max_items} items per subtask"
    )
    print("| task | items | seconds | items/s |")
    print("|---|---|---|---|")
    for name, run in runs.items():
        start = time.perf_counter()
        rows = run()
        seconds = time.perf_counter() - start
        print(f"| {name} | {len(rows)} | {seconds:.1f} | {len(rows) / seconds:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
