"""What a training loop opens: `PackedReader(path, seq_len, seed=, rank=, world_size=)` reads packed token
sequences from a release or a run's shards (release/reader.py) or from a mixture folder (mixing/reader.py:
MixtureReader, which this returns for one), told apart by the folder's manifest.

Why a module of its own: it is the one place that knows both readers, so that neither release/ nor mixing/
needs the other's. Until 2026-12-07 release/reader.py's PackedReader imported mixing's reader to return it, while
mixing's reader extends release's: a cycle between the two packages (issue 35). release.reader.PackedReader still
reads releases and runs, and refuses a mixture folder in one line naming this module.
"""

from __future__ import annotations

from mixing.folder import mixture_manifest
from mixing.reader import MixtureReader
from release.reader import PackedReader as ReleaseReader

__all__ = ["MixtureReader", "PackedReader", "ReleaseReader"]


class PackedReader(ReleaseReader):
    """A release's or run's reader (release.reader.PackedReader), or for a mixture folder (`tokenmill mix`) a
    MixtureReader, which is one too."""

    def __new__(cls, path: str, *args, **kwargs) -> ReleaseReader:
        if cls is PackedReader and mixture_manifest(path) is not None:
            return MixtureReader(path, *args, **kwargs)  # not a PackedReader of this class: __init__ is not rerun
        return super().__new__(cls)
