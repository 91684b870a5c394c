"""Write a casually typed copy of a text file or a JSONL file's text field (typos, chat spelling, case).

    .venv/bin/python bench/perturb.py INPUT OUTPUT [--field text] [--seed 7]

One line in, one line out (``finetune.perturb.perturb`` on each; JSONL: on ``--field``, or on every string of
``turns``). ``bench/matcher.py --perturbed`` applies the same function to its dev messages.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from finetune.perturb import perturb  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--field", default="text", help="for .jsonl input: the field to perturb")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rng = random.Random(args.seed)
    out = []
    for line in args.input.read_text(encoding="utf-8").splitlines():
        if args.input.suffix == ".jsonl" and line.strip():
            item = json.loads(line)
            if isinstance(item.get("turns"), list):
                item["turns"] = [perturb(t, rng) for t in item["turns"]]
            elif isinstance(item.get(args.field), str):
                item[args.field] = perturb(item[args.field], rng)
            out.append(json.dumps(item, ensure_ascii=False))
        else:
            out.append(perturb(line, rng) if line.strip() else line)
    args.output.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"{len(out)} lines -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
