"""Child process, run by the AllenSDK venv's Python: what an AllenSDK user runs.

Usage: ``read_allensdk.py CACHE_DIR``. boto3 finds the loopback server through
``AWS_ENDPOINT_URL_S3``. Prints one JSON line: rows read and where the time went.
"""

import json
import sys
import time

start = time.perf_counter()
from allensdk.brain_observatory.behavior.behavior_project_cache import (  # noqa: E402
    VisualBehaviorOphysProjectCache,
)

imported = time.perf_counter()
cache = VisualBehaviorOphysProjectCache.from_s3_cache(cache_dir=sys.argv[1])
opened = time.perf_counter()
experiments = cache.get_ophys_experiment_table()
done = time.perf_counter()
print(
    json.dumps(
        {
            "rows": len(experiments),
            "index": experiments.index.name,
            "manifest": cache.current_manifest(),
            "import": imported - start,
            "open": opened - imported,
            "read": done - opened,
        }
    )
)
