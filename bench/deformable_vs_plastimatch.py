"""Deformable registration: igrt diffeomorphic demons vs `plastimatch register` (B-spline), in one run.

The synthetic thorax phantom is deformed by a known smooth field (bladder-
filling-like expansion plus a breathing-like superior shift), rendered as a
CBCT-like daily image (noise, blur, HU scale/offset) on the planning grid.
Both tools register planning (fixed) -> daily (moving); landmark errors are
measured at 80 points in the deformed region against the true field.
plastimatch: B-spline stages (MSE, L-BFGS-B) from a parameter file.

Run: .venv/bin/python bench/deformable_vs_plastimatch.py [--shape NZ NY NX] [--spacing MM]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from igrt.geometry import Volume
from igrt.registration import synthetic as S
from igrt.registration.deformable import register_deformable
from igrt.registration.sampling import interpolate


def field(p: np.ndarray) -> np.ndarray:
    d = S.bump_field(p, (22.0, -28.0, -10.0), 12.0, 30.0)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    w = np.exp(-((x - 60.0) ** 2 + (y + 5.0) ** 2) / (2 * 35.0**2)) * np.exp(-((z - 10.0) ** 2) / (2 * 45.0**2))
    d[:, 2] += 8.0 * w
    d[:, 1] -= 2.5 * w
    return d


def to_sitk(v: Volume) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(v.array, dtype=np.float32))
    img.SetOrigin(v.origin)
    img.SetSpacing(v.spacing)
    return img


PARAMS = """[GLOBAL]
fixed={fixed}
moving={moving}
vf_out={vf}

[STAGE]
xform=bspline
impl=plastimatch
optim=lbfgsb
metric=mse
threading=openmp
max_its=60
grid_spac=40 40 40
res=4 4 4
regularization_lambda=0.0005

[STAGE]
max_its=60
grid_spac=20 20 20
res=2 2 2

[STAGE]
max_its=40
grid_spac=12 12 12
res=1 1 1
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", type=int, nargs=3, default=(96, 128, 128))
    ap.add_argument("--spacing", type=float, default=2.5)
    args = ap.parse_args()
    exe = shutil.which("plastimatch") or str(Path(sys.executable).parent / "plastimatch")
    centre = (10.0, -15.0, 0.0)
    grid = S.grid(tuple(args.shape), (args.spacing,) * 3, centre)
    planning = S.render(grid)
    rng = np.random.default_rng(3)
    daily = S.cbct_like(S.render_deformed(grid, field), rng, noise_hu=15.0, blur_mm=1.0, hu_scale=1.04,
                        hu_offset=-25.0, cupping_hu=0.0)
    d = rng.normal(size=(80, 3))
    d *= (50.0 * rng.uniform(0.2, 1.0, (80, 1))) / np.linalg.norm(d, axis=1, keepdims=True)
    lm = np.array([40.0, -18.0, 0.0]) + d
    truth = lm + field(lm)
    before = np.linalg.norm(truth - lm, axis=1)
    print(f"grid {args.shape[::-1]} x {args.spacing} mm; {os.cpu_count()} CPUs; landmark displacement "
          f"{before.mean():.2f} mm mean, {before.max():.2f} mm max")

    register_deformable(planning, planning, iterations=(2, 2, 2))  # warm the numba kernels
    t0 = time.perf_counter()
    res = register_deformable(planning, daily)
    t_igrt = time.perf_counter() - t0
    e_igrt = np.linalg.norm(res.map_points(lm) - truth, axis=1)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sitk.WriteImage(to_sitk(planning), str(tmp / "fixed.mha"))
        sitk.WriteImage(to_sitk(daily), str(tmp / "moving.mha"))
        (tmp / "params.txt").write_text(PARAMS.format(fixed=tmp / "fixed.mha", moving=tmp / "moving.mha",
                                                      vf=tmp / "vf.mha"))
        env = dict(os.environ, OMP_NUM_THREADS="2")
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "register", str(tmp / "params.txt")], capture_output=True, text=True, env=env)
        t_pm = time.perf_counter() - t0
        if proc.returncode != 0 or not (tmp / "vf.mha").exists():
            print("plastimatch failed:", proc.stdout[-2000:], proc.stderr[-2000:])
            e_pm = np.full(len(lm), np.nan)
        else:
            vf = sitk.ReadImage(str(tmp / "vf.mha"))
            arr = sitk.GetArrayFromImage(vf)  # [z, y, x, 3] displacement in mm (x, y, z)
            vol = Volume(np.zeros(arr.shape[:3], np.float32), vf.GetOrigin(), vf.GetSpacing())
            dvec = np.stack([interpolate(vol.with_array(arr[..., c].astype(np.float32)), lm.astype(np.float32))
                             for c in range(3)], axis=1)
            e_pm = np.linalg.norm(lm + dvec - truth, axis=1)
    print(f"  igrt demons      : {t_igrt:7.2f} s  landmark error {e_igrt.mean():.2f} mm mean "
          f"({np.percentile(e_igrt, 95):.2f} mm 95th pct), Jacobian [{res.jacobian_min:.2f}, {res.jacobian_max:.2f}], "
          f"success={res.success}")
    print(f"  plastimatch bspl : {t_pm:7.2f} s  landmark error {np.nanmean(e_pm):.2f} mm mean "
          f"({np.nanpercentile(e_pm, 95) if np.isfinite(e_pm).any() else float('nan'):.2f} mm 95th pct)")
    print(f"  before           :            landmark error {before.mean():.2f} mm mean")
    print(f"  speed-up plastimatch / igrt: {t_pm / t_igrt:.1f}x")


if __name__ == "__main__":
    main()
