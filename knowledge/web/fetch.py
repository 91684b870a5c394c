"""Fetching pages politely: robots.txt honoured (protego), one request at a time at a polite rate (the source's
delay or robots.txt's Crawl-delay, whichever is longer), conditional requests (ETag / Last-Modified), redirects
followed only within the allowed hosts, a timeout and a size limit per page. Nothing here raises for a bad page:
each fetch returns a :class:`FetchResult` with the reason it failed."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import urljoin, urlsplit, urlunsplit

REDIRECTS = (301, 302, 303, 307, 308)


def normalise_url(url: str) -> str:
    """A URL without its fragment, with a lower-case scheme and host and a path ("/" for none)."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.lower()
    if (parts.scheme == "http" and netloc.endswith(":80")) or (parts.scheme == "https" and netloc.endswith(":443")):
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


@dataclasses.dataclass
class FetchResult:
    """One fetch: the URL asked for, the URL that answered (after redirects), and what came back or why not."""

    url: str
    final_url: str
    status: int = 0  # the HTTP status; 0 when no response came (timeout, connection refused, not allowed)
    content_type: str = ""
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None  # why the page could not be fetched
    location: str | None = None  # a redirect's Location header
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200

    @property
    def not_modified(self) -> bool:
        return self.error is None and self.status == 304

    @property
    def gone(self) -> bool:
        """The server says the page does not exist (any more): what the store has from it can go."""
        return self.error is None and self.status in (404, 410)


class Fetcher:
    """``get(url, etag, last_modified)``: one polite request (and its redirects). ``allowed(url)``: inside the
    allowed hosts and not disallowed by robots.txt. One ``httpx.Client`` (keep-alive) per fetcher."""

    def __init__(self, allowed_hosts: Iterable[str], user_agent: str, timeout: float = 10.0, delay: float = 0.5,
                 max_bytes: int = 20_000_000, max_redirects: int = 5,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.user_agent = user_agent
        self.timeout = timeout
        self.delay = delay
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._clock, self._sleep = clock, sleep
        self._client: Any = None
        self._robots: dict[str, Any] = {}  # origin -> protego.Protego | a reason no page of it may be fetched
        self._last: dict[str, float] = {}  # host -> when its last request was sent
        self._lock = threading.Lock()
        self.requests = 0

    # --- scope ----------------------------------------------------------------------------------------------
    def in_scope(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc.lower() in self.allowed_hosts

    def allowed(self, url: str) -> tuple[bool, str | None]:
        """(may this URL be fetched, why not)."""
        if not self.in_scope(url):
            return False, f"outside the allowed hosts ({', '.join(sorted(self.allowed_hosts))})"
        robots = self._robots_for(url)
        if isinstance(robots, str):
            return False, robots
        if robots is not None and not robots.can_fetch(url, self.user_agent):
            return False, "disallowed by robots.txt"
        return True, None

    def robots_problem(self, url: str) -> str | None:
        """Why robots.txt of the URL's host could not be read this run (then nothing there is fetched, and nothing
        that the store has from there may be taken as gone), or None."""
        if not self.in_scope(url):
            return None
        robots = self._robots_for(url)
        return robots if isinstance(robots, str) else None

    def _robots_for(self, url: str) -> Any:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in self._robots:
            self._robots[origin] = self._load_robots(origin)
        return self._robots[origin]

    def _load_robots(self, origin: str) -> Any:
        """protego.Protego for the origin; None (everything allowed) when it has no robots.txt (4xx); a reason
        string (nothing allowed this run) when robots.txt could not be read (5xx, timeout), as search engines do."""
        from protego import Protego

        res = self._request(origin + "/robots.txt", {})
        if res.error is not None:
            return f"robots.txt could not be read ({res.error}); nothing is fetched from {origin} until it can"
        if 400 <= res.status < 500:
            return None
        if res.status != 200:
            return f"robots.txt answered HTTP {res.status}; nothing is fetched from {origin} until it answers"
        return Protego.parse(res.body.decode("utf-8", errors="replace"))

    def _wait_turn(self, url: str) -> None:
        host = host_of(url)
        delay = self.delay
        robots = self._robots.get(f"{urlsplit(url).scheme}://{host}")
        if robots is not None and not isinstance(robots, str):
            delay = max(delay, float(robots.crawl_delay(self.user_agent) or 0.0))
        last = self._last.get(host)
        if last is not None:
            wait = last + delay - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last[host] = self._clock()

    # --- requests -------------------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.Client(follow_redirects=False, timeout=httpx.Timeout(self.timeout),
                                        headers={"User-Agent": self.user_agent})
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Fetch ``url``, following redirects within the allowed hosts (each hop checked against robots.txt)."""
        start = self._clock()
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _ in range(self.max_redirects + 1):
            ok, why = self.allowed(current)
            if not ok:
                return FetchResult(url=url, final_url=current, error=f"{current}: {why}" if current != url else why,
                                   seconds=self._clock() - start)
            res = self._request(current, headers)
            if res.error is not None or res.status not in REDIRECTS:
                res.url = url
                res.seconds = self._clock() - start
                return res
            location = res.location
            if not location:
                return FetchResult(url=url, final_url=current, status=res.status,
                                   error=f"HTTP {res.status} without a Location header", seconds=self._clock() - start)
            target = normalise_url(urljoin(current, location))
            if not self.in_scope(target):
                return FetchResult(url=url, final_url=target, status=res.status,
                                   error=f"redirects to {target}, outside the allowed hosts; not followed",
                                   seconds=self._clock() - start)
            if target != current:
                headers = {}  # the validators belong to the URL asked for, not to where it now points
            current = target
        return FetchResult(url=url, final_url=current, error=f"more than {self.max_redirects} redirects",
                           seconds=self._clock() - start)

    def _request(self, url: str, headers: dict[str, str]) -> FetchResult:
        import httpx

        with self._lock:
            self._wait_turn(url)
            self.requests += 1
        deadline = self._clock() + self.timeout
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code in REDIRECTS:
                    return FetchResult(url=url, final_url=url, status=response.status_code,
                                       location=response.headers.get("location"))
                chunks, size = [], 0
                if response.status_code == 200:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            return FetchResult(url=url, final_url=url, status=200,
                                               error=f"larger than {self.max_bytes:,} bytes; not read")
                        if self._clock() > deadline:
                            return FetchResult(url=url, final_url=url, status=200,
                                               error=f"timed out after {self.timeout:g} s")
                        chunks.append(chunk)
                return FetchResult(url=url, final_url=url, status=response.status_code,
                                   content_type=response.headers.get("content-type", ""), body=b"".join(chunks),
                                   etag=response.headers.get("etag"),
                                   last_modified=response.headers.get("last-modified"))
        except httpx.TimeoutException:
            return FetchResult(url=url, final_url=url, error=f"timed out after {self.timeout:g} s")
        except httpx.HTTPError as e:
            return FetchResult(url=url, final_url=url, error=f"{type(e).__name__}: {e}".rstrip(": "))
