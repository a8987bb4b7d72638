"""aiohttp stress client: the Python twin of `kaggle-solver stress --submit-only`.

N concurrent clients share M submissions of `POST {base}/run?url=...`; a submission counts when it
answers 202 with a `job_id`. Prints ONE JSON line with the same keys as the Rust tool (submit
latency is nearest-rank p50/p99/max in ms). Exits 1 on any error.

    python client.py --url http://127.0.0.1:8001 --clients 50 --jobs 5000
"""

import argparse
import asyncio
import json
import math
import sys
import time

import aiohttp


def percentile(values, q):
    if not values:
        return 0.0
    return values[min(max(math.ceil(q * len(values)), 1), len(values)) - 1]


async def main(args) -> int:
    run = args.url.rstrip("/") + "/run"
    params = {"url": args.competition}
    latencies, errors, remaining = [], 0, [args.jobs]
    first_error = []

    async def client(session):
        nonlocal errors
        while remaining[0] > 0:
            remaining[0] -= 1
            sent = time.perf_counter()
            try:
                async with session.post(run, params=params) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status != 202 or "job_id" not in body:
                        raise RuntimeError(f"{resp.status}: {body}")
                latencies.append((time.perf_counter() - sent) * 1e3)
            except Exception as exc:  # noqa: BLE001 - any failure is a counted error
                errors += 1
                first_error[:1] = first_error or [repr(exc)]

    connector = aiohttp.TCPConnector(limit=args.clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(args.clients)))
        elapsed = time.perf_counter() - started
    if first_error:
        print(f"client.py: submit failed: {first_error[0]}", file=sys.stderr)
    latencies.sort()
    print(
        json.dumps(
            {
                "clients": args.clients,
                "jobs": args.jobs,
                "submitted": len(latencies),
                "submit_errors": errors,
                "submit_p50_ms": round(percentile(latencies, 0.50), 3),
                "submit_p99_ms": round(percentile(latencies, 0.99), 3),
                "submit_max_ms": round(latencies[-1] if latencies else 0.0, 3),
                "submits_per_s": round(len(latencies) / elapsed, 1),
                "elapsed_s": round(elapsed, 3),
            }
        )
    )
    return 1 if errors else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8001")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--competition", default="https://www.kaggle.com/competitions/penguins")
    sys.exit(asyncio.run(main(p.parse_args())))
