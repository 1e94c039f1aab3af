"""One result per video, and the files that collect them line by line (JSONL, CSV).

A result is a dict (also readable as attributes, `VideoRecord.path`):

    {"path": "clips/a.mp4", "frames": 22, "seconds": 4.2,
     "top_k": [{"label": "carving ice", "probability": 0.97...}, ...], "error": null}

``frames``: the frames fed to the model; ``seconds``: the span of video they cover (first to
last frame fed, as `minimovinet classify` prints it); ``top_k``: the final top-k in the form of
``classify --json``; ``error``: null when it worked, else one line saying why (and then
frames / seconds are null and top_k is empty).

`ResultLog` appends one result a line to a JSONL or CSV file: each line is written whole with
one ``write`` on a file opened for appending, then flushed to disk (fsync), so an interrupted
run (Ctrl-C, a killed process, a lost machine) leaves complete lines and at most one torn last
line.  Opened with ``resume=True`` it reads what is there, drops a torn last line, and says
which videos are done, so a resumed run neither redoes nor duplicates them.  The CSV has the
same columns; its ``top_k`` cell is the JSON text of the list.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Optional, Set

from ..errors import FileError, InputError
from .inputs import path_key

__all__ = ["VideoRecord", "ResultLog", "COLUMNS", "csv_line"]

COLUMNS = ("path", "frames", "seconds", "top_k", "error")
FORMATS = ("jsonl", "csv")


class VideoRecord(dict):
    """The result of one video: a dict with the keys `COLUMNS`, also read as attributes."""

    def __init__(self, path, frames: Optional[int] = None, seconds: Optional[float] = None,
                 top_k=(), error: Optional[str] = None):
        top = [{"label": str(t["label"]), "probability": float(t["probability"])}
               if isinstance(t, dict) else {"label": str(t[0]), "probability": float(t[1])}
               for t in top_k]
        super().__init__(path=os.fspath(path), frames=frames, seconds=seconds, top_k=top,
                         error=None if error is None else " ".join(str(error).split()))

    @classmethod
    def failed(cls, path, error) -> "VideoRecord":
        return cls(path, error=error)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self):                    # pickled across processes as its fields
        return (type(self), tuple(self[c] for c in COLUMNS))

    @property
    def ok(self) -> bool:
        return self["error"] is None

    def to_json(self) -> str:
        return json.dumps(dict(self), ensure_ascii=False)

    def csv_row(self) -> list:
        def cell(value):
            return "" if value is None else value
        return [self["path"], cell(self["frames"]),
                "" if self["seconds"] is None else repr(float(self["seconds"])),
                json.dumps(self["top_k"], ensure_ascii=False), cell(self["error"])]

    @classmethod
    def from_csv_row(cls, row: dict) -> "VideoRecord":
        return cls(row["path"], int(row["frames"]) if row["frames"] else None,
                   float(row["seconds"]) if row["seconds"] else None,
                   json.loads(row["top_k"]) if row["top_k"] else (), row["error"] or None)


def csv_line(values) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


class ResultLog:
    """Results appended to `path`, a line each (see the module docstring).  fmt: 'jsonl' or
    'csv' (default: by the file's extension, .csv -> csv).  Without `resume` an existing
    non-empty file is refused (nothing finished is ever overwritten)."""

    def __init__(self, path, fmt: Optional[str] = None, resume: bool = False):
        self.path = Path(path)
        self.fmt = fmt or ("csv" if self.path.suffix.lower() == ".csv" else "jsonl")
        if self.fmt not in FORMATS:
            raise InputError(f"result format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if self.path.is_dir():
            raise FileError(f"cannot write the results {self.path}: it is a folder")
        if not self.path.parent.is_dir():
            raise FileError(f"cannot write the results {self.path}: the directory "
                            f"{self.path.parent} does not exist")
        self.done: Set[str] = set()        # path_key of every video already in the file
        self.failed = 0                    # how many of them have an error
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing and not resume:
            raise FileError(f"{self.path} already holds results: --resume continues it "
                            f"(finished videos are skipped), or remove it to start over")
        if existing:
            self._read_existing()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        if self.fmt == "csv" and os.fstat(self._fd).st_size == 0:
            self._append(csv_line(COLUMNS))

    def _read_existing(self) -> None:
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1          # bytes up to the end of the last whole line
        if complete < len(data):                  # a torn last line: the write never finished
            os.truncate(self.path, complete)
        lines = data[:complete].decode("utf-8", errors="replace").splitlines()
        if self.fmt == "csv":
            if not lines or lines[0] != ",".join(COLUMNS):
                raise FileError(f"{self.path}: not a minimovinet results CSV (its first line "
                                f"is not {','.join(COLUMNS)})")
            records = (VideoRecord.from_csv_row(r) for r in csv.DictReader(lines))
        else:
            records = (self._json_record(n, line) for n, line in enumerate(lines, 1)
                       if line.strip())
        for record in records:
            self.done.add(path_key(record["path"]))
            self.failed += record["error"] is not None

    def _json_record(self, number: int, line: str) -> VideoRecord:
        try:
            d = json.loads(line)
            return VideoRecord(d["path"], d.get("frames"), d.get("seconds"), d.get("top_k", ()),
                               d.get("error"))
        except (ValueError, KeyError, TypeError):
            raise FileError(f"{self.path}: line {number} is not a result record") from None

    def __contains__(self, path) -> bool:
        return path_key(path) in self.done

    def append(self, record: VideoRecord) -> None:
        line = record.to_json() + "\n" if self.fmt == "jsonl" else csv_line(record.csv_row())
        self._append(line)
        self.done.add(path_key(record["path"]))
        self.failed += not record.ok

    def _append(self, line: str) -> None:
        data = line.encode("utf-8")
        written = os.write(self._fd, data)          # one write: O_APPEND puts it whole at the end
        while written < len(data):                  # (a short write only on a full disk)
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ResultLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
