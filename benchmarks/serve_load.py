"""Load test of `fashiongan serve` on loopback: C concurrent clients × R requests each against a
real uvicorn server in a subprocess; prints errors, p50/p99 latency and requests/s.

    python benchmarks/serve_load.py RUN_DIR [--clients 8] [--requests 200]
        [--path "/v1/generate?n=16&seed={i}"] [--json out.json]

{i} in --path is the request number (distinct seeds, so nothing is cached). Nothing else
should run on the machine meanwhile.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", help="run directory or checkpoint to serve")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=200, help="per client")
    p.add_argument("--path", default="/v1/generate?n=16&seed={i}")
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fashiongan", "serve", args.source, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)

        def client(c: int) -> list[tuple[float, int]]:
            out = []
            with httpx.Client(base_url=base, timeout=120) as http:
                for r in range(args.requests):
                    i = c * args.requests + r
                    t = time.perf_counter()
                    status = http.get(args.path.format(i=i)).status_code
                    out.append((time.perf_counter() - t, status))
            return out

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = [x for chunk in pool.map(client, range(args.clients)) for x in chunk]
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(30)

    latencies = sorted(t for t, _ in results)
    errors = sum(status != 200 for _, status in results)
    q = statistics.quantiles(latencies, n=100)
    report = {
        "path": args.path,
        "clients": args.clients,
        "requests": len(results),
        "errors": errors,
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "requests_per_s": round(len(results) / wall, 1),
        "seconds": round(wall, 1),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
