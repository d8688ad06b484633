"""Corpus building on the real text in ../shared/data/corpus (capped with max_words to stay fast)."""

from __future__ import annotations

import gzip
from pathlib import Path

import datasets
import pytest

from cdsynth.corpus import SPLITS, build_corpus, chunk_paragraphs, expand_paths, paragraphs, read_text
from cdsynth.errors import DataError
from cdsynth.io import read_arrow, read_json

CHUNK_WORDS = 100
CAP = 40_000
TS_HEAD = "tinystories/tinystories_v1_train_head_2316stories.txt.xz"
WIKI = "wikipedia/wikitext2_raw_test.txt.xz"


def make_sources(corpus_dir: Path) -> dict[str, dict]:
    return {
        "tinystories": {"format": "lines", "train": expand_paths([TS_HEAD], corpus_dir), "max_words": CAP},
        "gutenberg": {
            "format": "paragraphs",
            "train": expand_paths(["gutenberg/pg*_*.txt.xz"], corpus_dir),
            "max_words": CAP,
        },
        "wikipedia": {"format": "lines", "train": expand_paths([WIKI], corpus_dir), "max_words": CAP},
    }


@pytest.fixture(scope="module")
def built(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("corpus") / "out"
    return out, build_corpus(make_sources(corpus_dir), out, chunk_words=CHUNK_WORDS)


@pytest.fixture(scope="module")
def tables(built: tuple[Path, dict]) -> dict:
    out, _ = built
    return {s: read_arrow(out / f"{s}.arrow").to_pydict() for s in SPLITS}


def test_read_text_xz_gz_plain_equal(corpus_dir: Path, tmp_path: Path) -> None:
    text = read_text(corpus_dir / WIKI)
    assert text.startswith(" = Robert Boulter = ")
    (tmp_path / "wiki.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "wiki.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write(text)
    assert read_text(tmp_path / "wiki.txt") == text
    assert read_text(tmp_path / "wiki.txt.gz") == text


def test_read_text_bad_file_raises(tmp_path: Path) -> None:
    (tmp_path / "bad.txt.xz").write_bytes(b"not xz at all")
    with pytest.raises(DataError, match="bad.txt.xz"):
        read_text(tmp_path / "bad.txt.xz")


def test_paragraphs_lines_drops_endoftext(corpus_dir: Path) -> None:
    text = read_text(corpus_dir / TS_HEAD)
    assert "\n<|endoftext|>\n" in text
    paras = paragraphs(text, "lines")
    assert paras and all(p and p == p.strip() and p != "<|endoftext|>" for p in paras)
    assert paragraphs("a b\n\n  c  \n<|endoftext|>\n   \nd\n", "lines") == ["a b", "c", "d"]


def test_paragraphs_blocks_join_wrapped_lines(corpus_dir: Path) -> None:
    paras = paragraphs(read_text(corpus_dir / "gutenberg/nltk_austen-emma.txt.xz"), "paragraphs")
    assert paras[:3] == ["[Emma by Jane Austen 1816]", "VOLUME I", "CHAPTER I"]
    assert paras[3].startswith(
        "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy"
    )
    assert all("\n" not in p for p in paras)
    text = "one\ntwo\n\n\nthree\n<|endoftext|>\nfour\nfive\n \n"
    assert paragraphs(text, "paragraphs") == ["one two", "three", "four five"]


def test_paragraphs_unknown_format() -> None:
    with pytest.raises(ValueError, match="sentences"):
        paragraphs("text", "sentences")


def test_chunk_paragraphs_min_words_and_tail_merge(corpus_dir: Path) -> None:
    paras = paragraphs(read_text(corpus_dir / WIKI), "lines")[:400]
    chunks = chunk_paragraphs(paras, CHUNK_WORDS)
    assert all(len(c.split()) >= CHUNK_WORDS for c in chunks)
    assert "\n".join(chunks).split("\n") == paras  # nothing lost, order kept
    assert chunk_paragraphs(["a b c", "d e", "f g h", "i"], 4) == ["a b c\nd e", "f g h\ni"]
    assert chunk_paragraphs(["a b", "c"], 10) == ["a b\nc"]
    assert chunk_paragraphs([], 10) == []


def test_expand_paths_globs_sorted_dedup(corpus_dir: Path) -> None:
    paths = expand_paths(["tinystories/*valid*.xz", "tinystories/*.xz", WIKI], corpus_dir)
    names = [p.name for p in paths]
    assert names == [
        "tinystories_v1_valid_head.txt.xz",
        "tinystories_v1_train_head_2316stories.txt.xz",
        "tinystories_v1_train_next_LOWERCASED.txt.xz",
        "wikitext2_raw_test.txt.xz",
    ]
    assert expand_paths([str(corpus_dir / WIKI)]) == [corpus_dir / WIKI]


@pytest.mark.parametrize("pattern", ["nowhere/*.txt.xz", "tinystories/missing.txt.xz", "tinystories"])
def test_expand_paths_nothing_matched(corpus_dir: Path, pattern: str) -> None:
    with pytest.raises(DataError, match="matches") as info:
        expand_paths([pattern], corpus_dir)
    assert pattern in str(info.value) and "shared/data/corpus" in str(info.value)


def test_outputs_readable_by_datasets(built: tuple[Path, dict]) -> None:
    out, stats = built
    assert sorted(p.name for p in out.iterdir()) == ["seed.arrow", "stats.json", "test.arrow", "train.arrow"]
    for split in SPLITS:
        ds = datasets.Dataset.from_file(str(out / f"{split}.arrow"))
        assert ds.column_names == ["text", "source", "doc_id", "words"]
        assert ds.features["words"].dtype == "int32"
        assert len(ds) == stats["totals"][split]["chunks"]
    assert read_json(out / "stats.json") == stats


def test_chunks_long_enough_and_words_column(tables: dict) -> None:
    for split in SPLITS:
        rows = tables[split]
        assert rows["words"] == [len(t.split()) for t in rows["text"]]
        assert min(rows["words"]) >= CHUNK_WORDS


def test_no_leakage_between_splits(tables: dict) -> None:
    for key in ("text", "doc_id"):
        sets = {s: set(tables[s][key]) for s in SPLITS}
        assert all(len(sets[s]) == len(tables[s][key]) for s in SPLITS)  # no duplicates inside a split
        assert not sets["train"] & sets["seed"]
        assert not sets["train"] & sets["test"]
        assert not sets["seed"] & sets["test"]


def test_split_fractions_cap_and_stats(built: tuple[Path, dict], tables: dict) -> None:
    _, stats = built
    assert list(stats["sources"]) == ["tinystories", "gutenberg", "wikipedia"]
    for name, info in stats["sources"].items():
        counts = {s: info["splits"][s]["chunks"] for s in SPLITS}
        n = sum(counts.values())
        assert counts["seed"] == round(0.05 * n) and counts["test"] == round(0.05 * n)
        total_words = sum(info["splits"][s]["words"] for s in SPLITS)
        assert CAP - 3 * CHUNK_WORDS < total_words <= CAP  # the cap binds and is never exceeded
        for s in SPLITS:
            ids = [d for d, src in zip(tables[s]["doc_id"], tables[s]["source"], strict=True) if src == name]
            assert len(ids) == counts[s] and all(
                d.startswith(f"{name}:") and len(d) == len(name) + 8 for d in ids
            )
    # Rows are grouped by source in config order.
    order = [
        s for i, s in enumerate(tables["train"]["source"]) if i == 0 or tables["train"]["source"][i - 1] != s
    ]
    assert order == ["tinystories", "gutenberg", "wikipedia"]


def test_build_is_deterministic(corpus_dir: Path, built: tuple[Path, dict], tmp_path: Path) -> None:
    first, _ = built
    second = tmp_path / "again"
    build_corpus(make_sources(corpus_dir), second, chunk_words=CHUNK_WORDS)
    for name in [*(f"{s}.arrow" for s in SPLITS), "stats.json"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    other = tmp_path / "other_seed"
    build_corpus(make_sources(corpus_dir), other, chunk_words=CHUNK_WORDS, split_seed=7)
    assert (first / "seed.arrow").read_bytes() != (other / "seed.arrow").read_bytes()


def test_explicit_test_files(corpus_dir: Path, tmp_path: Path) -> None:
    head = read_text(corpus_dir / TS_HEAD)
    # A held-out file that repeats the start of the train file: its chunks must leave train.
    overlap = tmp_path / "heldout.txt"
    overlap.write_text(head[:20_000], encoding="utf-8")
    test_chunks = chunk_paragraphs(paragraphs(read_text(overlap), "lines"), CHUNK_WORDS)
    sources = {
        "ts": {"format": "lines", "train": [corpus_dir / TS_HEAD], "test": [overlap], "max_words": CAP},
    }
    stats = build_corpus(sources, tmp_path / "out", chunk_words=CHUNK_WORDS, test_fraction=0.2)
    tables = {s: read_arrow(tmp_path / "out" / f"{s}.arrow").to_pydict() for s in SPLITS}
    assert tables["test"]["text"] == test_chunks
    assert stats["sources"]["ts"]["test_overlap_dropped"] >= len(test_chunks) - 1
    assert not set(test_chunks) & (set(tables["train"]["text"]) | set(tables["seed"]["text"]))
    n_train_side = len(tables["train"]["text"]) + len(tables["seed"]["text"])
    assert len(tables["seed"]["text"]) == round(0.05 * n_train_side)  # test_fraction is ignored
    assert tables["test"]["doc_id"][0] == f"ts:{n_train_side:07d}"


def test_duplicates_dropped(corpus_dir: Path, tmp_path: Path) -> None:
    text = "\n".join(paragraphs(read_text(corpus_dir / WIKI), "lines")[:300])
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    (tmp_path / "b.txt").write_text(
        text.replace(" ", "  "), encoding="utf-8"
    )  # same after whitespace collapse
    sources = {"w": {"format": "lines", "train": [tmp_path / "a.txt", tmp_path / "b.txt"]}}
    stats = build_corpus(sources, tmp_path / "out", chunk_words=CHUNK_WORDS)
    n_single = len(chunk_paragraphs(text.split("\n"), CHUNK_WORDS))
    assert stats["sources"]["w"]["duplicates_dropped"] == n_single
    assert sum(stats["sources"]["w"]["splits"][s]["chunks"] for s in SPLITS) == n_single


def _assert_no_outputs(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir())


def test_missing_file_raises_before_writing(corpus_dir: Path, tmp_path: Path) -> None:
    sources = make_sources(corpus_dir)
    missing = tmp_path / "no_such_file.txt.xz"
    sources["wikipedia"]["train"] = [missing]
    with pytest.raises(DataError, match="no_such_file.txt.xz"):
        build_corpus(sources, tmp_path / "out")
    _assert_no_outputs(tmp_path / "out")


def test_empty_source_raises_before_writing(corpus_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n<|endoftext|>\n\n", encoding="utf-8")
    sources = make_sources(corpus_dir)
    sources["blank"] = {"format": "paragraphs", "train": [empty]}
    with pytest.raises(DataError, match="'blank'.*empty.txt"):
        build_corpus(sources, tmp_path / "out")
    _assert_no_outputs(tmp_path / "out")


def test_too_small_source_raises(corpus_dir: Path, tmp_path: Path) -> None:
    sources = {"tiny": {"format": "lines", "train": [corpus_dir / WIKI], "max_words": 1_000}}
    with pytest.raises(DataError, match="'tiny'.*too small"):
        build_corpus(sources, tmp_path / "out", chunk_words=CHUNK_WORDS)
    _assert_no_outputs(tmp_path / "out")


def test_failed_write_removes_written_splits(corpus_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "stats.json").mkdir(parents=True)  # the last output cannot be written
    with pytest.raises(OSError):
        build_corpus(make_sources(corpus_dir), out, chunk_words=CHUNK_WORDS)
    assert [p.name for p in out.iterdir()] == ["stats.json"]
