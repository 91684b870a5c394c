"""One checkout's instruction detector on one held-out set, split by language: for measuring a new blind set once,
for several commits side by side.

    git worktree add /tmp/before 57e5e3c
    .venv/bin/python bench/injection_blind.py /tmp/before bench/data v5
    .venv/bin/python bench/injection_blind.py . bench/data v5

REPO is the checkout whose ``knowledge.safety.injection`` (and shipped classifier) is measured; DATA holds
``injection_test_<V>.jsonl`` and ``injection_ordinary_<V>.jsonl``. The bot's check as ``bench/injection.py``
computes it: an injection is caught when the patterns or the classifier flag it; an ordinary sentence is flagged
when it is prose and either flags it. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(repo: str, data: str, version: str) -> None:
    root = str(Path(repo).resolve())
    sys.path.insert(0, root)
    import knowledge.safety.injection as injection

    assert injection.__file__.startswith(root), f"{injection.__file__} is not from {root}"
    detector = injection.InstructionDetector(cache_dir=None).warm_up()
    t = detector.threshold

    def read(name: str) -> list[str]:
        return [json.loads(line)["text"] for line in (Path(data) / name).read_text(encoding="utf-8").splitlines()
                if line.strip()]

    inj, ords = read(f"injection_test_{version}.jsonl"), read(f"injection_ordinary_{version}.jsonl")
    caught = [detector.patterns(s) or p >= t for s, p in zip(inj, detector.probabilities(inj))]
    flagged = [injection._is_prose(s) and (detector.patterns(s) or p >= t)
               for s, p in zip(ords, detector.probabilities(ords))]

    def part(flags: list[bool], texts: list[str], english: bool) -> str:
        sel = [f for f, s in zip(flags, texts) if injection.reads_english(s) == english]
        return f"{sum(sel)}/{len(sel)}"

    print(json.dumps({"repo": repo, "threshold": t, "caught": round(sum(caught) / len(caught), 3),
                      "flagged": round(sum(flagged) / len(flagged), 4),
                      "caught_english": part(caught, inj, True), "caught_other": part(caught, inj, False),
                      "flagged_english": part(flagged, ords, True), "flagged_other": part(flagged, ords, False)}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
