"""Manifest validation: good manifests become rows, bad ones a one-line error."""

import hashlib
import json

import pytest

from intake_vbo.base.errors import VboError
from intake_vbo.catalog.manifest import object_key, parse_manifest

HOST = "https://visual-behavior-ophys-data.s3.us-west-2.amazonaws.com/"
PREFIX = "visual-behavior-ophys/"


def entry(key: str, seed: str = "") -> dict:
    return {
        "url": HOST + key,
        "version_id": "v-" + hashlib.md5((key + seed).encode()).hexdigest(),
        "file_hash": hashlib.blake2b((key + seed).encode()).hexdigest(),
    }


def manifest(**overrides) -> dict:
    doc = {
        "project_name": "visual-behavior-ophys",
        "manifest_version": "1.1.0",
        "metadata_file_id_column_name": "file_id",
        "data_pipeline": [{"name": "AllenSDK", "version": "2.16.2", "comment": "x"}],
        "metadata_files": {
            "behavior_session_table": entry(PREFIX + "project_metadata/behavior_session_table.csv"),
        },
        "data_files": {
            "0": entry(PREFIX + "behavior_sessions/behavior_session_870987812.nwb"),
            "1941": entry(
                PREFIX + "behavior_ophys_experiments/behavior_ophys_experiment_951980471.nwb"
            ),
        },
    }
    doc.update(overrides)
    return doc


def parse(doc, version="1.1.0"):
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_manifest(data, "manifest_v1.1.0.json", version)


def test_rows_from_a_good_manifest():
    m = parse(manifest())
    assert m.version == "1.1.0"
    assert [f.file_id for f in m.data_files] == [0, 1941]
    behavior, experiment = m.data_files
    assert (behavior.kind, behavior.behavior_session_id, behavior.ophys_experiment_id) == (
        "behavior_session",
        870987812,
        None,
    )
    assert (experiment.kind, experiment.ophys_experiment_id) == ("ophys_experiment", 951980471)
    assert (
        experiment.key
        == PREFIX + "behavior_ophys_experiments/behavior_ophys_experiment_951980471.nwb"
    )
    assert m.metadata_files[0].name == "behavior_session_table"
    assert m.metadata_files[0].key.endswith("project_metadata/behavior_session_table.csv")


@pytest.mark.parametrize(
    "url",
    [
        "https://visual-behavior-ophys-data.s3.amazonaws.com/visual-behavior-ophys/x.nwb",
        "https://visual-behavior-ophys-data.s3-us-west-2.amazonaws.com/visual-behavior-ophys/x.nwb",
        "https://s3.us-west-2.amazonaws.com/visual-behavior-ophys-data/visual-behavior-ophys/x.nwb",
        "https://s3.amazonaws.com/visual-behavior-ophys-data/visual-behavior-ophys/x.nwb",
    ],
)
def test_every_s3_host_form_gives_the_same_key(url):
    assert object_key(url, "t") == "visual-behavior-ophys/x.nwb"


def broken(mutate):
    doc = manifest()
    mutate(doc)
    return doc


BAD = {
    "not json": (b"{not json", "not valid JSON"),
    "not utf-8": (b'{"a": "\xff"}', "not UTF-8"),
    "top level list": ([1, 2], "JSON object"),
    "missing data_files": (
        broken(lambda d: d.pop("data_files")),
        "missing top-level key 'data_files'",
    ),
    "mistyped data_files": (
        broken(lambda d: d.update(data_files=[])),
        "'data_files' should be a dict",
    ),
    "version mismatch": (broken(lambda d: d.update(manifest_version="1.0.0")), "does not match"),
    "non-integer file_id": (
        broken(lambda d: d["data_files"].update({"abc": d["data_files"]["0"]})),
        "data_files['abc']: file_id key is not an integer",
    ),
    "escaping key": (
        broken(lambda d: d["data_files"]["0"].update(url=HOST + PREFIX + "../../etc/passwd")),
        "outside",
    ),
    "absolute key": (
        broken(lambda d: d["data_files"]["0"].update(url=HOST + "/etc/passwd")),
        "outside",
    ),
    "foreign host": (
        broken(
            lambda d: d["data_files"]["0"].update(
                url="https://evil.example.com/" + PREFIX + "a.nwb"
            )
        ),
        "is not the visual-behavior-ophys-data bucket",
    ),
    "short hash": (
        broken(lambda d: d["data_files"]["0"].update(file_hash="abc123")),
        "not 128 lowercase hex",
    ),
    "missing version_id": (
        broken(lambda d: d["data_files"]["1941"].pop("version_id")),
        "data_files['1941']: missing or non-string 'version_id'",
    ),
    "duplicate experiment": (
        broken(lambda d: d["data_files"].update({"7": dict(d["data_files"]["1941"])})),
        "duplicate key",
    ),
    "metadata key mismatch": (
        broken(
            lambda d: d["metadata_files"].update(
                ophys_cells_table=d["metadata_files"]["behavior_session_table"]
            )
        ),
        "is not ophys_cells_table.csv",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifest_is_one_line_naming_where(case):
    doc, expected = BAD[case]
    with pytest.raises(VboError) as err:
        parse(doc)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("manifest_v1.1.0.json")
    assert expected in message


def test_duplicate_file_id_in_raw_json():
    good = json.dumps(manifest())
    raw = good.replace('"1941":', '"0":', 1).encode()
    with pytest.raises(VboError, match="duplicate key '0'"):
        parse(raw)
