"""Snakemake job: generate one shard of a synthetic corpus with the torch engine or vLLM."""

import os
from pathlib import Path

from cdsynth.checkpoints import best_checkpoint
from cdsynth.jobs import run_job
from cdsynth.spec.protocol import protocol_from
from cdsynth.spec.synthesis import Scoring
from cdsynth.synth.generation import synthesize_shards

smk = snakemake  # noqa: F821 (injected by Snakemake)
params = smk.params.synth
good_step = params["good"]["step"]


def job() -> None:
    if params["compile"]:
        # One compiler cache per results folder: a corpus's other shard jobs, on this node or any node
        # that shares the folder, load the compiled decode step instead of compiling it again.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(smk.params.compile_cache).resolve()))
    run = smk.input.expert
    expert = best_checkpoint(run) if good_step == "best" else Path(run) / f"step{good_step}"
    synthesize_shards(
        expert_dir=expert,
        amateur_dir=params["amateur_dir"],
        amateur_dropout=params["amateur_dropout"],
        prompts_path=smk.input.prompts,
        scoring=Scoring(**params["scoring"]),
        protocol=protocol_from(params),
        shards={int(smk.wildcards.shard): smk.output[0]},
        corpus=params,
        backend=params["backend"],
        compile_step=params["compile"],
        threads=smk.threads,
        tensor_parallel=smk.params.tensor_parallel,
    )


# vLLM's tensor-parallel workers are spawned processes that import this file again.
if __name__ == "__main__":
    run_job(smk, job)
