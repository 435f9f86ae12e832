"""Property-based fuzzing of bad input: whatever is wrong with params.yaml or the command line, the CLI
prints one line starting with `error:` on stderr, exits with code 2, shows no traceback, and leaves the
project's files exactly as they were.

Bad parameter files start from the repository's params.yaml and change one or two keys to a value that
config.py must refuse: a wrong type, a number out of its range (negative, zero, NaN, inf, huge), an
unknown key or enum value, a bad [min, max] range, a dataset name that is not a plain folder name, a list
where a mapping belongs, a missing section; or the file itself is bytes, text or YAML that is no
parameters file. The types come from config.py's dataclasses; the ranges below are written out again
from the rules (an independent oracle: a check that goes missing in config.py fails here). Bad command
lines give one option of one command a bad value.

Most cases run the CLI in this process (click's CliRunner runs `main` in standalone mode, as `python
cli.py` does); a few run the real entry point as a subprocess, to show it behaves the same.

CI tries a few hundred cases, always the same ones (derandomized). A long run tries more:
    FUZZ_EXAMPLES=5000 python -m pytest -q tests/test_fuzz.py      # or: python bench/fuzz.py 5000
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import re
import subprocess
import sys
import traceback
import typing
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from config import Params
from tests.render_fixtures import FACTORS, SWEEPS

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "params.yaml").read_text())
DATASETS = list(BASE["datasets"])

COUNTS: Counter[str] = Counter()
"""Cases run per test (shrinking included), read by bench/fuzz.py."""
FAILED: Counter[str] = Counter()


def examples(ci: int, share: int = 1) -> settings:
    """`ci` cases in CI; FUZZ_EXAMPLES=N tries N (a subprocess test N // share: each case is a process)."""
    wanted = int(os.environ.get("FUZZ_EXAMPLES", "0"))
    n = max(ci, wanted // share) if wanted else ci
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------- the project and the check


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project with a valid params.yaml and some outputs of earlier runs, which must all survive."""
    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    for name, data in {"models/faces-vae.txt": b"model", "metrics/faces-dcign.json": b"{}",
                       "picture.png": b"not really a png"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and mtime: a folder's mtime changes when anything is created
    in it or removed from it, so even a temporary file that was cleaned up shows."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in [root, *root.rglob("*")]}


def run_in_process(root: Path, args: list[str]) -> tuple[int, str, str, str]:
    with contextlib.chdir(root):
        result = CliRunner().invoke(cli.main, args)
    # CliRunner catches every exception: anything but SystemExit (sys.exit, click's exit) is a crash.
    crash = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "".join(traceback.format_exception(*result.exc_info))
    return result.exit_code, result.stdout, result.stderr, crash


def run_subprocess(root: Path, args: list[str]) -> tuple[int, str, str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=root, capture_output=True,
                         text=True, errors="backslashreplace", timeout=120, env=env)
    return res.returncode, res.stdout, res.stderr, ""


def assert_refused(name: str, root: Path, args: list[str], run=run_in_process) -> None:
    COUNTS[name] += 1
    before = tree(root)
    code, out, err, crash = run(root, args)
    try:
        assert not crash, f"{args}: crashed\n{crash}"
        assert "Traceback" not in out + err, f"{args}: traceback\n{err}"
        assert code == 2, f"{args}: exit code {code}\nstdout: {out}\nstderr: {err}"
        assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1 and err[7:].strip(), \
            f"{args}: stderr is not one `error:` line: {err!r}"
        assert out == "", f"{args}: printed {out!r} before refusing"
        assert tree(root) == before, f"{args}: files changed: {sorted(set(tree(root).items()) ^ set(before.items()))}"
    except AssertionError:
        FAILED[name] += 1
        raise


# ---------------------------------------------------------------------------- bad parameter files

# What config.py must refuse for each number, written out from its rules (`*` stands for a dataset).
# A strategy draws a value outside the valid range; huge values come from the unbounded sides.
BIG = 10**30
OWNED = sum(BASE["model"]["owned"].values())


def ints_below(n: int):
    return st.integers(max_value=n - 1) | st.integers(-BIG, n - 1)


def floats_below(x: float, inclusive: bool = False):
    """Finite floats < x (or <= x); the filter drops -0.0 below 0.0, which is no less than 0."""
    return st.floats(max_value=x, allow_nan=False, allow_infinity=False).filter(lambda v: v < x or (inclusive and v == x))


def floats_above(x: float):
    return st.floats(min_value=x, allow_nan=False, allow_infinity=False).filter(lambda v: v > x)


def floats_outside(lo: float, hi: float):
    return floats_below(lo) | floats_above(hi)


BOUNDS: dict[str, Any] = {
    "seed": ints_below(0) | st.integers(min_value=2**32),
    "render.size": ints_below(8), "render.samples": ints_below(1), "render.max_bounces": ints_below(0),
    "render.workers": ints_below(0), "render.threads": ints_below(1),
    "datasets.*.meshes.train": ints_below(1), "datasets.*.meshes.test": ints_below(1),
    "datasets.*.steps": ints_below(2), "datasets.*.test_groups": ints_below(1),
    **{f"datasets.*.groups.{s}": ints_below(0) for s in SWEEPS},
    "datasets.*.iid.train": ints_below(0), "datasets.*.iid.test": ints_below(0), "datasets.*.iid.group_size": ints_below(1),
    "datasets.*.camera.distance": floats_below(0.5, inclusive=True), "datasets.*.camera.fov": floats_outside(1, 170),
    "datasets.*.light.elevation": floats_outside(-90, 90), "datasets.*.light.strength": floats_below(0),
    "datasets.*.light.ambient": floats_below(0),
    "shard.max_mb": floats_below(0, inclusive=True),
    "model.latents": ints_below(OWNED + 1), **{f"model.owned.{f}": ints_below(1) for f in FACTORS},
    "train.steps": ints_below(1), "train.warm_start": ints_below(0) | st.integers(min_value=BASE["train"]["steps"]),
    "train.sweeps_per_step": ints_below(1), "train.threads": ints_below(0), "train.image_every": ints_below(1),
    "train.batch_size": ints_below(2), "train.lr": floats_below(0, inclusive=True),
    "train.weight_decay": floats_below(0), "train.beta": floats_below(0), "train.pull": floats_below(0),
    "train.free_bits": floats_below(0), "train.vae_every": ints_below(0), "train.beta_intrinsic": floats_below(0),
    "train.ssim_weight": floats_below(0), "train.view_shift": floats_below(0), "train.view_scale": floats_below(0),
    **{f"train.mix.{s}": floats_below(0) for s in SWEEPS},
    "train.checkpoint_every": ints_below(1), "train.log_every": ints_below(1),
    "evaluate.factor_bins": ints_below(2), "evaluate.votes_train": ints_below(10), "evaluate.votes_eval": ints_below(10),
    "evaluate.mapping_bins": ints_below(2), "evaluate.rerender_sources": ints_below(1),
    "evaluate.traversal_steps": ints_below(2),
}

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def plain_name(name: str) -> bool:
    return bool(SAFE_NAME.fullmatch(name)) and len(name) <= 64


def declared(path: tuple) -> Any:
    """The type config.py declares for the key at `path` (dataset names pass through dicts)."""
    tp: Any = Params
    for key in path:
        tp = typing.get_type_hints(tp)[key] if dataclasses.is_dataclass(tp) else typing.get_args(tp)[1]
    return tp


def walk(tp: Any, raw: Any, path: tuple = ()) -> tuple[list[tuple], list[tuple]]:
    """(leaf paths, section paths) of the schema, with the datasets of the repository's params.yaml."""
    if dataclasses.is_dataclass(tp):
        leaves, sections = [], [path]
        for f in dataclasses.fields(tp):
            if f.name == "name":  # a dataset's name comes from its key; this key is overwritten
                continue
            sub = typing.get_type_hints(tp)[f.name]
            more = walk(sub, (raw or {}).get(f.name), path + (f.name,))
            leaves += more[0]
            sections += more[1]
        return leaves, sections
    if typing.get_origin(tp) is dict:
        vt = typing.get_args(tp)[1]
        if dataclasses.is_dataclass(vt):  # datasets
            out = ([], [path])
            for name in raw:
                more = walk(vt, raw[name], path + (name,))
                out[0].extend(more[0])
                out[1].extend(more[1])
            return out
        return [path + (k,) for k in raw], [path]  # ranges, groups, owned, mix: a leaf per key
    return [path], []


LEAVES, SECTIONS = walk(Params, BASE)
MAPPINGS = [p for p in SECTIONS if p]  # every section but the whole file; dict-valued keys included

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-BIG, BIG), st.floats(), st.text(max_size=12))
JUNK = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=6), SCALARS, max_size=2))


def generic(path: tuple) -> str:
    return ".".join("*" if (len(path) > 1 and path[0] == "datasets" and i == 1) else str(k) for i, k in enumerate(path))


def wrong_type(path: tuple):
    """A value of the wrong type for the key's declared type (or, for a range, a bad pair)."""
    tp = declared(path)
    origin = typing.get_origin(tp)
    if tp is int:
        wrong = JUNK.filter(lambda v: type(v) is not int)  # floats too: 2.0 is no integer setting
    elif tp is float:
        wrong = JUNK.filter(lambda v: type(v) not in (int, float) or not math.isfinite(v)) | st.sampled_from(
            [math.nan, math.inf, -math.inf, 10**400, -(10**400)])
    elif tp is bool:
        wrong = JUNK.filter(lambda v: type(v) is not bool)
    elif tp is str:
        wrong = JUNK.filter(lambda v: type(v) is not str)
        if path[-1] == "address":  # HOST:PORT or empty
            wrong |= st.text(min_size=1, max_size=20).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_.-]+:[0-9]{1,5}", s)) \
                | st.integers(65536, 99999).map(lambda p: f"head:{p}") | st.just("head:0")
    elif origin is Literal:
        choices = typing.get_args(tp)
        wrong = JUNK.filter(lambda v: not any(v == c and type(v) is type(c) for c in choices)) \
            | st.sampled_from([c.upper() for c in choices if c.upper() != c] or ["?"])
    elif origin is tuple and typing.get_args(tp)[-1:] == (Ellipsis,):  # render.passes: names, each once
        names = typing.get_args(typing.get_args(tp)[0])
        wrong = JUNK.filter(lambda v: not isinstance(v, list) or any(x not in names for x in v)) \
            | st.sampled_from(names).map(lambda n: [n, n])
    elif origin is tuple:  # a [min, max] range or the Adam betas
        number = st.floats(allow_nan=False, allow_infinity=False)
        wrong = JUNK.filter(lambda v: not isinstance(v, list) or len(v) != 2) \
            | st.lists(number, min_size=0, max_size=4).filter(lambda v: len(v) != 2) \
            | st.tuples(number, JUNK.filter(lambda v: type(v) not in (int, float))).map(list) \
            | st.tuples(number, st.sampled_from([math.nan, math.inf, -math.inf])).map(list)
        if path[-1] == "betas":
            wrong |= st.tuples(floats_below(0) | st.floats(1, 1e300), st.floats(0, 0.9)).map(list)
        else:  # min >= max, or beyond a full turn either way
            wrong |= st.floats(-360, 360).flatmap(lambda lo: st.tuples(st.just(lo), st.floats(-360, lo)).map(list)) \
                | st.tuples(floats_below(-360), st.floats(-360, 360)).map(list) \
                | st.tuples(st.floats(-360, 360), floats_above(360)).map(list)
    else:
        raise AssertionError(f"no strategy for {path}: {tp}")
    return wrong


def set_key(raw: dict, path: tuple, value: Any) -> None:
    node = raw
    for key in path[:-1]:
        if not isinstance(node, dict):
            return  # an earlier change replaced a parent; that change alone makes the file bad
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value


def delete_key(raw: dict, path: tuple) -> None:
    node = raw
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def valid_keys(path: tuple) -> set:
    tp = declared(path)
    if dataclasses.is_dataclass(tp):
        return {f.name for f in dataclasses.fields(tp)}
    return set(FACTORS if path[-1] == "ranges" or path[-1] == "owned" else SWEEPS)


bad_name = st.sampled_from(["", ".", "..", "../../x", "/tmp/x", "a/b", ".hidden", "-x", "_x", "x y", "x\ny", "x" * 65,
                            "C:\\x", "é"]) | st.text(max_size=70).filter(lambda s: not plain_name(s))

BOUNDED = [p for p in LEAVES if generic(p) in BOUNDS]
out_of_range = st.sampled_from(BOUNDED).flatmap(lambda p: BOUNDS[generic(p)].map(lambda v: ("set", p, v)))
of_wrong_type = st.sampled_from(LEAVES).flatmap(lambda p: wrong_type(p).map(lambda v: ("set", p, v)))

# One change to the parsed file; each alone makes it invalid, and none undoes another. Values out of
# range and of the wrong type are drawn more often than the changes of structure below them.
change = st.one_of(
    out_of_range, out_of_range, out_of_range, of_wrong_type, of_wrong_type,
    st.sampled_from(MAPPINGS).flatmap(lambda p: st.text(min_size=1, max_size=12).filter(
        lambda k: k not in valid_keys(p)).map(lambda k: ("set", p + (k,), 1))),  # an unknown key
    st.sampled_from(MAPPINGS).flatmap(lambda p: JUNK.filter(lambda v: not isinstance(v, dict)).map(
        lambda v: ("set", p, v))),  # a list or scalar where a mapping belongs
    st.sampled_from([p for p in LEAVES if len(p) > 1 and p[-2] in ("ranges", "groups", "owned", "mix")]).map(
        lambda p: ("delete", p)),  # a factor left out of ranges, groups, owned or mix
    st.sampled_from([("datasets",), *[("datasets", d, k) for d in DATASETS for k in ("ranges", "groups")]]).map(
        lambda p: ("delete", p) if len(p) > 1 else ("set", p, {})),  # no datasets, no ranges, no groups
    st.tuples(st.sampled_from(DATASETS), bad_name).map(lambda t: ("rename", t[0], t[1])),
    st.sampled_from(DATASETS).flatmap(lambda d: st.sampled_from([  # a folder source without a path, or sideways
        {"kind": "folder"}, *[{"kind": "folder", "path": "meshes", "up_axis": a, "forward_axis": "-" + a} for a in "XYZ"]
    ]).map(lambda source: ("source", d, source))),
)


def apply(raw: dict, edit: tuple) -> None:
    kind = edit[0]
    if kind == "set":
        set_key(raw, edit[1], edit[2])
    elif kind == "delete":
        delete_key(raw, edit[1])
    elif kind == "rename" and isinstance(raw.get("datasets"), dict) and edit[1] in raw["datasets"]:
        raw["datasets"][edit[2]] = raw["datasets"].pop(edit[1])
    elif kind == "source":
        set_key(raw, ("datasets", edit[1], "source"), edit[2])


bad_yaml = st.lists(change, min_size=1, max_size=2).map(lambda edits: _edited(edits))


def _edited(edits: list[tuple]) -> bytes:
    raw = copy.deepcopy(BASE)
    for edit in edits:
        apply(raw, edit)
    return yaml.safe_dump(raw, allow_unicode=True).encode()


# Files that are no parameters file at all: raw bytes, text, YAML of a scalar or list, broken YAML.
bad_file = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    JUNK.filter(lambda v: not isinstance(v, dict)).map(lambda v: yaml.safe_dump(v).encode()),
    st.sampled_from([b"render: {size: 64\n", b"a: [1, 2\n", b"\t- x\n", b"seed: 2001-13-45\n", b"1: 2\nx: 3\n",
                     b"!!python/object:os.system {}\n", b"- " * 40 + b"x\n", b"[" * 2000 + b"]" * 2000,
                     b"\xef\xbb\xbfrender: 1\n", b"\x00"]),
)


def test_every_bound_names_a_setting():
    assert sorted(BOUNDS) == sorted({generic(p) for p in BOUNDED})


CHEAP = ["assets", "--count", "1", "--out", "out"]
"""A command that loads the parameters first; a refused file must stop it before any mesh is written."""


@examples(ci=300)
@given(text=bad_yaml)
def test_bad_params_are_refused_in_one_line(project, text):
    (project / "case.yaml").write_bytes(text)
    assert_refused("params", project, ["--params", "case.yaml", *CHEAP])


@examples(ci=100)
@given(text=bad_file)
def test_files_that_are_no_params_are_refused_in_one_line(project, text):
    (project / "case.yaml").write_bytes(text)
    assert_refused("files", project, ["--params", "case.yaml", *CHEAP])


# ---------------------------------------------------------------------------- bad command lines

printable = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=16)
"""What a shell can pass: no NUL, no surrogates; no control characters either (see `free_text`)."""
free_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=16)
"""Free text for --model and --values, newlines and other control characters included (the messages
quote them with repr, so they stay one line); no NUL, which no shell can pass."""


def _parses_as(kind):
    def refused(s: str) -> bool:
        """True when `kind(s)` raises: a value the option must refuse."""
        try:
            kind(s)
            return False
        except ValueError:
            return True
    return refused


not_int, not_float = _parses_as(int), _parses_as(float)


def ints(below: int):
    """A bad integer option value: too small, huge negative, or no integer at all."""
    return ints_below(below).map(str) | printable.filter(not_int) | st.sampled_from(["1.5", "1e3", "0x10", ""])


seed = st.one_of(ints(0), st.integers(min_value=2**32).map(str))
dataset = bad_name.filter(lambda s: "\x00" not in s and s != "all") | st.sampled_from(["cars", "Faces", "faces "])
number = st.floats(-360, 360).map(repr)
bad_range = st.one_of(
    st.floats(-360, 360).flatmap(lambda lo: st.tuples(st.just(repr(lo)), st.floats(-360, lo).map(repr))),
    st.tuples(st.sampled_from(["nan", "inf", "-inf", "1e999"]), number),
    st.tuples(number, st.sampled_from(["nan", "inf", "-inf", "1e999"])),
    st.tuples(floats_below(-360).map(repr), number),
    st.tuples(number, printable.filter(not_float)),
).map(list)

# (base command line that is valid, the option and its bad values); each case changes one option.
COMMANDS: list[tuple[list[str], dict[str, Any]]] = [
    (["assets", "--count", "1", "--out", "out"], {
        "--seed": seed, "--count": ints(1), "--dataset": dataset,
        "--out": st.sampled_from(["picture.png", "models/faces-vae.txt"])}),  # a file, not a folder
    (["render", "--factor", "light", "--out", "out"], {
        "--factor": printable.filter(lambda s: s not in ("azimuth", "elevation", "light", "intrinsic", "iid")),
        "--groups": ints(0), "--steps": ints(2), "--range": bad_range, "--size": ints(8), "--samples": ints(1),
        "--workers": ints(0), "--executor": printable.filter(lambda s: s not in ("local", "ray")),
        "--address": printable, "--seed": seed, "--dataset": dataset,
        "--out": st.just("picture.png")}),
    (["render", "--factor", "intrinsic", "--out", "out"], {"--range": st.tuples(number, number).map(list)}),
    (["shard", "--out", "out"], {"--dataset": dataset}),
    (["train", "--dataset", "faces", "--model", "dcign"], {
        "--model": free_text.filter(lambda s: s not in ("dcign", "vae")), "--steps": ints(1), "--seed": seed,
        "--nproc": ints(1), "--dataset": dataset, "--out": st.just("models"), "--shards": st.just("picture.png")}),
    (["evaluate", "--dataset", "faces", "--model", "dcign"], {
        "--dataset": dataset, "--model": free_text.filter(lambda s: s not in ("dcign", "vae")),
        "--checkpoint": st.sampled_from(["missing.pt", "picture.png"])}),
    (["report", "--dataset", "faces"], {"--dataset": dataset}),
    (["rerender", "picture.png", "--model", "missing.pt", "--factor", "azimuth", "--values", "0", "--out", "x.png"], {
        "--factor": printable.filter(lambda s: s not in FACTORS),
        "--values": free_text.filter(not_float) | st.sampled_from(["nan", "inf", "-inf", "1e999"]),
        "--model": st.sampled_from(["missing.pt", "picture.png", "models"])}),
]


def with_option(base: list[str], option: str, value: str | list[str]) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if option in base:
        i = base.index(option)
        return base[:i + 1] + values + base[i + 2:]
    return [*base, option, *values]


bad_option = st.sampled_from([(base, opt, values) for base, options in COMMANDS for opt, values in options.items()]
                             ).flatmap(lambda c: c[2].map(lambda v: with_option(c[0], c[1], v)))
OPTIONS = {o for c in cli.main.commands.values() for p in c.params for o in p.opts} | {"--params", "--help", "--"}
bad_usage = st.one_of(  # what click itself refuses: an unknown command or option, a missing value or option
    st.sampled_from([["nosuch"], ["render"], ["train", "--dataset", "faces"], ["render", "--factor"],
                     ["render", "--factor", "light", "--range", "1"], ["assets", "--bogus"], ["assets", "extra"],
                     ["--params", "missing.yaml", "assets"], ["--params", "models", "assets"]]),
    st.tuples(st.sampled_from([c[0] for c in COMMANDS]), printable.map(lambda s: "--" + s.lstrip("-"))).filter(
        lambda t: t[1] not in OPTIONS).map(lambda t: [*t[0], t[1]]),
)
command_line = st.one_of(bad_option, bad_option, bad_option, bad_usage)


@examples(ci=300)
@given(args=command_line)
def test_bad_command_lines_are_refused_in_one_line(project, args):
    assert_refused("options", project, ["--params", "params.yaml", *args])


# ---------------------------------------------------------------------------- the real entry point


@examples(ci=10, share=25)
@given(text=bad_yaml | bad_file)
def test_the_real_entry_point_refuses_bad_params_the_same_way(project, text):
    (project / "case.yaml").write_bytes(text)
    assert_refused("params (process)", project, ["--params", "case.yaml", *CHEAP], run=run_subprocess)


@examples(ci=10, share=25)
@given(args=command_line)
def test_the_real_entry_point_refuses_bad_command_lines_the_same_way(project, args):
    assert_refused("options (process)", project, ["--params", "params.yaml", *args], run=run_subprocess)


def _writes(root: Path, args: list[str]):
    (root / "made").mkdir()
    (root / "made" / "x").write_text("x")
    (root / "made" / "x").unlink()
    (root / "made").rmdir()  # gone again: only the project folder's mtime tells
    return 2, "", "error: refused\n", ""


@pytest.mark.parametrize("run, words", [
    (_writes, "files changed"),
    (lambda root, args: (2, "", "error: refused\nmore\n", ""), "not one `error:` line"),
    (lambda root, args: (2, "", "Error: refused\n", ""), "not one `error:` line"),
    (lambda root, args: (1, "", "error: refused\n", ""), "exit code 1"),
    (lambda root, args: (2, "", "error: x\nTraceback (most recent call last):\n", ""), "traceback"),
    (lambda root, args: (2, "3 meshes\n", "error: refused\n", ""), "printed"),
])
def test_the_check_can_fail(project, run, words):
    """The oracle is not vacuous: each broken promise is caught."""
    with pytest.raises(AssertionError, match=words):
        assert_refused("self-test", project, [], run=run)
