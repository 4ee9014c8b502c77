"""Residual systematic error after online / NAL / eNAL / SAL on a simulated population.

Prints the markdown table of docs/correction.md. Population: Sigma = sigma = 3 mm
per axis (igrt.phantom.sample_population when available, else plain numpy),
2000 patients x 30 fractions, optional linear time trend per patient
(slope ~ N(0, s) mm/fraction per axis). Sigma_res: SD over patients of the
systematic error left over fractions N+1..30 (random error excluded), mean of
the three axes. Usage: python bench/correction_protocols.py [--patients 2000]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

from igrt.correction.protocols import ProtocolStep, enal, nal, online, residual_systematic_sd, sal, simulate_protocol


def no_correction(measured_mm) -> ProtocolStep:
    """Reference: never image, never correct."""
    lead = np.asarray(measured_mm).shape[:-2]
    return ProtocolStep(np.zeros(lead + (3,)), np.zeros(lead, dtype=bool), False, "none", "no correction")


def population(n_patients: int, n_fractions: int, seed: int):
    try:
        from igrt.phantom.course import SetupErrorModel, sample_population

        pop = sample_population(
            n_patients, n_fractions, SetupErrorModel((3.0, 3.0, 3.0), (3.0, 3.0, 3.0)), seed=seed
        )
        return pop.systematic_translation_mm[:, None, :], pop.random_translation_mm, "igrt.phantom.sample_population"
    except ImportError:
        rng = np.random.default_rng(seed)
        return rng.normal(0, 3.0, (n_patients, 1, 3)), rng.normal(0, 3.0, (n_patients, n_fractions, 3)), "numpy"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--fractions", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    systematic, random, source = population(args.patients, args.fractions, args.seed)
    k = np.arange(args.fractions)[None, :, None]
    protocols = [
        ("no correction", no_correction, 3),
        ("online", online, 3),
        ("NAL N=3", partial(nal, n=3), 3),
        ("NAL N=5", partial(nal, n=5), 5),
        ("eNAL N=3 (weekly, 3 mm)", partial(enal, n=3, check_interval=5, threshold_mm=3.0), 3),
        ("eNAL N=3 (weekly, 2 mm)", partial(enal, n=3, check_interval=5, threshold_mm=2.0), 3),
        ("eNAL N=3 (weekly, 4 mm)", partial(enal, n=3, check_interval=5, threshold_mm=4.0), 3),
        ("SAL alpha=6 mm, Nmax=4", partial(sal, alpha_mm=6.0, n_max=4), 3),
    ]
    slopes = (0.0, 0.1, 0.2)
    rng = np.random.default_rng(args.seed + 100)
    trend_unit = rng.normal(0, 1.0, (args.patients, 1, 3)) * k
    print(f"population: {args.patients} patients x {args.fractions} fractions, Sigma = sigma = 3 mm ({source})")
    print("Sigma_res (mm, mean of x/y/z) over fractions after the protocol's first N; images per patient in brackets")
    print()
    print("| protocol | expected, no trend | " + " | ".join(f"trend SD {s:.1f} mm/fx" for s in slopes) + " |")
    print("|---|---|" + "---|" * len(slopes))
    for name, prot, first in protocols:
        cells = []
        for s in slopes:
            errors = systematic + s * trend_unit + random
            course = simulate_protocol(errors, prot)
            sres = float(residual_systematic_sd(course, random, first).mean())
            cells.append(f"{sres:.2f} ({course.imaged.sum(axis=1).mean():.1f})")
        if name.startswith("NAL"):
            n = int(name.split("=")[1])
            expected = f"sigma/sqrt({n}) = {3.0 / np.sqrt(n):.2f}"
        elif name == "online":
            expected = "0 (registration error only)"
        elif name == "no correction":
            expected = "Sigma = 3.00"
        else:
            expected = "-"
        print(f"| {name} | {expected} | " + " | ".join(cells) + " |")
    print()
    print(f"total time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
