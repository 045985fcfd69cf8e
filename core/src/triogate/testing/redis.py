"""A real ``redis-server`` (Debian/Ubuntu: ``apt-get install redis-server``) on a free loopback
port, for plugins with a Redis backend. It needs the binary, no Python package."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence

import trio

from ..devserver import free_port

__all__ = ["RedisServer"]


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

