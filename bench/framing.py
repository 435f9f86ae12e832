"""Figure: heads made elsewhere with `source.framing: object` and `head`, beside a generated head.

    .venv/bin/python bench/framing.py [--folder examples/heads] [--out docs/head-framing.png]

Builds the folder's meshes both ways (`python cli.py assets --preview`, the contact sheet's 3/4 view)
and one generated head, and tiles them: top row whole-object framing, bottom row head framing, the
generated head at the right of the bottom row. Everything else goes under a temporary folder.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def sheet(work: Path, name: str, source: dict, count: dict) -> np.ndarray:
    import cv2

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    ds = raw["datasets"]["faces"]
    ds.update(source=source, meshes=count)
    raw["datasets"] = {name: ds}
    (work / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "--params", f"{name}.yaml", "assets", "--dataset", name,
                    "--out", f"m-{name}", "--preview", f"{name}.png"], cwd=work, check=True, capture_output=True)
    return cv2.imread(str(work / f"{name}.png"))


def main() -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=ROOT / "examples" / "heads")
    ap.add_argument("--up", default="Y")
    ap.add_argument("--forward", default="Z")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "head-framing.png")
    args = ap.parse_args()
    n = sum(1 for p in args.folder.iterdir() if p.suffix.lower() in (".obj", ".ply", ".gltf", ".glb"))
    counts = {"train": max(1, n - 1), "test": 1}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = {"kind": "folder", "path": str(args.folder.resolve()), "up_axis": args.up, "forward_axis": args.forward}
        rows = [sheet(work, f"framing-{f}", {**folder, "framing": f}, counts) for f in ("object", "head")]
        generated = sheet(work, "generated", {"kind": "generator", "generator": "faces"}, {"train": 1, "test": 1})
    cell = generated.shape[0]
    first = rows[0][:cell, : n * cell]  # one row of n cells (a sheet is at least 3 cells wide)
    second = rows[1][:cell, : n * cell]
    top = np.hstack([first, np.zeros((cell, cell, 3), np.uint8)])
    bottom = np.hstack([second, generated[:cell, :cell]])
    cv2.imwrite(str(args.out), np.vstack([top, bottom]))
    print(f"{args.out}: top framing: object, bottom framing: head, last cell a generated head")


if __name__ == "__main__":
    main()
