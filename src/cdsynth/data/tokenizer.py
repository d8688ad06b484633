"""Train the corpus tokenizer and export it as a Hugging Face fast tokenizer, by one of two recipes.

- "authors": the paper's (their `tokenizer/train_tokenizer.py`): `tokenizers.SentencePieceBPETokenizer()`
  with its defaults (NFKC, Metaspace, BPE with `<unk>` and no byte fallback) trained on the text of every
  train document as stored, special tokens `<unk> <s> </s> <pad>` as ids 0-3; BOS added, EOS not.
- "sentencepiece": the `sentencepiece` library's BPE with byte fallback (no `<unk>`), digit splitting and
  identity normalization, trained on the documents' lines; its `tokenizers` export reproduces
  `sentencepiece` encoding id for id, and `tokenizer.model` is kept beside it.

Either way the directory loads with `AutoTokenizer` (transformers 4.51 and 5.x) and holds `stats.json`:
tokens per word and the `<unk>` rate over the train split.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import sentencepiece as spm
from tokenizers import AddedToken, SentencePieceBPETokenizer, Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from cdsynth.errors import DataError
from cdsynth.io import atomic_path, read_arrow, sha256_file, write_json

log = logging.getLogger(__name__)

RECIPES = ("authors", "sentencepiece")
UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
SPM_FILE = "tokenizer.model"
HF_FILE = "tokenizer.json"
STATS_FILE = "stats.json"
_SPACE = "\u2581"  # SentencePiece's visible-space marker "▁"


def train_tokenizer(
    corpus_arrow: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    recipe: str,
    vocab_size: int,
    max_sentences: int | None = None,
    seed: int = 42,
    threads: int = 1,
) -> dict[str, Any]:
    """Train a tokenizer by `recipe` on the corpus `text` column; write it, its HF export and its
    statistics to `out_dir` (atomically) and return the statistics.

    `max_sentences`, `seed` and `threads` are the sentencepiece recipe's (its input sampling); the
    authors' recipe trains on every document, deterministically.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown tokenizer recipe {recipe!r}; use one of {', '.join(RECIPES)}")
    table = read_arrow(corpus_arrow)
    if "text" not in table.column_names or table.num_rows == 0:
        raise DataError(f"{corpus_arrow}: no `text` rows to train a tokenizer on. Rebuild the corpus split.")
    texts = table.column("text")
    start = time.perf_counter()
    model = None
    try:
        if recipe == "authors":
            tokenizer = _train_authors(texts, vocab_size)
        else:
            model = _train_spm(texts, vocab_size, max_sentences, seed, threads)
            tokenizer = _to_hf(model)
    except RuntimeError as err:  # a library refusing its settings, e.g. a vocab larger than the text allows
        raise DataError(
            f"{corpus_arrow}: tokenizer training failed ({err}). Lower vocab_size or add text."
        ) from err
    log.info("trained a %d-token %s tokenizer in %.1f s", vocab_size, recipe, time.perf_counter() - start)
    stats = {"recipe": recipe, "vocab_size": len(tokenizer), **tokenizer_statistics(tokenizer, texts)}
    with atomic_path(out_dir, directory=True) as tmp:
        save_tokenizer(tokenizer, tmp)
        if model is not None:
            (tmp / SPM_FILE).write_bytes(model)
        write_json(stats, tmp / STATS_FILE)
    return stats


def tokenizer_statistics(tokenizer: PreTrainedTokenizerFast, texts: pa.ChunkedArray) -> dict[str, Any]:
    """Tokens per whitespace-separated word and the share of `<unk>` tokens, over every document (no BOS)."""
    words = tokens = unknown = 0
    for chunk in texts.chunks:
        for start in range(0, len(chunk), 1024):
            batch = [text or "" for text in chunk[start : start + 1024].to_pylist()]
            words += sum(len(text.split()) for text in batch)
            for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
                tokens += len(ids)
                unknown += ids.count(UNK_ID)
    return {
        "documents": len(texts),
        "words": words,
        "tokens": tokens,
        "tokens_per_word": round(tokens / words, 4) if words else None,
        "unk_tokens": unknown,
        "unk_rate": round(unknown / tokens, 8) if tokens else None,
    }


def _train_authors(texts: pa.ChunkedArray, vocab_size: int) -> PreTrainedTokenizerFast:
    """The authors' recipe: their trainer with its defaults, on every document as stored."""
    trainer = SentencePieceBPETokenizer()
    trainer.train_from_iterator(
        _documents(texts), vocab_size=vocab_size, show_progress=False, special_tokens=[UNK, BOS, EOS, PAD]
    )
    if trainer.get_vocab_size() < vocab_size:
        # Their trainer stops early without a word; a smaller vocabulary than the config says is refused.
        raise RuntimeError(f"the text gives only {trainer.get_vocab_size()} tokens, not {vocab_size}")
    return _wrap(Tokenizer.from_str(trainer.to_str()))


def _documents(texts: pa.ChunkedArray) -> Iterator[str]:
    for chunk in texts.chunks:
        yield from (text or "" for text in chunk.to_pylist())


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """The fast tokenizer both recipes export: BOS added as LLaMA's `update_post_processor` adds it, EOS
    left to the packing code, right padding."""
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, BOS_ID)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        add_bos_token=True,
        add_eos_token=False,
        padding_side="right",
        # Literal "<s>" or "</s>" in corpus text is text, never a control id.
        split_special_tokens=True,
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: str | os.PathLike) -> None:
    """`save_pretrained`, named as every transformers version knows it.

    transformers 5 writes its own class name, `TokenizersBackend`, which 4.x (e.g. the 4.51.3 the official
    BabyLM 2025 pipeline pins) cannot load; under `PreTrainedTokenizerFast` both give the same ids, because
    tokenizer.json holds the whole pipeline.
    """
    tokenizer.save_pretrained(str(directory))
    config_file = Path(directory) / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerFast:
    if not (Path(path) / HF_FILE).is_file():
        raise DataError(f"{path}: no {HF_FILE}. Train the tokenizer first (rerun Snakemake).")
    return PreTrainedTokenizerFast.from_pretrained(str(path))


def tokenizer_fingerprint(path: str | os.PathLike) -> str:
    """sha256 of tokenizer.json: identifies the exact vocabulary and pipeline the ids came from."""
    file = Path(path) / HF_FILE
    if not file.is_file():
        raise DataError(f"{path}: no {HF_FILE}. Train the tokenizer first (rerun Snakemake).")
    return sha256_file(file)


def _sentences(texts: pa.ChunkedArray) -> Iterator[str]:
    # Chunks hold paragraphs joined by "\n"; SentencePiece wants one sentence per line.
    for chunk in texts.chunks:
        for text in chunk.to_pylist():
            for line in (text or "").split("\n"):
                if line.strip():
                    yield line


def _train_spm(
    texts: pa.ChunkedArray, vocab_size: int, max_sentences: int | None, seed: int, threads: int
) -> bytes:
    # Sampling of input sentences is the only randomness in BPE training; seeding it makes runs repeatable.
    spm.set_random_generator_seed(seed)
    sample = {"input_sentence_size": max_sentences, "shuffle_input_sentence": True} if max_sentences else {}
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=_sentences(texts),
        model_writer=writer,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_id=PAD_ID,
        unk_piece=UNK,
        bos_piece=BOS,
        eos_piece=EOS,
        pad_piece=PAD,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        split_digits=True,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        character_coverage=0.9995,
        num_threads=threads,
        minloglevel=2,  # errors only; we log a summary ourselves
        **sample,
    )
    return writer.getvalue()


def _vocab_and_merges(model: bytes) -> tuple[dict[str, int], list[tuple[str, str]]]:
    proto = spm.SentencePieceProcessor(model_proto=model)
    vocab = {proto.id_to_piece(i): i for i in range(proto.get_piece_size())}
    # Only normal pieces take part in SentencePiece's merges; control, unk and byte pieces never do.
    mergeable = {p: i for p, i in vocab.items() if _is_normal(proto, i)}
    merges = []
    # SentencePiece merges the adjacent pair whose union has the best score (= lowest id for BPE), so any
    # split of a piece into two pieces is a merge ranked by the piece; ties are broken by the parts' ranks.
    # One theoretical divergence remains: SentencePiece breaks a tie between two overlapping pairs that form
    # the same piece (e.g. "ab"+"a" vs "a"+"ba" in "ababa") by position, HF by the parts' ranks. It was never
    # seen on the real corpus (0 of 35,809 chunks differ at vocab sizes 2k, 16k and 32k).
    for piece in sorted(mergeable, key=mergeable.__getitem__):
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece))]
        found = [(left, right) for left, right in splits if left in mergeable and right in mergeable]
        found.sort(key=lambda pair: (mergeable[pair[0]], mergeable[pair[1]]))
        merges.extend(found)
    return vocab, merges


def _is_normal(proto: spm.SentencePieceProcessor, i: int) -> bool:
    return not (proto.is_control(i) or proto.is_unknown(i) or proto.is_byte(i) or proto.is_unused(i))


def _to_hf(model: bytes) -> PreTrainedTokenizerFast:
    vocab, merges = _vocab_and_merges(model)
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token=UNK, fuse_unk=True, byte_fallback=True))
    # SentencePiece with add_dummy_prefix and an identity rule only prepends "▁" and escapes spaces.
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(_SPACE), normalizers.Replace(" ", _SPACE)])
    tok.decoder = decoders.Sequence(
        [decoders.Replace(_SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (UNK, BOS, EOS, PAD)])
    return _wrap(tok)
