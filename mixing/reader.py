"""Packed sequences from a mixture: `PackedReader(mix_dir, seq_len, rank=, world_size=)` returns a
MixtureReader (training/reader.py dispatches on the folder's manifest).

The stream: the plan's units in order, window by window; within a window the documents (one per planned
entry: a document, a copy, an epoch) in an order seeded by the mixture's seed and the window; each document
whole, ending with its end-of-text token. The stream is cut at the mixture's total_tokens into S = total //
(seq_len + 1) sequences of seq_len + 1 tokens. Rank r of w reads sequences [r P, (r + 1) P) with P = S // w:
ranks are disjoint, every rank yields P (data-parallel steps stay in lockstep), and the S - w P < w sequences
left over are reported (`dropped_sequences`), so all ranks together yield the token budget within one sequence
per rank. A rank decodes only the windows its range touches (one row group per unit, each at most once per
window), the next window in a background thread while the current one is consumed.

Resumable: `state_dict()` holds the sequences yielded; `load_state_dict()` on a new reader seeks to the
window holding the next token and continues with exactly the sequences that would have come next.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import hashlib
import json
import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq

from mixing.folder import check_mixture_paths, read_plan
from release.publish import file_sha256
from release.reader import PackedReader
from storage.files import is_local, join, open_read, read_bytes

DECODERS = 4  # row groups of a window decoded at once, per reader


class MixtureReader(PackedReader):
    def __init__(self, path: str, seq_len: int, *, seed: int | None = None, rank: int = 0, world_size: int = 1,
                 epoch: int = 0) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.path = path.rstrip("/")
        raw = read_bytes(join(self.path, "manifest.json"))
        self.manifest = manifest = json.loads(raw)
        self.mixture_sha256 = hashlib.sha256(raw).hexdigest()
        check_mixture_paths(self.path, manifest)  # storage.paths.UnsafePathError before any file is opened
        if seed is not None and seed != manifest["seed"]:
            raise ValueError(f"{self.path} was mixed with seed {manifest['seed']}; its order is the mixture's "
                             f"(mix again with seed = {seed} for another order)")
        if epoch != 0:
            raise ValueError("a mixture is read once: its epochs are planned by `tokenmill mix` (total_tokens)")
        self.seq_len, self.seed, self.rank, self.world_size, self.epoch = seq_len, manifest["seed"], rank, \
            world_size, 0
        self.sources = manifest["sources"]
        for s in self.sources:  # the shards read must be the ones the plan was made from
            if file_sha256(join(s["path"], "manifest.json")) != s["manifest_sha256"]:
                raise ValueError(f"{self.path}: source {s['label']} changed since the mix ({s['path']}/manifest.json "
                                 "has another sha256): mix again")
        plan = read_plan(self.path, manifest, columns=["window", "tokens"])
        window = plan.column("window").to_numpy()
        tokens = plan.column("tokens").to_numpy()
        self._window_units = np.concatenate([[0], np.flatnonzero(np.diff(window)) + 1, [len(window)]])
        unit_end = np.cumsum(tokens)
        # Each window's first token in the stream, and the end: a list, for bisect on every piece taken.
        self._window_starts = [0, *unit_end[self._window_units[1:] - 1].tolist()]
        self._part_units = np.cumsum([0] + [f["rows"] for f in manifest["plan"]["files"]])
        n = seq_len + 1
        total = min(manifest["total_tokens"], self._window_starts[-1])
        every = total // n
        self.sequences = every // world_size
        self.dropped_sequences = every - self.sequences * world_size
        self._first = rank * self.sequences * n
        self._yielded = 0
        self._counted = np.zeros(len(self.sources), np.int64)  # tokens yielded per source, finished windows
        self._decoders: concurrent.futures.ThreadPoolExecutor | None = None
        self._part: tuple[int, dict] | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._builds: dict[int, concurrent.futures.Future] = {}
        self._current: tuple[int, list[np.ndarray], list[int], np.ndarray] | None = None
        self._consumed: tuple[int, int] = (-1, -1)  # (lo, hi) of the current window yielded so far
        self.read_log: list[tuple[int, int, int]] = []  # (source, file, row group) decoded, window by window
        if self.sequences == 0:
            warnings.warn(f"rank {rank} of {world_size} gets no full sequence: {self.path} plans {total:,} tokens, "
                          f"{every} sequence(s) of seq_len + 1 = {n}", RuntimeWarning, stacklevel=3)

    # --- plan and shards -------------------------------------------------------------------------------
    def _units(self, a: int, b: int) -> dict[str, np.ndarray]:
        """Plan units [a, b) (within one plan part or across parts), their columns as arrays."""
        out: dict[str, list] = {k: [] for k in ("source", "file", "row_group", "take", "rows")}
        for k in range(int(np.searchsorted(self._part_units, a, "right")) - 1, len(self._part_units) - 1):
            lo, hi = self._part_units[k], self._part_units[k + 1]
            if lo >= b:
                break
            if self._part is None or self._part[0] != k:
                table = read_plan(self.path, self.manifest, ["source", "file", "row_group", "take", "rows"], [k])
                rows = table.column("rows").combine_chunks()
                self._part = (k, {key: table.column(key).to_numpy() for key in ("source", "file", "row_group", "take")}
                              | {"offsets": rows.offsets.to_numpy(), "values": rows.values.to_numpy()})
            part = self._part[1]
            i, j = max(a, lo) - lo, min(b, hi) - lo
            for key in ("source", "file", "row_group", "take"):
                out[key].append(part[key][i:j])
            out["rows"] += [part["values"][part["offsets"][u]: part["offsets"][u + 1]] for u in range(i, j)]
        return {key: np.concatenate(out[key]) for key in ("source", "file", "row_group", "take")} | {
            "rows": out["rows"]}

    def _decode(self, key: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, values) of a row group's tokens (the file opened for it: memory-mapped when local; the
        footer parse is ~0.5 ms, and a ParquetFile is not shared between decoding threads)."""
        s, f, g = key
        source = self.sources[s]
        path = join(source["path"], source["files"][f]["path"])
        if is_local(path):
            with pq.ParquetFile(path, memory_map=True) as pf:
                column = pf.read_row_group(g, columns=["tokens"]).column("tokens").combine_chunks()
        else:
            with open_read(path) as stream, pq.ParquetFile(stream) as pf:
                column = pf.read_row_group(g, columns=["tokens"]).column("tokens").combine_chunks()
        return column.offsets.to_numpy(), column.values.to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)

    def _build(self, w: int) -> tuple[list[np.ndarray], list[int], np.ndarray]:
        """Window w: (its documents' tokens in stream order, as views into the decoded row groups; each
        document's end offset in the window; each document's source). The window's row groups are decoded by
        DECODERS threads at once (Arrow's decoding releases the GIL). The documents are not joined into one
        array: `_take` copies each token once, into the sequence it yields (joining them cost as much as
        decoding: 87 M tokens/s)."""
        units = self._units(int(self._window_units[w]), int(self._window_units[w + 1]))
        keys = list(dict.fromkeys(zip(units["source"].tolist(), units["file"].tolist(), units["row_group"].tolist(),
                                      strict=True)))
        if self._decoders is None:
            self._decoders = concurrent.futures.ThreadPoolExecutor(DECODERS)
        decoded = dict(zip(keys, self._decoders.map(self._decode, keys), strict=True))
        self.read_log += keys
        pieces, sources = [], []
        for s, f, g, take, rows in zip(units["source"].tolist(), units["file"].tolist(), units["row_group"].tolist(),
                                       units["take"].tolist(), units["rows"], strict=True):
            offsets, values = decoded[s, f, g]
            if take:  # the one document a source's last epoch cuts to reach its target exactly
                pieces.append(values[offsets[rows[0]]: offsets[rows[0]] + take])
            else:
                starts, ends = offsets[rows].tolist(), offsets[rows + 1].tolist()
                pieces += [values[a:b] for a, b in zip(starts, ends, strict=True)]
            sources.append(np.full(1 if take else len(rows), s, np.int32))
        order = np.random.default_rng([self.seed, w]).permutation(len(pieces))
        ordered = [pieces[i] for i in order]
        ends = np.cumsum(np.fromiter(map(len, ordered), np.int64, len(ordered))).tolist()
        planned = self._window_starts[w + 1] - self._window_starts[w]
        if not ends or ends[-1] != planned:  # the plan counted token_count; the stream needs the tokens to agree
            raise ValueError(f"{self.path}: window {w} holds {ends[-1] if ends else 0:,} tokens, the plan counted "
                             f"{planned:,} from token_count: a source's shards do not match their manifest")
        return ordered, ends, np.concatenate(sources)[order]

    def _window(self, w: int) -> tuple[list[np.ndarray], list[int], np.ndarray]:
        if self._current is not None and self._current[0] == w:
            return self._current[1:]
        if self._current is not None:
            self._account()
        if self._pool is None:  # made on first use: a DataLoader worker forks after the reader is built
            self._pool = concurrent.futures.ThreadPoolExecutor(1)
        future = self._builds.pop(w, None) or self._pool.submit(self._build, w)
        built = future.result()
        self._builds = {k: v for k, v in self._builds.items() if k > w}
        if w + 1 < len(self._window_units) - 1 and self._window_starts[w + 1] < self._end and w + 1 not in self._builds:
            self._builds[w + 1] = self._pool.submit(self._build, w + 1)  # decoded while this one is consumed
        self._current = (w, *built)
        self._consumed = (-1, -1)
        return built

    @property
    def _end(self) -> int:
        return self._first + self.sequences * (self.seq_len + 1)

    def _account(self) -> None:
        """Add the current window's yielded range to the per-source token counts."""
        lo, hi = self._consumed
        if self._current is None or lo < 0:
            return
        _, _, end_list, sources = self._current
        ends = np.asarray(end_list, np.int64)
        starts = ends - np.diff(np.concatenate([[0], ends]))
        overlap = np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0, None)
        self._counted += np.bincount(sources, weights=overlap, minlength=len(self.sources)).astype(np.int64)
        self._consumed = (-1, -1)

    @property
    def tokens_by_source(self) -> dict[str, int]:
        """Tokens of each source this reader has yielded (carried over by state_dict / load_state_dict)."""
        self._account()
        return {s["label"]: int(t) for s, t in zip(self.sources, self._counted, strict=True)}

    # --- the stream ------------------------------------------------------------------------------------
    def _take(self, count: int) -> np.ndarray:
        """The next `count` sequences' tokens, one new array (count x (seq_len + 1))."""
        n = self.seq_len + 1
        pos = self._first + self._yielded * n
        pieces, need = [], count * n
        while need:
            w = bisect.bisect_right(self._window_starts, pos) - 1
            documents, ends, _ = self._window(w)
            local = pos - self._window_starts[w]
            i = bisect.bisect_right(ends, local)  # the document holding the next token
            offset = local - (ends[i - 1] if i else 0)
            take = min(need, ends[i] - local)
            pieces.append(documents[i][offset: offset + take])
            lo, _ = self._consumed
            self._consumed = (local if lo < 0 else lo, local + take)
            pos += take
            need -= take
        self._yielded += count
        return (pieces[0].copy() if len(pieces) == 1 else np.concatenate(pieces)).reshape(count, n)

    def __iter__(self) -> Iterator[np.ndarray]:
        while self._yielded < self.sequences:
            yield self._take(1)[0]
        self._account()

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """The same stream, `batch_size` sequences at a time as one (batch_size, seq_len + 1) array (the last
        batch may be smaller): one slice of the window per batch instead of one per sequence, for loops that
        want batches anyway (a DataLoader with batch_size=None). state_dict() between batches is exact."""
        while self._yielded < self.sequences:
            yield self._take(min(batch_size, self.sequences - self._yielded))
        self._account()

    def state_dict(self) -> dict:
        self._account()
        return {"kind": "mixture", "mixture_sha256": self.mixture_sha256, "seed": self.seed, "rank": self.rank,
                "world_size": self.world_size, "seq_len": self.seq_len, "yielded": self._yielded,
                "tokens_by_source": self._counted.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "mixture":
            raise ValueError("state was saved by a reader of a release, not of a mixture")
        for key in ("mixture_sha256", "seed", "rank", "world_size", "seq_len"):
            if state[key] != getattr(self, key):
                raise ValueError(f"state was saved with {key}={state[key]}, this reader has {getattr(self, key)}")
        self._account()
        self._yielded = state["yielded"]
        self._counted = np.array(state["tokens_by_source"], np.int64)
        self._current, self._builds, self._consumed = None, {}, (-1, -1)

    def close(self) -> None:
        for pool in (self._pool, self._decoders):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._decoders = None

    def __getstate__(self) -> dict:  # picklable (DataLoader workers): no threads, no window
        state = self.__dict__.copy()
        state.update(_pool=None, _decoders=None, _builds={}, _current=None, _part=None)
        return state
