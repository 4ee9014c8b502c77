"""Helpers for the DICOM tests: a small synthetic planning set with known truth, Dice."""

import numpy as np

from igrt.geometry import PatientOrientation, Volume
from igrt.planning import Beam, Plan, PlanningReference, Structure


def make_reference(patient_id: str = "P1", shape=(24, 48, 56), spacing=(1.5, 1.25, 2.5)) -> PlanningReference:
    nz, ny, nx = shape
    grid = Volume.centred(np.zeros(shape, np.float32), spacing, centre=(5.0, -3.0, 12.0))
    x, y, z = grid.world_coordinates()
    x, y, z = x - 5.0, y + 3.0, z - 12.0
    body = ((x / 38) ** 2 + (y / 28) ** 2 <= 1) & (np.abs(z) <= 25)
    ptv = (x / 12) ** 2 + (y / 9) ** 2 + (z / 14) ** 2 <= 1
    # A lung with a hole through it (ring in every slice) exercises holes.
    lung = ((x - 20) ** 2 / 120 + (y / 14) ** 2 + (z / 22) ** 2 <= 1) & ~((x - 20) ** 2 + y**2 <= 12)
    ct = np.where(body, 40.0, -1000.0).astype(np.float32)
    ct[lung] = -800.0
    structures = {
        "BODY": Structure("BODY", grid.with_array(body), "EXTERNAL", 1, (0, 255, 0)),
        "PTV": Structure("PTV", grid.with_array(ptv), "PTV", 2, (255, 0, 0)),
        "Lung_R": Structure("Lung_R", grid.with_array(lung), "ORGAN", 3, (0, 0, 255)),
    }
    iso = (5.5, -2.0, 13.0)
    beams = tuple(
        Beam(i + 1, f"F{i + 1}", g, collimator_deg=10.0 * i, couch_deg=(0.0 if i < 4 else 270.0), isocentre_mm=iso, energy_mv=6.0, monitor_units=150.0 + i)
        for i, g in enumerate([0.0, 72.0, 144.0, 216.0, 288.0])
    )
    plan = Plan("SBRT", PatientOrientation.HFS, beams, prescription_gy=54.0, fractions=3, target_name="PTV")
    dose = grid.with_array((60.0 * np.exp(-((x - 0.5) ** 2 + (y - 1) ** 2 + (z - 1) ** 2) / 300.0)).astype(np.float32))
    return PlanningReference(patient_id, "Test^Patient", ct=grid.with_array(ct), structures=structures, plan=plan, dose=dose)


def dice(a, b) -> float:
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    return float(2.0 * (a & b).sum() / (a.sum() + b.sum()))


