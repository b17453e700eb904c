"""Child process, run by the project's Python: what an intake-vbo user runs.

Usage: ``read_ours.py CATALOG_YAML``. Prints one JSON line: rows read and where the
time went.
"""

import json
import sys
import time

start = time.perf_counter()
import intake  # noqa: E402

imported = time.perf_counter()
catalog = intake.open_catalog(sys.argv[1])
opened = time.perf_counter()
experiments = catalog.latest.ophys_experiments.read()
done = time.perf_counter()
print(
    json.dumps(
        {
            "rows": len(experiments),
            "index": experiments.index.name,
            "import": imported - start,
            "open": opened - imported,
            "read": done - opened,
        }
    )
)
