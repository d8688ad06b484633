"""Small real-text corpora for the tokenizer and shard tests."""

from __future__ import annotations

import lzma
from pathlib import Path

import pyarrow as pa

from cdsynth.io import write_arrow

MICRO_ARCH = {"layers": 2, "hidden": 64, "heads": 2, "intermediate": 128, "max_positions": 64}

VOCAB = 2000
# (file under corpus/, words taken): stories, old books with curly quotes and runs of spaces, and
# WikiText with digits, accents and spaced punctuation.
SOURCES = [
    ("tinystories/tinystories_v1_train_head_2316stories.txt.xz", 50_000),
    ("gutenberg/pg1661_adventures_of_sherlock_holmes.txt.xz", 30_000),
    ("gutenberg/pg3820_nathan_the_wise.txt.xz", 20_000),
    ("gutenberg/pg8800_divine_comedy_longfellow.txt.xz", 15_000),
    ("wikipedia/wikitext2_raw_test.txt.xz", 35_000),
]


def _chunks(path: Path, max_words: int, chunk_words: int = 100) -> list[str]:
    """Group non-blank lines into chunks of >= chunk_words words joined by "\\n" (as the corpus step does)."""
    chunks, lines, words, total = [], [], 0, 0
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            lines.append(line)
            words += len(line.split())
            if words >= chunk_words:
                chunks.append("\n".join(lines))
                total += words
                lines, words = [], 0
                if total >= max_words:
                    break
    return chunks


def write_corpus(texts: list[str], path: Path, source: str = "test") -> Path:
    words = [len(t.split()) for t in texts]
    table = pa.table(
        {
            "text": pa.array(texts, pa.string()),
            "source": [source] * len(texts),
            "doc_id": list(range(len(texts))),
        }
    ).append_column("words", pa.array(words, pa.int64()))
    write_arrow(table, path)
    return path


def real_corpus(corpus_dir: Path, path: Path) -> Path:
    """~150k words of real text as a corpus split file."""
    return write_corpus([c for name, words in SOURCES for c in _chunks(corpus_dir / name, words)], path)
