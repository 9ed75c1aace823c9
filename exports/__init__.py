"""Releases and mixtures in the formats training stacks read (tokenmill export)."""
