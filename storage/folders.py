"""A folder that appears whole or not at all, for what tokenmill writes into a new folder (a release:
release/publish.py, a mixture: mixing/build.py, an export: exports/run.py, whose build folder is kept across
attempts for resuming, exports/folder.py): the target must be empty (`holds_files`), locally the
folder is built beside it (`build_folder`) and renamed into place (`into_place`), so a reader never sees
half of it; on object storage, where there is no rename, it is written in place and its writer puts the
manifest last, whose presence marks it complete. Moved from the two copies in those modules on 2026-12-07
(issue 35)."""

from __future__ import annotations

import os
import shutil

from storage.files import is_local, match


def holds_files(target: str) -> bool:
    """Whether `target` holds anything: a local folder with entries, or objects under the prefix on a store."""
    local = is_local(target)
    return bool(local and os.path.exists(target) and os.listdir(target) or not local and match(f"{target}/**"))


def build_folder(target: str, kind: str) -> str:
    """Where to write what goes into `target`: locally `<target>.tmp-<kind>` beside it, emptied of what an
    interrupted attempt left; on a store `target` itself."""
    if not is_local(target):
        return target
    build = f"{target}.tmp-{kind}"
    shutil.rmtree(build, ignore_errors=True)
    return build


def into_place(build: str, target: str, read_only: bool = False) -> None:
    """Locally rename `build` (build_folder) to `target`, an empty folder there removed first, and with
    `read_only` make its files read-only; on a store nothing: it was written in place."""
    if not is_local(target):
        return
    if os.path.exists(target):
        os.rmdir(target)
    os.rename(build, target)
    if read_only:
        for root, _dirs, names in os.walk(target):
            for n in names:
                os.chmod(os.path.join(root, n), 0o444)
