"""`minimovinet classify` over many videos: results files, resume, progress, the summary.

    minimovinet classify clips/ more.mp4 @todo.txt --jsonl results.jsonl [--csv results.csv]
                         [--jobs N | --scheduler tcp://HOST:8786] [--resume] [--max-frames N]

Chosen by `cli.py` when there are several inputs, a folder or an ``@list``, or one of
``--jsonl OUT``, ``--csv OUT``, ``--jobs``, ``--scheduler``, ``--resume``.  Each result is
appended to the results files as it finishes (`results.ResultLog`); with neither file, one
line per video goes to stdout (``--json``: the JSONL records; ``--csv`` alone: the CSV rows).  ``--resume`` skips the videos
already in the files.  A failed video is reported on stderr and recorded; the exit status is
1 when any video in the results failed.
"""
from __future__ import annotations

import sys
import time
from typing import List

from ..errors import InputError
from .inputs import expand_inputs
from .results import COLUMNS, ResultLog, VideoRecord, csv_line

__all__ = ["run_many"]


def _open_logs(args) -> List[ResultLog]:
    from .many import check_output_path
    logs = []
    if args.jsonl:
        check_output_path(args.jsonl, "--jsonl")
        logs.append(ResultLog(args.jsonl, "jsonl", resume=args.resume))
    if isinstance(args.csv, str):
        check_output_path(args.csv, "--csv")
        logs.append(ResultLog(args.csv, "csv", resume=args.resume))
    return logs


def _check_options(args) -> None:
    if args.output or args.plot:
        raise InputError("-o and --plot are for one video; for many videos write the results "
                         "with --jsonl OUT and/or --csv OUT")
    if args.resume and not (args.jsonl or isinstance(args.csv, str)):
        raise InputError("--resume continues a results file: give --jsonl OUT or --csv OUT")
    if args.scheduler and args.jobs is not None:
        raise InputError("--jobs sets the local worker processes; with --scheduler the "
                         "cluster's workers run the videos")


def _stdout_line(record: VideoRecord, args) -> str:
    if args.json:
        return record.to_json()
    if args.csv is True:                                     # `--csv` alone: rows on stdout
        return csv_line(record.csv_row()).rstrip("\n")
    if not record.ok:
        return f"{record.path}: error: {record.error}"
    best = record.top_k[0] if record.top_k else None
    shown = f"{best['label']} {best['probability']:.4f}" if best else "(no class kept)"
    return f"{record.path}: {shown} ({record.frames} frames)"


def run_many(args, classifier_options: dict, show_progress: bool, prepare=None) -> int:
    """The many-video classify (see the module docstring); returns the exit code.  prepare:
    called once the inputs and the results files are known good, before the work."""
    from .many import classify_many
    from .progress import Progress
    _check_options(args)
    paths, notes = expand_inputs(args.videos)
    for note in notes:
        print(f"minimovinet classify: note: {note}", file=sys.stderr)
    logs = _open_logs(args)
    if not logs and args.csv is True:
        sys.stdout.write(csv_line(COLUMNS))
    client = None
    try:
        done = [p for p in paths if logs and all(p in log for log in logs)]
        todo = len(paths) - len(done)
        if done:
            print(f"minimovinet classify: resuming: {len(done)} of {len(paths)} videos are "
                  f"done already", file=sys.stderr)
        if prepare is not None:
            prepare()
        if args.scheduler:
            from .cluster import connect
            client = connect(args.scheduler)
        results = classify_many(paths, jobs=args.jobs, client=client, skip=done,
                                threads=args.threads or 1, **classifier_options)
        start, failed, count = time.perf_counter(), 0, 0
        with Progress("classify", todo, unit="videos", enabled=show_progress) as bar:
            for record in results:
                for log in logs:
                    if record.path not in log:          # never twice in one file
                        log.append(record)
                if not logs:
                    sys.stdout.write(_stdout_line(record, args) + "\n")
                    sys.stdout.flush()
                if not record.ok:
                    failed += 1
                    bar.write(f"minimovinet classify: error: {record.error}")
                count += 1
                bar.update(1)
        seconds = time.perf_counter() - start
        earlier = max((log.failed for log in logs), default=0) - failed
        rate = f", {count / seconds:.2f} videos/s" if seconds > 0 and count else ""
        print(f"minimovinet classify: {count} videos in {seconds:.1f} s{rate}: "
              f"{count - failed} classified, {failed} failed"
              + (f"; {earlier} failed in the earlier run" if earlier > 0 else "")
              + (f"; results in {', '.join(str(log.path) for log in logs)}" if logs else ""),
              file=sys.stderr)
        return 1 if failed or earlier > 0 else 0
    finally:
        for log in logs:
            log.close()
        if client is not None:
            client.close()
