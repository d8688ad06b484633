"""Both tokenizer recipes and their HF fast export, checked on real corpus text."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import sentencepiece as spm
import yaml
from helpers import REPO, VOCAB, write_corpus
from tokenizers import SentencePieceBPETokenizer
from transformers import AutoConfig, AutoTokenizer

from cdsynth.data.corpus import build_corpus
from cdsynth.data.tokenizer import RECIPES, load_tokenizer, tokenizer_fingerprint, train_tokenizer
from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json, sha256_file
from cdsynth.spec.sources import expand_paths


@pytest.fixture(scope="session")
def texts(corpus_arrow: Path) -> list[str]:
    return read_arrow(corpus_arrow).column("text").to_pylist()


@pytest.fixture(scope="session")
def sp(tok_dir: Path) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(tok_dir / "tokenizer.model"))


EDGE_CASES = [
    "",
    " ",
    "   leading spaces",
    "trailing spaces   ",
    "multi   spaces\tand a tab",
    "Call 555-0123 in 1984: 3.14159, 1,000,000 and 007.",
    "“Curly” quotes, ‘single’ ones — an em dash, café, naïve, résumé, Æsir.",
    "line one\nline two\n\n  indented line\n",
    "literal <s> and </s> and <unk> and <pad> are text",
    "byte fallback: 😀 中文 Ωμέγα \u3000 x\u00a0y",
    "<0x41> looks like a byte piece",
    "ababababa aaaaaaa",
    "\u2581already\u2581marked",
]


def test_special_ids_vocab_size_and_files(tok_dir: Path) -> None:
    tok = load_tokenizer(tok_dir)
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2, 3)
    assert (tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token) == ("<unk>", "<s>", "</s>", "<pad>")
    assert len(tok) == VOCAB
    assert tok.padding_side == "right"
    assert {"tokenizer.json", "tokenizer.model", "tokenizer_config.json"} <= {
        p.name for p in tok_dir.iterdir()
    }
    # No temporary sibling is left beside the atomically written directory.
    assert [p.name for p in tok_dir.parent.iterdir()] == [tok_dir.name]


def test_test_data_covers_hard_cases(texts: list[str]) -> None:
    joined = "".join(texts)
    for needle in ["\n", "  ", "“", "’", "é", "0", "@-@"]:
        assert needle in joined, needle
    assert len(texts) >= 500


def test_fast_encode_equals_sentencepiece_on_real_chunks(
    tok_dir: Path, texts: list[str], sp: spm.SentencePieceProcessor
) -> None:
    tok = load_tokenizer(tok_dir)
    fast = tok(texts, add_special_tokens=False)["input_ids"]
    slow = sp.encode(texts)
    mismatches = [i for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b]
    assert mismatches == [], (
        f"{len(mismatches)} of {len(texts)} chunks differ, first: {texts[mismatches[0]]!r}"
    )


@pytest.mark.parametrize("text", EDGE_CASES)
def test_fast_encode_equals_sentencepiece_on_edge_cases(
    tok_dir: Path, sp: spm.SentencePieceProcessor, text: str
) -> None:
    tok = load_tokenizer(tok_dir)
    assert tok.encode(text, add_special_tokens=False) == sp.encode(text)


def test_literal_special_strings_never_become_control_ids(tok_dir: Path) -> None:
    ids = load_tokenizer(tok_dir).encode("a <s> b </s> c <pad> <unk>", add_special_tokens=False)
    assert not {0, 1, 2, 3} & set(ids)


def test_special_tokens_prepend_bos_only(tok_dir: Path, texts: list[str]) -> None:
    tok = load_tokenizer(tok_dir)
    for text in texts[:50]:
        plain = tok.encode(text, add_special_tokens=False)
        assert tok.encode(text) == [1, *plain]


def test_decode_round_trips(tok_dir: Path, texts: list[str]) -> None:
    tok = load_tokenizer(tok_dir)
    ids = tok(texts)["input_ids"]
    assert tok.batch_decode(ids, skip_special_tokens=True) == texts
    # A literal "▁" in the input is the one thing that cannot round-trip: it decodes to a space.
    for text in [t for t in EDGE_CASES if "\u2581" not in t]:
        assert tok.decode(tok.encode(text), skip_special_tokens=True) == text


def test_auto_tokenizer_loads_same_ids(tok_dir: Path, texts: list[str]) -> None:
    auto = AutoTokenizer.from_pretrained(str(tok_dir))
    assert auto.is_fast
    sample = texts[::10] + EDGE_CASES
    assert auto(sample)["input_ids"] == load_tokenizer(tok_dir)(sample)["input_ids"]
    padded = auto(["a b", "a much longer line of text"], padding=True)["input_ids"]
    assert padded[0][-1] == 3 and padded[0][0] == 1


def test_fingerprint_is_sha256_of_tokenizer_json(tok_dir: Path) -> None:
    assert tokenizer_fingerprint(tok_dir) == sha256_file(tok_dir / "tokenizer.json")


def test_training_is_deterministic_with_sampling(corpus_arrow: Path, tmp_path: Path) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        train_tokenizer(
            corpus_arrow, out, recipe="sentencepiece", vocab_size=1000, max_sentences=3000, seed=7
        )
    for name in ["tokenizer.json", "tokenizer.model"]:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


@pytest.mark.parametrize("recipe", RECIPES)
def test_empty_corpus_is_a_data_error(tmp_path: Path, recipe: str) -> None:
    corpus = write_corpus([], tmp_path / "empty.arrow")
    with pytest.raises(DataError, match="empty.arrow"):
        train_tokenizer(corpus, tmp_path / "tok", recipe=recipe, vocab_size=500)
    assert not (tmp_path / "tok").exists()


@pytest.mark.parametrize("recipe", RECIPES)
def test_vocab_too_large_for_the_text_is_a_data_error(tmp_path: Path, recipe: str) -> None:
    corpus = write_corpus(["only a handful of words in this tiny corpus"] * 3, tmp_path / "tiny.arrow")
    with pytest.raises(DataError, match=r"tiny\.arrow.*Lower vocab_size"):
        train_tokenizer(corpus, tmp_path / "tok", recipe=recipe, vocab_size=5000)
    assert not (tmp_path / "tok").exists()


@pytest.fixture(scope="module")
def demo_train(tmp_path_factory) -> Path:
    """The demo's train split, built from config.yaml's sources as the workflow builds it."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())["corpus"]
    sources = copy.deepcopy(config["sources"])
    for source in sources.values():
        for split in ("train", "test"):
            source[split] = expand_paths(source.get(split, []), base=REPO)
    out = tmp_path_factory.mktemp("demo")
    settings = {key: config[key] for key in ("split_seed", "seed_fraction", "test_fraction", "chunk_words")}
    build_corpus(sources, out, **settings)
    return out / "train.arrow"


def test_the_authors_recipe_equals_an_independent_training_with_their_library_and_arguments(
    demo_train: Path, tmp_path: Path
) -> None:
    """Their `tokenizer/train_tokenizer.py`: SentencePieceBPETokenizer() with its defaults, trained on every
    train document, special tokens <unk> <s> </s> <pad>; BOS added, EOS not."""
    texts = read_arrow(demo_train).column("text").to_pylist()
    theirs = SentencePieceBPETokenizer()
    theirs.train_from_iterator(texts, vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>", "<pad>"])
    stats = train_tokenizer(demo_train, tmp_path / "tok", recipe="authors", vocab_size=2000)
    ours = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    reference = json.loads(theirs.to_str())
    assert ours["model"]["vocab"] == reference["model"]["vocab"]
    assert ours["model"]["merges"] == reference["model"]["merges"]
    for part in ("normalizer", "pre_tokenizer", "decoder"):
        assert ours[part] == reference[part]
    assert ours["model"]["byte_fallback"] is False and ours["model"]["unk_token"] == "<unk>"
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert [loaded(text)["input_ids"] for text in texts] == [[1, *theirs.encode(t).ids] for t in texts]
    assert stats["recipe"] == "authors" and stats["vocab_size"] == 2000


@pytest.mark.parametrize("recipe", RECIPES)
def test_the_statistics_count_tokens_per_word_and_unknown_tokens(demo_train: Path, tmp_path: Path, recipe):
    stats = train_tokenizer(demo_train, tmp_path / "tok", recipe=recipe, vocab_size=2000)
    assert read_json(tmp_path / "tok" / "stats.json") == stats
    texts = read_arrow(demo_train).column("text").to_pylist()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    ids = [i for text in texts for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    words = sum(len(text.split()) for text in texts)
    assert stats["tokens"] == len(ids) and stats["words"] == words and stats["documents"] == len(texts)
    assert stats["tokens_per_word"] == pytest.approx(len(ids) / words, abs=1e-4)
    assert stats["unk_tokens"] == ids.count(0)
    unseen = "Ωμέγα 中文 😀"  # characters the demo's train text lacks: <unk> without byte fallback only
    unknown = tokenizer(unseen, add_special_tokens=False)["input_ids"].count(0)
    assert (unknown > 0) == (recipe == "authors")


def test_missing_tokenizer_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(DataError, match="tokenizer.json"):
        tokenizer_fingerprint(tmp_path)


OLD_TRANSFORMERS_READS = """
import json, os, sys
from transformers import AutoConfig, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
texts = json.loads(sys.argv[2])
special = ["bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"]
found = {
    "class": type(tokenizer).__name__,
    "ids": [tokenizer(text)["input_ids"] for text in texts],
    "special": [getattr(tokenizer, name) for name in special],
}
if os.path.exists(os.path.join(sys.argv[1], "config.json")):
    config = AutoConfig.from_pretrained(sys.argv[1])
    found["config"] = [config.model_type, config.rope_theta, config.hidden_size, config.vocab_size,
                       str(config.torch_dtype)]
print(json.dumps(found))
"""


def read_under_transformers_4_51(directory: Path, sample: list[str]) -> dict:
    """What the official BabyLM 2025 pipeline's transformers (4.51.3) reads from `directory`."""
    venv = subprocess.run(
        [str(REPO / "envs" / "transformers-4.51.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    old = subprocess.run(
        [f"{venv}/bin/python", "-c", OLD_TRANSFORMERS_READS, str(directory), json.dumps(sample)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(old.stdout)


def test_a_checkpoint_loads_under_the_official_pipelines_transformers_with_the_same_ids(micro_run, texts):
    """The official BabyLM 2025 pipeline pins transformers 4.51.3: our checkpoints (their tokenizer made
    by the authors' recipe) must load there as here."""
    checkpoint = micro_run / "step40"
    sample = [*EDGE_CASES, *texts[:20]]
    theirs = read_under_transformers_4_51(checkpoint, sample)
    ours = AutoTokenizer.from_pretrained(checkpoint)
    config = AutoConfig.from_pretrained(checkpoint)
    assert theirs["class"] == "PreTrainedTokenizerFast"
    assert theirs["ids"] == [ours(text)["input_ids"] for text in sample]
    assert theirs["special"] == [ours.bos_token_id, ours.eos_token_id, ours.pad_token_id, ours.unk_token_id]
    rope = config.rope_parameters["rope_theta"]
    assert theirs["config"] == ["llama", rope, config.hidden_size, config.vocab_size, "float32"]


def test_the_sentencepiece_recipe_loads_under_the_official_pipelines_transformers(tok_dir: Path, texts):
    sample = [*EDGE_CASES, *texts[:20]]
    theirs = read_under_transformers_4_51(tok_dir, sample)
    ours = AutoTokenizer.from_pretrained(tok_dir)
    assert theirs["ids"] == [ours(text)["input_ids"] for text in sample]
