"""What every benchmark needs: where ../shared is, and a bench crawl built once with make_bench_warc.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOKENMILL_SHARED", REPO.parent / "shared"))


def bench_crawl(crawl: Path, docs: int = 2500, shards: int = 4, seed: int = 0) -> Path:
    """`crawl`, holding a crawl from ../shared/tools/make_bench_warc.py (built unless already there)."""
    if not list(crawl.glob("*.warc.gz")):
        subprocess.run([sys.executable, str(SHARED / "tools" / "make_bench_warc.py"), "--out", str(crawl),
                        "--docs", str(docs), "--shards", str(shards), "--seed", str(seed)],
                       check=True, capture_output=True)
    return crawl


# Process roles in a DirectRunner run (multi_processing): the driver (the runner itself, which holds every
# shuffle in memory), the SDK workers (where the stages run) and the extraction children they start.
ROLES = ("driver", "sdk_workers", "extraction_children")


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def rss_mib(pid: int) -> float:
    """Resident set size of one process (VmRSS), 0.0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _role_of(pid: int, root: int) -> str | None:
    if pid == root:
        return "driver"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return None
    if b"sdk_worker_main" in cmd or b"harness.local_worker" in cmd:  # Beam's worker main, or tokenmill's around it
        return "sdk_workers"
    if b"spawn_main" in cmd:
        return "extraction_children"
    return None  # shells, multiprocessing's resource tracker


def run_sampled(cmd: list[str], interval: float = 0.25) -> tuple[float, dict[str, dict[str, float]]]:
    """Run `cmd` (stdout/stderr captured, must succeed) while sampling its process tree from /proc.

    Returns (wall seconds, {role: {"peak_rss_mib": largest single process of that role, "cpu_seconds":
    summed over the role's processes}}). Linux only; sampling every `interval` s can miss a peak shorter
    than that."""
    import threading
    import time

    ticks = os.sysconf("SC_CLK_TCK")
    peaks = {role: 0.0 for role in ROLES}
    cpu_by_pid: dict[int, tuple[str, float]] = {}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in _process_tree(proc.pid):
                role = _role_of(pid, proc.pid)
                if role is None:
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except (OSError, IndexError, ValueError):
                    continue
                peaks[role] = max(peaks[role], rss_mib(pid))
                cpu_by_pid[pid] = (role, (int(fields[11]) + int(fields[12])) / ticks)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out, err)
    cpu = {role: 0.0 for role in ROLES}
    for role, seconds in cpu_by_pid.values():
        cpu[role] += seconds
    return wall, {role: {"peak_rss_mib": round(peaks[role], 1), "cpu_seconds": round(cpu[role], 1)}
                  for role in ROLES}


def gold_pages(name: str) -> list[tuple[str, bytes, dict]]:
    """(url, raw HTML bytes, gold) of one gold set in ../shared, in a fixed order. gold is trafilatura_eval's
    entry ({"with": [...], "without": [...]}) or {"text": full gold text} for scrapinghub_aeb and cleaneval."""
    import gzip
    import json
    import re

    root = SHARED / "data" / name
    if name == "trafilatura_eval":
        entries = json.loads(gzip.open(root / "evaldata.json.gz").read())
        return [(url, gzip.open(root / "html" / f"{e['file']}.gz").read(), e) for url, e in sorted(entries.items())]
    if name == "scrapinghub_aeb":
        truth = json.loads(gzip.open(root / "ground-truth.json.gz").read())
        return [(e["url"], gzip.open(root / "html" / f"{key}.html.gz").read(), {"text": e["articleBody"]})
                for key, e in sorted(truth.items())]
    if name == "cleaneval":
        out = []
        for gold_file in sorted((root / "final" / "gold").glob("*.txt.gz"), key=lambda p: int(p.name.split(".")[0])):
            raw = gzip.open(root / "final" / "input" / gold_file.name.replace(".txt.gz", ".html.gz")).read()
            head, _, page = raw.partition(b">")  # the <text id="URL" ...> wrapper line
            url = re.search(rb'id="([^"]*)"', head)
            lines = gzip.open(gold_file, "rt", errors="replace").read().splitlines()[1:]  # "URL: ..." first
            text = "\n".join(re.sub(r"^\s*<[phl]>", "", line).strip() for line in lines)
            out.append((url.group(1).decode("utf-8", "replace") if url else "", page, {"text": text}))
        return out
    raise ValueError(f"unknown gold set {name}")


def bag_f1(text: str, gold: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of the lower-cased whitespace words of `text` against `gold`, as multisets."""
    from collections import Counter

    got, want = Counter(text.lower().split()), Counter(gold.lower().split())
    common = sum((got & want).values())
    precision, recall = common / max(1, sum(got.values())), common / max(1, sum(want.values()))
    return precision, recall, 2 * precision * recall / max(1e-9, precision + recall)
