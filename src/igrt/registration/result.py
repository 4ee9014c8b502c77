"""`RegistrationResult`: what a registration hands to couch correction and the records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from igrt.geometry import RigidTransform


@dataclass(frozen=True, eq=False)
class RegistrationResult:
    """Outcome of one registration.

    ``transform`` maps planning-image points (LPS mm) to daily-image points.
    Translations and rotations are reported about ``centre_mm`` (normally the
    plan isocentre) in the convention of `igrt.geometry.transform`.
    ``success`` is the quality verdict: a failed registration carries the
    reason in ``failure_reason`` and must never be turned into a shift.
    ``uncertainty_mm``/``uncertainty_deg`` are 1-SD estimates per axis
    (x, y, z) of the registration error.
    """

    transform: RigidTransform
    centre_mm: tuple[float, float, float]
    success: bool
    metric_name: str = ""
    metric_value: float = float("nan")
    converged: bool = False
    failure_reason: str | None = None
    uncertainty_mm: tuple[float, float, float] = (float("nan"),) * 3
    uncertainty_deg: tuple[float, float, float] = (float("nan"),) * 3
    mode: str = "rigid3d"
    iterations: int = 0
    elapsed_s: float = 0.0
    patient_id: str = ""
    planning_frame_uid: str = ""
    daily_frame_uid: str = ""
    details: dict = field(default_factory=dict)

    @property
    def translation_mm(self) -> np.ndarray:
        return self.transform.translation_mm(self.centre_mm)

    @property
    def rotation_deg(self) -> tuple[float, float, float]:
        return self.transform.rotation_deg()

    def to_dict(self) -> dict:
        """JSON-ready dict (schema documented in docs/registration.md)."""
        d = self.transform.to_dict(self.centre_mm)
        return {
            "schema": "igrt.registration/1",
            "success": bool(self.success),
            "failure_reason": self.failure_reason,
            "converged": bool(self.converged),
            "metric": {"name": self.metric_name, "value": float(self.metric_value)},
            "matrix_planning_to_daily": d["matrix"],
            "centre_mm": d["centre_mm"],
            "translation_mm": d["translation_mm"],
            "rotation_deg": d["rotation_deg"],
            "rotation_order": d["rotation_order"],
            "uncertainty_mm": [float(v) for v in self.uncertainty_mm],
            "uncertainty_deg": [float(v) for v in self.uncertainty_deg],
            "mode": self.mode,
            "iterations": int(self.iterations),
            "elapsed_s": float(self.elapsed_s),
            "patient_id": self.patient_id,
            "planning_frame_uid": self.planning_frame_uid,
            "daily_frame_uid": self.daily_frame_uid,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RegistrationResult":
        return cls(
            transform=RigidTransform(np.asarray(d["matrix_planning_to_daily"], dtype=float)),
            centre_mm=tuple(d["centre_mm"]),
            success=bool(d["success"]),
            metric_name=d.get("metric", {}).get("name", ""),
            metric_value=float(d.get("metric", {}).get("value", float("nan"))),
            converged=bool(d.get("converged", False)),
            failure_reason=d.get("failure_reason"),
            uncertainty_mm=tuple(d.get("uncertainty_mm", (float("nan"),) * 3)),
            uncertainty_deg=tuple(d.get("uncertainty_deg", (float("nan"),) * 3)),
            mode=d.get("mode", "rigid3d"),
            iterations=int(d.get("iterations", 0)),
            elapsed_s=float(d.get("elapsed_s", 0.0)),
            patient_id=d.get("patient_id", ""),
            planning_frame_uid=d.get("planning_frame_uid", ""),
            daily_frame_uid=d.get("daily_frame_uid", ""),
            details=d.get("details", {}),
        )
