"""Mixtures: releases and runs blended by weight into the token stream a training run reads (mix spec,
plan, the mixture folder; release/reader.py reads it)."""
