"""2D/3D registration: a stereoscopic kV pair (or any set of projections) against DRRs of the planning CT.

Intensity mode: the 6 parameters (mm, radians about ``centre_mm``, convention
of `igrt.registration.params`) are found by Levenberg-Marquardt on the
normalised residual of a per-view linear fit ``image ~ a * DRR + b`` (NCC),
with finite-difference Jacobians, over a detector/CT pyramid. The DRR of the
patient displaced by ``T`` (planning -> daily) is the DRR of the planning CT
seen from the pose mapped by ``T^-1``, so the CT is never resampled.

Fiducial mode: `register_fiducials` detects bright markers in each image,
triangulates them from two views and fits the planned marker positions to
them (Kabsch), reporting the residual.

The projector is any ``project(volume, pose) -> image [nv, nu]`` with a pose
that has ``source_mm``, ``detector_centre_mm``, ``u``, ``v``, ``shape`` (nu, nv)
and ``spacing_mm`` (pu, pv) and can be rebuilt with `dataclasses.replace`;
the default is `igrt.imaging.drr.render` with `igrt.imaging.drr.DRRPose`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from igrt.geometry import RigidTransform, Volume
from igrt.registration.errors import RegistrationError
from igrt.registration.params import from_transform, perturb, to_transform
from igrt.registration.pyramid import halve
from igrt.registration.result import RegistrationResult

Projector = Callable[[Volume, object], np.ndarray]


def default_projector(volume: Volume, pose) -> np.ndarray:
    from igrt.imaging.drr import render

    return render(volume, pose)


def transform_pose(pose, t: RigidTransform):
    """The pose as seen from the planning CT when the patient is displaced by ``t`` (planning -> daily)."""
    inv = t.inverse()
    return replace(pose, source_mm=inv.apply(pose.source_mm), detector_centre_mm=inv.apply(pose.detector_centre_mm),
                   u=inv.apply_vector(pose.u), v=inv.apply_vector(pose.v))


def bin_view(pose, image: np.ndarray, factor: int):
    """Detector binned by ``factor`` (blocks of pixels averaged; odd remainders cropped symmetrically)."""
    if factor == 1:
        return pose, np.asarray(image, np.float64)
    nv, nu = image.shape
    nv2, nu2 = nv // factor, nu // factor
    # crop symmetrically so the binned detector keeps its centre
    ov, ou = (nv - nv2 * factor) // 2, (nu - nu2 * factor) // 2
    img = np.asarray(image, np.float64)[ov:ov + nv2 * factor, ou:ou + nu2 * factor]
    img = img.reshape(nv2, factor, nu2, factor).mean(axis=(1, 3))
    pu, pv = pose.spacing_mm
    # centre of the kept (cropped) pixel block
    centre = pose.pixel00_mm + ((ou + (nu2 * factor - 1) / 2.0) * pu) * pose.u + ((ov + (nv2 * factor - 1) / 2.0) * pv) * pose.v
    return replace(pose, detector_centre_mm=centre, shape=(nu2, nv2), spacing_mm=(pu * factor, pv * factor)), img


@dataclass(frozen=True)
class Rigid2D3DSettings:
    levels: tuple[int, ...] = (4, 2, 1)  # detector binning per level (coarse -> fine)
    ct_halvings: tuple[int, ...] = (1, 0, 0)  # CT pyramid level used with each detector level
    max_iterations: int = 25
    fd_step_mm: float = 0.5
    fd_step_deg: float = 0.3
    tol_mm: float = 0.01
    check_consistency: bool = True
    perturb_mm: float = 2.0
    perturb_deg: float = 1.0
    consistency_mm: float = 0.7
    consistency_deg: float = 0.5
    min_ncc: float = 0.5
    max_translation_mm: float = 50.0
    max_rotation_deg: float = 10.0
    corr_px: float = 2.0  # pixel correlation length (uncertainty)
    calibration_mm: float = 4.0  # fitted on 10 phantom kV-pair cases (68 % inside 1 SD; docs/registration.md)
    calibration_deg: float = 6.5


class _Views:
    def __init__(self, ct: Volume, poses, images, centre, project: Projector):
        self.ct, self.poses, self.images, self.centre, self.project = ct, poses, images, centre, project
        self.var = [max(float(np.var(im)), 1e-12) for im in images]

    def drrs(self, p: np.ndarray) -> list[np.ndarray]:
        t = to_transform(p, self.centre)
        return [np.asarray(self.project(self.ct, transform_pose(pose, t)), np.float64) for pose in self.poses]

    def residual(self, p: np.ndarray, drrs=None):
        drrs = self.drrs(p) if drrs is None else drrs
        res, fits = [], []
        for d, im, var in zip(drrs, self.images, self.var):
            dv, iv = d.ravel(), im.ravel()
            vd = np.var(dv)
            a = np.cov(dv, iv, bias=True)[0, 1] / vd if vd > 0 else 0.0
            b = iv.mean() - a * dv.mean()
            res.append((a * dv + b - iv) / np.sqrt(var * iv.size))
            fits.append(a)
        return np.concatenate(res), fits, drrs

    def ncc(self, drrs) -> list[float]:
        return [float(np.corrcoef(d.ravel(), im.ravel())[0, 1]) if np.std(d) > 0 else 0.0 for d, im in zip(drrs, self.images)]


def _lm(views: _Views, p: np.ndarray, s: Rigid2D3DSettings):
    steps = np.array([s.fd_step_mm] * 3 + [np.deg2rad(s.fd_step_deg)] * 3)
    r, fits, drrs = views.residual(p)
    cost = float(r @ r)
    lam = 1e-3
    it = 0
    converged = False
    jac = None
    for it in range(1, s.max_iterations + 1):
        cols = []
        for k in range(6):
            dp = np.zeros(6)
            dp[k] = steps[k]
            rk, _, _ = views.residual(p + dp)
            cols.append((rk - r) / steps[k])
        jac = np.stack(cols, axis=1)
        h = jac.T @ jac
        g = jac.T @ r
        improved = False
        while lam < 1e6:
            delta = -np.linalg.solve(h + lam * np.diag(np.diag(h) + 1e-12), g)
            r2, fits2, drrs2 = views.residual(p + delta)
            c2 = float(r2 @ r2)
            if c2 < cost:
                p, r, cost, fits, drrs = p + delta, r2, c2, fits2, drrs2
                lam = max(lam / 4, 1e-7)
                improved = True
                break
            lam *= 8
        size = max(np.abs(delta[:3]).max(), np.abs(delta[3:]).max() * 100.0)
        if not improved or size < s.tol_mm:
            converged = True
            break
    return p, cost, drrs, jac, r, it, converged


def register_2d3d(
    planning: Volume,
    poses: Sequence,
    images: Sequence[np.ndarray],
    *,
    centre_mm,
    initial: RigidTransform | RegistrationResult | None = None,
    project: Projector | None = None,
    settings: Rigid2D3DSettings | None = None,
    **overrides,
) -> RegistrationResult:
    """6DOF from kV projections: ``images[i]`` ([nv, nu], line integrals) taken with ``poses[i]`` (LPS mm)."""
    t0 = time.perf_counter()
    s = replace(settings or Rigid2D3DSettings(), **overrides)
    if len(poses) != len(images) or len(poses) == 0:
        raise RegistrationError(f"need one image per pose, got {len(poses)} poses and {len(images)} images")
    project = project or default_projector
    centre = np.asarray(centre_mm, float).reshape(3)
    if isinstance(initial, RegistrationResult):
        initial = initial.transform
    p = from_transform(initial, centre) if initial is not None else np.zeros(6)
    details: dict = {"views": len(poses), "levels": []}

    def done(ok, reason, params, ncc=float("nan"), it=0, conv=False, sd_mm=(float("nan"),) * 3, sd_deg=(float("nan"),) * 3):
        return RegistrationResult(to_transform(params, centre), tuple(float(c) for c in centre), ok, "ncc2d", ncc, conv,
                                  reason, tuple(float(v) for v in sd_mm), tuple(float(v) for v in sd_deg), "rigid2d3d",
                                  it, time.perf_counter() - t0, details=details)

    for i, (pose, im) in enumerate(zip(poses, images)):
        im = np.asarray(im)
        if im.shape != (pose.shape[1], pose.shape[0]):
            raise RegistrationError(f"image {i} has shape {im.shape} but its pose expects {(pose.shape[1], pose.shape[0])} (nv, nu)")
        if not np.all(np.isfinite(im)):
            return done(False, f"kV image {i} contains NaN or infinite values", p)
        if np.ptp(im) <= 1e-9:
            return done(False, f"kV image {i} is constant: nothing to register", p)
    cts = [planning]
    for _ in range(max(s.ct_halvings)):
        cts.append(halve(cts[-1]))
    total_it = 0
    views = None
    for lev, (b, ch) in enumerate(zip(s.levels, s.ct_halvings)):
        binned = [bin_view(pose, im, b) for pose, im in zip(poses, images)]
        views = _Views(cts[ch], [v[0] for v in binned], [v[1] for v in binned], centre, project)
        if lev == 0:
            nc0 = views.ncc(views.drrs(p))
            if min(np.nan_to_num(nc0)) <= 0.05:
                details["initial_ncc"] = nc0
        p, cost, drrs, jac, r, it, conv = _lm(views, p, s)
        total_it += it
        details["levels"].append({"binning": b, "iterations": it, "cost": cost, "ncc": views.ncc(drrs)})
    assert views is not None
    ncc = views.ncc(drrs)
    # uncertainty: GN covariance of the normalised residual, inflated for correlated pixels
    dof = max(r.size - 6, 1)
    s2 = float(r @ r) / dof * r.size  # residuals were scaled by 1/sqrt(N var): undo N
    h = jac.T @ jac * r.size
    try:
        cov = s2 * np.linalg.inv(h) * max(1.0, s.corr_px**2)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        sd_mm, sd_deg = sd[:3] * s.calibration_mm, np.rad2deg(sd[3:]) * s.calibration_deg
    except np.linalg.LinAlgError:
        return done(False, "the projections do not constrain all six degrees of freedom", p, min(ncc), total_it, conv)
    kw = dict(ncc=min(ncc), it=total_it, conv=conv, sd_mm=sd_mm, sd_deg=sd_deg)
    details["ncc_per_view"] = ncc
    if min(ncc) < s.min_ncc:
        return done(False, f"the DRRs do not match the kV images (NCC {min(ncc):.2f} < {s.min_ncc}); wrong patient, "
                           f"wrong geometry or start too far off", p, **kw)
    if s.check_consistency:
        p2 = perturb(p, centre, s.perturb_mm * np.array([1, -1, 1.0]), s.perturb_deg * np.array([-1, 1, 1.0]))
        q, *_ = _lm(views, p2, s)
        dt = float(np.abs(q[:3] - p[:3]).max())
        dr = float(np.rad2deg(np.abs(q[3:] - p[3:]).max()))
        details["consistency"] = {"delta_mm": dt, "delta_deg": dr}
        if dt > s.consistency_mm or dr > s.consistency_deg:
            return done(False, f"inconsistent optimum: a second start converged {dt:.2f} mm / {dr:.2f} deg away", p, **kw)
    if np.abs(p[:3]).max() > s.max_translation_mm or np.rad2deg(np.abs(p[3:])).max() > s.max_rotation_deg:
        return done(False, "implausible result: beyond the limits of a setup error", p, **kw)
    if not conv:
        return done(False, f"the optimiser did not converge in {s.max_iterations} iterations", p, **kw)
    return done(True, None, p, **kw)


# --- fiducial markers ----------------------------------------------------------------------------

def detect_markers(image: np.ndarray, *, max_markers: int = 8, sigma_px: float = 6.0, k: float = 6.0) -> np.ndarray:
    """Sub-pixel (u, v) centres (N, 2) of small bright blobs (implanted markers) in a kV image.

    Background is removed with a wide Gaussian (``sigma_px``); blobs above
    ``k`` robust SDs are labelled and their intensity-weighted centroids kept,
    strongest first.
    """
    img = np.asarray(image, np.float64)
    top = img - ndimage.gaussian_filter(img, sigma_px)
    mad = np.median(np.abs(top - np.median(top))) * 1.4826 + 1e-12
    lab, n = ndimage.label(top > k * mad)
    if n == 0:
        return np.zeros((0, 2))
    idx = np.arange(1, n + 1)
    w = np.clip(top, 0, None)
    strength = ndimage.sum(w, lab, idx)
    cents = np.array(ndimage.center_of_mass(w, lab, idx))  # (row v, col u)
    order = np.argsort(strength)[::-1][:max_markers]
    return cents[order][:, ::-1]


def pixel_to_mm(pose, uv: np.ndarray) -> np.ndarray:
    """LPS points (N, 3) of detector pixel coordinates (N, 2) = (u column, v row)."""
    pu, pv = pose.spacing_mm
    uv = np.asarray(uv, float).reshape(-1, 2)
    return pose.pixel00_mm + uv[:, :1] * pu * pose.u + uv[:, 1:2] * pv * pose.v


def _closest(s1, d1, s2, d2):
    """Midpoint and distance of the closest approach of two rays (source, unit direction)."""
    w = s1 - s2
    a, b, c, d, e = d1 @ d1, d1 @ d2, d2 @ d2, d1 @ w, d2 @ w
    den = a * c - b * b
    t1 = (b * e - c * d) / den if abs(den) > 1e-12 else 0.0
    t2 = (a * e - b * d) / den if abs(den) > 1e-12 else 0.0
    p1, p2 = s1 + t1 * d1, s2 + t2 * d2
    return (p1 + p2) / 2, float(np.linalg.norm(p1 - p2))


def triangulate(pose_a, uv_a: np.ndarray, pose_b, uv_b: np.ndarray, max_gap_mm: float = 3.0):
    """3D marker positions (N, 3) from two views, pairing detections by the smallest ray-ray gap."""
    pa, pb = pixel_to_mm(pose_a, uv_a), pixel_to_mm(pose_b, uv_b)
    da = (pa - pose_a.source_mm) / np.linalg.norm(pa - pose_a.source_mm, axis=1, keepdims=True)
    db = (pb - pose_b.source_mm) / np.linalg.norm(pb - pose_b.source_mm, axis=1, keepdims=True)
    gap = np.zeros((len(pa), len(pb)))
    mids = np.zeros((len(pa), len(pb), 3))
    for i in range(len(pa)):
        for j in range(len(pb)):
            mids[i, j], gap[i, j] = _closest(pose_a.source_mm, da[i], pose_b.source_mm, db[j])
    ri, ci = linear_sum_assignment(gap)
    keep = gap[ri, ci] <= max_gap_mm
    return mids[ri[keep], ci[keep]], gap[ri[keep], ci[keep]]


def kabsch(p: np.ndarray, q: np.ndarray) -> tuple[RigidTransform, float]:
    """Least-squares rigid transform with q ~ T(p) for paired points (N, 3); returns (T, RMS residual mm)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    cp, cq = p.mean(0), q.mean(0)
    u, _, vt = np.linalg.svd((p - cp).T @ (q - cq))
    dfix = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
    r = vt.T @ dfix @ u.T
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = cq - r @ cp
    t = RigidTransform(m)
    rms = float(np.sqrt(np.mean(np.sum((t.apply(p) - q) ** 2, axis=1))))
    return t, rms


def register_fiducials(
    planned_mm: np.ndarray,
    pose_a,
    image_a: np.ndarray,
    pose_b,
    image_b: np.ndarray,
    *,
    centre_mm,
    max_residual_mm: float = 1.5,
    detect_kw: dict | None = None,
) -> RegistrationResult:
    """Marker match: detect, triangulate, pair with the planned markers (all orderings), fit rigidly.

    Fails (with the reason) when fewer than 3 markers are found in 3D or the
    residual exceeds ``max_residual_mm`` (marker migration, misdetection).
    """
    t0 = time.perf_counter()
    planned = np.asarray(planned_mm, float).reshape(-1, 3)
    centre = np.asarray(centre_mm, float).reshape(3)
    dk = detect_kw or {}
    ua = detect_markers(image_a, max_markers=len(planned) + 2, **dk)
    ub = detect_markers(image_b, max_markers=len(planned) + 2, **dk)
    pts, gaps = triangulate(pose_a, ua, pose_b, ub) if len(ua) and len(ub) else (np.zeros((0, 3)), np.zeros(0))
    details = {"detected_a": len(ua), "detected_b": len(ub), "triangulated": len(pts),
               "ray_gaps_mm": [float(g) for g in gaps], "markers_mm": pts.tolist()}

    def done(ok, reason, t=None, rms=float("nan")):
        return RegistrationResult(t or RigidTransform.identity(), tuple(float(c) for c in centre), ok, "fiducial_rms_mm",
                                  rms, ok, reason, (rms / np.sqrt(3),) * 3 if np.isfinite(rms) else (float("nan"),) * 3,
                                  (float("nan"),) * 3, "fiducial", 1, time.perf_counter() - t0, details=details)

    if len(planned) < 3:
        raise RegistrationError("fiducial matching needs at least 3 planned marker positions")
    n = min(len(pts), len(planned))
    if n < 3:
        return done(False, f"only {len(pts)} markers found in both images (need 3)")
    best = (np.inf, None)
    for sub in itertools.combinations(range(len(pts)), n):
        for perm in itertools.permutations(range(len(planned)), n):
            t, rms = kabsch(planned[list(perm)], pts[list(sub)])
            if rms < best[0]:
                best = (rms, t)
    rms, t = best
    if rms > max_residual_mm:
        return done(False, f"marker residual {rms:.2f} mm exceeds {max_residual_mm:g} mm: marker migration or "
                           f"misdetection", t, rms)
    return done(True, None, t, rms)
