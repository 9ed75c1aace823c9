"""Tokenizers that turn document text into uint32 token ids, with the end-of-text token appended.

cl100k_base / o200k_base: the BPE ranks, pattern and special tokens ship inside the bpe-openai package
(standard .tiktoken files); tiktoken's Rust encoder does the encoding. Nothing is downloaded.
Any other name is a path to a Hugging Face tokenizer.json, encoded with the `tokenizers` library.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np

BPE_ENCODINGS = ("cl100k_base", "o200k_base")


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
        elif os.path.isfile(name):
            self._init_hf(name)
        else:
            raise ValueError(
                f"tokenizer '{name}' is neither one of {', '.join(BPE_ENCODINGS)} nor a tokenizer.json path"
            )

    def _init_bpe(self, name: str) -> None:
        import tiktoken
        from bpe_openai import registry

        spec = getattr(registry, name)()
        self._tiktoken = tiktoken.Encoding(
            name=spec["name"],
            pat_str=spec["pat_str"],
            mergeable_ranks=spec["mergeable_ranks"],
            special_tokens=spec["special_tokens"],
        )
        self.eos_id = spec["special_tokens"]["<|endoftext|>"]
        digest = hashlib.sha256()
        for token, rank in sorted(spec["mergeable_ranks"].items(), key=lambda kv: kv[1]):
            digest.update(token + b"\x00" + str(rank).encode() + b"\n")
        self.vocab_hash = digest.hexdigest()
        self._hf = None

    def _init_hf(self, path: str) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self._hf = HFTokenizer.from_file(path)
        self._tiktoken = None
        eos = None
        for candidate in ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]"):
            eos = self._hf.token_to_id(candidate)
            if eos is not None:
                break
        if eos is None and self.append_eos:
            raise ValueError(f"{path}: no end-of-text token found (tried <|endoftext|>, </s>, <eos>, ...)")
        self.eos_id = eos if eos is not None else -1
        with open(path, "rb") as f:
            self.vocab_hash = hashlib.sha256(f.read()).hexdigest()

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

    def decode(self, tokens: Sequence[int]) -> str:
        if self._tiktoken is not None:
            return self._tiktoken.decode(list(tokens))
        return self._hf.decode(list(tokens), skip_special_tokens=False)
