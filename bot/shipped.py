"""Where the data shipped inside the package lives (no imports beyond pathlib: cheap for anyone to read)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SENTIMENT_DIR = DATA_DIR / "sentiment"  # the sentiment adapter (finetune.sentiment)
ESCALATION_DIR = DATA_DIR / "escalation"  # the escalation policy's example sets (finetune.escalation_examples)
CONSISTENCY_DIR = DATA_DIR / "consistency"  # the consistency classifier's adapter (finetune.consistency)
GENERATOR_DIR = DATA_DIR / "generator"  # the grounded-answer adapter for bundled:smollm2 (finetune.shipped_generator)
