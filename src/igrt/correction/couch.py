"""Couch corrections in the IEC 61217 patient support (table) frame.

Conventions (every sign is written out here and tested for all eight
patient orientations in ``tests/correction/test_couch.py``):

* A `RegistrationResult` transform ``T`` maps planning-image points ``p``
  (LPS mm) to daily-image points ``T(p)``: where the planned anatomy is today,
  in the room frame aligned so that the plan isocentre sits at the machine
  isocentre. ``T`` is reported about ``centre_mm`` (the plan isocentre).
* The couch correction is the rigid motion ``C`` of the couch top (with the
  patient on it) that undoes the error: ``C(T(p)) = p``, i.e. ``C = T^-1``.
  It is expressed in the IEC 61217 table frame at couch angle 0, whose
  origin is the machine isocentre: ``v_iec = M (v_lps - iso)`` with
  ``M = igrt.geometry.lps_to_iec_matrix(orientation)``.
* IEC table axes: X lateral, + toward the right of an observer standing at
  the foot of the couch facing the gantry; Y longitudinal, + toward the
  gantry; Z vertical, + up. A positive translation moves the couch top (and
  the patient) that way: ``lateral_mm > 0`` = couch to the right,
  ``longitudinal_mm > 0`` = couch toward the gantry, ``vertical_mm > 0`` =
  couch up.
* Rotations follow IEC 61217: positive is counter-clockwise looking from the
  positive end of the axis toward the origin (right-handed), about the
  machine isocentre: ``pitch_deg`` about X (+ lifts the gantry end of the
  couch), ``roll_deg`` about Y (+ lowers the right edge seen from the foot),
  ``yaw_deg`` about Z (+ counter-clockwise seen from above: the gantry end
  swings to the left seen from the foot). The couch rotation matrix is
  ``R_iec = Rz(yaw) @ Ry(roll) @ Rx(pitch)`` (pitch first, then roll, then
  yaw, all about the fixed table axes), and the whole move maps a table
  point ``v`` to ``R_iec v + t_iec``.

Example: an HFS patient whose anatomy is found 5 mm toward the patient's
left (+x LPS) today needs the couch moved 5 mm toward the patient's right:
IEC lateral -5 mm ("move couch 5.0 mm left").

4DOF couches (translations + yaw) cannot correct pitch and roll: the yaw is
the yaw of the full correction in the order above, and the translations are
chosen so the target centre returns exactly to its planned position (with
the PTV centroid as the target centre this is also the least-squares best
translation over the PTV points). The residual left at the isocentre and at
the farthest PTV point is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from igrt.correction.errors import CorrectionError
from igrt.geometry import PatientOrientation, RigidTransform, Volume, lps_to_iec_matrix, rotation_matrix
from igrt.geometry.transform import euler_angles_deg
from igrt.registration.result import RegistrationResult

# Moves smaller than these are shown as "no ... move" in words (numbers are kept).
_WORD_TOL_MM = 0.05
_WORD_TOL_DEG = 0.05

# Patient directions of the LPS half-axes, as the patient would name them.
_LPS_WORDS = {
    (0, 1): "left",
    (0, -1): "right",
    (1, 1): "back",
    (1, -1): "front",
    (2, 1): "head",
    (2, -1): "feet",
}


def _s(v: float, digits: int = 1) -> str:
    """Signed number without a negative zero."""
    return f"{round(float(v), digits) + 0.0:+.{digits}f}"


@dataclass(frozen=True)
class CouchModel:
    """What a couch can do: degrees of freedom and correction ranges.

    ``dof`` is 6 (translations + yaw, pitch, roll) or 4 (translations + yaw).
    ``max_translation_mm`` bounds |lateral|, |longitudinal|, |vertical| of one
    correction; the angle limits bound |yaw|, |pitch|, |roll| (pitch and roll
    only matter for 6DOF).
    """

    name: str = "6DOF couch"
    dof: int = 6
    max_translation_mm: tuple[float, float, float] = (50.0, 50.0, 50.0)
    max_yaw_deg: float = 5.0
    max_pitch_deg: float = 3.0
    max_roll_deg: float = 3.0

    def __post_init__(self) -> None:
        if self.dof not in (4, 6):
            raise CorrectionError(f"couch model {self.name!r}: dof must be 4 or 6, got {self.dof}")
        lim = tuple(float(v) for v in self.max_translation_mm)
        if len(lim) != 3 or min(lim) <= 0 or min(self.max_yaw_deg, self.max_pitch_deg, self.max_roll_deg) < 0:
            raise CorrectionError(f"couch model {self.name!r}: limits must be positive (mm, deg)")
        object.__setattr__(self, "max_translation_mm", lim)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "dof": self.dof,
            "max_translation_mm": list(self.max_translation_mm),
            "max_yaw_deg": self.max_yaw_deg,
            "max_pitch_deg": self.max_pitch_deg,
            "max_roll_deg": self.max_roll_deg,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CouchModel":
        return cls(
            name=d["name"],
            dof=int(d["dof"]),
            max_translation_mm=tuple(d["max_translation_mm"]),
            max_yaw_deg=float(d["max_yaw_deg"]),
            max_pitch_deg=float(d["max_pitch_deg"]),
            max_roll_deg=float(d["max_roll_deg"]),
        )


SIX_DOF = CouchModel("generic 6DOF couch", 6, (50.0, 50.0, 50.0), 5.0, 3.0, 3.0)
FOUR_DOF = CouchModel("generic 4DOF couch", 4, (50.0, 50.0, 50.0), 5.0, 0.0, 0.0)


def couch_model(value: "str | int | CouchModel") -> CouchModel:
    """A `CouchModel` from "6dof"/"4dof" (or 6/4, or a model, returned as is)."""
    if isinstance(value, CouchModel):
        return value
    key = str(value).strip().lower().replace(" ", "")
    if key in ("6dof", "6"):
        return SIX_DOF
    if key in ("4dof", "4"):
        return FOUR_DOF
    raise CorrectionError(f"unknown couch model {value!r}; use 6dof or 4dof")


def _patient_direction(orientation: PatientOrientation, iec_axis: int, sign: float) -> str:
    """Words for the patient direction the IEC axis (times sign) points to."""
    d = lps_to_iec_matrix(orientation)[iec_axis] * np.sign(sign)  # LPS components of that IEC unit vector
    k = int(np.argmax(np.abs(d)))
    return _LPS_WORDS[(k, int(np.sign(d[k])))]


@dataclass(frozen=True)
class CouchCorrection:
    """One couch move in the IEC 61217 table frame (see the module docstring for signs).

    ``residual_*_lps_mm`` are ``C(T(p)) - p`` in LPS mm: where a planned
    point ends up after the move, relative to where it should be (zero for
    an ideal 6DOF correction). ``requested_*`` keep the full 6DOF rotation
    the registration asked for, so a 4DOF report shows what was left out.
    """

    lateral_mm: float
    longitudinal_mm: float
    vertical_mm: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    orientation: str
    couch: CouchModel
    isocentre_mm: tuple[float, float, float]
    target_mm: tuple[float, float, float]
    requested_pitch_deg: float = 0.0
    requested_roll_deg: float = 0.0
    residual_target_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    residual_isocentre_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    residual_max_ptv_mm: float | None = None
    residual_max_ptv_point_mm: tuple[float, float, float] | None = None
    limit_violations: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def translation_iec_mm(self) -> np.ndarray:
        """(lateral, longitudinal, vertical) in mm."""
        return np.array([self.lateral_mm, self.longitudinal_mm, self.vertical_mm])

    @property
    def rotation_iec_deg(self) -> tuple[float, float, float]:
        """(pitch, roll, yaw) in degrees, about IEC X, Y, Z."""
        return (self.pitch_deg, self.roll_deg, self.yaw_deg)

    @property
    def within_limits(self) -> bool:
        return not self.limit_violations

    @property
    def residual_target_mm(self) -> float:
        return float(np.linalg.norm(self.residual_target_lps_mm))

    @property
    def residual_isocentre_mm(self) -> float:
        return float(np.linalg.norm(self.residual_isocentre_lps_mm))

    @property
    def translation_magnitude_mm(self) -> float:
        return float(np.linalg.norm(self.translation_iec_mm))

    @property
    def max_rotation_deg(self) -> float:
        """Largest |angle| the registration asks for (including pitch/roll a 4DOF couch cannot do)."""
        return float(max(abs(self.yaw_deg), abs(self.requested_pitch_deg), abs(self.requested_roll_deg)))

    def rotation_matrix_iec(self) -> np.ndarray:
        """``Rz(yaw) @ Ry(roll) @ Rx(pitch)`` about the IEC table axes."""
        return rotation_matrix(self.pitch_deg, self.roll_deg, self.yaw_deg)

    def as_lps_transform(self) -> RigidTransform:
        """The couch move as a room-frame rigid motion of LPS points (about the isocentre).

        Applying it to where the anatomy is today (``T(p)``) gives where it
        is after the move; ``p`` itself for an ideal 6DOF correction.
        """
        m = lps_to_iec_matrix(self.orientation)
        r_lps = m.T @ self.rotation_matrix_iec() @ m
        iso = np.asarray(self.isocentre_mm, dtype=float)
        mat = np.eye(4)
        mat[:3, :3] = r_lps
        mat[:3, 3] = iso - r_lps @ iso + m.T @ self.translation_iec_mm
        return RigidTransform(mat)

    def residual_after_mm(self, true_transform: RigidTransform, points_lps_mm) -> np.ndarray:
        """Where planned points end up after this move, minus where they belong (LPS mm).

        ``true_transform`` is the true planning->daily error (e.g. the phantom's
        truth); the result ``C(T_true(p)) - p`` is the error left at treatment.
        """
        p = np.asarray(points_lps_mm, dtype=float)
        return self.as_lps_transform().apply(true_transform.apply(p)) - p

    def words(self) -> list[str]:
        """The move in words a therapist reads at the console, one line per axis."""
        o = PatientOrientation.parse(self.orientation)
        out: list[str] = []
        lat, lng, vrt = self.lateral_mm, self.longitudinal_mm, self.vertical_mm
        if abs(lat) < _WORD_TOL_MM:
            out.append("no lateral move")
        else:
            side = "right" if lat > 0 else "left"
            out.append(
                f"move couch {abs(lat):.1f} mm {side} (seen from the couch foot facing the gantry): "
                f"patient moves toward their {_patient_direction(o, 0, lat)}"
            )
        if abs(lng) < _WORD_TOL_MM:
            out.append("no longitudinal move")
        else:
            where = "toward gantry" if lng > 0 else "away from gantry"
            out.append(f"move couch {abs(lng):.1f} mm {where}: patient moves toward their {_patient_direction(o, 1, lng)}")
        if abs(vrt) < _WORD_TOL_MM:
            out.append("no vertical move")
        else:
            verb = "raise" if vrt > 0 else "lower"
            out.append(f"{verb} couch {abs(vrt):.1f} mm: patient moves toward their {_patient_direction(o, 2, vrt)}")
        if abs(self.yaw_deg) < _WORD_TOL_DEG:
            out.append("no couch rotation")
        else:
            sense = "counter-clockwise" if self.yaw_deg > 0 else "clockwise"
            out.append(f"rotate couch {abs(self.yaw_deg):.1f}° {sense} seen from above")
        if self.couch.dof == 6:
            if abs(self.pitch_deg) < _WORD_TOL_DEG:
                out.append("no pitch")
            else:
                end = "up" if self.pitch_deg > 0 else "down"
                out.append(f"pitch couch {abs(self.pitch_deg):.1f}°: gantry end {end}")
            if abs(self.roll_deg) < _WORD_TOL_DEG:
                out.append("no roll")
            else:
                edge = "right" if self.roll_deg > 0 else "left"
                side = _patient_direction(o, 0, 1.0 if self.roll_deg > 0 else -1.0)
                out.append(
                    f"roll couch {abs(self.roll_deg):.1f}°: {edge} edge down seen from the couch foot "
                    f"(patient's {side} side down)"
                )
        else:
            if max(abs(self.requested_pitch_deg), abs(self.requested_roll_deg)) >= _WORD_TOL_DEG:
                msg = (
                    f"not corrected by this 4DOF couch: pitch {_s(self.requested_pitch_deg)}°, "
                    f"roll {_s(self.requested_roll_deg)}°"
                )
                if self.residual_max_ptv_mm is not None:
                    msg += f"; residual up to {self.residual_max_ptv_mm:.1f} mm at the farthest PTV point"
                out.append(msg)
        return out

    def summary(self) -> str:
        """One line of numbers with their IEC names and signs."""
        s = (
            f"IEC table: lat {_s(self.lateral_mm)} mm, lng {_s(self.longitudinal_mm)} mm, "
            f"vrt {_s(self.vertical_mm)} mm, yaw {_s(self.yaw_deg)}°"
        )
        if self.couch.dof == 6:
            s += f", pitch {_s(self.pitch_deg)}°, roll {_s(self.roll_deg)}°"
        return s

    def to_dict(self) -> dict:
        """JSON-ready dict (schema ``igrt.correction.couch/1``, see docs/correction.md)."""

        def vec(v):
            return None if v is None else [float(x) for x in v]

        return {
            "schema": "igrt.correction.couch/1",
            "frame": "IEC 61217 patient support, couch angle 0, origin at the machine isocentre",
            "lateral_mm": float(self.lateral_mm),
            "longitudinal_mm": float(self.longitudinal_mm),
            "vertical_mm": float(self.vertical_mm),
            "yaw_deg": float(self.yaw_deg),
            "pitch_deg": float(self.pitch_deg),
            "roll_deg": float(self.roll_deg),
            "rotation_order": "Rz(yaw) @ Ry(roll) @ Rx(pitch) about IEC table X, Y, Z",
            "orientation": self.orientation,
            "couch": self.couch.to_dict(),
            "isocentre_mm": vec(self.isocentre_mm),
            "target_mm": vec(self.target_mm),
            "requested_pitch_deg": float(self.requested_pitch_deg),
            "requested_roll_deg": float(self.requested_roll_deg),
            "residual_target_lps_mm": vec(self.residual_target_lps_mm),
            "residual_isocentre_lps_mm": vec(self.residual_isocentre_lps_mm),
            "residual_max_ptv_mm": None if self.residual_max_ptv_mm is None else float(self.residual_max_ptv_mm),
            "residual_max_ptv_point_mm": vec(self.residual_max_ptv_point_mm),
            "limit_violations": list(self.limit_violations),
            "notes": list(self.notes),
            "words": self.words(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CouchCorrection":
        def tup(v):
            return None if v is None else tuple(float(x) for x in v)

        return cls(
            lateral_mm=float(d["lateral_mm"]),
            longitudinal_mm=float(d["longitudinal_mm"]),
            vertical_mm=float(d["vertical_mm"]),
            yaw_deg=float(d["yaw_deg"]),
            pitch_deg=float(d["pitch_deg"]),
            roll_deg=float(d["roll_deg"]),
            orientation=d["orientation"],
            couch=CouchModel.from_dict(d["couch"]),
            isocentre_mm=tup(d["isocentre_mm"]),
            target_mm=tup(d["target_mm"]),
            requested_pitch_deg=float(d.get("requested_pitch_deg", 0.0)),
            requested_roll_deg=float(d.get("requested_roll_deg", 0.0)),
            residual_target_lps_mm=tup(d.get("residual_target_lps_mm", (0.0, 0.0, 0.0))),
            residual_isocentre_lps_mm=tup(d.get("residual_isocentre_lps_mm", (0.0, 0.0, 0.0))),
            residual_max_ptv_mm=d.get("residual_max_ptv_mm"),
            residual_max_ptv_point_mm=tup(d.get("residual_max_ptv_point_mm")),
            limit_violations=tuple(d.get("limit_violations", ())),
            notes=tuple(d.get("notes", ())),
        )


def ptv_points_from_mask(mask: Volume) -> np.ndarray:
    """LPS points (N, 3) in mm of the nonzero voxels of a mask Volume."""
    k, j, i = np.nonzero(np.asarray(mask.array))
    if k.size == 0:
        raise CorrectionError("the PTV mask is empty; give a non-empty PTV mask or PTV points")
    return mask.to_world(np.stack([i, j, k], axis=1).astype(float))


def _as_points(ptv) -> np.ndarray | None:
    if ptv is None:
        return None
    if isinstance(ptv, Volume):
        return ptv_points_from_mask(ptv)
    pts = np.asarray(ptv, dtype=float).reshape(-1, 3)
    if pts.shape[0] == 0 or not np.all(np.isfinite(pts)):
        raise CorrectionError("PTV points must be a non-empty (N, 3) array of finite LPS mm")
    return pts


def _limit_violations(c: CouchCorrection) -> tuple[str, ...]:
    out = []
    names = ("lateral", "longitudinal", "vertical")
    for name, v, lim in zip(names, c.translation_iec_mm, c.couch.max_translation_mm):
        if abs(v) > lim:
            out.append(f"{name} {v:+.1f} mm exceeds the couch range of ±{lim:.1f} mm")
    if abs(c.yaw_deg) > c.couch.max_yaw_deg:
        out.append(f"yaw {c.yaw_deg:+.2f}° exceeds the couch range of ±{c.couch.max_yaw_deg:.1f}°")
    if c.couch.dof == 6:
        if abs(c.pitch_deg) > c.couch.max_pitch_deg:
            out.append(f"pitch {c.pitch_deg:+.2f}° exceeds the couch range of ±{c.couch.max_pitch_deg:.1f}°")
        if abs(c.roll_deg) > c.couch.max_roll_deg:
            out.append(f"roll {c.roll_deg:+.2f}° exceeds the couch range of ±{c.couch.max_roll_deg:.1f}°")
    return tuple(out)


def compute_couch_correction(
    registration: "RegistrationResult | RigidTransform",
    orientation: "str | PatientOrientation",
    couch: "CouchModel | str" = SIX_DOF,
    *,
    isocentre_mm=None,
    target_mm=None,
    ptv=None,
) -> CouchCorrection:
    """The couch move that undoes a registration, for one patient orientation.

    registration: a successful `RegistrationResult` (or a bare planning->daily
    `RigidTransform`). isocentre_mm: machine isocentre in planning LPS mm,
    default ``registration.centre_mm`` (the plan isocentre). target_mm: the
    point a 4DOF correction brings back exactly; default the PTV centroid if
    ``ptv`` is given, else the isocentre. ptv: PTV points (N, 3) LPS mm or a
    PTV mask Volume, for the residual at the farthest PTV point.
    Raises `CorrectionError` for a failed registration: it must never become a shift.
    """
    orient = PatientOrientation.parse(orientation)
    model = couch_model(couch)
    if isinstance(registration, RegistrationResult):
        if not registration.success:
            reason = registration.failure_reason or "no reason given"
            raise CorrectionError(f"registration failed ({reason}); no couch correction computed - re-image or register again")
        t = registration.transform
        iso = np.asarray(registration.centre_mm if isocentre_mm is None else isocentre_mm, dtype=float)
    elif isinstance(registration, RigidTransform):
        t = registration
        if isocentre_mm is None:
            raise CorrectionError("a bare transform needs isocentre_mm (the plan isocentre, LPS mm)")
        iso = np.asarray(isocentre_mm, dtype=float)
    else:
        raise CorrectionError(f"expected a RegistrationResult or RigidTransform, got {type(registration).__name__}")

    pts = _as_points(ptv)
    if target_mm is not None:
        target = np.asarray(target_mm, dtype=float)
    elif pts is not None:
        target = pts.mean(axis=0)
    else:
        target = iso.copy()

    m = lps_to_iec_matrix(orient)
    # Ideal correction C = T^-1, as a table-frame motion about the isocentre.
    ideal = t.inverse()
    r_iec_full = m @ ideal.rotation @ m.T
    pitch, roll, yaw = euler_angles_deg(r_iec_full)

    if model.dof == 6:
        r_iec = r_iec_full
        applied = (pitch, roll, yaw)
    else:
        applied = (0.0, 0.0, yaw)
        r_iec = rotation_matrix(*applied)
    # Translation that brings the target back exactly: t = b - R a (IEC, about the isocentre).
    a = m @ (t.apply(target) - iso)
    b = m @ (target - iso)
    trans = b - r_iec @ a

    corr = CouchCorrection(
        lateral_mm=float(trans[0]),
        longitudinal_mm=float(trans[1]),
        vertical_mm=float(trans[2]),
        yaw_deg=float(applied[2]),
        pitch_deg=float(applied[0]),
        roll_deg=float(applied[1]),
        orientation=orient.value,
        couch=model,
        isocentre_mm=tuple(float(v) for v in iso),
        target_mm=tuple(float(v) for v in target),
        requested_pitch_deg=float(pitch),
        requested_roll_deg=float(roll),
    )
    move = corr.as_lps_transform()

    def residual(p):
        return move.apply(t.apply(p)) - p

    res_target = residual(target)
    res_iso = residual(iso)
    max_mm = None
    max_pt = None
    if pts is not None:
        r = np.linalg.norm(residual(pts), axis=1)
        idx = int(np.argmax(r))
        max_mm, max_pt = float(r[idx]), tuple(float(v) for v in pts[idx])
    notes = []
    if model.dof == 4 and max(abs(pitch), abs(roll)) >= _WORD_TOL_DEG:
        notes.append(
            f"4DOF couch: pitch {pitch:+.2f}° and roll {roll:+.2f}° are not corrected; "
            "translations bring the target centre back"
        )
    corr = replace(
        corr,
        residual_target_lps_mm=tuple(float(v) for v in res_target),
        residual_isocentre_lps_mm=tuple(float(v) for v in res_iso),
        residual_max_ptv_mm=max_mm,
        residual_max_ptv_point_mm=max_pt,
        notes=tuple(notes),
    )
    return replace(corr, limit_violations=_limit_violations(corr))


def couch_correction_from_shift(
    shift_lps_mm,
    orientation: "str | PatientOrientation",
    isocentre_mm=(0.0, 0.0, 0.0),
    couch: "CouchModel | str" = SIX_DOF,
) -> CouchCorrection:
    """The couch move for a protocol correction: a pure shift of the patient in LPS mm.

    ``shift_lps_mm`` is the displacement to give the patient (as returned by
    `igrt.correction.protocols`: minus the estimated systematic error), so the
    couch translation is ``M @ shift`` in IEC. Example: HFS, shift (-2, 0, 0)
    (toward the patient's right) -> lateral -2 mm, "move couch 2.0 mm left".
    """
    shift = np.asarray(shift_lps_mm, dtype=float)
    if shift.shape != (3,) or not np.all(np.isfinite(shift)):
        raise CorrectionError(f"a shift must be 3 finite LPS mm values, got {shift_lps_mm!r}")
    error = RigidTransform.from_params(-shift)  # the error that this shift undoes
    return compute_couch_correction(error, orientation, couch, isocentre_mm=isocentre_mm)
