"""``li2lab worker [--device auto|cpu|cuda|cuda:N] [--concurrency 1]``: one Celery worker + reaper.

``li2lab worker --explain`` prints the sub-batch sizes this host has learned and exits.

The main process preloads torch and the runner (li2_worker.preload; never initialising CUDA), runs
the reaper and dispatcher loops in background threads, and Celery's worker with a prefork pool
whose child is replaced after every task. The device reaches the children
through LI2_WORKER_DEVICE. One worker per GPU: pin it with CUDA_VISIBLE_DEVICES=N (the GPU is
then cuda:0 inside) or with --device cuda:N; see docs/workers.md.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys
import threading

from li2_worker.settings import DEVICE_RE

log = logging.getLogger(__name__)


def _device(value: str) -> str:
    if not DEVICE_RE.match(value):
        raise argparse.ArgumentTypeError(f"--device must be auto, cpu, cuda or cuda:N, got {value!r}")
    return value


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--concurrency must be an integer >= 1, got {value!r}")
    return n


# What the reaper's passes import lazily (the sweep fan-in's law fit and the search planner pull in
# numpy). Imported here, in the main thread, before the reaper thread starts: a thread that is
# importing a module while Celery forks a pool child leaves that module's import lock held in the
# child for good, and the child then hangs on its own first import of it (seen: a fresh child
# stuck in `import torch` -> numpy, the lock taken by the parent's reaper at its first pass).
REAPER_LAZY_IMPORTS = ("numpy", "kombu.exceptions", "li2.scaling", "li2.search", "li2_store.searches")


def _preload_reaper_imports() -> None:
    for name in REAPER_LAZY_IMPORTS:
        importlib.import_module(name)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The worker's options (li2lab.main adds them to its `worker` subcommand)."""
    parser.add_argument(
        "--device",
        type=_device,
        default=os.environ.get("LI2_WORKER_DEVICE") or "auto",
        help="auto | cpu | cuda | cuda:N (default: LI2_WORKER_DEVICE or auto)",
    )
    parser.add_argument("--concurrency", type=_positive, default=1, help="pool processes (default 1; keep 1 per GPU)")
    parser.add_argument("--name", default=None, help="Celery node name (default li2-<pid>@<host>)")
    parser.add_argument("--loglevel", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--no-reaper", action="store_true", help="do not run the reaper thread here")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the sub-batch sizes this host has learned (li2_worker.throughput) and exit",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return add_arguments(argparse.ArgumentParser(prog="li2lab worker", description=__doc__)).parse_args(argv)


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """Start the worker; `args` is li2lab.main's parsed namespace or an argv list (None = sys.argv)."""
    ns = args if isinstance(args, argparse.Namespace) else parse_args(args)
    defaults = parse_args([])
    device = getattr(ns, "device", None) or defaults.device
    os.environ["LI2_WORKER_DEVICE"] = device  # read by the pool children (settings.load_settings)

    from li2_store.config import ConfigError, check_secrets
    from li2_store.db import init_db, make_engine
    from li2_worker import compile_cache
    from li2_worker.celery_app import make_celery
    from li2_worker.reaper import run_forever
    from li2_worker.settings import load_settings

    try:
        if getattr(ns, "explain", False):
            from li2_worker.throughput import explain

            print(explain(load_settings()))
            return 0
        check_secrets()
        settings = load_settings()
        caches = compile_cache.configure(settings.cache_dir)  # before Celery forks any child
    except ConfigError as exc:
        print(f"li2lab worker: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(ns, "loglevel", "INFO"),
        format="[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s",
    )
    if settings.preload:
        from li2_worker.preload import preload

        preload()  # after the cache folders are set, before any thread starts (li2_worker.preload)

    stop = threading.Event()
    name = getattr(ns, "name", None) or f"li2-{os.getpid()}@%h"
    if not getattr(ns, "no_reaper", False):
        _preload_reaper_imports()
        engine = make_engine(settings.database_url)
        if engine.url.get_backend_name() == "sqlite":
            init_db(engine)  # embedded mode: the tables may not exist yet; PostgreSQL uses Alembic
        # A forked pool child must not reuse the reaper's pooled connections (SQLAlchemy's advice).
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        from li2_worker import dispatcher

        dispatcher.guard_forks()  # Celery forks only between the reaper's and dispatcher's passes
        slot = (name.replace("%h", socket.gethostname()), int(getattr(ns, "concurrency", 1) or 1), device)
        threading.Thread(target=run_forever, args=(engine, settings, stop), name="li2-reaper", daemon=True).start()
        threading.Thread(
            target=dispatcher.run_forever, args=(engine, settings, stop, slot), name="li2-dispatch", daemon=True
        ).start()

    app = make_celery(settings.broker_url)
    log.info(
        "li2 worker %s: device=%s broker=%s compile cache=%s",
        name,
        device,
        "embedded SQLite" if settings.broker_embedded else settings.broker_url.split("@")[-1],
        caches["TORCHINDUCTOR_CACHE_DIR"],
    )
    try:
        app.worker_main(
            [
                "worker",
                "-P",
                "prefork",
                "-c",
                str(getattr(ns, "concurrency", 1) or 1),
                "-n",
                name,
                "--loglevel",
                getattr(ns, "loglevel", "INFO"),
                "--without-gossip",
                "--without-mingle",
                "--max-tasks-per-child",
                "1",
            ]
        )
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
