"""Tokenizers that turn document text into uint32 token ids, with the end-of-text token appended.

cl100k_base / o200k_base: the BPE ranks, pattern and special tokens ship inside the bpe-openai package
(standard .tiktoken files); tiktoken's Rust encoder does the encoding. Nothing is downloaded.
Any other name is a path to a Hugging Face tokenizer.json, encoded with the `tokenizers` library.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from storage.files import is_file, read_bytes

BPE_ENCODINGS = ("cl100k_base", "o200k_base")


def _bpe_package_dir() -> Path:
    """bpe_openai's folder, found without importing the package: its __init__ parses all three of its
    vocabularies (~1.2 s), in the driver and again in every worker that tokenizes."""
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the bpe-openai package is not installed (pip install bpe-openai)")
    return Path(next(iter(spec.submodule_search_locations)))


def load_bpe_ranks(name: str) -> dict[bytes, int]:
    """The mergeable ranks of one encoding from bpe_openai's data/<name>.tiktoken.gz (standard tiktoken
    format: one "base64-token rank" pair per line), parsed in one pass."""
    fields = gzip.decompress((_bpe_package_dir() / "data" / f"{name}.tiktoken.gz").read_bytes()).split()
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))


@cache
def _bpe_registry() -> ModuleType:
    """bpe_openai/registry.py (pattern and special tokens per encoding) loaded on its own, reading ranks with
    load_bpe_ranks, so the package's import-time loading never runs."""
    spec = importlib.util.spec_from_file_location("tokenmill_bpe_registry", _bpe_package_dir() / "registry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._load_mergeable_ranks = load_bpe_ranks
    return module


def bpe_spec(name: str) -> dict:
    """{name, pat_str, mergeable_ranks, special_tokens} of a bpe_openai encoding (tiktoken's constructor
    arguments)."""
    return getattr(_bpe_registry(), name)()


def bpe_identity(spec: dict) -> tuple[str, int]:
    """(vocabulary sha256, end-of-text id) of a bpe_spec: the hash runs over the tokens in rank order."""
    ranked = sorted(spec["mergeable_ranks"].items(), key=lambda kv: kv[1])
    vocab_hash = hashlib.sha256(b"".join(t + b"\x00" + str(r).encode() + b"\n" for t, r in ranked)).hexdigest()
    return vocab_hash, spec["special_tokens"]["<|endoftext|>"]


def describe_tokenizer(name: str, append_eos: bool = True) -> dict[str, Any]:
    """What a manifest records about a tokenizer: {name, vocab_sha256, eos_id, append_eos}. For the BPE
    encodings it is read from their spec without building tiktoken's encoder (~0.1 s the driver would spend
    before the run starts, on an encoder it never uses)."""
    if name in BPE_ENCODINGS:
        vocab_hash, eos_id = bpe_identity(bpe_spec(name))
    else:
        tok = Tokenizer(name, append_eos)
        vocab_hash, eos_id = tok.vocab_hash, tok.eos_id
    return {"name": name, "vocab_sha256": vocab_hash, "eos_id": eos_id, "append_eos": append_eos}


class Tokenizer:
    """encode_batch(texts) -> packed little-endian uint32 bytes per text (EOS appended when asked)."""

    name: str
    eos_id: int
    vocab_hash: str  # sha256 over the vocabulary, so a manifest pins exactly which tokenizer made a shard

    def __init__(self, name: str, append_eos: bool = True) -> None:
        self.name = name
        self.append_eos = append_eos
        if name in BPE_ENCODINGS:
            self._init_bpe(name)
        elif is_file(name):
            self._init_hf(name)
        else:
            raise ValueError(
                f"tokenizer '{name}' is neither one of {', '.join(BPE_ENCODINGS)} nor a tokenizer.json path"
            )

    def _init_bpe(self, name: str) -> None:
        import tiktoken

        spec = bpe_spec(name)
        self._tiktoken = tiktoken.Encoding(
            name=spec["name"],
            pat_str=spec["pat_str"],
            mergeable_ranks=spec["mergeable_ranks"],
            special_tokens=spec["special_tokens"],
        )
        self.vocab_hash, self.eos_id = bpe_identity(spec)
        self._hf = None

    def _init_hf(self, path: str) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        data = read_bytes(path)  # any store: local, gs://, s3://
        self._hf = HFTokenizer.from_str(data.decode("utf-8"))
        self._tiktoken = None
        eos = None
        for candidate in ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]"):
            eos = self._hf.token_to_id(candidate)
            if eos is not None:
                break
        if eos is None and self.append_eos:
            raise ValueError(f"{path}: no end-of-text token found (tried <|endoftext|>, </s>, <eos>, ...)")
        self.eos_id = eos if eos is not None else -1
        self.vocab_hash = hashlib.sha256(data).hexdigest()

    def encode_batch(self, texts: Sequence[str]) -> list[bytes]:
        if self._tiktoken is not None:
            # encode_ordinary: text that happens to contain "<|endoftext|>" is encoded as plain text, never
            # as the special token, so a web page cannot forge a document boundary.
            id_lists = self._tiktoken.encode_ordinary_batch(list(texts), num_threads=1)
        else:
            id_lists = [e.ids for e in self._hf.encode_batch(list(texts), add_special_tokens=False)]
        out = []
        for ids in id_lists:
            if self.append_eos:
                ids = [*ids, self.eos_id]
            out.append(np.asarray(ids, dtype="<u4").tobytes())
        return out

    @property
    def vocab_size(self) -> int:
        """Ids run from 0 to this minus one (special tokens included)."""
        if self._tiktoken is not None:
            return self._tiktoken.n_vocab
        return self._hf.get_vocab_size(with_added_tokens=True)

    def decode(self, tokens: Sequence[int]) -> str:
        if self._tiktoken is not None:
            return self._tiktoken.decode(list(tokens))
        return self._hf.decode(list(tokens), skip_special_tokens=False)


def vocabulary(name: str) -> tuple[str, int]:
    """(vocabulary sha256, as describe_tokenizer records it; size: ids run from 0 to it minus one) of tokenizer
    `name`, from one load: for the BPE encodings their spec (tiktoken's n_vocab, without building the encoder),
    else the tokenizer.json with its added tokens. What an export checks a release's tokenizer by and picks its
    token dtype from."""
    if name in BPE_ENCODINGS:
        spec = bpe_spec(name)
        size = max(max(spec["mergeable_ranks"].values()), max(spec["special_tokens"].values())) + 1
        return bpe_identity(spec)[0], size
    tok = Tokenizer(name, append_eos=False)
    return tok.vocab_hash, tok.vocab_size
