"""The shipped sentiment model: the bundled MiniLM body, mean-pooled, with a 3-way sentiment head and an anger head.

Only what training changed is shipped (``bot/data/sentiment/``, a PEFT adapter of about 1 MB: LoRA factors
for the body's linear layers plus the two heads). ``assemble`` builds the transformers model at load time:
MiniLM body from its PyPI package -> this class -> adapter -> merged (no LoRA overhead at inference).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.utils import ModelOutput

from bot.shipped import SENTIMENT_DIR

LABELS = ("negative", "neutral", "positive")
SHIPPED_DIR = SENTIMENT_DIR  # bot/data/sentiment


@dataclasses.dataclass
class SentimentOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (batch, 3): negative, neutral, positive
    anger_logits: torch.Tensor | None = None  # (batch,)


class PooledSentimentModel(BertPreTrainedModel):
    """A BERT body, mean pooling (as the sentence embedder was trained), a sentiment and an anger head."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.anger = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> SentimentOutput:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        if attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = self.dropout(pooled)
        return SentimentOutput(logits=self.classifier(pooled), anger_logits=self.anger(pooled).squeeze(-1))


def base_model(body_path: str | Path) -> PooledSentimentModel:
    """The untrained model on a BERT body directory (e.g. the bundled MiniLM): heads freshly initialised."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "newly initialized heads / unused pooler": expected here
    hf_logging.disable_progress_bar()
    try:
        return PooledSentimentModel.from_pretrained(
            str(body_path), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)})
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def assemble(adapter_dir: str | Path, body_path: str | Path) -> PooledSentimentModel:
    """Body + adapter (LoRA and heads), merged into a plain model in eval mode."""
    import warnings

    from peft import PeftModel

    with warnings.catch_warnings():  # peft calls a transformers API that transformers 5 marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(base_model(body_path), str(adapter_dir))
        merged = model.merge_and_unload()
    merged.eval()
    return merged
