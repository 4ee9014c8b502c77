"""Benchmark: cone-beam forward projection + FDK, igrt vs RTK (itk-rtk, CPU), in one run.

The same 3D Shepp-Logan volume (attenuation, 1/mm; default 256^3 at 1 mm) is
forward-projected (360 projections of 256x256, 1.5 mm pixels, SAD 1000 / SID
1500 mm, so 1 mm at the isocentre) and reconstructed with FDK (Ram-Lak) by
igrt and by RTK (JosephForwardProjectionImageFilter +
FDKConeBeamReconstructionFilter), each from its own projections. Prints both
times, their ratio, both central-region RMSEs against the truth (central
half-size cube) and the peak resident memory added by each step.

Usage: .venv/bin/python bench/fdk_vs_rtk.py [--size 256] [--projections 360]
       [--detector 256] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np


class PeakRSS:
    """Peak resident set size (MB) above the level at entry, sampled every 5 ms from /proc."""

    def __enter__(self):
        self.base = self._rss()
        self.peak = self.base
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, self._rss())
        self.added_mb = self.peak - self.base


def lps_to_rtk(arr: np.ndarray) -> np.ndarray:
    """HFS LPS array [z, y, x] -> RTK/IEC array [Z, Y, X] (IEC X = x, Y = z, Z = -y)."""
    return np.ascontiguousarray(np.transpose(arr, (1, 0, 2))[::-1])


def rtk_to_lps(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(arr[::-1], (1, 0, 2)))


def central_rmse(rec: np.ndarray, truth: np.ndarray) -> float:
    n = truth.shape[0]
    c = slice(n // 4, n - n // 4)
    return float(np.sqrt(np.mean((rec[c, c, c].astype(np.float64) - truth[c, c, c]) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--projections", type=int, default=360)
    ap.add_argument("--detector", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import numba

    numba.set_num_threads(args.threads)
    from igrt.imaging import ReconGrid, circular_geometry, fdk, forward_project
    from igrt.imaging.phantoms import shepp_logan_3d

    n, sp = args.size, 256.0 / args.size
    pix = args.detector
    pu = 1.5 * 256.0 / pix
    truth = shepp_logan_3d((n, n, n), (sp, sp, sp), scale=0.02)
    geo = circular_geometry(args.projections, sad_mm=1000.0, sid_mm=1500.0, detector_shape=(pix, pix), pixel_spacing_mm=(pu, pu))
    grid = ReconGrid.like(truth)

    # warm-up: numba kernels are cached on disk, this loads them (not timed)
    small = shepp_logan_3d((16, 16, 16), (8.0, 8.0, 8.0), scale=0.02)
    g_small = circular_geometry(8, sad_mm=1000.0, sid_mm=1500.0, detector_shape=(32, 32), pixel_spacing_mm=(12.0, 12.0))
    fdk(forward_project(small, g_small), g_small, ReconGrid.like(small), mu_water_per_mm=None)

    print(f"case: {args.projections} projections of {pix}x{pix} ({pu:.3f} mm), volume {n}^3 at {sp:g} mm, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.2f}")

    with PeakRSS() as m_fp:
        t0 = time.perf_counter()
        proj = forward_project(truth, geo)
        t_fp = time.perf_counter() - t0
    with PeakRSS() as m_fdk:
        t0 = time.perf_counter()
        rec = fdk(proj, geo, grid, mu_water_per_mm=None)
        t_fdk = time.perf_counter() - t0
    rmse_igrt = central_rmse(rec.array, truth.array)
    del rec
    fov_voxels = int(np.count_nonzero(np.hypot(*np.meshgrid(np.arange(n) - (n - 1) / 2, np.arange(n) - (n - 1) / 2)) * sp
                                      <= geo.fov_radius_mm())) * n
    updates = fov_voxels * args.projections
    print(f"igrt  forward projection {t_fp:7.2f} s   peak +{m_fp.added_mb:6.0f} MB")
    print(f"igrt  FDK                {t_fdk:7.2f} s   peak +{m_fdk.added_mb:6.0f} MB   RMSE {rmse_igrt:.3e} /mm"
          f"   {updates / t_fdk / 1e9:.2f} G voxel-updates/s ({updates:.2e} updates in the FOV cylinder)")
    del proj

    import itk
    from itk import RTK as rtk

    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(args.threads)
    ImageType = itk.Image[itk.F, 3]
    vol_rtk = itk.image_from_array(lps_to_rtk(truth.array))
    vol_rtk.SetSpacing([sp] * 3)
    vol_rtk.SetOrigin([-(n - 1) / 2 * sp] * 3)
    g = rtk.ThreeDCircularProjectionGeometry.New()
    for a in geo.angles_deg:
        g.AddProjection(1000.0, 1500.0, float(a))
    src = rtk.ConstantImageSource[ImageType].New()
    src.SetOrigin([-(pix - 1) / 2 * pu, -(pix - 1) / 2 * pu, 0.0])
    src.SetSpacing([pu, pu, 1.0])
    src.SetSize([pix, pix, args.projections])
    src.SetConstant(0.0)
    with PeakRSS() as m_rfp:
        t0 = time.perf_counter()
        fp = rtk.JosephForwardProjectionImageFilter[ImageType, ImageType].New()
        fp.SetInput(0, src.GetOutput())
        fp.SetInput(1, vol_rtk)
        fp.SetGeometry(g)
        fp.Update()
        t_rfp = time.perf_counter() - t0
    proj_rtk = fp.GetOutput()
    proj_rtk.DisconnectPipeline()
    del fp
    out_src = rtk.ConstantImageSource[ImageType].New()
    out_src.SetOrigin([-(n - 1) / 2 * sp] * 3)
    out_src.SetSpacing([sp] * 3)
    out_src.SetSize([n] * 3)
    out_src.SetConstant(0.0)
    with PeakRSS() as m_rfdk:
        t0 = time.perf_counter()
        f = rtk.FDKConeBeamReconstructionFilter[ImageType].New()
        f.SetInput(0, out_src.GetOutput())
        f.SetInput(1, proj_rtk)
        f.SetGeometry(g)
        f.GetRampFilter().SetTruncationCorrection(0.0)
        f.GetRampFilter().SetHannCutFrequency(0.0)
        f.Update()
        t_rfdk = time.perf_counter() - t0
    rec_rtk = rtk_to_lps(itk.array_from_image(f.GetOutput()))
    rmse_rtk = central_rmse(rec_rtk, truth.array)
    print(f"RTK   forward projection {t_rfp:7.2f} s   peak +{m_rfp.added_mb:6.0f} MB")
    print(f"RTK   FDK                {t_rfdk:7.2f} s   peak +{m_rfdk.added_mb:6.0f} MB   RMSE {rmse_rtk:.3e} /mm")
    print(f"ratio RTK/igrt: FDK {t_rfdk / t_fdk:.2f}x, forward projection {t_rfp / t_fp:.2f}x; "
          f"RMSE igrt/RTK {rmse_igrt / rmse_rtk:.3f}; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
