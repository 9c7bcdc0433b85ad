"""Plotly figure specifications (plain dicts) for the operator pages: one look, units on every axis.

Live figures start empty and the page's script extends them; history figures carry their data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboards.history import QUANTITIES, PmuWindow

if TYPE_CHECKING:
    from wams.detection.faultrecords import FaultRecordTraces

Figure = dict[str, Any]

TEXT = "#e6edf3"
MUTED = "#9fb0c0"
GRID = "#2b3947"
PAPER = "#17212b"
PLOT = "#0f1720"
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13, "color": TEXT}
# High-contrast trace colours on the dark background (enough for a 39-bus fleet before repeating).
PALETTE = [
    "#4cc9f0", "#f9c74f", "#90be6d", "#f8961e", "#c77dff", "#ff6b6b", "#43aa8b", "#f72585",
    "#a0c4ff", "#ffd6a5", "#b5e48c", "#ffadad", "#9bf6ff", "#fdffb6", "#bdb2ff", "#ffc6ff",
    "#e9ff70", "#70d6ff", "#ff9770", "#caffbf",
]  # fmt: skip
TICK_FORMATS = {"frequency_hz": ".3f", "rocof_hz_per_s": ".3f", "magnitude_pu": ".3f", "angle_deg": ".0f"}
STATE_COLOURS = {"ok": "#3fb950", "alarm": "#ff5f56", "stale": "#9aa4ae", "down": "#d29922"}
INCIDENT_COLOUR = "#ff3b30"
NEW_ENGLAND = {"lat": (40.9, 44.2), "lon": (-74.2, -69.9)}


def colour(index: int) -> str:
    """Return the trace colour of the index-th PMU."""
    return PALETTE[index % len(PALETTE)]


def axis(title: str, **extra: Any) -> dict[str, Any]:
    """Return an axis with a title (quantity and unit), grid and readable ticks."""
    return {
        "title": {"text": title, "font": {"size": 13, "color": MUTED}},
        "gridcolor": GRID,
        "zerolinecolor": GRID,
        "linecolor": GRID,
        "tickfont": {"size": 12, "color": TEXT},
        "automargin": True,
        **extra,
    }


def layout(title: str, **extra: Any) -> dict[str, Any]:
    """Return the common dark layout with a title."""
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15, "color": TEXT}},
        "paper_bgcolor": PAPER,
        "plot_bgcolor": PLOT,
        "font": FONT,
        "margin": {"l": 64, "r": 16, "t": 40, "b": 48},
        "legend": {"font": {"size": 12}, "bgcolor": "rgba(0,0,0,0)"},
        "uirevision": "keep",
        **extra,
    }


def time_axis() -> dict[str, Any]:
    """Return the x axis of a time series (UTC wall clock)."""
    return axis("Time (UTC)", type="date", tickformat="%H:%M:%S")


Series = tuple[list[float], list[float | None]]  # (x in ms since the epoch, y)


def live_series(
    pmus: Sequence[dict[str, Any]], title: str, y_title: str, prefill: dict[int, Series] | None = None, **y_extra: Any
) -> Figure:
    """Return a live time-series figure with one line per PMU, started from stored data when given.

    The page shows a colour key, so the figure has no legend.
    """
    prefill = prefill or {}
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": pmu["name"],
            "x": list(prefill.get(pmu["id"], ([], []))[0]),
            "y": list(prefill.get(pmu["id"], ([], []))[1]),
            "line": {"width": 1.6, "color": colour(i)},
            "connectgaps": False,
            "hovertemplate": "%{y:.4f}<extra>" + pmu["name"] + "</extra>",
        }
        for i, pmu in enumerate(pmus)
    ]
    return {
        "data": data,
        "layout": layout(title, xaxis=time_axis(), yaxis=axis(y_title, **y_extra), showlegend=False),
    }


def frequency_figure(pmus: Sequence[dict[str, Any]], prefill: dict[int, Series] | None = None) -> Figure:
    """Return the live frequency figure (Hz)."""
    return live_series(pmus, "Frequency", "Frequency (Hz)", prefill, tickformat=".3f")


def rocof_figure(pmus: Sequence[dict[str, Any]], prefill: dict[int, Series] | None = None) -> Figure:
    """Return the live ROCOF figure (Hz/s)."""
    return live_series(pmus, "Rate of change of frequency", "ROCOF (Hz/s)", prefill, tickformat=".3f")


def map_figure(substations: Sequence[dict[str, Any]]) -> Figure:
    """Return the map of substations (coloured later by link and alarm state) on New England."""
    trace = {
        "type": "scattergeo",
        "mode": "markers+text",
        "lat": [s["lat"] for s in substations],
        "lon": [s["lon"] for s in substations],
        "text": [s["code"] for s in substations],
        "customdata": [s["id"] for s in substations],
        "hovertext": [f"{s['name']} ({len(s['pmu_ids'])} PMU)" for s in substations],
        "hoverinfo": "text",
        "textposition": "top center",
        "textfont": {"size": 11, "color": TEXT},
        "marker": {
            "size": [14 if s["pmu_ids"] else 8 for s in substations],
            "color": [STATE_COLOURS["stale"] for _ in substations],
            "line": {"width": 1, "color": "#0b1118"},
            "symbol": ["circle" if s["pmu_ids"] else "square" for s in substations],
        },
        "name": "Substations",
    }
    geo = {
        "scope": "north america",
        "resolution": 50,
        "projection": {"type": "mercator"},
        "lataxis": {"range": list(NEW_ENGLAND["lat"])},
        "lonaxis": {"range": list(NEW_ENGLAND["lon"])},
        "showland": True,
        "landcolor": "#1d2a36",
        "showlakes": True,
        "lakecolor": PLOT,
        "bgcolor": PAPER,
        "subunitcolor": "#4a5b6b",
        "countrycolor": "#4a5b6b",
        "showsubunits": True,
        "coastlinecolor": "#4a5b6b",
    }
    # Incident highlight (filled in by the page): the located line in red, a red ring on the substation.
    incident_lines = {
        "type": "scattergeo",
        "mode": "lines",
        "lat": [],
        "lon": [],
        "line": {"width": 4, "color": INCIDENT_COLOUR},
        "hoverinfo": "skip",
        "name": "Incident lines",
    }
    incident_rings = {
        "type": "scattergeo",
        "mode": "markers",
        "lat": [],
        "lon": [],
        "text": [],
        "hoverinfo": "text",
        "marker": {"size": 30, "symbol": "circle-open", "color": INCIDENT_COLOUR, "line": {"width": 3}},
        "name": "Incident locations",
    }
    return {
        "data": [trace, incident_lines, incident_rings],
        "layout": layout(
            "Substations: link, alarm and incident state",
            geo=geo,
            showlegend=False,
            margin={"l": 4, "r": 4, "t": 40, "b": 4},
        ),
    }


def polar_figure(pmus: Sequence[dict[str, Any]]) -> Figure:
    """Return the phasor diagram: one arrow per PMU, magnitude in pu, angle relative to the reference."""
    data = [
        {
            "type": "scatterpolar",
            "mode": "lines+markers",
            "name": pmu["name"],
            "r": [0, None],
            "theta": [0, None],
            "line": {"width": 2.5, "color": colour(i)},
            "marker": {"size": [0, 9], "color": colour(i)},
            "hovertemplate": "%{r:.3f} pu, %{theta:.1f} deg<extra>" + pmu["name"] + "</extra>",
        }
        for i, pmu in enumerate(pmus)
    ]
    polar = {
        "bgcolor": PLOT,
        "radialaxis": {
            "range": [0, 1.2],
            "ticksuffix": " pu",
            "tickfont": {"color": MUTED, "size": 11},
            "gridcolor": GRID,
            "linecolor": GRID,
            "angle": 75,
            "tickangle": 75,
        },
        "angularaxis": {
            "rotation": 0,
            "direction": "counterclockwise",
            "thetaunit": "degrees",
            "dtick": 30,
            "ticksuffix": " deg",
            "gridcolor": GRID,
            "linecolor": GRID,
            "tickfont": {"color": TEXT},
        },
    }
    return {
        "data": data,
        "layout": layout("Voltage phasors: magnitude (pu), angle (deg) from the reference", polar=polar),
    }


def corridor_figure(corridors: Sequence[dict[str, Any]]) -> Figure:
    """Return the corridor angle-difference bars with their limits (deg)."""
    names = [c["name"] for c in corridors]
    limits = [c["limit_deg"] for c in corridors]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "Angle difference",
            "y": names,
            "x": [None] * len(names),
            "marker": {"color": [STATE_COLOURS["stale"]] * len(names)},
            "text": ["" for _ in names],
            "textposition": "outside",
            "hovertemplate": "%{x:.1f} deg<extra>%{y}</extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "Limit",
            "y": names,
            "x": limits,
            "marker": {
                "symbol": "line-ns-open",
                "size": 22,
                "color": "#ff5f56",
                "line": {"width": 3, "color": "#ff5f56"},
            },
            "hovertemplate": "limit %{x:.0f} deg<extra>%{y}</extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "showlegend": False,
            "y": names,
            "x": [-limit for limit in limits],
            "marker": {
                "symbol": "line-ns-open",
                "size": 22,
                "color": "#ff5f56",
                "line": {"width": 3, "color": "#ff5f56"},
            },
            "hoverinfo": "skip",
        },
    ]
    span = max(limits, default=60.0) * 1.25
    return {
        "data": data,
        "layout": layout(
            "Corridor angle differences against limits",
            xaxis=axis("Angle difference (deg)", range=[-span, span], zeroline=True),
            yaxis=axis("", automargin=True),
            margin={"l": 200, "r": 24, "t": 40, "b": 48},
            legend={"orientation": "h", "y": -0.25, "font": {"size": 12}},
        ),
    }


def magnitude_figure(pmus: Sequence[dict[str, Any]]) -> Figure:
    """Return the bus voltage magnitude bars (pu) with the 0.95/1.05 pu band."""
    names = [p["name"] for p in pmus]
    data = [
        {
            "type": "bar",
            "name": "Voltage magnitude",
            "x": names,
            "y": [None] * len(names),
            "marker": {"color": [STATE_COLOURS["stale"]] * len(names)},
            "hovertemplate": "%{y:.3f} pu<extra>%{x}</extra>",
        }
    ]
    band = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "y0": v,
            "y1": v,
            "line": {"color": "#d29922", "dash": "dash"},
        }
        for v in (0.95, 1.05)
    ]
    return {
        "data": data,
        "layout": layout(
            "Bus voltage magnitudes",
            xaxis=axis("PMU", tickangle=-35),
            yaxis=axis("Voltage magnitude (pu)", range=[0.85, 1.15], tickformat=".2f"),
            shapes=band,
            showlegend=False,
        ),
    }


def window_figure(
    windows: Sequence[PmuWindow], names: dict[int, str], quantity: str, title: str, marks: Sequence[float] = ()
) -> Figure:
    """Return a history figure of one quantity: a line per PMU, its min-max band when decimated."""
    data: list[dict[str, Any]] = []
    for i, window in enumerate(windows):
        x = [float(v) * 1000.0 for v in window.t_s]
        name = names.get(window.pmu_id, str(window.pmu_id))
        if quantity in window.low and quantity in window.high:
            data.append(_band(x, window.low[quantity], window.high[quantity], colour(i), name))
        values = window.values.get(quantity, np.full(len(x), np.nan))
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": x,
                "y": [None if np.isnan(v) else float(v) for v in values],
                "line": {"width": 1.6, "color": colour(i)},
            }
        )
    shapes = [
        {
            "type": "line",
            "yref": "paper",
            "y0": 0,
            "y1": 1,
            "x0": t * 1000.0,
            "x1": t * 1000.0,
            "line": {"color": "#ff5f56", "dash": "dot"},
        }
        for t in marks
    ]
    return {
        "data": data,
        "layout": layout(
            title,
            xaxis=time_axis(),
            yaxis=axis(QUANTITIES.get(quantity, quantity), tickformat=TICK_FORMATS.get(quantity, "")),
            shapes=shapes,
        ),
    }


def _band(x: list[float], low: np.ndarray, high: np.ndarray, line_colour: str, name: str) -> dict[str, Any]:
    """Return a filled min-max band trace (x forward along the maxima, back along the minima)."""
    ys = [None if np.isnan(v) else float(v) for v in high] + [None if np.isnan(v) else float(v) for v in low[::-1]]
    return {
        "type": "scatter",
        "mode": "lines",
        "x": x + x[::-1],
        "y": ys,
        "fill": "toself",
        "fillcolor": line_colour + "33",
        "line": {"width": 0},
        "hoverinfo": "skip",
        "showlegend": False,
        "name": f"{name} min-max",
    }


def fault_record_figures(traces: Sequence[FaultRecordTraces]) -> list[tuple[str, Figure]]:
    """Return one waveform figure per record and unit (e.g. kV, A), time in ms from the trigger."""
    result: list[tuple[str, Figure]] = []
    for record in traces:
        x = [round((float(t) - record.trigger_time_s) * 1000.0, 4) for t in record.time_s]
        units = sorted({channel.unit or "-" for channel in record.analogs})
        for unit in units:
            channels = [c for c in record.analogs if (c.unit or "-") == unit]
            data = [
                {
                    "type": "scattergl",
                    "mode": "lines",
                    "name": " ".join(part for part in (c.name, c.phase) if part),
                    "x": x,
                    "y": [None if not np.isfinite(v) else float(v) for v in c.values],
                    "line": {"width": 1.2, "color": colour(i)},
                }
                for i, c in enumerate(channels)
            ]
            title = f"Fault record {record.station_name or record.name}: {record.sample_rate_hz:g} samples/s ({unit})"
            figure = {
                "data": data,
                "layout": layout(
                    title,
                    xaxis=axis("Time from trigger (ms)"),
                    yaxis=axis(f"Instantaneous value ({unit})"),
                ),
            }
            result.append((f"fault-{record.record_id}-{len(result)}", figure))
    return result
