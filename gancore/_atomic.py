"""Atomic writes of small text files in the run directory (``config.toml``, ``classes.json``,
``init.json``).

A file is written under a temporary name in its own folder, flushed to the disk (``fsync``) and
renamed over the old one: a reader, or the next start after a crash, a full disk or a file-size
limit, sees the old file or the new one, never a file cut short. The folder is synced too, so the
rename itself survives a power cut. A file whose content would not change is not written at all.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from gancore._errors import TrainingError

__all__ = ["atomic_write_text"]


def atomic_write_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically; ``False`` (and no write) when ``path`` already holds
    exactly ``text``.

    A failed write (``OSError``: disk full, file-size limit, permissions) leaves ``path`` as it was,
    removes the temporary file and is a :class:`TrainingError` naming the file.
    """
    path = Path(path)
    data = text.encode()
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:  # a signal during the write too: never leave the temporary file
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise TrainingError(
                f"could not write {str(path)!r} ({exc.strerror or exc}); it is unchanged. Free "
                "disk space or raise the file-size limit, then run the command again"
            ) from None
        raise
    _sync_folder(path.parent)
    return True


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform can open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
