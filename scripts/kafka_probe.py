#!/usr/bin/env python3
"""Ask a Kafka broker for metadata (Metadata v0) and exit 0 once it answers.

Usage: kafka_probe.py HOST:PORT [TIMEOUT_SECONDS]
Standard library only: it runs before anything else is built.
"""
import socket, struct, sys, time


def metadata(host, port):
    client = b"yishi-probe"
    body = struct.pack(">hhih", 3, 0, 1, len(client)) + client + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    correlation, brokers = struct.unpack(">ii", data[:8])
    if correlation != 1 or brokers < 1:
        raise RuntimeError(f"unexpected metadata reply (correlation {correlation}, {brokers} brokers)")
    return brokers


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    deadline = time.monotonic() + float(sys.argv[2] if len(sys.argv) > 2 else 30)
    last = None
    while time.monotonic() < deadline:
        try:
            metadata(host, int(port))
            return 0
        except Exception as e:  # not up yet
            last = e
            time.sleep(0.1)
    print(f"kafka_probe: no metadata from {sys.argv[1]}: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
