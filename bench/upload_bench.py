#!/usr/bin/env python3
"""Chunked uploads made of tiny chunks: how many pieces reach the upstream, and at what CPU cost.

The gateway decodes a chunked request body per read, not per chunk: the tiny chunks that one
``recv`` returns are forwarded as one piece (one upstream write, re-framed as one chunk). This
sends the same body (``--chunks`` chunks of ``--size`` bytes) twice:

- *burst*: written as fast as the socket takes it, so each gateway read holds many chunks;
- *paced*: one chunk per TCP segment with a short pause, so each read holds one chunk, which is
  what forwarding chunk by chunk would cost for the burst too.

It prints the chunks the upstream received and the gateway's CPU per upload for both.

    python bench/upload_bench.py                      # 40000 chunks of 8 bytes (320 kB), 3 uploads each
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy_bench as pb  # wait_port, cpu_seconds

GATEWAY_PORT, UPSTREAM_PORT = 18095, 18096


class CountingUpstream:
    """Reads chunked request bodies and counts their chunks; answers 200 at the last chunk."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", UPSTREAM_PORT))
        self.chunks: list[int] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                buf += data
                if b"\r\n\r\n" not in buf:
                    continue
                head, _, body = buf.partition(b"\r\n\r\n")
                length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                if length:  # the gateway buffered the whole (small) body: one piece
                    if len(body) < int(length.group(1)):
                        continue
                    self.chunks.append(1)
                elif body.endswith(b"0\r\n\r\n"):
                    self.chunks.append(len(re.findall(rb"(?:^|\r\n)[0-9a-f]+\r\n", body)) - 1)
                else:
                    continue
                buf = b""
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


def upload(chunks: int, size: int, paced: bool) -> None:
    piece = b"%x\r\n%s\r\n" % (size, b"x" * size)
    with socket.create_connection(("127.0.0.1", GATEWAY_PORT), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        if paced:
            for _ in range(chunks):
                s.sendall(piece)
                time.sleep(0.00005)
        else:
            s.sendall(piece * chunks)
        s.sendall(b"0\r\n\r\n")
        answer = b""
        while not answer.endswith(b"ok"):
            data = s.recv(4096)
            if not data:
                break
            answer += data
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=40000)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    up = CountingUpstream()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "gateway.toml"
        cfg.write_text(textwrap.dedent(f"""\
            [gateway]
            listen = ["127.0.0.1:{GATEWAY_PORT}"]
            log_level = "warning"
            [upstreams.u]
            targets = [{{ url = "http://127.0.0.1:{UPSTREAM_PORT}" }}]
            [routes.r]
            paths = ["/"]
            upstream = "u"
            """))
        env = {k: v for k, v in os.environ.items() if k != "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"}
        gw = subprocess.Popen([sys.executable, "-m", "triogate", "run", "-c", str(cfg)], env=env, cwd=tmp)
        try:
            pb.wait_port(GATEWAY_PORT)
            upload(100, args.size, False)  # warm-up
            rows = {}
            for mode in ("burst", "paced"):
                cpu, pieces = [], []
                for _ in range(args.rounds):
                    before = pb.cpu_seconds(gw.pid)
                    upload(args.chunks, args.size, mode == "paced")
                    cpu.append((pb.cpu_seconds(gw.pid) - before) * 1000)
                    pieces.append(up.chunks[-1])
                rows[mode] = (statistics.median(pieces), statistics.median(cpu))
        finally:
            gw.send_signal(signal.SIGINT)
            gw.wait(30)
    print(f"\n{args.chunks} chunks of {args.size} bytes per upload, median of {args.rounds}")
    print("| client writes | chunks the upstream received | gateway CPU ms per upload |")
    print("|---|---|---|")
    for mode, (pieces, ms) in rows.items():
        print(f"| {mode} | {pieces:.0f} | {ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
