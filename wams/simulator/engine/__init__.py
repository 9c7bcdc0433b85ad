"""The grid engine: ANDES dynamics stepped live, scenarios, ground truth (no Django)."""

from wams.simulator.engine.dynamics import AppliedEvent, GridDynamics, SimulationDivergedError
from wams.simulator.engine.modes import Mode, dominant_inter_area_mode, system_modes
from wams.simulator.engine.noise import MeasurementNoise
from wams.simulator.engine.realtime import GridSample, RealTimeSimulator
from wams.simulator.engine.scenarios import parse_scenario_arg, plan_scenario, scenario_names
from wams.simulator.engine.truth import TruthRecorder

__all__ = [
    "AppliedEvent",
    "GridDynamics",
    "GridSample",
    "MeasurementNoise",
    "Mode",
    "RealTimeSimulator",
    "SimulationDivergedError",
    "TruthRecorder",
    "dominant_inter_area_mode",
    "parse_scenario_arg",
    "plan_scenario",
    "scenario_names",
    "system_modes",
]
