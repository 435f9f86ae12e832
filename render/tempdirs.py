"""Temporary folders owned by one process, named with its pid so that a later process can remove them
once that process is gone (a killed worker cannot clean up after itself).

Blender, imported as the module bpy, makes a session folder `$TMPDIR/blender_*` at import and again at
every settings reset, and a killed process (a terminated pool worker) never removes it. Every process
that imports bpy does so through `render.scene.import_bpy`, which points TMPDIR into an owned folder.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def owned_folder(prefix: str) -> str:
    """A new folder `<tmp>/<prefix><pid>-*`, after removing those of processes that are gone."""
    remove_orphans(prefix)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=temp_root())


def remove_orphans(prefix: str) -> None:
    for folder in temp_root().glob(f"{prefix}*-*"):
        pid = folder.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def temp_root() -> Path:
    """$TMPDIR as it is now: pool and Ray workers point it into a folder their driver removes, after
    `tempfile` may have cached another."""
    now = os.environ.get("TMPDIR")
    return Path(now) if now and os.path.isdir(now) else Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
