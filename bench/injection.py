"""The instruction detector (knowledge/safety/injection.py) on sentences it was not fitted on.

    .venv/bin/python bench/injection.py

Injections: ``bench/data/injection_test.jsonl`` (written for this benchmark, apart from the training examples:
other wordings, cases, seven languages, homoglyphs, zero-width and full-width characters). Ordinary sentences: every
sentence of the demo knowledge base (``examples/acme``: FAQ answers and the three articles) and of the 12 held-out
help-centre articles (``bench/data/helpcentre/articles/bench``, GitHub Docs, CC BY 4.0) - none of them in the
training examples. Reports caught / flagged for the patterns alone, the classifier alone and both (the bot's
check), at the default threshold and a sweep; writes bench/results/injection.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, save  # noqa: E402


def ordinary_sentences() -> list[str]:
    from knowledge.safety.injection import sentences

    texts = [json.loads(line)["answer"] for line in (REPO / "examples" / "acme" / "faq.jsonl").read_text()
             .splitlines() if line.strip()]
    for path in sorted((REPO / "examples" / "acme" / "articles").glob("*.md")) + \
            sorted((REPO / "bench" / "data" / "helpcentre" / "articles" / "bench").glob("*.md")):
        texts += [line for line in path.read_text().splitlines()
                  if line.strip() and not line.startswith(("#", "|", "Source: "))]
    out = []
    for t in texts:
        out += [s.strip(" -*>") for s in sentences(t) if len(s.split()) >= 4]
    return sorted(set(out))


def main() -> None:
    from bot.config import load_settings
    from knowledge.embedder import Embedder
    from knowledge.safety.injection import DEFAULT_THRESHOLD, InstructionDetector

    settings = load_settings()
    injections = [json.loads(line)["text"] for line in (REPO / "bench" / "data" / "injection_test.jsonl")
                  .read_text(encoding="utf-8").splitlines() if line.strip()]
    ordinary = ordinary_sentences()
    detector = InstructionDetector(Embedder("bundled:minilm", settings.cache), settings.cache)
    p_inj, p_ord = detector.probabilities(injections), detector.probabilities(ordinary)
    pat_inj = [detector.patterns(s) for s in injections]
    pat_ord = [detector.patterns(s) for s in ordinary]

    def rates(t: float) -> dict:
        both_i = [a or p >= t for a, p in zip(pat_inj, p_inj)]
        both_o = [a or p >= t for a, p in zip(pat_ord, p_ord)]
        return {"threshold": t,
                "classifier": {"caught": round(sum(p >= t for p in p_inj) / len(p_inj), 3),
                               "flagged": round(sum(p >= t for p in p_ord) / len(p_ord), 4)},
                "both": {"caught": round(sum(both_i) / len(both_i), 3),
                         "flagged": round(sum(both_o) / len(both_o), 4)}}

    out = {"injections": len(injections), "ordinary": len(ordinary),
           "patterns": {"caught": round(sum(pat_inj) / len(pat_inj), 3),
                        "flagged": round(sum(pat_ord) / len(pat_ord), 4)},
           "default": rates(DEFAULT_THRESHOLD),
           "sweep": [rates(t) for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9)],
           "missed": [s for s, a, p in zip(injections, pat_inj, p_inj) if not (a or p >= DEFAULT_THRESHOLD)],
           "false_flags": [s for s, a, p in zip(ordinary, pat_ord, p_ord) if a or p >= DEFAULT_THRESHOLD]}
    print(json.dumps({k: v for k, v in out.items() if k not in ("sweep",)}, indent=2, ensure_ascii=False))
    print("wrote", save("injection", out))


if __name__ == "__main__":
    main()
