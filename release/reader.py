"""Packed fixed-length token sequences for training, from a release or run's shards on any store (local,
gs://, s3://; pyarrow + numpy, and Beam's FileSystems for a store).

Documents are joined in a seeded shuffled order -- shard files shuffled, then the rows inside each file, so
only one shard's tokens are in memory at a time -- (each already ends with its end-of-text token) into one
stream, cut into sequences of seq_len + 1 tokens (inputs and shifted targets), and the sequences are dealt
round-robin to data-parallel ranks: rank r of world_size w gets sequences r, r + w, r + 2w, ... of the same
global stream, so ranks never overlap and together cover every full sequence. The tail that does not fill a
sequence is dropped (at most seq_len tokens per epoch).

Resumable: `state_dict()` after any step, `load_state_dict()` on a new reader, and iteration continues with
exactly the sequences that would have come next.

PyTorch (optional, not a dependency):

    class Tokens(torch.utils.data.IterableDataset):
        def __init__(self, **kw): self.reader = PackedReader(**kw)
        def __iter__(self): return (torch.from_numpy(s.astype("int64")) for s in self.reader)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq

from storage.files import exists, join, match, open_read, read_bytes


class PackedReader:
    def __init__(self, path: str, seq_len: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 epoch: int = 0) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.files, tokens = self._files(path)
        self.seq_len, self.seed, self.rank, self.world_size, self.epoch = seq_len, seed, rank, world_size, epoch
        self._next_sequence = 0  # global sequence index, in this epoch's stream, that this rank yields next
        full = tokens // (seq_len + 1) if tokens is not None else None
        if full is not None and full <= rank:
            # A rank that yields nothing trains on nothing, silently; say so while the job starts.
            warnings.warn(f"rank {rank} of {world_size} gets no full sequence: {path} holds {tokens:,} tokens, "
                          f"{full} sequence(s) of seq_len + 1 = {seq_len + 1}", RuntimeWarning, stacklevel=2)

    @staticmethod
    def _files(path: str) -> tuple[list[str], int | None]:
        """The shard files to read, and their tokens when a manifest counts them. Raises FileNotFoundError where
        there is no release, run or shard file."""
        path = path.rstrip("/")
        manifest = join(path, "manifest.json")
        if exists(manifest):
            data = json.loads(read_bytes(manifest))
            entries = [e for e in data.get("files") or data.get("shards") or [] if e["path"].endswith(".parquet")]
            tokens = sum(e["tokens"] for e in entries) if all("tokens" in e for e in entries) else None
            return [join(path, e["path"]) for e in entries], tokens
        found = match(join(path, "shards", "*.parquet")) or match(join(path, "*.parquet"))
        if not found:
            raise FileNotFoundError(f"{path}: no release or run here (no manifest.json, no shards/*.parquet)")
        return [p for p, _size in found], None

    def _stream(self) -> Iterator[np.ndarray]:
        """Token arrays of every document, in this epoch's seeded order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        for fi in rng.permutation(len(self.files)):
            with open_read(self.files[fi]) as f:
                column = pq.read_table(f, columns=["tokens"]).column("tokens").combine_chunks()
            offsets = column.offsets.to_numpy()
            values = column.values.to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)
            for ri in rng.permutation(len(column)):
                yield values[offsets[ri] : offsets[ri + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        n = self.seq_len + 1
        buffer = np.zeros(0, dtype=np.uint32)
        index = 0  # global index of the next full sequence cut from the stream
        for tokens in self._stream():
            buffer = np.concatenate([buffer, tokens])
            while len(buffer) >= n:
                seq, buffer = buffer[:n], buffer[n:]
                if index % self.world_size == self.rank and index >= self._next_sequence:
                    self._next_sequence = index + self.world_size
                    yield seq
                index += 1

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed, "next_sequence": self._next_sequence,
                "rank": self.rank, "world_size": self.world_size, "seq_len": self.seq_len}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "rank", "world_size", "seq_len"):
            if state[key] != getattr(self, key):
                raise ValueError(f"state was saved with {key}={state[key]}, this reader has {getattr(self, key)}")
        self.epoch, self._next_sequence = state["epoch"], state["next_sequence"]
