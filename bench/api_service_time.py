"""Service time of the API's hot requests, in process (no network, no client threads, no worker).

The load test (bench/load_test.py) measures latency under 50 concurrent clients on a 2-core
machine, where queueing dominates; this script measures what one request costs the server, so
the two together say where the time goes. Usage:

    python bench/api_service_time.py [--database-url URL] [--n 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    ap.add_argument("--n", type=int, default=300, help="requests per kind")
    args = ap.parse_args()
    os.environ.setdefault("LI2_MAX_ACTIVE_PER_USER", str(10 * args.n))  # measure, not the quota
    os.environ["LI2_DATABASE_URL"] = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"

    from li2_service.app import create_app
    from li2_service.auth import create_user
    from li2_service.config import load_config
    from li2_store.db import init_db, make_engine, session_scope

    config = load_config()
    engine = make_engine(config["DATABASE_URL"])
    init_db(engine)
    with session_scope(engine) as s:
        token = create_user(s, f"bench-{time.time_ns()}", False)
    # Enqueueing is the broker's cost, measured by the load test; here it is a no-op.
    client = create_app({**config, "ENGINE": engine, "ENQUEUE": lambda *a, **k: None}).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    spec = {"task": {"group": "cyclic", "order": 23}}
    eid = client.post("/api/v1/experiments", json=spec, headers=headers).get_json()["id"]

    kinds = {
        "submit": lambda i: client.post("/api/v1/experiments", json={**spec, "seed": i + 1}, headers=headers),
        "submit (cached)": lambda i: client.post("/api/v1/experiments", json=spec, headers=headers),
        "status": lambda i: client.get(f"/api/v1/experiments/{eid}", headers=headers),
        "list": lambda i: client.get("/api/v1/experiments?page_size=20", headers=headers),
    }
    print(f"| request ({engine.dialect.name}, in process) | n | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for name, call in kinds.items():
        times = []
        for i in range(args.n):
            t = time.perf_counter()
            r = call(i)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code in (200, 202), (name, r.status_code, r.get_data(as_text=True)[:200])
        times.sort()
        print(f"| {name} | {args.n} | {statistics.median(times):.1f} | {times[int(0.99 * (len(times) - 1))]:.1f} |")


if __name__ == "__main__":
    main()
