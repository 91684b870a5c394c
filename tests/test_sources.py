"""Knowledge from where companies keep it: PDF and Word files, a help-centre site crawled from a real HTTP server on
127.0.0.1 (bench/helpsite.py: nested pages with navigation, a sitemap, robots.txt with a disallowed path, an FAQPage,
a redirect, a 404, a page that times out, a PDF and a DOCX generated with real libraries), and syncs: the second
sync updates exactly the changed page, a failed page keeps what the store has, a killed sync leaves the store
consistent. Real components throughout: the bundled embedder, a real Chroma on a temp dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.helpsite import HTML, HelpSite, article, docx_bytes, pdf_bytes
from knowledge import KnowledgeBase
from knowledge.settings import SourceSettings

REPO = Path(__file__).resolve().parent.parent


def _source(site: HelpSite, **options) -> SourceSettings:
    return SourceSettings(url=site.url + "/", delay_seconds=0, timeout_seconds=1, **options)


def _entries(kb: KnowledgeBase) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in kb.store().iter_all():
        out.setdefault(r.entry_id, []).append(r)
    return out


# --- files -------------------------------------------------------------------------------------------------------

def test_pdf_pages_and_word_headings_and_tables_become_cited_passages(tmp_path: Path) -> None:
    from fpdf import FPDF

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.pdf").write_bytes(pdf_bytes())
    (docs / "handbook.docx").write_bytes(docx_bytes())
    scan = FPDF()
    scan.add_page()
    scan.rect(10, 10, 80, 80)  # a page with no text layer, as a scan has
    (docs / "scan.pdf").write_bytes(bytes(scan.output()))
    (docs / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0 a .doc renamed")

    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest(docs, skip_invalid=True)
    problems = {Path(p.file).name: p.message for p in report.invalid}
    assert "scanned PDF" in problems["scan.pdf"] and "OCR" in problems["scan.pdf"]
    assert "not a readable Word (.docx) file" in problems["old.docx"]
    assert report.added == 2

    loaded = {d.id: d for f in kb.load([docs]) for d in f.documents}
    manual, handbook = loaded["doc-manual"], loaded["doc-handbook"]
    assert [(p.title, p.anchor) for p in manual.passages] == [
        ("Acme product manual > Page 1", "page=1"), ("Acme product manual > Page 2", "page=2")]
    assert "Hold the power button for 12 seconds" in manual.passages[1].text
    titles = [p.title for p in handbook.passages]
    assert titles == ["Acme shipping handbook > International delivery",
                      "Acme shipping handbook > International delivery > Customs"]
    assert "Country: Japan; Fee: €29.00." in handbook.passages[0].text  # a table row alone answers a question

    hit = kb.search("how do I reset the speaker to factory settings", k=1)[0]
    assert hit.entry_id == "doc-manual" and hit.title.endswith("Page 2")
    assert kb.search("what does delivery to japan cost", k=1)[0].entry_id == "doc-handbook"


def test_the_cli_reads_pdf_and_docx_and_reports_a_scan_on_one_line(tmp_path: Path) -> None:
    from fpdf import FPDF

    scan = FPDF()
    scan.add_page()
    (tmp_path / "scan.pdf").write_bytes(bytes(scan.output()))
    (tmp_path / "handbook.docx").write_bytes(docx_bytes())
    env = {**os.environ, "SUPPORTBOT_KNOWLEDGE__PATH": str(tmp_path / "kb")}
    run = subprocess.run([sys.executable, "-m", "bot", "ingest", str(tmp_path / "scan.pdf"),
                          str(tmp_path / "handbook.docx")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    line = next(l for l in run.stderr.splitlines() if "scan.pdf" in l)
    assert line.startswith("invalid: ") and "no text on its only page" in line


# --- a site ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    """The help site, crawled once into a fresh knowledge base (module-scoped: each test below reads it; tests that
    change the site use their own)."""
    path = tmp_path_factory.mktemp("crawl-kb")
    with HelpSite(articles=12, slow_seconds=2.5) as site:
        kb = KnowledgeBase(path=path)
        report = kb.sync([_source(site)])
        yield site, kb, report.sources[0]


def test_a_crawl_reads_pages_faq_markup_pdf_and_docx_and_cites_sections(crawled) -> None:
    site, kb, rep = crawled
    entries = _entries(kb)
    docs = {r.metadata["source"] for recs in entries.values() for r in recs if r.metadata["kind"] == "document"}
    articles = {p for p in site.pages if p.count("/") == 3 and p.startswith("/help/") and "guide" in p}
    assert {site.url + p for p in articles} <= docs
    assert {site.url + "/files/manual.pdf", site.url + "/files/handbook.docx"} <= docs

    faq = [recs[0].metadata for recs in entries.values() if recs[0].metadata["kind"] == "faq"]
    assert sorted(m["title"] for m in faq) == ["Can I pay with PayPal?", "How long does delivery take?"]
    assert all(m["url"] == site.url + "/help/faq" for m in faq)

    hit = kb.search("can I pay with paypal", k=1)[0]
    assert hit.kind == "faq" and hit.text.startswith("Yes, we accept PayPal")
    hit = kb.search("how do I reset the speaker to factory settings", k=1)[0]
    assert hit.url == site.url + "/files/manual.pdf#page=2"
    shipping = next(p for p in articles if "shipping-guide-0" in p)
    passages = [r for r in entries[next(e for e in entries if "shipping-guide-0" in e)]]
    by_title = {r.metadata["title"]: r for r in passages}
    section = by_title["Shipping guide 0 > Shipping option 0.1"]
    assert section.metadata["url"] == f"{site.url}{shipping}#section-1"
    text = " ".join(r.text for recs in entries.values() for r in recs)
    assert "Imprint" not in text and "© 2026" not in text and "Gift Cards" not in text  # footer and navigation


def test_a_crawl_honours_robots_and_its_limits_and_reports_each_failure(crawled) -> None:
    site, kb, rep = crawled
    failed = {f.url: f.reason for f in rep.failed}
    skipped = {f.url: f.reason for f in rep.skipped}
    assert failed[site.url + "/help/slow"] == "timed out after 1 s"
    assert "outside the allowed hosts" in failed[site.url + "/go-elsewhere"]
    assert skipped[site.url + "/internal/drafts"] == "disallowed by robots.txt"
    assert "404" in skipped[site.url + "/help/missing"]
    assert site.hits.get("/internal/drafts", 0) == 0
    sources = {r.metadata["source"] for recs in _entries(kb).values() for r in recs}
    assert not any("other.example.org" in s or "/internal/" in s or "/old-returns" in s for s in sources)
    assert rep.complete and rep.added == len(_entries(kb))
    # the redirect's target was read once, under its own URL
    target = site.redirects["/old-returns"]
    assert site.url + target in sources and site.hits[target] == 1


def test_the_second_sync_updates_exactly_the_changed_page(tmp_path: Path) -> None:
    with HelpSite(articles=8, special=False) as site:
        kb = KnowledgeBase(path=tmp_path / "kb")
        first = kb.sync([_source(site)]).sources[0]
        assert first.added == len(_entries(kb)) and not first.failed
        changed = "/help/payments/payments-guide-2"
        _, html = article("payments", 2, version=2)
        site.set_page(changed, html)
        removed = "/help/orders/orders-guide-4"
        site.remove(removed)
        served = site.not_modified
        before = {eid: {r.id: r.metadata["hash"] for r in recs} for eid, recs in _entries(kb).items()}

        second = kb.sync([_source(site)]).sources[0]
        assert (second.added, second.updated, second.removed) == (0, 1, 1)
        assert second.unchanged == first.added - 2
        assert second.records_embedded == 3  # the changed page's three sections, nothing else
        assert site.not_modified - served >= second.unchanged - 1  # unchanged pages answered 304, not re-sent
        after = {eid: {r.id: r.metadata["hash"] for r in recs} for eid, recs in _entries(kb).items()}
        differs = {eid for eid in before.keys() | after.keys() if before.get(eid) != after.get(eid)}
        assert len(differs) == 2 and any("payments-guide-2" in e for e in differs) \
            and any("orders-guide-4" in e for e in differs)
        assert not any("orders-guide-4" in e for e in after)
        page = next(recs for eid, recs in _entries(kb).items() if "payments-guide-2" in eid)
        assert sum("Version 2 of this section" in r.text for r in page) == 3

        third = kb.sync([_source(site)]).sources[0]  # nothing changed: nothing written
        assert (third.added, third.updated, third.removed, third.records_embedded) == (0, 0, 0, 0)


def test_a_failed_page_or_an_unreadable_robots_txt_removes_nothing(tmp_path: Path) -> None:
    with HelpSite(articles=6, special=False, slow_seconds=2.5) as site:
        kb = KnowledgeBase(path=tmp_path / "kb")
        kb.sync([_source(site)])
        before = set(_entries(kb))
        page = "/help/account/account-guide-3"
        site.slow[page] = 2.5  # now times out
        rep = kb.sync([_source(site)]).sources[0]
        assert [f.url for f in rep.failed] == [site.url + page] and rep.removed == 0
        assert set(_entries(kb)) == before
        site.slow.pop(page)
        site.errors[page] = 503
        rep = kb.sync([_source(site)]).sources[0]
        assert rep.failed[0].reason == "HTTP 503" and rep.removed == 0 and set(_entries(kb)) == before
        site.errors.pop(page)
        site.robots(None, status=500)
        rep = kb.sync([_source(site)]).sources[0]
        assert "robots.txt" in rep.failed[0].reason and rep.removed == 0 and not rep.complete
        assert set(_entries(kb)) == before


def test_a_page_limit_keeps_the_pages_it_did_not_reach(tmp_path: Path) -> None:
    with HelpSite(articles=8, special=False) as site:
        kb = KnowledgeBase(path=tmp_path / "kb")
        kb.sync([_source(site)])
        before = set(_entries(kb))
        rep = kb.sync([_source(site, max_pages=3)]).sources[0]
        assert not rep.complete and rep.removed == 0 and set(_entries(kb)) == before


def test_a_sitemap_source_reads_the_pages_it_lists(tmp_path: Path) -> None:
    with HelpSite(articles=6, special=False) as site:
        listed = ["/help/shipping/shipping-guide-0", "/help/returns/returns-guide-1"]
        site.sitemap(listed)
        kb = KnowledgeBase(path=tmp_path / "kb")
        rep = kb.sync([SourceSettings(sitemap=site.url + "/sitemap.xml", delay_seconds=0)]).sources[0]
        assert rep.added == 2 and rep.pages == 2
        assert {r.metadata["source"] for recs in _entries(kb).values() for r in recs} == {site.url + p for p in listed}
        site.sitemap(listed[:1])  # a page dropped from the sitemap is removed
        rep = kb.sync([SourceSettings(sitemap=site.url + "/sitemap.xml", delay_seconds=0)]).sources[0]
        assert (rep.removed, rep.unchanged) == (1, 1)
        site.remove("/sitemap.xml")  # an unreadable sitemap removes nothing
        rep = kb.sync([SourceSettings(sitemap=site.url + "/sitemap.xml", delay_seconds=0)]).sources[0]
        assert "sitemap not read" in rep.failed[0].reason and rep.removed == 0 and len(_entries(kb)) == 1


def test_a_path_source_removes_files_that_were_deleted(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Returns\n\nReturns are free within 30 days.\n")
    (docs / "b.md").write_text("# Gift cards\n\nGift cards never expire.\n")
    kb = KnowledgeBase(path=tmp_path / "kb")
    source = SourceSettings(path=docs)
    assert kb.sync([source]).sources[0].added == 2
    (docs / "b.md").unlink()
    rep = kb.sync([source]).sources[0]
    assert (rep.removed, rep.unchanged) == (1, 1) and set(_entries(kb)) == {"doc-a"}


# --- a killed sync -----------------------------------------------------------------------------------------------

_KILLED = textwrap.dedent("""
    import os, signal, sys
    from chromadb.api.models.Collection import Collection
    from knowledge import KnowledgeBase
    from knowledge.settings import SourceSettings
    from knowledge.sources.state import SyncState
    kb_path, url, point = sys.argv[1], sys.argv[2], sys.argv[3]
    calls = {"upsert": 0, "put": 0}
    upsert, put = Collection.upsert, SyncState.put
    def upsert_or_die(self, *a, **k):
        calls["upsert"] += 1
        if point == "write" and calls["upsert"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # inside the second batch's write
        return upsert(self, *a, **k)
    def put_or_die(self, *a, **k):
        put(self, *a, **k)
        calls["put"] += 1
        if point == "between" and calls["put"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # after the first batch committed, mid-crawl
    Collection.upsert, SyncState.put = upsert_or_die, put_or_die
    kb = KnowledgeBase(path=kb_path)
    kb.settings.knowledge.sync_batch_pages = 3
    kb.sync([SourceSettings(url=url, delay_seconds=0, timeout_seconds=5)])
""")


@pytest.mark.parametrize("point", ["write", "between"])
def test_a_killed_sync_leaves_the_store_consistent_and_the_next_one_completes_it(tmp_path: Path, point: str) -> None:
    with HelpSite(articles=10, special=False) as site:
        kb_path = tmp_path / "kb"
        run = subprocess.run([sys.executable, "-c", _KILLED, str(kb_path), site.url + "/", point], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
        kb = KnowledgeBase(path=kb_path)
        entries = _entries(kb)  # opening the store undid the write that died
        assert not (kb_path / "journal-supportbot.npz").exists()
        assert entries, "the first batch committed before the kill"
        for eid, recs in entries.items():  # no page half-written: passages numbered 0..n-1, one source
            numbers = sorted(int(r.id.rsplit("#", 1)[1]) for r in recs)
            assert numbers == list(range(len(recs))) and len({r.metadata["source"] for r in recs}) == 1
        state = sqlite_pages(kb_path)
        assert {e for row in state for e in row} <= set(entries)  # the state never runs ahead of the store

        rep = kb.sync([SourceSettings(url=site.url + "/", delay_seconds=0)]).sources[0]
        assert not rep.failed and rep.complete
        fresh = KnowledgeBase(path=tmp_path / "fresh")
        clean = fresh.sync([SourceSettings(url=site.url + "/", delay_seconds=0)]).sources[0]
        assert set(_entries(kb)) == set(_entries(fresh)) and clean.added == len(_entries(kb))
        again = kb.sync([SourceSettings(url=site.url + "/", delay_seconds=0)]).sources[0]
        assert (again.added, again.updated, again.removed) == (0, 0, 0)


def sqlite_pages(kb_path: Path) -> list[list[str]]:
    import sqlite3

    db = sqlite3.connect(kb_path / "sources.sqlite3")
    try:
        return [json.loads(r[0]) for r in db.execute("SELECT entries FROM pages")]
    finally:
        db.close()


# --- the command line ---------------------------------------------------------------------------------------------

def test_supportbot_sync_runs_the_configured_sources_and_says_what_failed(tmp_path: Path) -> None:
    with HelpSite(articles=4, special=False) as site:
        site.errors["/help/shipping/shipping-guide-0"] = 500
        config = tmp_path / "supportbot.toml"
        config.write_text(textwrap.dedent(f"""
            [knowledge]
            path = "{tmp_path / 'kb'}"
            [[knowledge.sources]]
            name = "help"
            url = "{site.url}/"
            delay_seconds = 0
        """))
        run = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "sync"], capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 1, run.stderr
        assert f"failed: {site.url}/help/shipping/shipping-guide-0: HTTP 500" in run.stderr
        assert "help: 3 added" in run.stdout and "Traceback" not in run.stderr
        bad = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "sync", "--source", "nope"],
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "no source named 'nope' (sources: help)" in bad.stderr


# --- the HTTP API -------------------------------------------------------------------------------------------------

def test_the_admin_api_reads_pdf_and_docx_uploads_and_runs_a_sync(tmp_path: Path, demo_kb_path: Path) -> None:
    import httpx

    from bot import Bot
    from bot.server.app import create_app
    from tests.test_server import ADMIN_H, USER, make_settings, running
    from tests.test_engine import ScriptedGenerator, cite

    with HelpSite(articles=4, special=False) as site:
        site.slow["/help/returns/returns-guide-1"] = 1.0  # the sync is still running when it is asked again
        settings = make_settings(tmp_path, demo_kb_path)
        settings.knowledge.sources = [SourceSettings(name="help", url=site.url + "/", delay_seconds=0)]
        bot = Bot(settings=settings, generator=ScriptedGenerator(cite(1), chunks=None))
        with running(create_app(settings, bot=bot)) as url:
            deadline = time.monotonic() + 120
            while httpx.get(f"{url}/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            r = httpx.post(f"{url}/v1/kb/ingest", files={"file": ("manual.pdf", pdf_bytes(), "application/pdf")},
                           headers=ADMIN_H, timeout=60)
            assert r.status_code == 200 and r.json()["added"] == 1, r.text
            r = httpx.post(f"{url}/v1/kb/ingest", headers=ADMIN_H, timeout=60, files={"file": (
                "handbook.docx", docx_bytes(), "application/octet-stream")})
            assert r.status_code == 200 and r.json()["added"] == 1, r.text
            r = httpx.post(f"{url}/v1/kb/ingest", files={"file": ("broken.pdf", b"%PDF-1.4 cut", "application/pdf")},
                           headers=ADMIN_H, timeout=60)
            assert r.status_code == 422 and "not a readable PDF" in r.json()["invalid"][0]["message"]
            assert "/tmp" not in r.text
            hits = httpx.get(f"{url}/v1/kb/search", params={"q": "reset the speaker to factory settings", "k": 1},
                             headers=USER).json()["hits"]
            assert hits[0]["title"] == "Acme product manual > Page 2"

            assert httpx.get(f"{url}/v1/kb/sync", headers=ADMIN_H).json()["status"] == "never"
            assert httpx.post(f"{url}/v1/kb/sync", headers=USER).status_code == 403
            r = httpx.post(f"{url}/v1/kb/sync", json={"sources": ["nope"]}, headers=ADMIN_H)
            assert r.status_code == 404 and "no source named 'nope'" in r.json()["error"]["message"]
            r = httpx.post(f"{url}/v1/kb/sync", headers=ADMIN_H, timeout=30)
            assert r.status_code == 202 and r.json()["status"] == "running" and r.json()["sources"] == ["help"]
            again = httpx.post(f"{url}/v1/kb/sync", headers=ADMIN_H, timeout=30)
            assert again.status_code == 409 and "already running" in again.json()["error"]["message"]
            deadline = time.monotonic() + 120
            while (status := httpx.get(f"{url}/v1/kb/sync", headers=ADMIN_H).json())["running"] and \
                    time.monotonic() < deadline:
                time.sleep(0.2)
            assert status["status"] == "finished"
            (report,) = status["report"]["sources"]
            assert report["source"] == "help" and report["added"] == 4 and report["failed"] == []
            hits = httpx.get(f"{url}/v1/kb/search", params={"q": "returns option 1.1", "k": 3},
                             headers=USER).json()["hits"]
            assert any(h["url"] and h["url"].startswith(site.url + "/help/returns/") for h in hits)


# --- kept honest ----------------------------------------------------------------------------------------------------

def test_stale_entries_and_conflicting_answers_are_listed_for_review(tmp_path: Path, demo_kb_path: Path) -> None:
    import shutil

    from knowledge.quality.review import conflicts, stale

    shutil.copytree(demo_kb_path, tmp_path / "kb")
    kb = KnowledgeBase(path=tmp_path / "kb")
    assert conflicts(kb) == []  # the demo knowledge base agrees with itself
    extra = tmp_path / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(e) for e in [
        {"id": "repairs-old", "question": "How long does a repair under warranty take?",
         "answer": "Warranty repairs take 30 business days from the day the item arrives.", "review_by": "2020-01-31"},
        {"id": "shipping-price-2024", "question": "How much does shipping cost?",
         "answer": "Standard shipping costs €5.95 within Germany."}]) + "\n")
    assert not kb.ingest(extra).invalid
    found = {(c.kind, tuple(c.entry_ids)): c for c in conflicts(kb)}
    pair = next(c for (kind, ids), c in found.items() if kind == "faq-faq" and "shipping-price-2024" in ids)
    assert "shipping-costs" in pair.entry_ids and set(pair.detail.split(" vs ")) == {"4.95 EUR", "5.95 EUR"}
    page = next(c for (kind, ids), c in found.items() if kind == "page-faq" and ids[0] == "repairs-old")
    assert page.entry_ids[1] == "doc-articles-warranty-and-repairs" and page.detail.startswith("30 days vs 1")
    assert "10-15 business days" in page.texts[1]

    items, undated = stale(kb)
    assert [s.entry_id for s in items] == ["repairs-old"] and "2020-01-31" in items[0].reason
    items, _ = stale(kb, now=time.time() + 200 * 86400)  # half a year on, nothing was edited
    assert len(items) == len(_entries(kb)) and undated == 0
    assert all("not changed for" in s.reason for s in items if s.entry_id != "repairs-old")

    env = {**os.environ, "SUPPORTBOT_KNOWLEDGE__PATH": str(tmp_path / "kb")}
    run = subprocess.run([sys.executable, "-m", "bot", "kb", "conflicts"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 1 and "shipping-price-2024" in run.stdout and "repairs-old" in run.stdout
    run = subprocess.run([sys.executable, "-m", "bot", "kb", "stats", "--stale"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 1 and "repairs-old" in run.stdout and "review_by 2020-01-31 has passed" in run.stdout


def test_faq_markup_in_microdata_or_a_json_ld_graph_becomes_entries() -> None:
    from knowledge.web.fetch import FetchResult
    from knowledge.web.load import load_fetched

    micro = ('<html><body><main><h1>FAQ</h1><div itemscope itemtype="https://schema.org/FAQPage">'
             '<div id="q-gift" itemscope itemprop="mainEntity" itemtype="https://schema.org/Question">'
             '<h3 itemprop="name">Do gift cards expire?</h3><div itemscope itemprop="acceptedAnswer" '
             'itemtype="https://schema.org/Answer"><div itemprop="text"><p>No, never.</p></div></div></div>'
             '</div></main></body></html>')
    graph = ('<html><head><script type="application/ld+json">{"@context": "https://schema.org", "@graph": ['
             '{"@type": "WebPage"}, {"@type": ["FAQPage"], "mainEntity": {"@type": "Question", "name": "Is there a '
             'student discount?", "acceptedAnswer": {"text": "Yes: <b>10%</b> with a valid student card."}}}]}'
             '</script></head><body><p>Help</p></body></html>')
    for html, question, answer, url in [
            (micro, "Do gift cards expire?", "No, never.", "https://help.example.com/faq#q-gift"),
            (graph, "Is there a student discount?", "Yes: 10% with a valid student card.", "https://help.example.com/faq")]:
        res = FetchResult(url="https://help.example.com/faq", final_url="https://help.example.com/faq", status=200,
                          content_type="text/html; charset=utf-8", body=html.encode())
        loaded, _ = load_fetched(res)
        (entry,) = loaded.entries
        assert (entry.questions, entry.answer, entry.url) == ([question], answer, url)
        assert not loaded.documents


def test_a_server_with_last_modified_only_answers_304_to_the_next_sync(tmp_path: Path) -> None:
    with HelpSite(articles=4, special=False, etags=False) as site:
        site.last_modified = True
        kb = KnowledgeBase(path=tmp_path / "kb")
        first = kb.sync([_source(site)]).sources[0]
        served = site.not_modified
        second = kb.sync([_source(site)]).sources[0]
        assert second.unchanged == first.added and second.records_embedded == 0
        assert site.not_modified - served == second.pages  # every page answered If-Modified-Since with a 304


def test_the_fetcher_waits_for_robots_crawl_delay_and_the_patterns_scope_a_crawl() -> None:
    from knowledge.web.crawl import in_patterns
    from knowledge.web.fetch import Fetcher

    with HelpSite(articles=2, special=False) as site:
        site.robots("User-agent: *\nCrawl-delay: 2\nDisallow: /help/returns/\n")
        clock = [100.0]
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            clock[0] += seconds

        fetcher = Fetcher([site.url.removeprefix("http://")], "supportbot-test", delay=0.1, clock=lambda: clock[0],
                          sleep=sleep)
        assert fetcher.get(site.url + "/").ok
        assert fetcher.get(site.url + "/help/shipping/").ok
        assert waits and min(waits) >= 1.9  # robots.txt's Crawl-delay (2 s), not the source's 0.1 s
        assert fetcher.allowed(site.url + "/help/returns/returns-guide-1") == (False, "disallowed by robots.txt")
        assert fetcher.allowed("https://elsewhere.example/")[0] is False
        fetcher.close()

    assert in_patterns("https://h/en/articles/1", ["/en/"], [])
    assert not in_patterns("https://h/de/articles/1", ["/en/"], [])
    assert in_patterns("https://h/en/articles/1", ["/*/articles/*"], ["/en/community"])
    assert not in_patterns("https://h/en/community/post", [], ["/en/community"])


def test_sync_every_takes_an_interval_and_refuses_nonsense() -> None:
    import typer

    from bot.cli.knowledge import _interval

    assert (_interval("90s"), _interval("30m"), _interval("6h"), _interval("1d")) == (90, 1800, 21600, 86400)
    for bad in ("6", "0h", "-1h", "6 hours", "h"):
        with pytest.raises(typer.BadParameter):
            _interval(bad)


def test_accordion_questions_keep_their_own_answers() -> None:
    """An FAQ accordion without schema markup: extractors drop <button> toggles, which glued one question's answer
    to the one before it (a cited wrong answer). Each answer stays under its own question."""
    from knowledge.web.page import read_page

    html = ("<html><head><title>FAQ | Acme</title></head><body><nav><a href='/'>Home</a></nav><main>"
            "<h1>Frequently asked questions</h1>"
            "<details><summary>Can I change my address after ordering?</summary><p>Only within 60 minutes of "
            "placing the order, from your account page.</p></details><h2>Gifts</h2>"
            "<div class='accordion'><button class='toggle'>Do you offer gift wrapping?</button><div><p>Yes, for €3 "
            "per item at checkout.</p></div></div>"
            "<div class='accordion'><button class='toggle'>Can I add a gift message?</button><div><p>Yes, up to 200 "
            "characters, printed on a card.</p></div></div></main></body></html>")
    sections = {tuple(s[0]): s[1] for s in read_page(html, "https://help.acme.example/faq").sections}
    assert sections[("Frequently asked questions", "Can I change my address after ordering?")] == (
        "Only within 60 minutes of placing the order, from your account page.")
    assert sections[("Frequently asked questions", "Gifts", "Do you offer gift wrapping?")] == (
        "Yes, for €3 per item at checkout.")
    assert sections[("Frequently asked questions", "Gifts", "Can I add a gift message?")] == (
        "Yes, up to 200 characters, printed on a card.")
