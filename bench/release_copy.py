"""Wall time of `tokenmill release` and `tokenmill verify` on a run of many parts, locally and on S3.

    python bench/release_copy.py --run RUN [--copies 50] [--keep DIR] [--checkout PATH] [--s3]

A finished run's shards and dedup index parts are repeated `--copies` times under new part names into a wide
run (same bytes, so the manifest's checksums hold). `release` then copies it to a new folder and `verify`
checks that release, each in its own process, timed; with `--s3` the wide run is first put in a bucket of a
moto S3 server on loopback (the tests' store) and released from the bucket to the bucket. SOURCE_DATE_EPOCH
is set, so two checkouts' releases can be compared byte for byte (`--checkout` runs another checkout's CLI:
an older commit, for a before/after; the script prints each release's digest of all its files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wide_run(run: Path, copies: int, folder: Path) -> Path:
    """`run` with each shard and dedup index part repeated `copies` times (made once)."""
    if (folder / "manifest.json").exists():
        return folder
    manifest = json.loads((run / "manifest.json").read_text())
    shutil.copytree(run / "ledger", folder / "ledger")
    shutil.copy(run / "stats.json", folder / "stats.json")

    def repeat(entries: list[dict]) -> list[dict]:
        out = []
        for c in range(copies):
            for e in entries:
                path = e["path"].replace("part-", f"part-{c:04d}")
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(run / e["path"], folder / path)
                out.append({**e, "path": path})
        return out

    manifest["shards"] = repeat(manifest["shards"])
    if manifest.get("dedup_index"):
        manifest["dedup_index"]["parts"] = repeat(manifest["dedup_index"]["parts"])
    manifest["totals"] = {k: v * copies for k, v in manifest["totals"].items()}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def moto(folder: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    raise RuntimeError("moto did not start")


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
    if done.returncode:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
    return time.perf_counter() - start, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished run's output folder")
    ap.add_argument("--copies", type=int, default=50)
    ap.add_argument("--keep", type=Path, default=None, help="folder for the wide run (kept between calls)")
    ap.add_argument("--checkout", type=Path, default=REPO, help="the tokenmill checkout whose CLI to time")
    ap.add_argument("--s3", action="store_true", help="release from and to a moto S3 bucket on loopback")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp())
    wide = wide_run(args.run, args.copies, root / f"wide-{args.copies}")
    manifest = json.loads((wide / "manifest.json").read_text())
    parts = len(manifest["shards"]) + len((manifest.get("dedup_index") or {}).get("parts", []))
    size = sum(p.stat().st_size for p in wide.rglob("*.parquet") if "ledger" not in p.parts)
    cli = [sys.executable, "-m", "tokenmill_cli"]
    flags: list[str] = []
    proc = None
    source, target = str(wide), str(root / "release")
    shutil.rmtree(target, ignore_errors=True)
    try:
        if args.s3:
            import boto3

            proc, endpoint = moto(root)
            flags = [f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=test", "--s3_secret_access_key=test",
                     "--s3_region_name=us-east-1"]
            client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                                  aws_secret_access_key="test", region_name="us-east-1")
            client.create_bucket(Bucket="bench")
            for path in wide.rglob("*"):
                if path.is_file():
                    client.upload_file(str(path), "bench", f"wide/{path.relative_to(wide)}")
            source, target = "s3://bench/wide", "s3://bench/release"
        print(f"{parts:,} parts, {size / 2**20:.1f} MiB, {'S3 (moto on loopback)' if args.s3 else 'local disk'}; "
              f"CLI of {args.checkout}")
        seconds, _ = timed(cli + ["release", source, "--name", "bench", "--version", "1", "--to", target] + flags,
                           args.checkout)
        print(f"release {seconds:7.2f} s")
        seconds, line = timed(cli + ["verify", target] + flags, args.checkout)
        print(f"verify  {seconds:7.2f} s  ({line})")
        digest = hashlib.sha256()
        if args.s3:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="release/")
            for key in sorted(o["Key"] for page in pages for o in page.get("Contents", [])):
                digest.update(key.encode() + client.get_object(Bucket="bench", Key=key)["Body"].read())
        else:
            for path in sorted(Path(target).rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(target)).encode() + path.read_bytes())
        print(f"release files' digest {digest.hexdigest()[:16]}")
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
