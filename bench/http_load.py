"""HTTP API under load on 127.0.0.1: 50 concurrent clients x 20 FAQ questions each (issue: HTTP API).

    .venv/bin/python bench/http_load.py [--clients 50] [--requests 20] [--workers 1] [--warm-up N] [--out NAME]

Starts `supportbot serve` as a separate process (the real bot on the demo knowledge base, SQLite transcripts,
an API key, the default rate limit raised for the test key), waits for /readyz, then runs the clients with
httpx (one conversation each, questions drawn from the demo FAQ's question variants). Reports errors, latency
percentiles and throughput, then checks that every turn is in the transcript database. Writes
bench/results/http_load.json.
"""

from __future__ import annotations

import argparse
import collections
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, percentiles, save  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HANDOFF_ENTRIES = {"contact-human"}  # its variants ask for a person: the conversation goes to a human, the bot is silent


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its live children (Linux /proc)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return total


def questions() -> list[str]:
    """The demo FAQ's question variants, but those that ask for a person (every request takes the bot's path)."""
    rows = [json.loads(line) for line in (REPO / "examples" / "acme" / "faq.jsonl").read_text().splitlines()]
    return [q for r in rows if r["id"] not in HANDOFF_ENTRIES for q in r["questions"]]


async def client(http, url: str, key: str, n: int, pool: list[str], rng: random.Random, out: list) -> None:
    """One conversation of ``n`` different FAQ questions; records (seconds, ok, status, session, turns stored,
    reply mode)."""
    session_id = None
    for message in rng.sample(pool, n):
        start = time.perf_counter()
        try:
            r = await http.post(f"{url}/v1/chat", json={"session_id": session_id, "message": message},
                                headers={"Authorization": f"Bearer {key}"})
            ok = r.status_code == 200
            turns, mode = 0, None
            if ok:
                reply = r.json()
                session_id, mode = reply["session_id"], reply["mode"] + ("" if reply["text"] else " (silent)")
                turns = 2 if reply["text"] else 1  # with a human, the bot stores the message and stays silent
            out.append((time.perf_counter() - start, ok, r.status_code, session_id, turns, mode))
        except Exception as e:  # noqa: BLE001 - counted as an error
            out.append((time.perf_counter() - start, False, type(e).__name__, session_id, 0, None))


async def run_clients(url: str, key: str, clients: int, requests: int, warm_up: bool = False) -> tuple[list, float]:
    """The clients' conversations; ``warm_up``: the same load with other texts (each question with a greeting in
    front), so that the server's threads, connections and model kernels are warm but not its cache of the timed
    questions' embeddings."""
    import httpx

    pool = [f"hello, {q[0].lower()}{q[1:]}" for q in questions()] if warm_up else questions()
    results: list = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http, url, key, requests, pool, random.Random(i), results)
                               for i in range(clients)))
        return results, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--warm-up", type=int, default=0, metavar="N",
                    help="first N requests per client of other texts, not measured (default: none)")
    ap.add_argument("--out", default="http_load", help="results file name in bench/results")
    args = ap.parse_args()
    import httpx

    key = secrets.token_urlsafe(24)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "transcripts.sqlite3"
        env = {**os.environ, "SUPPORTBOT_API_KEYS": key, "SUPPORTBOT_KNOWLEDGE__PATH": str(Path(tmp) / "kb"),
               "SUPPORTBOT_SESSIONS__BACKEND": "sqlite", "SUPPORTBOT_SESSIONS__PATH": str(db),
               "SUPPORTBOT_SERVER__RATE_LIMIT_PER_MINUTE": "0", "TOKENIZERS_PARALLELISM": "false"}
        sb = str(Path(sys.executable).parent / "supportbot")
        subprocess.run([sb, "ingest", str(REPO / "examples" / "acme")], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        log = (Path(tmp) / "serve.log").open("w")  # a file, not a pipe: a full pipe would stop the server
        server = subprocess.Popen([sb, "serve", "--port", str(port), "--workers", str(args.workers)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise SystemExit("server not ready after 300 s: " + (Path(tmp) / "serve.log").read_text()[-2000:])
            if args.warm_up:
                asyncio.run(run_clients(url, key, args.clients, args.warm_up, warm_up=True))
            before = {"client": time.process_time(), "server": process_tree_cpu(server.pid)}
            results, seconds = asyncio.run(run_clients(url, key, args.clients, args.requests))
            cpu = {"client": time.process_time() - before["client"],
                   "server": process_tree_cpu(server.pid) - before["server"]}
        finally:
            server.terminate()
            server.wait(30)
            log.close()
        if any(not r[1] for r in results):  # what the server said about the failed requests
            print("server log (last lines):\n" + "\n".join((Path(tmp) / "serve.log").read_text().splitlines()[-15:]))
        from bot.server.security import Principal, key_id
        from bot.storage.transcripts import DatabaseSessions, database_url

        store = DatabaseSessions(database_url(db))
        sessions = {r[3] for r in results if r[1]}
        owner = Principal(key_id(key))  # conversations are stored under ids namespaced by the key that started them
        stored = sum(len(store.get(owner.scoped(s)).turns) for s in sessions)
        store.close()
    ok = [r for r in results if r[1]]
    errors = [r[2] for r in results if not r[1]]
    result = {"clients": args.clients, "requests_per_client": args.requests, "workers": args.workers,
              "warm_up_requests_per_client": args.warm_up,
              "requests": len(results), "errors": len(errors), "error_kinds": sorted({str(e) for e in errors}),
              "seconds": round(seconds, 2), "requests_per_s": round(len(results) / seconds, 1),
              "latency": percentiles([1000 * r[0] for r in ok]) if ok else None,
              "turns_expected": sum(r[4] for r in ok), "turns_stored": stored,
              "replies_by_mode": dict(collections.Counter(r[5] for r in ok)), "cpu_count": os.cpu_count(),
              "cpu_ms_per_request": {k: round(1000 * v / len(results), 2) for k, v in cpu.items()}}
    lat = result["latency"] or {}
    print(f"{len(results)} requests, {len(errors)} errors, p50 {lat.get('p50_ms')} ms, p95 {lat.get('p95_ms')} ms, "
          f"{result['requests_per_s']} req/s; turns stored {stored}/{result['turns_expected']}; "
          f"replies {result['replies_by_mode']}; CPU ms per request {result['cpu_ms_per_request']}")
    print("wrote", save(args.out, result))


if __name__ == "__main__":
    main()
