"""The practical compute ceiling of this CPU for the embedding model's arithmetic.

    .venv/bin/python bench/cpu_peak.py

Times large matrix multiplications (the bulk of MiniLM's FLOPs) in float32 and bfloat16 with PyTorch's
threads, and compares with the embedding throughput in bench/results/retrieval.json. Writes
bench/results/cpu_peak.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, save  # noqa: E402


def gemm_gflops(dtype, n: int = 2048, reps: int = 10) -> float:
    import torch

    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def main() -> None:
    import torch

    out = {"torch_threads": torch.get_num_threads(),
           "gemm_fp32_gflops": round(gemm_gflops(torch.float32), 1),
           "gemm_bf16_gflops": round(gemm_gflops(torch.bfloat16), 1)}
    retrieval = RESULTS / "retrieval.json"
    if retrieval.is_file():
        ing = json.loads(retrieval.read_text())["ingest"]
        best = out["gemm_bf16_gflops"]
        out["embedding_gflop_per_text"] = ing["gflop_per_text"]
        out["ceiling_texts_per_s_at_bf16_gemm_peak"] = round(best / ing["gflop_per_text"], 1)
        out["measured_embedding_texts_per_s"] = ing["embedding_only_texts_per_s"]
        out["share_of_ceiling"] = round(ing["embedding_only_texts_per_s"] / out["ceiling_texts_per_s_at_bf16_gemm_peak"], 3)
    print(json.dumps(out, indent=2))
    save("cpu_peak", out)


if __name__ == "__main__":
    main()
