"""Benchmark: build a 256 x 256 x 128 phantom patient per site (goal: a few seconds), plus a daily image.

No peer tool builds this phantom, so only igrt's times are printed. The first
call of each kind also compiles numba kernels (cached on disk), so a warm-up
build on a small grid runs first.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from igrt.phantom import build_patient, daily_anatomy, daily_displacement, simulate_course

SHAPE = (128, 256, 256)
SPACING = (1.5, 1.5, 2.5)


def main() -> None:
    build_patient("lung", shape=(32, 48, 48), spacing=(8.0, 8.0, 8.0))  # warm-up / numba compile
    print(f"igrt phantom benchmark: grid {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} at {SPACING} mm; "
          f"{platform.machine()}, python {platform.python_version()}")
    for site in ("lung", "pelvis"):
        times = []
        for seed in range(3):
            t0 = time.perf_counter()
            p = build_patient(site, shape=SHAPE, spacing=SPACING, seed=seed)
            times.append(time.perf_counter() - t0)
        course = simulate_course(p, 2, seed=0)
        f = course.fractions[1]
        daily_anatomy(p, f, t_s=1.0)  # warm the per-patient caches
        t0 = time.perf_counter()
        daily_anatomy(p, f, t_s=1.0)
        t_day = time.perf_counter() - t0
        t0 = time.perf_counter()
        daily_displacement(p, f, t_s=1.0)
        t_field = time.perf_counter() - t0
        print(f"{site:7s} build: median {np.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}); "
              f"daily_anatomy {t_day:.2f} s; daily_displacement {t_field:.2f} s; "
              f"PTV {p.volume_cc('PTV'):.1f} cc")


if __name__ == "__main__":
    main()
