"""The releases of [dedup] against, each checked by the driver before anything is written, from its manifest
alone (release/against.py: open_against). Moved from run_pipeline.py on 2026-12-07 (issue 35)."""

from __future__ import annotations

from typing import Any

from driver.errors import UsageError
from schemas.recipe import Recipe


def releases_against(recipe: Recipe, tokenizer: dict[str, Any]) -> list[dict[str, Any]]:
    """The releases of [dedup] against, each checked before anything is written (release/against.py): one line
    naming the release and what is wrong, exit 2."""
    from release.against import AgainstError, open_against

    try:
        return [open_against(path, recipe, tokenizer) for path in recipe.dedup.against]
    except AgainstError as exc:
        raise UsageError(str(exc)) from exc
