"""The Ray executor of `render_set` (`render.executor: ray`): sweeps rendered on a Ray cluster.

Each worker process the executor uses holds one long-lived actor, `RenderWorker`: it imports bpy and
builds the scene once (`render.runner`'s per-process scene, so persistent data keeps its BVH across
frames) and renders whole sweeps through the executor seam `render.worker.render_sweep_files`.
Nodes share no storage with the driver: meshes travel to the actors as PLY bytes through Ray's
object store (put once, fetched once per actor, kept in the actor's own temporary folder), and the
PNG bytes of a finished sweep (with `render.passes`, its pass files too) travel back to the driver,
which writes them with the same atomic write, plan record, resume and labels as the local pool. Pixels depend only on the frame and the
settings, so the files are byte-identical to a local run.

Scheduling and faults: the driver hands each actor one sweep at a time, so a sweep is all the work
an actor can lose. When an actor dies (its process killed, its node lost), its sweep goes back to
the front of the queue for the next free actor, a replacement actor is started wherever Ray finds a
free CPU, and nothing of the lost sweep was written; the stage finishes. A sweep lost
`MAX_ATTEMPTS` times stops the render with a one-line error (the cluster is failing, not one worker).
An actor that dies while starting is replaced the same way; `MAX_ATTEMPTS` start failures in a row
mean the nodes cannot run this project's code, and the render stops with a one-line error saying so.

Ray is an optional install (`requirements-ray.txt`); it is imported only when this executor runs.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Sequence

import durable
from config import RenderSettings, UserError
from render.scene import SceneSpec
from render.tempdirs import owned_folder
from render.worker import RenderError, SweepTask, render_sweep_files, write_frame_files

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Times one sweep may be lost with its actor before the render gives up."""
STARTUP_TIMEOUT = 300.0
"""Seconds to wait for a first render actor (Blender import and scene build) when none is running."""
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the cluster head's port to answer."""
TEMP_PREFIX = "dcign-ray-"


# ------------------------------------------------------------------------------------ actor


class RenderWorker:
    """One Blender session in one Ray worker process (wrapped by `ray.remote` in `_RayPool`)."""

    def __init__(self, spec: SceneSpec):
        self.tmp = owned_folder(TEMP_PREFIX)
        # `render.scene.import_bpy` (just below) puts Blender's session folder under TMPDIR, so
        # `close` removes it with ours at once; a killed actor's goes with the next import.
        os.environ["TMPDIR"] = self.tmp
        self.meshes: dict[str, str] = {}
        self.failure: BaseException | None = None
        try:
            from render.worker import scene_for

            scene_for(spec)  # fail here, on `ready`, rather than on the first sweep
        except Exception as err:  # noqa: BLE001 - reported by `ready`, where the driver waits for it
            self.failure = err

    def ready(self) -> int:
        """This actor's process id, once Blender is up (raises what building the scene raised)."""
        if self.failure is not None:
            raise self.failure
        return os.getpid()

    def render(self, spec: SceneSpec, meshes: dict[int, tuple[str, object]], frames) -> list[dict[str, bytes]]:
        """Each frame's files (its PNG and, with `render.passes`, its pass files; relative path -> bytes);
        `meshes`: mesh id -> (sha256 of its PLY, object ref of the bytes)."""
        return render_sweep_files(spec, {m: self._mesh_path(*blob) for m, blob in meshes.items()}, frames)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _mesh_path(self, digest: str, ref) -> str:
        if digest not in self.meshes:
            import ray

            path = Path(self.tmp) / f"{digest}.ply"
            durable.write_bytes(path, ray.get(ref), sync=False)
            self.meshes[digest] = str(path)
        return self.meshes[digest]


# ------------------------------------------------------------------------------------ driver


@contextlib.contextmanager
def ray_executor(settings: RenderSettings, spec: SceneSpec, sweeps: int):
    """Connect to the cluster and start the actors (a broken node or missing GPU fails here, before
    `render_set` writes anything); yields the pool; kills its actors on exit."""
    ray = _import_ray()
    connected_here = _connect(ray, settings.address)
    pool = None
    try:
        pool = _RayPool(ray, settings, spec, sweeps)
        pool.wait_for_one()
        yield pool
    finally:
        if pool is not None:
            pool.close()
        if connected_here:
            ray.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RenderError("render.executor is ray but Ray is not installed; run `make setup-ray` "
                          "(or pip install -r requirements-ray.txt -c constraints.txt)") from None
    return ray


def _connect(ray, address: str) -> bool:
    """Join the cluster at `address` (see `RenderSettings.address`; empty: RAY_ADDRESS, else a private
    Ray on this machine); True if this call connected (and so should disconnect)."""
    if ray.is_initialized():
        return False
    # Ray's usage statistics are opt-in here, as DVC's analytics are in the Makefile.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Never Ray's own default: it joins the cluster a file in /tmp names, and retries for many minutes
    # when that cluster is gone.
    target = address or os.environ.get("RAY_ADDRESS", "") or "local"
    host, _, port = target.rpartition(":")
    if port.isdigit():  # fail in seconds, with one line, when nothing listens there
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
        except OSError as err:
            raise RenderError(f"render.address: no Ray cluster answers at {target} ({err.strerror or err}); "
                              "start one with `ray start --head --port PORT` or fix the address") from None
    try:
        options = dict(include_dashboard=False) if target == "local" else {}
        ray.init(address=target, logging_level=logging.WARNING, runtime_env=_code_env(), **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise RenderError(f"render.address: cannot join the Ray cluster at {target} ({_first_line(err)}); "
                          "check `ray status` there") from None
    return True


ROOT = Path(__file__).resolve().parents[1]
CODE_EXCLUDES = [".dvc", "data", "models", "checkpoints", "dvclive", "metrics", "plots",
                 "reports", "docs", "tests", "bench", "tmp", "__pycache__", "*.pyc"]


def _code_env() -> dict:
    """Ship this checkout's code (not its data) to every node: workers import the driver's code
    whatever, if anything, a node has checked out. Nodes still need the Python packages (bpy...)."""
    return {"working_dir": str(ROOT), "excludes": CODE_EXCLUDES}


class _RayPool:
    """The driver's side: actors, the sweep queue, retries, and the atomic writes."""

    def __init__(self, ray, settings: RenderSettings, spec: SceneSpec, sweeps: int):
        from ray import exceptions

        self.ray, self.errors, self.spec = ray, exceptions, spec
        gpu = settings.device == "gpu"
        # workers: 0 = one actor per GPU (Cycles GPU) or per `threads` CPUs of the whole cluster.
        free = ray.cluster_resources()
        size = settings.workers or int(free.get("GPU", 0) if gpu else free.get("CPU", 1) // settings.threads)
        # No Ray restarts: a dead actor's sweep is re-queued here, to whichever actor is free first.
        self.cls = ray.remote(RenderWorker).options(num_cpus=settings.threads, num_gpus=1 if gpu else 0, max_restarts=0)
        self.actors: list = []
        self.starting: dict = {}  # `ready` ref -> actor still building its scene
        self.idle: list = []
        self.pids: dict = {}  # actor -> its worker process id (in log lines and tests)
        self.start_failures = 0  # actors that died before `ready`, in a row
        for _ in range(max(1, min(size, sweeps))):
            self._spawn()

    def _spawn(self) -> None:
        actor = self.cls.remote(self.spec)
        self.actors.append(actor)
        self.starting[actor.ready.remote()] = actor

    def wait_for_one(self) -> None:
        while not self.idle:
            self._started(self._wait(list(self.starting), STARTUP_TIMEOUT))

    def _wait(self, refs: list, timeout: float | None):
        done, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if not done:
            raise RenderError(f"no render actor started on the Ray cluster within {STARTUP_TIMEOUT:.0f} s; "
                              "check that its nodes have free CPUs (`ray status`)")
        return done[0]

    def _started(self, ref) -> None:
        actor = self.starting.pop(ref)
        try:
            self.pids[actor] = self.ray.get(ref)
        except self.errors.RayTaskError as err:  # building the scene raised
            raise _as_user_error(err) from None
        except self.errors.RayActorError as err:
            # A worker that dies while starting (node lost, process killed) is replaced like one that dies
            # mid-sweep; one that keeps failing cannot load this module: the node lacks the project.
            self.start_failures += 1
            if self.start_failures >= MAX_ATTEMPTS:
                raise RenderError(f"a Ray worker could not start a render actor ({_first_line(err)}); every node "
                                  "needs this project's code and requirements (README, Scaling out)") from None
            log.warning("a render actor died while starting (%s); starting another", _first_line(err))
            self._replace(actor)
            return
        self.start_failures = 0
        self.idle.append(actor)

    def run(self, tasks: Sequence[SweepTask], desc: str) -> None:
        from tqdm import tqdm

        blobs = self._put_meshes(tasks)
        done_by: collections.Counter = collections.Counter()  # actor pid -> sweeps it rendered
        queue = collections.deque(range(len(tasks)))
        running: dict = {}  # result ref -> (actor, task number)
        lost: collections.Counter = collections.Counter()
        with tqdm(total=sum(len(t.frames) for t in tasks), desc=desc, unit="img", smoothing=0.1) as bar:
            while queue or running:
                while queue and self.idle:
                    i, actor = queue.popleft(), self.idle.pop()
                    t = tasks[i]
                    running[actor.render.remote(t.spec, {m: blobs[p] for m, p in t.meshes.items()}, t.frames)] = (actor, i)
                # Running sweeps always end (done or lost); with none, only a starting actor can help.
                ref = self._wait(list(running) + list(self.starting), None if running else STARTUP_TIMEOUT)
                if ref in self.starting:
                    self._started(ref)
                    continue
                actor, i = running.pop(ref)
                try:
                    results = self.ray.get(ref)
                except (self.errors.RayActorError, self.errors.ObjectLostError) as err:
                    lost[i] += 1
                    if lost[i] >= MAX_ATTEMPTS:
                        raise RenderError(f"{desc}: sweep {i} was lost with its render actor {lost[i]} times "
                                          f"({_first_line(err)}); the Ray cluster is failing, see `ray status`") from None
                    log.warning("%s: render actor (pid %s) died during sweep %d; rendering it again elsewhere",
                                desc, self.pids.get(actor), i)
                    self._replace(actor)
                    queue.appendleft(i)
                    continue
                except self.errors.RayTaskError as err:
                    raise _as_user_error(err) from None
                out = Path(tasks[i].out)
                for files in results:  # per frame: its passes, then its PNG
                    write_frame_files(out, files)
                bar.update(len(results))
                done_by[self.pids.get(actor)] += 1
                self.idle.append(actor)
        log.warning("%s: %d sweeps rendered on the Ray cluster by %d actors (pids %s)", desc, len(tasks), len(done_by),
                    ", ".join(str(p) for p in sorted(done_by)))

    def _put_meshes(self, tasks: Sequence[SweepTask]) -> dict[str, tuple[str, object]]:
        """PLY path -> (sha256, object ref of its bytes): each mesh enters the object store once."""
        blobs = {}
        for path in sorted({p for t in tasks for p in t.meshes.values()}):
            data = Path(path).read_bytes()
            blobs[path] = (hashlib.sha256(data).hexdigest(), self.ray.put(data))
        return blobs

    def _replace(self, actor) -> None:
        self.actors.remove(actor)
        self.pids.pop(actor, None)
        self.ray.kill(actor)  # already dead; makes sure Ray does not keep it
        self._spawn()

    def close(self) -> None:
        # Ask live actors to remove their temporary folders, then end them all (also still-starting ones).
        with contextlib.suppress(Exception):
            self.ray.get([a.close.remote() for a in self.idle], timeout=30)
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)


def _as_user_error(err) -> Exception:
    """A worker's exception as the driver raises it: a UserError keeps its one-line message; anything
    else (a bug) stays Ray's error, which carries the remote traceback."""
    cause = getattr(err, "cause", None)
    # A node's full disk is one line too, as on this machine.
    return cause if isinstance(cause, UserError) or durable.disk_full(cause) else err


def _first_line(err: BaseException) -> str:
    """The most telling line of an error whose text may hold a remote traceback."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error:" in ln or "Exception:" in ln]
    return (named or lines or [type(err).__name__])[-1]
