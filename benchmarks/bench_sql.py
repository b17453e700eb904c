"""``sql``: the DuckDB CLI answering a question across every version, process start included.

The reference is the same CLI doing nothing (``SELECT 1`` in memory): the floor of any
query typed at a shell, so the ratio shows what the query itself adds.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from common import VENV_BIN, Row, child_env, run_timed

QUERY = """
SELECT s.manifest_version,
       count(DISTINCT s.behavior_session_id) AS behavior_sessions,
       count(f.file_id) AS nwb_files
FROM behavior_sessions s
LEFT JOIN files f
  ON f.manifest_version = s.manifest_version
 AND f.behavior_session_id = s.behavior_session_id
GROUP BY ALL
ORDER BY s.manifest_version;
"""


def run(catalog: Path, repeat: int) -> list[Row]:
    """Time the query in a fresh ``duckdb`` CLI process against the CLI's start-up.

    Parameters
    ----------
    catalog : Path
        A built catalog directory (holding ``vbo.duckdb``).
    repeat : int
        Repetitions per figure (the median is reported).

    Returns
    -------
    list of Row
    """
    duckdb = str(VENV_BIN / "duckdb")
    query = [duckdb, "-readonly", "-csv", str(catalog / "vbo.duckdb"), "-c", QUERY]
    ours, stdout = _median(query, repeat)
    floor, _ = _median([duckdb, ":memory:", "-c", "SELECT 1"], repeat)
    versions = len(stdout.strip().splitlines()) - 1  # minus the CSV header
    return [
        Row("sql: duckdb CLI, sessions x files per version", ours, floor,
            "duckdb CLI start, SELECT 1", faster=False,
            note=f"{versions} versions in one query"),
    ]  # fmt: skip


def _median(cmd: list[str], repeat: int) -> tuple[float, str]:
    runs = [run_timed(cmd, child_env()) for _ in range(repeat)]
    return statistics.median(t for t, _ in runs), runs[-1][1]
