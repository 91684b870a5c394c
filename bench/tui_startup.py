"""Start-up of the terminal UI in a real terminal (tmux): time until the input is on screen and usable, and
until the models are loaded ("ready" in the status line).

    .venv/bin/python bench/tui_startup.py [--runs 5]      # needs tmux; writes bench/results/tui_startup.json

Each run starts `supportbot chat` on the demo knowledge base in a detached 100x30 tmux session and polls the
screen every 20 ms. The input counts as usable once its placeholder is drawn: keys typed from then on are
taken (the models load in a worker thread).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, save  # noqa: E402

SB = REPO / ".venv" / "bin" / "supportbot"


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def one_run(kb: Path, n: int) -> dict:
    session = f"sb-startup-{n}"
    start = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    f"SUPPORTBOT_KNOWLEDGE__PATH={kb} {SB} chat"], check=True)
    usable = ready = None
    try:
        while time.perf_counter() - start < 120:
            text = screen(session)
            now = time.perf_counter() - start
            if usable is None and "Type your question" in text:
                usable = now
            if any(line.strip() == "ready" for line in text.splitlines()):  # the status line
                ready = now
                break
            time.sleep(0.02)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return {"input_usable_s": round(usable, 2) if usable else None, "models_ready_s": round(ready, 2) if ready else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed for this benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(tmp) / "kb"
        subprocess.run([str(SB), "ingest", str(REPO / "examples" / "acme")], check=True, capture_output=True,
                       env={"SUPPORTBOT_KNOWLEDGE__PATH": str(kb), "PATH": "/usr/bin:/bin"})
        runs = [one_run(kb, n) for n in range(args.runs)]
    usable = [r["input_usable_s"] for r in runs if r["input_usable_s"] is not None]
    ready = [r["models_ready_s"] for r in runs if r["models_ready_s"] is not None]
    result = {"runs": runs, "input_usable_median_s": statistics.median(usable),
              "input_usable_max_s": max(usable), "models_ready_median_s": statistics.median(ready)}
    print(result)
    print("wrote", save("tui_startup", result))


if __name__ == "__main__":
    main()
