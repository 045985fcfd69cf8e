"""A real ``redis-server`` (Debian/Ubuntu: ``apt-get install redis-server``) on a free loopback
port, for plugins with a Redis backend. It needs the binary, no Python package."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

from ..devserver import free_port

__all__ = [
    "ClusterNode", "RedisCluster", "RedisReplyError", "RedisSentinel", "RedisServer", "key_slot", "redis_command",
]


class RedisServer:
    """A real ``redis-server`` on a free loopback port without persistence.

    ``await stop()`` (SIGTERM) / ``await kill()`` (SIGKILL) then ``await start()`` simulate an
    outage; the port stays the same so clients reconnect to the same URL.
    """

    def __init__(self, port: int | None = None, *, binary: str = "redis-server", args: Sequence[str] = ()) -> None:
        found = shutil.which(binary)
        if found is None:
            raise RuntimeError(f"{binary} not found on PATH (install it: apt-get install redis-server)")
        self.binary = found
        self.port = port or free_port()
        self.args = list(args)
        self.process: trio.Process | None = None
        self.directory = tempfile.mkdtemp(prefix="triogate-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 10.0) -> None:
        """Start the server; returns once it answers PING."""
        if self.running:
            return
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no", "--dir", self.directory, "--loglevel", "warning",
                *self.args]
        self.process = await trio.lowlevel.open_process(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with trio.move_on_after(timeout):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode} (port {self.port})")
                try:
                    if await self.command("PING", timeout=1.0) == b"+PONG":
                        return
                except OSError:
                    pass
                await trio.sleep(0.02)
        await self.kill()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {timeout}s")

    async def stop(self) -> None:
        """Terminate (SIGTERM) and wait; the port is free afterwards."""
        await self._end(kill=False)

    async def kill(self) -> None:
        """Kill (SIGKILL) and wait, like a crash."""
        await self._end(kill=True)

    async def _end(self, kill: bool) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.returncode is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        with trio.move_on_after(10.0):
            await proc.wait()
            return
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def command(self, *args: str | bytes, timeout: float = 5.0) -> bytes:
        """Send one command; return the first reply line (e.g. ``b"+OK"``, ``b":3"``, ``b"$5"``)."""
        parts = [a.encode() if isinstance(a, str) else a for a in args]
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            try:
                await stream.send_all(payload)
                buf = b""
                while b"\r\n" not in buf:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise OSError("redis-server closed the connection")
                    buf += chunk
                return buf.split(b"\r\n", 1)[0]
            finally:
                await trio.aclose_forcefully(stream)

    async def aclose(self) -> None:

        await self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)



# ---------------------------------------------------------------------------- RESP (test tooling)


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``) to a command sent by :func:`redis_command`."""


def _encode(args: Sequence[str | bytes | int]) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class NoPrimary(RuntimeError):
    """No node serves a slot (yet): the slot map is changing, e.g. in the middle of a failover."""


class _Incomplete(Exception):
    pass


def _parse(buf: bytes, pos: int = 0) -> tuple[object, int]:
    """One RESP2 reply from ``buf[pos:]`` → ``(value, next position)``; errors come back as RedisReplyError."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos:pos + 1], buf[pos + 1:end]
    pos = end + 2
    if kind == b"+":
        return line, pos
    if kind == b"-":
        return RedisReplyError(line.decode(errors="replace")), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise _Incomplete
        return buf[pos:pos + n], pos + n + 2
    if kind == b"*":
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    raise ValueError(f"not a RESP reply: {buf[pos - len(line) - 3:pos]!r}")


def _result(value: object) -> Any:
    if isinstance(value, RedisReplyError):
        raise value
    return value


async def redis_command(port: int, *args: str | bytes | int, timeout: float = 5.0) -> Any:
    """Send one command to ``127.0.0.1:port`` and return its whole reply, parsed.

    Bulk strings are ``bytes``, integers ``int``, arrays lists, nil ``None``; an error reply raises
    :class:`RedisReplyError`. No redirection is followed: it talks to exactly that node.
    """
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            await stream.send_all(_encode(args))
            buf = b""
            while True:
                try:
                    return _result(_parse(buf)[0])
                except _Incomplete:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise OSError(f"redis on port {port} closed the connection") from None
                    buf += chunk
        finally:
            await trio.aclose_forcefully(stream)


def redis_command_sync(port: int, *args: str | bytes | int, timeout: float = 5.0) -> Any:
    """:func:`redis_command` without trio, for module-scoped fixtures (they run outside any trio run)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_encode(args))
        buf = b""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return _result(_parse(buf)[0])
            except _Incomplete:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError(f"redis on port {port} closed the connection") from None
                buf += chunk


def _info(text: bytes) -> dict[str, str]:
    """``INFO`` / ``CLUSTER INFO`` text → ``{field: value}``."""
    out = {}
    for line in text.decode().splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def key_slot(key: str | bytes) -> int:
    """The Redis Cluster hash slot of ``key`` (CRC16 of its ``{hash tag}`` if any, mod 16384)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % 16384


# ---------------------------------------------------------------------------- Redis Cluster


class _Exited(Exception):
    pass


class ClusterNode:
    """One ``redis-server --cluster-enabled yes`` of a :class:`RedisCluster` (its own directory and ports).

    A ``subprocess.Popen`` rather than a trio process: a module-scoped cluster outlives the trio
    run of each test, and a trio process belongs to the run that started it.
    """

    def __init__(self, binary: str, directory: str, node_timeout_ms: int) -> None:
        self.binary = binary
        self.port = self.bus_port = 0
        self.pick_ports(set())
        self.directory = directory
        self.node_timeout_ms = node_timeout_ms
        self.process: subprocess.Popen[bytes] | None = None

    def pick_ports(self, taken: set[int]) -> None:
        """Two free ports not in ``taken``: the client port and the cluster bus port (the default bus
        port, port + 10000, may be taken or above 65535)."""
        ports: list[int] = []
        while len(ports) < 2:
            port = free_port()
            if port not in taken and port not in ports:
                ports.append(port)
        self.port, self.bus_port = ports

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.directory, "redis.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        """Start the process (returns at once); ``nodes.conf`` in its directory keeps its identity across restarts."""
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "no",
                "--daemonize", "no", "--dir", self.directory, "--save", "", "--appendonly", "no",
                "--loglevel", "warning", "--logfile", "redis.log",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(self.bus_port), "--cluster-node-timeout", str(self.node_timeout_ms),
                # replicas sync at once (the default waits 5 s to batch diskless syncs)
                "--repl-diskless-sync-delay", "0"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        """SIGKILL and reap, like a crash."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    async def akill(self) -> None:
        """:meth:`kill` without blocking the trio run for long (SIGKILL, then poll for the exit)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        with trio.fail_after(10):
            while proc.poll() is None:
                await trio.sleep(0.01)

    def __repr__(self) -> str:
        return f"<ClusterNode {self.address} {'running' if self.running else 'stopped'}>"


class RedisCluster:
    """A real Redis Cluster on loopback: ``masters`` primaries with ``replicas`` replicas each (default 3 + 3).

    Built the way operators build one: ``redis-server --cluster-enabled yes`` per node in a temporary
    directory, then ``redis-cli --cluster create ... --cluster-replicas N``; :meth:`start` returns
    once every node reports ``cluster_state:ok`` and every replica's link is up (so a failover can
    happen at once). No persistence; ``node_timeout_ms`` (``cluster-node-timeout``) bounds how long
    a killed primary takes to be replaced: about twice it, plus the replica election delay.

    Lifecycle is synchronous (:meth:`start`, :meth:`close`) so that one cluster can serve a whole
    test module; the operations tests run mid-traffic (:meth:`failover`, :meth:`kill_primary`,
    :meth:`restart`, :meth:`command`, :meth:`wait_healthy`) are async.
    """

    def __init__(self, masters: int = 3, replicas: int = 1, *, node_timeout_ms: int = 1000,
                 binary: str = "redis-server", cli: str = "redis-cli") -> None:
        found, found_cli = shutil.which(binary), shutil.which(cli)
        if found is None or found_cli is None:
            raise RuntimeError(f"{binary} and {cli} must be on PATH (apt-get install redis-server)")
        self.binary, self.cli = found, found_cli
        self.masters, self.replicas = masters, replicas
        self.directory = tempfile.mkdtemp(prefix="triogate-redis-cluster-")
        self.nodes: list[ClusterNode] = []
        for i in range(masters * (1 + replicas)):
            path = os.path.join(self.directory, f"node{i}")
            os.mkdir(path)
            self.nodes.append(ClusterNode(found, path, node_timeout_ms))

    @property
    def addresses(self) -> list[str]:
        """``["127.0.0.1:port", ...]`` of every node: ``cluster_nodes`` for a ``RedisConfig``."""
        return [n.address for n in self.nodes]

    # ------------------------------------------------------------------ lifecycle (sync)

    def start(self, timeout: float = 30.0) -> None:
        """Start every node, create the cluster and wait until it is healthy; on failure everything is stopped."""
        deadline = time.monotonic() + timeout
        try:
            self._launch_all(deadline)
            create = subprocess.run(
                [self.cli, "--cluster", "create", *self.addresses, "--cluster-replicas", str(self.replicas),
                 "--cluster-yes"],
                capture_output=True, text=True, timeout=max(deadline - time.monotonic(), 1), check=False)
            if create.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed ({create.returncode}):\n"
                                   f"{create.stdout[-2000:]}{create.stderr[-2000:]}")
            self._wait_sync(self._healthy_sync, deadline, "the cluster did not become healthy")
        except BaseException:
            self.close()
            raise

    def _launch_all(self, deadline: float) -> None:
        """Launch every node and wait for its PING; a node that exits at once (a free port taken meanwhile
        by another process) is given new ports and launched again, three times at most."""
        taken: set[int] = set()
        for node in self.nodes:
            node.pick_ports(taken)
            taken |= {node.port, node.bus_port}
            node.launch()
        for node in self.nodes:
            for attempt in range(3):
                def ready(n: ClusterNode = node) -> bool:
                    if not n.running:
                        raise _Exited
                    return bool(redis_command_sync(n.port, "PING", timeout=1) == b"PONG")

                try:
                    self._wait_sync(ready, deadline, f"{node} did not answer PING")
                    break
                except _Exited:
                    if attempt == 2:
                        raise RuntimeError(f"{node} exited at start:\n{node.log_tail()}") from None
                    node.pick_ports(taken)
                    taken |= {node.port, node.bus_port}
                    node.launch()

    @staticmethod
    def _wait_sync(check: Callable[[], bool], deadline: float, what: str) -> None:
        while True:
            try:
                if check():
                    return
            except (OSError, RedisReplyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(what)
            time.sleep(0.05)

    def _healthy_sync(self) -> bool:
        return self._is_healthy({n.port: (_info(redis_command_sync(n.port, "CLUSTER", "INFO")),
                                          _info(redis_command_sync(n.port, "INFO", "replication")))
                                 for n in self.nodes})

    def _is_healthy(self, infos: dict[int, tuple[dict[str, str], dict[str, str]]]) -> bool:
        roles = [repl.get("role") for _, repl in infos.values()]
        return (all(c.get("cluster_state") == "ok" and c.get("cluster_known_nodes") == str(len(self.nodes))
                    for c, _ in infos.values())
                and roles.count("master") == self.masters
                and all(repl.get("master_link_status") == "up" and repl.get("master_sync_in_progress") == "0"
                        for _, repl in infos.values() if repl.get("role") == "slave")
                and all(int(repl.get("connected_slaves", "0")) == self.replicas
                        for _, repl in infos.values() if repl.get("role") == "master"))

    def close(self) -> None:
        """Kill every node and remove the temporary directory."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------------ operations (async)

    def node(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    async def command(self, *args: str | bytes | int, key: str | None = None, port: int | None = None,
                      timeout: float = 5.0) -> Any:
        """One command on the primary owning ``key`` (or on ``port``, or on any running node)."""
        if port is None:
            port = (await self.primary_of(key)).port if key is not None else next(
                n.port for n in self.nodes if n.running)
        return await redis_command(port, *args, timeout=timeout)

    async def primary_of(self, key: str) -> ClusterNode:
        """The node currently primary for ``key``'s slot (as a running node sees the cluster)."""
        slot = key_slot(key)
        port = next(n.port for n in self.nodes if n.running)
        for start, end, primary, *_ in await redis_command(port, "CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return self.node(int(primary[1]))
        raise NoPrimary(f"no node serves slot {slot}")

    async def replicas_of(self, primary: ClusterNode) -> list[ClusterNode]:
        """The running nodes that replicate ``primary`` (from its ``CLUSTER NODES`` view)."""
        lines = (await redis_command(primary.port, "CLUSTER", "NODES")).decode().splitlines()
        ids = {line.split()[1].split("@")[0]: line.split()[0] for line in lines}
        primary_id = ids[primary.address]
        return [self.node(int(line.split()[1].split("@")[0].rsplit(":", 1)[1])) for line in lines
                if line.split()[3] == primary_id and "fail" not in line.split()[2]]

    async def failover(self, key: str, timeout: float = 10.0) -> tuple[ClusterNode, ClusterNode]:
        """``CLUSTER FAILOVER`` on a replica of ``key``'s primary (no write is lost); ``(old, new)`` primary.

        Returns once the replica is primary and the cluster is healthy again.
        """
        old = await self.primary_of(key)
        new = (await self.replicas_of(old))[0]
        assert await redis_command(new.port, "CLUSTER", "FAILOVER") == b"OK"
        with trio.fail_after(timeout):
            while True:
                try:  # mid-failover, the node asked may briefly list no primary for the slot
                    if (await self.primary_of(key)).port == new.port:
                        break
                except (NoPrimary, OSError, RedisReplyError):
                    pass
                await trio.sleep(0.02)
        await self.wait_healthy(timeout)
        return old, new

    async def kill_primary(self, key: str, timeout: float = 20.0) -> tuple[ClusterNode, ClusterNode]:
        """SIGKILL ``key``'s primary and wait until a replica has been promoted; ``(killed, new primary)``.

        Writes the killed primary acknowledged but had not yet sent to that replica are lost.
        The killed node stays down: :meth:`restart` brings it back (as a replica).
        """
        old = await self.primary_of(key)
        await old.akill()
        with trio.fail_after(timeout):
            while True:
                try:
                    new = await self.primary_of(key)
                    if new.port != old.port and _info(await redis_command(new.port, "CLUSTER", "INFO")).get(
                            "cluster_state") == "ok":
                        return old, new
                except (NoPrimary, OSError, RedisReplyError):
                    pass
                await trio.sleep(0.05)

    async def restart(self, node: ClusterNode, timeout: float = 20.0) -> None:
        """Start a stopped node again (it rejoins, as a replica of whoever took its slots) and wait until healthy."""
        if not node.running:
            node.launch()
        await self.wait_healthy(timeout)

    async def wait_healthy(self, timeout: float = 20.0) -> None:
        """Wait until every node says ``cluster_state:ok``, ``masters`` primaries, every replica link up."""
        with trio.fail_after(timeout):
            while True:
                try:
                    infos = {n.port: (_info(await redis_command(n.port, "CLUSTER", "INFO", timeout=1)),
                                      _info(await redis_command(n.port, "INFO", "replication", timeout=1)))
                             for n in self.nodes}
                    if self._is_healthy(infos):
                        return
                except (OSError, RedisReplyError, trio.TooSlowError):
                    pass
                await trio.sleep(0.05)

    def __repr__(self) -> str:
        return f"<RedisCluster {','.join(self.addresses)}>"


# ---------------------------------------------------------------------------- Sentinel


class RedisSentinel:
    """A real Sentinel deployment on loopback: one primary, ``replicas`` replicas, ``sentinels`` sentinels.

    The sentinels (``redis-server --sentinel``, quorum 2) monitor the primary as ``service``;
    :meth:`start` returns once the replicas are in sync and every sentinel knows every replica
    and every other sentinel. Synchronous lifecycle like :class:`RedisCluster` (one per module);
    :meth:`failover` (``SENTINEL FAILOVER``) is async.
    """

    def __init__(self, replicas: int = 1, sentinels: int = 3, *, service: str = "triogate",
                 down_after_ms: int = 1000, binary: str = "redis-server") -> None:
        found = shutil.which(binary)
        if found is None:
            raise RuntimeError(f"{binary} not found on PATH (apt-get install redis-server)")
        self.binary = found
        self.service = service
        self.down_after_ms = down_after_ms
        self.directory = tempfile.mkdtemp(prefix="triogate-redis-sentinel-")
        self.servers = [ClusterNode(found, self._mkdir(f"server{i}"), 0) for i in range(1 + replicas)]
        self.sentinel_nodes = [ClusterNode(found, self._mkdir(f"sentinel{i}"), 0) for i in range(sentinels)]
        taken: set[int] = set()
        for node in [*self.servers, *self.sentinel_nodes]:
            node.pick_ports(taken)
            taken.add(node.port)

    def _mkdir(self, name: str) -> str:
        path = os.path.join(self.directory, name)
        os.mkdir(path)
        return path

    @property
    def sentinels(self) -> list[str]:
        """``["127.0.0.1:port", ...]`` of the sentinels: ``sentinels`` for a ``RedisConfig``."""
        return [n.address for n in self.sentinel_nodes]

    def _launch(self, node: ClusterNode, args: list[str]) -> None:
        argv = [self.binary, *args, "--port", str(node.port), "--bind", "127.0.0.1", "--protected-mode", "no",
                "--daemonize", "no", "--dir", node.directory, "--loglevel", "warning", "--logfile", "redis.log"]
        node.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    _SERVER_ARGS = ("--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0")

    def start(self, timeout: float = 30.0) -> None:
        """Start the servers, then the sentinels, and wait until they all know each other."""
        deadline = time.monotonic() + timeout
        primary = self.servers[0]
        try:
            for i, node in enumerate(self.servers):
                args = list(self._SERVER_ARGS)
                if i:
                    args += ["--replicaof", "127.0.0.1", str(primary.port)]
                self._launch(node, args)
            RedisCluster._wait_sync(
                lambda: int(_info(redis_command_sync(primary.port, "INFO", "replication")).get(
                    "connected_slaves", "0")) == len(self.servers) - 1
                and all(_info(redis_command_sync(n.port, "INFO", "replication")).get("master_link_status") == "up"
                        for n in self.servers[1:]),
                deadline, "the replicas did not sync")
            for node in self.sentinel_nodes:
                conf = os.path.join(node.directory, "sentinel.conf")
                with open(conf, "w", encoding="utf-8") as f:  # sentinels rewrite their config: one file each
                    f.write(f"sentinel monitor {self.service} 127.0.0.1 {primary.port} 2\n"
                            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                            f"sentinel failover-timeout {self.service} 10000\n")
                self._launch(node, [conf, "--sentinel"])
            RedisCluster._wait_sync(self._known_sync, deadline, "the sentinels did not discover each other")
        except BaseException:
            self.close()
            raise

    def _known_sync(self) -> bool:
        for node in self.sentinel_nodes:
            replicas = redis_command_sync(node.port, "SENTINEL", "REPLICAS", self.service)
            others = redis_command_sync(node.port, "SENTINEL", "SENTINELS", self.service)
            if len(replicas) != len(self.servers) - 1 or len(others) != len(self.sentinel_nodes) - 1:
                return False
        return True

    def close(self) -> None:
        """Kill every process and remove the temporary directory."""
        for node in [*self.sentinel_nodes, *self.servers]:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    async def primary(self) -> ClusterNode:
        """The primary the first sentinel names now."""
        _, port = await redis_command(self.sentinel_nodes[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                         self.service)
        return next(n for n in self.servers if n.port == int(port))

    async def failover(self, timeout: float = 20.0) -> tuple[ClusterNode, ClusterNode]:
        """``SENTINEL FAILOVER``: promote a replica; ``(old, new)`` primary, once every sentinel names the new one.

        Sentinel turns the old primary into a replica only seconds later (it waits a few of its
        INFO periods); until then it still accepts writes, which it drops when it resyncs.
        """
        old = await self.primary()
        assert await redis_command(self.sentinel_nodes[0].port, "SENTINEL", "FAILOVER", self.service) == b"OK"
        with trio.fail_after(timeout):
            while True:
                try:
                    named = {int((await redis_command(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                                      self.service))[1]) for s in self.sentinel_nodes}
                    if len(named) == 1 and old.port not in named:
                        new = next(n for n in self.servers if n.port in named)
                        if _info(await redis_command(new.port, "INFO", "replication")).get("role") == "master":
                            return old, new
                except (NoPrimary, OSError, RedisReplyError):
                    pass
                await trio.sleep(0.05)

    async def _named(self) -> set[int]:
        """The primary ports the sentinels name now (one port once they agree)."""
        return {int((await redis_command(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service,
                                         timeout=1))[1]) for s in self.sentinel_nodes}

    async def kill_primary(self, timeout: float = 30.0) -> tuple[ClusterNode, ClusterNode]:
        """SIGKILL the primary and wait until every sentinel names the promoted replica; ``(killed, new)``.

        The sentinels notice after ``down_after_ms`` and then elect a leader that promotes the replica
        (a few seconds in all). Writes the killed primary acknowledged but had not yet sent to the
        replica are lost. The killed server stays down: :meth:`restart` brings it back as a replica.
        """
        old = await self.primary()
        await old.akill()
        with trio.fail_after(timeout):
            while True:
                try:
                    named = await self._named()
                    if len(named) == 1 and old.port not in named:
                        new = next(n for n in self.servers if n.port in named)
                        if _info(await redis_command(new.port, "INFO", "replication")).get("role") == "master":
                            return old, new
                except (OSError, RedisReplyError, trio.TooSlowError):
                    pass
                await trio.sleep(0.05)

    async def restart(self, node: ClusterNode, timeout: float = 30.0) -> None:
        """Start a killed server again as a replica of the current primary and wait until it is in sync
        and the sentinels see it up (:meth:`wait_healthy`).

        Started as a replica at once: a server that comes back as a primary is demoted by the
        sentinels too, but only at their next 10 s INFO round.
        """
        if not node.running:
            (primary,) = await self._named()
            self._launch(node, [*self._SERVER_ARGS, "--replicaof", "127.0.0.1", str(primary)])
        await self.wait_healthy(timeout)

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every sentinel names the same primary and every other server replicates it, in
        sync and not flagged down: ready for the next failover. After :meth:`failover` the old primary
        is demoted only seconds later; a test that fails over again (or kills the primary) waits first.
        """
        with trio.fail_after(timeout):
            while True:
                try:
                    if await self._healthy():
                        return
                except (OSError, RedisReplyError, trio.TooSlowError):
                    pass
                await trio.sleep(0.1)

    async def _healthy(self) -> bool:
        named = await self._named()
        if len(named) != 1:
            return False
        primary = next(iter(named))
        for node in self.servers:
            if node.port == primary:
                continue
            info = _info(await redis_command(node.port, "INFO", "replication", timeout=1))
            if (info.get("role") != "slave" or info.get("master_port") != str(primary)
                    or info.get("master_link_status") != "up" or info.get("master_sync_in_progress") != "0"):
                return False
        for sentinel in self.sentinel_nodes:
            replicas = await redis_command(sentinel.port, "SENTINEL", "REPLICAS", self.service, timeout=1)
            if len(replicas) != len(self.servers) - 1 or any(
                    flag in (b"s_down", b"o_down", b"disconnected") for r in replicas for flag in _flags(r)):
                return False
        return True

    def __repr__(self) -> str:
        return f"<RedisSentinel {self.service} sentinels={','.join(self.sentinels)}>"


def _flags(fields: list[Any]) -> list[bytes]:
    """The ``flags`` of one ``SENTINEL REPLICAS`` entry (a flat name/value list), split on commas."""
    pairs = dict(zip(fields[::2], fields[1::2], strict=False))
    return bytes(pairs.get(b"flags", b"")).split(b",")
