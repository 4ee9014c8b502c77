"""Similarity metrics over sample points: value, gradient and Gauss-Newton Hessian.

All metrics are written as costs to *minimise* over the 6 parameters
(mm, radians) of `igrt.registration.params`:

* ``msd``: mean squared difference ``mean w (M(T p) - F)^2``.
* ``ncc``: ``min_{a,b} mean w (a M(T p) + b - F)^2 = var(F) (1 - NCC^2)``; the
  linear fit of fixed from moving makes it blind to HU scale/offset
  (CBCT miscalibration) and its Gauss-Newton form is exact at the optimum.
* ``mi``: negative Mattes mutual information (box window on fixed bins,
  cubic B-spline Parzen window on moving intensities), analytic gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from igrt.geometry import Volume
from igrt.registration import _kernels as K
from igrt.registration.params import matrix_and_derivatives
from igrt.registration.sampling import Samples, index_map

METRICS = ("ncc", "msd", "mi")


@dataclass
class Evaluation:
    """Cost (to minimise), its gradient (6,), GN Hessian (6, 6) or None, and bookkeeping."""

    cost: float
    grad: np.ndarray
    hessian: np.ndarray | None
    overlap: float  # valid weight / total weight of the samples
    count: int
    ncc: float
    residual_var: float  # variance of F - (a M + b) per unit weight
    slope: float  # a of the linear fit F ~ a M + b


def gn_stats(acc: np.ndarray) -> dict:
    """Means, variances and the NCC of the accumulated sums (one reduced row)."""
    sw = acc[K.GN_SW]
    if sw <= 0:
        return {"ok": False}
    mf, mm = acc[K.GN_SF] / sw, acc[K.GN_SM] / sw
    vf = max(acc[K.GN_SFF] / sw - mf * mf, 0.0)
    vm = max(acc[K.GN_SMM] / sw - mm * mm, 0.0)
    cov = acc[K.GN_SFM] / sw - mf * mm
    ncc = cov / np.sqrt(vf * vm) if vf > 0 and vm > 0 else 0.0
    return {"ok": True, "sw": sw, "mf": mf, "mm": mm, "vf": vf, "vm": vm, "cov": cov, "ncc": ncc}


def _sym(acc: np.ndarray) -> np.ndarray:
    h = acc[K.GN_SJJ : K.GN_SJJ + 36].reshape(6, 6)
    return np.triu(h) + np.triu(h, 1).T


class Evaluator:
    """Evaluates one metric for fixed samples against a moving Volume."""

    def __init__(self, metric: str, samples: Samples, moving: Volume, centre: np.ndarray, bins: int = 32):
        self.metric = metric
        self.s = samples
        self.moving = np.ascontiguousarray(moving.array, dtype=np.float32)
        self.a = index_map(moving)
        self.centre = np.asarray(centre, dtype=np.float64)
        self.nchunk = max(4, 4 * nb.get_num_threads())
        if metric == "mi":
            f = samples.values
            lo, hi = np.percentile(f, [0.5, 99.5]) if f.size else (0.0, 1.0)
            if hi <= lo:
                hi = lo + 1.0
            self.nfb = bins
            self.fbins = np.clip(((f - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)
            mlo, mhi = np.percentile(self.moving[:: max(1, self.moving.shape[0] // 16)], [0.5, 99.5])
            if mhi <= mlo:
                mhi = mlo + 1.0
            self.nmb = bins + 4
            self.mmin = float(mlo)
            self.inv_dm = float((bins - 1) / (mhi - mlo))

    def _gn(self, p: np.ndarray) -> np.ndarray:
        m, dr = matrix_and_derivatives(p, self.centre)
        acc = K.gn_accumulate(self.s.points, self.s.values, self.s.weights, self.moving, self.a, m, dr, self.centre, self.nchunk)
        return acc.sum(axis=0)

    def evaluate(self, p: np.ndarray) -> Evaluation:
        if self.metric == "mi":
            return self._mi(p)
        acc = self._gn(p)
        return self.from_gn(acc, self.metric)

    def from_gn(self, acc: np.ndarray, metric: str) -> Evaluation:
        st = gn_stats(acc)
        wall = acc[K.GN_WALL]
        overlap = float(acc[K.GN_SW] / wall) if wall > 0 else 0.0
        count = int(acc[K.GN_COUNT])
        if not st["ok"]:
            return Evaluation(np.inf, np.zeros(6), None, overlap, count, 0.0, np.inf, 0.0)
        sw = st["sw"]
        sj, sfj, smj = (acc[o : o + 6] for o in (K.GN_SJ, K.GN_SFJ, K.GN_SMJ))
        hjj = _sym(acc)
        a = st["cov"] / st["vm"] if st["vm"] > 0 else 0.0
        b = st["mf"] - a * st["mm"]
        resid = max(st["vf"] - (st["cov"] ** 2 / st["vm"] if st["vm"] > 0 else 0.0), 0.0)
        if metric == "msd":
            cost = (acc[K.GN_SMM] - 2 * acc[K.GN_SFM] + acc[K.GN_SFF]) / sw
            grad = 2.0 * (smj - sfj) / sw
            hess = 2.0 * hjj / sw
        else:  # ncc via the linear fit F ~ a M + b (envelope theorem: a, b held fixed)
            cost = resid
            grad = 2.0 * a * (a * smj + b * sj - sfj) / sw
            hess = 2.0 * a * a * hjj / sw
        return Evaluation(float(cost), grad, hess, overlap, count, float(st["ncc"]), float(resid), float(a))

    def _mi(self, p: np.ndarray) -> Evaluation:
        m, dr = matrix_and_derivatives(p, self.centre)
        hist, dh, ws = K.mi_accumulate(
            self.s.points, self.fbins, self.s.weights, self.moving, self.a, m, dr, self.centre,
            self.mmin, self.inv_dm, self.nfb, self.nmb, self.nchunk,
        )
        h = hist.sum(axis=0)
        d = dh.sum(axis=0)
        wv, wall = ws[:, 0].sum(), ws[:, 1].sum()
        overlap = float(wv / wall) if wall > 0 else 0.0
        if wv <= 0:
            return Evaluation(np.inf, np.zeros(6), None, overlap, 0, 0.0, np.inf, 0.0)
        pj = h / wv
        pf = pj.sum(axis=1, keepdims=True)
        pm = pj.sum(axis=0, keepdims=True)
        nz = pj > 0
        ratio = np.zeros_like(pj)
        ratio[nz] = np.log(pj[nz] / (pf @ pm)[nz])
        mi = float((pj * ratio).sum())
        lpm = np.zeros_like(pj)
        lpm[nz] = np.log(pj[nz] / np.broadcast_to(pm, pj.shape)[nz])
        grad = -(d / wv * lpm[..., None]).sum(axis=(0, 1))
        return Evaluation(-mi, grad, None, overlap, int(round(wv)), float("nan"), float("nan"), 0.0)
