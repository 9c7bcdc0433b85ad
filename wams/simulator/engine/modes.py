"""Electromechanical modes of the running grid from ANDES eigenvalue analysis, and damping tuning."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wams.simulator.engine.dynamics import GridDynamics
from wams.simulator.engine.trajectory import ComplexArray, FloatArray

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
    """Return the least damped inter-area mode, or None."""
    candidates = [m for m in modes if m.inter_area and m.frequency_hz <= 1.0]
    if not candidates:
        return None
    return min(candidates, key=lambda m: m.damping_ratio)


def system_modes(dyn: GridDynamics) -> list[Mode]:
    """Return the electromechanical modes of the running system now."""
    return electromechanical_modes(linearise(dyn), online=dyn.generator_online)


def _closest_mode(lin: Linearisation, frequency_hz: float) -> int:
    mu = lin.eigenvalues
    score = np.where(mu.imag > 0, np.abs(mu.imag / (2 * np.pi) - frequency_hz), np.inf)
    return int(np.argmin(score))


def _damping_sensitivity(lin: Linearisation, k: int, inertia: FloatArray) -> FloatArray:
    """Return d(Re lambda_k)/dD_i (n_gen,) for mechanical damping D_i on the swing equation."""
    # dlambda/dA_jj is the participation factor; D_i enters A[w_i, w_i] as -D_i / M_i.
    p = lin.right[lin.speed_rows, k] * lin.left[k, lin.speed_rows]
    return np.asarray(-(p.real) / inertia, dtype=np.float64)


def tune_inter_area_damping(dyn: GridDynamics, target_ratio: float = 0.02, iterations: int = 8) -> Mode:
    """Set generator damping so the dominant inter-area mode has `target_ratio`; return that mode.

    The other electromechanical modes are held near their damping (least-squares on eigenvalue
    sensitivities to each generator's D, refined by re-linearising), so the scenario yields one
    poorly damped inter-area mode, as a mistuned stabiliser would.
    """
    inertia = np.asarray(dyn.system.GENROU.M.v, dtype=np.float64)
    damping = np.asarray(dyn.system.GENROU.D.v, dtype=np.float64).copy()
    lin = linearise(dyn)
    modes = electromechanical_modes(lin, online=dyn.generator_online)
    target = dominant_inter_area_mode(modes)
    if target is None:
        raise ValueError("no inter-area mode found")
    target_hz = target.frequency_hz
    for _ in range(iterations):
        k = _closest_mode(lin, target_hz)
        mu = lin.eigenvalues[k]
        zeta = -mu.real / abs(mu)
        if abs(zeta - target_ratio) < 0.001:
            break
        wanted_real = -target_ratio * abs(mu.imag) / math.sqrt(1.0 - target_ratio**2)
        rows = [_damping_sensitivity(lin, k, inertia)]
        rhs = [wanted_real - mu.real]
        weights = [1.0]
        for other in electromechanical_modes(lin):
            j = _closest_mode(lin, other.frequency_hz)
            if j == k:
                continue
            rows.append(_damping_sensitivity(lin, j, inertia))
            rhs.append(0.0)
            weights.append(0.3)
        a = np.vstack(rows) * np.asarray(weights)[:, None]
        b = np.asarray(rhs) * np.asarray(weights)
        step, *_ = np.linalg.lstsq(a, b, rcond=None)
        damping = damping + step
        dyn.system.GENROU.D.v[:] = damping
        lin = linearise(dyn)
    dyn.set_generator_damping(damping)
    final = electromechanical_modes(lin, online=dyn.generator_online)
    k = _closest_mode(lin, target_hz)
    chosen = min(final, key=lambda m: abs(m.frequency_hz - float(abs(lin.eigenvalues[k].imag) / (2 * np.pi))))
    if np.any(lin.eigenvalues.real > 1e-6):
        logger.warning("damping tuning left an unstable eigenvalue")
    return chosen
