"""Fine-tuning scripts for the generator, the embedder and the sentiment classifier (see the README)."""
