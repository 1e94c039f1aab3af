"""Local worker processes for many-video runs: `run_local(job, items, jobs)`.

A *job* says what to do with one item (a video) and is the same for every engine here and in
`cluster.py`; it is a picklable object with

    job.setup()              -> the worker's state (e.g. a loaded model), built once per worker
    job.run(state, item)     -> the item's result (a failure is a result too: it never raises
                                for a bad item)
    job.failed(item, reason) -> the result of an item that could not be run at all

``jobs == 1`` runs in this process.  Otherwise `concurrent.futures.ProcessPoolExecutor`
with `jobs` processes started by ``spawn`` (a fresh interpreter: never a fork of a process
whose Numba threads are running); each worker builds its state once in the pool's
initializer, ignores Ctrl-C (the parent decides what an interrupt means) and uses one kernel
thread unless the job says otherwise.  Numba's kernels come from the shared on-disk cache.

Results are yielded as they finish, in any order; at most ``2 * jobs`` items are in flight, so
memory stays flat however many items there are.  When a worker process dies (killed, out of
memory, a crash in native code) the pool is broken: it is replaced, and the items that were in
flight are run again, each alone in the new pool, so that a second death names its item: that
one becomes ``job.failed(item, ...)`` (it was tried twice), the others go on.
"""
from __future__ import annotations

import collections
import multiprocessing
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, Iterator

from ..errors import MinimovinetError

__all__ = ["run_local", "run_in_worker", "WorkerSetupFailed", "IN_FLIGHT_PER_WORKER",
           "ATTEMPTS"]

IN_FLIGHT_PER_WORKER = 2     # items queued per worker: keeps every worker busy, memory bounded
ATTEMPTS = 2                 # an item whose worker died is tried once more (alone)
START_METHOD = "spawn"
MAX_FRUITLESS_POOLS = 5      # pools that break before finishing anything: give up, say so


class WorkerSetupFailed:
    """A worker whose `job.setup()` raised: every item it gets fails with this reason (instead
    of a broken pool restarted for ever)."""

    def __init__(self, reason: str):
        self.reason = reason


def _setup(job):
    try:
        return job.setup()
    except Exception as e:           # noqa: BLE001 (said in every item's result)
        return WorkerSetupFailed(f"the worker could not start: {type(e).__name__}: {e}")


def _run(job, state, item):
    if isinstance(state, WorkerSetupFailed):
        return job.failed(item, state.reason)
    return job.run(state, item)


# ---- in a worker process of the pool --------------------------------------------------------

_pool_state = None


def _pool_initializer(job) -> None:
    global _pool_state
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the parent's to handle
    _pool_state = _setup(job)


def _pool_task(job, item):
    return _run(job, _pool_state, item)


# ---- in a Dask worker (cluster.py): the state cached per worker thread, per job ---------------

_thread_states = threading.local()


def run_in_worker(job, item):
    """Run `item` with the state of `job` built once per worker thread (Dask's task function)."""
    cache = getattr(_thread_states, "cache", None)
    if cache is None:
        cache = _thread_states.cache = {}
    key = job.key()
    if key not in cache:
        cache.clear()                                  # one model per thread at a time
        cache[key] = _setup(job)
    return _run(job, cache[key], item)


# ---- the parent ------------------------------------------------------------------------------

def _new_pool(job, jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=jobs,
                               mp_context=multiprocessing.get_context(START_METHOD),
                               initializer=_pool_initializer, initargs=(job,))


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop now: queued items cancelled, running ones abandoned (their workers terminated)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def run_local(job, items: Iterable, jobs: int = 1) -> Iterator:
    """The results of `job` on every item, as they finish (see the module docstring)."""
    if jobs == 1:
        state = _setup(job)
        for item in items:
            yield _run(job, state, item)
        return
    pending = iter(items)
    carried = collections.deque()      # taken from `items`, not yet submitted (pool broke)
    suspects = collections.deque()     # items in flight when a worker died: rerun one by one
    in_flight = {}                     # future -> (item, True when it is a suspect's rerun)
    fruitless = 0                      # pools broken in a row with nothing finished
    pool = _new_pool(job, jobs)
    try:
        while True:
            broken = not _fill(pool, job, jobs, pending, carried, suspects, in_flight)
            if not broken:
                if not in_flight:
                    return
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                broken = _died_any(done)
            if broken:
                # the pool is broken: every future still in it fails too (at once)
                done, _ = wait(list(in_flight))
            for future in done:
                item, rerun = in_flight.pop(future)
                if not _died(future):
                    fruitless = 0
                    yield future.result()
                elif not rerun:
                    suspects.append(item)
                else:
                    fruitless = 0
                    yield job.failed(item, f"the worker process died while running it "
                                           f"({ATTEMPTS} times)")
            if broken:
                fruitless += 1
                if fruitless > MAX_FRUITLESS_POOLS:
                    raise MinimovinetError(f"the worker processes keep dying before they "
                                           f"finish anything ({fruitless} pools in a row); "
                                           f"try --jobs 1 to see why")
                _stop_pool(pool)
                pool = _new_pool(job, jobs)
    finally:
        _stop_pool(pool)


_END = object()


def _fill(pool, job, jobs, pending, carried, suspects, in_flight) -> bool:
    """Submit what may run now: a suspect alone, else up to the in-flight limit from
    `carried` then `pending`.  False when the pool turned out broken (nothing is lost: an
    item that could not be submitted goes back where it came from)."""
    def submit(item, rerun) -> bool:
        try:
            in_flight[pool.submit(_pool_task, job, item)] = (item, rerun)
            return True
        except BrokenProcessPool:
            (suspects if rerun else carried).appendleft(item)
            return False

    if suspects:
        # alone in the pool: if its worker dies again, this item is the one
        return bool(in_flight) or submit(suspects.popleft(), True)
    while len(in_flight) < IN_FLIGHT_PER_WORKER * jobs:
        item = carried.popleft() if carried else next(pending, _END)
        if item is _END:
            return True
        if not submit(item, False):
            return False
    return True


def _died(future) -> bool:
    """True when the future failed because its pool broke (a worker process died)."""
    return (future.done() and not future.cancelled()
            and isinstance(future.exception(), BrokenProcessPool))


def _died_any(futures) -> bool:
    return any(_died(f) for f in futures)
