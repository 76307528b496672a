"""python -m iasstandin [--directory .local/sandbox] [--port 8443] [--backend-port 8444] [--latency-ms 0]"""

from __future__ import annotations

import argparse
import sys

from .standin import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iasstandin",
        description="A local IAS tenant (client credentials with mTLS, OIDC login) and a protected backend.",
    )
    parser.add_argument("--directory", default=".local/sandbox", help="state kept across restarts")
    parser.add_argument("--port", type=int, default=8443, help="tenant port (0: any free port)")
    parser.add_argument("--backend-port", type=int, default=8444, help="backend port (0: any free port)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every answer, as a remote IAS (default 0)"
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms cannot be negative")
    serve(args.directory, args.port, args.backend_port, latency=args.latency_ms / 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
