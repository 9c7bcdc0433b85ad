"""The acceptance grading's truth: where each disturbance truly is."""

from __future__ import annotations

from tests.wams.incident_grading import truth_buses


def test_an_islanding_is_at_every_tie_it_opened_though_the_truth_records_the_last():
    params = {"area_a": 1, "area_b": 2, "tie_lines": ["Line_8", "Line_18", "Line_21", "Line_32", "Line_33"]}
    events = [{"kind": "line_open", "element": "Line_33", "detail": {}}]
    assert truth_buses("islanding", params, events) == {4, 14, 13, 16, 17, 26, 28, 29}


def test_a_line_trip_is_at_its_line_and_a_generator_trip_at_its_unit():
    assert truth_buses("line_trip", {"line": "Line_6"}, []) == {3, 18}
    assert truth_buses("generator_trip", {"generator": "GENROU_5"}, []) == {34}
