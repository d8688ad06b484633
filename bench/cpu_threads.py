"""CPU training throughput under each OpenMP wait policy, on an idle machine and beside a busy neighbour.

torch's OpenMP (libgomp) threads spin before they sleep: cheap on an idle machine, ruinous when the
cores are shared (`cdsynth.threads`). For every policy in `cdsynth.threads.WAIT_POLICIES` and thread
count, a fresh child process, whose environment holds the setting before it imports torch, trains the
demo's model on the demo corpus (config.yaml: models.tiny, vocabulary, block and batch size) as the
trainer does (`start_run`, `optimizer_step`): first idle, then beside a neighbour, one single-thread
busy process at nice +19 (a one-thread torch matmul loop, like another job; `--neighbour python`: a
pure-Python loop). The neighbour is started once and stopped (SIGSTOP) outside the neighbour phases.

    python bench/cpu_threads.py            # ~5-8 min on 2 cores: 4 policies x 1, 2 threads x 2 repeats
    python bench/cpu_threads.py --neighbour-nice 0   # a neighbour as greedy as the job (a browser, a job)
    python bench/cpu_threads.py --smoke    # a quick check that it runs (no meaningful figures)

Run it at normal priority on an otherwise idle machine: the neighbour is niced relative to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cdsynth.threads import COUNT_VARIABLES, WAIT_POLICIES, WAIT_VARIABLES, configure_openmp

REPO = Path(__file__).resolve().parents[1]
NEIGHBOURS = {  # each prints a line once busy
    "torch": "import torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\nprint(flush=True)\n"
    "while True:\n    a @ a\n",
    "python": "print(flush=True)\nwhile True:\n    pass\n",
}


def child(spec: dict) -> None:
    """One setting, in a process whose environment already holds it: a JSON line per phase."""
    import torch

    from cdsynth.spec.training import TrainSettings
    from cdsynth.train.trainer import load_data, optimizer_step, start_run

    running = torch.get_num_threads()  # torch caps OMP_NUM_THREADS at the CPU count
    assert running == spec["threads"], f"torch runs {running} threads, not {spec['threads']}"
    data = spec["data"]
    recipe = dict(spec["train"])
    arch, seed = recipe.pop("arch"), recipe.pop("seed")
    cfg = TrainSettings.of(recipe, arch, seed, steps=10**6, threads=spec["threads"])
    batches, _, ids = load_data(cfg, data["train"], data["test"], data["tokenizer"])
    run = start_run(cfg, ids, data["tokenizer"], Path(data["tokenizer"]).parent / "unused")
    step = 0

    def train(steps: int, max_seconds: float = float("inf")) -> float:
        nonlocal step
        start, done = time.perf_counter(), 0
        while done < steps and (done == 0 or time.perf_counter() - start < max_seconds):
            optimizer_step(run, batches.batch(step))
            step, done = step + 1, done + 1
        return done * cfg.batch_size * cfg.block_size / (time.perf_counter() - start)

    train(spec["warmup"])
    for phase in ("idle", "neighbour"):
        if phase == "neighbour":
            os.kill(spec["neighbour_pid"], signal.SIGCONT)
        try:
            train(spec["warmup"])
            speed = train(spec["steps"], spec["max_seconds"])
        finally:
            if phase == "neighbour":
                os.kill(spec["neighbour_pid"], signal.SIGSTOP)
        print(json.dumps({"phase": phase, "tokens_per_s": speed, "torch": torch.__version__}), flush=True)


def start_neighbour(kind: str, nice: int) -> subprocess.Popen:
    """The busy neighbour, stopped: the child resumes it for its neighbour phase."""
    env = os.environ | dict.fromkeys(COUNT_VARIABLES, "1")
    code = f"import os\nos.nice({nice})\n" + NEIGHBOURS[kind]
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.send_signal(signal.SIGSTOP)
    return proc


def measure(policy: str, threads: int, spec: dict) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES + COUNT_VARIABLES}
    configure_openmp(threads, policy=policy, environ=env)
    spec = spec | {"threads": threads}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], env=env, stdout=subprocess.PIPE, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"the {policy} x {threads} thread(s) child failed (exit {out.returncode})")
    return {row["phase"]: row for row in map(json.loads, out.stdout.splitlines())}


def fair_cost(threads: int, nice: int, cpus: int) -> float:
    """The job's expected loss to a one-thread neighbour `nice` steps nicer if CPU time were shared by
    the scheduler's weights (Linux: x1.25 per step) and nothing else: a neighbour's fair share."""
    job, neighbour = threads, 1.25**-nice
    taken = min(1.0, cpus * neighbour / (job + neighbour))
    return 1 - min(threads, cpus - taken) / min(threads, cpus)


def variables(policy: str) -> str:
    return " ".join(f"{k}={v}" for k, v in WAIT_POLICIES[policy].items()) or "(unset)"


def spread(values: list[float]) -> str:
    """The median, and the range when there are several."""
    median = f"{statistics.median(values):,.0f}"
    return median if len(values) == 1 else f"{median} ({min(values):,.0f}-{max(values):,.0f})"


def recommend(speeds: dict, threads: int) -> str:
    """The policy whose worse case at `threads` (idle, or with the neighbour, as a share of the best
    policy's median there) is best: a neighbour should cost its fair share, and idle speed little."""
    median = {key: statistics.median(values) for key, values in speeds.items()}
    best = {phase: max(median[p, threads, phase] for p in WAIT_POLICIES) for phase in ("idle", "neighbour")}
    share = {p: {ph: median[p, threads, ph] / best[ph] for ph in best} for p in WAIT_POLICIES}
    chosen = max(WAIT_POLICIES, key=lambda p: min(share[p].values()))
    one = median.get((chosen, 1, "neighbour"))
    note = (
        f"; with the neighbour 1 thread ran faster ({one:,.0f} tokens/s)"
        if one and one > median[chosen, threads, "neighbour"]
        else ""
    )
    return (
        f"recommendation: WAIT_POLICY = {chosen!r} ({variables(chosen)}): at {threads} "
        f"threads {share[chosen]['idle']:.0%} of the best idle speed and {share[chosen]['neighbour']:.0%} "
        f"of the best with a neighbour{note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per phase")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each phase")
    parser.add_argument("--max-seconds", type=float, default=60, help="a phase stops after this long")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--neighbour", choices=sorted(NEIGHBOURS), default="torch")
    parser.add_argument("--neighbour-nice", type=int, default=19, help="its niceness above this process's")
    parser.add_argument("--smoke", action="store_true", help="1 step per phase, a Python neighbour")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    if args.smoke:
        args.steps, args.warmup, args.repeats, args.neighbour = 1, 1, 1, "python"
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    spec = {
        "train": {
            **config["train"],
            "arch": config["models"]["tiny"],
            "seed": 42,
            "block_size": config["shards"]["block_size"],
        },
        "steps": args.steps,
        "warmup": args.warmup,
        "max_seconds": args.max_seconds,
    }
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; this process at nice "
        f"{os.nice(0)}, the neighbour ({args.neighbour}, 1 thread) at +{args.neighbour_nice}; the demo's "
        f"model and batch ({config['train']['batch_size']} x {config['shards']['block_size']} tokens); "
        f"{args.steps} steps per phase, {args.repeats} repeat(s); tokens/s, median (range)",
        flush=True,
    )
    speeds: dict[tuple[str, int, str], list[float]] = {}
    versions = set()
    with tempfile.TemporaryDirectory() as root:
        sys.path.insert(0, str(REPO / "bench"))
        from train_throughput import prepare  # the demo corpus as token shards

        data = prepare(Path(root), config["tokenizer"]["vocab_size"])
        spec["data"] = {name: str(path) for name, path in data.items()}
        neighbour = start_neighbour(args.neighbour, args.neighbour_nice)
        try:
            for _ in range(args.repeats):
                for policy in WAIT_POLICIES:
                    for threads in args.threads:
                        result = measure(policy, threads, spec | {"neighbour_pid": neighbour.pid})
                        for phase, row in result.items():
                            speeds.setdefault((policy, threads, phase), []).append(row["tokens_per_s"])
                            versions.add(row["torch"])
        finally:
            neighbour.kill()
            neighbour.wait()
    print("| wait policy | variables | threads | idle tokens/s | with a neighbour | its cost | fair cost |")
    print("|---|---|---|---|---|---|---|")
    for policy in WAIT_POLICIES:
        for threads in args.threads:
            idle, busy = speeds[policy, threads, "idle"], speeds[policy, threads, "neighbour"]
            cost = 1 - statistics.median(busy) / statistics.median(idle)
            fair = fair_cost(threads, args.neighbour_nice, os.cpu_count())
            cells = [
                policy,
                variables(policy),
                threads,
                spread(idle),
                spread(busy),
                f"{cost:.0%}",
                f"{fair:.0%}",
            ]
            print("| " + " | ".join(map(str, cells)) + " |")
    print(f"torch {', '.join(sorted(versions))}")
    print(recommend(speeds, max(args.threads)))


if __name__ == "__main__":
    main()
