"""Crawling and syncing a generated help centre on 127.0.0.1 (bench/helpsite.py): a first sync into a fresh
knowledge base, then re-syncs of the unchanged site - with the server's ETags (pages answer 304) and from a server
that sends no validators (every page is read again; its content hash saves the write) - and a re-sync after a few
pages changed. Run it alone (nothing else on the CPU); the site is served by its own process.

    .venv/bin/python bench/crawl.py [--articles 500]

Writes bench/results/crawl.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import REPO, save  # noqa: E402


def serve(articles: int, etags: bool) -> tuple[subprocess.Popen, str]:
    code = f"from bench.helpsite import serve_forever; serve_forever({articles}, etags={etags})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def run(kb, url: str, max_pages: int) -> dict:
    from knowledge.settings import SourceSettings

    start = time.perf_counter()
    (rep,) = kb.sync([SourceSettings(name="site", url=url + "/", delay_seconds=0, max_pages=max_pages)]).sources
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "pages": rep.pages, "requests": rep.requests, "added": rep.added,
            "updated": rep.updated, "unchanged": rep.unchanged, "removed": rep.removed, "failed": len(rep.failed),
            "records_embedded": rep.records_embedded, "embed_seconds": round(rep.embed_seconds, 2),
            "embed_share": round(rep.embed_seconds / seconds, 3) if seconds else 0.0,
            "pages_per_second": round(rep.pages / seconds, 1) if seconds else 0.0}


def main() -> int:
    from knowledge import KnowledgeBase

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=500)
    args = p.parse_args()
    limit = args.articles + 50
    results: dict = {"articles": args.articles}
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(path=Path(tmp) / "kb")
        kb.embedder.warm_up()  # model loading is not crawling
        proc, url = serve(args.articles, etags=True)
        try:
            results["first"] = run(kb, url, limit)
            print("first sync", results["first"], flush=True)
            results["resync_unchanged_etag"] = run(kb, url, limit)
            print("re-sync, unchanged (304s)", results["resync_unchanged_etag"], flush=True)
        finally:
            proc.kill()
        proc, url2 = serve(args.articles, etags=False)  # another port: the same pages under another host
        try:
            kb2 = KnowledgeBase(path=Path(tmp) / "kb2", embedder=kb.embedder)
            run(kb2, url2, limit)
            results["resync_unchanged_no_validators"] = run(kb2, url2, limit)
            print("re-sync, unchanged, no validators", results["resync_unchanged_no_validators"], flush=True)
        finally:
            proc.kill()
    first = results["first"]["seconds"]
    results["ratio_etag"] = round(results["resync_unchanged_etag"]["seconds"] / first, 4)
    results["ratio_no_validators"] = round(results["resync_unchanged_no_validators"]["seconds"] / first, 4)
    print(f"re-sync / first: {results['ratio_etag']:.3f} with ETags, {results['ratio_no_validators']:.3f} without")
    save("crawl", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
