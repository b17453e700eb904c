"""Child process of ``bench_local``: a first look at an experiment on a copy of the bucket.

Usage: ``local_child.py ours|allensdk COPY EXPERIMENT_ID [WORK_DIR]``. ``ours`` runs in the
project's venv (``from_local_cache(use_static_cache=True, work_dir=WORK_DIR)``, the
catalog already built there), ``allensdk`` in the AllenSDK venv (its static cache on a
writable copy). Both get the experiment and its max projection; one JSON line reports
where the time went and a digest of the pixels, so the two can be compared.

Standard library at the top only: the AllenSDK venv runs this file too.
"""

import hashlib
import json
import sys
import time

start = time.perf_counter()
who, copy, ident = sys.argv[1], sys.argv[2], int(sys.argv[3])
if who == "ours":
    from intake_vbo import VisualBehaviorOphysProjectCache

    imported = time.perf_counter()
    cache = VisualBehaviorOphysProjectCache.from_local_cache(
        copy, use_static_cache=True, work_dir=sys.argv[4]
    )
else:
    from allensdk.brain_observatory.behavior.behavior_project_cache import (
        VisualBehaviorOphysProjectCache,
    )

    imported = time.perf_counter()
    cache = VisualBehaviorOphysProjectCache.from_local_cache(copy, use_static_cache=True)
opened = time.perf_counter()
experiment = cache.get_behavior_ophys_experiment(ophys_experiment_id=ident)
image = experiment.max_projection
pixels = getattr(image, "data", image)
done = time.perf_counter()
print(
    json.dumps(
        {
            "import": imported - start,
            "open": opened - imported,
            "look": done - opened,
            "pixels": hashlib.md5(bytes(memoryview(pixels.tobytes()))).hexdigest(),
            "shape": list(pixels.shape),
        }
    )
)
