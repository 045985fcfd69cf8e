"""``python -m triogate_demo run -c gateway.toml``: demo services plus the gateway; Ctrl-C stops both."""

from __future__ import annotations

import argparse
import signal
import sys

import trio

from .idp import IDP_PORT, serve_idp
from .services import SERVICES, serve_all

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _run(config: str | None, without: frozenset[str] = frozenset()) -> int:
    services = [s for s in SERVICES if s[0] not in without]
    # listen for signals first: one that arrives while the services or the gateway start is kept
    # and handled (forwarded) once they run, instead of killing this process half-way
    with trio.open_signal_receiver(*STOP_SIGNALS, signal.SIGHUP) as sigs:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_all(task_status, services=services))
            for _service, instance, port in services:
                print(f"demo service {instance} on http://127.0.0.1:{port}", file=sys.stderr)
            if "idp" not in without:
                await nursery.start(serve_idp)
                print(f"demo OpenID provider on http://127.0.0.1:{IDP_PORT} (logs everyone in as Ada)", file=sys.stderr)
            if config is None:
                async for sig in sigs:
                    if sig in STOP_SIGNALS:
                        break
                nursery.cancel_scope.cancel()
                return 0
            proc = await nursery.start(lambda task_status: trio.run_process(
                [sys.executable, "-m", "triogate", "run", "-c", config], check=False, task_status=task_status))

            async def forward_signals() -> None:
                async for sig in sigs:
                    proc.send_signal(sig)

            nursery.start_soon(forward_signals)
            code = await proc.wait()
            nursery.cancel_scope.cancel()
    # the gateway exits 0 after a SIGTERM/SIGINT drain; should it die by a signal, say so the way a
    # shell does (128 + n), not as sys.exit(-15), which the shell and make see as 241
    return code if code >= 0 else 128 - code


def main() -> int:
    p = argparse.ArgumentParser(prog="triogate-demo")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="demo services and the gateway")
    r.add_argument("-c", "--config", default="gateway.toml")
    s = sub.add_parser("services", help="only the demo services")
    names = sorted({service for service, _, _ in SERVICES} | {"idp"})
    for cmd in (r, s):
        cmd.add_argument("--without", action="append", default=[], choices=names, metavar="SERVICE",
                         help=f"do not start this service (repeatable; one of {', '.join(names)})")
    args = p.parse_args()
    # trio's receiver in _run owns the stop signals while it runs and then puts back what it found:
    # "ignore", so a late duplicate (one to the process group, one from make) cannot kill us after a
    # clean stop ("make: *** Terminated" / "Error 241")
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    return trio.run(_run, args.config if args.cmd == "run" else None, frozenset(args.without))


if __name__ == "__main__":
    sys.exit(main())
