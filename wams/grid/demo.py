"""The demo topology: the IEEE 39-bus New England system placed on New England geography.

Bus and branch numbering follow the IEEE 39-bus test case, so the simulator maps one to one.
Ports are offsets from a base so tests can place a whole fleet on free ports.
"""

from __future__ import annotations

from dataclasses import dataclass

# (code, name, latitude, longitude, area, owner code, buses)
SUBSTATIONS: list[tuple[str, str, float, float, str, str, tuple[int, ...]]] = [
    ("PLVAL", "Pleasant Valley", 41.74, -73.72, "west", "netso", (39,)),
    ("LGMTN", "Long Mountain", 41.53, -73.47, "west", "netso", (1,)),
    ("FRSTB", "Frost Bridge", 41.62, -73.08, "west", "netso", (9,)),
    ("STHTN", "Southington", 41.58, -72.88, "west", "netso", (8,)),
    ("BERLN", "Berlin", 41.62, -72.75, "west", "netso", (7,)),
    ("HADDM", "Haddam", 41.48, -72.52, "west", "netso", (5,)),
    ("MLSTN", "Millstone", 41.31, -72.17, "west", "netso", (6, 31)),
    ("MONTV", "Montville", 41.45, -72.12, "west", "netso", (11, 12)),
    ("CARD", "Card Street", 41.64, -72.19, "west", "netso", (13,)),
    ("LKRD", "Lake Road", 41.80, -71.90, "west", "netso", (10, 32)),
    ("MNCHS", "Manchester", 41.78, -72.52, "west", "pvdso", (4,)),
    ("LUDLW", "Ludlow", 42.16, -72.47, "west", "pvdso", (14,)),
    ("AGAWM", "Agawam", 42.07, -72.64, "central", "netso", (3,)),
    ("MLBRY", "Millbury", 42.19, -71.76, "central", "netso", (18,)),
    ("WMDWY", "West Medway", 42.14, -71.44, "central", "netso", (17,)),
    ("WWALP", "West Walpole", 42.12, -71.25, "central", "netso", (16,)),
    ("SHRMN", "Sherman Road", 41.93, -71.57, "central", "netso", (15,)),
    ("BRYTN", "Brayton Point", 41.71, -71.19, "central", "netso", (19, 33)),
    ("SMRST", "Somerset", 41.76, -71.13, "central", "netso", (20, 34)),
    ("HLBRK", "Holbrook", 42.15, -71.01, "central", "netso", (21,)),
    ("MYSTC", "Mystic", 42.39, -71.07, "central", "netso", (22, 35)),
    ("SALEM", "Salem Harbor", 42.52, -70.88, "central", "netso", (23, 36)),
    ("WOBRN", "Woburn", 42.48, -71.15, "central", "netso", (24,)),
    ("TWKSB", "Tewksbury", 42.61, -71.23, "central", "netso", (27,)),
    ("NFMTN", "Northfield Mountain", 42.61, -72.47, "north", "netso", (2, 30)),
    ("VERNN", "Vernon", 42.78, -72.51, "north", "netso", (25, 37)),
    ("SCBIE", "Scobie Pond", 42.95, -71.37, "north", "netso", (26,)),
    ("BUXTN", "Buxton", 43.64, -70.55, "north", "netso", (28,)),
    ("SBROK", "Seabrook", 42.90, -70.85, "north", "netso", (29, 38)),
]

GENERATOR_BUSES = tuple(range(30, 40))

# The IEEE 39-bus units as the ANDES case gives them: (name, bus, output MW in the base case,
# rating MVA, inertia constant H in s on the rating). Bus 39 is the New York equivalent.
GENERATORS: list[tuple[str, int, float, float, float]] = [
    ("GENROU_1", 30, 436.1, 1040.0, 4.20), ("GENROU_2", 31, 646.0, 836.0, 3.03),
    ("GENROU_3", 32, 725.0, 843.7, 3.58), ("GENROU_4", 33, 652.0, 1174.8, 2.86),
    ("GENROU_5", 34, 508.0, 1080.2, 2.60), ("GENROU_6", 35, 687.0, 1085.7, 3.48),
    ("GENROU_7", 36, 580.0, 1025.2, 2.64), ("GENROU_8", 37, 321.5, 970.2, 2.43),
    ("GENROU_9", 38, 764.8, 1684.1, 3.45), ("GENROU_10", 39, 574.2, 1199.0, 50.0),
]  # fmt: skip
# Settled MW per Hz of the whole demo grid (governor droop of the units plus the load's relief),
# measured on the simulator's generator trips and load steps.
FREQUENCY_RESPONSE_MW_PER_HZ = 4300.0
BASE_KV_OVERRIDES = {12: 138.0, 20: 230.0} | dict.fromkeys(range(30, 39), 22.0)

# IEEE 39-bus branches (from, to, is_transformer); rating in MVA follows from the kind.
BRANCHES: list[tuple[int, int, bool]] = [
    (1, 2, False), (1, 39, False), (2, 3, False), (2, 25, False), (2, 30, True), (3, 4, False),
    (3, 18, False), (4, 5, False), (4, 14, False), (5, 6, False), (5, 8, False), (6, 7, False),
    (6, 11, False), (6, 31, True), (7, 8, False), (8, 9, False), (9, 39, False), (10, 11, False),
    (10, 13, False), (10, 32, True), (12, 11, True), (12, 13, True), (13, 14, False), (14, 15, False),
    (15, 16, False), (16, 17, False), (16, 19, False), (16, 21, False), (16, 24, False), (17, 18, False),
    (17, 27, False), (19, 20, True), (19, 33, True), (20, 34, True), (21, 22, False), (22, 23, False),
    (22, 35, True), (23, 24, False), (23, 36, True), (25, 26, False), (25, 37, True), (26, 27, False),
    (26, 28, False), (26, 29, False), (28, 29, False), (29, 38, True),
]  # fmt: skip

ORGANISATIONS = [
    ("netso", "New England TSO", "tso"),
    ("pvdso", "Pioneer Valley DSO", "dso"),
    ("grtel", "Granite Telecom", "telco"),
]


@dataclass(frozen=True)
class PmuSpec:
    """One demo PMU: where it sits, what it measures and how it encodes."""

    bus: int
    idcode: int
    current_lines: tuple[tuple[int, int], ...]
    phasor_format: str = "float32"
    notation: str = "polar"
    stream: str | None = None  # name of a shared PDC stream, None for a PMU of its own


PMUS: list[PmuSpec] = [
    PmuSpec(39, 139, ((39, 1), (39, 9))),
    PmuSpec(1, 101, ((1, 2),)),
    PmuSpec(6, 106, ((6, 5), (6, 11))),
    PmuSpec(10, 110, ((10, 13),), phasor_format="int16", notation="rectangular"),
    PmuSpec(4, 104, ((4, 3), (4, 14))),
    PmuSpec(14, 114, ((14, 15),), phasor_format="int16", notation="polar"),
    PmuSpec(3, 103, ((3, 18),)),
    PmuSpec(16, 116, ((16, 17), (16, 19))),
    PmuSpec(19, 119, ((19, 16),), notation="rectangular"),
    PmuSpec(22, 122, ((22, 21),), stream="Boston PDC"),
    PmuSpec(23, 123, ((23, 24),), stream="Boston PDC"),
    PmuSpec(2, 102, ((2, 25),)),
    PmuSpec(25, 125, ((25, 26),)),
    PmuSpec(29, 129, ((29, 26),)),
]

PDC_STREAMS = {"Boston PDC": 900}

# (name, from bus, to bus, limit)
CORRIDORS = [
    ("New York tie to Seabrook", 39, 29, 60.0),
    ("New York tie to West Walpole", 39, 16, 50.0),
    ("Millstone to Salem Harbor", 6, 23, 45.0),
    ("Lake Road to Brayton Point", 10, 19, 45.0),
    ("Northfield to Vernon", 2, 25, 30.0),
    ("Manchester to Ludlow", 4, 14, 30.0),
]

# Controllable devices: (name, kind, bus or (from, to) line, MW, owner)
BREAKERS = [("Breaker 3-4 Agawam", (3, 4)), ("Breaker 14-15 Ludlow", (14, 15)), ("Breaker 1-2 Long Mountain", (1, 2)), ("Breaker 26-27 Scobie", (26, 27))]  # fmt: skip
LOAD_BLOCKS = [
    ("Load block Manchester A", 4, 100.0, "pvdso"),
    ("Load block Manchester B", 4, 100.0, "pvdso"),
    ("Load block Southington", 8, 150.0, "netso"),
    ("Load block Sherman Road", 15, 100.0, "netso"),
    ("Load block West Walpole", 16, 100.0, "netso"),
    ("Load block Somerset", 20, 150.0, "netso"),
    ("Load block Woburn", 24, 100.0, "netso"),
    ("Load block Agawam", 3, 100.0, "netso"),
]
GENERATOR_SETPOINTS = [("Lake Road unit set point", 32), ("Seabrook unit set point", 38)]
# The cut set between the Seabrook generation pocket (buses 28, 29, 38) and the grid, opened by
# controlled islanding. Listed after the set points so earlier devices keep their IOAs.
ISLANDING_BREAKERS = [("Breaker 26-28 Scobie", (26, 28)), ("Breaker 26-29 Scobie", (26, 29))]

REPORTING_RATE_FPS = 30
PMU_PORT_BASE = 20000
PATH_PORT_OFFSET = 1000  # second path of each stream listens on base + offset + index
UDP_PORT_BASE = 22000
RTU_PORT_BASE = 24040


def substation_of_bus() -> dict[int, str]:
    """Map bus number to substation code."""
    return {bus: code for code, *_rest, buses in SUBSTATIONS for bus in buses}


def area_of_bus() -> dict[int, str]:
    """Map bus number to control area."""
    return {bus: area for _c, _n, _la, _lo, area, _o, buses in SUBSTATIONS for bus in buses}


def generation_units() -> list[tuple[str, int, float, float, float]]:
    """Return the demo grid's units: (name, bus, output MW, rating MVA, H s on the rating)."""
    return list(GENERATORS)
