"""How much the generation precision moves the CD step distribution (docs/fidelity.md).

The authors generated with fp32 weights (TF32 matmuls on GPU). For the same prompts and the same
continuations (sampled once from the fp32 pair, then fed to every variant), this prints, per step of CD:
- the total-variation distance between the fp32 distribution and (a) the same with only the final logits
  rounded to bf16, (b) both models run in bf16 (weights and compute);
- how often the expert's two best logits are exactly tied (argmax ambiguous) in each precision.

    python bench/precision.py --expert results/models/tiny/seed42/step400 \
        --amateur results/models/tiny/seed42/step200 --prompts results/corpus/seed.arrow
"""

from __future__ import annotations

import argparse

import torch

from cdsynth.synth.engine import generate, left_pad
from cdsynth.synth.generation import Protocol, make_prompts, read_prompt_texts
from cdsynth.synth.pair import load_decoder
from cdsynth.synth.scoring import Scoring, next_token_scores


@torch.inference_mode()
def step_logits(decoder, sequences: list[list[int]], prompt_len: int) -> list[torch.Tensor]:
    """Both models' next-token logits at every generated position: (rows, steps, vocab) each."""
    ids, mask = left_pad(sequences, decoder.pad_id, decoder.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = []
    for model in (decoder.expert, decoder.amateur):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        out.append(logits[:, prompt_len - 1 : -1].float())
    return out


def tv(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p - q).abs().sum(-1)


def tied_top(logits: torch.Tensor) -> float:
    top = logits.topk(2, dim=-1).values
    return (top[..., 0] == top[..., 1]).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--expert", required=True)
    parser.add_argument("--amateur", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    scoring = Scoring(method="cd")
    fp32, tokenizer = load_decoder(args.expert, args.amateur, cpu, dtype="float32")
    bf16, _ = load_decoder(args.expert, args.amateur, cpu, dtype="bfloat16")
    ids, texts = read_prompt_texts(args.prompts)
    protocol = Protocol(tokens=args.rows * args.new_tokens, continuations=1, new_tokens=args.new_tokens)
    prompts = [p for _, p in make_prompts(texts, ids, tokenizer, protocol)]
    prompts = [p for p in prompts if len(p) == 1 + protocol.prefix_tokens]  # one prompt length: one offset
    new = generate(fp32, prompts, scoring, args.new_tokens, torch.Generator().manual_seed(0)).tolist()
    sequences = [p + n for p, n in zip(prompts, new)]
    prompt_len = len(prompts[0])

    expert, amateur = step_logits(fp32, sequences, prompt_len)
    half_expert, half_amateur = step_logits(bf16, sequences, prompt_len)
    exact = torch.softmax(next_token_scores(expert, amateur, scoring), -1)
    rounded = torch.softmax(
        next_token_scores(expert.bfloat16().float(), amateur.bfloat16().float(), scoring), -1
    )
    half = torch.softmax(next_token_scores(half_expert, half_amateur, scoring), -1)
    for name, other in (("final logits rounded to bf16", rounded), ("both models in bf16", half)):
        distance = tv(exact, other)
        print(
            f"{name}: TV mean {distance.mean():.2e}, median {distance.median():.2e}, "
            f"max {distance.max():.2e} over {distance.numel():,} steps"
        )
    ties = [tied_top(expert), tied_top(expert.bfloat16()), tied_top(half_expert)]
    print(
        f"expert's top-2 logits exactly tied: fp32 {ties[0]:.2%}, rounded to bf16 {ties[1]:.2%}, "
        f"bf16 models {ties[2]:.2%}"
    )


if __name__ == "__main__":
    main()
