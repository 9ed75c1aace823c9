"""LLM tokenizers, loaded offline: tiktoken encodings built from bpe-openai's shipped ranks, or HF JSON."""
