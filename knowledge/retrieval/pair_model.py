"""The shipped matcher's network: a cross-encoder on the bundled MiniLM body.

The customer's message and a candidate (an FAQ question, an FAQ answer or a passage) are read together as one
sequence (``[CLS] message [SEP] candidate [SEP]``), mean-pooled (as the sentence embedder was trained) and scored by
one linear unit: the logit that the candidate answers the message.

Only what training changed is shipped (``knowledge/data/matcher/``: LoRA factors for the body's linear layers and
the head, a few MB); :func:`assemble` builds the model at load time - MiniLM body from its PyPI package, this class,
the adapter, merged into a plain model (no LoRA overhead at inference). Imports torch: load it lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class PooledPairModel(BertPreTrainedModel):
    """A BERT body over a (message, candidate) pair, mean pooling, one logit."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> SequenceClassifierOutput:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        if attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


def base_model(body_path: str | Path) -> PooledPairModel:
    """The untrained matcher on a BERT body directory (e.g. the bundled MiniLM): the head freshly initialised."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # "newly initialized head / unused pooler": expected here
    hf_logging.disable_progress_bar()
    try:
        return PooledPairModel.from_pretrained(str(body_path), num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def assemble(adapter_dir: str | Path, body_path: str | Path) -> PooledPairModel:
    """Body + adapter (LoRA and head), merged into a plain model in eval mode."""
    import warnings

    from peft import PeftModel

    with warnings.catch_warnings():  # peft calls a transformers API that transformers 5 marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(base_model(body_path), str(adapter_dir))
        merged = model.merge_and_unload()
    merged.eval()
    return merged
