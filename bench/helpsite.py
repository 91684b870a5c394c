"""A generated help-centre site served on 127.0.0.1, for the crawl tests and bench/crawl.py: nested category and
article pages with a header, navigation and footer, a sitemap, robots.txt with a disallowed path, an FAQ page
marked up as schema.org FAQPage, a redirect, a link to a missing page, a page that answers too slowly, an
off-site redirect, a PDF and a Word file generated with real libraries (fpdf2, python-docx). ETags and
``If-None-Match`` as a real server does them; pages can be changed, added and removed between two syncs."""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HTML = "text/html; charset=utf-8"

_TOPICS = ["shipping", "returns", "payments", "account", "orders", "warranty", "gift cards", "subscriptions",
           "privacy", "stores"]
_FACTS = ["takes {n} working days", "costs €{n}.95", "is free above €{m}", "needs your order number",
          "is available in {n} countries", "can be changed within {n} hours", "is refunded within {n} days",
          "comes with a {n}-year warranty"]


def _layout(title: str, body: str, extra_head: str = "") -> str:
    nav = "".join(f'<li><a href="/help/{t.replace(" ", "-")}/">{t.title()}</a></li>' for t in _TOPICS)
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title} | Acme Help Centre</title>"
            f"{extra_head}</head><body><header><a href='/'>Acme</a><form action='/search'><input name=q></form>"
            f"</header><nav class=sidebar><ul>{nav}</ul></nav><main><article>{body}</article></main>"
            "<footer><p>© 2026 Acme GmbH · <a href='/legal/imprint'>Imprint</a> · "
            "<a href='/legal/privacy'>Privacy</a></p></footer></body></html>")


def article(topic: str, number: int, version: int = 1, rng: random.Random | None = None) -> tuple[str, str]:
    """(title, HTML) of an article: an h1, three sections with ids, each a few sentences with facts."""
    rng = rng or random.Random(f"{topic}-{number}")
    title = f"{topic.title()} guide {number}"
    sections = []
    for s in range(3):
        facts = " ".join(
            f"The {topic} option {number}.{s}.{k} {rng.choice(_FACTS).format(n=rng.randint(2, 30), m=rng.randint(20, 90))}."
            for k in range(4))
        sections.append(f'<h2 id="section-{s}">{topic.title()} option {number}.{s}</h2><p>{facts}</p>'
                        f"<p>Version {version} of this section. Contact support if anything is unclear.</p>")
    body = f"<h1>{title}</h1><p>Everything about {topic} ({number}).</p>" + "".join(sections)
    return title, _layout(title, body)


def pdf_bytes() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Acme product manual")
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Charging. Charge the Acme speaker for 3 hours before first use. A full charge lasts "
                         "14 hours of playback.")
    pdf.add_page()
    pdf.multi_cell(0, 8, "Resetting. Hold the power button for 12 seconds to reset the speaker to its factory "
                         "settings.")
    return bytes(pdf.output())


def docx_bytes() -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.title = "Acme shipping handbook"
    d.add_heading("Acme shipping handbook", 0)
    d.add_heading("International delivery", 1)
    d.add_paragraph("We deliver to 31 countries outside the EU.")
    table = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Country", "Fee"), ("Canada", "€24.00"), ("Japan", "€29.00")]):
        table.rows[r].cells[0].text, table.rows[r].cells[1].text = a, b
    d.add_heading("Customs", 2)
    d.add_paragraph("Import duties are paid by the recipient on delivery.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


FAQ = [("How long does delivery take?", "Standard delivery takes 2-4 working days within Germany."),
       ("Can I pay with PayPal?", "Yes, we accept PayPal, Visa, Mastercard and Klarna.")]


def faq_page(items: list[tuple[str, str]] = FAQ) -> str:
    data = {"@context": "https://schema.org", "@type": "FAQPage", "mainEntity": [
        {"@type": "Question", "name": q, "acceptedAnswer": {"@type": "Answer", "text": f"<p>{a}</p>"}}
        for q, a in items]}
    body = "<h1>Frequently asked questions</h1>" + "".join(f"<h3>{q}</h3><p>{a}</p>" for q, a in items)
    return _layout("FAQ", body, f'<script type="application/ld+json">{json.dumps(data)}</script>')


class HelpSite:
    """``with HelpSite(articles=12) as site:`` serves the site at ``site.url``; ``site.pages`` maps a path to
    (content type, body) and may be changed between requests; ``site.hits`` counts requests per path."""

    def __init__(self, articles: int = 12, special: bool = True, slow_seconds: float = 3.0, etags: bool = True) -> None:
        self.etags = etags  # False: a server that sends no ETags (with last_modified False too: no validators)
        self.last_modified = False  # True: send Last-Modified (a date per page version) and answer If-Modified-Since
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.redirects: dict[str, str] = {}
        self.slow: dict[str, float] = {}
        self.errors: dict[str, int] = {}  # path -> an error status it answers
        self.hits: dict[str, int] = {}
        self.not_modified = 0  # 304 answers
        self.lock = threading.Lock()
        per_topic: dict[str, list[tuple[str, str]]] = {}
        for i in range(articles):
            topic = _TOPICS[i % len(_TOPICS)]
            slug = f"{topic.replace(' ', '-')}-guide-{i}"
            title, html = article(topic, i)
            path = f"/help/{topic.replace(' ', '-')}/{slug}"
            self.pages[path] = (HTML, html.encode())
            per_topic.setdefault(topic, []).append((path, title))
        for topic, items in per_topic.items():
            links = "".join(f'<li><a href="{p}">{t}</a></li>' for p, t in items)
            self.pages[f"/help/{topic.replace(' ', '-')}/"] = (
                HTML, _layout(topic.title(), f"<h1>{topic.title()}</h1><p>Articles about {topic}.</p><ul>{links}</ul>")
                .encode())
        home_links = [f'<a href="/help/{t.replace(" ", "-")}/">{t.title()}</a>' for t in per_topic]
        if special:
            home_links += ['<a href="/help/faq">FAQ</a>', '<a href="/old-returns">Returns (old link)</a>',
                           '<a href="/help/missing">Missing</a>', '<a href="/help/slow">Slow page</a>',
                           '<a href="/internal/drafts">Drafts</a>', '<a href="/files/manual.pdf">Manual</a>',
                           '<a href="/files/handbook.docx">Handbook</a>', '<a href="/go-elsewhere">Partner</a>',
                           '<a href="https://other.example.org/x">Elsewhere</a>',
                           '<a href="mailto:help@acme.test">Mail us</a>']
            self.pages["/help/faq"] = (HTML, faq_page().encode())
            self.pages["/help/slow"] = (HTML, _layout("Slow", "<h1>Slow</h1><p>This page is slow.</p>").encode())
            self.slow["/help/slow"] = slow_seconds
            self.pages["/internal/drafts"] = (HTML, _layout("Drafts", "<h1>Drafts</h1><p>Internal notes: do not "
                                                                      "publish.</p>").encode())
            self.pages["/files/manual.pdf"] = ("application/pdf", pdf_bytes())
            self.pages["/files/handbook.docx"] = (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx_bytes())
            first_returns = next((p for p, _ in per_topic.get("returns", [])), "/help/faq")
            self.redirects["/old-returns"] = first_returns
            self.redirects["/go-elsewhere"] = "https://other.example.org/"
        self.pages["/"] = (HTML, _layout("Home", "<h1>Acme Help Centre</h1><p>How can we help?</p><ul>"
                                         + "".join(f"<li>{a}</li>" for a in home_links) + "</ul>").encode())
        self.pages["/robots.txt"] = ("text/plain", b"User-agent: *\nDisallow: /internal/\n")
        self.server: ThreadingHTTPServer | None = None
        self.url = ""

    def set_page(self, path: str, html: str, content_type: str = HTML) -> None:
        with self.lock:
            self.pages[path] = (content_type, html.encode())

    def robots(self, text: str | None, status: int = 200) -> None:
        """Serve ``text`` as robots.txt (None: robots.txt answers ``status``, e.g. 500)."""
        with self.lock:
            if text is None:
                self.pages.pop("/robots.txt", None)
                self.errors["/robots.txt"] = status
            else:
                self.errors.pop("/robots.txt", None)
                self.pages["/robots.txt"] = ("text/plain", text.encode())

    def remove(self, path: str) -> None:
        with self.lock:
            self.pages.pop(path, None)

    def sitemap(self, paths: list[str] | None = None) -> None:
        """Serve /sitemap.xml listing ``paths`` (default: every HTML page but robots.txt and the home page)."""
        paths = paths if paths is not None else [p for p, (t, _) in self.pages.items() if t == HTML and p != "/"]
        urls = "".join(f"<url><loc>{self.url}{p}</loc></url>" for p in paths)
        self.set_page("/sitemap.xml", '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/'
                      f'schemas/sitemap/0.9">{urls}</urlset>', "application/xml")

    def __enter__(self) -> "HelpSite":
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                try:
                    self._get()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (the slow page's timeout)
                    pass

            def _get(self) -> None:
                path = self.path.split("?")[0]
                with site.lock:
                    site.hits[path] = site.hits.get(path, 0) + 1
                    page = site.pages.get(path)
                    target = site.redirects.get(path)
                    delay = site.slow.get(path, 0.0)
                    error = site.errors.get(path)
                if delay:
                    time.sleep(delay)
                if error is not None:
                    self.send_response(error)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if target is not None:
                    self.send_response(301 if target.startswith("/") else 302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if page is None:
                    body = b"<html><body><h1>Not found</h1></body></html>"
                    self.send_response(404)
                    self.send_header("Content-Type", HTML)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                content_type, body = page
                etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(
                    1_700_000_000 + int(hashlib.sha1(body).hexdigest()[:6], 16)))  # a date per version of the page
                if (site.etags and self.headers.get("If-None-Match") == etag) or \
                        (site.last_modified and self.headers.get("If-Modified-Since") == stamp):
                    with site.lock:
                        site.not_modified += 1
                    self.send_response(304)
                    if site.etags:
                        self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if site.etags:
                    self.send_header("ETag", etag)
                if site.last_modified:
                    self.send_header("Last-Modified", stamp)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def serve_forever(articles: int, etags: bool = True) -> None:
    """Serve a site in this process until killed, printing its URL first (bench/crawl.py runs it apart, so that the
    server does not share the crawler's interpreter)."""
    with HelpSite(articles=articles, special=False, etags=etags) as site:
        print(site.url, flush=True)
        while True:
            time.sleep(3600)
