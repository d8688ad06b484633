"""Build the train / seed / test splits of the real-text corpus from raw text sources.

Each source is read into pieces by its `format` and turned into rows by its `units`:

- "chunks": consecutive pieces are grouped into chunks of at least `chunk_words` words, and a seeded shuffle
  of the chunks assigns them to seed / test / train.
- "documents" (the authors' data pipeline): each piece is a document; `max_words` keeps a seeded shuffle's
  leading documents, the seed split is HF `train_test_split` over documents, and only the seed documents are
  then cut into generation prompts (`cut_seed`).

The seed split holds the prompts for synthetic generation.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cdsynth.errors import ConfigError, DataError
from cdsynth.io import read_arrow, write_arrow, write_json
from cdsynth.spec.settings import problems_of
from cdsynth.spec.sources import FIX_PATHS, FORMATS, Source

# How `max_words` counts a unit's words: "whitespace" as the `words` column does; "space" as the authors
# counted TinyStories for their 38M-word cut (`str.split(" ")`: "end.\nNext" is one word, "a  b" three).
WORD_COUNTS: dict[str, Callable[[str], int]] = {
    "whitespace": lambda text: len(text.split()),
    "space": lambda text: len(text.split(" ")),
}
SPLITS = ("train", "seed", "test")
EOT = "<|endoftext|>"
SCHEMA = pa.schema(
    [
        pa.field("text", pa.string()),
        pa.field("source", pa.string()),
        pa.field("doc_id", pa.string()),
        pa.field("words", pa.int32()),
    ]
)
# The authors' sentence ends for cutting seed documents: a sentence mark that ends a line.
_SENTENCE_END = re.compile(r"[.!?]\n")


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, decompressing `.xz` or `.gz` by suffix; a bad file raises DataError."""
    path = Path(path)
    opener = {".xz": lzma.open, ".gz": gzip.open}.get(path.suffix.lower(), open)
    try:
        # utf-8-sig drops a BOM, which would otherwise glue itself to the first word.
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found. {FIX_PATHS}") from err
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as err:
        raise DataError(
            f"{path}: cannot read it as UTF-8 text ({err}). "
            "Replace it with a valid plain, .xz or .gz UTF-8 text file."
        ) from err


def read_table_texts(path: str | os.PathLike) -> list[str]:
    """The `text` column of a Parquet or Arrow file, one document per row (a Hugging Face dataset's files)."""
    path = Path(path)
    try:
        table = pq.read_table(path) if path.suffix.lower() == ".parquet" else read_arrow(path)
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found. {FIX_PATHS}") from err
    except (OSError, pa.ArrowException) as err:
        raise DataError(
            f"{path}: cannot read it as a Parquet or Arrow table ({err}). `format: table` takes .parquet "
            "or .arrow files with a `text` column."
        ) from err
    if "text" not in table.column_names:
        raise DataError(
            f"{path}: has no `text` column (columns: {', '.join(table.column_names)}). `format: table` "
            "reads one document per row of `text`."
        )
    return [text or "" for text in table.column("text").to_pylist()]


def split_text(text: str, fmt: str) -> list[str]:
    """Split `text` into the pieces of format `fmt` (a line that is exactly `<|endoftext|>` is never kept).

    - "lines": one piece per non-blank line, stripped.
    - "paragraphs": blank-line (or `<|endoftext|>`) separated blocks, wrapped lines joined with spaces.
    - "blocks": the authors' BabyLM documents (`data/load_datasets.py`): the file's lines with their line
      breaks, a document ending at a line that is exactly empty (whitespace-only lines stay inside).
    - "stories": `<|endoftext|>`-separated stories (TinyStories .txt), line breaks kept. Blank lines inside a
      story are dropped: the file puts one paragraph per line, so they carry no structure, and the seed
      cutting only looks at sentence marks that end a line. The line break that ends a story is dropped.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown paragraph format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "lines":
        return [p for p in (line.strip() for line in text.splitlines()) if p and p != EOT]
    if fmt == "stories":
        return ["\n".join(group) for group in _line_groups(text, lambda s: s == EOT)]
    if fmt == "blocks":
        return _empty_line_documents(text)
    groups = _line_groups(text, lambda s: not s or s == EOT)
    return [" ".join(line.strip() for line in group) for group in groups]


def _empty_line_documents(text: str) -> list[str]:
    """Lines as a text-mode `readlines()` gives them (split at "\n" only, which they keep), grouped into
    documents at every line that is exactly "\n"; that line belongs to no document."""
    lines = text.split("\n")
    docs: list[str] = []
    current = ""
    for k, line in enumerate(lines):
        if k < len(lines) - 1:
            line += "\n"
        if line == "\n":
            if current:
                docs.append(current)
            current = ""
        else:
            current += line
    if current:
        docs.append(current)
    return docs


def _line_groups(text: str, ends: Callable[[str], bool]) -> Iterator[list[str]]:
    """Runs of non-blank lines; a line whose stripped text satisfies `ends` closes a run and is dropped."""
    group: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if ends(stripped):
            if group:
                yield group
            group = []
        elif stripped:
            group.append(line)
    if group:
        yield group


def chunk_paragraphs(paras: list[str], chunk_words: int) -> list[str]:
    """Greedily join consecutive paragraphs with "\\n" into chunks of at least `chunk_words` words.

    A short tail is merged into the previous chunk, so only a text shorter than `chunk_words` as a whole
    yields a short chunk.
    """
    if chunk_words < 1:
        raise ValueError(f"chunk_words must be >= 1, got {chunk_words}")
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for para in paras:
        n = len(para.split())
        if n == 0:
            continue
        current.append(para)
        count += n
        if count >= chunk_words:
            chunks.append("\n".join(current))
            current, count = [], 0
    if current:
        tail = "\n".join(current)
        if chunks:
            chunks[-1] = chunks[-1] + "\n" + tail
        else:
            chunks.append(tail)
    return chunks


@dataclass
class _Split:
    texts: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    words: list[int] = field(default_factory=list)

    def add(self, doc_id: str, text: str, words: int) -> None:
        self.texts.append(text)
        self.doc_ids.append(doc_id)
        self.words.append(words)

    def stats(self) -> dict[str, int]:
        return {"rows": len(self.texts), "words": int(sum(self.words))}


def _norm_key(text: str) -> bytes:
    # A 16-byte digest instead of the text keeps the dedup set small for ~100M-word corpora.
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=16).digest()


def _file_units(files: Iterable[Path], fmt: str, units: str, chunk_words: int) -> Iterator[str]:
    # Grouping per file keeps chunks from spanning two files.
    for path in files:
        pieces = read_table_texts(path) if fmt == "table" else split_text(read_text(path), fmt)
        yield from chunk_paragraphs(pieces, chunk_words) if units == "chunks" else pieces


def _train_chunks(
    files: list[Path], fmt: str, chunk_words: int, max_words: int | None, count: Callable[[str], int]
) -> list[str]:
    """Chunks of the train files in order; with `max_words`, the leading chunks whose total fits the cap."""
    chunks: list[str] = []
    total = 0
    for chunk in _file_units(files, fmt, "chunks", chunk_words):
        if max_words is not None:
            n = count(chunk)
            if total + n > max_words:
                break  # later files are never read, which keeps capped demo builds fast
            total += n
        chunks.append(chunk)
    return chunks


def cap_documents(
    docs: list[str], max_words: int, seed: int, count: Callable[[str], int] = WORD_COUNTS["whitespace"]
) -> list[str]:
    """The authors' word cap: HF `shuffle(seed)` of the documents, then the leading ones that fit.

    Documents are taken in `default_rng(seed).permutation` order while the running word total stays
    <= `max_words`, stopping at the first document that would exceed it. `count` counts a document's
    words: whitespace-split by default, so the cap holds for the `words` column; the authors count
    `split(" ")` (WORD_COUNTS["space"]), which sees "end.\\nNext" as one word.
    """
    kept: list[str] = []
    total = 0
    for i in np.random.default_rng(seed).permutation(len(docs)):
        n = count(docs[i])
        if total + n > max_words:
            break
        kept.append(docs[i])
        total += n
    return kept


def seed_split_indices(n: int, seed_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(seed, rest) indices of HF `train_test_split(test_size=seed_fraction, seed=seed)` on `n` rows.

    HF's "test" part is our seed split: the first ceil(seed_fraction * n) entries of
    `default_rng(seed).permutation(n)`; the rest follows in permutation order.
    """
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_seed = math.ceil(seed_fraction * n)
    return order[:n_seed], order[n_seed:]


def cut_seed(text: str, min_words: int) -> tuple[list[str], bool]:
    """The authors' prompt cutting of one seed document: (prompts, whether a short tail was dropped).

    A document under `min_words` words is kept whole. A longer one is split at sentence marks that end a
    line (`[.!?]\\n`, the mark is consumed) and the pieces are accumulated greedily, rejoined with ".\\n": a
    chunk is closed when it has >= `min_words` words and the next piece would take it past 2 x `min_words`
    (so one long piece can exceed the cap). A last chunk under `min_words` words is dropped.
    """
    if len(text.split()) < min_words:
        return [text], False
    prompts: list[str] = []
    current, count = "", 0
    for piece in _SENTENCE_END.split(text):
        n = len(piece.split())
        if count >= min_words and count + n > 2 * min_words:
            prompts.append(current)
            current, count = piece, n
        else:
            current = f"{current}.\n{piece}" if current else piece
            count += n
    if count >= min_words:
        prompts.append(current)
    return prompts, 0 < count < min_words


def _unique(texts: list[str], exclude: set[bytes] | None = None) -> list[int]:
    """Indices of the first occurrences of `texts` (whitespace-normalized) whose key is not in `exclude`."""
    seen: set[bytes] = set(exclude) if exclude else set()
    kept: list[int] = []
    for i, text in enumerate(texts):
        key = _norm_key(text)
        if key not in seen:
            seen.add(key)
            kept.append(i)
    return kept


def _dedup(texts: Iterable[str], exclude: set[bytes] | None = None) -> tuple[list[str], int]:
    """Drop repeated texts (and those whose key is in `exclude`), keeping first occurrences."""
    texts = list(texts)
    kept = [texts[i] for i in _unique(texts, exclude)]
    return kept, len(texts) - len(kept)


def _check_params(seed_fraction: float, test_fraction: float, chunk_words: int) -> None:
    if not 0 < seed_fraction < 1 or not 0 <= test_fraction < 1 or seed_fraction + test_fraction >= 1:
        raise ConfigError(
            f"seed_fraction={seed_fraction}, test_fraction={test_fraction}: need 0 < seed_fraction, "
            "0 <= test_fraction and seed_fraction + test_fraction < 1."
        )
    if chunk_words < 1:
        raise ConfigError(f"chunk_words={chunk_words}: must be a positive number of words.")


def _typed_sources(sources: dict[str, Source | dict]) -> dict[str, Source]:
    """Every source as a `Source` (a dict is one's fields), its files there: refused before any work."""
    if not sources:
        raise ConfigError("corpus sources: no source configured; add at least one source with train files.")
    typed = {}
    for name, spec in sources.items():
        problems = [] if isinstance(spec, Source) else problems_of(lambda spec=spec: Source(**spec))
        if problems:
            raise ConfigError(f"corpus source {name!r}: {'; '.join(problems)}")
        typed[name] = spec if isinstance(spec, Source) else Source(**spec)
        for path in [*typed[name].train, *typed[name].test]:
            if not Path(path).is_file():
                raise DataError(f"corpus source {name!r}: {path}: file not found. {FIX_PATHS}")
    return typed


@dataclass
class _Source:
    """One source's resolved spec (see `build_corpus`)."""

    name: str
    fmt: str
    units: str
    max_words: int | None
    max_words_count: str
    train_files: list[Path]
    test_files: list[Path]

    @classmethod
    def from_spec(cls, name: str, spec: Source) -> _Source:
        return cls(
            name=name,
            fmt=spec.format,
            units=spec.units,
            max_words=spec.max_words,
            max_words_count=spec.max_words_count,
            train_files=[Path(p) for p in spec.train],
            test_files=[Path(p) for p in spec.test],
        )

    def doc_id(self, i: int) -> str:
        return f"{self.name}:{i:07d}"


def _train_texts(src: _Source, chunk_words: int, split_seed: int) -> tuple[list[str], int]:
    """The source's train units (chunks or documents) before dedup, and how many were read.

    Documents are all read before the cap; chunks stop reading at the cap, so their count is the capped one.
    """
    count = WORD_COUNTS[src.max_words_count]
    if src.units == "chunks":
        texts = _train_chunks(src.train_files, src.fmt, chunk_words, src.max_words, count)
        read = len(texts)
    else:
        texts = list(_file_units(src.train_files, src.fmt, src.units, chunk_words))
        read = len(texts)
        if src.max_words is not None:
            texts = cap_documents(texts, src.max_words, split_seed, count)
    if not texts:
        cap = f" with max_words={src.max_words}" if src.max_words is not None else ""
        raise DataError(
            f"corpus source {src.name!r}: no text in {', '.join(map(str, src.train_files))}{cap}. "
            "Check that the files are the right ones and not empty (or raise max_words)."
        )
    return texts, read


def _test_texts(src: _Source, chunk_words: int) -> tuple[list[str], int]:
    """The units of the source's own test files, deduplicated, and how many duplicates were dropped."""
    if not src.test_files:
        return [], 0
    texts, duplicates = _dedup(_file_units(src.test_files, src.fmt, src.units, chunk_words))
    if not texts:
        raise DataError(
            f"corpus source {src.name!r}: no text in test files {', '.join(map(str, src.test_files))}. "
            "Point 'test' at non-empty files or remove it to split test rows off the train files."
        )
    return texts, duplicates


def _assign_chunks(
    src: _Source, words: list[int], n_test: int, *, split_seed: int, seed_fraction: float, chunk_words: int
) -> dict[str, list[int]]:
    n = len(words)
    n_seed = round(seed_fraction * n)
    order = np.random.default_rng(split_seed).permutation(n)
    # Seed chunks are generation prompts, so a short chunk (a whole file below chunk_words) never becomes one.
    long_enough = [int(i) for i in order if words[i] >= chunk_words]
    seed_ids = long_enough[:n_seed]
    if not seed_ids:
        raise DataError(
            f"corpus source {src.name!r}: the source is too small for a seed split ({n} chunks, "
            f"{len(long_enough)} of them with >= {chunk_words} words; seed_fraction={seed_fraction} selects "
            f"{n_seed}). Add more text, raise max_words or seed_fraction, or lower chunk_words."
        )
    taken = set(seed_ids)
    rest = [int(i) for i in order if int(i) not in taken]
    return {"seed": seed_ids, "test": rest[:n_test], "train": rest[n_test:]}


def _assign_documents(
    src: _Source, n: int, n_test: int, *, split_seed: int, seed_fraction: float
) -> dict[str, list[int]]:
    seed_ids, rest = seed_split_indices(n, seed_fraction, split_seed)
    if len(rest) <= n_test:
        raise DataError(
            f"corpus source {src.name!r}: the source is too small for its splits ({n} documents: "
            f"{len(seed_ids)} seed, {n_test} test, none left for train). Add more text or raise max_words."
        )
    return {"seed": seed_ids, "test": rest[:n_test], "train": rest[n_test:]}


def _seed_prompts(
    src: _Source, texts: list[str], words: list[int], seed_ids: list[int], min_words: int, exclude: set[bytes]
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Cut the seed documents into (doc_id, prompt) rows; the counts before and after go to stats.json.

    Prompts that repeat one another or equal a train / test document are dropped, so that no text is in
    two splits (the authors keep them).
    """
    rows: list[tuple[str, str]] = []
    cut = {"documents": len(seed_ids), "kept_whole": 0, "cut": 0, "prompts_from_cut": 0, "tails_dropped": 0}
    for i in seed_ids:
        if words[i] < min_words:
            cut["kept_whole"] += 1
            rows.append((src.doc_id(i), texts[i]))
            continue
        prompts, tail_dropped = cut_seed(texts[i], min_words)
        cut["cut"] += 1
        cut["prompts_from_cut"] += len(prompts)
        cut["tails_dropped"] += tail_dropped
        rows.extend((f"{src.doc_id(i)}/{k}", prompt) for k, prompt in enumerate(prompts))
    kept = [rows[j] for j in _unique([text for _, text in rows], exclude)]
    cut["duplicates_dropped"] = len(rows) - len(kept)
    cut["prompts"] = len(kept)
    if not kept:
        raise DataError(
            f"corpus source {src.name!r}: its {len(seed_ids)} seed documents yield no prompt. "
            "Add more text or raise max_words or seed_fraction."
        )
    return kept, cut


def _fill_splits(
    src: _Source,
    texts: list[str],
    words: list[int],
    ids: dict[str, list[int]],
    seed_rows: list[tuple[str, str]],
    test_texts: list[str],
) -> dict[str, _Split]:
    splits = {s: _Split() for s in SPLITS}
    for split in ("train", "test"):
        for i in ids[split]:
            splits[split].add(src.doc_id(i), texts[i], words[i])
    # Test-file rows are numbered after the train-file rows, so doc ids stay unique within the source.
    for j, text in enumerate(test_texts, start=len(texts)):
        splits["test"].add(src.doc_id(j), text, len(text.split()))
    for doc_id, text in seed_rows:
        splits["seed"].add(doc_id, text, len(text.split()))
    return splits


def _split_source(
    name: str,
    spec: Source,
    *,
    split_seed: int,
    seed_fraction: float,
    test_fraction: float,
    chunk_words: int,
) -> tuple[dict[str, _Split], dict[str, Any]]:
    """Split one source. With units "documents" this follows the authors' pipeline, with two differences.

    Exact duplicate documents (after whitespace collapse) are dropped, and so are train documents equal to
    a document of the source's test files, before the seed split; seed prompts that repeat a train / test
    document or each other are dropped after the cut. The authors keep all of these, which puts the same
    text in two splits: a test document also trained on flatters perplexity, and a seed prompt that is
    also train text is no longer held out. The split is HF's on the list that remains, so it matches the
    authors' exactly whenever the source has no such duplicates.
    """
    src = _Source.from_spec(name, spec)
    texts, read = _train_texts(src, chunk_words, split_seed)
    capped = len(texts)
    texts, duplicates = _dedup(texts)
    test_texts, test_duplicates = _test_texts(src, chunk_words)
    test_keys = {_norm_key(t) for t in test_texts}
    overlap = 0
    if test_keys:
        before = len(texts)
        texts, _ = _dedup(texts, exclude=test_keys)
        overlap = before - len(texts)

    n = len(texts)
    n_test = 0 if src.test_files else round(test_fraction * n)
    words = [len(t.split()) for t in texts]
    if src.units == "chunks":
        ids = _assign_chunks(
            src, words, n_test, split_seed=split_seed, seed_fraction=seed_fraction, chunk_words=chunk_words
        )
        seed_rows = [(src.doc_id(i), texts[i]) for i in ids["seed"]]
        seed_cut = None
    else:
        ids = _assign_documents(src, n, n_test, split_seed=split_seed, seed_fraction=seed_fraction)
        exclude = test_keys | {_norm_key(texts[i]) for i in ids["train"] + ids["test"]}
        seed_rows, seed_cut = _seed_prompts(src, texts, words, ids["seed"], chunk_words, exclude)

    splits = _fill_splits(src, texts, words, ids, seed_rows, test_texts)

    info = {
        "format": src.fmt,
        "units": src.units,
        "max_words": src.max_words,
        "max_words_count": src.max_words_count,
        "train_files": [str(p) for p in src.train_files],
        "test_files": [str(p) for p in src.test_files],
        "documents": None
        if src.units == "chunks"
        else {"read": read, "after_max_words": capped, "after_dedup": n},
        "duplicates_dropped": duplicates + test_duplicates,
        "test_overlap_dropped": overlap,
        "seed_cut": seed_cut,
        "splits": {s: splits[s].stats() for s in SPLITS},
    }
    return splits, info


def _table(parts: list[tuple[str, _Split]]) -> pa.Table:
    columns: dict[str, list] = {"text": [], "source": [], "doc_id": [], "words": []}
    for name, split in parts:
        columns["text"].extend(split.texts)
        columns["source"].extend([name] * len(split.texts))
        columns["doc_id"].extend(split.doc_ids)
        columns["words"].extend(split.words)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def build_corpus(
    sources: dict[str, Source | dict],
    out_dir: str | os.PathLike,
    *,
    split_seed: int = 42,
    seed_fraction: float = 0.05,
    test_fraction: float = 0.05,
    chunk_words: int = 100,
) -> dict:
    """Write `train.arrow`, `seed.arrow`, `test.arrow` and `stats.json` to `out_dir`; return the stats.

    `sources` maps a source name to a `cdsynth.spec.sources.Source` (or a dict of its fields, with its
    files as paths). `chunk_words` is the chunk size for
    "chunks" and the prompt size (min_words) of the seed cutting for "documents". Everything is validated
    and split in memory first, so a bad input raises DataError / ConfigError before any file is written.
    """
    _check_params(seed_fraction, test_fraction, chunk_words)
    sources = _typed_sources(sources)
    params = {
        "split_seed": split_seed,
        "seed_fraction": seed_fraction,
        "test_fraction": test_fraction,
        "chunk_words": chunk_words,
    }
    per_source: dict[str, dict[str, _Split]] = {}
    stats: dict[str, Any] = {"params": params, "sources": {}}
    for name, spec in sources.items():
        per_source[name], stats["sources"][name] = _split_source(
            name,
            spec,
            split_seed=split_seed,
            seed_fraction=seed_fraction,
            test_fraction=test_fraction,
            chunk_words=chunk_words,
        )
    stats["totals"] = {
        s: {k: sum(info["splits"][s][k] for info in stats["sources"].values()) for k in ("rows", "words")}
        for s in SPLITS
    }

    out_dir = Path(out_dir)
    targets = [out_dir / f"{s}.arrow" for s in SPLITS] + [out_dir / "stats.json"]
    try:
        for split in SPLITS:
            table = _table([(name, splits[split]) for name, splits in per_source.items()])
            write_arrow(table, out_dir / f"{split}.arrow")
        write_json(stats, targets[-1])
    except BaseException:
        # Without all four files the outputs are inconsistent, so drop the ones already written.
        for target in targets:
            if target.is_file():
                target.unlink()
        raise
    return stats
