"""``triogate run`` in a child process, for what only a real process shows: signals, pid files,
workers, installed entry points, several gateways sharing state."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import tomli_w
import trio

from ..runner import default_pid_file

__all__ = ["GatewayProcess"]


class GatewayProcess:
    """``triogate run -c <config>`` in a child process, started and stopped with bounded waits.

    ``async with GatewayProcess(config) as gw:`` returns once the gateway serves and stops it
    on exit (SIGTERM, so it drains; SIGKILL after ``stop_timeout``). "Serves" means the pid file
    holds the child's pid: ``triogate run`` writes it only after every listener (with
    ``workers``, every worker) is up, so no port polling is needed and no request can race the
    startup. If the child exits first or does not serve within ``start_timeout``, ``start``
    raises ``RuntimeError`` with its exit status and the end of its output.

    - ``config``: a path to a TOML file; TOML text (``str``) or a dict are written to a temporary
      directory first (relative ``hooks`` paths then resolve there: pass a path for those).
    - ``env``: the child's environment (default: this process's), plus ``PYTHONUNBUFFERED=1``
      so :meth:`output` is current.
    - ``python``: the interpreter that runs ``-m triogate`` (default: this one); ``command``
      replaces ``[python, "-m", "triogate"]`` altogether (e.g. an installed ``triogate`` script).
    - ``args``: more ``triogate run`` arguments (``--workers 2``, ``--pid-file p``).
    - ``cwd``: the child's working directory (default: the config file's directory).

    ``pid``, ``returncode``, ``addresses``/``port``/``url`` (from ``[gateway] listen``),
    ``admin_port``/``admin_url`` (from ``[admin] listen``), ``pid_file``, :meth:`output`
    (stdout and stderr together, also after exit), :meth:`send_signal`, :meth:`wait`,
    :meth:`stop`, :meth:`kill`. Without ``async with``: ``await start()`` then ``await aclose()``.
    """

    def __init__(
        self,
        config: os.PathLike[str] | str | Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        python: str | os.PathLike[str] | None = None,
        command: Sequence[str | os.PathLike[str]] | None = None,
        args: Sequence[str | os.PathLike[str]] = (),
        cwd: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="triogate-run-"))
        if isinstance(config, os.PathLike):
            self.config_path = Path(config).resolve()
            try:
                raw = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                raw = {}  # the child reports it
        else:
            text = config if isinstance(config, str) else tomli_w.dumps(dict(config))
            self.config_path = self.directory / "gateway.toml"
            self.config_path.write_text(text, encoding="utf-8")
            try:
                raw = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                raw = {}
        self.addresses, self.admin_address = _listen_addresses(raw)
        prefix = [str(c) for c in command] if command is not None else [str(python or sys.executable), "-m", "triogate"]
        self.args = [str(a) for a in args]
        self.argv = [*prefix, "run", "-c", str(self.config_path), *self.args]
        self.cwd = str(cwd) if cwd is not None else str(self.config_path.parent)
        if "--pid-file" in self.args[:-1]:
            self.pid_file = Path(self.cwd, self.args[self.args.index("--pid-file") + 1])
        else:
            self.pid_file = default_pid_file(str(self.config_path))
        self.env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.directory / "output.log"
        self.process: trio.Process | None = None
        self._output: str | None = None

    # ------------------------------------------------------------------ what tests read

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the gateway process has not been started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """None while running (polled), else the exit status (negative: killed by that signal)."""
        return self.process.returncode if self.process is not None else None

    @property
    def port(self) -> int:
        """The first ``[gateway] listen`` port."""
        if not self.addresses:
            raise RuntimeError(f"no host:port in [gateway] listen of {self.config_path}")
        return self.addresses[0][1]

    @property
    def url(self) -> str:
        host, port = self.addresses[0] if self.addresses else ("127.0.0.1", self.port)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def admin_port(self) -> int:
        if self.admin_address is None:
            raise RuntimeError(f"no [admin] listen in {self.config_path}")
        return self.admin_address[1]

    @property
    def admin_url(self) -> str:
        host, port = self.admin_address or ("127.0.0.1", self.admin_port)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def output(self) -> str:
        """Everything the child wrote to stdout and stderr so far (kept after :meth:`aclose`)."""
        if self._output is not None:
            return self._output
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the child; returns once it serves (its pid is in the pid file)."""
        if self.process is not None:
            raise RuntimeError("the gateway process was already started")
        with self.log_path.open("wb") as log:
            self.process = await trio.lowlevel.open_process(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        expected = str(self.process.pid)
        with trio.move_on_after(self.start_timeout):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(self._failure(f"exited with status {self.process.returncode} before serving"))
                try:
                    if self.pid_file.read_text().strip() == expected:
                        return
                except OSError:
                    pass
                await trio.sleep(0.05)
        await self.kill()
        raise RuntimeError(self._failure(f"did not serve within {self.start_timeout} s (no pid in {self.pid_file})"))

    def _failure(self, what: str) -> str:
        return f"{' '.join(self.argv)} {what}; its output:\n{self.output()[-4000:]}"

    def send_signal(self, sig: int) -> None:
        if self.process is None:
            raise RuntimeError("the gateway process has not been started")
        self.process.send_signal(sig)

    async def wait(self, timeout: float | None = None) -> int:
        """The exit status, waiting at most ``timeout`` (default ``stop_timeout``) seconds.

        Raises ``trio.TooSlowError`` when the child is still running after that.
        """
        if self.process is None:
            raise RuntimeError("the gateway process has not been started")
        with trio.fail_after(self.stop_timeout if timeout is None else timeout):
            return await self.process.wait()

    async def stop(self, timeout: float | None = None) -> int:
        """SIGTERM (the gateway drains in-flight requests), SIGKILL after ``timeout``; the exit status."""
        proc = self.process
        if proc is None:
            raise RuntimeError("the gateway process has not been started")
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(self.stop_timeout if timeout is None else timeout):
                return await proc.wait()
            proc.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(10.0):
            await proc.wait()
        return proc.returncode  # type: ignore[return-value]

    async def kill(self) -> None:
        """SIGKILL, like a crash, and wait for it."""
        proc = self.process
        if proc is not None and proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True), trio.move_on_after(10.0):
                await proc.wait()

    async def aclose(self) -> None:
        """Stop the child if it runs, keep its output, remove the temporary directory."""
        with trio.CancelScope(shield=True):
            if self.process is not None:
                await self.stop()
            if self._output is None:
                self._output = self.output()
            shutil.rmtree(self.directory, ignore_errors=True)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _listen_addresses(raw: Mapping[str, Any]) -> tuple[list[tuple[str, int]], tuple[str, int] | None]:
    """``[gateway] listen`` (default 127.0.0.1:8000) and ``[admin] listen`` as (host, port) pairs."""

    def split(address: Any) -> tuple[str, int] | None:
        if isinstance(address, Mapping):
            address = address.get("address")
        if not isinstance(address, str):
            return None
        host, _, port = address.rpartition(":")
        return (host.strip("[]"), int(port)) if port.isdigit() and host else None

    gateway = raw.get("gateway") if isinstance(raw.get("gateway"), Mapping) else {}
    listen = gateway.get("listen", ["127.0.0.1:8000"])
    addresses = [a for a in (split(x) for x in (listen if isinstance(listen, list) else [])) if a is not None]
    admin = raw.get("admin") if isinstance(raw.get("admin"), Mapping) else {}
    return addresses, split(admin.get("listen"))
