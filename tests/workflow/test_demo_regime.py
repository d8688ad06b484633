"""The demo and mini configs keep the paper's regime, computed from each config and the real text it names.

The paper's baseline sees its ~130M real tokens about 16 times (8000 steps x 256 x 1024 tokens); GOOD is
step 2500 of 8000 (31%), the early amateur step 500 (6%); a ~97M-token synthetic corpus is about as large
as the real one, mixed at 25% of each batch (int(16 x 0.3) of 16). docs/reproducing.md: "The demo in the
paper's proportions".
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cdsynth.data.corpus import build_corpus
from cdsynth.data.shards import build_shards
from cdsynth.data.tokenizer import train_tokenizer
from cdsynth.io import read_arrow
from cdsynth.spec.experiments import experiments_of, good_of
from cdsynth.spec.protocol import protocol_from
from cdsynth.spec.schedule import fixed_steps_of
from cdsynth.spec.sources import expand_paths

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {"demo": REPO / "config.yaml", "mini": REPO / "workflow/presets/mini.yaml"}
MAIN_ROWS = ["Baseline", "No-Contrast", "No-Contrast-V-Head"]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def regime(request, tmp_path_factory) -> dict:
    """The config, with its real train split's token count and prompt count, built as the workflow does."""
    config = yaml.safe_load(CONFIGS[request.param].read_text())
    sources = copy.deepcopy(config["corpus"]["sources"])
    for source in sources.values():
        for split in ("train", "test"):
            source[split] = expand_paths(source.get(split, []), base=REPO)
    corpus = config["corpus"]
    out = tmp_path_factory.mktemp(request.param)
    build_corpus(
        sources,
        out / "corpus",
        split_seed=corpus["split_seed"],
        seed_fraction=corpus["seed_fraction"],
        test_fraction=corpus["test_fraction"],
        chunk_words=corpus["chunk_words"],
    )
    tokenizer = config["tokenizer"]
    train_tokenizer(
        out / "corpus/train.arrow",
        out / "tokenizer",
        recipe=tokenizer["recipe"],
        vocab_size=tokenizer["vocab_size"],
        max_sentences=tokenizer["max_sentences"],
    )
    meta = build_shards(out / "corpus/train.arrow", out / "tokenizer", out / "tokens")
    prompts = read_arrow(out / "corpus/seed.arrow").num_rows
    return {"config": config, "real_tokens": meta["num_tokens"], "prompts": prompts}


def test_the_baseline_sees_its_real_data_about_16_times(regime):
    config, train = regime["config"], regime["config"]["train"]
    seen = train["steps"] * train["batch_size"] * config["shards"]["block_size"]
    assert 12 <= seen / regime["real_tokens"] <= 20


def test_good_and_the_early_amateur_sit_at_the_papers_fractions_of_training(regime):
    config = regime["config"]
    steps = config["train"]["steps"]
    saved = fixed_steps_of(config["train"])
    assert len(saved) == 16, "the paper checkpoints 16 times (8000 / 500)"
    assert 0.25 <= good_of(config).step / steps <= 0.35
    early = [e.corpus.amateur for e in experiments_of(config).values() if e.corpus and e.corpus.amateur]
    early = [amateur.step for amateur in early if amateur.kind == "early"]
    assert early and all(0.04 <= step / steps <= 0.08 for step in early)


def test_the_synthetic_corpus_is_about_as_large_as_the_real_train_split(regime):
    protocol = protocol_from(regime["config"]["synth"])
    assert 0.7 <= protocol.tokens / regime["real_tokens"] <= 1.3
    needed = protocol.prompts_for(regime["prompts"])
    assert needed <= regime["prompts"], "the seed split holds enough prompts"


def test_the_synthetic_share_is_the_papers_and_every_main_row_has_two_seeds_or_more(regime):
    config = regime["config"]
    experiments = experiments_of(config)
    micro = config["train"]["micro_batch_size"]
    shares = {e.mixture.share(micro) for e in experiments.values() if e.mixture}
    assert shares == {0.25}
    assert len(config["mix"]["seeds"]) >= 2
    main = config["tables"]["main"]
    assert main[:3] == MAIN_ROWS and main[3].startswith("CD-Early-")
