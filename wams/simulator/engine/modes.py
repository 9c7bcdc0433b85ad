"""Electromechanical modes of the running grid from ANDES eigenvalue analysis."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wams.simulator.engine.dynamics import GridDynamics
from wams.simulator.engine.trajectory import ComplexArray

logger = logging.getLogger(__name__)

#: Band of electromechanical modes, Hz.
MODE_BAND_HZ = (0.05, 3.0)
#: Least participation of rotor speeds for a mode to count as electromechanical.
MIN_SPEED_PARTICIPATION = 0.2


@dataclass(frozen=True)
class Mode:
    """One oscillatory mode of the linearised grid."""

    frequency_hz: float
    damping_ratio: float
    eigenvalue_real: float
    eigenvalue_imag: float
    speed_participation: float  #: sum of rotor-speed participation factors
    shape: list[float]  #: real part of the rotor-speed mode shape per generator, largest = 1
    inter_area: bool  #: generators swing in groups against each other

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass
class Linearisation:
    """State matrix eigen-decomposition at the current operating point."""

    eigenvalues: ComplexArray  #: (n_state,)
    right: ComplexArray  #: (n_state, n_state) right eigenvectors as columns
    left: ComplexArray  #: (n_state, n_state) left eigenvectors as rows, left @ right = I
    speed_rows: list[int]  #: state index of each generator's rotor speed


def linearise(dyn: GridDynamics) -> Linearisation:
    """Linearise the running system at its present state (Jacobians refreshed first)."""
    system = dyn.system
    system.j_update(models=system.exist.pflow_tds)
    eig = system.EIG
    eig.calc_As()
    as_dense = np.array(eig.As)
    eigenvalues, right = np.linalg.eig(as_dense)
    left = np.linalg.inv(right)
    # The integrator factorises afresh at its next Jacobian refresh; make that the next step.
    system.TDS.solver.worker.factorize = True
    names = [str(n) for n in eig.x_name]
    speed_rows = [names.index(f"omega GENROU {k + 1}") for k in range(system.GENROU.n)]
    return Linearisation(eigenvalues=eigenvalues, right=right, left=left, speed_rows=speed_rows)


def unstable_eigenvalues(lin: Linearisation) -> ComplexArray:
    """Return right half-plane eigenvalues that take part in rotor motion.

    Degenerate stabiliser filters (all coefficients zero) add real eigenvalues near +1 that the
    time response never shows (the case runs flat for minutes); only oscillatory eigenvalues and
    real ones with a clear rotor-speed participation count.
    """
    unstable = np.where(lin.eigenvalues.real > 1e-6)[0]
    keep = []
    for k in unstable:
        speed = np.abs(lin.right[lin.speed_rows, k] * lin.left[k, lin.speed_rows]).sum()
        if abs(lin.eigenvalues[k].imag) > 1e-6 or speed > 0.1:
            keep.append(k)
    return np.asarray(lin.eigenvalues[keep], dtype=np.complex128)


def electromechanical_modes(lin: Linearisation, online: np.ndarray | None = None) -> list[Mode]:
    """Return the electromechanical modes (positive frequency), lowest frequency first."""
    mu = lin.eigenvalues
    freq_hz = np.abs(mu.imag) / (2.0 * np.pi)
    modes: list[Mode] = []
    for k in np.argsort(freq_hz):
        if mu[k].imag <= 0 or not (MODE_BAND_HZ[0] <= freq_hz[k] <= MODE_BAND_HZ[1]):
            continue
        participation = np.abs(lin.right[lin.speed_rows, k] * lin.left[k, lin.speed_rows])
        if participation.sum() < MIN_SPEED_PARTICIPATION:
            continue
        shape = lin.right[lin.speed_rows, k]
        if online is not None:
            shape = np.where(online, shape, 0.0)
        ref = shape[np.argmax(np.abs(shape))]
        rel = (shape / ref).real if abs(ref) > 0 else np.zeros(len(shape))
        modes.append(
            Mode(
                frequency_hz=float(freq_hz[k]),
                damping_ratio=float(-mu[k].real / abs(mu[k])),
                eigenvalue_real=float(mu[k].real),
                eigenvalue_imag=float(mu[k].imag),
                speed_participation=float(participation.sum()),
                shape=[round(float(v), 4) for v in rel],
                inter_area=bool(rel.max() > 0.2 and rel.min() < -0.2),
            )
        )
    return modes


def dominant_inter_area_mode(modes: list[Mode]) -> Mode | None:
    """Return the least damped inter-area mode below 1 Hz, or None."""
    candidates = [m for m in modes if m.inter_area and m.frequency_hz <= 1.0]
    if not candidates:
        return None
    return min(candidates, key=lambda m: m.damping_ratio)


def slowest_inter_area_mode(modes: list[Mode]) -> Mode | None:
    """Return the lowest-frequency inter-area mode (areas swinging against each other), or None."""
    candidates = [m for m in modes if m.inter_area]
    return candidates[0] if candidates else None


def system_modes(dyn: GridDynamics) -> list[Mode]:
    """Return the electromechanical modes of the running system now."""
    return electromechanical_modes(linearise(dyn), online=dyn.generator_online)


def _closest_mode(lin: Linearisation, frequency_hz: float) -> int:
    mu = lin.eigenvalues
    score = np.where(mu.imag > 0, np.abs(mu.imag / (2 * np.pi) - frequency_hz), np.inf)
    return int(np.argmin(score))
