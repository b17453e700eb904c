"""The optical physiology part of a sample experiment file, as AllenSDK writes it.

``processing/ophys`` (segmentation with the ROI masks, the five trace families, event
detection, projection images, motion correction) and ``general/optophysiology``; called
by :func:`intake_vbo.sample.nwbtemplate.build` for experiment templates.
"""

from __future__ import annotations

import numpy as np

from . import session as S
from .extensions import EVENT_DETECTION, get_class
from .nwbcolumns import column, packed
from .values import CELLS, TRACES


def add_ophys(nwb, info, values: dict) -> None:
    """Add the imaging plane and ``processing/ophys`` of an experiment to ``nwb``."""
    from hdmf.common import ElementIdentifiers
    from pynwb import TimeSeries
    from pynwb.base import Images
    from pynwb.image import GrayscaleImage
    from pynwb.ophys import (
        DfOverF,
        Fluorescence,
        ImageSegmentation,
        OpticalChannel,
        PlaneSegmentation,
        RoiResponseSeries,
    )

    plane = nwb.create_imaging_plane(
        name="imaging_plane_1",
        optical_channel=OpticalChannel("channel_1", "2P Optical Channel", 520.0),
        description=plane_description(info),
        device=nwb.devices[info.equipment_name],
        excitation_lambda=910.0,
        imaging_rate=float(values["general/optophysiology/imaging_plane_1/imaging_rate"]),
        indicator=info.indicator,
        location=info.targeted_structure,
    )
    module = nwb.create_processing_module(name="ophys", description="Ophys processing module")
    names = [
        "cell_specimen_id",
        "height",
        "mask_image_plane",
        "max_correction_down",
        "max_correction_left",
        "max_correction_right",
        "max_correction_up",
        "valid_roi",
        "width",
        "x",
        "y",
    ]
    columns = [column(c, np.asarray(values[CELLS + c])) for c in names]
    columns.append(
        column(
            "image_mask", packed(values[CELLS + "image_mask"], compression_opts=1, shuffle=False)
        )
    )
    cells = PlaneSegmentation(
        name="cell_specimen_table",
        description="Segmented rois",
        imaging_plane=plane,
        columns=columns,
        id=ElementIdentifiers(name="id", data=values[CELLS + "id"]),
    )
    segmentation = ImageSegmentation(name="image_segmentation")
    segmentation.add_plane_segmentation(cells)
    module.add(segmentation)
    n = len(values[CELLS + "id"])
    rois = cells.create_roi_table_region(
        description="segmented cells labeled by cell_specimen_id", region=list(range(n))
    )
    dff = RoiResponseSeries(
        name="traces",
        data=packed(values[TRACES["dff"]]),
        rois=rois,
        unit="NA",
        timestamps=values["processing/ophys/dff/traces/timestamps"],
    )
    module.add(DfOverF(name="dff", roi_response_series=dff))
    for name, key in (
        ("demixed_trace", "demixed"),
        ("neuropil_trace", "neuropil"),
        ("corrected_fluorescence", "corrected"),
    ):
        series = [
            RoiResponseSeries(
                name="traces",
                data=packed(values[TRACES[key]]),
                rois=rois,
                unit="NA",
                timestamps=dff,
            )
        ]
        if key == "corrected":
            series += [
                RoiResponseSeries(
                    name=k,
                    data=values[f"processing/ophys/{name}/{k}/data"],
                    rois=rois,
                    unit="NA",
                    timestamps=np.arange(n, dtype=float),
                )
                for k in ("r", "RMSE")
            ]
        module.add(Fluorescence(name=name, roi_response_series=series))
    events = get_class("OphysEventDetection", EVENT_DETECTION)
    region = cells.create_roi_table_region(
        description="Cells with detected events", region=list(range(n))
    )
    module.add(
        events(
            data=packed(values[TRACES["events"]], shuffle=False),
            rois=region,
            unit="N/A",
            timestamps=dff,
            lambdas=values["processing/ophys/event_detection/lambdas"],
            noise_stds=values["processing/ophys/event_detection/noise_stds"],
        )
    )
    pictures = []
    for name in ("max_projection", "average_image", "segmentation_mask_image"):
        data = values[f"processing/ophys/images/{name}"]
        pictures.append(
            GrayscaleImage(
                name=name,
                data=packed(data) if data.dtype.itemsize > 1 else data,
                resolution=0.00078125 / 10,
                description=f"{name} image at pixels/cm resolution",
            )
        )
    module.add(Images(name="images", images=pictures))
    for axis in "xy":
        key = f"processing/ophys/ophys_motion_correction_{axis}/data"
        module.add(
            TimeSeries(
                name=f"ophys_motion_correction_{axis}",
                data=values[key],
                unit="pixels",
                timestamps=dff,
            )
        )


def plane_description(info) -> str:
    return (
        f"({S.FOV}, {S.FOV}) field of view in {info.targeted_structure} at depth "
        f"{info.imaging_depth} um"
    )
