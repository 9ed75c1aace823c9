"""Packed fixed-length token sequences for training, from a release or run's shards on any store (local,
gs://, s3://; pyarrow + numpy, and Beam's FileSystems for a store).

The unit of work is a shard row group (~2,000 documents). Each epoch, the row groups of all shards are put in
a seeded order and dealt round-robin to the data-parallel ranks: rank r of world_size w owns row groups r,
r + w, r + 2w, ... of that order, reads only those (a snapshot's release is too large for every rank to read
all of it), and joins their documents, in a seeded order within each row group, into its own stream (each
document already ends with its end-of-text token), cut into sequences of seq_len + 1 tokens (inputs and
shifted targets). Ranks never share a document. Every rank yields the same number of sequences, the smallest
any rank's stream fills, so data-parallel steps stay in lockstep; a rank's surplus and its tail are dropped.
The counts come from the shard footers alone: a row group's token count is the `tokens` column chunk's
number of values, so no rank reads another's tokens to know them. A release records them in its manifest
(`row_group_tokens` of each file, since 2026-12-07), so a rank opens no footer to start and reads only the
files of the row groups it owns, when it reaches them (issue 35: 10^5 shards' footers on every one of
10^3 ranks were 10^8 requests before the first step); a run's folder, or a release made before, has its
footers read at the start, every one of them on every rank.

Resumable without replay: `state_dict()` after any step holds the rank's position (row group, row, token);
`load_state_dict()` on a new reader starts there, reading nothing before it, and iteration continues with
exactly the sequences that would have come next.

`batches(batch_size)` yields the same stream as (batch_size, seq_len + 1) arrays. A mixture folder (`tokenmill
mix`) is read by mixing/reader.py's MixtureReader, which training/reader.py's `PackedReader(mix_dir, ...)`
returns (that module dispatches, so that release/ does not import mixing/). A PyTorch `IterableDataset` around
either (`TokenBatches`): README.md, "From a crawl to a training loop".
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq

from console.safe import shown
from storage.files import exists, join, match, open_read, read_bytes
from storage.paths import check_entries


def row_group_tokens(meta: pq.FileMetaData, path: str) -> list[int]:
    """Tokens per row group from the footer: the list column's leaf values. An empty token list would count
    as one (null) value; the shard schema's rows always hold at least one token, and a chunk whose
    statistics show nulls is refused rather than miscounted."""
    names = meta.schema.to_arrow_schema().names
    if "tokens" not in names:
        raise ValueError(f"{path}: no tokens column (not a tokenmill shard)")
    column = next(i for i in range(meta.num_columns) if meta.schema.column(i).path.split(".")[0] == "tokens")
    out = []
    for g in range(meta.num_row_groups):
        chunk = meta.row_group(g).column(column)
        stats = chunk.statistics
        if stats is not None and stats.has_null_count and stats.null_count:
            raise ValueError(f"{path}: row group {g} holds empty token lists; its token count is not in the footer")
        out.append(chunk.num_values)
    return out


class PackedReader:
    """A release's or run's packed sequences. A mixture folder is read by training.reader.PackedReader, which
    returns mixing.reader.MixtureReader for one (this module imports nothing of mixing/)."""

    def __init__(self, path: str, seq_len: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 epoch: int = 0) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.path = path.rstrip("/")
        self.files, counts = self._listing(self.path)
        self.seq_len, self.seed, self.rank, self.world_size = seq_len, seed, rank, world_size
        self.footer_reads = 0  # footers opened to learn the counts (0 for a release that records them)
        # Every (file, row group) with its tokens: from the release's manifest, else from the footers (one
        # small read per file).
        self.row_groups: list[tuple[int, int, int]] = []
        for fi, f in enumerate(self.files):
            if counts is None:
                with open_read(f) as stream:
                    meta = pq.ParquetFile(stream).metadata
                self.footer_reads += 1
            self.row_groups += [(fi, g, n) for g, n in enumerate(
                row_group_tokens(meta, f) if counts is None else counts[fi])]
        self.read_log: list[tuple[int, int]] = []  # (file, row group) this reader has read, in order
        self._set_epoch(epoch)

    def _set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.row_groups))
        self.owned = [self.row_groups[i][:2] for i in order[self.rank :: self.world_size]]
        self._owned_tokens = [self.row_groups[i][2] for i in order[self.rank :: self.world_size]]
        n = self.seq_len + 1
        per_rank = [sum(self.row_groups[i][2] for i in order[r :: self.world_size]) for r in range(self.world_size)]
        self.sequences = min(t // n for t in per_rank)  # every rank yields this many this epoch
        self._position = (0, 0, 0)  # next token: (index into self.owned, row in its seeded order, token in row)
        self._yielded = 0
        if self.sequences == 0:
            # A rank that yields nothing trains on nothing, silently; say so while the job starts.
            poorest = min(range(self.world_size), key=lambda r: per_rank[r])
            warnings.warn(
                f"rank {self.rank} of {self.world_size} gets no full sequence: rank {poorest}'s row groups hold "
                f"{per_rank[poorest]:,} tokens, fewer than seq_len + 1 = {n}; {self.path} holds "
                f"{sum(t for *_, t in self.row_groups):,} tokens in {len(self.row_groups)} row group(s)",
                RuntimeWarning, stacklevel=3)

    @staticmethod
    def _files(path: str) -> list[str]:
        """The shard files to read (PackedReader._listing)."""
        return PackedReader._listing(path)[0]

    @staticmethod
    def _listing(path: str) -> tuple[list[str], list[list[int]] | None]:
        """(the shard files to read, each one's tokens per row group when a release's manifest records them for
        every file, else None). Raises FileNotFoundError where there is no release, run or shard file, and
        storage.paths.UnsafePathError (a ValueError) where the manifest lists a path outside `path` or a count
        that is not one."""
        manifest = join(path, "manifest.json")
        if exists(manifest):
            data = json.loads(read_bytes(manifest))
            if "kind" in data:  # a folder of another kind (a mixture): no release or run, read another way
                raise ValueError(f"{path} holds a {shown(str(data['kind']))}, not a release or run: open it with "
                                 "training.reader.PackedReader")
            listed = data.get("files") or data.get("shards") or []
            check_entries(listed, f"{manifest} {'files' if data.get('files') else 'shards'}")  # UnsafePathError
            listed = [e for e in listed if e["path"].endswith(".parquet")]
            counts = [e.get("row_group_tokens") for e in listed]
            if not listed or any(c is None for c in counts):
                counts = None  # a run, or a release made before 2026-12-07: the footers say
            else:
                for e, c in zip(listed, counts, strict=True):
                    if not isinstance(c, list) or not all(type(n) is int and n >= 0 for n in c):
                        raise ValueError(f"{manifest}: {shown(e['path'])}: row_group_tokens is not a list of "
                                         "token counts")
            return [join(path, e["path"]) for e in listed], counts
        found = match(join(path, "shards", "*.parquet")) or match(join(path, "*.parquet"))
        if not found:
            raise FileNotFoundError(f"{path}: no release or run here (no manifest.json, no shards/*.parquet)")
        return [p for p, _size in found], None

    def _documents(self) -> Iterator[tuple[tuple[int, int, int], np.ndarray]]:
        """((position of the document's first token yielded), its remaining tokens) from the saved position
        on: this rank's row groups only, each read alone."""
        start_rg, start_row, start_token = self._position
        for k in range(start_rg, len(self.owned)):
            fi, g = self.owned[k]
            with open_read(self.files[fi]) as stream:
                table = pq.ParquetFile(stream).read_row_group(g, columns=["tokens"])
            self.read_log.append((fi, g))
            column = table.column("tokens").combine_chunks()
            offsets = column.offsets.to_numpy()
            if int(offsets[-1] - offsets[0]) != self._owned_tokens[k]:
                # The counts dealt the sequences: a rank short of them would leave the others' steps waiting.
                raise ValueError(f"{self.files[fi]}: row group {g} holds {int(offsets[-1] - offsets[0]):,} tokens, "
                                 f"the manifest says {self._owned_tokens[k]:,}")
            values = column.values.to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)
            rows = np.random.default_rng([self.seed, self.epoch, fi, g]).permutation(len(column))
            first = start_row if k == start_rg else 0
            for j in range(first, len(rows)):
                skip = start_token if (k == start_rg and j == start_row) else 0
                ri = rows[j]
                yield (k, j, skip), values[offsets[ri] + skip : offsets[ri + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        n = self.seq_len + 1
        pieces: list[np.ndarray] = []
        have = 0
        for (k, j, skip), tokens in self._documents():
            if self._yielded >= self.sequences:
                return
            used = 0
            while used < len(tokens):
                take = min(n - have, len(tokens) - used)
                pieces.append(tokens[used : used + take])
                have += take
                used += take
                if have == n:
                    seq = np.concatenate(pieces)
                    pieces, have = [], 0
                    self._yielded += 1
                    # The next token: the rest of this document, or the next row (which may be in the next
                    # row group: position (k, len(rows)) resumes there).
                    self._position = (k, j, skip + used) if used < len(tokens) else (k, j + 1, 0)
                    yield seq
                    if self._yielded >= self.sequences:
                        return

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """The same stream, `batch_size` sequences at a time as one (batch_size, seq_len + 1) array (the last
        batch may be smaller). state_dict() between batches is exact."""
        batch = []
        for seq in self:
            batch.append(seq)
            if len(batch) == batch_size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed, "rank": self.rank, "world_size": self.world_size,
                "seq_len": self.seq_len, "position": list(self._position), "yielded": self._yielded}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "rank", "world_size", "seq_len"):
            if state[key] != getattr(self, key):
                raise ValueError(f"state was saved with {key}={state[key]}, this reader has {getattr(self, key)}")
        if "position" not in state:
            raise ValueError("state was saved by a PackedReader that dealt sequences, not row groups: restart the "
                             "epoch")
        self._set_epoch(state["epoch"])
        self._position = tuple(state["position"])
        self._yielded = state["yielded"]
