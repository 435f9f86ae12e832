"""Durable writes of finished artifacts: the old file or the new one, after a kill or a power loss.

Every artifact a stage finishes (checkpoints, shards, manifests, labels.csv, meshes, metrics, figures)
is written under a temporary name in its own folder, flushed to disk (fsync), renamed over its final
name, and the folder is flushed too, so the rename itself survives a power loss. A killed process
leaves only a temporary file, which is removed on failure or by the next run; readers never see half
a file. Folders built whole (a mesh catalog, a shard set) are built in `<out>.partial`, flushed file
by file and renamed into place the same way (`building`, `commit`); a folder is only ever replaced
when it is provably ours (its marker file, and nothing in it the marker does not list).

Rendered PNGs are the exception: a render set is tens of thousands of small files, and resume checks
every PNG for completeness instead (`render.runner`), so a power loss costs re-rendering a few frames.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

from config import UserError


def disk_full(err: BaseException) -> bool:
    """Whether `err` is the disk (or the user's quota) running out of space."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


TEMPORARY = ".*.tmp-*"
"""Glob of the temporary files `replacing` writes (`.<name>.tmp-<pid>`): what a killed process leaves."""


@contextlib.contextmanager
def replacing(path: Path | str, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds, flush it (unless not `sync`) and
    rename it to `path`. On an exception the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # `.<name>.tmp-<pid>`: torch.save names its archive after the file's stem, so the stem of the temporary
    # name must not hold the pid (it is `.<name>`): the same state gives the same bytes in any process.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        if sync:
            commit(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path | str, data: bytes, sync: bool = True) -> None:
    """`data` to `path` through `replacing`. `sync=False` skips the flushes (rendered PNGs: see above), so
    readers still never see half a file, but a power loss may leave a short one, which resume re-renders."""
    with replacing(path, sync) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path | str, text: str) -> None:
    write_bytes(path, text.encode())


def commit(tmp: Path | str, path: Path | str) -> None:
    """Flush `tmp` (a file, or a folder and everything in it) and rename it to `path` (a file is
    replaced; a folder must not exist), then flush the parent folder that records the rename."""
    tmp, path = Path(tmp), Path(path)
    flush(tmp)
    os.replace(tmp, path)
    _fsync(path.parent)


def flush(path: Path | str) -> None:
    """fsync a file, or a folder with every file and folder in it."""
    path = Path(path)
    if path.is_dir():
        for folder, _, files in os.walk(path):
            for name in files:
                _fsync(Path(folder) / name)
            _fsync(Path(folder))
    else:
        _fsync(path)


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------ folders built whole

PARTIAL_MARK = ".dcign-partial"
"""Marker file of a folder being built (`<out>.partial`): proof that a leftover one is ours to remove."""


class FolderError(UserError):
    """An output folder holds something this project did not make: refused, never deleted."""


def check_replaceable(out: Path, marker: str, listed: Callable[[Path], Iterable[str]], made_by: str) -> None:
    """Refuse (one line) to replace `out` unless it is missing, empty, or a folder `made_by` made (it has
    `marker`) holding only files its marker lists, and unless a leftover `<out>.partial` is ours too."""
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not (partial / PARTIAL_MARK).is_file():
        raise FolderError(f"{partial} exists and was not made by `{made_by}`; move it away or remove it")
    _check_out(out, marker, listed, made_by)


def _check_out(out: Path, marker: str, listed: Callable[[Path], Iterable[str]], made_by: str) -> None:
    if not out.exists():
        return
    if not out.is_dir() or (any(out.iterdir()) and not (out / marker).is_file()):
        raise FolderError(f"{out} exists and was not made by `{made_by}` (no {marker}); choose an empty or new "
                          "--out folder")
    if (out / marker).is_file():
        try:
            known = {marker, *listed(out)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            known = None  # an unreadable marker: whatever the folder holds is not provably ours
        foreign = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                         if p.is_file() and (known is None or p.relative_to(out).as_posix() not in known))
        if foreign:
            raise FolderError(f"{out} holds {len(foreign)} files its {marker} does not list (e.g. {foreign[0]}); "
                              f"move them out of the folder, `{made_by}` replaces it as a whole")


@contextlib.contextmanager
def building(out: Path | str, marker: str, listed: Callable[[Path], Iterable[str]], made_by: str) -> Iterator[Path]:
    """Yield an empty `<out>.partial` folder to build `out` in; on success it replaces `out` whole
    (flushed, `commit`), on failure or a kill it is removed. `check_replaceable` guards both folders."""
    out = Path(out)
    check_replaceable(out, marker, listed, made_by)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / PARTIAL_MARK).touch()
    try:
        yield tmp
        (tmp / PARTIAL_MARK).unlink()
        _check_out(out, marker, listed, made_by)  # again: files may have been added meanwhile
        flush(tmp)  # a full disk or an I/O error fails here, with `out` untouched
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, out: Path) -> None:
    """Put the flushed folder `new` in place of `out`; the old `out` is deleted only once `new` is there."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}") if out.exists() else None
    if old is not None:
        os.replace(out, old)
    try:
        os.replace(new, out)
        _fsync(out.parent)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old)
