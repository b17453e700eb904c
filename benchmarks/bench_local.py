"""``local``: a first look at an experiment through a read-only copy of the bucket.

A copy of the sample release in the bucket's layout (what Code Ocean attaches, a
mounted bucket) is made read-only (a read-only bind mount when run as root, else no
write permission). Ours: ``from_local_cache(use_static_cache=True)`` in a second process,
the catalog already built by a first one, then ``get_behavior_ophys_experiment`` and
``max_projection``. AllenSDK 2.16.2's static cache cannot use a read-only directory (it
creates ``resources/`` there), so it runs on an identical writable copy, after one
untimed run of its own. Both are timed from spawn to exit. The tree of the read-only copy
(paths, sizes, mtimes) is compared before and after: no byte may be written under it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import allensdk_venv
from common import BENCH, Row, child_env, last_json, run_timed

TARGET = 20.0  # ours at least 20x faster than AllenSDK's static cache
NAME = "local: first look on a read-only copy (experiment + max_projection, 2nd process)"


def run(release: Path, repeat: int) -> list[Row]:
    """Time our first look and AllenSDK's on copies of ``release``; check the copy is untouched."""
    from intake_vbo.sample.copies import write_bucket_copy

    with tempfile.TemporaryDirectory(prefix="vbo-bench-local-") as tmp:
        tmp = Path(tmp)
        ro, rw = write_bucket_copy(release, tmp / "ro"), write_bucket_copy(release, tmp / "rw")
        ident = _first_experiment(release)
        undo = _read_only(ro)
        try:
            before = _tree(ro)
            ours, info = _ours(ro, tmp / "work", ident, repeat)
            written = _written(before, _tree(ro))
        finally:
            undo()
        rows = [Row("local: bytes written under the read-only copy", written, unit="B",
                    target=1, note=f"{len(before)} paths compared (sizes, mtimes)")]  # fmt: skip
        try:
            theirs, their_info, made = _allensdk(rw, ident, repeat)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1][:200]
            rows.insert(0, Row(NAME, ours, None, "AllenSDK 2.16.2 static cache", TARGET,
                               faster=True, note=f"AllenSDK could not run: {reason}"))  # fmt: skip
            return rows
    same = "the same pixels (MD5)" if their_info["pixels"] == info["pixels"] else "PIXELS DIFFER"
    note = (f"ours: {_split(info)}; AllenSDK: {_split(their_info)}; {same}; AllenSDK wrote "
            f"{', '.join(made) or 'nothing'} under its copy")  # fmt: skip
    rows.insert(0, Row(NAME, ours, theirs, "AllenSDK 2.16.2 static cache, writable copy",
                       TARGET, faster=True, note=note))  # fmt: skip
    return rows


def _ours(copy: Path, work: Path, ident: int, repeat: int):
    cmd = [sys.executable, str(BENCH / "local_child.py"), "ours", str(copy), str(ident), str(work)]
    run_timed(cmd, child_env())  # the first process builds the catalog in work/
    return _median([cmd] * repeat)


def _allensdk(copy: Path, ident: int, repeat: int):
    python = str(allensdk_venv.ensure())
    cmd = [python, str(BENCH / "local_child.py"), "allensdk", str(copy), str(ident)]
    before = set(os.listdir(copy))
    run_timed(cmd, child_env())  # its first run, untimed, as ours
    made = sorted(set(os.listdir(copy)) - before)
    seconds, info = _median([cmd] * repeat)
    return seconds, info, [m + "/" for m in made]


def _median(cmds):
    runs = [run_timed(cmd, child_env()) for cmd in cmds]
    return statistics.median(t for t, _ in runs), last_json(runs[-1][1])


def _split(info: dict) -> str:
    return f"import {info['import']:.2f} s, open {info['open']:.2f} s, look {info['look']:.2f} s"


def _first_experiment(release: Path) -> int:
    from intake_vbo.sample.release import generated_versions, load_layout

    layout = load_layout(release, generated_versions(release)[-1])
    key = min(k for k in layout["objects"] if "behavior_ophys_experiment_" in k)
    return int(key.rsplit("_", 1)[1].split(".")[0])


def _read_only(path: Path):
    """A read-only bind mount when root (a write really fails), else chmod a-w; the undo."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path), str(path)], check=True)
        return lambda: subprocess.run(["umount", str(path)], check=True)
    for where in [path, *path.rglob("*")]:
        where.chmod(where.stat().st_mode & ~0o222)

    def undo():
        for where in [path, *path.rglob("*")]:
            where.chmod(where.stat().st_mode | 0o200)

    return undo


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in [root, *root.rglob("*")]}  # fmt: skip


def _written(before: dict, after: dict) -> int:
    """Bytes that appeared or changed under the copy (a changed mtime counts its size)."""
    return sum(after[p][0] for p in after if before.get(p) != after[p])
