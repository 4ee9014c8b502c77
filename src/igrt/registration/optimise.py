"""Optimisers over the 6 rigid parameters (mm, radians).

* `levenberg_marquardt` for the least-squares metrics (msd, ncc): Gauss-Newton
  steps damped by ``lambda * diag(H)``, accepted only when the cost drops.
* `lbfgs` for Mattes MI: scipy's L-BFGS-B on parameters scaled so that one
  unit of rotation is ``radius_mm`` of arc (translations and rotations then
  move the samples by comparable amounts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from igrt.registration.metrics import Evaluation, Evaluator


@dataclass
class OptimiseResult:
    params: np.ndarray
    evaluation: Evaluation
    iterations: int
    evaluations: int
    converged: bool
    min_overlap: float


def _step_mm(delta: np.ndarray, radius_mm: float) -> float:
    return float(max(np.linalg.norm(delta[:3]), np.linalg.norm(delta[3:]) * radius_mm))


def levenberg_marquardt(
    ev: Evaluator,
    p0: np.ndarray,
    *,
    radius_mm: float,
    max_iterations: int = 40,
    tol_mm: float = 0.002,
    max_step_mm: float = 20.0,
) -> OptimiseResult:
    p = np.asarray(p0, dtype=float).copy()
    cur = ev.evaluate(p)
    n_eval = 1
    lam = 1e-3
    converged = False
    min_overlap = cur.overlap
    it = 0
    for it in range(1, max_iterations + 1):
        if cur.hessian is None or not np.isfinite(cur.cost):
            break
        h = cur.hessian
        dg = np.diag(h).copy()
        if np.all(dg <= 0):
            break
        dg[dg <= 0] = dg[dg > 0].max() if np.any(dg > 0) else 1.0
        accepted = False
        while lam < 1e8:
            try:
                delta = -np.linalg.solve(h + lam * np.diag(dg), cur.grad)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            size = _step_mm(delta, radius_mm)
            if size > max_step_mm:  # trust region: never jump further than the level can see
                delta *= max_step_mm / size
                size = max_step_mm
            trial = ev.evaluate(p + delta)
            n_eval += 1
            if np.isfinite(trial.cost) and trial.cost <= cur.cost and trial.overlap > 0.5 * cur.overlap:
                p = p + delta
                cur = trial
                min_overlap = min(min_overlap, cur.overlap)
                lam = max(lam / 4.0, 1e-7)
                accepted = True
                break
            lam *= 6.0
            if size < tol_mm:  # even a tiny step does not improve: at the optimum
                break
        if not accepted or size < tol_mm:
            converged = True
            break
    return OptimiseResult(p, cur, it, n_eval, converged, min_overlap)


def lbfgs(
    ev: Evaluator,
    p0: np.ndarray,
    *,
    radius_mm: float,
    max_iterations: int = 60,
    tol_mm: float = 0.002,
) -> OptimiseResult:
    scale = np.array([1.0, 1.0, 1.0, radius_mm, radius_mm, radius_mm])
    state = {"n": 0, "min_overlap": 1.0}

    def fun(x: np.ndarray):
        e = ev.evaluate(x / scale)
        state["n"] += 1
        state["min_overlap"] = min(state["min_overlap"], e.overlap)
        if not np.isfinite(e.cost):
            return 1e3, np.zeros(6)
        return e.cost, e.grad / scale

    x0 = np.asarray(p0, float) * scale
    res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iterations, "ftol": 1e-7, "gtol": 1e-7, "maxls": 8})
    p = res.x / scale
    final = ev.evaluate(p)
    # L-BFGS-B stops with a line-search failure when it cannot improve any more: that is
    # convergence for a sampled metric; only the iteration cap means "not converged".
    converged = bool(res.nit < max_iterations)
    return OptimiseResult(p, final, int(res.nit), state["n"] + 1, converged, state["min_overlap"])
