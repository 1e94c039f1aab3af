"""Many-video runs on a Dask cluster (`distributed`, the optional extra ``cluster``).

    dask scheduler                                   # on one machine: tcp://HOST:8786
    dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1     # on each machine
    client = connect("tcp://HOST:8786")              # a clear error within `timeout` seconds
    for result in run_dask(job, items, client): ...

The job is the one the local engine runs (`workers.py`); each task calls
`workers.run_in_worker(job, item)`, which builds the job's state (the model) once per worker
thread and keeps it for the next items.  The workers need minimovinet installed, and the
videos and the model at the same paths as here (a shared file system, or the same copies).

At most ``2 * (the cluster's threads)`` items are in flight.  A worker that dies has its tasks
rescheduled by the scheduler on the others (Dask's ``allowed-failures``, 3 by default); a task
that has killed too many workers (`KilledWorker`) becomes ``job.failed(item, ...)``.
"""
from __future__ import annotations

import itertools
import logging
import uuid
from concurrent.futures import CancelledError
from typing import Iterable, Iterator

from ..errors import ClusterError, MissingDependencyError
from .workers import IN_FLIGHT_PER_WORKER, run_in_worker

__all__ = ["connect", "run_dask", "ClusterError", "CLUSTER_INSTALL_HINT", "CONNECT_TIMEOUT"]

CLUSTER_INSTALL_HINT = 'pip install "minimovinet[cluster]"'
CONNECT_TIMEOUT = 3.0            # seconds to reach the scheduler before saying it cannot be
WORKERS_TIMEOUT = 60.0           # seconds to wait for a first worker on a scheduler without any


def import_distributed():
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(f"running on a Dask cluster needs dask and distributed, "
                                     f"which are not installed: {CLUSTER_INSTALL_HINT}") from None
    return distributed


def _unreachable(address: str, timeout: float, reason: str) -> ClusterError:
    return ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                        f"({reason}); start one with `dask scheduler` and workers with "
                        f"`dask worker {address}`")


def _probe(address: str, timeout: float) -> None:
    """A plain TCP connection first: a refused or unroutable address fails at once, before
    importing distributed and its retries."""
    import socket
    from urllib.parse import urlsplit
    if not isinstance(address, str):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ClusterError(f"{address!r} is not a scheduler address (tcp://HOST:PORT)") \
            from None
    if not host or not port:
        raise ClusterError(f"{address!r} is not a scheduler address (tcp://HOST:PORT)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise _unreachable(address, timeout, e.strerror or str(e) or type(e).__name__) \
            from None


def _ask_identity(distributed, address: str, timeout: float) -> None:
    """The scheduler's own answer, within `timeout` (the Client's timeout does not cover a
    port that accepts the connection and then says nothing: it would wait for ever)."""
    import asyncio

    async def ask():
        async with distributed.core.rpc(address) as remote:
            return await remote.identity()

    answer = asyncio.run(asyncio.wait_for(ask(), timeout))
    if not (isinstance(answer, dict) and answer.get("type") == "Scheduler"):
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        raise ClusterError(f"{address} is not a Dask scheduler (it says it is a {kind}): give "
                           f"the scheduler's address, not a worker's")


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A `distributed.Client` of the scheduler at `address` (``tcp://HOST:PORT``), or a
    `ClusterError` within about `timeout` seconds when it cannot be reached."""
    _probe(address, timeout)
    distributed = import_distributed()
    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.client",
                                           "distributed.comm")]
    levels = [log.level for log in quiet]
    for log in quiet:                              # its retries would fill the terminal
        log.setLevel(logging.CRITICAL)
    try:
        _ask_identity(distributed, address, timeout)
        return distributed.Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as e:
        raise _unreachable(address, timeout, " ".join(str(e).split()) or type(e).__name__) \
            from None
    except MemoryError:             # another service's bytes read as a Dask message's length
        raise ClusterError(f"{address} answered, but not as a Dask scheduler does (another "
                           f"service on that port?)") from None
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)


def _threads(client) -> int:
    """The cluster's worker threads, waiting a while for a first worker (a scheduler alone
    would leave every task waiting for ever)."""
    try:
        threads = sum(client.nthreads().values())
        if threads == 0:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
            threads = sum(client.nthreads().values())
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"no worker joined the Dask scheduler {client.scheduler.address} "
                           f"within {WORKERS_TIMEOUT:g} s ({' '.join(str(e).split())}): start "
                           f"them with `dask worker {client.scheduler.address}`") from None
    return max(1, threads)


def run_dask(job, items: Iterable, client) -> Iterator:
    """The results of `job` on every item, computed by the cluster's workers, as they finish."""
    distributed = import_distributed()
    run_id = uuid.uuid4().hex[:12]
    numbers = itertools.count()
    pending = iter(items)
    owner = {}                                     # future -> item

    def submit():
        item = next(pending, _END)
        if item is _END:
            return None
        future = client.submit(run_in_worker, job, item, pure=False,
                               key=f"minimovinet-{run_id}-{next(numbers)}")
        owner[future] = item
        return future

    limit = IN_FLIGHT_PER_WORKER * _threads(client)
    first = [f for f in (submit() for _ in range(limit)) if f is not None]
    running = distributed.as_completed(first)
    try:
        for future in running:
            item = owner.pop(future)
            try:
                result = future.result()
            except distributed.KilledWorker as e:
                result = job.failed(item, f"the Dask workers running it died ({e})")
            except (OSError, TimeoutError, CancelledError) as e:
                reason = " ".join(str(e).split()) or type(e).__name__
                raise ClusterError(f"lost the Dask cluster while running {item} ({reason})") \
                    from None
            future.release()
            following = submit()
            if following is not None:
                running.add(following)
            yield result
    finally:
        for future in owner:
            future.cancel()


_END = object()
