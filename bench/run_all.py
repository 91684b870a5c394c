"""Run every benchmark in turn (about 45 minutes on 2 cores); each writes its JSON to bench/results/.

    .venv/bin/python bench/run_all.py [name ...]     # e.g. `sentiment escalation`
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["retrieval", "cpu_peak", "engine", "generation_speed", "sentiment", "escalation", "tui_startup",
         "finetune_embedder", "finetune_generator", "inference", "faq_latency", "http_load", "crawl"]


def main() -> int:
    names = sys.argv[1:] or ORDER
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ORDER)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== bench/{name}.py", flush=True)
        code = subprocess.call([sys.executable, str(HERE / f"{name}.py")])
        if code:
            print(f"bench/{name}.py failed with exit code {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
