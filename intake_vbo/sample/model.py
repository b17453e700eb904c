"""The entities of the sample release: mice, behavior sessions, ophys experiments, cells.

Built from ``(scale, seed)`` with one random generator in a fixed order; what each
version changes is drawn with a generator of its own, so a version comes out the same
whichever other versions are generated with it. Tables and NWB files of every version
are rendered from it, which keeps them consistent: an ophys session's behavior row
lists its experiments, a removed session takes its experiments and cells with it, a
changed age shows in all three tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from ..catalog.release import version_key
from .fileinfo import BEHAVIOR, EXPERIMENT, FileInfo

SAMPLE_VERSIONS = ("0.3.0", "1.0.0", "1.1.0")
REAL_COUNTS = {"behavior_sessions": 4787, "ophys_sessions": 704, "ophys_experiments": 1941}
REMOVED_IN = "1.1.0"  # 1.1.0 drops 5 behavior sessions, 1 ophys session and 5 experiments
_AI148, _AI94, _AI93 = "Ai148(TIT2L-GC6f-ICL-tTA2)", "Ai94(TITL-GCaMP6s)", "Ai93(TITL-GCaMP6f)"
_SLC17A7 = ["Slc17a7-IRES2-Cre", "Camk2a-tTA"]
GENOTYPES = (  # full_genotype, driver_line, reporter_line, indicator
    (f"Sst-IRES-Cre/wt;{_AI148}/wt", ["Sst-IRES-Cre"], _AI148, "GCaMP6f"),
    (f"Vip-IRES-Cre/wt;{_AI148}/wt", ["Vip-IRES-Cre"], _AI148, "GCaMP6f"),
    (f"Slc17a7-IRES2-Cre/wt;Camk2a-tTA/wt;{_AI94}/wt", _SLC17A7, _AI94, "GCaMP6s"),
    (f"Slc17a7-IRES2-Cre/wt;Camk2a-tTA/wt;{_AI93}/wt", _SLC17A7, _AI93, "GCaMP6f"),
)
_MESO_2x4 = [(s, d) for d in (75, 150, 225, 300) for s in ("VISp", "VISl")]
_MESO_4x2 = [(s, d) for d in (150, 250) for s in ("VISp", "VISl", "VISal", "VISam")]
# project -> (planes as (structure, depth), image sets (familiar, novel), share of mice)
PROJECTS = {
    "VisualBehaviorMultiscope": (_MESO_2x4, ("A", "B"), 0.25),
    "VisualBehavior": ([("VISp", 175)], ("A", "B"), 0.3),
    "VisualBehaviorTask1B": ([("VISp", 275)], ("B", "A"), 0.25),
    "VisualBehaviorMultiscope4areasx2d": (_MESO_4x2, ("G", "H"), 0.2),
}
DEV_PROJECTS = ("Développement–µScope", "MesoscopeDevelopment")  # non-ASCII text on purpose
OPHYS_STAGES = ((1, ""), (2, "_passive"), (3, ""), (4, ""), (5, "_passive"), (6, ""))


@dataclass
class Mouse:
    """One mouse: its subject columns, rigs and imaging planes (containers)."""

    mouse_id: str
    genotype: tuple
    sex: str
    project: str
    birth: date
    behavior_rig: str
    ophys_rig: str
    containers: list = field(default_factory=list)  # [(container_id, structure, depth, pool)]


@dataclass
class Experiment:
    """One ophys experiment: a plane imaged in a session, with its cells."""

    ophys_experiment_id: int
    session: Session
    container: int  # index into mouse.containers
    imaging_depth: int
    plane_group: int | None
    file_id: int = -1
    cells: list = field(default_factory=list)  # [(cell_roi_id, cell_specimen_id)]


@dataclass
class Session:
    """One behavior session; an ophys session too when ``ophys_session_id`` is set."""

    behavior_session_id: int
    mouse: Mouse
    start: datetime
    session_type: str
    project: str
    equipment: str
    stage: int | None  # session_number for ophys and habituation sessions
    image_set: str | None  # "A", ... or None for gratings
    experience: str
    prior_type: int = 0
    prior_image_set: int | None = None
    prior_omissions: int = 0
    ophys_session_id: int | None = None
    experiments: list = field(default_factory=list)
    file_id: int | None = None
    trials: tuple | None = None  # 8 trial counts, new in 1.1.0
    empty_lists: bool = False  # a habituation row written with "[]" lists
    offset_in_ophys_tables: bool = False  # written with "+00:00" where the table is naive


@dataclass
class Model:
    """Every entity, and what each version changes, removes and re-uploads."""

    changed_in: list  # versions that change values and files, oldest first
    mice: list
    sessions: list  # behavior sessions in acquisition order
    removed_sessions: set  # behavior_session_ids gone from REMOVED_IN on
    removed_experiments: set
    changes: dict  # version -> {(behavior_session_id, field): value}
    revisions: dict  # version -> set of (kind, id) re-uploaded at that version

    def value(self, session: Session, name: str, version: str, base):
        """A session attribute as ``version`` shows it (later versions fix some values)."""
        for changed_at in self.changed_in:
            if version_key(changed_at) > version_key(version):
                break
            base = self.changes.get(changed_at, {}).get((session.behavior_session_id, name), base)
        return base

    def sessions_at(self, version: str) -> list[Session]:
        gone = self.removed_sessions if version_key(version) >= version_key(REMOVED_IN) else set()
        return [s for s in self.sessions if s.behavior_session_id not in gone]

    def experiments_at(self, session: Session, version: str) -> list[Experiment]:
        if version_key(version) < version_key(REMOVED_IN):
            return session.experiments
        return [
            e for e in session.experiments if e.ophys_experiment_id not in self.removed_experiments
        ]

    def revision(self, kind: str, ident: int, version: str) -> int:
        return sum(
            (kind, ident) in self.revisions.get(v, ())
            for v in self.changed_in
            if version_key(v) <= version_key(version)
        )

    def nwb_files(self, version: str) -> list[tuple[int, FileInfo]]:
        """``(file_id, FileInfo)`` of every NWB file of ``version``, by file_id."""
        files = []
        for s in self.sessions_at(version):
            if s.ophys_session_id is None:
                rev = self.revision(BEHAVIOR, s.behavior_session_id, version)
                files.append((s.file_id, _file_info(s, None, BEHAVIOR, s.behavior_session_id, rev)))
            for e in self.experiments_at(s, version):
                rev = self.revision(EXPERIMENT, e.ophys_experiment_id, version)
                files.append((e.file_id, _file_info(s, e, EXPERIMENT, e.ophys_experiment_id, rev)))
        return sorted(files, key=lambda item: item[0])


def _file_info(s: Session, e: Experiment | None, kind: str, ident: int, revision: int) -> FileInfo:
    """What an NWB file says about itself, from the entities the tables are made of."""
    full_genotype, driver_line, reporter_line, indicator = s.mouse.genotype
    ophys = {}
    if e is not None:
        container_id, structure, depth, _ = s.mouse.containers[e.container]
        groups = {x.plane_group for x in s.experiments if x.plane_group is not None}
        rois, specimens = zip(*e.cells, strict=True)
        ophys = dict(
            cell_roi_ids=rois, cell_specimen_ids=specimens, ophys_session_id=s.ophys_session_id,
            ophys_container_id=container_id, imaging_depth=e.imaging_depth,
            targeted_imaging_depth=depth, targeted_structure=structure,
            imaging_plane_group=-1 if e.plane_group is None else e.plane_group,
            imaging_plane_group_count=len(groups),
        )  # fmt: skip
    return FileInfo(
        kind, ident, s.mouse.mouse_id, full_genotype, s.mouse.sex, s.start, revision,
        behavior_session_id=s.behavior_session_id, session_type=s.session_type,
        equipment_name=s.equipment, project_code=s.project, age_in_days=_age(s),
        driver_line=tuple(driver_line), reporter_line=reporter_line, indicator=indicator,
        image_set=s.image_set, novel=s.experience.startswith("Novel"),
        omissions=bool(s.stage), **ophys,
    )  # fmt: skip


def _quirks(rng, sessions: list[Session]) -> None:
    """The irregular rows the real tables have: dev projects, whole seconds, mixed offsets."""
    behavior_only = [s for s in sessions if s.ophys_session_id is None]
    ophys = [s for s in sessions if s.ophys_session_id is not None]
    for i, s in enumerate(_pick(rng, behavior_only, 0.004)):
        s.project = DEV_PROJECTS[i % len(DEV_PROJECTS)]
    for s in _pick(rng, behavior_only, 0.001) + _pick(rng, ophys, 0.002):
        s.start = s.start.replace(microsecond=0)  # written without fractional seconds
    for s in _pick(rng, ophys, 0.02):
        s.offset_in_ophys_tables = True
    habituation = [s for s in behavior_only if s.stage == 0]
    for s in _pick(rng, habituation, 0.05):
        s.empty_lists = True
    for s in _pick(rng, ophys, 0.01):
        s.file_id = None  # empty instead of -999
    for s in _pick(rng, behavior_only, 0.003):
        s.trials = None  # unknown trial counts: the 1.1.0 columns get nulls


def _pick(rng, items: list, share: float, minimum: int = 1) -> list:
    """A reproducible random subset: ``share`` of the items, at least ``minimum``."""
    k = min(len(items), max(minimum, round(share * len(items))))
    return [items[i] for i in sorted(rng.choice(len(items), k, replace=False).tolist())]


def _version_changes(seed: int, model: Model, scale: float) -> None:
    """What each version after the first changes: values, re-uploaded files, removals."""
    sessions = model.sessions
    ophys = [s for s in sessions if s.ophys_session_id is not None]
    experiments = [e for s in ophys for e in s.experiments]
    for version in model.changed_in:
        rng = np.random.default_rng([seed, *version_key(version)])
        changes = model.changes.setdefault(version, {})
        for s in _pick(rng, sessions, 0.01):
            changes[(s.behavior_session_id, "age_in_days")] = _age(s) + 1
        if version_key(version) >= version_key(REMOVED_IN):
            swap = {"Familiar": "Novel >1", "Novel >1": "Familiar"}
            for s in _pick(rng, [s for s in ophys if s.experience in swap], 0.02):
                changes[(s.behavior_session_id, "experience_level")] = swap[s.experience]
        revised = model.revisions.setdefault(version, set())
        revised.update(
            (BEHAVIOR, s.behavior_session_id)
            for s in _pick(rng, sessions, 0.03)
            if s.ophys_session_id is None
        )
        revised.update((EXPERIMENT, e.ophys_experiment_id) for e in _pick(rng, experiments, 0.03))
    rng = np.random.default_rng([seed, *version_key(REMOVED_IN), 1])  # apart from its changes
    # Removals: whole ophys sessions (with their behavior row and experiments), a few
    # behavior-only sessions, a few single experiments of sessions that keep others.
    gone = _pick(rng, [s for s in ophys if len(s.experiments) <= 2], 0, max(1, round(scale)))
    model.removed_sessions.update(s.behavior_session_id for s in gone)
    behavior_only = [s for s in sessions if s.ophys_session_id is None]
    model.removed_sessions.update(
        s.behavior_session_id for s in _pick(rng, behavior_only, 0, max(1, round(4 * scale)))
    )
    model.removed_experiments.update(e.ophys_experiment_id for s in gone for e in s.experiments)
    left = max(1, round(5 * scale) - len(model.removed_experiments))
    several = [s for s in ophys if len(s.experiments) > 2 and s not in gone]
    model.removed_experiments.update(
        s.experiments[-1].ophys_experiment_id for s in _pick(rng, several, 0, left)
    )


def _age(session: Session) -> int:
    return (session.start.date() - session.mouse.birth).days
