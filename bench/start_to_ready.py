#!/usr/bin/env python3
"""Starts a server and measures the time from its start to its first GET /readyz = 200.

usage: start_to_ready.py --ca CA --port PORT --log FILE -- COMMAND...

Prints "PID MILLISECONDS" and leaves the server running (its output goes to FILE).
Polls from this process over one TLS client context, so that the figure is the server's
start-up and not a poller's: starting a curl process per attempt added about 40 ms.
"""

import argparse
import http.client
import ssl
import subprocess
import sys
import time

DEADLINE_SECONDS = 10


def ready(context: ssl.SSLContext, port: int) -> bool:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=1)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ca", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    context = ssl.create_default_context(cafile=args.ca)
    with open(args.log, "wb") as log:
        started = time.monotonic()
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    while not ready(context, args.port):
        if server.poll() is not None:
            print(f"start_to_ready: the server exited with {server.returncode}", file=sys.stderr)
            return 1
        if time.monotonic() - started > DEADLINE_SECONDS:
            server.kill()
            print(f"start_to_ready: not ready within {DEADLINE_SECONDS} s", file=sys.stderr)
            return 1
        time.sleep(0.0005)
    took_ms = (time.monotonic() - started) * 1000
    print(f"{server.pid} {took_ms:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
