"""``local``: a first look at an experiment through a read-only copy of the bucket.

A copy of the sample release in the bucket's layout (what Code Ocean attaches, a
mounted bucket), its first experiment replaced by the realistic-size one of ``views``
(478 MB, the manifests' hash changed to match), is made read-only (a read-only bind
mount when run as root, else no write permission). Ours:
``from_local_cache(use_static_cache=True)`` in a second process, the catalog already
built by a first one, then ``get_behavior_ophys_experiment`` and
``max_projection``. AllenSDK 2.16.2's static cache cannot use a read-only directory (it
creates ``resources/`` there), so it runs on an identical writable copy, after one
untimed run of its own. Both are timed from spawn to exit. The tree of the read-only copy
(paths, sizes, mtimes) is compared before and after: no byte may be written under it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import allensdk_venv
from bench_views import ensure_large_file
from common import BENCH, Row, child_env, last_json, run_timed

TARGET = 20.0  # ours at least 20x faster than AllenSDK's static cache
NAME = "local: first look on a read-only copy (experiment + max_projection, 2nd process)"


def run(release: Path, repeat: int) -> list[Row]:
    """Time our first look and AllenSDK's on copies of ``release``; check the copy is untouched.

    The two take turns, one run each per repetition, so a busy machine slows both alike.
    """
    from intake_vbo.sample.copies import write_bucket_copy

    with tempfile.TemporaryDirectory(prefix="vbo-bench-local-") as tmp:
        tmp = Path(tmp)
        ro, rw = write_bucket_copy(release, tmp / "ro"), write_bucket_copy(release, tmp / "rw")
        ident, key = _first_experiment(release)
        size = _put_large(ensure_large_file(), key, [ro, rw])
        ours_cmd = [sys.executable, str(BENCH / "local_child.py"), "ours", str(ro), str(ident),
                    str(tmp / "work")]  # fmt: skip
        undo = _read_only(ro)
        try:
            before = _tree(ro)
            run_timed(ours_cmd, child_env())  # the first process builds the catalog in work/
            try:
                theirs_cmd, made = _allensdk(rw, ident)
            except RuntimeError as exc:
                theirs_cmd, made, failure = None, [], str(exc).strip().splitlines()[-1][:200]
            ours, theirs = [], []
            for _ in range(repeat):
                ours.append(run_timed(ours_cmd, child_env()))
                if theirs_cmd:
                    theirs.append(run_timed(theirs_cmd, child_env()))
            written = _written(before, _tree(ro))
        finally:
            undo()
    size_note = (
        f"the experiment's file: {size / 1e6:.0f} MB (benchmarks/.data/large_experiment.nwb)"
    )
    rows = [Row("local: bytes written under the read-only copy", written, unit="B", target=1,
                note=f"{len(before)} paths compared (sizes, mtimes)")]  # fmt: skip
    seconds, info = _median(ours)
    if not theirs:
        note = f"{size_note}; AllenSDK failed: {failure}"
        rows.insert(0, Row(NAME, seconds, None, "AllenSDK 2.16.2 static cache", TARGET,
                           faster=True, note=note))  # fmt: skip
        return rows
    their_seconds, their_info = _median(theirs)
    same = "the same pixels (MD5)" if their_info["pixels"] == info["pixels"] else "PIXELS DIFFER"
    wrote = ", ".join(made) or "nothing"
    note = (f"{size_note}; ours: {_split(info)}; AllenSDK: {_split(their_info)} (medians); "
            f"{same}; runs taking turns; AllenSDK wrote {wrote} under its copy")  # fmt: skip
    rows.insert(0, Row(NAME, seconds, their_seconds, "AllenSDK 2.16.2 static cache, "
                       "writable copy", TARGET, faster=True, note=note))  # fmt: skip
    return rows


def _allensdk(copy: Path, ident: int):
    """AllenSDK's command, after its first (untimed) run; what that run created in the copy."""
    python = str(allensdk_venv.ensure())
    cmd = [python, str(BENCH / "local_child.py"), "allensdk", str(copy), str(ident)]
    before = set(os.listdir(copy))
    run_timed(cmd, child_env())
    return cmd, [m + "/" for m in sorted(set(os.listdir(copy)) - before)]


def _median(runs):
    """The median time of ``(seconds, stdout)`` runs, and the median of each reported part."""
    infos = [last_json(out) for _, out in runs]
    info = dict(infos[-1])
    for part in ("import", "open", "look"):
        info[part] = statistics.median(i[part] for i in infos)
    return statistics.median(t for t, _ in runs), info


def _split(info: dict) -> str:
    return f"import {info['import']:.2f} s, open {info['open']:.2f} s, look {info['look']:.2f} s"


def _first_experiment(release: Path) -> tuple[int, str]:
    """The id and key of the latest version's first experiment file."""
    from intake_vbo.sample.release import generated_versions, load_layout

    layout = load_layout(release, generated_versions(release)[-1])
    key = min(k for k in layout["objects"] if "behavior_ophys_experiment_" in k)
    return int(key.rsplit("_", 1)[1].split(".")[0]), key


def _put_large(large: Path, key: str, copies: list[Path]) -> int:
    """Make ``key`` the realistic-size experiment in each copy, its manifests saying so.

    The sample's files are miniatures; a first look is about a real 0.2-3 GB file.
    """
    from intake_vbo.catalog.release import MANIFEST_PREFIX
    from intake_vbo.transfer.download import hash_file

    digest = hash_file(large)
    for copy in copies:
        shutil.copyfile(large, copy / key)
        for manifest in (copy / MANIFEST_PREFIX).iterdir():
            doc = json.loads(manifest.read_text())
            for entry in doc["data_files"].values():
                if entry["url"].endswith("/" + key):
                    entry["file_hash"] = digest
            manifest.write_text(json.dumps(doc, indent=2))
    return large.stat().st_size


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
