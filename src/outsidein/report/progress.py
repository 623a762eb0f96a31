"""Progress while evidence is collected: one status line per source, on stderr, only when it is a terminal.

Silent in tests, pipes and CI logs. Thread-safe: each source runs in its own collector thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

T = TypeVar("T")

_lock = threading.Lock()
_active: CollectionProgress | None = None


class CollectionProgress:
    """``collecting hosts (2 targets, layer 2)…`` → ``hosts (2 targets, layer 2): done (2.1 s)``."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress: Progress | None = None
        if console is not None:
            self._progress = Progress(SpinnerColumn(finished_text="[green]✓[/]"),
                                      TextColumn("{task.description}"), console=console, transient=False)

    @property
    def enabled(self) -> bool:
        return self._progress is not None

    def start(self) -> None:
        if self._progress is not None:
            self._progress.start()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    def track(self, name: str, fn: Callable[..., T], targets: int, unit: str = "target",
              layers: str = "") -> Callable[..., T]:
        """``fn`` wrapped to show a status line while it runs; unchanged when silent or nothing is in scope."""
        progress = self._progress
        if progress is None or targets <= 0:
            return fn
        label = f"{name} ({targets} {unit}{'s' if targets != 1 else ''}{', ' + layers if layers else ''})"

        def run(*args: Any, **kwargs: Any) -> T:
            task: TaskID = progress.add_task(f"collecting {label}…", total=1)
            started = time.monotonic()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                progress.update(task, description=f"[red]{label}: failed[/] ({time.monotonic() - started:.1f} s)")
                progress.stop_task(task)
                raise
            progress.update(task, completed=1,
                            description=f"{label}: done ({time.monotonic() - started:.1f} s)")
            return result

        return run


@contextmanager
def collection_progress(enabled: bool | None = None) -> Iterator[CollectionProgress]:
    """The progress display for one audit; nested uses share the outer one. ``enabled`` defaults to whether
    stderr is a terminal."""
    global _active
    with _lock:
        outer = _active
    if outer is not None:
        yield outer
        return
    if enabled is None:
        enabled = sys.stderr.isatty()
    progress = CollectionProgress(Console(stderr=True) if enabled else None)
    with _lock:
        _active = progress
    progress.start()
    try:
        yield progress
    finally:
        progress.stop()
        with _lock:
            _active = None
