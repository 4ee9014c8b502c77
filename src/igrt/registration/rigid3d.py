"""Rigid 3D/3D (6DOF) registration of a daily image to the planning CT.

The planning CT is the fixed image (sample points live on it); the daily
image (CBCT, CT, MR-like) moves. The result maps planning points (LPS mm) to
daily points and is reported about ``centre_mm`` (the plan isocentre): a
patient whose anatomy is displaced by a rigid setup error T gives back T.

Pipeline: image pyramids (numba binomial smoothing + decimation), jittered
sample grids in the ROI per level, a metric with analytic gradient evaluated in
one numba pass, Levenberg-Marquardt (msd, ncc) or L-BFGS (mi), then quality
checks (overlap, similarity, conditioning, a restart from a perturbed start,
plausibility) and a calibrated per-axis uncertainty.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from igrt.geometry import RigidTransform, Volume
from igrt.registration import quality
from igrt.registration._kernels import GN_SJJ
from igrt.registration.errors import RegistrationError
from igrt.registration.metrics import METRICS, Evaluator
from igrt.registration.optimise import OptimiseResult, lbfgs, levenberg_marquardt
from igrt.registration.params import from_transform, perturb, to_transform
from igrt.registration.pyramid import build_pyramid
from igrt.registration.result import RegistrationResult
from igrt.registration.roi import MODES, Roi, weight_map
from igrt.registration.sampling import draw_samples
from igrt.registration.shading import remove_shading


@dataclass(frozen=True)
class RigidSettings:
    """Knobs of `register_rigid` (defaults suit CT/CBCT at 1-4 mm voxels)."""

    metric: str = "ncc"  # ncc | msd | mi
    levels: int = 3
    samples_coarse: int = 15000  # sample points on each coarser level
    samples_finest: int = 40000  # sample points on the finest level
    max_iterations: int = 40
    mi_bins: int = 32
    check_consistency: bool = True
    perturb_mm: float = 3.0  # size of the second start, each axis
    perturb_deg: float = 1.5
    consistency_mm: float = 0.5  # the two starts must agree to this (or 3 SD)
    consistency_deg: float = 0.3
    max_translation_mm: float = 50.0  # plausibility limits of a setup error
    max_rotation_deg: float = 10.0
    min_overlap: float = 0.5  # fraction of ROI samples that must fall inside the daily image
    min_samples: int = 200
    min_ncc: float = 0.2  # for ncc / msd: below this the images do not match
    corr_voxels: float = 2.0  # image correlation length in finest voxels (uncertainty)
    global_start: bool = True  # ROI / bone / soft matches start from a coarse whole-image match
    max_refine_mm: float = 15.0  # ... and may not move further than this from it (else: ambiguous)
    max_refine_deg: float = 5.0
    skip_finest: int = 0  # stop this many levels before full resolution (used by the global start)
    # > 0: match the images minus their Gaussian low-pass (CBCT cupping, scatter shading); None: 20 mm for
    # ncc/msd, off for mi, whose histogram bins need the raw tissue classes
    shading_sigma_mm: float | None = None
    seed: int = 0


def _initial_params(initial, planning: Volume, daily: Volume, centre: np.ndarray) -> np.ndarray:
    if initial is None or (isinstance(initial, str) and initial == "identity"):
        return np.zeros(6)
    if isinstance(initial, str) and initial == "centres":
        return np.concatenate([daily.centre - planning.centre, np.zeros(3)])
    if isinstance(initial, RegistrationResult):
        return from_transform(initial.transform, centre)
    if isinstance(initial, RigidTransform):
        return from_transform(initial, centre)
    raise RegistrationError(
        f"unknown initialisation {initial!r}; use 'identity', 'centres', a RigidTransform or a RegistrationResult"
    )


def register_rigid(
    planning: Volume,
    daily: Volume,
    *,
    centre_mm=None,
    roi: Roi | None = None,
    mode: str = "all",
    initial=None,
    settings: RigidSettings | None = None,
    **overrides,
) -> RegistrationResult:
    """Register ``daily`` to ``planning``; returns the planning -> daily transform with a verdict.

    ``centre_mm``: reporting and rotation centre (default: ROI centre, else the
    planning grid centre). ``roi``: clip box/mask on the planning image.
    ``mode``: ``all``, ``bone`` or ``soft`` sample weights. ``initial``:
    ``None``/``'identity'``, ``'centres'`` (align grid centres), a RigidTransform
    or a previous RegistrationResult. Keyword ``overrides`` replace fields of
    `RigidSettings` (e.g. ``metric='mi'``). Never raises on bad image content:
    those come back as ``success=False`` with the reason.
    """
    t_start = time.perf_counter()
    s = replace(settings or RigidSettings(), **overrides)
    if s.metric not in METRICS:
        raise RegistrationError(f"unknown metric {s.metric!r}; use one of {', '.join(METRICS)}")
    if mode not in MODES:
        raise RegistrationError(f"unknown match mode {mode!r}; use one of {', '.join(MODES)}")
    if centre_mm is None:
        centre_mm = roi.centre_mm if roi is not None and not roi.is_empty() else planning.centre
    centre = np.asarray(centre_mm, dtype=float).reshape(3)
    p = _initial_params(initial, planning, daily, centre)
    details: dict = {"settings": asdict(s), "levels": []}

    def done(success: bool, reason: str | None, params: np.ndarray, *, metric_value=float("nan"),
             converged=False, iterations=0, sd_mm=(float("nan"),) * 3, sd_deg=(float("nan"),) * 3):
        details["elapsed_s"] = time.perf_counter() - t_start
        return RegistrationResult(
            transform=to_transform(params, centre),
            centre_mm=tuple(float(v) for v in centre),
            success=success,
            metric_name=s.metric,
            metric_value=float(metric_value),
            converged=converged,
            failure_reason=reason,
            uncertainty_mm=tuple(float(v) for v in sd_mm),
            uncertainty_deg=tuple(float(v) for v in sd_deg),
            mode=f"rigid3d:{mode}",
            iterations=iterations,
            elapsed_s=time.perf_counter() - t_start,
            details=details,
        )

    # --- input sanity: reasons, not exceptions -------------------------------
    for name, vol in (("planning", planning), ("daily", daily)):
        a = np.asarray(vol.array)
        if a.size < 8 or min(a.shape) < 2:
            return done(False, f"the {name} image is too small ({a.shape}) to register", p)
        sub = a[:: max(1, a.shape[0] // 32)]
        if not np.all(np.isfinite(sub)) or not np.all(np.isfinite(a)):
            return done(False, f"the {name} image contains NaN or infinite values", p)
        if float(sub.max()) - float(sub.min()) <= 1e-6 * (1.0 + abs(float(sub.max()))):
            return done(False, f"the {name} image is constant: nothing to register", p)
    if roi is not None and roi.is_empty():
        return done(False, f"the region of interest {roi.label!r} is empty", p)

    # bone/soft weights come from the planning HU; the metric may see shading-free copies
    wmap = weight_map(planning, mode)
    shading = s.shading_sigma_mm if s.shading_sigma_mm is not None else (0.0 if s.metric == "mi" else 20.0)
    if shading > 0:
        planning = remove_shading(planning, shading)
        daily = remove_shading(daily, shading)
    details["shading_sigma_mm"] = shading
    s = replace(s, shading_sigma_mm=0.0)
    first_level = 0
    p_global = None
    if s.global_start and (roi is not None or mode != "all") and s.levels > 1:
        # A clip box or a bone-only match sees little anatomy and repetitive structure (ribs,
        # vertebrae): start it from a coarse match of the whole images so it cannot lock onto
        # the neighbouring rib or vertebra.
        pre = register_rigid(planning, daily, centre_mm=centre, initial=initial, settings=s, metric=s.metric,
                             check_consistency=False, global_start=False, skip_finest=1)
        details["global_start"] = {"success": pre.success, "reason": pre.failure_reason,
                                   "translation_mm": [float(v) for v in pre.translation_mm],
                                   "rotation_deg": list(pre.rotation_deg)}
        if pre.success:
            p = from_transform(pre.transform, centre)
            p_global = p.copy()
            first_level = 1  # already aligned at the coarsest level: refine from the next one

    rng = np.random.default_rng(s.seed)
    fixed_pyr = build_pyramid(planning, s.levels)
    moving_pyr = build_pyramid(daily, s.levels)
    total_it = 0
    converged = False
    ev = None
    samples = None
    for lev in range(first_level, s.levels - s.skip_finest):
        finest = lev == s.levels - 1
        n_target = s.samples_finest if finest else s.samples_coarse
        samples = draw_samples(fixed_pyr[lev], roi, wmap, n_target, rng)
        if samples.n < s.min_samples:  # small ROI: sample the coarse level more densely than its voxels
            sp = float(np.prod(fixed_pyr[lev].spacing) ** (1 / 3))
            samples = draw_samples(fixed_pyr[lev], roi, wmap, n_target, rng, min_spacing_mm=sp / 3)
        if samples.n < s.min_samples and not finest:
            details["levels"].append({"skipped": "too few sample points for this level"})
            continue
        if samples.n < s.min_samples:
            what = "region of interest" if roi is not None else "image"
            extra = f" with match mode '{mode}'" if mode != "all" else ""
            return done(False, f"the {what}{extra} leaves only {samples.n} sample points on the planning image "
                               f"(need {s.min_samples}): ROI empty or outside the image", p)
        if float(np.std(samples.values)) <= 1e-6 * (1.0 + float(np.abs(samples.values).max())):
            return done(False, "the planning image is constant inside the region of interest", p)
        ev = Evaluator(s.metric, samples, moving_pyr[lev], centre, s.mi_bins)
        if "initial_overlap" not in details:
            e0 = ev.evaluate(p)
            details["initial_overlap"] = e0.overlap
            if e0.overlap < s.min_overlap:
                return done(False, f"the images do not overlap: only {100 * e0.overlap:.0f} % of the region of "
                                   f"interest falls inside the daily image at the start (need "
                                   f"{100 * s.min_overlap:.0f} %); check the frames of reference or give a start", p)
        radius = float(np.sqrt(np.mean(np.sum((samples.points - centre) ** 2, axis=1)))) or 1.0
        level_spacing = float(np.prod(fixed_pyr[lev].spacing) ** (1 / 3))
        opt = _optimise(ev, p, s, radius, level_spacing, refine=p_global is not None)
        p = opt.params
        total_it += opt.iterations
        converged = opt.converged
        details["levels"].append({"spacing_mm": level_spacing, "samples": samples.n, "iterations": opt.iterations,
                                  "evaluations": opt.evaluations, "cost": opt.evaluation.cost,
                                  "overlap": opt.evaluation.overlap, "converged": opt.converged})
        if opt.evaluation.overlap < s.min_overlap or not np.isfinite(opt.evaluation.cost):
            return done(False, f"the optimiser lost the overlap between the images (at {level_spacing:.1f} mm: "
                               f"{100 * opt.evaluation.overlap:.0f} % of the ROI inside the daily image); "
                               f"the start is probably too far off", p, iterations=total_it)

    assert ev is not None and samples is not None
    if s.skip_finest:  # a coarse stage only: no quality verdict of its own
        return done(converged, None if converged else "did not converge", p, converged=converged,
                    iterations=total_it)
    # --- quality -------------------------------------------------------------
    gn_ev = Evaluator("ncc", samples, moving_pyr[-1], centre)
    acc = gn_ev._gn(p)
    final = gn_ev.from_gn(acc, "ncc")
    metric_eval = ev.evaluate(p)
    metric_value = {"ncc": final.ncc, "msd": metric_eval.cost, "mi": -metric_eval.cost}[s.metric]
    fin_sp = np.prod(planning.spacing) ** (1 / 3), np.prod(daily.spacing) ** (1 / 3)
    jtj = acc[GN_SJJ: GN_SJJ + 36].reshape(6, 6)
    jtj = np.triu(jtj) + np.triu(jtj, 1).T
    sd_mm, sd_deg, well_posed = quality.gn_uncertainty(
        jtj, final.residual_var, final.slope, samples.spacing_mm, s.corr_voxels * float(max(fin_sp)))
    details.update({"final_overlap": final.overlap, "ncc": final.ncc, "samples_final": samples.n})
    kw = dict(metric_value=metric_value, converged=converged, iterations=total_it, sd_mm=sd_mm, sd_deg=sd_deg)

    if final.overlap < s.min_overlap:
        return done(False, f"only {100 * final.overlap:.0f} % of the region of interest overlaps the daily "
                           f"image at the result", p, **kw)
    if not well_posed:
        return done(False, "the images do not constrain all six degrees of freedom (flat or featureless "
                           "region of interest)", p, **kw)
    if s.metric in ("ncc", "msd") and final.ncc < s.min_ncc:
        return done(False, f"similarity too low at the result (NCC {final.ncc:.2f} < {s.min_ncc}): the images "
                           f"do not match; wrong image, wrong patient or start too far off", p, **kw)
    if s.check_consistency:
        sign = np.array([1.0, -1.0, 1.0])
        p2 = perturb(p, centre, s.perturb_mm * sign, -s.perturb_deg * sign)
        level_spacing = float(np.prod(fixed_pyr[-1].spacing) ** (1 / 3))
        # the second start runs on a fresh, smaller sample set: cheaper, and a sampling-noise
        # optimum would not be reproduced by it
        samples2 = draw_samples(fixed_pyr[-1], roi, wmap, s.samples_coarse, rng)
        if samples2.n < s.min_samples:
            samples2 = samples
        ev2 = Evaluator(s.metric, samples2, moving_pyr[-1], centre, s.mi_bins)
        radius = float(np.sqrt(np.mean(np.sum((samples2.points - centre) ** 2, axis=1)))) or 1.0
        opt2 = _optimise(ev2, p2, s, radius, level_spacing)
        dt, dr = quality.transform_difference(p, opt2.params)
        details["consistency"] = {"delta_mm": dt, "delta_deg": dr}
        tol_mm = max(s.consistency_mm, 3 * float(np.max(sd_mm)))
        tol_deg = max(s.consistency_deg, 3 * float(np.max(sd_deg)))
        if dt > tol_mm or dr > tol_deg:
            return done(False, f"inconsistent optimum: a second start {s.perturb_mm:g} mm / {s.perturb_deg:g} deg "
                               f"away converged {dt:.2f} mm / {dr:.2f} deg elsewhere", p, **kw)
    if p_global is not None:
        gt, gr = quality.transform_difference(p, p_global)
        details["global_start"]["delta_mm"], details["global_start"]["delta_deg"] = gt, gr
        if gt > s.max_refine_mm or gr > s.max_refine_deg:
            return done(False, f"ambiguous match: the {mode}/ROI match moved {gt:.1f} mm / {gr:.1f} deg away from the "
                               f"whole-image match (repetitive anatomy such as ribs or vertebrae?); check visually",
                        p, **kw)
    tr = np.abs(p[:3])
    rot = np.rad2deg(np.abs(p[3:]))
    if tr.max() > s.max_translation_mm or rot.max() > s.max_rotation_deg:
        return done(False, f"implausible result: {tr.max():.1f} mm / {rot.max():.1f} deg exceeds the limits "
                           f"({s.max_translation_mm:g} mm, {s.max_rotation_deg:g} deg) of a setup error", p, **kw)
    if not converged:
        return done(False, f"the optimiser did not converge in {s.max_iterations} iterations", p, **kw)
    return done(True, None, p, **kw)


def _optimise(ev: Evaluator, p: np.ndarray, s: RigidSettings, radius: float, level_spacing: float,
              refine: bool = False) -> OptimiseResult:
    if s.metric == "mi":
        return lbfgs(ev, p, radius_mm=radius, max_iterations=2 * s.max_iterations)
    # trust region per step: generous from a cold start, one to two voxels when refining a global start
    step = max(3.0, (1.5 if refine else 4.0) * level_spacing)
    return levenberg_marquardt(ev, p, radius_mm=radius, max_iterations=s.max_iterations, max_step_mm=step)
