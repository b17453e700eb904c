"""The metadata tables of the sample release, rendered as the real release writes them.

Every version's CSV comes from the same :class:`~intake_vbo.sample.model.Model`, with
the columns that version has (``@X.Y.Z`` marks a column's first version, ``<X.Y.Z``
the version that dropped it) and the real formats: an integer column with a null is
written as floats (``951410079.0``), lists as Python literals, booleans as ``True``,
``date_of_acquisition`` with ``+00:00`` in the behavior table and naive elsewhere.
"""

from __future__ import annotations

import csv
import io

from ..catalog.release import version_key
from .model import PROJECTS, Model, Session

_TRIALS = "trial go_trial catch_trial hit_trial miss_trial false_alarm_trial correct_reject_trial"
TRIAL_COUNTS = [f"{kind}_count" for kind in (*_TRIALS.split(), "engaged_trial")]
EXPERIENCE = [
    "experience_level",
    "prior_exposures_to_session_type",
    "prior_exposures_to_image_set",
    "prior_exposures_to_omissions",
]
_SUBJECT = [
    "mouse_id",
    "indicator",
    "full_genotype",
    "driver_line",
    "cre_line",
    "reporter_line",
    "sex",
    "age_in_days",
]
_STAGE = ["project_code", "session_type", "session_number", "image_set", "behavior_type"]
# Column order of 1.1.0; "@x.y.z" marks where a column starts, "<x.y.z" where it ends.
COLUMNS = {
    "behavior_session_table": [
        "behavior_session_id", "ophys_session_id", "ophys_container_id", *_SUBJECT, *_STAGE,
        *(c + "@1.0.0" for c in EXPERIENCE), "date_of_acquisition", "equipment_name",
        *(c + "@1.1.0" for c in TRIAL_COUNTS), "imaging_plane_group_count",
        "num_depths_per_area", "num_targeted_structures", "ophys_experiment_id", "file_id",
        "file_path<1.0.0",
    ],
    "ophys_session_table": [
        "ophys_session_id", "behavior_session_id", "ophys_container_id", *_SUBJECT, *_STAGE,
        *(c + "@1.0.0" for c in EXPERIENCE), "date_of_acquisition", "equipment_name",
        "num_targeted_structures", "imaging_plane_group_count", "ophys_experiment_id",
        "num_depths_per_area",
    ],
    "ophys_experiment_table": [
        "ophys_experiment_id", "behavior_session_id", "ophys_session_id", "ophys_container_id",
        *_SUBJECT, "imaging_depth", "targeted_structure", "targeted_imaging_depth@1.1.0",
        "imaging_plane_group", "project_code", "session_type", "session_number", "image_set",
        "behavior_type@1.1.0", "passive", *(c + "@1.0.0" for c in EXPERIENCE),
        "date_of_acquisition", "equipment_name", "file_id", "file_path<1.0.0",
    ],
    "ophys_cells_table@1.0.0": ["cell_roi_id", "cell_specimen_id", "ophys_experiment_id"],
}  # fmt: skip
CSV_NAMES = [name.split("@")[0] for name in COLUMNS]
# Columns written as they are (text, pre-written lists and booleans, and integer ids that
# are never null where they are not lists); the others are integers, written as floats
# when the column has a null, as pandas writes them.
_AS_IS = {
    *_SUBJECT, "project_code", "session_type", "image_set", "behavior_type", "experience_level",
    "date_of_acquisition", "equipment_name", "targeted_structure", "file_path", "passive",
    "ophys_container_id", "ophys_experiment_id",
} - {"age_in_days"}  # fmt: skip


def _present(spec: str, version: str) -> str | None:
    """The column (or table) name of ``spec`` if ``version`` has it, else None."""
    name, _, since = spec.partition("@")
    name, _, until = name.partition("<")
    if since and version_key(version) < version_key(since):
        return None
    if until and version_key(version) >= version_key(until):
        return None
    return name


def table_columns(name: str, version: str) -> list[str] | None:
    """The columns of table ``name`` in ``version`` (None if the version lacks the table)."""
    for spec, columns in COLUMNS.items():
        if spec.split("@")[0] == name:
            if _present(spec, version) is None:
                return None
            return [c for c in (_present(col, version) for col in columns) if c]
    raise KeyError(name)


def render_table(model: Model, name: str, version: str) -> bytes | None:
    """The CSV bytes of one metadata table as ``version`` released it."""
    columns = table_columns(name, version)
    if columns is None:
        return None
    rows = list(_ROWS[name](model, version))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    formats = [_format(c, [row.get(c) for row in rows]) for c in columns]
    for row in rows:
        writer.writerow([f(row.get(c)) for c, f in zip(columns, formats, strict=True)])
    return buffer.getvalue().encode("utf-8")


def _format(column: str, values: list):
    """How pandas would write the column: an integer column with a null becomes floats."""
    if column == "file_id":
        return lambda v: "" if v is None else str(v)  # written as integers, as released
    if column in _AS_IS:
        return lambda v: "" if v is None else str(v)
    if any(v is None for v in values):
        return lambda v: "" if v is None else repr(float(v))
    return str


def _when(start, offset: bool) -> str:
    """Timestamps as released: milliseconds as 6 digits unless whole seconds."""
    text = start.strftime("%Y-%m-%d %H:%M:%S")
    if start.microsecond:
        text += f".{start.microsecond:06d}"
    return text + ("+00:00" if offset else "")


def _session_fields(model: Model, s: Session, version: str) -> dict:
    """The columns the three tables share for one behavior session."""
    full_genotype, driver_line, reporter_line, indicator = s.mouse.genotype
    age = (s.start.date() - s.mouse.birth).days
    return {
        "behavior_session_id": s.behavior_session_id,
        "mouse_id": s.mouse.mouse_id,
        "indicator": indicator,
        "full_genotype": full_genotype,
        "driver_line": str(driver_line),
        "cre_line": driver_line[0],
        "reporter_line": reporter_line,
        "sex": s.mouse.sex,
        "age_in_days": model.value(s, "age_in_days", version, age),
        "project_code": s.project,
        "session_type": s.session_type,
        "session_number": s.stage,
        "image_set": "gratings" if s.image_set is None else f"images_{s.image_set}",
        "behavior_type": "passive_viewing" if "passive" in s.session_type else "active_behavior",
        "experience_level": model.value(s, "experience_level", version, s.experience),
        "prior_exposures_to_session_type": s.prior_type,
        "prior_exposures_to_image_set": s.prior_image_set,
        "prior_exposures_to_omissions": s.prior_omissions,
        "equipment_name": s.equipment,
    }


def _ophys_fields(model: Model, s: Session, version: str) -> dict:
    experiments = model.experiments_at(s, version)
    containers = s.mouse.containers
    groups = {e.plane_group for e in experiments if e.plane_group is not None}
    return {
        "ophys_session_id": s.ophys_session_id,
        "ophys_container_id": str(sorted(containers[e.container][0] for e in experiments)),
        "ophys_experiment_id": str([e.ophys_experiment_id for e in experiments]),
        "imaging_plane_group_count": len(groups) or None,
        "num_depths_per_area": len({d for _, d in PROJECTS[s.mouse.project][0]}),
        "num_targeted_structures": len({containers[e.container][1] for e in experiments}),
    }


def _file_path(kind: str, ident: int) -> str:
    """The absolute path on the Allen file server that 0.x tables carry."""
    return f"/allen/programs/mindscope/production/vbo/prod0/{kind}_{ident}/{kind}_{ident}.nwb"


def _by_mouse(model: Model, version: str, ophys: bool) -> list[Session]:
    order = {id(m): i for i, m in enumerate(model.mice)}
    chosen = [s for s in model.sessions_at(version) if (s.ophys_session_id is not None) == ophys]
    return sorted(chosen, key=lambda s: (order[id(s.mouse)], s.start))


def _behavior_rows(model: Model, version: str):
    for ophys in (False, True):  # like the real table: behavior-only rows first
        for s in _by_mouse(model, version, ophys):
            row = _session_fields(model, s, version)
            row["date_of_acquisition"] = _when(s.start, True)
            row["file_id"] = s.file_id
            row.update(zip(TRIAL_COUNTS, s.trials or [None] * len(TRIAL_COUNTS), strict=True))
            if ophys:
                row.update(_ophys_fields(model, s, version))
                row["ophys_session_id"] = s.ophys_session_id
            else:
                if s.empty_lists:
                    row["ophys_container_id"] = row["ophys_experiment_id"] = "[]"
                row["file_path"] = _file_path("behavior_session", s.behavior_session_id)
            yield row


def _session_rows(model: Model, version: str):
    for s in _by_mouse(model, version, True):
        row = {**_session_fields(model, s, version), **_ophys_fields(model, s, version)}
        row["date_of_acquisition"] = _when(s.start, s.offset_in_ophys_tables)
        yield row


def _experiment_rows(model: Model, version: str):
    for s in _by_mouse(model, version, True):
        common = _session_fields(model, s, version)
        common["date_of_acquisition"] = _when(s.start, s.offset_in_ophys_tables)
        for e in model.experiments_at(s, version):
            container_id, structure, depth, _ = s.mouse.containers[e.container]
            yield {
                **common,
                "ophys_experiment_id": e.ophys_experiment_id,
                "ophys_session_id": s.ophys_session_id,
                "ophys_container_id": container_id,
                "imaging_depth": e.imaging_depth,
                "targeted_structure": structure,
                "targeted_imaging_depth": depth,
                "imaging_plane_group": e.plane_group,
                "image_set": s.image_set or "gratings",
                "passive": "passive" in s.session_type,
                "file_id": e.file_id,
                "file_path": _file_path("behavior_ophys_experiment", e.ophys_experiment_id),
            }


def _cell_rows(model: Model, version: str):
    for s in _by_mouse(model, version, True):
        for e in model.experiments_at(s, version):
            for roi, specimen in e.cells:
                yield {
                    "cell_roi_id": roi,
                    "cell_specimen_id": specimen,
                    "ophys_experiment_id": e.ophys_experiment_id,
                }


_ROWS = {
    "behavior_session_table": _behavior_rows,
    "ophys_session_table": _session_rows,
    "ophys_experiment_table": _experiment_rows,
    "ophys_cells_table": _cell_rows,
}
