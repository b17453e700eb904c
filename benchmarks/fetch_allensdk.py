"""Child process of ``fetch``, run by the AllenSDK venv's Python: AllenSDK's download path.

Usage: ``fetch_allensdk.py CACHE_DIR VERSION FILE_ID...`` (``all`` for every data file
of the manifest). This is what ``VisualBehaviorOphysProjectCache`` does underneath:
an ``S3CloudCache`` on the bucket, the version's manifest loaded, then
``download_data(file_id)`` for each file in turn (per file: ListObjectVersions, a GET
with VersionId, a BLAKE2b pass over the written file). boto3 reaches the loopback server
through ``AWS_ENDPOINT_URL_S3``; the script refuses any other endpoint. Prints one JSON
line last: where the time went, files and bytes, and the peak resident memory (VmHWM).
"""

import json
import sys
import time
from pathlib import Path

from common import peak_bytes

BUCKET = "visual-behavior-ophys-data"
PROJECT = "visual-behavior-ophys"

start = time.perf_counter()
from allensdk.api.cloud_cache.cloud_cache import S3CloudCache  # noqa: E402

imported = time.perf_counter()
cache_dir, version, *file_ids = sys.argv[1:]
cache = S3CloudCache(cache_dir, BUCKET, PROJECT)
endpoint = cache.s3_client.meta.endpoint_url
if not endpoint.startswith("http://127.0.0.1:"):
    sys.exit(f"refusing to run against {endpoint}: only the loopback server")
cache.load_manifest(f"{PROJECT}_project_manifest_v{version}.json")
if file_ids == ["all"]:
    file_ids = cache._manifest.file_id_values
opened = time.perf_counter()
paths = [cache.download_data(file_id) for file_id in file_ids]
done = time.perf_counter()
print(
    json.dumps(
        {
            "import": imported - start,
            "open": opened - imported,
            "seconds": done - opened,
            "files": len(paths),
            "bytes": sum(Path(p).resolve().stat().st_size for p in paths),
            "peak": peak_bytes(),
        }
    )
)
