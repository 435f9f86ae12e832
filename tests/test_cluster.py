"""The Ray executor on a real two-node Ray cluster on loopback (a head and a second node process).

Needs the optional Ray install (`make setup-ray`; `make test` installs it). Each node offers one CPU,
so the two render actors land on different nodes.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import durable
from fixtures.ray_cluster import free_port
from tests.render_fixtures import make_project, raw_params
from tests.test_render import cli, folder_bytes, labels

ray = pytest.importorskip("ray", reason="Ray is optional: `make setup-ray` installs it")
pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """HOST:PORT of a head plus one more node on loopback, one CPU each."""
    from fixtures.ray_cluster import loopback_cluster

    with loopback_cluster(nodes=2, cpus=1, log_dir=tmp_path_factory.mktemp("ray-logs")) as address:
        yield address


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
    assert not list((project / "ray").rglob(durable.TEMPORARY))


def test_params_yaml_selects_the_ray_executor(cluster, project, local_light):
    raw = raw_params(executor="ray", address=cluster)
    (project / "ray.yaml").write_text(yaml.safe_dump(raw))
    res = cli(project, "--params", "ray.yaml", "render", "--factor", "light", "--out", "ray-params")
    assert res.returncode == 0, res.stderr
    assert folder_bytes(project / "ray-params") == folder_bytes(local_light)
    # The same bytes come from the local pool: the proof that Ray rendered is its actors' report.
    report = re.search(r"faces/light: 3 sweeps rendered on the Ray cluster by (\d) actors \(pids ([\d, ]+)\)", res.stderr)
    assert report, res.stderr
    pids = [int(p) for p in report.group(2).split(", ")]
    assert int(report.group(1)) == len(pids) >= 1


@pytest.fixture(scope="module")
def slow_project(tmp_path_factory):
    """Sweeps long enough (a few seconds each on 2 cores) that a worker killed after the first sweep is
    written is surely inside another: at the default test size a sweep takes ~0.1 s and the kill could
    land after an actor's last sweep, which the render rightly never notices."""
    root = tmp_path_factory.mktemp("ray-slow-project")
    make_project(root, size=128, samples=64)
    return root


def render_actor_pids() -> set[int]:
    res = subprocess.run(["pgrep", "-f", "ray::RenderWorker"], capture_output=True, text=True)
    return {int(p) for p in res.stdout.split()}


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_killed_worker_sweep_is_retried_and_the_render_finishes(cluster, slow_project):
    project = slow_project
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
    # The busiest actor has rendered a sweep and is in its next one; on a loaded machine another may
    # still be starting, and a worker lost then must be replaced too (the second message).
    os.kill(max(victims, key=cpu_seconds), signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert ("died during sweep" in err and "rendering it again elsewhere" in err) or \
        "died while starting (" in err, err
    assert folder_bytes(out) == folder_bytes(project / "kill-local")  # nothing duplicated or half-written
    assert len(labels(out)) == 6 * 6 + 6  # 6 train sweeps + 1 test sweep of 6 steps


def test_unreachable_cluster_is_a_one_line_error_before_any_write(project):
    res = cli(project, "render", "--factor", "light", "--executor", "ray", "--address",
              f"127.0.0.1:{free_port()}", "--out", "nowhere")
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "no Ray cluster answers at" in res.stderr, res.stderr
    assert not (project / "nowhere").exists()


def test_unreachable_cluster_fails_before_the_meshes_are_generated(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params(executor="ray", address=f"127.0.0.1:{free_port()}")))
    res = cli(tmp_path, "render", "--factor", "light", "--out", "nowhere")
    assert res.returncode == 2 and "no Ray cluster answers at" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no data/meshes either
