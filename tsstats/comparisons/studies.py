"""Studies as the service keeps them: the comparisons whose metadata names a study (``tsstats compare``'s trials,
``tsstats.compare``'s, ``tsstats.track(..., study=NAME)``'s), listed, and one study's figures computed from its
stored trials as ``tsstats compare`` computes them (``client.study.analyse``: mean, σ and 95 % interval of
each contender's energy per item or per run and of its time, each ratio to the least with its interval and
Welch's t-test). A contender is the trial's ``metadata.command``, else its first model, else its name; a
warm-up trial (``metadata.warmup``) is left out, and so is a trial that did not complete. Reads on a pool
cursor; the deletion of a study's trials goes through ``ComparisonLife.delete`` on the writer thread.
"""

from __future__ import annotations

import json
from typing import Any

from tsstats.client.study import Trial, analyse_or_say, measurer_of, report, study_document
from tsstats.core.inputs import InputError, rfc3339_ms
from tsstats.core.units import JOULES_PER_KWH, MS_PER_S
from tsstats.storage.sql import Connection

MAX_STUDY_NAME = 200
MAX_STUDIES_LISTED = 500
STUDY = "json_extract_string(metadata, '$.study')"
WARMUP = "coalesce(TRY_CAST(json_extract(metadata, '$.warmup') AS BOOLEAN), false)"
CONTENDER = "coalesce(json_extract_string(metadata, '$.command'), models[1], name)"
BASELINE = "coalesce(TRY_CAST(json_extract(metadata, '$.idleBaseline') AS BOOLEAN), false)"
WAITED = "TRY_CAST(json_extract(metadata, '$.waitedS') AS DOUBLE)"


def check_study_id(text: str) -> str:
    """A study's id is its name: 1 to 200 characters."""
    if not 1 <= len(text) <= MAX_STUDY_NAME:
        raise InputError(f"no study {text[:40]!r}: a study's id is its name, 1 to {MAX_STUDY_NAME} characters",
                         status=404)
    return text


def list_studies(con: Connection) -> dict[str, Any]:
    """The studies, the most recently active first (at most 500): each with its contenders and trial counts."""
    rows = con.execute(
        f"SELECT {STUDY} AS study, count(*) FILTER (WHERE NOT {WARMUP}), count(*) FILTER (WHERE {WARMUP}), "
        f"min(created_ms), max(created_ms), list(DISTINCT {CONTENDER} ORDER BY {CONTENDER}) FROM comparisons "
        f"WHERE {STUDY} IS NOT NULL AND NOT {BASELINE} GROUP BY study ORDER BY max(created_ms) DESC, study LIMIT ?",
        [MAX_STUDIES_LISTED]).fetchall()
    return {"items": [{"id": study, "trials": int(trials), "warmups": int(warmups), "firstAt": rfc3339_ms(first),
                       "lastAt": rfc3339_ms(last), "contenders": list(contenders)}
                      for study, trials, warmups, first, last, contenders in rows]}


def study_trial_ids(con: Connection, study_id: str) -> list[int]:
    return [row[0] for row in con.execute(f"SELECT id FROM comparisons WHERE {STUDY} = ? ORDER BY id",
                                          [study_id]).fetchall()]


def study_answer(con: Connection, study_id: str) -> dict[str, Any] | None:
    """One study's figures from its stored trials, and the report ``tsstats compare`` would print; None when no
    comparison names it."""
    rows = con.execute(
        f"SELECT id, {CONTENDER}, status, {WARMUP}, started_ms, finished_ms, energy_kwh, items, fair, conditions, "
        f"{WAITED}, {BASELINE}, machine_kwh, accounting FROM comparisons WHERE {STUDY} = ? ORDER BY id",
        [study_id]).fetchall()
    if not rows:
        return None
    names: list[str] = []
    trials: list[Trial] = []
    items_of: dict[int, float | None] = {}
    counted: dict[int, int] = {}
    idle_w, idle_note = None, ""
    for (record_id, contender, status, warmup, started, finished, energy_kwh, items, fair, conditions, waited,
         baseline, machine_kwh, accounting) in rows:
        if baseline:  # the idle power measured before the study, the last one measured
            if status == "completed" and energy_kwh is not None and started is not None and finished and \
                    finished > started:
                seconds = (finished - started) / MS_PER_S
                idle_w = energy_kwh * JOULES_PER_KWH / seconds
                idle_note = f"{idle_w:.4g} W over {seconds:.3g} s (comparison {record_id})"
            continue
        if contender not in names:
            names.append(contender)
        index = names.index(contender)
        if status != "completed" or started is None or finished is None:
            continue
        counted[index] = counted.get(index, 0) + (0 if warmup else 1)
        judged = json.loads(conditions) if conditions else {}
        window_s = (finished - started) / MS_PER_S  # the record's window: its time and its energy's span alike
        trial = Trial(index, 0 if warmup else counted[index], window_s, 0,
                      None if energy_kwh is None else energy_kwh * JOULES_PER_KWH, record_id, fair,
                      list(judged.get("unfairReasons") or []), waited or 0.0, None,
                      None if machine_kwh is None else machine_kwh * JOULES_PER_KWH, window_s, judged.get("conditions"),
                      *measurer_of(json.loads(accounting).get("measurer") if accounting else None))
        items_of[record_id] = items
        trials.append(trial)
    per_item = all(items_of[trial.record_id] for trial in trials if trial.record_id is not None) and bool(trials)

    def unit_energy(trial: Trial) -> float | None:
        if trial.energy_j is None:
            return None
        items = items_of.get(trial.record_id or -1)
        return trial.energy_j / items if per_item and items else trial.energy_j

    contenders: list[tuple[str, list[str] | None]] = [(name, None) for name in names]
    results, never_quiet = analyse_or_say(contenders, trials, unit_energy, False, idle_w)
    stopped = f"{len(trials)} completed trials stored"
    document = study_document(study_id, None, 1.0 if per_item else None, results, stopped, idle_w, idle_note)
    document["items"] = "per trial" if per_item else None
    document["neverQuiet"] = never_quiet
    document["report"] = report(results, stopped, per_item, "the trials have no energy", never_quiet, idle_note)
    return document
