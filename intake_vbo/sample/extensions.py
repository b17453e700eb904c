"""The four NWB extensions of the Visual Behavior Ophys release, declared from their layout.

AllenSDK writes its files with four extension namespaces that are not on PyPI:
``ndx-aibs-behavior-ophys`` (BehaviorMetadata, OphysBehaviorMetadata,
BehaviorTaskParameters, BehaviorSubject, OphysEyeTrackingRigMetadata),
``ndx-aibs-stimulus-template`` (StimulusTemplate), ``ndx-ellipse-eye-tracking``
(EllipseSeries, EllipseEyeTracking) and ``ndx-aibs-ophys-event-detection``
(OphysEventDetection). This module declares the same types (names, bases, fields,
dtypes, shapes) with pynwb's spec API and loads them into a private copy of pynwb's
type map, so writing the sample never changes pynwb's global state.

Only these four namespaces are cached in each sample file (:func:`cache_specs`), each
spec as one gzip-compressed dataset: pynwb reads a file's cached extensions on top of
the core schema it ships, so caching ``core`` and ``hdmf-common`` (about 160 KB per
file) buys nothing but size.
"""

from __future__ import annotations

import json
from functools import cache

import h5py
import numpy as np
from hdmf.spec import SpecReader
from pynwb.spec import NWBAttributeSpec, NWBDatasetSpec, NWBGroupSpec

BEHAVIOR_OPHYS = "ndx-aibs-behavior-ophys"
STIMULUS_TEMPLATE = "ndx-aibs-stimulus-template"
EYE_TRACKING = "ndx-ellipse-eye-tracking"
EVENT_DETECTION = "ndx-aibs-ophys-event-detection"
_AIBS = ("Allen Institute for Brain Science", "waynew@alleninstitute.org")
# name -> (version, doc, author, contact, source file name)
NAMESPACES = {
    BEHAVIOR_OPHYS: (
        "0.2.0",
        "Allen Institute behavior and optical physiology extensions",
        *_AIBS,
        f"{BEHAVIOR_OPHYS}.extension",
    ),
    STIMULUS_TEMPLATE: ("0.1.0", "Stimulus images", *_AIBS, f"{STIMULUS_TEMPLATE}.extensions"),
    EYE_TRACKING: (
        "0.1.0",
        "Store the elliptical eye tracking output of DeepLabCut",
        ["Ben Dichter"],
        ["bdichter@lbl.gov"],
        f"{EYE_TRACKING}.extensions",
    ),
    EVENT_DETECTION: (
        "0.1.0",
        "Detected events from optical physiology ROI fluorescence traces",
        *_AIBS,
        f"{EVENT_DETECTION}.extensions",
    ),
}


def _attrs(fields: dict) -> list[NWBAttributeSpec]:
    """Attribute specs from ``{name: dtype}`` (a ``(dtype, shape)`` pair for arrays)."""
    specs = []
    for name, dtype in fields.items():
        dtype, shape = dtype if isinstance(dtype, tuple) else (dtype, None)
        specs.append(
            NWBAttributeSpec(name=name, doc=name.replace("_", " "), dtype=dtype, shape=shape)
        )
    return specs


_BEHAVIOR_FIELDS = {
    "behavior_session_id": "int",
    "behavior_session_uuid": "text",
    "equipment_name": "text",
    "project_code": "text",
    "session_type": "text",
    "stimulus_frame_rate": "float",
}
_OPHYS_FIELDS = {
    "ophys_experiment_id": "int",
    "ophys_session_id": "int",
    "ophys_container_id": "int",
    "imaging_depth": "int",
    "targeted_imaging_depth": "int",
    "field_of_view_width": "int",
    "field_of_view_height": "int",
    "imaging_plane_group": "int",
    "imaging_plane_group_count": "int",
}
TASK_FIELDS = {
    "auto_reward_volume": "float",
    "blank_duration_sec": ("text", [2]),  # AllenSDK stores these two pairs as strings
    "n_stimulus_frames": "int",
    "omitted_flash_fraction": "float",
    "response_window_sec": ("text", [2]),
    "reward_volume": "float",
    "session_type": "text",
    "stimulus": "text",
    "stimulus_distribution": "text",
    "stimulus_duration_sec": "float",
    "stimulus_name": "text",
    "task": "text",
}
RIG_FIELDS = (
    "camera_position",
    "camera_rotation",
    "led_position",
    "monitor_position",
    "monitor_rotation",
)


def _behavior_ophys() -> list[NWBGroupSpec]:
    subject_attrs = [
        NWBAttributeSpec("driver_line", "driver line", "text", shape=[None], required=False),
        NWBAttributeSpec("reporter_line", "reporter line", "text"),
    ]
    rig = [
        NWBDatasetSpec(
            doc=name.replace("_", " ") + " (x, y, z)",
            name=name,
            dtype="float",
            shape=[None],
            dims=[3],
            attributes=[NWBAttributeSpec("unit_of_measurement", "unit of the data", "text")],
        )
        for name in RIG_FIELDS
    ]
    return [
        NWBGroupSpec(
            "Behavior task parameters",
            neurodata_type_def="BehaviorTaskParameters",
            neurodata_type_inc="LabMetaData",
            attributes=_attrs(TASK_FIELDS),
        ),
        NWBGroupSpec(
            "A visual behavior subject",
            neurodata_type_def="BehaviorSubject",
            neurodata_type_inc="Subject",
            attributes=subject_attrs,
        ),
        NWBGroupSpec(
            "Behavior session metadata",
            neurodata_type_def="BehaviorMetadata",
            neurodata_type_inc="LabMetaData",
            attributes=_attrs(_BEHAVIOR_FIELDS),
        ),
        NWBGroupSpec(
            "Behavior and ophys experiment metadata",
            neurodata_type_def="OphysBehaviorMetadata",
            neurodata_type_inc="BehaviorMetadata",
            attributes=_attrs({**_OPHYS_FIELDS, **_BEHAVIOR_FIELDS}),
        ),
        NWBGroupSpec(
            "Eye tracking rig geometry",
            neurodata_type_def="OphysEyeTrackingRigMetadata",
            neurodata_type_inc="NWBDataInterface",
            datasets=rig,
            attributes=[NWBAttributeSpec("equipment", "rig name", "text")],
        ),
    ]


def _floats(names: list[str], shape) -> list[NWBDatasetSpec]:
    return [
        NWBDatasetSpec(doc=n.replace("_", " "), name=n, dtype="float", shape=shape) for n in names
    ]


def _eye_tracking() -> list[NWBGroupSpec]:
    unit = NWBAttributeSpec(
        "unit", "unit of the centre", "text", required=False, default_value="meters"
    )
    factors = [
        NWBAttributeSpec(name, name, "float32", required=False, default_value=value)
        for name, value in (("conversion", 1.0), ("offset", 0.0), ("resolution", -1.0))
    ]
    continuity = NWBAttributeSpec("continuity", "continuity", "text", required=False)
    centre = NWBDatasetSpec(
        doc="(x, y) centre of the ellipse",
        name="data",
        dtype="numeric",
        shape=[None, 2],
        dims=["num_times", "x, y"],
        attributes=[unit, *factors, continuity],
    )
    series = NWBGroupSpec(
        "An ellipse over time",
        neurodata_type_def="EllipseSeries",
        neurodata_type_inc="SpatialSeries",
        datasets=[centre, *_floats(["area", "area_raw", "width", "height", "angle"], [None])],
    )
    parts = [
        NWBGroupSpec(name.replace("_", " "), name=name, neurodata_type_inc=inc)
        for name, inc in (
            ("eye_tracking", "EllipseSeries"),
            ("pupil_tracking", "EllipseSeries"),
            ("corneal_reflection_tracking", "EllipseSeries"),
            ("likely_blink", "TimeSeries"),
        )
    ]
    tracking = NWBGroupSpec(
        "Ellipse eye tracking from DeepLabCut",
        groups=parts,
        neurodata_type_def="EllipseEyeTracking",
        neurodata_type_inc="EyeTracking",
        default_name="EyeTracking",
    )
    return [series, tracking]


def _stimulus_template() -> list[NWBGroupSpec]:
    unwarped = _floats(["unwarped"], [None, None, None])
    return [
        NWBGroupSpec(
            "Warped stimulus images and their unwarped, masked originals",
            neurodata_type_def="StimulusTemplate",
            neurodata_type_inc="ImageSeries",
            datasets=unwarped,
        )
    ]


def _event_detection() -> list[NWBGroupSpec]:
    return [
        NWBGroupSpec(
            "Detected events",
            name="event_detection",
            neurodata_type_def="OphysEventDetection",
            neurodata_type_inc="RoiResponseSeries",
            datasets=_floats(["lambdas", "noise_stds"], [None]),
        )
    ]


@cache
def spec_documents() -> dict[str, tuple[str, dict, dict]]:
    """``{namespace: (version, namespace document, source document)}`` as plain JSON data."""
    groups = {
        BEHAVIOR_OPHYS: _behavior_ophys(),
        STIMULUS_TEMPLATE: _stimulus_template(),
        EYE_TRACKING: _eye_tracking(),
        EVENT_DETECTION: _event_detection(),
    }
    documents = {}
    for name, (version, doc, author, contact, source) in NAMESPACES.items():
        namespace = {
            "doc": doc,
            "schema": [{"namespace": "core"}, {"source": source}],
            "name": name,
            "version": version,
            "author": author,
            "contact": contact,
        }
        body = json.loads(json.dumps({"groups": groups[name]}))
        documents[name] = (version, {"namespaces": [namespace]}, body)
    return documents


class _MemoryReader(SpecReader):
    """Hands hdmf one namespace and its source document from memory."""

    def __init__(self, namespace: dict, source: dict):
        super().__init__(source="memory")
        self._namespace, self._source = namespace, source

    def read_namespace(self, namespace_path):
        return self._namespace["namespaces"]

    def read_spec(self, spec_path):
        # A copy: hdmf before 5 resolves includes in the dict it is given, and the
        # cached source documents must keep their type names.
        return json.loads(json.dumps(self._source))


@cache
def type_map():
    """A copy of pynwb's type map with the four extensions loaded (built once)."""
    import pynwb

    types = pynwb.get_type_map()
    for name, (_, namespace, source) in spec_documents().items():
        types.load_namespaces(namespace_path=name, reader=_MemoryReader(namespace, source))
    return types


def get_class(neurodata_type: str, namespace: str):
    """The container class of an extension type (hdmf generates it from the spec)."""
    return type_map().get_dt_container_cls(neurodata_type, namespace)


def cache_specs(f) -> None:
    """Cache the four extension namespaces in the open h5py file ``f``, as hdmf does.

    Each spec document is one gzip-compressed ``(1,)`` byte-string dataset under
    ``/specifications/<namespace>/<version>/``, which hdmf's reader unpacks like the
    scalar strings it writes itself; the root's ``.specloc`` points to the group.
    """
    group = f.require_group("specifications")
    for name, (version, namespace, source) in spec_documents().items():
        where = group.require_group(name).require_group(version)
        for key, document in (("namespace", namespace), (NAMESPACES[name][-1], source)):
            text = json.dumps(document, separators=(",", ":")).encode()
            data = np.array([text], dtype=f"S{len(text)}")
            where.create_dataset(
                key, data=data, chunks=(1,), compression="gzip", compression_opts=9
            )
    f.attrs.create(".specloc", group.ref, dtype=h5py.ref_dtype)
