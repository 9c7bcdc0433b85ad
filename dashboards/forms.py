"""Forms of the operator pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms

from dashboards.history import EXPORT_FORMATS, QUANTITIES
from dashboards.replay import SPEEDS
from wams.grid.models import Pmu

MAX_PLOT_WINDOW = timedelta(days=7)
MAX_EXPORT_WINDOW = timedelta(hours=24)
UTC_INPUT_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]


class UtcDateTimeField(forms.DateTimeField):
    """A date-time typed in UTC (the pages show UTC everywhere)."""

    input_formats = UTC_INPUT_FORMATS

    def to_python(self, value: Any) -> datetime | None:
        if isinstance(value, str) and value.strip():
            for fmt in UTC_INPUT_FORMATS:
                try:
                    return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
                except ValueError:
                    continue
            raise forms.ValidationError("Use YYYY-MM-DDTHH:MM[:SS] (UTC).", code="invalid")
        return super().to_python(value)


class PmuChoiceField(forms.ModelMultipleChoiceField):
    """PMUs listed by station and substation name."""

    def label_from_instance(self, obj: Pmu) -> str:  # type: ignore[override]
        return f"{obj.station_name} ({obj.substation.name})"


class WindowForm(forms.Form):
    """PMUs and a time window, the PMUs limited to those the user may see."""

    pmus = PmuChoiceField(queryset=Pmu.objects.none(), widget=forms.CheckboxSelectMultiple)
    start = UtcDateTimeField(
        label="Start (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1})
    )
    end = UtcDateTimeField(label="End (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}))
    max_window = MAX_PLOT_WINDOW

    def __init__(self, *args: Any, pmus: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["pmus"]
        assert isinstance(field, PmuChoiceField)
        field.queryset = pmus

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end <= start:
                raise forms.ValidationError("The end comes after the start.")
            if end - start > self.max_window:
                raise forms.ValidationError(f"A window lasts at most {self.max_window}.")
        return data

    @staticmethod
    def defaults(now: datetime | None = None) -> dict[str, str]:
        """Return the initial window: the last 15 minutes."""
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        return {
            "start": (now - timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"),
            "end": now.strftime("%Y-%m-%dT%H:%M:%S"),
        }


class HistoryForm(WindowForm):
    """What the history page plots."""

    quantity = forms.ChoiceField(choices=list(QUANTITIES.items()), initial="frequency_hz")
    speed = forms.TypedChoiceField(
        label="Replay speed", choices=[(s, f"{s}x") for s in SPEEDS], coerce=int, initial=1, required=False
    )


class ExportForm(WindowForm):
    """What the export downloads."""

    format = forms.ChoiceField(choices=[(f, f.upper()) for f in EXPORT_FORMATS])
    max_window = MAX_EXPORT_WINDOW
