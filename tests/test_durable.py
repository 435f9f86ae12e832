"""Durable writes (durable.py): flushed before and after the rename, nothing half-written left behind.

A power loss cannot be produced in a test; what can be checked is that every write is flushed (fsync
of the file, and of the folder after the rename) in that order, and that a failed write leaves the
old file and no temporary. os.fsync is wrapped to record its calls; the files are written for real.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import durable


@pytest.fixture
def synced(monkeypatch):
    """Records (kind, path) of each fsync and each os.replace, in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_a_file_is_flushed_then_renamed_then_its_folder_flushed(tmp_path, synced):
    target = tmp_path / "labels.csv"
    target.write_text("old")
    durable.write_text(target, "new")
    assert target.read_text() == "new"
    kinds = [k for k, _ in synced]
    assert kinds == ["fsync", "replace", "fsync"]
    assert Path(synced[0][1]).parent == tmp_path and synced[0][1] != str(target)  # the temporary file
    assert synced[1][1] == str(target) and synced[2][1] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, synced):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with durable.replacing(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    assert not synced


def test_a_folder_is_flushed_file_by_file_before_it_is_renamed(tmp_path, synced):
    build = tmp_path / "shards.partial"
    (build / "train").mkdir(parents=True)
    (build / "train" / "a.npz").write_bytes(b"a")
    (build / "manifest.json").write_text("{}")
    durable.commit(build, tmp_path / "shards")
    flushed = {Path(p).relative_to(build).as_posix() for k, p in synced[:-2] if k == "fsync"}
    assert flushed == {".", "train", "train/a.npz", "manifest.json"}
    assert synced[-2] == ("replace", str(tmp_path / "shards")) and synced[-1] == ("fsync", str(tmp_path))
    assert (tmp_path / "shards" / "train" / "a.npz").read_bytes() == b"a"


@pytest.mark.parametrize("writer", ["checkpoint", "npz", "ply", "manifest"])
def test_the_pipeline_writers_go_through_it(tmp_path, synced, writer):
    """Checkpoints, shards, meshes and manifests are all flushed before their rename."""
    target = tmp_path / f"out.{writer}"
    if writer == "checkpoint":
        from model.checkpoint import save

        save(target, {"meta": {}, "model": {}})
    elif writer == "npz":
        from pipeline.npzfile import write_npz

        write_npz(target, {"images": np.zeros((2, 3), np.uint8)})
    elif writer == "ply":
        from assets.mesh import Mesh, write_ply

        write_ply(target, Mesh(np.eye(3), np.array([[0, 1, 2]]), np.full((3, 3), 0.5)))
    else:
        from pipeline.shards import Manifest, _write_manifest

        _write_manifest(target, Manifest(1, "faces", (8, 8), 1, ("azimuth",), ("azimuth",), ()))
    assert [k for k, _ in synced] == ["fsync", "replace", "fsync"] and synced[1][1] == str(target)
    assert target.stat().st_size > 0


def test_a_folder_that_cannot_be_put_in_place_leaves_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "shards"
    out.mkdir()
    (out / "manifest.json").write_text("old")
    real = os.replace

    def failing(src, dst):
        if Path(src).name == "shards.partial":
            raise OSError(5, "Input/output error", str(src))
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="Input/output error"):
        with durable.building(out, "manifest.json", lambda o: [], "shard") as tmp:
            (tmp / "manifest.json").write_text("new")
    assert (out / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]  # no .partial, no old copy


def test_a_checkpoint_has_the_same_bytes_whatever_process_writes_it(tmp_path):
    """torch.save names the zip archive inside after the file's stem: a temporary name holding the pid
    would make every checkpoint (and so every model DVC tracks) differ from run to run."""
    import subprocess
    import sys

    code = ("import sys, torch; from model.checkpoint import save; "
            "save(sys.argv[1], {'meta': {'x': 1}, 'model': {'w': torch.arange(4.0)}})")
    root = Path(__file__).resolve().parents[1]
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name / "faces-dcign.pt")], cwd=root, check=True)
    assert (tmp_path / "a" / "faces-dcign.pt").read_bytes() == (tmp_path / "b" / "faces-dcign.pt").read_bytes()
