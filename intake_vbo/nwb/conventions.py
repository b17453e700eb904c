"""AllenSDK 2.16.2's conventions for the values the analysis objects give.

One home for the facts that the views, the per-file table meta and the sample writer
share. It imports nothing, so any module may take them.
"""

# AllenSDK's fill for a missing value in an integer column (enforce_df_int_typing).
INT_NULL = -99

# stimulus_presentations: AllenSDK's fixed leading columns, in its order; the other
# columns follow in name order (AllenSDK's own order for them depends on the hash seed).
LEADING_COLUMNS = (
    "stimulus_block",
    "stimulus_block_name",
    "image_index",
    "image_name",
    "movie_frame_index",
    "duration",
    "start_time",
    "end_time",
    "start_frame",
    "end_frame",
    "is_change",
    "is_image_novel",
    "omitted",
    "movie_repeat",
    "flashes_since_change",
    "trials_id",
)

# The half-normal filter that smooths ``events`` into ``filtered_events``: its scale in
# seconds and its length in frames (AllenSDK's BehaviorOphysExperiment defaults).
EVENTS_FILTER_SCALE_SECONDS = 2.0 / 31.0
EVENTS_FILTER_N_TIME_STEPS = 20
