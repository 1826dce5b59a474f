"""Pieces of the site's HTML that repeat for every run or model, built in Python.

A store of 10,000 submissions puts 50,000 runs into the dataset tables and on the model pages and
10,000 rows into the overview: there a Jinja expression (a lookup, an escape, a finalize call)
costs several times an f-string, and these pieces took most of the build. The templates keep the
layout of each page and call these for its rows. Every text that comes from the store goes through
escape(); None is shown as a dash, as the templates' finalize does.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from markupsafe import Markup, escape

from nerbench.site_data import Model, Run, slug, track_label
from nerbench.site_runs import (
    TrainingSummary,
    load_text,
    overview_reproduction,
    parameters,
    parameters_text,
    reproduction_mark,
    training_of,
)
from nerbench.tracks import Track

_SPECIAL = re.compile("[&<>\"']")


def _e(text: str) -> str:
    """escape(text) for a plain str: it runs a million times on a big store, where most texts need
    nothing escaped and making a Markup object of each cost as much as the escaping."""
    return escape(text) if _SPECIAL.search(text) else text


@functools.cache
def _track(track: Track) -> str:
    return _e(track_label(track))


@functools.cache
def _short(summary: TrainingSummary) -> str:
    return _e(summary.short)


def f3(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def ci(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4g}"


def pts(value: float | None) -> str:
    """A signed difference of two F1 fractions (one scale everywhere: no percentages)."""
    return "—" if value is None else f"{value:+.3f}"


def sort_key(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def shown(value: Any) -> str:
    """`{{ value }}` of a template: escaped, a dash for None."""
    return "—" if value is None else escape(value)


def pretty_json(value: Any) -> str:
    # One line per document, wrapped by the page (CSS pre-wrap): without `indent` json uses its C
    # encoder, several times faster on stores with thousands of runs.
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(", ", ": "))


def model_href(model_id: str) -> str:
    return f"models/{slug(model_id)}.html"


def dataset_href(name: str) -> str:
    return f"datasets/{slug(name)}.html"


def _hardware(run: Run) -> str:
    if run.timing is None:
        out = '<span class="mark offref" title="no timing stored">no timing</span>'
    elif run.reference_hardware:
        out = f'<span class="mark ref" title="{_e(run.device_name or "")}">ref</span>'
    else:
        out = (
            f'<span class="mark offref" title="{_e(run.device_name or "")}">not ref · '
            f"{_e(run.device_class or '?')}</span>"
        )
    if run.self_reported:
        out += ' <span class="mark self">self-reported</span>'
    if run.timed_busy:
        out += f' <span class="mark busy" title="{_e(load_text(run))}">busy</span>'
    return out


def hardware(run: Run) -> Markup:
    return Markup(_hardware(run))


def _seeds(run: Run) -> str:
    spread = run.seed_spread if len(run.seed_runs) > 1 else None
    if spread is None:
        return ""
    mean, sd, n = spread
    return f' <span class="seeds" title="strict F1 over {n} seeds">{n} seeds: {mean:.3f} ± {sd:.3f}</span>'


def seeds(run: Run) -> Markup:
    """The mean and spread over seeds, where the shown run's configuration has several."""
    return Markup(_seeds(run))


@functools.cache
def _family(name: str) -> str:
    return f'<span class="family {_e(name)}">{"LLM" if name == "llm" else _e(name)}</span>'


def family(name: str) -> Markup:
    return Markup(_family(name))


def _f1ci(value: float | None, bounds: tuple[float, float] | None) -> str:
    return f3(value) + (f' <span class="ci">{ci(bounds)}</span>' if bounds else "")


def f1ci(value: float | None, bounds: tuple[float, float] | None) -> Markup:
    return Markup(_f1ci(value, bounds))


def _speed(run: Run) -> str:
    speed = run.timing.get("sentences_per_second") if run.timing else None
    return "—" if speed is None else f"{speed:.1f}"


def dataset_row(run: Run, model: Model, root: str) -> Markup:
    """A run's row in the table of all models of its dataset page."""
    return Markup(
        f'<tr><th scope="row"><a href="{root}{_e(model_href(run.model_id))}">{_e(run.model_id)}</a></th>\n'
        f"<td>{_family(run.family)}</td><td>{_e(run.head)}</td>\n"
        f'<td class="num">{_f1ci(run.f1, run.f1_ci)}{_seeds(run)}</td><td class="num">{f3(run.precision)}</td>'
        f'<td class="num">{f3(run.recall)}</td>\n'
        f'<td class="num">{f3(run.schemes.get("exact"))}</td><td class="num">{f3(run.schemes.get("partial"))}</td>'
        f'<td class="num">{f3(run.schemes.get("type"))}</td>\n'
        f'<td class="num">{_f1ci(run.long_f1, run.long_f1_ci)}</td>'
        f'<td class="num">{_f1ci(run.paper_long_f1, run.paper_long_f1_ci)}</td>\n'
        f'<td class="num">{_speed(run)}</td>\n'
        f'<td class="num">{usd(run.cost_per_1k)}</td><td class="num">{parameters_text(parameters(model))}</td>'
        f'<td class="budget">{_short(training_of(run))}</td><td>{_hardware(run)}</td>'
        f'<td class="track">{_track(run.track)}</td><td><code>{_e(run.run_id)}</code></td></tr>\n'
    )


def score_rows(runs: list[Run], cells: dict[str, list[Markup]], kind: int) -> Markup:
    """The rows of a dataset page's per-type (kind 0), per-length (1) or paper-bucket (2) table:
    each run's cells from site_data.score_cells."""
    return Markup(
        "".join(f'<tr><th scope="row">{_e(run.model_id)}</th>{cells[run.run_id][kind]}</tr>\n' for run in runs)
    )


def overview_row(row: dict[str, Any], rank: int, columns: list[str]) -> Markup:
    """A model's row in the overview (`row` from nerbench.site's _overview_row); `rank`: its place on the page."""
    model: Model = row["model"]
    cells = []
    for dataset, run in zip(columns, row["cells"]):
        if run is None:
            cells.append(f'<td class="num missing" data-dataset="{_e(dataset)}" data-sort="">—</td>\n')
        else:
            cells.append(
                f'<td class="num" data-dataset="{_e(dataset)}" data-sort="{sort_key(run.f1)}" '
                f'title="95% CI {ci(run.f1_ci)}">{f3(run.f1)}</td>\n'
            )
    macro = row["macro_f1"]
    covered = "" if macro is not None else f' title="run on {row["covered"]} of {len(columns)} datasets"'
    count = row["parameters"]
    size = f' title="{count:,} parameters">{parameters_text(count)}' if count else ' title="not stated">—'
    budget_title = f' title="{_e(row["budget_title"])}"' if row["budget_title"] else ""
    if row["reference"]:
        mark = '<span class="mark ref">ref</span>'
    else:
        classes = f" · {_e('+'.join(row['classes']))}" if row["classes"] else ""
        mark = f'<span class="mark offref">not ref{classes}</span>'
    self_reported = ' <span class="mark self">self-reported</span>' if row["self_reported"] else ""
    busy = f' <span class="mark busy" title="{_e(row["busy_title"])}">busy</span>' if row["busy"] else ""
    return Markup(
        f'<tr data-family="{_e(model.family)}" data-rank="{rank}" data-track="{_e("|".join(row["tracks"]))}" '
        f'data-size="{_e(row["size_class"])}" data-licence="{_e(row["licence"])}">\n'
        f'<th scope="row" data-sort="{_e(model.id)}">'
        f'<a href="{_e(model_href(model.id))}">{_e(model.id)}</a>\n'
        f'<span class="sub">{_family(model.family)} {_e(model.heads)}</span></th>\n'
        + "".join(cells)
        + f'<td class="num" data-sort="{sort_key(macro)}"{covered}>{f3(macro)}</td>\n'
        f'<td class="num" data-sort="{sort_key(row["long_f1"])}">{f3(row["long_f1"])}</td>\n'
        f'<td class="num" data-sort="{sort_key(row["cost"])}">{usd(row["cost"])}</td>\n'
        f'<td class="num" data-sort="{sort_key(count)}"{size}</td>\n'
        f'<td class="budget" data-sort="{_e(row["budget"])}"{budget_title}>{_e(row["budget"])}</td>\n'
        f'<td class="timing" data-sort="{"a" if row["reference"] else "b"}{_e(", ".join(row["devices"]))}">'
        f"{mark}{self_reported}{overview_reproduction(model)}\n"
        f'{busy} <span class="device">{_e("; ".join(row["devices"]))} '
        f"({_e(', '.join(row['sources']))})</span></td>\n"
        "</tr>\n"
    )


def model_sections(model: Model, root: str, shared_environment: dict[str, Any] | None) -> tuple[Markup, Markup]:
    """A model page's results table rows (its shown run on each dataset) and its card of every
    stored run; each run's hardware marks and reproduction mark made once for both."""
    marks = {id(run): (_hardware(run), reproduction_mark(run, model)) for run in model.runs}
    rows = []
    for dataset, run in sorted(model.shown.items(), key=lambda item: item[0].lower()):
        hardware, reproduced = marks[id(run)]
        rows.append(
            f'<tr><th scope="row"><a href="{root}{_e(dataset_href(dataset))}">{_e(dataset)}</a></th>\n'
            f'<td class="num">{_f1ci(run.f1, run.f1_ci)}{_seeds(run)}</td>'
            f'<td class="num">{_f1ci(run.long_f1, run.long_f1_ci)}</td>'
            f'<td class="num">{_f1ci(run.paper_long_f1, run.paper_long_f1_ci)}</td>\n'
            f'<td class="num">{_speed(run)}</td>\n'
            f'<td class="num">{usd(run.cost_per_1k)}</td><td class="budget">{_short(training_of(run))}</td>'
            f'<td>{hardware}{reproduced}</td><td class="track">{_track(run.track)}</td>'
            f"<td>{_e(run.source)}</td></tr>\n"
        )
    return Markup("".join(rows)), _run_cards(model, shared_environment, marks)


def _timing_rows(run: Run, t: dict[str, Any], hardware: str) -> str:
    """The timing part of a run card's table (a run with a timing row)."""
    repeats, warmup = t.get("repeats"), t.get("warmup_batches")
    wall = t.get("wall_seconds")
    if wall is None:
        wall_text = "—"
    elif repeats is not None:
        passes = warmup if warmup is not None else "an unrecorded number of"
        wall_text = (
            f"{wall:.3f} s for the whole test split, median of {escape(repeats)} timed passes after "
            f"{escape(passes)} warm-up batches"
        )
    else:
        wall_text = f"{wall:.3f} s for the whole test split, self-reported (passes and warm-up not stated)"
    speed, tokens = t.get("sentences_per_second"), t.get("tokens_per_second")
    if speed is None:
        speed_text = "—"
    else:
        speed_text = f"{speed:.1f} sentences/s" + (f", {tokens:.0f} tokens/s" if tokens is not None else "")
    p50 = t.get("batch_latency_p50_s")
    latency = (
        "—"
        if p50 is None
        else f"{p50:.4f} / {t.get('batch_latency_p95_s'):.4f} s (batch {shown(t.get('batch_size'))}, "
        f"{_e(t.get('precision') or '?')})"
    )
    peak = t.get("peak_memory_bytes")
    memory = f"{peak / 2**20:.1f} MiB ({shown(t.get('memory_kind'))})" if peak else "—"
    cost = t.get("cost_usd")
    if cost is None:
        cost_text = "unknown"
    else:
        sentences, price, source = t.get("sentences"), t.get("price_per_device_hour"), t.get("price_source")
        cost_text = f"{usd(cost)} for the whole test split"
        if sentences:
            cost_text += f" ({sentences:,} sentences)"
        cost_text += f"; {usd(t.get('cost_per_1k_sentences_usd'))} per 1,000 sentences"
        if price:
            cost_text += f" at ${escape(price)} per device-hour: {shown(source)}"
        elif source:
            cost_text += f" ({_e(source)})"
    return (
        f'<tr><th scope="row">Device</th><td>{_e(t.get("device_name") or "—")} × '
        f"{escape(t.get('num_devices') or '?')} {hardware}</td></tr>\n"
        f'<tr><th scope="row">Machine load</th><td>{_e(load_text(run))}</td></tr>\n'
        f'<tr><th scope="row">{"Median wall time" if repeats is not None else "Wall time"}</th>'
        f"<td>{wall_text}</td></tr>\n"
        f'<tr><th scope="row">Throughput</th><td>{speed_text}</td></tr>\n'
        f'<tr><th scope="row">Batch latency p50 / p95</th><td>{latency}</td></tr>\n'
        f'<tr><th scope="row">Peak memory</th><td>{memory}</td></tr>\n'
        f'<tr><th scope="row">Cost</th><td>{cost_text}</td></tr>\n'
    )


@functools.cache
def _training_rows(trained: TrainingSummary) -> str:
    """A run card's rows on training: the same for every run trained alike (summaries are interned)."""
    declared = ' <span class="mark self">declared by the submitter</span>' if trained.declared else ""
    rate = f"; learning rate {trained.learning_rate:g}" if trained.learning_rate is not None else ""
    notes = f'<tr><th scope="row">Notes</th><td>{_e(trained.notes)}</td></tr>' if trained.notes else ""
    return (
        f'<tr><th scope="row">Training</th><td>{_e(trained.regime_text)}{declared}</td></tr>\n'
        f'<tr><th scope="row">Budget</th><td>profile {_e(trained.profile_text)}; training sentences '
        f"{_e(trained.sentences_text)}; {_e(trained.epochs_text)}{rate}</td></tr>\n{notes}"
    )


def _run_cards(model: Model, shared_environment: dict[str, Any] | None, marks: dict[int, tuple[str, Markup]]) -> Markup:
    """A model page's card of every stored run: where and how it was run, trained and timed, and its
    record, details and environment as stored."""
    cards = []
    for run in model.runs:
        hardware, reproduced = marks[id(run)]
        seed = f" · seed {escape(run.seed)}" if run.seed is not None else ""
        superseded = ' <span class="mark">superseded</span>' if run not in model.shown[run.dataset].seed_runs else ""
        modified = "; <strong>scored against a modified test file</strong>" if run.modified else ""
        if run.timing:
            timing = _timing_rows(run, run.timing, hardware)
        else:
            timing = '<tr><th scope="row">Timing</th><td class="empty">none stored for this run</td></tr>\n'
        details = (
            "<details><summary>Training regime and run details (alignment, parse counts)</summary>"
            f"<pre>{_e(pretty_json(run.details))}</pre></details>"
            if run.details
            else ""
        )
        environment = (
            f"<details><summary>Environment</summary><pre>{_e(pretty_json(run.environment))}</pre></details>"
            if run.environment and not shared_environment
            else ""
        )
        cards.append(
            f'<section class="run" id="run-{_e(run.run_id)}">\n'
            f"<h3>{_e(run.dataset)}/{_e(run.split)} · run <code>{_e(run.run_id)}</code>"
            f"{seed}{superseded}</h3>\n"
            f'<p class="detail">Track: {_track(run.track)}.{reproduced}</p>\n'
            f'<p class="detail">Stored {_e(run.created_at)} UTC from {_e(run.source)}{modified}.\n'
            f"Test file sha256 <code>{_e(run.dataset_sha256)}</code>.</p>\n"
            '<table class="data stats timing">\n<tbody>\n'
            f"{_training_rows(training_of(run))}{timing}</tbody>\n</table>\n"
            f"<details><summary>Configuration</summary><pre>{_e(pretty_json(run.record.model_dump(mode='json')))}"
            f"</pre></details>\n{details}{environment}</section>\n"
        )
    return Markup("".join(cards))
