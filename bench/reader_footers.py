"""Parquet footers each data-parallel rank of `PackedReader` opens: to start, and in a whole epoch.

    python bench/reader_footers.py RELEASE [--world-size 1 4] [--seq-len 512] [--checkout PATH]

Counts every pyarrow ParquetFile the reader opens (each open reads the file's footer) while the reader is
made and while it yields its epoch, per rank, with the files and row groups the release has. `--checkout`
counts another checkout's reader (an older commit, for a before/after) on the same release; the digest of each
rank's sequences shows the two read the same stream.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("release")
    ap.add_argument("--world-size", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--checkout", type=Path, default=REPO, help="the tokenmill checkout whose reader to count")
    args = ap.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))
    import pyarrow.parquet as pq

    from training.reader import PackedReader

    opened = [0]
    original = pq.ParquetFile

    class Counted(original):
        def __init__(self, *a, **k) -> None:
            opened[0] += 1
            super().__init__(*a, **k)

    pq.ParquetFile = Counted
    print(f"PackedReader of {args.checkout} on {args.release}")
    for world in args.world_size:
        for rank in range(world):
            opened[0] = 0
            reader = PackedReader(args.release, args.seq_len, rank=rank, world_size=world)
            at_start = opened[0]
            digest, sequences = hashlib.sha256(), 0
            for sequence in reader:
                digest.update(sequence.tobytes())
                sequences += 1
            print(f"world {world} rank {rank}: {len(reader.files)} files, {len(reader.row_groups)} row groups, "
                  f"owns {len(reader.owned)}; footers opened: {at_start} to start, {opened[0]} in all; "
                  f"{sequences} sequences, sha256 {digest.hexdigest()[:12]}")


if __name__ == "__main__":
    main()
