"""Who one NWB file of the sample belongs to, and the identity attributes it carries.

Below the writers (:mod:`.nwbtemplate`, :mod:`.nwbophys`, :mod:`.nwbwrite`), so that each
of them takes these facts from here and none imports another upwards.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime

from . import session as S
from .values import reward_volumes

BEHAVIOR = "behavior_session"
EXPERIMENT = "ophys_experiment"
# Cells per experiment come from a few sizes so that one template serves each size.
CELL_COUNTS = (48, 64, 80, 96)
CELL_WEIGHTS = (0.25, 0.35, 0.25, 0.15)
AI148 = "Ai148(TIT2L-GC6f-ICL-tTA2)"


@dataclass(frozen=True)
class FileInfo:
    """Who one NWB file belongs to, as the sample's metadata tables say."""

    kind: str  # BEHAVIOR or EXPERIMENT
    ident: int  # behavior_session_id or ophys_experiment_id
    mouse_id: str
    genotype: str
    sex: str
    start: datetime
    revision: int = 0  # bumped when a release re-uploads the file with new content
    cell_roi_ids: tuple[int, ...] = ()  # the valid ROIs: the ophys_cells_table rows
    cell_specimen_ids: tuple[int, ...] = ()
    behavior_session_id: int = 0
    session_type: str = "OPHYS_1_images_A"
    equipment_name: str = "CAM2P.4"
    project_code: str = "VisualBehavior"
    age_in_days: int = 100
    driver_line: tuple[str, ...] = ("Sst-IRES-Cre",)
    reporter_line: str = AI148
    indicator: str = "GCaMP6f"
    image_set: str | None = "A"  # None: gratings
    novel: bool = False
    omissions: bool = False
    ophys_session_id: int = 0
    ophys_container_id: int = 0
    imaging_depth: int = 0
    targeted_imaging_depth: int = 0
    targeted_structure: str = "VISp"
    imaging_plane_group: int = -1
    imaging_plane_group_count: int = 0


def metadata_attributes(info: FileInfo) -> dict:
    """The attributes of ``/general/metadata`` (BehaviorMetadata or OphysBehaviorMetadata)."""
    out = {
        "behavior_session_id": int(info.behavior_session_id),
        "behavior_session_uuid": str(
            uuid.UUID(int=random.Random(info.behavior_session_id).getrandbits(128), version=4)
        ),
        "equipment_name": info.equipment_name,
        "project_code": info.project_code,
        "session_type": info.session_type,
        "stimulus_frame_rate": S.FPS,
    }
    if info.kind == EXPERIMENT:
        out.update(
            ophys_experiment_id=int(info.ident),
            ophys_session_id=int(info.ophys_session_id),
            ophys_container_id=int(info.ophys_container_id),
            imaging_depth=int(info.imaging_depth),
            targeted_imaging_depth=int(info.targeted_imaging_depth),
            field_of_view_width=S.FOV,
            field_of_view_height=S.FOV,
            imaging_plane_group=int(info.imaging_plane_group),
            imaging_plane_group_count=int(info.imaging_plane_group_count),
        )
    return out


def task_attributes(info: FileInfo) -> dict:
    """The attributes of ``/general/task_parameters`` (pairs stored as strings)."""
    volume, auto_volume = reward_volumes(info.session_type)
    return {
        "auto_reward_volume": auto_volume,
        "blank_duration_sec": ["0.5", "0.5"],
        "n_stimulus_frames": S.N_FRAMES,
        "omitted_flash_fraction": 0.05 if info.omissions else 0.0,
        "response_window_sec": ["0.15", "0.75"],
        "reward_volume": volume,
        "session_type": info.session_type,
        "stimulus": "grating" if info.image_set is None else "images",
        "stimulus_distribution": "geometric",
        "stimulus_duration_sec": 0.25,
        "stimulus_name": S.image_set(info.image_set)[0],
        "task": "change detection",
    }


def device(equipment_name: str) -> tuple[str, str]:
    """``(description, manufacturer)`` of a rig."""
    if equipment_name.startswith("MESO"):
        return "Allen Brain Observatory - Mesoscope 2P Rig", "Thorlabs"
    if equipment_name.startswith("CAM2P"):
        return "Allen Brain Observatory - Scientifica 2P Rig", "Scientifica"
    return "Allen Brain Observatory - Behavior Rig", "Allen Institute for Brain Science"
