"""The findings history (see docs/store.md): where it lives, and opening it."""

from __future__ import annotations

import os
from pathlib import Path

from outsidein.store.store import (
    OPEN_STATES,
    STATES,
    AuditRecord,
    Diff,
    Store,
    StoredFinding,
    StoreError,
    masked_store_value,
    sort_findings,
    sqlite_url,
)

STATE_DIR = ".outsidein"
STATE_FILE = "state.db"
ENV_STORE = "OUTSIDEIN_STORE"


def default_store_path(scope_file: Path) -> Path:
    """``.outsidein/state.db`` in the scope file's folder: the project's state directory."""
    return scope_file.resolve().parent / STATE_DIR / STATE_FILE


def store_url(explicit: str | None, scope_url: str | None = None, scope_path: Path | None = None,
              scope_file: Path | None = None) -> str | None:
    """The store to use: ``--store`` (a URL or a file), else $OUTSIDEIN_STORE, else the scope's ``[store]``,
    else the default file next to the scope file; None when there is no scope file (the demo) and nothing
    was asked for."""
    chosen = explicit or os.environ.get(ENV_STORE) or scope_url
    if chosen:
        if "://" in chosen:
            return chosen
        if "@" in chosen or "//" in chosen:  # a URL missing its scheme's "://", never a file to create
            raise StoreError(f"{masked_store_value(chosen)}: looks like a URL without scheme:// (it holds "
                             f"{'@' if '@' in chosen else '//'}); give postgresql://USER:PASSWORD@HOST/DATABASE, "
                             "sqlite:///PATH or a plain file path")
        return sqlite_url(Path(chosen).expanduser().resolve())
    if scope_path is not None:
        return sqlite_url(scope_path)
    if scope_file is not None:
        return sqlite_url(default_store_path(scope_file))
    return None


__all__ = ["ENV_STORE", "OPEN_STATES", "STATES", "STATE_DIR", "AuditRecord", "Diff", "Store", "StoreError",
           "StoredFinding", "default_store_path", "sort_findings", "sqlite_url", "store_url"]
