"""A throw-away RabbitMQ cluster on this machine: N nodes on loopback ports, in temporary folders.

Each node has a node name of its own (``ilc<random>-<i>@localhost``), its own AMQP and
distribution ports (free loopback ports), data, log and config files in a temporary folder
and an Erlang cookie of the cluster's own, so it never meets the broker on 127.0.0.1:5672,
which other tests use. Needs Debian's ``rabbitmq-server`` and root (its wrapper runs the
node as user ``rabbitmq``, so the folders are handed to that user). ``close()`` stops
every node it started (by its pid file when ``rabbitmqctl stop`` does not answer) and
deletes the folders, whatever happened before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import TracebackType

from attrs import define

from tests.support.net import free_port

__all__ = ["ClusterNode", "RabbitCluster", "cluster_unavailable"]

SERVER = "rabbitmq-server"
CTL = "rabbitmqctl"
QUEUES = "rabbitmq-queues"


def cluster_unavailable() -> str | None:
    """Why a cluster cannot be started here (None: it can)."""
    if os.geteuid() != 0:
        return "starting RabbitMQ nodes needs root (the wrapper runs them as user rabbitmq)"
    for tool in (SERVER, CTL, QUEUES):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install rabbitmq-server)"
    return None


@define
class ClusterNode:
    """One node: its name, ports and folder; ``running`` until stopped."""

    name: str
    amqp_port: int
    dist_port: int
    folder: Path
    process: asyncio.subprocess.Process | None = None
    running: bool = False

    def url(self, user: str = "guest", password: str = "guest") -> str:
        """The node's AMQP URL (default virtual host)."""
        return f"amqp://{user}:{password}@127.0.0.1:{self.amqp_port}/"

    def pid(self) -> int | None:
        """The Erlang VM's process id (from the node's pid file) while that process is
        this node's VM; None once it has exited."""
        try:
            pid = int((self.folder / "pid").read_text().strip())
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if f"RABBITMQ_NODENAME={self.name}".encode() in environment else None


class RabbitCluster:
    """``async with RabbitCluster(3) as cluster:`` boots and joins the nodes."""

    def __init__(self, size: int = 3) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="imageledger-cluster-"))
        self.cookie = secrets.token_hex(16).upper()
        tag = f"ilc{secrets.token_hex(3)}"
        self.nodes = [
            ClusterNode(f"{tag}-{i}@localhost", free_port(), free_port(), self.base / f"n{i}")
            for i in range(1, size + 1)
        ]

    async def __aenter__(self) -> RabbitCluster:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def urls(self, first: int = 0) -> list[str]:
        """Every node's URL, starting with node ``first`` (index) and wrapping around."""
        ordered = self.nodes[first:] + self.nodes[:first]
        return [node.url() for node in ordered]

    def node(self, name: str) -> ClusterNode:
        """The node of that Erlang node name."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    async def start(self, within: float = 180.0) -> None:
        """Boot every node at once, then join the others to the first one."""
        for node in self.nodes:
            self._prepare(node)
        await _run("chown", "-R", "rabbitmq:rabbitmq", str(self.base))
        for node in self.nodes:
            await self._boot(node)
        deadline = time.monotonic() + within
        await asyncio.gather(*(self._await_startup(node, deadline) for node in self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            await self.ctl(node, "stop_app")
            await self.ctl(node, "join_cluster", first.name)
            await self.ctl(node, "start_app")
        running = await self.running_nodes()
        if sorted(running) != sorted(n.name for n in self.nodes):
            raise RuntimeError(f"cluster formed with {running}, not every node")

    def _prepare(self, node: ClusterNode) -> None:
        for sub in ("mnesia", "log"):
            (node.folder / sub).mkdir(parents=True)
        (node.folder / "plugins").write_text("[].\n")
        # /etc/rabbitmq/rabbitmq.conf pins the listener to 5672 and RABBITMQ_NODE_PORT does
        # not override it: each node reads a config file of its own instead.
        config = f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}\n"
        (node.folder / "rabbitmq.conf").write_text(config)

    async def _boot(self, node: ClusterNode) -> None:
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.folder / "rabbitmq"),
            "RABBITMQ_MNESIA_BASE": str(node.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.folder / "log"),
            "RABBITMQ_PID_FILE": str(node.folder / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.folder / "plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"-setcookie {self.cookie}",
        }
        with (node.folder / "out.log").open("wb") as sink:
            node.process = await asyncio.create_subprocess_exec(
                SERVER, env=env, stdout=sink, stderr=sink, start_new_session=True
            )
        node.running = True

    async def _await_startup(self, node: ClusterNode, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            with contextlib.suppress(RuntimeError):
                await self.ctl(node, "await_startup", "--timeout", "10", within=30)
                return
            if node.process is not None and node.process.returncode is not None:
                raise RuntimeError(f"{node.name} exited at boot; see {node.folder}/out.log")
            if remaining <= 0:
                raise RuntimeError(f"{node.name} did not start in time")
            await asyncio.sleep(1)

    async def ctl(self, node: ClusterNode, *args: str, tool: str = CTL, within: float = 60) -> str:
        """Run ``rabbitmqctl`` (or ``tool``) against ``node``; its stdout, or RuntimeError."""
        process = await asyncio.create_subprocess_exec(
            tool, "--erlang-cookie", self.cookie, "-n", node.name, "-q", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(process.communicate(), within)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"{tool} {args[0]} on {node.name} timed out") from None
        if process.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} on {node.name}: {err.decode().strip()}")
        return out.decode()

    async def running_nodes(self) -> list[str]:
        """The running nodes, as a running node of the cluster sees them."""
        for node in self.nodes:
            if node.running:
                status = json.loads(await self.ctl(node, "cluster_status", "--formatter", "json"))
                return [str(name) for name in status["running_nodes"]]
        return []

    async def leader(self, queue: str) -> ClusterNode:
        """The node that leads quorum queue ``queue`` (``rabbitmq-queues quorum_status``)."""
        asked = next(node for node in self.nodes if node.running)
        out = await self.ctl(asked, "quorum_status", queue, "--formatter", "json", tool=QUEUES)
        for member in json.loads(out):
            if str(member.get("Raft State")) == "leader":
                return self.node(str(member["Node Name"]))
        raise RuntimeError(f"quorum queue {queue} has no leader: {out.strip()}")

    async def consumers(self) -> dict[str, int]:
        """Consumers per queue (default virtual host) whose channel is on a running node.

        A quorum queue keeps listing the consumers of a node that went away (as suspected
        down, holding no messages) until that node comes back; they are not counted.
        """
        running = [node for node in self.nodes if node.running]
        out = await self.ctl(
            running[0], "list_consumers", "queue_name", "channel_pid", "--no-table-headers"
        )
        counts: dict[str, int] = {}
        for line in out.splitlines():
            name, _, channel = line.partition("\t")  # channel: <node.serial.id.0>
            if any(channel.startswith(f"<{node.name}.") for node in running):
                counts[name] = counts.get(name, 0) + 1
        return counts

    async def stop(self, node: ClusterNode, *, kill: bool = False) -> None:
        """Stop a node: ``rabbitmqctl stop`` (a shutdown), or SIGKILL of its VM (a crash;
        returns once the VM is gone, ``close()`` reaps the wrapper)."""
        node.running = False
        if not kill:
            await self.ctl(node, "stop", within=120)
            if node.process is not None:
                await asyncio.wait_for(node.process.wait(), 60)
            return
        pid = node.pid()
        if pid is None:
            raise RuntimeError(f"no running Erlang VM of {node.name} to kill")
        os.kill(pid, signal.SIGKILL)
        for _ in range(1500):  # 30 s
            if node.pid() is None:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{node.name} still runs after SIGKILL")

    async def close(self) -> None:
        """Stop every node still running, then delete the folders."""
        await asyncio.gather(
            *(self._stop_quietly(node) for node in self.nodes), return_exceptions=True
        )
        shutil.rmtree(self.base, ignore_errors=True)

    async def _stop_quietly(self, node: ClusterNode) -> None:
        if node.running:
            with contextlib.suppress(RuntimeError, TimeoutError):
                await self.stop(node)
        pid = node.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.process is not None and node.process.returncode is None:
            # The wrapper (su, the rabbitmq-server script) ends by itself once the VM is
            # gone; killed only if it does not.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.process.wait(), 30)
        if node.process is not None and node.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                node.process.kill()
            await node.process.wait()


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(*command)
    if await process.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
