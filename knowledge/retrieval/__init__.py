"""Retrieval: dense (Chroma) and lexical (BM25) candidates, fused into one calibrated score per entry."""
