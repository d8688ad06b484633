"""Synthetic corpus shards: prompts, determinism, manifest, and the `cdsynth generate` command."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoTokenizer

from cdsynth.cli import main as cli_main
from cdsynth.corpus_spec import Amateur, Scoring, corpus_name
from cdsynth.errors import ConfigError, DataError
from cdsynth.io import read_arrow, read_json, sha256_file
from cdsynth.synth import (
    Protocol,
    make_prompts,
    protocol_from,
    read_prompt_texts,
    shard_metadata,
    synthesize_shards,
    write_manifest,
)

REPO = Path(__file__).resolve().parents[1]
CD = Scoring(method="cd")
PROTOCOL = Protocol(
    tokens=300, prefix_tokens=20, continuations=3, new_tokens=10, shards=2, batch_size=4, seed=9
)


def shard(micro_run, prepared, out, index, scoring=CD, protocol=PROTOCOL):
    (info,) = synthesize_shards(
        expert_dir=micro_run / "step40",
        amateur_dir=micro_run / "step20" if scoring.needs_amateur else None,
        amateur_dropout=None,
        prompts_path=prepared["corpus"] / "seed.arrow",
        scoring=scoring,
        protocol=protocol,
        shards={index: out},
    )
    return info


def test_prompts_are_bos_plus_the_first_real_tokens(prepared):
    tokenizer = AutoTokenizer.from_pretrained(prepared["tokenizer"])
    ids, texts = read_prompt_texts(prepared["corpus"] / "seed.arrow")
    prompts = make_prompts(texts, ids, tokenizer, PROTOCOL)
    assert len(prompts) == PROTOCOL.num_prompts == 10
    assert prompts == make_prompts(texts, ids, tokenizer, PROTOCOL)
    doc_id, prompt = prompts[0]
    source_text = texts[ids.index(doc_id)]
    assert prompt == [
        tokenizer.bos_token_id,
        *tokenizer(source_text, add_special_tokens=False)["input_ids"][:20],
    ]


def test_the_paper_presets_prompts_are_bos_and_19_tokens_as_the_authors_max_length_20(prepared):
    synth = yaml.safe_load((REPO / "workflow/presets/paper.yaml").read_text())["synth"]
    protocol = protocol_from(synth | {"tokens": 8 * 400 * 10})
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


def test_a_shard_is_rebuilt_byte_identical_and_another_shard_differs(micro_run, prepared, tmp_path):
    shard(micro_run, prepared, tmp_path / "a.arrow", 0)
    shard(micro_run, prepared, tmp_path / "b.arrow", 0)
    shard(micro_run, prepared, tmp_path / "c.arrow", 1)
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


def test_manifest_counts_and_checksums(micro_run, prepared, tmp_path):
    paths = [tmp_path / f"shard-{i:05d}.arrow" for i in range(2)]
    for index, path in enumerate(paths):
        shard(micro_run, prepared, path, index, Scoring(method="ancestral"))
    manifest = write_manifest([str(p) for p in paths], tmp_path / "manifest.json", {"note": "test"})
    assert manifest["totals"]["rows"] == 30 and manifest["totals"]["new_tokens"] == 300
    assert manifest["totals"]["tokens"] == 30 * 31
    assert [s["sha256"] for s in manifest["shards"]] == [sha256_file(p) for p in paths]
    assert read_json(tmp_path / "manifest.json") == manifest


def test_corpus_names_follow_the_parameters():
    early = Amateur.parse("early:500")
    names = {
        corpus_name(Scoring(method="ancestral"), None),
        corpus_name(Scoring(method="ancestral", top_k=200), None),
        corpus_name(Scoring(method="ancestral", top_k=200, ancestral_cut=-20.0), None),
        corpus_name(Scoring(method="vhead"), None),
        corpus_name(Scoring(method="cd"), early),
        corpus_name(Scoring(method="cd"), Amateur.parse("early:1000")),
        corpus_name(Scoring(method="cd", top_p=0.95), early),
        corpus_name(Scoring(method="cd", penalty=float("-inf")), Amateur.parse("dropout:0.7")),
        corpus_name(Scoring(method="cd"), Amateur.parse("small:small-20@seed42/step2500")),
        corpus_name(Scoring(method="cd"), Amateur.parse("small:small-20@seed43/step2500")),
    }
    assert len(names) == 10
    assert corpus_name(Scoring(method="cd", top_k=200), early) == "cd_early-500_s1_a0.1_pen-20_k200"
    assert (
        corpus_name(Scoring(method="ancestral", top_p=0.9, ancestral_cut=-20.0), None)
        == "ancestral_p0.9_cut-20"
    )
    assert corpus_name(Scoring(method="ancestral", ancestral_cut=-20.0), None) == "ancestral", (
        "nothing is cut"
    )


@pytest.mark.parametrize(
    "text",
    ["early:500", "small:small-20", "small:small-20@seed42", "small:tiny_20/step2500",
     "small:s.1@seed42/step2500", "dropout:0.7", "dropout:0.05"],
)  # fmt: skip
def test_amateurs_print_as_they_parse(text):
    assert str(Amateur.parse(text)) == text
    assert Amateur.parse(str(Amateur.parse(text))) == Amateur.parse(text)


def test_a_small_amateur_takes_goods_seed_and_step_where_it_names_none():
    good_seed, good_step = 43, 2500
    assert Amateur.parse("small:small-20").with_defaults(good_seed, good_step) == Amateur(
        "small", model="small-20", seed=43, step=2500
    )
    named = Amateur.parse("small:small-20@seed42/step1000")
    assert named.with_defaults(good_seed, good_step) == named
    assert Amateur.parse("small:small-20@seed42").with_defaults(good_seed, good_step).step == 2500
    assert Amateur.parse("early:500").with_defaults(good_seed, good_step) == Amateur("early", step=500)
    assert named.slug == "small-small-20-seed42-step1000"


@pytest.mark.parametrize(
    "text", ["early:", "small:", "small:a/b", "dropout:1.0", "dropout:0", "late:5", "early:5 "]
)
def test_a_malformed_amateur_is_refused_with_the_syntax(text):
    with pytest.raises(ConfigError, match="early:STEP, small:MODEL"):
        Amateur.parse(text)


def test_cli_generates_a_corpus_from_two_checkpoints(micro_run, prepared, tmp_path, capsys):
    out = tmp_path / "corpus"
    argv = [
        "generate",
        "--expert",
        str(micro_run / "step40"),
        "--amateur",
        str(micro_run / "step20"),
        "--method",
        "cd",
        "--alpha",
        "0.1",
        "--top-k",
        "50",
        "--tokens",
        "0.2k",
        "--new-tokens",
        "10",
        "--continuations",
        "2",
        "--shards",
        "2",
        "--batch-size",
        "8",
        "--prompts",
        str(prepared["corpus"] / "seed.arrow"),
        "--out",
        str(out),
    ]
    cli_main(argv)
    manifest = read_json(out / "manifest.json")
    assert manifest["totals"]["new_tokens"] == 200 and len(manifest["shards"]) == 2
    assert manifest["params"]["scoring"]["top_k"] == 50
    first = sha256_file(out / "shard-00000.arrow")
    cli_main(argv)  # a rerun keeps finished shards made with the same settings
    assert "kept" in capsys.readouterr().err and sha256_file(out / "shard-00000.arrow") == first


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "cd"], "needs an amateur"),
        (["--method", "cd", "--amateur-dropout", "0.5", "--alpha", "1.5"], "alpha: 1.5 must be in (0, 1)"),
        (["--method", "cd", "--amateur-dropout", "0.5", "--top-p", "0"], "top_p: 0.0 must be in (0, 1]"),
        (["--method", "ancestral", "--top-k", "0"], "top_k: 0 must be >= 1"),
        (["--method", "cd", "--amateur-dropout", "0.5", "--backend", "vllm"], "cannot run on --backend vllm"),
        (["--method", "ancestral", "--backend", "vllm", "--tensor-parallel", "0"], "--tensor-parallel 0"),
    ],
)
def test_cli_rejects_bad_input_before_generating(micro_run, prepared, tmp_path, capsys, extra, message):
    argv = [
        "generate",
        "--expert",
        str(micro_run / "step40"),
        "--prompts",
        str(prepared["corpus"] / "seed.arrow"),
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_the_vllm_backend_without_vllm_says_how_to_install_it(micro_run, prepared, tmp_path, capsys):
    argv = ["generate", "--expert", str(micro_run / "step40"), "--method", "ancestral", "--backend", "vllm"]
    argv += ["--prompts", str(prepared["corpus"] / "seed.arrow"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        cli_main(argv)
    assert "envs/vllm-cpu.sh" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


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
    )
    assert info["rows"] == 15
    assert shard_metadata(read_arrow(tmp_path / "d.arrow"))["amateur"] == "dropout:0.3"
