"""Import pyPMU (PyPI `synchrophasor`) on Python 3.10+, which it needs a shim for."""

from __future__ import annotations

import collections
import collections.abc
import logging
from typing import Any

collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]

from synchrophasor import frame as pypmu_frame  # noqa: E402
from synchrophasor.pdc import Pdc  # noqa: E402
from synchrophasor.pmu import Pmu  # noqa: E402

for name in ("synchrophasor", "synchrophasor.pmu", "synchrophasor.pdc"):
    logging.getLogger(name).setLevel(logging.ERROR)
Pmu.logger.setLevel(logging.ERROR)
Pdc.logger.setLevel(logging.ERROR)

__all__ = ["Pdc", "Pmu", "pypmu_frame", "quiet"]


def quiet(obj: Any) -> Any:
    """Silence a pyPMU object's logger."""
    obj.logger.setLevel(logging.ERROR)
    return obj
