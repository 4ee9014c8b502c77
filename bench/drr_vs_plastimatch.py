"""Benchmark: a 512x512 DRR through a 256x256x128 CT, igrt vs `plastimatch drr -i exact`, in one run.

The CT (a 3D Shepp-Logan head scaled to a 256x256x128 grid of 1.5 x 1.5 x 2
mm, as attenuation in 1/mm) is written once as .mha; plastimatch (the binary
shipped by the `plastimatch` wheel, found next to the venv's python or on
PATH) renders it with its exact (Siddon) ray tracer and no HU conversion
(``-P none``); igrt renders the same rays from the in-memory Volume with its
Siddon tracer (default; the same exact algorithm, plus skipping of the empty
margin around the object) or its Joseph ray caster (``--method joseph``,
bilinear, ~3 % pixel differences against Siddon on this sharp-edged phantom). Geometry: plastimatch's gantry angle 0 (source on the
patient's left, +x LPS), SAD 1000, SID 1500 mm, 400 x 400 mm panel.
plastimatch's integral is in cm (voxel value x cm); igrt's in mm: igrt's image
is divided by 10 before comparing. Prints times (igrt best of N; plastimatch's
own reported compute time and the whole command), their ratio and the mean
relative difference of the images over pixels whose rays cross the object.

Usage: .venv/bin/python bench/drr_vs_plastimatch.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def find_plastimatch() -> str:
    here = Path(sys.executable).parent / "plastimatch"
    if here.exists():
        return str(here)
    found = shutil.which("plastimatch")
    if found:
        return found
    raise SystemExit("plastimatch not found: pip install -e .[bench]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pixels", type=int, default=512)
    ap.add_argument("--method", default="siddon", choices=("siddon", "joseph"))
    args = ap.parse_args()

    import numba
    import SimpleITK as sitk

    numba.set_num_threads(args.threads)
    from igrt.imaging.drr import DRRPose, render
    from igrt.imaging.phantoms import shepp_logan_3d

    ct = shepp_logan_3d((256, 256, 128), (1.5, 1.5, 2.0), radius_mm=120.0, scale=0.02)
    # the Shepp-Logan unit sphere is squashed along z by the 128 x 2 mm extent: fine for a benchmark
    n_pix, panel_mm, sad, sid = args.pixels, 400.0, 1000.0, 1500.0
    pix_mm = panel_mm / n_pix
    iso = np.zeros(3)
    # plastimatch gantry 0: source at iso + SAD * (+x), panel columns along +y, rows along -z
    pose = DRRPose(iso + [sad, 0, 0], iso - [sid - sad, 0, 0], (0, 1, 0), (0, 0, -1), (n_pix, n_pix), (pix_mm, pix_mm))

    tmp = Path(tempfile.mkdtemp(prefix="igrt_drr_bench_"))
    try:
        img = sitk.GetImageFromArray(ct.array)
        img.SetSpacing(ct.spacing)
        img.SetOrigin(ct.origin)
        sitk.WriteImage(img, str(tmp / "ct.mha"))
        exe = find_plastimatch()
        cmd = [exe, "drr", "-i", "exact", "-P", "none", "-t", "raw", "-r", f"{n_pix} {n_pix}",
               "-z", f"{panel_mm} {panel_mm}", "--sad", str(sad), "--sid", str(sid), "-y", "0",
               "-o", "0 0 0", "-O", str(tmp / "out" / "drr"), str(tmp / "ct.mha")]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        pl_wall, pl_total = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            pl_wall.append(time.perf_counter() - t0)
            m = re.search(r"Total time:\s*([0-9.eE+-]+)", res.stdout + res.stderr)
            io = re.search(r"I/O time:\s*([0-9.eE+-]+)", res.stdout + res.stderr)
            if m:
                pl_total.append(float(m.group(1)) - (float(io.group(1)) if io else 0.0))
        ref = np.fromfile(tmp / "out" / "drr0000.raw", np.float32).reshape(n_pix, n_pix)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    render(ct, pose, input_hu=False, method=args.method)  # warm-up: load cached kernels, build the volume layouts
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        mine = render(ct, pose, input_hu=False, method=args.method)
        times.append(time.perf_counter() - t0)
    mine_cm = mine / 10.0
    t_full = float("nan")
    if args.method == "siddon":
        # the same tracer without empty-space skipping (box = the whole grid), for a CT filling its grid
        from igrt.imaging._kernels import cast_rays_siddon

        w2i = ct.world_to_index
        tr = lambda q: np.ascontiguousarray(np.atleast_2d(q) @ w2i[:3, :3].T + w2i[:3, 3])  # noqa: E731
        vec = lambda q: np.ascontiguousarray(np.atleast_2d(q) @ w2i[:3, :3].T)  # noqa: E731
        nx, ny, nz = ct.size_xyz
        full_box = np.array([0, nx - 1, 0, ny - 1, 0, nz - 1], np.int64)
        out = np.empty((1, n_pix, n_pix), np.float32)
        vol32 = np.ascontiguousarray(ct.array, np.float32)
        args_k = (vol32, tr(pose.source_mm), tr(pose.pixel00_mm), vec(pose.u * pix_mm), vec(pose.v * pix_mm),
                  n_pix, n_pix, np.asarray(ct.spacing), 1.0, 0.0, full_box, out)
        cast_rays_siddon(*args_k)
        t_list = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            cast_rays_siddon(*args_k)
            t_list.append(time.perf_counter() - t0)
        t_full = min(t_list)

    # image axes: find which of the 8 flips/transposes of plastimatch's raw layout matches igrt's
    variants = {}
    for t in (False, True):
        base = ref.T if t else ref
        for fr in (False, True):
            for fc in (False, True):
                v = base[::-1] if fr else base
                v = v[:, ::-1] if fc else v
                variants[(t, fr, fc)] = v
    key = min(variants, key=lambda k: float(np.mean(np.abs(variants[k] - mine_cm))))
    ref_al = variants[key]
    mask = ref_al > 0.05 * ref_al.max()
    rel = np.abs(mine_cm[mask] - ref_al[mask]) / ref_al[mask]
    t_igrt = min(times)
    t_pl = min(pl_total) if pl_total else float("nan")
    print(f"DRR {n_pix}x{n_pix} through {ct.size_xyz[0]}x{ct.size_xyz[1]}x{ct.size_xyz[2]} CT, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"igrt        {t_igrt * 1e3:8.1f} ms (best of {args.repeats}; median {np.median(times) * 1e3:.1f} ms)")
    print(f"plastimatch {t_pl * 1e3:8.1f} ms compute as it reports (best of {args.repeats}), "
          f"{min(pl_wall) * 1e3:.1f} ms whole command incl. start-up and reading the CT")
    print(f"ratio plastimatch/igrt: {t_pl / t_igrt:.2f}x (compute), {min(pl_wall) / t_igrt:.2f}x (whole command)")
    if t_full == t_full:
        print(f"igrt without empty-space skipping {t_full * 1e3:.1f} ms: ratio {t_pl / t_full:.2f}x (compute)")
    print(f"mean relative difference {rel.mean() * 100:.3f} % over {mask.sum()} object pixels "
          f"(median {np.median(rel) * 100:.3f} %, 99th pct {np.percentile(rel, 99) * 100:.2f} %); "
          f"plastimatch raw layout: transpose={key[0]}, flip rows={key[1]}, flip cols={key[2]}")


if __name__ == "__main__":
    main()
