"""Files that are either complete or absent: write to a temporary sibling, rename over the target.

Used by every step that writes results (download, synth, prepare, train), so a killed process never
leaves a half-written file under its final name.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | os.PathLike):
    """Yield a temporary path beside `path` (same suffix); rename it to `path` if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with replacing(path) as tmp:
        Path(tmp).write_text(text)
