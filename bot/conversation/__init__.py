"""One turn of the conversation: the retrieval query in context, the prompt, the grounding check."""
