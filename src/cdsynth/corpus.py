"""Build the train / seed / test splits of the real-text corpus from raw text sources.

Each source is read, split into paragraphs, grouped into chunks of at least `chunk_words` words,
deduplicated and split by a seeded shuffle. The seed split holds the prompts for synthetic generation.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import lzma
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cdsynth.errors import ConfigError, DataError
from cdsynth.io import write_arrow, write_json

FORMATS = ("lines", "paragraphs")
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
_GLOB_CHARS = frozenset("*?[")


def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, decompressing `.xz` or `.gz` by suffix; a bad file raises DataError."""
    path = Path(path)
    opener = {".xz": lzma.open, ".gz": gzip.open}.get(path.suffix.lower(), open)
    try:
        # utf-8-sig drops a BOM, which would otherwise glue itself to the first word.
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found. {_FIX_PATHS}") from err
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as err:
        raise DataError(
            f"{path}: cannot read it as UTF-8 text ({err}). "
            "Replace it with a valid plain, .xz or .gz UTF-8 text file."
        ) from err


_FIX_PATHS = (
    "Point the config at existing files (e.g. ../shared/data/corpus/...) or download them first "
    "(e.g. the BabyLM corpus from https://babylm.github.io)."
)


def paragraphs(text: str, fmt: str) -> list[str]:
    """Split `text` into paragraphs: one per line ("lines") or per blank-line-separated block ("paragraphs").

    A line that is exactly `<|endoftext|>` (the TinyStories story separator) ends a paragraph and is dropped.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown paragraph format {fmt!r}; use one of {', '.join(FORMATS)}")
    lines = (line.strip() for line in text.splitlines())
    if fmt == "lines":
        return [line for line in lines if line and line != EOT]
    paras: list[str] = []
    block: list[str] = []
    for line in lines:
        if line and line != EOT:
            block.append(line)
        elif block:
            paras.append(" ".join(block))
            block = []
    if block:
        paras.append(" ".join(block))
    return paras


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


def expand_paths(patterns: list[str], base: Path | None = None) -> list[Path]:
    """Expand paths and glob patterns (relative ones against `base`) into existing files.

    Matches are sorted within a pattern, the pattern order is kept and duplicates are dropped.
    """
    seen: set[Path] = set()
    result: list[Path] = []
    for pattern in patterns:
        full = Path(pattern).expanduser()
        if base is not None and not full.is_absolute():
            full = Path(base) / full
        if _GLOB_CHARS & set(str(pattern)):
            matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True))
        else:
            matches = [full] if full.exists() else []
        files = [m for m in matches if m.is_file()]
        if not files:
            what = "only directories" if matches else "nothing"
            raise DataError(f"{pattern!r} (resolved to {full}) matches {what}. {_FIX_PATHS}")
        for path in files:
            if path not in seen:
                seen.add(path)
                result.append(path)
    return result


@dataclass
class _Split:
    texts: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    words: list[int] = field(default_factory=list)

    def stats(self) -> dict[str, int]:
        return {"chunks": len(self.texts), "words": int(sum(self.words))}


def _norm_key(text: str) -> bytes:
    # A 16-byte digest instead of the text keeps the dedup set small for ~100M-word corpora.
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8"), digest_size=16).digest()


def _file_chunks(files: Iterable[Path], fmt: str, chunk_words: int) -> Iterator[str]:
    # Chunking per file keeps chunks from spanning two documents.
    for path in files:
        yield from chunk_paragraphs(paragraphs(read_text(path), fmt), chunk_words)


def _train_chunks(files: list[Path], fmt: str, chunk_words: int, max_words: int | None) -> list[str]:
    """Chunks of the train files in order; with `max_words`, the leading chunks whose total fits the cap."""
    chunks: list[str] = []
    total = 0
    for chunk in _file_chunks(files, fmt, chunk_words):
        if max_words is not None:
            n = len(chunk.split())
            if total + n > max_words:
                break  # later files are never read, which keeps capped demo builds fast
            total += n
        chunks.append(chunk)
    return chunks


def _dedup(chunks: Iterable[str], exclude: set[bytes] | None = None) -> tuple[list[str], int]:
    """Drop repeated chunks (and those whose key is in `exclude`), keeping first occurrences."""
    seen: set[bytes] = set(exclude) if exclude else set()
    kept: list[str] = []
    dropped = 0
    for chunk in chunks:
        key = _norm_key(chunk)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(chunk)
    return kept, dropped


def _check_params(sources: dict[str, dict], seed_fraction: float, test_fraction: float, chunk_words: int):
    if not sources:
        raise ConfigError("corpus sources: no source configured; add at least one source with train files.")
    if not 0 < seed_fraction < 1 or not 0 <= test_fraction < 1 or seed_fraction + test_fraction >= 1:
        raise ConfigError(
            f"seed_fraction={seed_fraction}, test_fraction={test_fraction}: need 0 < seed_fraction, "
            "0 <= test_fraction and seed_fraction + test_fraction < 1."
        )
    if chunk_words < 1:
        raise ConfigError(f"chunk_words={chunk_words}: must be a positive number of words.")
    for name, spec in sources.items():
        if spec.get("format") not in FORMATS:
            raise ConfigError(
                f"corpus source {name!r}: format {spec.get('format')!r} is not one of {', '.join(FORMATS)}."
            )
        if not spec.get("train"):
            raise ConfigError(f"corpus source {name!r}: 'train' lists no files; add at least one file.")
        max_words = spec.get("max_words")
        if max_words is not None and (isinstance(max_words, bool) or not isinstance(max_words, int)):
            raise ConfigError(f"corpus source {name!r}: max_words={max_words!r} must be an integer or null.")
        if max_words is not None and max_words < 1:
            raise ConfigError(f"corpus source {name!r}: max_words={max_words} must be positive.")
        for path in [*spec["train"], *(spec.get("test") or [])]:
            if not Path(path).is_file():
                raise DataError(f"corpus source {name!r}: {path}: file not found. {_FIX_PATHS}")


def _split_source(
    name: str,
    spec: dict,
    *,
    split_seed: int,
    seed_fraction: float,
    test_fraction: float,
    chunk_words: int,
) -> tuple[dict[str, _Split], dict[str, Any]]:
    fmt = spec["format"]
    train_files = [Path(p) for p in spec["train"]]
    test_files = [Path(p) for p in spec.get("test") or []]
    max_words = spec.get("max_words")

    chunks = _train_chunks(train_files, fmt, chunk_words, max_words)
    if not chunks:
        cap = f" with max_words={max_words}" if max_words is not None else ""
        raise DataError(
            f"corpus source {name!r}: no text in {', '.join(map(str, train_files))}{cap}. "
            "Check that the files are the right ones and not empty (or raise max_words)."
        )
    chunks, duplicates = _dedup(chunks)

    test_chunks: list[str] = []
    overlap = 0
    if test_files:
        test_chunks, test_duplicates = _dedup(_file_chunks(test_files, fmt, chunk_words))
        duplicates += test_duplicates
        if not test_chunks:
            raise DataError(
                f"corpus source {name!r}: no text in test files {', '.join(map(str, test_files))}. "
                "Point 'test' at non-empty files or remove it to split test chunks off the train files."
            )
        before = len(chunks)
        chunks, _ = _dedup(chunks, exclude={_norm_key(c) for c in test_chunks})
        overlap = before - len(chunks)

    n = len(chunks)
    n_seed = round(seed_fraction * n)
    n_test = 0 if test_files else round(test_fraction * n)
    order = np.random.default_rng(split_seed).permutation(n)
    words = [len(c.split()) for c in chunks]
    # Seed chunks are generation prompts, so a short chunk (a whole file below chunk_words) never becomes one.
    long_enough = [int(i) for i in order if words[i] >= chunk_words]
    seed_ids = long_enough[:n_seed]
    if not seed_ids:
        raise DataError(
            f"corpus source {name!r}: the source is too small for a seed split ({n} chunks, "
            f"{len(long_enough)} of them with >= {chunk_words} words; seed_fraction={seed_fraction} selects "
            f"{n_seed}). Add more text, raise max_words or seed_fraction, or lower chunk_words."
        )
    taken = set(seed_ids)
    rest = [int(i) for i in order if int(i) not in taken]
    assignment = {"seed": seed_ids, "test": rest[:n_test], "train": rest[n_test:]}

    splits = {s: _Split() for s in SPLITS}
    for split, ids in assignment.items():
        for i in ids:
            splits[split].texts.append(chunks[i])
            splits[split].doc_ids.append(f"{name}:{i:07d}")
            splits[split].words.append(words[i])
    for j, chunk in enumerate(test_chunks):
        splits["test"].texts.append(chunk)
        splits["test"].doc_ids.append(f"{name}:{n + j:07d}")
        splits["test"].words.append(len(chunk.split()))

    info = {
        "format": fmt,
        "max_words": max_words,
        "train_files": [str(p) for p in train_files],
        "test_files": [str(p) for p in test_files],
        "duplicates_dropped": duplicates,
        "test_overlap_dropped": overlap,
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
    sources: dict[str, dict],
    out_dir: str | os.PathLike,
    *,
    split_seed: int = 42,
    seed_fraction: float = 0.05,
    test_fraction: float = 0.05,
    chunk_words: int = 100,
) -> dict:
    """Write `train.arrow`, `seed.arrow`, `test.arrow` and `stats.json` to `out_dir`; return the stats.

    `sources` maps a source name to {"format": "lines" | "paragraphs", "train": [files], "test": [files],
    "max_words": int | None}. Everything is validated and split in memory first, so a bad input raises
    DataError / ConfigError before any file is written.
    """
    _check_params(sources, seed_fraction, test_fraction, chunk_words)
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
        s: {k: sum(info["splits"][s][k] for info in stats["sources"].values()) for k in ("chunks", "words")}
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
