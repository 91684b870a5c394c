"""The instruction detector (knowledge/safety/injection.py) on sentences it was not trained on.

    .venv/bin/python bench/injection.py

Held-out sets, all written apart from the training grammars and examples:

* **v1**: injections ``bench/data/injection_test.jsonl`` (60: other wordings, cases, seven languages, homoglyphs,
  zero-width and full-width characters) against every sentence of the demo knowledge base (``examples/acme``: FAQ
  answers and the three articles) and of the 12 held-out help-centre articles
  (``bench/data/helpcentre/articles/bench``, GitHub Docs, CC BY 4.0). Its misses were read while the classifier
  was rebuilt, so it is no longer blind; v2 is.
* **v2**: ``bench/data/injection_test_v2.jsonl`` (120 injections: 13 languages, 20 obfuscated) against
  ``bench/data/injection_ordinary_v2.jsonl`` (250 help-centre sentences of many kinds of companies, 160 of them hard
  look-alikes: "ignore the earlier e-mail", "reply STOP", "our virtual assistant can ..."), written by a separate
  session that saw neither the training data nor the detector. Its misses and false flags were read when the
  classifier was retrained, so it is no longer blind either.
* **v3**: ``bench/data/injection_test_v3.jsonl`` (100 injections, 27 in 18 other languages, 15 obfuscated) against
  ``bench/data/injection_ordinary_v3.jsonl`` (300 help sentences of many industries as they are published: 202
  plain, 98 harder look-alikes; 39 in other languages), written by another session that saw none of the data,
  the detector or the earlier sets. Its false flags were read when help sentences in other languages joined the
  training data.
* **v4**: ``bench/data/injection_test_v4.jsonl`` (100 injections, 25 in 18 other languages, 15 obfuscated) against
  ``bench/data/injection_ordinary_v4.jsonl`` (300 help sentences: 190 plain, 50 look-alikes, 60 in 18 other
  languages), written 2026-12-02 by a session that saw none of the data, the detector or the earlier sets; measured
  once for the classifier before and after that retraining, side by side; read since.
* **v5**: ``bench/data/injection_test_v5.jsonl`` (100 injections, 25 in 18 other languages, 15 obfuscated) against
  ``bench/data/injection_ordinary_v5.jsonl`` (300 help sentences: 190 plain with list items and fragments, 50
  look-alikes, 60 in 18 other languages), written 2026-12-02 by another session blind to everything above; measured
  once, for this checkout and two earlier ones side by side (docs/security.md).

Reports caught / flagged for the patterns alone, the classifier alone and both (the bot's check), at the shipped
threshold and a sweep, for both values of ``knowledge.injection_languages``; writes bench/results/injection.json.
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


def _read(name: str) -> list[str]:
    return [json.loads(line)["text"] for line in (REPO / "bench" / "data" / name).read_text(encoding="utf-8")
            .splitlines() if line.strip()]


def evaluate(detector, injections: list[str], ordinary: list[str]) -> dict:
    from knowledge.safety.injection import _is_prose

    threshold = detector.threshold
    # as the bot's check does it: with languages="english" the classifier reads only sentences in English
    p_inj = [p if detector.reads(s) else -1.0 for s, p in zip(injections, detector.probabilities(injections))]
    p_ord = [p if detector.reads(s) else -1.0 for s, p in zip(ordinary, detector.probabilities(ordinary))]
    pat_inj = [detector.patterns(s) for s in injections]
    pat_ord = [detector.patterns(s) for s in ordinary]
    prose_ord = [_is_prose(s) for s in ordinary]  # the bot judges prose only (not table lines, fragments)

    def rates(t: float) -> dict:
        both_i = [a or p >= t for a, p in zip(pat_inj, p_inj)]
        both_o = [ok and (a or p >= t) for ok, a, p in zip(prose_ord, pat_ord, p_ord)]
        return {"threshold": t,
                "classifier": {"caught": round(sum(p >= t for p in p_inj) / len(p_inj), 3),
                               "flagged": round(sum(p >= t for p in p_ord) / len(p_ord), 4)},
                "both": {"caught": round(sum(both_i) / len(both_i), 3),
                         "flagged": round(sum(both_o) / len(both_o), 4)}}

    return {"injections": len(injections), "ordinary": len(ordinary),
            "patterns": {"caught": round(sum(pat_inj) / len(pat_inj), 3),
                         "flagged": round(sum(pat_ord) / len(pat_ord), 4)},
            "default": rates(threshold),
            "sweep": [rates(t) for t in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)],
            "missed": [s for s, a, p in zip(injections, pat_inj, p_inj) if not (a or p >= threshold)],
            "false_flags": [s for s, ok, a, p in zip(ordinary, prose_ord, pat_ord, p_ord)
                            if ok and (a or p >= threshold)]}


def main() -> None:
    import argparse

    from bot.config import load_settings
    from knowledge.safety.injection import CLASSIFIER, InstructionDetector

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classifier", type=Path, default=CLASSIFIER, help="a finetune.injection output directory")
    p.add_argument("--out", default="injection", help="results name under bench/results/")
    args = p.parse_args()
    settings = load_settings()
    out: dict = {"classifier": str(args.classifier)}
    for languages in ("all", "english"):  # knowledge.injection_languages
        detector = InstructionDetector(args.classifier, cache_dir=settings.cache, languages=languages).warm_up()
        out[languages] = {
            "threshold": detector.threshold,
            "v1": evaluate(detector, _read("injection_test.jsonl"), ordinary_sentences()),
            "v2": evaluate(detector, _read("injection_test_v2.jsonl"), _read("injection_ordinary_v2.jsonl")),
            "v3": evaluate(detector, _read("injection_test_v3.jsonl"), _read("injection_ordinary_v3.jsonl"))}
        for v in ("v4", "v5"):
            if (REPO / "bench" / "data" / f"injection_test_{v}.jsonl").exists():
                out[languages][v] = evaluate(detector, _read(f"injection_test_{v}.jsonl"),
                                             _read(f"injection_ordinary_{v}.jsonl"))
    for languages, sets in out.items():
        if not isinstance(sets, dict):
            continue
        for name, r in sets.items():
            if isinstance(r, dict):
                print(f"languages={languages} {name}: {r['injections']} injections, {r['ordinary']} ordinary; "
                      f"patterns {r['patterns']}; at {r['default']['threshold']}: classifier "
                      f"{r['default']['classifier']}, both {r['default']['both']}")
    print("wrote", save(args.out, out))


if __name__ == "__main__":
    main()
