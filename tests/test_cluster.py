"""The Ray executor on a real two-node Ray cluster on loopback (a head and a second node process).

Needs the optional Ray install (`make setup-ray`; `make test` installs it). Each node offers one CPU,
so the two render actors land on different nodes.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.render_fixtures import make_project, raw_params
from tests.test_render import cli, folder_bytes, labels

ray = pytest.importorskip("ray", reason="Ray is optional: `make setup-ray` installs it")
pytestmark = pytest.mark.blender
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_nodes(address: str, count: int, proc: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = subprocess.run([RAY, "status", "--address", address], capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.count(" node_") >= count:
            return
        assert all(p.poll() is None for p in proc), "a Ray node process exited while starting"
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not reach {count} nodes")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """HOST:PORT of a head plus one more node, each `ray start --block` in its own process group."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    common = ["--block", "--num-cpus", "1", "--num-gpus", "0", "--node-ip-address", "127.0.0.1"]
    log = tmp_path_factory.mktemp("ray-logs")
    nodes = []
    try:
        for i, args in enumerate((["--head", "--port", str(port), "--include-dashboard", "false"],
                                  ["--address", address])):
            nodes.append(subprocess.Popen([RAY, "start", *args, *common], env=env, start_new_session=True,
                                          stdout=open(log / f"node{i}.out", "w"), stderr=subprocess.STDOUT))
            wait_for_nodes(address, i + 1, nodes)
        yield address
    finally:
        for node in reversed(nodes):  # `--block` ends its node's raylet and workers on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-project")
    make_project(root)
    return root


@pytest.fixture(scope="module")
def local_light(project):
    res = cli(project, "render", "--factor", "light", "--out", "local")
    assert res.returncode == 0, res.stderr
    return project / "local"


def test_two_node_render_is_byte_identical_to_the_local_executor(cluster, project, local_light):
    res = cli(project, "render", "--factor", "light", "--executor", "ray", "--address", cluster, "--out", "ray")
    assert res.returncode == 0, res.stderr
    assert folder_bytes(project / "ray") == folder_bytes(local_light)
    assert not list((project / "ray").rglob("*.tmp"))


def test_params_yaml_selects_the_ray_executor(cluster, project, local_light):
    raw = raw_params(executor="ray", address=cluster)
    (project / "ray.yaml").write_text(yaml.safe_dump(raw))
    res = cli(project, "--params", "ray.yaml", "render", "--factor", "light", "--out", "ray-params")
    assert res.returncode == 0, res.stderr
    assert folder_bytes(project / "ray-params") == folder_bytes(local_light)


def render_actor_pids() -> set[int]:
    res = subprocess.run(["pgrep", "-f", "ray::RenderWorker"], capture_output=True, text=True)
    return {int(p) for p in res.stdout.split()}


def test_killed_worker_sweep_is_retried_and_the_render_finishes(cluster, project):
    args = ["render", "--factor", "azimuth", "--groups", "6", "--steps", "6"]
    ref = cli(project, *args, "--out", "kill-local")
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parents[1] / "cli.py"), *args,
                             "--executor", "ray", "--address", cluster, "--out", "kill-ray"],
                            cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = project / "kill-ray"
    deadline = time.monotonic() + 180
    # Kill one actor once the first sweep is written: it is busy with its next sweep by then.
    while not list(out.glob("train/*.png")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    victims = render_actor_pids()
    assert victims and proc.poll() is None, "the render finished or failed before a worker could be killed"
    os.kill(min(victims), signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "died during sweep" in err and "rendering it again elsewhere" in err, err
    assert folder_bytes(out) == folder_bytes(project / "kill-local")  # nothing duplicated or half-written
    assert len(labels(out)) == 6 * 6 + 6  # 6 train sweeps + 1 test sweep of 6 steps


def test_unreachable_cluster_is_a_one_line_error_before_any_write(project):
    res = cli(project, "render", "--factor", "light", "--executor", "ray", "--address",
              f"127.0.0.1:{free_port()}", "--out", "nowhere")
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "no Ray cluster answers at" in res.stderr, res.stderr
    assert not (project / "nowhere").exists()
