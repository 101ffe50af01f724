"""Writes that a crash (kill -9, power loss, a full disk) never leaves half done: readers see the old file or
folder or the complete new one. Each writes a temp name beside the target, fsyncs it, renames it over the target
and fsyncs the folder, so the rename itself survives a power loss."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_MARK = ".tmp"  # temp files are ".<name>.tmp<pid>"; ``remove_stale_temps`` clears those a killed writer left


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make the renames inside ``folder`` durable."""
    _fsync_path(Path(folder))


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``with atomic_file(p) as f: f.write(...)``: ``p`` appears only once the block finished without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            yield handle
        replace_file(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_file(new: Path, target: Path) -> None:
    """fsync file ``new``, rename it over ``target`` and fsync the folder."""
    _fsync_path(new)
    os.replace(new, target)
    fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes to ``path`` atomically."""
    with atomic_file(path) as handle:
        handle.write(data)


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files of writes that were killed in ``folder``; returns them."""
    stale = [p for p in Path(folder).glob(f".*{TEMP_MARK}*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def current_umask() -> int:
    """The process's umask: from ``/proc/self/status`` where Linux gives it (no window in which other threads would
    create files with another one), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def respect_umask(path: str | os.PathLike[str]) -> None:
    """Give ``path`` (and, for a folder, everything in it) the mode a plain ``open`` / ``mkdir`` would have: temp
    files and folders (``mkstemp``, ``mkdtemp``) are private (0600 / 0700), so a teammate could not read an export
    renamed into place from one."""
    mask = current_umask()
    path = Path(path)
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if not item.is_symlink():
            os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)


def replace_folder(new: Path, target: Path) -> None:
    """Move folder ``new`` to ``target`` (replacing it) by renames: ``target`` is always either the old or the new
    folder, never a mix; a crash in between leaves the old one at ``.<name>.old``. Modes follow the umask
    (``respect_umask``); everything in ``new`` is fsynced first, the parent directory after."""
    respect_umask(new)
    for path in sorted(new.rglob("*"), reverse=True):  # files before the folders holding them
        _fsync_path(path)
    fsync_dir(new)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.is_dir():
        os.replace(target, old)
    elif target.exists():
        target.unlink()
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
    fsync_dir(target.parent)
