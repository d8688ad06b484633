"""cdsynth: synthetic pretraining corpora with contrastive decoding."""

__version__ = "0.1.0"
