"""Blender's session folders: a process that imports bpy leaves nothing in the temp folder, even when it
is killed (its folder goes with the next import), so test runs and terminated pool workers do not litter
/tmp with empty `blender_*` folders."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from render.tempdirs import owned_folder, remove_orphans

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_folders_of_gone_processes_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    gone = tmp_path / f"x-{_dead_pid()}-abc"
    gone.mkdir()
    (gone / "blender_1").mkdir()
    mine = Path(owned_folder("x-"))
    assert mine.parent == tmp_path and mine.name.startswith(f"x-{os.getpid()}-")
    assert not gone.exists()  # removed by owned_folder
    other = tmp_path / "y-1-keep"  # another prefix
    other.mkdir()
    remove_orphans("x-")
    assert mine.is_dir() and other.is_dir()


def _import_bpy_in_a_child(tmp: Path, killed: bool) -> None:
    code = ("from render.scene import import_bpy; bpy = import_bpy(); "
            "bpy.ops.wm.read_factory_settings(use_empty=True)")  # as a Scene does: a new session folder
    if killed:
        code += "; import os; os._exit(0)"  # as a terminated pool worker: no exit handlers run
    env = {**os.environ, "TMPDIR": str(tmp)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=300)


def test_importing_blender_leaves_no_session_folder_even_after_a_kill(tmp_path):
    _import_bpy_in_a_child(tmp_path, killed=True)
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith("dcign-bpy-")  # Blender's folder is inside ours
    assert [p.name[:8] for p in left[0].iterdir()] == ["blender_"]
    _import_bpy_in_a_child(tmp_path, killed=False)
    assert list(tmp_path.iterdir()) == []
