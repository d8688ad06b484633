"""A finished training run as a git repository ready to push to the Hugging Face Hub for BabyLM.

`export_run` writes one branch per BabyLM revision (`chck_1M` ... `chck_1000M`, the checkpoints whose
`checkpoint.json` names one in `mark`) and `main` with the run's final model; each branch is a
`save_pretrained` directory that transformers 4.51.3 (the BabyLM 2025 pipeline's) and 5.x both load to
the same logits, plus a model card.
"""

from cdsynth.export.repository import export_run

__all__ = ["export_run"]
