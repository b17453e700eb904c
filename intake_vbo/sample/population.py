"""The sample's population: mice, their training and ophys sessions, experiments, ids.

:func:`build_model` draws it (seeded: the same seed gives the same release) at a scale
of the real release's counts, then lets :mod:`~intake_vbo.sample.model` mark what each
version changes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np

from ..catalog.release import version_key
from .fileinfo import CELL_COUNTS, CELL_WEIGHTS
from .model import (
    GENOTYPES,
    OPHYS_STAGES,
    PROJECTS,
    REAL_COUNTS,
    SAMPLE_VERSIONS,
    Experiment,
    Model,
    Mouse,
    Session,
    _quirks,
    _version_changes,
)


def counts(scale: float) -> dict[str, int]:
    """Row counts of the 0.x/1.0 tables at ``scale``: never fewer than a few of each."""
    n = {k: round(v * scale) for k, v in REAL_COUNTS.items()}
    n["ophys_sessions"] = max(n["ophys_sessions"], 6)
    n["ophys_experiments"] = max(n["ophys_experiments"], 2 * n["ophys_sessions"])
    n["behavior_sessions"] = max(n["behavior_sessions"], n["ophys_sessions"] + 12)
    n["mice"] = max(3, round(107 * scale))
    return n


def build_model(scale: float, seed: int, versions: tuple) -> Model:
    """Draw every entity of the sample release.

    Parameters
    ----------
    scale : float
        1.0 for the real row counts (see :func:`counts`).
    seed : int
        Seeds every random draw.
    versions : tuple of str
        The versions to be rendered; each after the first changes a few values and files.
    """
    rng = np.random.default_rng([seed, 20240601])
    n = counts(scale)
    mice = [_mouse(rng, i) for i in range(n["mice"])]
    n_ophys = _spread(rng, n["ophys_sessions"], len(mice), 1)
    n_training = _spread(rng, n["behavior_sessions"] - n["ophys_sessions"], len(mice), 4)
    sessions = [
        s
        for mouse, o, t in zip(mice, n_ophys, n_training, strict=True)
        for s in _mouse_sessions(rng, mouse, t, o)
    ]
    sessions.sort(key=lambda s: s.start)
    _add_experiments(rng, mice, sessions, n["ophys_experiments"])
    _assign_ids(rng, mice, sessions)
    _quirks(rng, sessions)
    # Every version after the first (of these and the usual ones) changes something.
    changed_in = sorted({*versions, *SAMPLE_VERSIONS}, key=version_key)[1:]
    model = Model(changed_in, mice, sessions, set(), set(), {}, {})
    _version_changes(seed, model, scale)
    return model


def _spread(rng, total: int, parts: int, minimum: int) -> list[int]:
    """Split ``total`` into ``parts`` uneven counts of at least ``minimum``."""
    minimum = min(minimum, total // parts)
    weights = rng.gamma(4.0, size=parts)
    extra = rng.multinomial(total - minimum * parts, weights / weights.sum())
    return [minimum + int(x) for x in extra]


def _mouse(rng, i: int) -> Mouse:
    names = list(PROJECTS)
    # The first mice cover every project; the rest follow the real shares.
    shares = np.array([p[2] for p in PROJECTS.values()])
    project = names[i] if i < len(names) else names[rng.choice(len(names), p=shares / sum(shares))]
    number = int(rng.integers(400000, 530000))
    # Some ids start with 0 on purpose: parsing mouse_id as a number would lose it.
    mouse_id = f"0{number % 100000:05d}" if i == 1 or rng.random() < 0.08 else str(number)
    genotype = GENOTYPES[int(rng.integers(len(GENOTYPES)))]
    birth = date(2018, 1, 1) + timedelta(days=int(rng.integers(0, 700)))
    behavior_rig = f"BEH.{'BDFG'[int(rng.integers(4))]}-Box{int(rng.integers(1, 7))}"
    ophys_rig = "MESO.1" if "Multiscope" in project else f"CAM2P.{int(rng.integers(3, 6))}"
    sex = "F" if rng.random() < 0.5 else "M"
    return Mouse(mouse_id, genotype, sex, project, birth, behavior_rig, ophys_rig)


def _training_types(n: int, familiar: str) -> list[tuple[str, str | None, int | None]]:
    """(session_type, image set, stage) of ``n`` behavior-only sessions, ending in habituation."""
    ladder = [
        ("TRAINING_0_gratings_autorewards_15min", None),
        ("TRAINING_1_gratings", None),
        ("TRAINING_2_gratings_flashed", None),
        (f"TRAINING_3_images_{familiar}_10uL_reward", familiar),
        (f"TRAINING_4_images_{familiar}_training", familiar),
        (f"TRAINING_5_images_{familiar}_handoff_ready", familiar),
    ]
    habituation = min(2, max(0, n - 3))
    steps = n - habituation
    types = [
        (*ladder[min(len(ladder) - 1, i * len(ladder) // max(steps, 1))], None)
        for i in range(steps)
    ]
    types += [(f"OPHYS_0_images_{familiar}_habituation", familiar, 0)] * habituation
    return types


def _mouse_sessions(rng, mouse: Mouse, n_training: int, n_ophys: int) -> list[Session]:
    familiar, novel = PROJECTS[mouse.project][1]
    day = datetime(mouse.birth.year, mouse.birth.month, mouse.birth.day, tzinfo=timezone.utc)
    day += timedelta(days=int(rng.integers(75, 95)))
    plan = _training_types(n_training, familiar)
    stages = [
        OPHYS_STAGES[min(i, 5)] if i < 6 else OPHYS_STAGES[int(rng.integers(6))]
        for i in range(n_ophys)
    ]
    stages.sort(key=lambda st: st[0])
    for number, suffix in stages:
        image_set = familiar if number <= 3 else novel
        plan.append((f"OPHYS_{number}_images_{image_set}{suffix}", image_set, number))
    sessions, seen_types, seen_sets, omissions, novel_seen = [], {}, {}, 0, False
    for session_type, image_set, stage in plan:
        day += timedelta(days=int(rng.choice([1, 1, 1, 2, 3])))
        hour, minute, second, ms = (int(x) for x in rng.integers([8, 0, 0, 1], [16, 60, 60, 1000]))
        start = day.replace(hour=hour, minute=minute, second=second, microsecond=1000 * ms)
        ophys = stage is not None and stage > 0
        if stage is None:
            experience = "Training"
        elif image_set == familiar:
            experience = "Familiar"
        else:
            experience = "Novel >1" if novel_seen else "Novel 1"
            novel_seen = True
        session = Session(
            behavior_session_id=0,  # ids are drawn later, in acquisition order
            mouse=mouse,
            start=start,
            session_type=session_type,
            project=mouse.project,
            equipment=mouse.behavior_rig if stage is None else mouse.ophys_rig,
            stage=stage,
            image_set=image_set,
            experience=experience,
            prior_type=seen_types.get(session_type, 0),
            prior_image_set=None if image_set is None else seen_sets.get(image_set, 0),
            prior_omissions=omissions,
            ophys_session_id=0 if ophys else None,
        )
        seen_types[session_type] = session.prior_type + 1
        if image_set is not None:
            seen_sets[image_set] = session.prior_image_set + 1
        omissions += ophys
        session.trials = _trial_counts(rng, "passive" in session_type)
        sessions.append(session)
    return sessions


def _trial_counts(rng, passive: bool) -> tuple[int, ...]:
    trials = int(rng.integers(250, 700))
    go = int(trials * rng.uniform(0.75, 0.85))
    catch = trials - go
    hit = 0 if passive else int(go * rng.uniform(0.3, 0.9))
    false_alarm = 0 if passive else int(catch * rng.uniform(0.05, 0.4))
    engaged = 0 if passive else int(trials * rng.uniform(0.4, 1.0))
    return (trials, go, catch, hit, go - hit, false_alarm, catch - false_alarm, engaged)


def _add_experiments(rng, mice: list[Mouse], sessions: list[Session], total: int) -> None:
    """Give each ophys session its imaged planes; experiments sum to ``total`` when possible."""
    for mouse in mice:
        mouse.containers = [[0, s, d, []] for s, d in PROJECTS[mouse.project][0]]
    ophys = [s for s in sessions if s.ophys_session_id is not None]
    planes = [len(s.mouse.containers) for s in ophys]
    sizes = [1 if p == 1 else int(rng.integers(2, p + 1)) for p in planes]
    multi = [i for i, p in enumerate(planes) if p > 1]
    while multi and sum(sizes) != total:
        i = multi[int(rng.integers(len(multi)))]
        step = 1 if sum(sizes) < total else -1
        if 1 <= sizes[i] + step <= planes[i]:
            sizes[i] += step
        if all(sizes[j] == (planes[j] if step > 0 else 1) for j in multi):
            break
    for session, size in zip(ophys, sizes, strict=True):
        chosen = sorted(rng.choice(len(session.mouse.containers), size, replace=False).tolist())
        for c in chosen:
            structure_depth = session.mouse.containers[c][2]
            group = c // 2 if len(session.mouse.containers) > 1 else None
            depth = structure_depth + int(rng.integers(-12, 13))
            session.experiments.append(Experiment(0, session, c, depth, group))


def _assign_ids(rng, mice: list[Mouse], sessions: list[Session]) -> None:
    """LIMS-like ids: 9 digits, increasing with acquisition time, unique across kinds."""
    n_ids = sum(2 + len(s.experiments) for s in sessions)
    gap = max(1000, int(200_000_000 / n_ids))
    next_id = 780_000_000
    for s in sessions:
        if s.ophys_session_id is not None:
            next_id += int(rng.integers(gap // 2, gap * 3 // 2))
            s.ophys_session_id = next_id
        next_id += int(rng.integers(gap // 2, gap * 3 // 2))
        s.behavior_session_id = next_id
        next_id += int(rng.integers(gap // 4, gap // 2))
        for e in s.experiments:
            next_id += int(rng.integers(2, 5))
            e.ophys_experiment_id = next_id
    container_id = 1_018_000_000
    specimen_id = 1_086_000_000
    for mouse in mice:
        for container in mouse.containers:
            container_id += int(rng.integers(3, 9))
            container[0] = container_id
            container[3] = list(range(specimen_id + 1, specimen_id + 1 + 140))
            specimen_id += 140 + int(rng.integers(1, 50))
    roi_id = 1_080_000_000
    experiments = sorted(
        (e for s in sessions for e in s.experiments), key=lambda e: e.ophys_experiment_id
    )
    for file_id, e in enumerate(experiments):
        e.file_id = file_id
        n = int(rng.choice(CELL_COUNTS, p=CELL_WEIGHTS))
        pool = e.session.mouse.containers[e.container][3]
        specimens = sorted(rng.choice(pool, n, replace=False).tolist())
        e.cells = [(roi_id + 1 + 2 * i, specimen) for i, specimen in enumerate(specimens)]
        roi_id += 2 * n + int(rng.integers(10, 90))
    behavior_only = [s for s in sessions if s.ophys_session_id is None]
    for file_id, s in enumerate(behavior_only, start=len(experiments)):
        s.file_id = file_id
    for s in sessions:
        if s.ophys_session_id is not None:
            s.file_id = -999  # no behavior NWB of its own: AllenSDK serves an experiment's
