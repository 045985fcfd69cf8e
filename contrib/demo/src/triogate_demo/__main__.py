"""``python -m triogate_demo run -c gateway.toml``: demo services plus the gateway; Ctrl-C stops both."""

from __future__ import annotations

import argparse
import signal
import sys

import trio

from .services import SERVICES, serve_all


async def _run(config: str | None) -> int:
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_all)
        for _service, instance, port in SERVICES:
            print(f"demo service {instance} on http://127.0.0.1:{port}", file=sys.stderr)
        if config is None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
                async for _ in sigs:
                    break
            nursery.cancel_scope.cancel()
            return 0
        proc = await nursery.start(lambda task_status: trio.run_process(
            [sys.executable, "-m", "triogate", "run", "-c", config], check=False, task_status=task_status))

        async def forward_signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as sigs:
                async for sig in sigs:
                    proc.send_signal(sig)

        nursery.start_soon(forward_signals)
        code = await proc.wait()
        nursery.cancel_scope.cancel()
        return code


def main() -> int:
    p = argparse.ArgumentParser(prog="triogate-demo")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="demo services and the gateway")
    r.add_argument("-c", "--config", default="gateway.toml")
    sub.add_parser("services", help="only the demo services")
    args = p.parse_args()
    return trio.run(_run, args.config if args.cmd == "run" else None)


if __name__ == "__main__":
    sys.exit(main())
