"""Corpus building on the real text in ../shared/data/corpus (capped with max_words to stay fast)."""

from __future__ import annotations

import gzip
import io
import math
import re
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdsynth.data.corpus import (
    SPLITS,
    WORD_COUNTS,
    build_corpus,
    cap_documents,
    chunk_paragraphs,
    cut_seed,
    read_text,
    seed_split_indices,
    split_text,
)
from cdsynth.errors import ConfigError, DataError
from cdsynth.io import read_arrow, read_json
from cdsynth.spec.sources import WORD_COUNT_RULES, expand_paths

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


def test_split_text_lines_drops_endoftext(corpus_dir: Path) -> None:
    text = read_text(corpus_dir / TS_HEAD)
    assert "\n<|endoftext|>\n" in text
    paras = split_text(text, "lines")
    assert paras and all(p and p == p.strip() and p != "<|endoftext|>" for p in paras)
    assert split_text("a b\n\n  c  \n<|endoftext|>\n   \nd\n", "lines") == ["a b", "c", "d"]


def test_split_text_paragraphs_join_wrapped_lines(corpus_dir: Path) -> None:
    paras = split_text(read_text(corpus_dir / "gutenberg/nltk_austen-emma.txt.xz"), "paragraphs")
    assert paras[:3] == ["[Emma by Jane Austen 1816]", "VOLUME I", "CHAPTER I"]
    assert paras[3].startswith(
        "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy"
    )
    assert all("\n" not in p for p in paras)
    text = "one\ntwo\n\n\nthree\n<|endoftext|>\nfour\nfive\n \n"
    assert split_text(text, "paragraphs") == ["one two", "three", "four five"]


def test_split_text_unknown_format() -> None:
    with pytest.raises(ValueError, match="sentences"):
        split_text("text", "sentences")


def test_chunk_paragraphs_min_words_and_tail_merge(corpus_dir: Path) -> None:
    paras = split_text(read_text(corpus_dir / WIKI), "lines")[:400]
    chunks = chunk_paragraphs(paras, CHUNK_WORDS)
    assert all(len(c.split()) >= CHUNK_WORDS for c in chunks)
    assert "\n".join(chunks).split("\n") == paras  # nothing lost, order kept
    assert chunk_paragraphs(["a b c", "d e", "f g h", "i"], 4) == ["a b c\nd e", "f g h\ni"]
    assert chunk_paragraphs(["a b", "c"], 10) == ["a b\nc"]
    assert chunk_paragraphs([], 10) == []


def test_outputs_readable_by_datasets(built: tuple[Path, dict]) -> None:
    out, stats = built
    assert sorted(p.name for p in out.iterdir()) == ["seed.arrow", "stats.json", "test.arrow", "train.arrow"]
    for split in SPLITS:
        ds = datasets.Dataset.from_file(str(out / f"{split}.arrow"))
        assert ds.column_names == ["text", "source", "doc_id", "words"]
        assert ds.features["words"].dtype == "int32"
        assert len(ds) == stats["totals"][split]["rows"]
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
        counts = {s: info["splits"][s]["rows"] for s in SPLITS}
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
    test_chunks = chunk_paragraphs(split_text(read_text(overlap), "lines"), CHUNK_WORDS)
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
    text = "\n".join(split_text(read_text(corpus_dir / WIKI), "lines")[:300])
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    (tmp_path / "b.txt").write_text(
        text.replace(" ", "  "), encoding="utf-8"
    )  # same after whitespace collapse
    sources = {"w": {"format": "lines", "train": [tmp_path / "a.txt", tmp_path / "b.txt"]}}
    stats = build_corpus(sources, tmp_path / "out", chunk_words=CHUNK_WORDS)
    n_single = len(chunk_paragraphs(text.split("\n"), CHUNK_WORDS))
    assert stats["sources"]["w"]["duplicates_dropped"] == n_single
    assert sum(stats["sources"]["w"]["splits"][s]["rows"] for s in SPLITS) == n_single


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


# ---- units "documents": the authors' pipeline (blank-line / story documents, HF split, seed cutting) ----

TS_STORIES = 2316
EOT_LINE = "\n<|endoftext|>"


def _authors_blank_line_documents(path: Path) -> list[str]:
    """The authors' BabyLM grouping, written from its description: text-mode lines, an exactly empty line
    ends a document and is dropped."""
    docs: list[str] = []
    current = ""
    for line in io.StringIO(read_text(path), newline="\n").readlines():
        if line == "\n":
            if current:
                docs.append(current)
            current = ""
        else:
            current += line
    if current:
        docs.append(current)
    return docs


def _hf_split(texts: list[str], seed: int = 42) -> datasets.DatasetDict:
    return datasets.Dataset.from_dict({"text": texts}).train_test_split(test_size=0.05, seed=seed)


def _read_splits(out: Path) -> dict[str, dict]:
    return {s: read_arrow(out / f"{s}.arrow").to_pydict() for s in SPLITS}


def _words(tag: str, n: int) -> str:
    return " ".join(f"{tag}{k}" for k in range(n))


def test_split_text_blocks_are_the_authors_documents(corpus_dir: Path, tmp_path: Path) -> None:
    babylm = tmp_path / "gutenberg.train"
    babylm.write_text(
        "*CHI: more juice.\n*MOT: here you go.\n\nA wrapped line\n  and an indented one!\n \t \nstill one\n"
        "\n\n\nLast.\nNo end",
        encoding="utf-8",
    )
    expected = [
        "*CHI: more juice.\n*MOT: here you go.\n",
        "A wrapped line\n  and an indented one!\n \t \nstill one\n",  # a whitespace-only line ends nothing
        "Last.\nNo end",
    ]
    assert split_text(read_text(babylm), "blocks") == expected
    for path in (babylm, corpus_dir / "gutenberg/nltk_austen-emma.txt.xz"):
        assert split_text(read_text(path), "blocks") == _authors_blank_line_documents(path)
    # Only a line break splits lines, as in a text-mode file (str.splitlines would also split at U+2028).
    assert split_text("a\u2028b\n\nc\n", "blocks") == ["a\u2028b\n", "c\n"]


def test_split_text_stories(corpus_dir: Path, tmp_path: Path) -> None:
    ts = tmp_path / "stories.txt"
    ts.write_text(
        "Tom ran.\nHe fell.\n<|endoftext|>\n\nSue sang.\n \nThe end.\n<|endoftext|>\nTail story.\n",
        encoding="utf-8",
    )
    assert split_text(read_text(ts), "stories") == [
        "Tom ran.\nHe fell.",
        "Sue sang.\nThe end.",
        "Tail story.",
    ]
    stories = split_text(read_text(corpus_dir / TS_HEAD), "stories")
    assert len(stories) == TS_STORIES
    assert stories[0].startswith("One day, a little girl named Lily found a needle in her room.")
    assert stories[0].count("\n") == 2 and stories[0].endswith("shared and worked together.")
    assert all(EOT_LINE not in s for s in stories)


def test_cut_seed_hand_made_document() -> None:
    a = _words("a", 58) + ". x y"  # 60 words; a mark inside a line is not a cut point
    b, c, d, e, f = (_words(t, n) for t, n in [("b", 50), ("c", 80), ("d", 30), ("e", 250), ("f", 60)])
    doc = f"{a}.\n{b}!\n{c}.\n{d}?\n{e}.\n{f}."
    # By hand: a+b = 110 >= 100 and +c = 190 <= 200, so c joins; +d = 220 > 200 closes [a, b, c].
    # d = 30 < 100 takes e although that makes 280 > 200; +f closes [d, e]; f alone (60 < 100) is dropped.
    prompts, tail_dropped = cut_seed(doc, 100)
    assert prompts == [f"{a}.\n{b}.\n{c}", f"{d}.\n{e}"]
    assert [len(p.split()) for p in prompts] == [190, 280] and tail_dropped
    # A last chunk that reaches 100 words is kept; a short document is kept whole, marks and all.
    assert cut_seed(f"{a}.\n{b}!", 100) == ([f"{a}.\n{b}!"], False)
    short = "Tom ran!\nHe fell.\nThe end."
    assert cut_seed(short, 100) == ([short], False)


def test_cut_seed_real_stories_lose_only_the_tail(corpus_dir: Path) -> None:
    for story in split_text(read_text(corpus_dir / TS_HEAD), "stories")[:300]:
        prompts, tail_dropped = cut_seed(story, CHUNK_WORDS)
        if len(story.split()) < CHUNK_WORDS:
            assert prompts == [story] and not tail_dropped
            continue
        assert prompts and all(len(p.split()) >= CHUNK_WORDS for p in prompts)
        rejoined = ".\n".join(re.split(r"[.!?]\n", story))
        assert rejoined.startswith(".\n".join(prompts))  # order kept, nothing lost but the tail
        assert tail_dropped == (len(rejoined.split()) > sum(len(p.split()) for p in prompts))


@pytest.mark.parametrize("n", [2, 19, 20, 21, 100, TS_STORIES])
@pytest.mark.parametrize("seed", [42, 7])
def test_seed_split_indices_equal_hf_train_test_split(n: int, seed: int) -> None:
    hf = datasets.Dataset.from_dict({"i": list(range(n))}).train_test_split(test_size=0.05, seed=seed)
    seed_ids, rest = seed_split_indices(n, 0.05, seed)
    assert seed_ids == list(hf["test"]["i"]) and rest == list(hf["train"]["i"])
    assert len(seed_ids) == math.ceil(0.05 * n)


def _ts_documents(corpus_dir: Path, tmp_path: Path, test_stories: list[str], **extra) -> dict[str, dict]:
    heldout = tmp_path / "ts_valid.txt"
    heldout.write_text("".join(f"{s}\n<|endoftext|>\n" for s in test_stories), encoding="utf-8")
    spec = {"format": "stories", "units": "documents", "train": [corpus_dir / TS_HEAD], "test": [heldout]}
    return {"ts": {**spec, **extra}}


def test_documents_split_equals_hf_on_the_same_list(corpus_dir: Path, tmp_path: Path) -> None:
    stories = split_text(read_text(corpus_dir / TS_HEAD), "stories")
    new = ["A new story.\nIt is short.", "Another one.\nThe end."]
    # 1000 words per prompt: every story (at most 837 words) is a prompt as it is, so rows are documents.
    stats = build_corpus(
        _ts_documents(corpus_dir, tmp_path, new), tmp_path / "out", chunk_words=1000, test_fraction=0.2
    )
    rows = _read_splits(tmp_path / "out")
    hf = _hf_split(stories)
    assert rows["seed"]["text"] == list(hf["test"]["text"])
    assert rows["train"]["text"] == list(hf["train"]["text"])  # test_fraction is unused with test files
    assert rows["test"]["text"] == new
    info = stats["sources"]["ts"]
    assert info["units"] == "documents"
    assert info["documents"] == {"read": TS_STORIES, "after_max_words": TS_STORIES, "after_dedup": TS_STORIES}
    assert info["seed_cut"]["kept_whole"] == info["seed_cut"]["documents"] == math.ceil(0.05 * TS_STORIES)


def test_documents_real_stories_build(corpus_dir: Path, tmp_path: Path) -> None:
    """All 2,316 stories of the shared file are documents; the seed split is HF's, then cut at 100 words."""
    stories = split_text(read_text(corpus_dir / TS_HEAD), "stories")
    sources = {"ts": {"format": "stories", "units": "documents", "train": [corpus_dir / TS_HEAD]}}
    stats = build_corpus(sources, tmp_path / "out", chunk_words=CHUNK_WORDS)
    rows = _read_splits(tmp_path / "out")
    info = stats["sources"]["ts"]
    n_seed, n_test = math.ceil(0.05 * TS_STORIES), round(0.05 * TS_STORIES)
    assert info["documents"]["read"] == TS_STORIES and info["duplicates_dropped"] == 0
    assert info["splits"]["train"]["rows"] == TS_STORIES - n_seed - n_test
    assert info["splits"]["test"]["rows"] == n_test

    hf_seed = list(_hf_split(stories)["test"]["text"])
    expected_ids: list[str] = []
    expected: list[str] = []
    for story in hf_seed:
        doc_id = f"ts:{stories.index(story):07d}"
        if len(story.split()) < CHUNK_WORDS:  # short seeds are kept as they are
            expected_ids.append(doc_id)
            expected.append(story)
        else:
            prompts, _ = cut_seed(story, CHUNK_WORDS)
            expected_ids.extend(f"{doc_id}/{k}" for k in range(len(prompts)))
            expected.extend(prompts)
    assert rows["seed"]["text"] == expected and rows["seed"]["doc_id"] == expected_ids
    cut = info["seed_cut"]
    assert cut["documents"] == n_seed == cut["kept_whole"] + cut["cut"]
    assert cut["prompts"] == len(expected) == cut["kept_whole"] + cut["prompts_from_cut"]
    assert cut["duplicates_dropped"] == 0 and cut["tails_dropped"] > 0
    assert any(w < CHUNK_WORDS for w in rows["seed"]["words"])  # short seeds kept
    assert any(w > 2 * CHUNK_WORDS for w in rows["seed"]["words"])  # one long piece can pass the cap


@pytest.fixture(scope="module")
def doc_built(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    sources = {
        "tinystories": {"format": "stories", "units": "documents", "train": [corpus_dir / TS_HEAD]},
        "gutenberg": {
            "format": "blocks",
            "units": "documents",
            "train": expand_paths(["gutenberg/pg*_*.txt.xz"], corpus_dir),
            "max_words": CAP,
        },
        "wikipedia": {
            "format": "lines",
            "units": "documents",
            "train": [corpus_dir / WIKI],
            "max_words": CAP,
        },
    }
    out = tmp_path_factory.mktemp("doc_corpus") / "out"
    stats = build_corpus(sources, out, chunk_words=CHUNK_WORDS)
    return stats, _read_splits(out)


def test_documents_no_text_in_two_splits(doc_built: tuple[dict, dict]) -> None:
    stats, rows = doc_built
    keys = {s: [" ".join(t.split()) for t in rows[s]["text"]] for s in SPLITS}
    for s in SPLITS:
        assert len(set(keys[s])) == len(keys[s]) and len(set(rows[s]["doc_id"])) == len(rows[s]["doc_id"])
        assert rows[s]["words"] == [len(t.split()) for t in rows[s]["text"]]
    for a, b in (("train", "seed"), ("train", "test"), ("seed", "test")):
        assert not set(keys[a]) & set(keys[b])
        assert not set(rows[a]["doc_id"]) & set(rows[b]["doc_id"])
    for name in ("gutenberg", "wikipedia"):  # repeated headings and short lines were deduplicated
        assert stats["sources"][name]["duplicates_dropped"] > 0
        assert sum(stats["sources"][name]["splits"][s]["words"] for s in ("train", "test")) <= CAP


def test_documents_stats_and_blocks_keep_line_breaks(doc_built: tuple[dict, dict]) -> None:
    stats, rows = doc_built
    assert stats["totals"]["seed"]["rows"] == sum(i["seed_cut"]["prompts"] for i in stats["sources"].values())
    for info in stats["sources"].values():
        n = info["documents"]["after_dedup"]
        assert info["seed_cut"]["documents"] == math.ceil(0.05 * n)
        assert info["splits"]["test"]["rows"] == round(0.05 * n)
        assert info["splits"]["train"]["rows"] == n - math.ceil(0.05 * n) - round(0.05 * n)
    guten = [t for t, src in zip(rows["train"]["text"], rows["train"]["source"]) if src == "gutenberg"]
    assert all(t.endswith("\n") for t in guten) and not any("\n\n" in t for t in guten)


def test_documents_max_words_takes_a_seeded_shuffle(corpus_dir: Path) -> None:
    stories = split_text(read_text(corpus_dir / TS_HEAD), "stories")
    cap = 50_000
    taken = {}
    for seed in (1, 2):
        kept = cap_documents(stories, cap, seed)
        # HF's shuffle(seed), then the authors' cut: take while the running total stays <= cap.
        shuffled = list(datasets.Dataset.from_dict({"text": stories}).shuffle(seed=seed)["text"])
        assert kept == shuffled[: len(kept)]
        total = sum(len(s.split()) for s in kept)
        assert total <= cap < total + len(shuffled[len(kept)].split())
        taken[seed] = set(kept)
    assert taken[1] != taken[2]


def test_documents_max_words_build_differs_by_split_seed(corpus_dir: Path, tmp_path: Path) -> None:
    sources = {
        "ts": {
            "format": "stories",
            "units": "documents",
            "train": [corpus_dir / TS_HEAD],
            "max_words": 30_000,
        }
    }
    texts = {}
    for seed in (1, 2):
        stats = build_corpus(sources, tmp_path / str(seed), split_seed=seed, chunk_words=CHUNK_WORDS)
        info = stats["sources"]["ts"]
        assert info["documents"]["read"] == TS_STORIES > info["documents"]["after_max_words"]
        assert sum(info["splits"][s]["words"] for s in ("train", "test")) <= 30_000
        rows = _read_splits(tmp_path / str(seed))
        texts[seed] = set(rows["train"]["text"]) | set(rows["test"]["text"])
    assert texts[1] != texts[2]


def test_table_rows_are_documents_read_and_capped_as_the_authors_read_tinystories(
    corpus_dir: Path, tmp_path: Path
) -> None:
    """TinyStories as the authors load it: one story per row of the dataset's Parquet files, a seeded
    shuffle, and the 38M-word cut counted with `split(" ")` (here a 30K cut of the shared stories)."""
    stories = split_text(read_text(corpus_dir / TS_HEAD), "stories")
    half = len(stories) // 2
    parquet = [tmp_path / "train-00000-of-00002.parquet", tmp_path / "train-00001-of-00002.parquet"]
    pq.write_table(pa.table({"text": stories[:half], "n": list(range(half))}), parquet[0])
    pq.write_table(pa.table({"text": stories[half:]}), parquet[1])
    spec = {"format": "table", "units": "documents", "train": parquet, "max_words": 30_000}
    built = {}
    for count in ("whitespace", "space"):
        stats = build_corpus({"ts": spec | {"max_words_count": count}}, tmp_path / count, chunk_words=100)
        built[count] = (stats["sources"]["ts"]["documents"], _read_splits(tmp_path / count))
    assert built["whitespace"][0]["read"] == len(stories)
    # The same documents as the .txt read as stories.
    txt = {"format": "stories", "units": "documents", "train": [corpus_dir / TS_HEAD], "max_words": 30_000}
    build_corpus({"ts": txt}, tmp_path / "txt", chunk_words=100)
    assert _read_splits(tmp_path / "txt") == built["whitespace"][1]
    # The authors' cut, written from its description: HF shuffle(42), take while split(" ") fits.
    shuffled = datasets.Dataset.from_dict({"text": stories}).shuffle(seed=42)["text"]
    taken, total = 0, 0
    while total + len(shuffled[taken].split(" ")) <= 30_000:
        total += len(shuffled[taken].split(" "))
        taken += 1
    assert built["space"][0]["after_max_words"] == taken
    # split(" ") sees "end.\nNext" as one word, so more stories fit under the same cap.
    assert taken > built["whitespace"][0]["after_max_words"]


def test_a_table_without_a_text_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "stories.parquet"
    pq.write_table(pa.table({"story": ["Once upon a time."] * 50}), path)
    sources = {"ts": {"format": "table", "units": "documents", "train": [path]}}
    with pytest.raises(DataError, match=r"stories.parquet: has no `text` column \(columns: story\)"):
        build_corpus(sources, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_documents_test_files_and_overlap(corpus_dir: Path, tmp_path: Path) -> None:
    stories = split_text(read_text(corpus_dir / TS_HEAD), "stories")
    heldout = [*stories[:3], "A new story.\nThe end."]  # three test stories are also train stories
    stats = build_corpus(
        _ts_documents(corpus_dir, tmp_path, heldout), tmp_path / "out", chunk_words=CHUNK_WORDS
    )
    rows = _read_splits(tmp_path / "out")
    assert rows["test"]["text"] == heldout
    assert rows["test"]["doc_id"] == [f"ts:{TS_STORIES - 3 + j:07d}" for j in range(4)]
    assert stats["sources"]["ts"]["test_overlap_dropped"] == 3
    assert not set(heldout) & (set(rows["train"]["text"]) | set(rows["seed"]["text"]))


def test_chunks_units_work_with_stories_and_blocks(corpus_dir: Path, tmp_path: Path) -> None:
    sources = {
        "ts": {"format": "stories", "train": [corpus_dir / TS_HEAD], "max_words": CAP},
        "emma": {
            "format": "blocks",
            "units": "chunks",
            "train": [corpus_dir / "gutenberg/nltk_austen-emma.txt.xz"],
        },
    }
    stats = build_corpus(sources, tmp_path / "out", chunk_words=CHUNK_WORDS)
    rows = _read_splits(tmp_path / "out")
    assert all(min(rows[s]["words"]) >= CHUNK_WORDS for s in SPLITS)
    assert {i["units"] for i in stats["sources"].values()} == {"chunks"}
    assert all(i["seed_cut"] is None and i["documents"] is None for i in stats["sources"].values())
    ts_stories = split_text(read_text(corpus_dir / TS_HEAD), "stories")
    assert rows["train"]["text"][0].split("\n")[0] in {s.split("\n")[0] for s in ts_stories}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"units": "sentences"}, "'ts'.*units: 'sentences' is not one of"),
        ({"format": "xml"}, "'ts'.*format: 'xml' is not one of"),
    ],
)
def test_bad_units_or_format_raise_before_writing(
    corpus_dir: Path, tmp_path: Path, change: dict, match: str
) -> None:
    sources = {"ts": {"format": "stories", "units": "documents", "train": [corpus_dir / TS_HEAD], **change}}
    with pytest.raises(ConfigError, match=match):
        build_corpus(sources, tmp_path / "out")
    _assert_no_outputs(tmp_path / "out")


def test_documents_too_small_source_raises(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("One story.\n<|endoftext|>\nTwo stories.\n", encoding="utf-8")
    sources = {"tiny": {"format": "stories", "units": "documents", "train": [tiny]}}
    with pytest.raises(DataError, match="'tiny'.*too small"):
        build_corpus(sources, tmp_path / "out", test_fraction=0.4)
    _assert_no_outputs(tmp_path / "out")


def test_every_word_count_rule_the_spec_names_is_implemented():
    assert tuple(WORD_COUNTS) == WORD_COUNT_RULES
