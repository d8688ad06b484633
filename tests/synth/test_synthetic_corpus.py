"""Synthetic corpus shards: prompts, determinism, the manifest, and the dropout amateur."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
import torch
import yaml
from transformers import AutoTokenizer

from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, sha256_file, write_arrow
from cdsynth.spec.protocol import Protocol, protocol_from
from cdsynth.spec.synthesis import Scoring
from cdsynth.synth.generation import make_prompts, read_prompt_texts, synthesize_shards
from cdsynth.synth.manifest import shard_metadata, write_manifest

REPO = Path(__file__).resolve().parents[2]
CD = Scoring(method="cd")
PROTOCOL = Protocol(
    tokens=300, prefix_tokens=20, continuations=3, new_tokens=10, shards=2, batch_size=4, seed=9
)


def corpus_of(scoring: Scoring, protocol: Protocol = PROTOCOL) -> dict:
    return {"scoring": scoring.as_dict(), **protocol.as_dict()}


def shard(micro_run, prepared, out, index, scoring=CD, protocol=PROTOCOL):
    (info,) = synthesize_shards(
        expert_dir=micro_run / "step40",
        amateur_dir=micro_run / "step20" if scoring.needs_amateur else None,
        amateur_dropout=None,
        prompts_path=prepared["corpus"] / "seed.arrow",
        scoring=scoring,
        protocol=protocol,
        shards={index: out},
        corpus=corpus_of(scoring, protocol),
    )
    return info


def test_prompts_are_bos_plus_the_first_real_tokens(prepared):
    tokenizer = AutoTokenizer.from_pretrained(prepared["tokenizer"])
    ids, texts = read_prompt_texts(prepared["corpus"] / "seed.arrow")
    prompts = make_prompts(texts, ids, tokenizer, PROTOCOL)
    assert len(prompts) == PROTOCOL.prompts_for(len(texts)) == 10
    assert prompts == make_prompts(texts, ids, tokenizer, PROTOCOL)
    # `tokens: all` continues every prompt, in the same seeded order.
    every = make_prompts(texts, ids, tokenizer, replace(PROTOCOL, tokens="all"))
    assert len(every) == len(texts) and every[:10] == prompts
    doc_id, prompt = prompts[0]
    source_text = texts[ids.index(doc_id)]
    assert prompt == [
        tokenizer.bos_token_id,
        *tokenizer(source_text, add_special_tokens=False)["input_ids"][:20],
    ]


def test_the_paper_presets_prompts_are_bos_and_19_tokens_as_the_authors_max_length_20(prepared):
    synth = yaml.safe_load((REPO / "workflow/presets/paper.yaml").read_text())["synth"]
    protocol = protocol_from(synth | {"tokens": 8 * 400 * 10, "shards": 1})
    tokenizer = AutoTokenizer.from_pretrained(prepared["tokenizer"])
    ids, texts = read_prompt_texts(prepared["corpus"] / "seed.arrow")
    prompts = make_prompts(texts, ids, tokenizer, protocol)
    assert [len(prompt) for _, prompt in prompts] == [20] * 10
    # The authors' tokenization: the tokenizer's own BOS, truncated to max_length=20.
    for doc_id, prompt in prompts:
        text = texts[ids.index(doc_id)]
        assert prompt == tokenizer(text, truncation=True, max_length=20)["input_ids"]


def test_too_few_prompts_is_an_error_naming_the_numbers(prepared):
    tokenizer = AutoTokenizer.from_pretrained(prepared["tokenizer"])
    ids, texts = read_prompt_texts(prepared["corpus"] / "seed.arrow")
    with pytest.raises(DataError, match=f"only {len(texts):,}"):
        make_prompts(texts, ids, tokenizer, Protocol(tokens=10**9))


REPEAT_AWARE = Scoring(method="cd", repetition_penalty=1.2, no_repeat_ngram=3, amateur_temperature=0.5)


@pytest.mark.parametrize("scoring", [CD, REPEAT_AWARE], ids=["cd", "repeat-aware"])
def test_a_shard_is_rebuilt_byte_identical_and_another_shard_differs(micro_run, prepared, tmp_path, scoring):
    shard(micro_run, prepared, tmp_path / "a.arrow", 0, scoring)
    shard(micro_run, prepared, tmp_path / "b.arrow", 0, scoring)
    shard(micro_run, prepared, tmp_path / "c.arrow", 1, scoring)
    assert sha256_file(tmp_path / "a.arrow") == sha256_file(tmp_path / "b.arrow")
    a, c = read_arrow(tmp_path / "a.arrow"), read_arrow(tmp_path / "c.arrow")
    assert a.column("input_ids").to_pylist() != c.column("input_ids").to_pylist()
    assert shard_metadata(a)["seed"] != shard_metadata(c)["seed"]


def test_shard_rows_keep_the_prefix_and_the_requested_lengths(micro_run, prepared, tmp_path):
    shard(micro_run, prepared, tmp_path / "s.arrow", 0)
    table = read_arrow(tmp_path / "s.arrow")
    assert table.num_rows == 5 * 3  # half of the 10 prompts, 3 continuations each
    rows = table.to_pylist()
    assert all(len(r["input_ids"]) == r["prefix_len"] + 10 and r["prefix_len"] == 21 for r in rows)
    assert [r["continuation"] for r in rows[:3]] == [0, 1, 2]
    assert len({tuple(r["input_ids"][:21]) for r in rows[:3]}) == 1, "continuations share their prompt"
    tokenizer = AutoTokenizer.from_pretrained(prepared["tokenizer"])
    assert rows[0]["text"] == tokenizer.decode(rows[0]["input_ids"][1:])
    meta = shard_metadata(table)
    assert meta["scoring"]["method"] == "cd" and meta["amateur"].endswith("step20")
    assert meta["corpus"] == corpus_of(CD) and meta["shard"] == 0


def test_manifest_counts_and_checksums(micro_run, prepared, tmp_path):
    paths = [tmp_path / f"shard-{i:05d}.arrow" for i in range(2)]
    for index, path in enumerate(paths):
        shard(micro_run, prepared, path, index, Scoring(method="ancestral"))
    ancestral = corpus_of(Scoring(method="ancestral"))
    manifest = write_manifest([str(p) for p in paths], tmp_path / "manifest.json", ancestral)
    assert manifest["totals"]["rows"] == 30 and manifest["totals"]["new_tokens"] == 300
    assert manifest["totals"]["tokens"] == 30 * 31
    assert [s["sha256"] for s in manifest["shards"]] == [sha256_file(p) for p in paths]
    assert read_json(tmp_path / "manifest.json") == manifest


def test_generation_uses_the_dropout_amateur_when_asked(micro_run, prepared, tmp_path):
    torch.manual_seed(0)
    (info,) = synthesize_shards(
        expert_dir=micro_run / "step40",
        amateur_dir=None,
        amateur_dropout=0.3,
        prompts_path=prepared["corpus"] / "seed.arrow",
        scoring=Scoring(method="cd"),
        protocol=PROTOCOL,
        shards={0: tmp_path / "d.arrow"},
        corpus=corpus_of(CD) | {"amateur": "dropout:0.3"},
    )
    assert info["rows"] == 15
    assert shard_metadata(read_arrow(tmp_path / "d.arrow"))["amateur"] == "dropout:0.3"


def test_the_manifest_refuses_a_shard_made_for_another_corpus(micro_run, prepared, tmp_path):
    """A CD shard copied into an ancestral corpus was gathered silently; now it names what differs."""
    ancestral = [tmp_path / f"shard-{i:05d}.arrow" for i in range(2)]
    for index, path in enumerate(ancestral):
        shard(micro_run, prepared, path, index, Scoring(method="ancestral"))
    shard(micro_run, prepared, tmp_path / "cd.arrow", 1, CD)
    (tmp_path / "cd.arrow").replace(ancestral[1])
    with pytest.raises(
        DataError, match=r"shard-00001.arrow: not shard 1 of this corpus \(settings that differ: "
    ):
        write_manifest(
            [str(p) for p in ancestral], tmp_path / "manifest.json", corpus_of(Scoring(method="ancestral"))
        )
    # A shard of the right corpus in the wrong place is refused too.
    with pytest.raises(DataError, match="it is shard 0"):
        write_manifest(
            [str(ancestral[0])] * 2, tmp_path / "manifest.json", corpus_of(Scoring(method="ancestral"))
        )
    assert not (tmp_path / "manifest.json").exists()


def test_prompts_files_a_user_may_give(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt: not UTF-8 text .*iconv"):
        read_prompt_texts(latin)
    table = pa.table({"text": ["one prompt", "another"]})
    write_arrow(table, tmp_path / "plain.arrow")
    assert read_prompt_texts(tmp_path / "plain.arrow") == (["row:0", "row:1"], ["one prompt", "another"])
    write_arrow(pa.table({"body": ["x"]}), tmp_path / "untitled.arrow")
    with pytest.raises(DataError, match="has no `text` column"):
        read_prompt_texts(tmp_path / "untitled.arrow")


def test_every_prompt_needs_at_least_one_prompt_per_shard():
    from cdsynth.synth.generation import check_prompt_count

    every = replace(PROTOCOL, tokens="all", shards=4)
    check_prompt_count(4, every, "seed.arrow")
    with pytest.raises(DataError, match="seed.arrow: 3 prompt\\(s\\) for 4 shards would leave empty shards"):
        check_prompt_count(3, every, "seed.arrow")
