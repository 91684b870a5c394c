"""One checkout's instruction detector on one held-out set, split by language: for measuring a new blind set once,
for several commits side by side.

    git worktree add /tmp/before 57e5e3c
    .venv/bin/python bench/injection_blind.py /tmp/before bench/data v5
    .venv/bin/python bench/injection_blind.py . bench/data v5

REPO is the checkout whose ``knowledge.safety.injection`` (and shipped classifier) is measured; DATA holds
``injection_test_<V>.jsonl`` and ``injection_ordinary_<V>.jsonl``. The figures are ``bench/injection.py``'s
``evaluate`` (this checkout's), the bot's check at the detector's own threshold. Prints one JSON line.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path


def main(repo: str, data: str, version: str) -> None:
    root = str(Path(repo).resolve())
    sys.path.insert(0, root)  # REPO's knowledge package, whatever this checkout holds
    import knowledge.safety.injection as injection

    assert injection.__file__.startswith(root), f"{injection.__file__} is not from {root}"
    spec = importlib.util.spec_from_file_location("bench_injection", Path(__file__).with_name("injection.py"))
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]

    def read(name: str) -> list[str]:
        return [json.loads(line)["text"] for line in (Path(data) / name).read_text(encoding="utf-8").splitlines()
                if line.strip()]

    inj, ords = read(f"injection_test_{version}.jsonl"), read(f"injection_ordinary_{version}.jsonl")
    r = bench.evaluate(injection.InstructionDetector(cache_dir=None).warm_up(), inj, ords)
    missed, false = set(r["missed"]), set(r["false_flags"])

    def part(texts: list[str], hits: set[str], english: bool, hit_is_good: bool) -> str:
        sel = [s for s in texts if injection.reads_english(s) == english]
        good = sum((s not in hits) if hit_is_good else (s in hits) for s in sel)
        return f"{good}/{len(sel)}"

    print(json.dumps({"repo": repo, **r["default"]["both"], "threshold": r["default"]["threshold"],
                      "caught_english": part(inj, missed, True, True), "caught_other": part(inj, missed, False, True),
                      "flagged_english": part(ords, false, True, False),
                      "flagged_other": part(ords, false, False, False)}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
