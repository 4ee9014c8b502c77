"""The patient on the day: setup error + breathing + anatomical change, with the exact deformation.

Model. A daily-image point ``q`` (LPS mm, room frame aligned with the plan)
shows the planning-CT point ``p = psi(S^-1 q)`` where ``S`` is the fraction's
setup error and ``psi(r) = r + sum_k w_k(r) (A_k r + t_k)`` is a smooth
deformation built from a few weighted affine terms:

* lung: the lung/abdomen region moves with the breathing displacement ``m(t)``
  (weight from the blurred lung mask, decaying outside the lung and from the
  base (1) to the apex (0.15), held at 1 around the tumour so the GTV moves
  rigidly by exactly ``m(t)``), and the
  GTV shrinks about its centre by the fraction's tumour scale;
* pelvis: the bladder scales about its base anchor (filling), the rectum
  scales in-plane about its axis (distension), and a zone around the
  prostate and seminal vesicles moves rigidly by the prostate displacement
  (the other terms are switched off inside it).

``m(t) = target_shift + breathing(t)``. Everything here is a pull-back
(daily -> planning), which is what resampling needs; `map_planning_to_daily`
inverts it for landmarks by fixed-point iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter, map_coordinates

from igrt.geometry import Volume, resample
from igrt.phantom import tissues as T
from igrt.phantom._kernels import pullback_field, warp_linear, warp_nearest
from igrt.phantom.breathing import breathing_displacement_mm, displacement_at_phase_mm
from igrt.phantom.course import FractionTruth
from igrt.phantom.errors import PhantomError
from igrt.phantom.shapes import Grid, smoothstep, soft_ellipsoid_weight
from igrt.phantom.thorax import LUNG_APEX_Z

WEIGHT_SPACING_MM = 4.0
LUNG_BLUR_MM = 10.0
TUMOUR_ZONE_MM = 8.0  # rigid zone beyond the GTV
ZONE_FALLOFF_MM = 20.0
BLADDER_FALLOFF_MM = 40.0
RECTUM_FALLOFF_MM = 25.0
APEX_WEIGHT = 0.15  # relative motion of the lung apex
FULL_MOTION_Z = -40.0  # mm; lung below this moves with the full breathing displacement
_MOVING_LUNG = (T.LUNG_R, T.LUNG_L, T.GTV_LUNG, T.HEART, T.LIVER)
_RIGID_BONE = (T.VERTEBRA, T.DISC, T.RIBS, T.STERNUM, T.CANAL, T.CORD)
_RIGID_PELVIS = (T.FEMUR_L, T.FEMUR_R, T.FEMUR_SHAFT, T.PELVIC_BONE, T.SACRUM)
BONE_GUARD_MM = 4.0  # bones and this much around them stay rigid under organ motion


@dataclass(frozen=True)
class DeformationModel:
    """Pull-back deformation ``v(r) = sum_k w_k(r) (A_k r + t_k)`` with weights on a coarse grid."""

    weight_grid: Volume  # geometry of the weights (its array is unused)
    weights: np.ndarray  # (K, nz, ny, nx) float32
    a: np.ndarray  # (K, 3, 3)
    t: np.ndarray  # (K, 3)

    def displacement(self, points_mm) -> np.ndarray:
        """v(r) at LPS points (N, 3), mm (numpy reference of the kernel)."""
        r = np.atleast_2d(np.asarray(points_mm, dtype=float))
        v = np.zeros_like(r)
        if len(self.weights) == 0:
            return v
        ijk = self.weight_grid.to_index(r)  # (x, y, z) indices
        coords = ijk[:, ::-1].T
        for w, a, t in zip(self.weights, self.a, self.t):
            wk = map_coordinates(w, coords, order=1, mode="constant", cval=0.0)
            v += wk[:, None] * (r @ a.T + t)
        return v


@dataclass(frozen=True)
class DisplacementField:
    """True deformation on a daily grid: ``vectors_mm[c, z, y, x]`` (c = LPS x, y, z).

    A daily-image point ``q`` shows the planning point ``q + vectors_mm[:, q]``
    (daily -> planning, the direction a deformable registration of the
    planning CT onto the daily image estimates). Includes the setup error.
    """

    vectors_mm: np.ndarray
    grid: Volume

    def components(self) -> tuple[Volume, Volume, Volume]:
        """The x, y, z components as Volumes (mm)."""
        return tuple(self.grid.with_array(self.vectors_mm[c]) for c in range(3))  # type: ignore[return-value]


def _weight_grid(patient) -> Volume:
    key = "weight_grid"
    if key not in patient.cache:
        lo, hi = patient.ct.bounds()
        sp = max(WEIGHT_SPACING_MM, *patient.ct.spacing)
        lo, hi = lo - 40.0, hi + 40.0
        n = np.ceil((hi - lo) / sp).astype(int) + 1
        patient.cache[key] = Volume(np.zeros(n[::-1], np.uint8), tuple(lo), (sp, sp, sp))
    return patient.cache[key]


def _lung_static_weight(patient) -> np.ndarray:
    key = "lung_motion_weight"
    if key not in patient.cache:
        wg = _weight_grid(patient)
        lab = resample(patient.labels, wg, None, order=0, fill=0).array
        sp = wg.spacing[0]
        moving = gaussian_filter(np.isin(lab, _MOVING_LUNG).astype(np.float32), LUNG_BLUR_MM / sp)
        # the apex hardly moves, the base moves most (the diaphragm drives breathing)
        z = Grid.of(wg).z[:, None, None].astype(float)
        profile = APEX_WEIGHT + (1.0 - APEX_WEIGHT) * smoothstep((LUNG_APEX_Z - z) / (LUNG_APEX_Z - FULL_MOTION_Z))
        patient.cache[key] = np.clip(moving * (1.0 - _bone_rigidity(patient)) * profile, 0.0, 1.0).astype(np.float32)
    return patient.cache[key]


def _bone_rigidity(patient) -> np.ndarray:
    """1 in and just around the bones, falling to 0 within a few mm, on the weight grid.

    Breathing and organ filling deform soft tissue, not bone: the setup error
    of the bony anatomy is the truth a bone match is scored against, so organ
    motion must leave every bone voxel (edges included) where the setup put it.
    """
    key = "bone_rigidity"
    if key not in patient.cache:
        wg = _weight_grid(patient)
        lab = resample(patient.labels, wg, None, order=0, fill=0).array
        sp = wg.spacing[0]
        bone = np.isin(lab, _RIGID_BONE if patient.site == "lung" else _RIGID_PELVIS)
        guard = distance_transform_edt(~bone, sampling=sp) <= BONE_GUARD_MM
        patient.cache[key] = np.clip(gaussian_filter(guard.astype(np.float32), 0.5) * 1.5, 0.0, 1.0).astype(np.float32)
    return patient.cache[key]


def motion_mm(fraction: FractionTruth, t_s: float | None = None, phase: float | None = None) -> np.ndarray:
    """m = target shift + breathing at time ``t_s`` or phase ``phase`` (end-exhale when both are None)."""
    if t_s is not None and phase is not None:
        raise PhantomError("give either t_s (seconds) or phase (0..1), not both")
    m = np.asarray(fraction.target_shift_mm, float).copy()
    if t_s is not None:
        m += breathing_displacement_mm(fraction.breathing, [float(t_s)])[0]
    elif phase is not None:
        m += displacement_at_phase_mm(fraction.breathing, [float(phase)])[0]
    return m


def deformation_model(patient, fraction: FractionTruth, t_s: float | None = None, phase: float | None = None) -> DeformationModel:
    """The pull-back deformation of ``patient`` for this fraction at this time/phase."""
    if fraction.site != patient.site:
        raise PhantomError(f"fraction is for site {fraction.site!r} but the patient is {patient.site!r}")
    wg = _weight_grid(patient)
    g = Grid.of(wg)
    x, y, z = g.x[None, None, :].astype(float), g.y[None, :, None].astype(float), g.z[:, None, None].astype(float)
    m = motion_mm(fraction, t_s, phase)
    c = np.asarray(fraction.target_centre_planning_mm, float)
    facts = patient.anatomy
    weights: list[np.ndarray] = []
    amats: list[np.ndarray] = []
    tvecs: list[np.ndarray] = []

    def add(w, a, t):
        weights.append(np.broadcast_to(w, g.shape).astype(np.float32))
        amats.append(np.asarray(a, float))
        tvecs.append(np.asarray(t, float))

    if patient.site == "lung":
        semi = np.asarray(facts["target_semi_axes_mm"], float)
        s = fraction.tumour_scale
        if np.any(m != 0):
            zone = soft_ellipsoid_weight(x, y, z, c + m, semi + TUMOUR_ZONE_MM, ZONE_FALLOFF_MM)
            w = 1.0 - (1.0 - _lung_static_weight(patient)) * (1.0 - zone)
            add(w, np.zeros((3, 3)), -m)
        if s != 1.0:
            alpha = 1.0 / s - 1.0
            w = soft_ellipsoid_weight(x, y, z, c + m, semi * max(s, 1.0) + 3.0, 15.0)
            add(w, alpha * np.eye(3), -alpha * (c + m))
    else:
        st = fraction.pelvis
        rigid = _bone_rigidity(patient)
        zone = soft_ellipsoid_weight(x, y, z, np.asarray(facts["prostate_zone_centre_mm"]) + m,
                                     facts["prostate_zone_semi_axes_mm"], ZONE_FALLOFF_MM)
        if st is not None and st.bladder_scale != 1.0:
            sb = st.bladder_scale
            b = np.asarray(facts["bladder_anchor_mm"], float)
            bc = b + sb * (np.asarray(facts["bladder_centre_mm"]) - b)
            w = soft_ellipsoid_weight(x, y, z, bc, sb * np.asarray(facts["bladder_semi_axes_mm"]), BLADDER_FALLOFF_MM)
            alpha = 1.0 / sb - 1.0
            add(w * (1.0 - zone) * (1.0 - rigid), alpha * np.eye(3), -alpha * b)
        if st is not None and st.rectum_scale != 1.0:
            sr = st.rectum_scale
            ax, ay = facts["rectum_axis_xy_mm"]
            z0, z1 = facts["rectum_z_mm"]
            dz = np.clip(z, z0, z1) - z
            d = np.sqrt((x - ax) ** 2 + (y - ay) ** 2 + dz * dz)
            w = 1.0 - smoothstep((d - (sr * facts["rectum_radius_mm"] + 2.0)) / RECTUM_FALLOFF_MM)
            alpha = 1.0 / sr - 1.0
            a = alpha * np.diag([1.0, 1.0, 0.0])
            add(w * (1.0 - zone) * (1.0 - rigid), a, -a @ np.array([ax, ay, 0.0]))
        if np.any(m != 0):
            add(zone, np.zeros((3, 3)), -m)
    if weights:
        wts = np.ascontiguousarray(np.stack(weights))
    else:
        wts = np.zeros((0, 1, 1, 1), np.float32)
    return DeformationModel(wg, wts, np.asarray(amats, float).reshape(-1, 3, 3), np.asarray(tvecs, float).reshape(-1, 3))


def _kernel_args(patient, fraction, t_s, phase, grid: Volume, source: Volume):
    model = deformation_model(patient, fraction, t_s, phase)
    m1 = np.ascontiguousarray((fraction.setup_error.inverse().matrix @ grid.index_to_world)[:3])
    wm = np.ascontiguousarray(model.weight_grid.world_to_index[:3])
    sm = np.ascontiguousarray(source.world_to_index[:3])
    return sm, m1, wm, model.weights, weight_boxes(model.weights), np.ascontiguousarray(model.a), np.ascontiguousarray(model.t)


def weight_boxes(weights: np.ndarray) -> np.ndarray:
    """(K, 6) index boxes (x0, x1, y0, y1, z0, z1) of each term's non-zero weights (kernels skip the rest)."""
    boxes = np.empty((len(weights), 6), np.float64)
    for t, w in enumerate(weights):
        nz = w != 0
        if not nz.any():
            boxes[t] = (1.0, -1.0, 1.0, -1.0, 1.0, -1.0)  # empty
            continue
        for a, col in ((2, 0), (1, 2), (0, 4)):  # array axis of x, y, z
            occ = np.flatnonzero(nz.any(axis=tuple(b for b in range(3) if b != a)))
            boxes[t, col], boxes[t, col + 1] = occ[0] - 1.0, occ[-1] + 1.0  # +-1 cell: trilinear support
    return boxes


def daily_anatomy(
    patient,
    fraction: FractionTruth,
    t_s: float | None = None,
    phase: float | None = None,
    grid: Volume | None = None,
    noise_hu: float = 0.0,
    seed: int = 0,
) -> Volume:
    """The patient's CT (HU, float32) on this fraction's day at time ``t_s`` (s) or breathing ``phase``.

    Sampled on ``grid`` (default: the planning CT grid); outside the planning
    CT the value is -1000 HU (air). ``noise_hu`` adds fresh white noise.
    With zero setup error, no motion and no anatomy change it equals the
    planning CT.
    """
    grid = patient.ct if grid is None else grid
    src = np.ascontiguousarray(patient.ct.array, dtype=np.float32)
    args = _kernel_args(patient, fraction, t_s, phase, grid, patient.ct)
    out = np.empty(grid.shape, np.float32)
    warp_linear(src, *args, -1000.0, out)
    if noise_hu > 0:
        out += np.random.default_rng([int(seed), 5]).standard_normal(out.shape, dtype=np.float32) * np.float32(noise_hu)
    return Volume(out, grid.origin, grid.spacing, grid.direction)


def daily_labels(patient, fraction: FractionTruth, t_s=None, phase=None, grid: Volume | None = None) -> Volume:
    """Ground-truth label map (uint8, names in ``patient.label_names``) on the day (nearest neighbour)."""
    grid = patient.ct if grid is None else grid
    args = _kernel_args(patient, fraction, t_s, phase, grid, patient.labels)
    out = np.empty(grid.shape, np.uint8)
    warp_nearest(np.ascontiguousarray(patient.labels.array), *args, np.uint8(0), out)
    return Volume(out, grid.origin, grid.spacing, grid.direction)


def daily_structure_mask(patient, fraction: FractionTruth, name: str, t_s=None, phase=None, grid: Volume | None = None,
                         fractional: bool = False) -> Volume:
    """A planning structure (GTV, CTV, PTV, organs) carried onto the day.

    Boolean Volume by nearest neighbour (exact to half a voxel), or with
    ``fractional=True`` a float32 partial-volume mask (trilinear), whose sum
    measures sub-voxel changes such as tumour shrinkage.
    """
    grid = patient.ct if grid is None else grid
    mask = patient.mask(name)
    args = _kernel_args(patient, fraction, t_s, phase, grid, mask)
    if fractional:
        out_f = np.empty(grid.shape, np.float32)
        warp_linear(np.ascontiguousarray(mask.array, dtype=np.float32), *args, 0.0, out_f)
        return Volume(out_f, grid.origin, grid.spacing, grid.direction)
    out = np.empty(grid.shape, np.uint8)
    warp_nearest(np.ascontiguousarray(mask.array, dtype=np.uint8), *args, np.uint8(0), out)
    return Volume(out.astype(bool), grid.origin, grid.spacing, grid.direction)


def daily_displacement(patient, fraction: FractionTruth, t_s=None, phase=None, grid: Volume | None = None) -> DisplacementField:
    """True daily -> planning displacement (mm) on ``grid`` (default: planning CT grid), setup error included."""
    grid = patient.ct if grid is None else grid
    _, m1, wm, wts, boxes, a, t = _kernel_args(patient, fraction, t_s, phase, grid, patient.ct)
    out = np.empty((3,) + grid.shape, np.float32)
    pullback_field(np.ascontiguousarray(grid.index_to_world[:3]), m1, wm, wts, boxes, a, t, out)
    return DisplacementField(out, Volume(np.zeros(grid.shape, np.uint8), grid.origin, grid.spacing, grid.direction))


def map_daily_to_planning(patient, fraction: FractionTruth, points_mm, t_s=None, phase=None) -> np.ndarray:
    """Planning-CT points (N, 3) shown at daily-image points ``points_mm`` (LPS mm)."""
    model = deformation_model(patient, fraction, t_s, phase)
    r = fraction.setup_error.inverse().apply(np.atleast_2d(np.asarray(points_mm, float)))
    return r + model.displacement(r)


def map_planning_to_daily(patient, fraction: FractionTruth, points_mm, t_s=None, phase=None,
                          tol_mm: float = 1e-4, max_iter: int = 200) -> np.ndarray:
    """Where planning-CT points (N, 3) are in the daily image: inverts the pull-back by fixed-point iteration."""
    model = deformation_model(patient, fraction, t_s, phase)
    p = np.atleast_2d(np.asarray(points_mm, float))
    r = p.copy()
    for k in range(max_iter):
        r_new = p - model.displacement(r)
        if np.max(np.abs(r_new - r)) < tol_mm:
            r = r_new
            break
        # plain fixed-point steps oscillate where the tissue is compressed
        # (displacement gradient below -1, e.g. at sliding lung boundaries);
        # half steps converge there
        r = r_new if k < max_iter // 2 else 0.5 * (r + r_new)
    else:
        raise PhantomError("the deformation could not be inverted at these points (did not converge)")
    return fraction.setup_error.apply(r)


def target_position_mm(fraction: FractionTruth, t_s) -> np.ndarray:
    """True target centre (N, 3) in the daily/room frame (LPS mm) at times ``t_s``: setup error + shift + breathing."""
    t = np.atleast_1d(np.asarray(t_s, dtype=float))
    c = np.asarray(fraction.target_centre_planning_mm, float)
    pts = c[None, :] + np.asarray(fraction.target_shift_mm, float)[None, :] + breathing_displacement_mm(fraction.breathing, t)
    return fraction.setup_error.apply(pts)


def landmarks_mm(patient, n: int = 50, seed: int = 0, structures: tuple[str, ...] = ("BODY",),
                 min_gradient_hu_per_mm: float = 0.0) -> np.ndarray:
    """``n`` seeded planning-CT landmark points (N, 3) in LPS mm inside the union of ``structures``.

    With ``min_gradient_hu_per_mm`` > 0 only points on image structure (edges,
    texture) are drawn, as landmark sets for deformable registration are.
    Score a registration by mapping them with `map_planning_to_daily`.
    """
    mask = np.zeros(patient.ct.shape, dtype=bool)
    for name in structures:
        mask |= patient.mask(name).array
    if min_gradient_hu_per_mm > 0:
        g = np.gradient(patient.ct.array, *patient.ct.spacing[::-1])
        mask &= np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2) >= min_gradient_hu_per_mm
    idx = np.flatnonzero(mask)
    if idx.size < n:
        raise PhantomError(f"only {idx.size} candidate voxels for {n} landmarks in {', '.join(structures)}")
    pick = np.random.default_rng([int(seed), 13]).choice(idx, size=n, replace=False)
    k, j, i = np.unravel_index(np.sort(pick), patient.ct.shape)
    return patient.ct.to_world(np.stack([i, j, k], axis=1).astype(float))
