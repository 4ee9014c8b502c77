"""Benchmark: load a 200-slice 512x512 CT series with igrt vs SimpleITK's ImageSeriesReader.

Writes the series once with igrt's DICOM writer into a temporary folder,
then, in the same process, loads it with both (file discovery + sorting +
pixel decoding + geometry), repeats each a few times (interleaved, OS file
cache warm for both) and prints the best and median times, the ratio and
whether both give the same voxels and geometry.

Usage: .venv/bin/python bench/ct_load.py [--slices 200] [--size 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from igrt.geometry import Volume
from igrt.io.dicom import load_ct_series, write_ct_series
from igrt.io.images import volume_from_sitk


def make_ct(slices: int, size: int) -> Volume:
    """A CT-like volume: body ellipse of soft tissue with a bone ring and noise, HU."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    r2 = ((x - c) / (0.45 * size)) ** 2 + ((y - c) / (0.35 * size)) ** 2
    sl = np.where(r2 <= 1, 40.0, -1000.0)
    sl[(r2 > 0.75) & (r2 <= 0.85)] = 700.0
    arr = np.repeat(sl[None].astype(np.float32), slices, axis=0)
    arr += rng.normal(0, 20, arr.shape).astype(np.float32)
    return Volume.centred(arr, (0.9765625, 0.9765625, 2.0))


def load_igrt(folder: Path, dtype):
    return load_ct_series(folder, dtype=dtype).volume


def load_sitk(folder: Path, float32: bool):
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(names)
    if float32:
        reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def timeit(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ct"
        vol = make_ct(args.slices, args.size)
        t0 = time.perf_counter()
        write_ct_series(vol, folder)
        t_write = time.perf_counter() - t0
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"CT series: {args.slices} slices of {args.size}x{args.size}, {mb:.0f} MB, written by igrt in {t_write:.2f} s")
        load_igrt(folder, np.float32)  # warm the OS file cache and imports for both
        load_sitk(folder, False)
        cases = {
            "igrt float32 HU": lambda: load_igrt(folder, np.float32),
            "SimpleITK int16 (default)": lambda: load_sitk(folder, False),
            "igrt int16 (dtype=None)": lambda: load_igrt(folder, None),
            "SimpleITK float32": lambda: load_sitk(folder, True),
        }
        results = {k: [] for k in cases}
        outs = {}
        for _ in range(args.repeats):  # interleave so background load hits both alike
            for k, fn in cases.items():
                t, outs[k] = timeit(fn, 1)
                results[k] += t
        for k, t in results.items():
            print(f"{k:28s} best {min(t):6.3f} s   median {statistics.median(t):6.3f} s")
        ig = outs["igrt float32 HU"]
        sv = volume_from_sitk(outs["SimpleITK float32"])
        same_vox = np.array_equal(ig.array, sv.array)
        dgeo = max(np.abs(np.subtract(ig.origin, sv.origin)).max(), np.abs(np.subtract(ig.spacing, sv.spacing)).max())
        print(f"same voxels: {same_vox}; max origin/spacing difference {dgeo:.2e} mm; direction equal: {np.allclose(ig.direction, sv.direction)}")
        for a, b in (("igrt float32 HU", "SimpleITK int16 (default)"), ("igrt int16 (dtype=None)", "SimpleITK int16 (default)"), ("igrt float32 HU", "SimpleITK float32")):
            r = statistics.median(results[b]) / statistics.median(results[a])
            print(f"speed-up {a} vs {b}: {r:.2f}x (median SimpleITK / median igrt; >1 means igrt faster)")


if __name__ == "__main__":
    main()
