"""The Ray bridge: the process through which ANT talks to a Ray cluster (run by executors/ray.py).

    python -m ant_scheduler.executors.ray_bridge ADDRESS SERVER_ID [AGENT_IDLE_SECONDS]

Why a process of its own: a Ray driver is ended by Ray itself when the cluster's head (GCS) is
unreachable for a while, and Ray's import, threads and memory are heavy. ANT must stay up and
keep serving when the cluster goes away, so the driver lives here; when it dies, ANT says the
cluster is unreachable, starts a new bridge, and reconciles when it connects.

Protocol: one JSON object per line. ANT writes operations to stdin; the bridge writes events to
its stdout (the real one; what Ray or anything else prints goes to stderr). Stdin closing ends
the bridge; the agents and the tasks keep running.

Operations: start {task, spec, master_addr, ranks: [{node_id, node, gpu_ids, log, base}]};
kill {task, nodes, grace}; recover {id, tasks: {task: [{node_id, log, base}]}}; release (ANT
stops cleanly). `base` is where the run's output starts in the log file.
Events: cluster {connected, detail}; node {node_id, hostname, ip, labels, gpus}; node_gone
{node_id, reason}; samples {node_id, samples}; started {task, pids | error}; exit {task, node_id,
code, killed}; killed {task}; recovered {id, tasks: {task: [status per rank]}}.

The bridge writes each task's output into ANT's log file itself (pwrite at the offset the agent
sent it from, so a repeated chunk changes nothing), before it reports that rank's exit.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

NAMESPACE = "ant"
PULL_WAIT_SECONDS = 0.5
CALL_TIMEOUT = 60.0
NODES_EVERY_SECONDS = 1.0


def agent_name(server_id: str, node_id: str) -> str:
    return f"ant-agent-{server_id}-{node_id}"


class Bridge:
    def __init__(self, address: str, server_id: str, out: Any, idle_seconds: float = 60) -> None:
        self.address = address
        self.server_id = server_id
        self.idle_seconds = idle_seconds
        self.bridge_id = os.urandom(8).hex()  # agents answer only the latest bridge's pulls
        self.out = out
        self.out_lock = threading.Lock()
        self.lock = threading.Lock()
        self.agents: dict[str, Any] = {}  # node id -> actor handle
        self.dead: set[str] = set()
        # (task, node id) -> ANT's log file, and where this run's output starts in it (a task
        # restored under the same id appends to its log, as the local executor does).
        self.logs: dict[tuple[str, str], tuple[str, int]] = {}
        self.pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="ant-bridge")
        self.connected = threading.Event()
        self.stdin_closed = threading.Event()
        self.starting: dict[str, threading.Event] = {}  # task -> set once its start is done

    # ------------------------------------------------------------------ output to ANT

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with self.out_lock:
            self.out.write(line)
            self.out.flush()

    # ------------------------------------------------------------------ the cluster

    def connect(self) -> None:
        import ray

        while True:
            try:
                ray.init(
                    address=self.address,
                    namespace=NAMESPACE,
                    logging_level=30,  # WARNING
                    log_to_driver=False,
                    configure_logging=True,
                )
                break
            except Exception as exc:
                self.emit({"ev": "cluster", "connected": False, "detail": _one_line(exc)})
                time.sleep(2.0)
        # Every node's agent is found (or made) before ANT hears it is connected: its first
        # question is what became of the tasks it knows, and their agents must answer.
        self.look_at_nodes()
        self.connected.set()
        self.emit({"ev": "cluster", "connected": True, "detail": None})

    def watch_nodes(self) -> None:
        while True:
            time.sleep(NODES_EVERY_SECONDS)
            self.look_at_nodes()

    def look_at_nodes(self) -> None:
        import ray

        try:
            nodes = ray.nodes()  # type: ignore[no-untyped-call]
        except Exception as exc:
            self.emit({"ev": "cluster", "connected": False, "detail": _one_line(exc)})
            return
        for node in nodes:
            node_id = node["NodeID"]
            if node.get("Alive"):
                with self.lock:
                    known = node_id in self.agents or node_id in self.dead
                if not known:
                    self.join(node)
            else:
                self.leave(node_id, node.get("DeathReasonMessage") or "it left the cluster")

    def join(self, node: dict[str, Any]) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        import ray
        from ant_scheduler.executors.ray_agent import actor_class

        node_id = node["NodeID"]
        name = agent_name(self.server_id, node_id)
        try:
            agent = ray.get_actor(name)
        except ValueError:
            gpus = int(node.get("Resources", {}).get("GPU", 0))
            agent = (
                actor_class()
                .options(
                    name=name,
                    lifetime="detached",
                    num_cpus=0,
                    num_gpus=gpus,  # all of them: no other Ray work is given this node's GPUs
                    max_restarts=-1,
                    max_concurrency=1000,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                )
                .remote(self.server_id, node_id, idle_seconds=self.idle_seconds)
            )
        try:
            info = ray.get(agent.info.remote(), timeout=CALL_TIMEOUT)
        except Exception as exc:
            print(f"ant bridge: agent on {node_id[:12]} not ready: {exc}", file=sys.stderr)
            return  # tried again at the next look
        with self.lock:
            self.agents[node_id] = agent
        self.emit(
            {
                "ev": "node",
                "node_id": node_id,
                "hostname": info["hostname"],
                "ip": info["ip"],
                "labels": node.get("Labels") or {},
                "gpus": info["gpus"],
            }
        )
        threading.Thread(target=self.pump, args=(node_id, agent), daemon=True).start()

    def leave(self, node_id: str, reason: str) -> None:
        with self.lock:
            if node_id in self.dead:
                return
            self.dead.add(node_id)
            self.agents.pop(node_id, None)
        self.emit({"ev": "node_gone", "node_id": node_id, "reason": reason})

    def pump(self, node_id: str, agent: Any) -> None:
        """Pull the node's output, exits and samples until the node is gone."""
        from ray.exceptions import GetTimeoutError

        import ray

        failures = 0
        while True:
            with self.lock:
                if node_id in self.dead:
                    return
            try:
                answer = ray.get(
                    agent.pull.remote(PULL_WAIT_SECONDS, self.bridge_id), timeout=CALL_TIMEOUT
                )
                failures = 0
            except GetTimeoutError:
                continue
            except Exception as exc:  # the actor died (its node too, or it restarts)
                failures += 1
                if _node_alive(node_id) is False or failures >= 20:
                    self.leave(node_id, f"its ANT agent failed: {_one_line(exc)}")
                    return
                time.sleep(0.5)
                continue
            self.deliver(node_id, answer, agent)

    def deliver(self, node_id: str, answer: dict[str, Any], agent: Any) -> None:
        for task_id, (offset, data) in answer["chunks"].items():
            with self.lock:
                where = self.logs.get((task_id, node_id))
            if where is not None:
                _write_at(where[0], where[1] + offset, data)
            else:  # not ANT's (yet): a recover will ask for it again from where ANT's log ends
                _say(f"output of {task_id} from {offset} not ANT's now: dropped")
        for task_id, result in answer["exits"].items():
            with self.lock:
                where = self.logs.get((task_id, node_id))
            if where is None:
                _say(f"exit of {task_id} not ANT's now: dropped")
                continue
            received = _size(where[0]) - where[1]
            if isinstance(result, dict) and received < int(result.get("size", 0)):
                # A rank's end is reported only once ANT's log holds all of its output: what
                # went missing (an answer lost with a bridge) is asked for again first.
                _say(f"output of {task_id} short ({received} of {result['size']}): asked again")
                agent.resume.remote({task_id: max(0, received)}, self.bridge_id)
                continue
            with self.lock:
                known = self.logs.pop((task_id, node_id), None) is not None
            if known and isinstance(result, dict):
                self.emit(
                    {
                        "ev": "exit",
                        "task": task_id,
                        "node_id": node_id,
                        "code": result.get("code"),
                        "killed": bool(result.get("killed")),
                    }
                )
        if answer["samples"]:
            self.emit({"ev": "samples", "node_id": node_id, "samples": answer["samples"]})

    # ------------------------------------------------------------------ operations from ANT

    def handle(self, op: dict[str, Any]) -> None:
        self.connected.wait()
        kind = op.get("op")
        try:
            if kind == "start":
                try:
                    self.start(op)
                finally:
                    with self.lock:
                        started = self.starting.pop(str(op.get("task")), None)
                    if started is not None:
                        started.set()
            elif kind == "kill":
                self.kill(op)
            elif kind == "recover":
                self.recover(op)
            elif kind == "release":
                self.release()
        except Exception as exc:  # one operation fails, the bridge goes on
            print(f"ant bridge: {kind} failed: {exc!r}", file=sys.stderr, flush=True)
            if kind == "start":
                # An agent that died with its node: the task is lost there, not failed.
                gone = _is_actor_gone(exc)
                self.emit({"ev": "started", "task": op.get("task"), gone: _one_line(exc)})

    def agent(self, node_id: str) -> Any:
        with self.lock:
            agent = self.agents.get(node_id)
        if agent is None:
            raise RuntimeError(f"node {node_id[:12]} is not in the cluster")
        return agent

    def agent_of(self, node_id: str) -> Any:
        """The node's agent, also one not seen yet by this bridge (it may be restarting)."""
        import ray

        try:
            return self.agent(node_id)
        except RuntimeError:
            if _node_alive(node_id) is False:
                raise
            return ray.get_actor(agent_name(self.server_id, node_id))

    def start(self, op: dict[str, Any]) -> None:
        import ray

        task_id, spec, ranks = op["task"], op["spec"], op["ranks"]
        agents = [self.agent(rank["node_id"]) for rank in ranks]
        extra: dict[str, str] = {}
        if len(ranks) > 1:  # a gang: what torchrun and friends read
            port = ray.get(agents[0].free_port.remote(), timeout=CALL_TIMEOUT)
            per_node = max(1, len(ranks[0]["gpu_ids"]))
            extra = {
                "MASTER_ADDR": op["master_addr"],
                "MASTER_PORT": str(port),
                "NNODES": str(len(ranks)),
                "NPROC_PER_NODE": str(per_node),
                "LOCAL_WORLD_SIZE": str(per_node),
                "WORLD_SIZE": str(per_node * len(ranks)),
            }
        with self.lock:
            for rank in ranks:
                self.logs[(task_id, rank["node_id"])] = (rank["log"], int(rank.get("base", 0)))
        refs = []
        for index, (rank, agent) in enumerate(zip(ranks, agents, strict=True)):
            env = {**spec["env"], **extra, "ANT_NODE": rank.get("node", "")}
            if extra:
                env["NODE_RANK"] = str(index)
            refs.append(
                agent.start.remote(
                    {**spec, "task_id": task_id, "env": env, "gpu_ids": rank["gpu_ids"]}
                )
            )
        answers = ray.get(refs, timeout=CALL_TIMEOUT)
        errors = [a["error"] for a in answers if "error" in a]
        if errors:
            for rank, agent, answer in zip(ranks, agents, answers, strict=True):
                if "error" in answer:
                    with self.lock:
                        self.logs.pop((task_id, rank["node_id"]), None)
                else:  # all or nothing: the ranks that did start are ended again
                    ray.get(agent.kill.remote(task_id, 0.0), timeout=CALL_TIMEOUT)
            self.emit({"ev": "started", "task": task_id, "error": errors[0]})
            return
        self.emit({"ev": "started", "task": task_id, "pids": [a.get("pid") for a in answers]})

    def kill(self, op: dict[str, Any]) -> None:
        import ray

        with self.lock:
            starting = self.starting.get(op["task"])
        if starting is not None:  # killed right after its start: once it has started
            starting.wait(CALL_TIMEOUT)
        refs = []
        for node_id in op["nodes"]:
            try:
                refs.append(self.agent(node_id).kill.remote(op["task"], float(op["grace"])))
            except RuntimeError:
                pass  # a node that is gone: its rank was reported lost
        for ref in refs:
            try:
                ray.get(ref, timeout=CALL_TIMEOUT + float(op["grace"]))
            except Exception as exc:
                print(f"ant bridge: kill of {op['task']} failed: {exc!r}", file=sys.stderr)
        self.emit({"ev": "killed", "task": op["task"]})

    def recover(self, op: dict[str, Any]) -> None:
        """What became of each rank: running (its output is pulled again from where ANT's log
        file ends), {code, killed}, "unknown" (the agent never heard of it), or "node_gone"."""
        import ray

        wanted: dict[str, list[str]] = {}
        for task_id, ranks in op["tasks"].items():
            for rank in ranks:
                wanted.setdefault(rank["node_id"], []).append(task_id)
        statuses: dict[tuple[str, str], Any] = {}
        for node_id, task_ids in wanted.items():
            try:
                agent = self.agent_of(node_id)
                found = ray.get(agent.status.remote(task_ids), timeout=CALL_TIMEOUT)
            except Exception:
                found = dict.fromkeys(task_ids, "node_gone")
            for task_id in task_ids:
                statuses[(task_id, node_id)] = found[task_id]
        resume: dict[str, dict[str, int]] = {}
        answer: dict[str, list[Any]] = {}
        for task_id, ranks in op["tasks"].items():
            answer[task_id] = []
            for rank in ranks:
                status = statuses[(task_id, rank["node_id"])]
                answer[task_id].append(status)
                if status == "running" or isinstance(status, dict):
                    base = int(rank.get("base", 0))
                    with self.lock:
                        self.logs[(task_id, rank["node_id"])] = (rank["log"], base)
                    received = max(0, _size(rank["log"]) - base)
                    resume.setdefault(rank["node_id"], {})[task_id] = received
        _say(f"recover: {answer}; resume from {resume}")
        for node_id, cursors in resume.items():
            agent = self.agent_of(node_id)
            ray.get(agent.resume.remote(cursors, self.bridge_id), timeout=CALL_TIMEOUT)
        self.emit({"ev": "recovered", "id": op["id"], "tasks": answer})

    def release(self) -> None:
        """ANT stopped cleanly: agents with nothing left to report go, and give their node's GPUs
        back to Ray. Those with running tasks stay for the next ANT."""
        import ray

        with self.lock:
            agents = list(self.agents.items())
        for node_id, agent in agents:
            try:
                if ray.get(agent.idle.remote(), timeout=10):
                    ray.kill(agent, no_restart=True)
                    with self.lock:
                        self.agents.pop(node_id, None)
            except Exception as exc:
                print(f"ant bridge: release of {node_id[:12]}: {exc!r}", file=sys.stderr)

    def read_ops(self, stdin: Any) -> None:
        for line in stdin:
            try:
                op = json.loads(line)
            except ValueError:
                continue
            if op.get("op") == "start":
                # Operations run concurrently; a kill read after this start waits for it.
                with self.lock:
                    self.starting[str(op.get("task"))] = threading.Event()
            self.pool.submit(self.handle, op)
        self.stdin_closed.set()


def _node_alive(node_id: str) -> bool | None:
    try:
        import ray

        for node in ray.nodes():  # type: ignore[no-untyped-call]
            if node["NodeID"] == node_id:
                return bool(node.get("Alive"))
        return False
    except Exception:
        return None


def _is_actor_gone(exc: BaseException) -> str:
    """ "lost" when the error says an agent (or its node) is gone, else "error"."""
    from ray.exceptions import ActorUnavailableError, RayActorError

    unschedulable = type(exc).__name__ == "ActorUnschedulableError"
    return (
        "lost"
        if isinstance(exc, (RayActorError, ActorUnavailableError)) or unschedulable
        else "error"
    )


def _write_at(path: str, offset: int, data: bytes) -> None:
    """Put a chunk where it belongs in ANT's log (created 0600, never through a symlink)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _say(message: str) -> None:
    print(f"ant bridge: {message}", file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def main(argv: list[str]) -> None:
    address, server_id = argv[0], argv[1]
    idle_seconds = float(argv[2]) if len(argv) > 2 else 60.0
    # The protocol owns the real stdout; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    bridge = Bridge(address, server_id, out, idle_seconds)
    threading.Thread(target=bridge.read_ops, args=(sys.stdin,), daemon=True).start()
    threading.Thread(target=_connect_and_watch, args=(bridge,), daemon=True).start()
    # ANT going away (stdin closed) ends the bridge; agents and tasks stay.
    bridge.stdin_closed.wait()
    bridge.pool.shutdown(wait=True)  # what ANT asked last (a release) is done first
    os._exit(0)


def _connect_and_watch(bridge: Bridge) -> None:
    bridge.connect()
    bridge.watch_nodes()


if __name__ == "__main__":
    main(sys.argv[1:])
