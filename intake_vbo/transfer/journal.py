"""The journal of a parallel download: which of its parts are safely on disk.

A download in parts (:mod:`intake_vbo.transfer.parts`) writes its parts out of order into
``<h>.part``. Beside it, ``<h>.journal`` holds the :class:`Plan` (size, ETag, part
layout) and, line by line, the parts whose bytes were datasynced before the line was
written, so a killed download resumes with exactly those and fetches the rest. A
wrong journal costs time, never correctness: the file's digest is checked before it
is installed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..base import fileops


@dataclass(frozen=True)
class Plan:
    """A parallel download's layout: the object's size and ETag, and its parts."""

    size: int
    etag: str
    first: int  # the end of the first part (the first response's range)
    part_size: int

    def spans(self) -> list[tuple[int, int]]:
        """Each part's ``[start, stop)``, in order."""
        edges = [0, *range(min(self.first, self.size), self.size, self.part_size), self.size]
        return list(zip(edges, edges[1:], strict=False))

    @classmethod
    def loads(cls, text: str) -> Plan:
        data = json.loads(text)
        plan = cls(**{name: data[name] for name in ("size", "etag", "first", "part_size")})
        numbers = (plan.size, plan.first, plan.part_size)
        if not all(isinstance(n, int) and n > 0 for n in numbers) or not plan.etag:
            raise ValueError(f"not a plan: {text[:200]!r}")
        return plan


class Journal:
    """The parts of a download known to be on disk: ``<h>.journal`` beside ``<h>.part``.

    The first line is the :class:`Plan` (JSON); each later line lists parts whose bytes
    were datasynced before the line was written. A line a crash cut short has no
    newline and is ignored; a journal without a whole first line is no journal.
    """

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> tuple[Plan, set[int]] | None:
        """The plan and the parts done, or None (no journal, or not a valid one)."""
        try:
            *lines, _ = self.path.read_bytes().decode("ascii").split("\n")
            plan = Plan.loads(lines[0])
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError):
            return None
        count, done = len(plan.spans()), set()
        for line in lines[1:]:
            words = line.split()
            if words and all(w.isdigit() and int(w) < count for w in words):
                done.update(int(w) for w in words)
        return plan, done

    def create(self, plan: Plan) -> None:
        """Start the journal of a new download (any old one is replaced)."""
        self._write(json.dumps(asdict(plan), sort_keys=True), os.O_TRUNC)

    def record(self, parts) -> None:
        """Note that these parts' bytes are on disk (datasync them first)."""
        self._write(" ".join(str(i) for i in sorted(parts)), os.O_APPEND)

    def remove(self) -> None:
        fileops.remove(self.path)

    def _write(self, line: str, mode: int) -> None:
        fd = fileops.open_fd(self.path, os.O_WRONLY | os.O_CREAT | mode)
        try:
            fileops.write_all(fd, f"{line}\n".encode("ascii"))
            fileops.datasync(fd)
        finally:
            os.close(fd)
