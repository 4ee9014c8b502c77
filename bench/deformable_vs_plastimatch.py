"""Deformable registration: igrt diffeomorphic demons vs `plastimatch register` (B-spline), in one run.

Cases (each scored at landmarks against the known truth):

* ``pelvis``: the igrt.phantom prostate patient on the course day with the
  largest bladder/rectum filling; the daily image is a simulated CBCT of that
  day (180 projections, Poisson noise, FDK), setup error removed so that
  only the deformation remains. 200 landmarks on edges in bladder, rectum,
  prostate and seminal vesicles.
* ``lung``: the igrt.phantom lung patient at the inhale breathing phase
  (4DCT-like phase image, 15 HU noise) vs the planning CT. 200 landmarks on
  edges in the lungs and the tumour.
* ``synthetic``: the synthetic thorax of igrt.registration.synthetic deformed
  by a bladder-like expansion plus a breathing-like shift, CBCT-like
  intensities (noise, blur, HU scale and offset).

Both tools register planning (fixed) -> daily (moving) and return a
displacement field on the planning grid. Both stop at the same finest
resolution: igrt's demons at about 2.5 mm voxels, plastimatch's last B-spline
stage at the subsampling that gives the same voxel size.

Run: .venv/bin/python bench/deformable_vs_plastimatch.py [--cases pelvis lung synthetic]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from igrt.geometry import Volume
from igrt.registration import synthetic as S
from igrt.registration.deformable import register_deformable
from igrt.registration.sampling import interpolate


@dataclass
class Case:
    name: str
    planning: Volume
    daily: Volume
    landmarks_mm: np.ndarray  # planning points (N, 3)
    truth_mm: np.ndarray  # where they are in the daily image (N, 3)
    description: str


def pelvis_case() -> Case:
    from igrt.course.daily_image import simulate_daily_cbct
    from igrt.phantom import build_patient, simulate_course
    from igrt.phantom.course import zero_error_fraction
    from igrt.phantom.deformation import landmarks_mm, map_planning_to_daily

    p = build_patient("pelvis", seed=1)
    course = simulate_course(p, n_fractions=6, seed=2)
    still = zero_error_fraction(p).setup_error
    lm = landmarks_mm(p, n=200, seed=1, structures=("Bladder", "Rectum", "Prostate", "SeminalVesicles"),
                      min_gradient_hu_per_mm=20.0)
    days = [replace(f, setup_error=still) for f in course.fractions]
    truths = [map_planning_to_daily(p, d, lm) for d in days]
    k = int(np.argmax([np.linalg.norm(t - lm, axis=1).mean() for t in truths]))
    daily = simulate_daily_cbct(p, days[k], seed=3)
    return Case("pelvis", p.ct, daily, lm, truths[k],
                f"phantom prostate patient, fraction {k + 1} of 6 (bladder/rectum filling), simulated CBCT")


def lung_case() -> Case:
    from igrt.phantom import build_patient, simulate_course
    from igrt.phantom.course import zero_error_fraction
    from igrt.phantom.deformation import daily_anatomy, landmarks_mm, map_planning_to_daily

    p = build_patient("lung", seed=1)
    day = replace(simulate_course(p, n_fractions=1, seed=2).fractions[0], setup_error=zero_error_fraction(p).setup_error)
    lm = landmarks_mm(p, n=200, seed=1, structures=("Lung_L", "Lung_R", "GTV"), min_gradient_hu_per_mm=20.0)
    daily = daily_anatomy(p, day, phase=0.0, noise_hu=15.0, seed=3)
    return Case("lung", p.ct, daily, lm, map_planning_to_daily(p, day, lm, phase=0.0),
                "phantom lung patient, inhale phase (4DCT-like, 15 HU noise)")


def synthetic_case() -> Case:
    def field(q: np.ndarray) -> np.ndarray:
        d = S.bump_field(q, (22.0, -28.0, -10.0), 12.0, 30.0)
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        w = np.exp(-((x - 60.0) ** 2 + (y + 5.0) ** 2) / (2 * 35.0**2)) * np.exp(-((z - 10.0) ** 2) / (2 * 45.0**2))
        d[:, 2] += 8.0 * w
        d[:, 1] -= 2.5 * w
        return d

    grid = S.grid((96, 128, 128), (2.5,) * 3, (10.0, -15.0, 0.0))
    rng = np.random.default_rng(3)
    daily = S.cbct_like(S.render_deformed(grid, field), rng, noise_hu=15.0, blur_mm=1.0, hu_scale=1.04,
                        hu_offset=-25.0, cupping_hu=0.0)
    d = rng.normal(size=(80, 3))
    d *= (50.0 * rng.uniform(0.2, 1.0, (80, 1))) / np.linalg.norm(d, axis=1, keepdims=True)
    lm = np.array([40.0, -18.0, 0.0]) + d
    return Case("synthetic", S.render(grid), daily, lm, lm + field(lm),
                "synthetic thorax, bladder-like expansion + breathing-like shift, CBCT-like intensities")


CASES = {"pelvis": pelvis_case, "lung": lung_case, "synthetic": synthetic_case}


def to_sitk(v: Volume) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(v.array, dtype=np.float32))
    img.SetOrigin(v.origin)
    img.SetSpacing(v.spacing)
    return img


def plastimatch_params(spacing_mm, finest_mm: float) -> str:
    """Three B-spline stages (grid 40/20/12 mm), the last one subsampled to about ``finest_mm`` voxels."""
    last = [max(1, int(round(finest_mm / s))) for s in spacing_mm]
    res = [[4 * r for r in last], [2 * r for r in last], last]
    stages = [(60, 40), (60, 20), (40, 12)]
    text = "[GLOBAL]\nfixed={fixed}\nmoving={moving}\nvf_out={vf}\n"
    for i, ((its, g), r) in enumerate(zip(stages, res)):
        text += f"\n[STAGE]\nmax_its={its}\ngrid_spac={g} {g} {g}\nres={r[0]} {r[1]} {r[2]}\n"
        if i == 0:
            text += ("xform=bspline\nimpl=plastimatch\noptim=lbfgsb\nmetric=mse\nthreading=openmp\n"
                     "regularization_lambda=0.0005\n")
    return text


def run_plastimatch(exe: str, case: Case, finest_mm: float) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sitk.WriteImage(to_sitk(case.planning), str(tmp / "fixed.mha"))
        sitk.WriteImage(to_sitk(case.daily), str(tmp / "moving.mha"))
        (tmp / "params.txt").write_text(plastimatch_params(case.planning.spacing, finest_mm).format(
            fixed=tmp / "fixed.mha", moving=tmp / "moving.mha", vf=tmp / "vf.mha"))
        env = dict(os.environ, OMP_NUM_THREADS="2")
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "register", str(tmp / "params.txt")], capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0 or not (tmp / "vf.mha").exists():
            print("plastimatch failed:", proc.stdout[-2000:], proc.stderr[-2000:])
            return elapsed, np.full(len(case.landmarks_mm), np.nan)
        vf = sitk.ReadImage(str(tmp / "vf.mha"))
        arr = sitk.GetArrayFromImage(vf)  # [z, y, x, 3]: displacement fixed -> moving in mm (x, y, z)
        grid = Volume(np.zeros(arr.shape[:3], np.float32), vf.GetOrigin(), vf.GetSpacing())
        lm = case.landmarks_mm.astype(np.float32)
        d = np.stack([interpolate(grid.with_array(arr[..., c].astype(np.float32)), lm) for c in range(3)], axis=1)
        return elapsed, np.linalg.norm(case.landmarks_mm + d - case.truth_mm, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["pelvis", "lung", "synthetic"])
    args = ap.parse_args()
    exe = shutil.which("plastimatch") or str(Path(sys.executable).parent / "plastimatch")
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    finest_mm = 2.5
    for name in args.cases:
        case = CASES[name]()
        before = np.linalg.norm(case.truth_mm - case.landmarks_mm, axis=1)
        g = case.planning
        print(f"\n[{name}] {case.description}")
        print(f"  grid {g.size_xyz} x {tuple(round(s, 2) for s in g.spacing)} mm, {len(before)} landmarks; "
              f"before: {before.mean():.2f} mm mean, {before.max():.2f} mm max")
        register_deformable(g, g, iterations=(1, 1, 1))  # compile / warm the numba kernels
        t0 = time.perf_counter()
        res = register_deformable(g, case.daily, min_spacing_mm=finest_mm)
        t_igrt = time.perf_counter() - t0
        e_igrt = np.linalg.norm(res.map_points(case.landmarks_mm) - case.truth_mm, axis=1)
        t_pm, e_pm = run_plastimatch(exe, case, finest_mm)
        print(f"  igrt demons      : {t_igrt:7.2f} s  landmark error {e_igrt.mean():.2f} mm mean "
              f"({np.percentile(e_igrt, 95):.2f} mm 95th pct), Jacobian [{res.jacobian_min:.2f}, "
              f"{res.jacobian_max:.2f}], success={res.success}")
        pm95 = np.nanpercentile(e_pm, 95) if np.isfinite(e_pm).any() else float("nan")
        print(f"  plastimatch bspl : {t_pm:7.2f} s  landmark error {np.nanmean(e_pm):.2f} mm mean ({pm95:.2f} mm 95th pct)")
        print(f"  speed-up plastimatch / igrt: {t_pm / t_igrt:.1f}x")


if __name__ == "__main__":
    main()
