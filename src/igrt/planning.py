"""Planning data model: what a treatment plan brings to image guidance.

Plain value objects shared by DICOM I/O, the phantom, registration and
correction. Masks and dose are `Volume`s on LPS grids (mm); dose in Gy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from igrt.geometry import PatientOrientation, Volume


@dataclass(frozen=True, eq=False)
class Structure:
    """One delineated region of interest.

    ``mask`` is a boolean (or fractional partial-volume, 0..1 float) Volume on
    the CT grid; ``contours`` are optional closed planar polygons in LPS mm,
    each an (N, 3) array, as RTSTRUCT stores them.
    """

    name: str
    mask: Volume | None = None
    roi_type: str = "ORGAN"  # RTROIInterpretedType: EXTERNAL, GTV, CTV, PTV, ORGAN, AVOIDANCE, MARKER, ...
    number: int = 0
    colour: tuple[int, int, int] = (255, 0, 0)
    contours: tuple[np.ndarray, ...] = ()

    def volume_cc(self) -> float:
        """Volume in cm^3 from the mask (partial-volume weights summed)."""
        if self.mask is None:
            return 0.0
        return float(np.asarray(self.mask.array, dtype=float).sum() * self.mask.voxel_volume_mm3 / 1000.0)

    def centroid_mm(self) -> np.ndarray:
        """Mask-weighted centroid in LPS mm."""
        if self.mask is None:
            raise ValueError(f"structure {self.name!r} has no mask")
        w = np.asarray(self.mask.array, dtype=float)
        total = w.sum()
        if total <= 0:
            raise ValueError(f"structure {self.name!r} is empty")
        k, j, i = np.nonzero(w)
        ijk = np.stack([i, j, k], axis=1).astype(float)
        return (self.mask.to_world(ijk) * w[k, j, i][:, None]).sum(axis=0) / total


@dataclass(frozen=True)
class Beam:
    """One treatment beam (or a control point of an arc sampled as a beam)."""

    number: int
    name: str
    gantry_deg: float
    collimator_deg: float = 0.0
    couch_deg: float = 0.0
    isocentre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    energy_mv: float | None = None
    radiation_type: str = "PHOTON"
    monitor_units: float | None = None


@dataclass(frozen=True)
class Plan:
    """Geometry and prescription of a treatment plan."""

    label: str
    orientation: PatientOrientation
    beams: tuple[Beam, ...]
    prescription_gy: float | None = None
    fractions: int | None = None
    target_name: str | None = None

    @property
    def dose_per_fraction_gy(self) -> float | None:
        if self.prescription_gy is None or not self.fractions:
            return None
        return self.prescription_gy / self.fractions

    @property
    def isocentres_mm(self) -> tuple[tuple[float, float, float], ...]:
        """Distinct isocentres in beam order (LPS mm)."""
        seen: list[tuple[float, float, float]] = []
        for b in self.beams:
            iso = tuple(round(float(v), 4) for v in b.isocentre_mm)
            if iso not in seen:
                seen.append(iso)  # type: ignore[arg-type]
        return tuple(seen)

    @property
    def isocentre_mm(self) -> tuple[float, float, float] | None:
        """The first isocentre, or None for a plan without beams."""
        isos = self.isocentres_mm
        return isos[0] if isos else None


@dataclass(frozen=True, eq=False)
class PlanningReference:
    """Everything the plan gives image guidance, for one patient and frame of reference.

    Any part may be missing (archives export incomplete sets); ``missing``
    says in words what was not found and ``notes`` anything the loader
    noticed (skipped files, partial series).
    """

    patient_id: str
    patient_name: str = ""
    frame_of_reference_uid: str = ""
    study_uid: str = ""
    ct: Volume | None = None
    structures: dict[str, Structure] = field(default_factory=dict)
    plan: Plan | None = None
    dose: Volume | None = None
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def structure(self, name: str) -> Structure:
        """Structure by name, case-insensitive; KeyError lists what exists."""
        for key, s in self.structures.items():
            if key.lower() == name.lower():
                return s
        raise KeyError(f"no structure named {name!r}; available: {', '.join(self.structures) or 'none'}")
