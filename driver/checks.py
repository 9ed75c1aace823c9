"""What the recipe names, checked before anything is written: its lists, models and tokenizer are there
(`check_paths`), its tokenizer is one tokenmill knows (`tokenizer_info`), and no path a worker opens is on this
machine's disk when the workers are not (`worker_paths`, `check_worker_paths`). Moved from run_pipeline.py on
2026-12-07 (issue 35)."""

from __future__ import annotations

from typing import Any

from apache_beam.io.filesystems import FileSystems

from driver.errors import UsageError
from jobs.remote import local_path_problem
from schemas.recipe import Recipe, list_paths
from tokenization.tokenizers import describe_tokenizer


def check_paths(recipe: Recipe) -> None:
    """UsageError naming the first list, model or tokenizer path of the recipe that is not there: a filter
    without its list kept every page and said nothing."""
    for key, path in list_paths(recipe):
        if key == "filters.bad_words.lists_dir":
            try:
                lists = FileSystems.match([f"{path.rstrip('/')}/*.txt"])[0].metadata_list
            except Exception:  # noqa: BLE001 - a folder that cannot be listed holds no list
                lists = []
            if not lists:
                raise UsageError(f"{key} = '{path}': no word list (<lang>.txt) there")
        elif not FileSystems.exists(path):
            raise UsageError(f"{key} = '{path}': no such file")


def worker_paths(recipe: Recipe) -> list[tuple[str, str]]:
    """(recipe key, path) of every file or folder of the recipe a worker opens: the filters' lists, the language
    and classifier models and a tokenizer.json (loaded in their steps' DoFn.setup: pipelines/documents.py,
    classify.py, source_parts.py; the driver reads a tokenizer.json too) and the releases of [dedup] against (the
    workers read their dedup index: pipelines/against_releases.read_index_file). Not the benchmark files of
    [decontamination]: only the driver reads them, to build the index it writes into the output's _staging/
    (decontamination_index), which is what the workers open. Nor the recipe file: the driver reads it and the
    workers get the Recipe itself, pickled inside their steps."""
    return [*list_paths(recipe), *(("dedup.against", path) for path in recipe.dedup.against)]


def check_worker_paths(remote: str | None, shared: bool, named: list[tuple[str, str]]) -> None:
    """UsageError for the first of `named` ((flag or recipe key, path)) that the run's workers cannot open:
    a local path when they are `remote` (jobs.remote.remote_workers), unless `shared` (--shared-filesystem)."""
    for what, path in named:
        if problem := local_path_problem(what, path, remote, shared):
            raise UsageError(problem)


def tokenizer_info(recipe: Recipe) -> dict[str, Any]:
    try:
        return describe_tokenizer(recipe.tokenizer.name, recipe.tokenizer.append_eos)
    except ValueError as exc:  # an unknown name, or a tokenizer.json without an end-of-text token
        raise UsageError(f"tokenizer.name = '{recipe.tokenizer.name}': {exc}") from exc
