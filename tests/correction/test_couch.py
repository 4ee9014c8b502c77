"""Couch corrections: hand-worked examples for every patient orientation.

The expected values below are worked out by hand from the orientation
definitions (written out in `_IEC_AXES`), not computed with igrt, and the
"physical" couch move is rebuilt here from the six IEC numbers with this
file's own rotation matrices, so the test is independent of the code under
test.
"""

from __future__ import annotations

import numpy as np
import pytest

from igrt.correction.couch import (
    FOUR_DOF,
    SIX_DOF,
    CouchCorrection,
    CouchModel,
    compute_couch_correction,
    couch_model,
)
from igrt.correction.errors import CorrectionError
from igrt.geometry import RigidTransform, Volume, resample
from igrt.registration.result import RegistrationResult

ISO = np.array([12.0, -30.0, 45.0])  # plan isocentre, LPS mm (deliberately off the origin)

# Where each IEC table axis points in LPS for each orientation (worked out from
# how the patient lies: e.g. HFS: couch right (+X) = patient's left (+x),
# toward gantry (+Y) = superior (+z), up (+Z) = anterior (-y)).
_IEC_AXES = {
    #        +X (lateral)  +Y (longitudinal)  +Z (vertical)
    "HFS": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "HFP": ((-1, 0, 0), (0, 0, 1), (0, 1, 0)),
    "FFS": ((-1, 0, 0), (0, 0, -1), (0, -1, 0)),
    "FFP": ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
    "HFDL": ((0, -1, 0), (0, 0, 1), (-1, 0, 0)),
    "HFDR": ((0, 1, 0), (0, 0, 1), (1, 0, 0)),
    "FFDL": ((0, 1, 0), (0, 0, -1), (-1, 0, 0)),
    "FFDR": ((0, -1, 0), (0, 0, -1), (1, 0, 0)),
}
ORIENTATIONS = list(_IEC_AXES)


def _rx(a):
    c, s = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def physical_couch_move(c: CouchCorrection, orientation: str, points_lps: np.ndarray) -> np.ndarray:
    """Move LPS points the way the couch does, from the six IEC numbers alone."""
    m = np.array(_IEC_AXES[orientation], dtype=float)  # rows: IEC axes in LPS
    v = (points_lps - ISO) @ m.T  # table coordinates about the isocentre
    r = _rz(c.yaw_deg) @ _ry(c.roll_deg) @ _rx(c.pitch_deg)  # IEC: pitch, then roll, then yaw
    v = v @ r.T + np.array([c.lateral_mm, c.longitudinal_mm, c.vertical_mm])
    return v @ m + ISO


def _registration(t_mm, r_deg, patient_id="P1"):
    return RegistrationResult(
        transform=RigidTransform.from_params(t_mm, r_deg, ISO),
        centre_mm=tuple(ISO),
        success=True,
        converged=True,
        uncertainty_mm=(0.2, 0.2, 0.2),
        uncertainty_deg=(0.1, 0.1, 0.1),
        patient_id=patient_id,
    )


# Error: anatomy found 5 mm to the patient's left (+x), 3 mm anterior (-y), 2 mm
# superior (+z). The patient must go 5 mm right, 3 mm posterior, 2 mm inferior:
# LPS (-5, +3, -2), expressed on each orientation's table axes by hand.
TRANSLATION_CASES = {
    #       lat   lng   vrt
    "HFS": (-5.0, -2.0, -3.0),  # right = couch left; inferior = away from gantry; posterior = down
    "HFP": (+5.0, -2.0, +3.0),  # prone: patient's right is couch right; posterior is up
    "FFS": (+5.0, +2.0, -3.0),  # feet first: inferior = toward gantry
    "FFP": (-5.0, +2.0, +3.0),
    "HFDL": (-3.0, -2.0, +5.0),  # left side down: patient's right is up; posterior is couch left
    "HFDR": (+3.0, -2.0, -5.0),  # right side down: patient's right is down; posterior is couch right
    "FFDL": (+3.0, +2.0, +5.0),
    "FFDR": (-3.0, +2.0, -5.0),
}

TRANSLATION_WORDS = {
    "HFS": ["move couch 5.0 mm left", "move couch 2.0 mm away from gantry", "lower couch 3.0 mm"],
    "HFP": ["move couch 5.0 mm right", "move couch 2.0 mm away from gantry", "raise couch 3.0 mm"],
    "FFS": ["move couch 5.0 mm right", "move couch 2.0 mm toward gantry", "lower couch 3.0 mm"],
    "FFP": ["move couch 5.0 mm left", "move couch 2.0 mm toward gantry", "raise couch 3.0 mm"],
    "HFDL": ["move couch 3.0 mm left", "move couch 2.0 mm away from gantry", "raise couch 5.0 mm"],
    "HFDR": ["move couch 3.0 mm right", "move couch 2.0 mm away from gantry", "lower couch 5.0 mm"],
    "FFDL": ["move couch 3.0 mm right", "move couch 2.0 mm toward gantry", "raise couch 5.0 mm"],
    "FFDR": ["move couch 3.0 mm left", "move couch 2.0 mm toward gantry", "lower couch 5.0 mm"],
}
# What the patient feels for those moves (lateral, longitudinal, vertical).
PATIENT_WORDS = {
    "HFS": ("their right", "their feet", "their back"),
    "HFP": ("their right", "their feet", "their back"),
    "FFS": ("their right", "their feet", "their back"),
    "FFP": ("their right", "their feet", "their back"),
    "HFDL": ("their back", "their feet", "their right"),
    "HFDR": ("their back", "their feet", "their right"),
    "FFDL": ("their back", "their feet", "their right"),
    "FFDR": ("their back", "their feet", "their right"),
}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_translation_hand_worked(orientation):
    reg = _registration((5.0, -3.0, 2.0), (0.0, 0.0, 0.0))
    c = compute_couch_correction(reg, orientation, "6dof")
    assert (c.lateral_mm, c.longitudinal_mm, c.vertical_mm) == pytest.approx(TRANSLATION_CASES[orientation], abs=1e-9)
    assert (c.yaw_deg, c.pitch_deg, c.roll_deg) == pytest.approx((0, 0, 0), abs=1e-9)
    words = c.words()
    for line, expected, patient in zip(words[:3], TRANSLATION_WORDS[orientation], PATIENT_WORDS[orientation]):
        assert line.startswith(expected), (line, expected)
        assert line.endswith(patient), (line, patient)
    assert words[3] == "no couch rotation"
    assert c.within_limits


def test_hfs_example_from_the_brief():
    # Anatomy 5 mm toward the patient's left today -> couch moves the patient 5 mm
    # toward their right: IEC lateral -5 mm, "move couch 5.0 mm left".
    c = compute_couch_correction(_registration((5.0, 0.0, 0.0), (0, 0, 0)), "HFS")
    assert c.lateral_mm == pytest.approx(-5.0)
    assert c.words()[0] == (
        "move couch 5.0 mm left (seen from the couch foot facing the gantry): patient moves toward their right"
    )
    assert c.words()[1:3] == ["no longitudinal move", "no vertical move"]


# Rotation errors of +2 deg (right-handed) about one LPS axis. The correction is
# -2 deg about that axis; on the table it becomes +-2 deg about the IEC axis the
# LPS axis lies on (sign flips when the LPS axis points along the negative IEC axis).
#                 error about LPS x         LPS y              LPS z
ROTATION_CASES = {
    "HFS": (("pitch", -2.0), ("yaw", +2.0), ("roll", -2.0)),  # x=+X, y=-Z, z=+Y
    "HFP": (("pitch", +2.0), ("yaw", -2.0), ("roll", -2.0)),  # x=-X, y=+Z, z=+Y
    "FFS": (("pitch", +2.0), ("yaw", +2.0), ("roll", +2.0)),  # x=-X, y=-Z, z=-Y
    "FFP": (("pitch", -2.0), ("yaw", -2.0), ("roll", +2.0)),  # x=+X, y=+Z, z=-Y
    "HFDL": (("yaw", +2.0), ("pitch", +2.0), ("roll", -2.0)),  # x=-Z, y=-X, z=+Y
    "HFDR": (("yaw", -2.0), ("pitch", -2.0), ("roll", -2.0)),  # x=+Z, y=+X, z=+Y
    "FFDL": (("yaw", +2.0), ("pitch", -2.0), ("roll", +2.0)),  # x=-Z, y=+X, z=-Y
    "FFDR": (("yaw", -2.0), ("pitch", +2.0), ("roll", +2.0)),  # x=+Z, y=-X, z=-Y
}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_single_axis_rotation_hand_worked(orientation, axis):
    rot = [0.0, 0.0, 0.0]
    rot[axis] = 2.0
    c = compute_couch_correction(_registration((0, 0, 0), rot), orientation, "6dof")
    name, value = ROTATION_CASES[orientation][axis]
    got = {"pitch": c.pitch_deg, "roll": c.roll_deg, "yaw": c.yaw_deg}
    assert got[name] == pytest.approx(value, abs=1e-9)
    assert sum(abs(v) for k, v in got.items() if k != name) == pytest.approx(0.0, abs=1e-9)
    # Rotation about the isocentre: no translation needed.
    assert np.allclose(c.translation_iec_mm, 0.0, atol=1e-9)


def test_rotation_words_signs():
    # HFS, anatomy rotated +2 deg about LPS y (posterior axis = down): clockwise seen
    # from above, so the couch turns counter-clockwise seen from above (yaw +2).
    c = compute_couch_correction(_registration((0, 0, 0), (0, 2.0, 0)), "HFS")
    assert "rotate couch 2.0° counter-clockwise seen from above" in c.words()
    # HFS, +2 deg about LPS x: R_x turns +z (head = gantry end) toward -y
    # (anterior = up for HFS), so the gantry end has risen; the fix is pitch -2:
    # gantry end down.
    c = compute_couch_correction(_registration((0, 0, 0), (2.0, 0, 0)), "HFS")
    assert "pitch couch 2.0°: gantry end down" in c.words()
    # HFS, +2 deg about LPS z: R_z turns +x (patient left, couch right) toward +y
    # (posterior, down), so the fix lifts the right edge: roll -2, left edge down
    # seen from the foot = the patient's right side down.
    c = compute_couch_correction(_registration((0, 0, 0), (0, 0, 2.0)), "HFS")
    assert "roll couch 2.0°: left edge down seen from the couch foot (patient's right side down)" in c.words()
    # HFP: same error about LPS z gives roll -2 too, but the couch's left edge is
    # now the patient's left side.
    c = compute_couch_correction(_registration((0, 0, 0), (0, 0, 2.0)), "HFP")
    assert "roll couch 2.0°: left edge down seen from the couch foot (patient's left side down)" in c.words()


def test_rotation_and_translation_hand_worked_hfs():
    # HFS, anatomy rotated +3 deg about LPS z (about the isocentre) and shifted
    # (4, 0, 0) mm. T(p) = R (p - iso) + iso + t, so C = T^-1 has translation
    # -R^T t = -(4 cos3, -4 sin3, 0) = (-3.994518, +0.209344, 0) in LPS
    # (cos 3 deg = 0.9986295, sin 3 deg = 0.0523360). HFS table axes: lat = x,
    # lng = z, vrt = -y -> lat -3.994518, lng 0, vrt -0.209344; roll -3 deg.
    c = compute_couch_correction(_registration((4.0, 0, 0), (0, 0, 3.0)), "HFS", CouchModel("wide", 6, (50, 50, 50), 5, 5, 5))
    assert c.lateral_mm == pytest.approx(-3.994518, abs=1e-6)
    assert c.longitudinal_mm == pytest.approx(0.0, abs=1e-9)
    assert c.vertical_mm == pytest.approx(-0.209344, abs=1e-6)
    assert c.roll_deg == pytest.approx(-3.0, abs=1e-9)


COMBINED = [((4.0, -7.5, 3.2), (1.5, -2.0, 2.5)), ((-12.0, 3.0, -6.0), (-2.5, 1.0, -1.8)), ((0.3, 0.1, -0.4), (0.4, 0.2, -0.3))]


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("case", range(len(COMBINED)))
def test_6dof_brings_every_point_back(orientation, case):
    t_mm, r_deg = COMBINED[case]
    reg = _registration(t_mm, r_deg)
    rng = np.random.default_rng(case)
    ptv = ISO + np.array([20.0, -10.0, 35.0]) + rng.normal(0, 15, (200, 3))
    c = compute_couch_correction(reg, orientation, SIX_DOF, ptv=ptv)
    today = reg.transform.apply(ptv)  # where the planned PTV is today
    moved = physical_couch_move(c, orientation, today)
    assert np.abs(moved - ptv).max() < 0.01
    target = ptv.mean(axis=0)
    assert np.linalg.norm(physical_couch_move(c, orientation, reg.transform.apply(target[None]))[0] - target) < 0.01
    assert c.residual_max_ptv_mm < 1e-9 and c.residual_target_mm < 1e-9
    # The library's own LPS form of the move agrees with the physical one.
    assert np.allclose(c.as_lps_transform().apply(today), moved, atol=1e-9)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("case", range(len(COMBINED)))
def test_4dof_target_back_and_residual_as_reported(orientation, case):
    t_mm, r_deg = COMBINED[case]
    reg = _registration(t_mm, r_deg)
    rng = np.random.default_rng(10 + case)
    ptv = ISO + np.array([-15.0, 25.0, -20.0]) + rng.normal(0, 12, (300, 3))
    c = compute_couch_correction(reg, orientation, FOUR_DOF, ptv=ptv)
    assert c.pitch_deg == 0.0 and c.roll_deg == 0.0
    full = compute_couch_correction(reg, orientation, SIX_DOF)
    assert c.yaw_deg == pytest.approx(full.yaw_deg)
    assert (c.requested_pitch_deg, c.requested_roll_deg) == pytest.approx((full.pitch_deg, full.roll_deg))
    target = ptv.mean(axis=0)
    moved = physical_couch_move(c, orientation, reg.transform.apply(ptv))
    moved_target = physical_couch_move(c, orientation, reg.transform.apply(target[None]))[0]
    assert np.linalg.norm(moved_target - target) < 0.01
    res = np.linalg.norm(moved - ptv, axis=1)
    assert c.residual_max_ptv_mm == pytest.approx(res.max(), abs=0.01)
    assert np.allclose(c.residual_max_ptv_point_mm, ptv[np.argmax(res)])
    moved_iso = physical_couch_move(c, orientation, reg.transform.apply(ISO[None]))[0]
    assert np.allclose(c.residual_isocentre_lps_mm, moved_iso - ISO, atol=0.01)
    # Least squares: the PTV centroid target gives the smallest mean-square residual.
    for d in np.eye(3) * 0.2:
        assert (np.linalg.norm(moved + d - ptv, axis=1) ** 2).mean() > (res**2).mean()


def test_4dof_hand_worked_pitch_hfs():
    # HFS, anatomy tilted +2 deg about LPS x (about the isocentre), target centre
    # 20 mm superior of the isocentre, PTV = 6 points 15 mm from the target on
    # each axis. T(target) - iso = (0, -20 sin2, 20 cos2) = (0, -0.697990, 19.987817)
    # (sin 2 deg = 0.0348995, cos 2 deg = 0.9993908). A 4DOF couch cannot pitch,
    # so it translates by target - T(target) = (0, +0.697990, +0.012183) LPS:
    # lat 0, lng +0.012183 (z), vrt -0.697990 (-y): lower the couch 0.7 mm.
    # Residual at a PTV point target + d is (Rx - I) d; for |d| = 15 mm
    # perpendicular to x its length is 2 sin(1 deg) 15 = 0.523572 mm.
    # The isocentre keeps the whole translation: (0, 0.697990, 0.012183).
    reg = _registration((0, 0, 0), (2.0, 0, 0))
    target = ISO + np.array([0, 0, 20.0])
    ptv = target + np.array([[15, 0, 0], [-15, 0, 0], [0, 15, 0], [0, -15, 0], [0, 0, 15], [0, 0, -15.0]])
    c = compute_couch_correction(reg, "HFS", "4dof", ptv=ptv)
    assert c.lateral_mm == pytest.approx(0.0, abs=1e-9)
    assert c.longitudinal_mm == pytest.approx(0.012183, abs=1e-6)
    assert c.vertical_mm == pytest.approx(-0.697990, abs=1e-6)
    assert c.yaw_deg == pytest.approx(0.0, abs=1e-9)
    assert c.requested_pitch_deg == pytest.approx(-2.0)
    assert c.residual_target_mm == pytest.approx(0.0, abs=1e-9)
    assert c.residual_max_ptv_mm == pytest.approx(0.523572, abs=1e-6)
    assert c.residual_isocentre_lps_mm == pytest.approx((0.0, 0.697990, 0.012183), abs=1e-6)
    words = c.words()
    assert "lower couch 0.7 mm: patient moves toward their back" in words
    assert words[-1] == (
        "not corrected by this 4DOF couch: pitch -2.0°, roll +0.0°; residual up to 0.5 mm at the farthest PTV point"
    )


def test_limits_reported():
    reg = _registration((60.0, 0, 0), (0, 0, 4.0))  # 60 mm lateral, 4 deg about z (roll for HFS)
    c = compute_couch_correction(reg, "HFS", "6dof")
    assert not c.within_limits
    text = " | ".join(c.limit_violations)
    assert "lateral" in text and "roll -4.00° exceeds the couch range of ±3.0°" in text
    c4 = compute_couch_correction(_registration((0, 0, 0), (0, 0, 4.0)), "HFS", "4dof")
    assert c4.within_limits  # a 4DOF couch does not try to roll; the residual is reported instead


def test_failed_registration_is_never_a_shift():
    reg = RegistrationResult(RigidTransform.from_params((3, 0, 0)), tuple(ISO), success=False, failure_reason="no overlap")
    with pytest.raises(CorrectionError, match="no overlap"):
        compute_couch_correction(reg, "HFS")


def test_bad_inputs():
    reg = _registration((1, 0, 0), (0, 0, 0))
    with pytest.raises(Exception, match="unknown patient orientation"):
        compute_couch_correction(reg, "SITTING")
    with pytest.raises(CorrectionError, match="unknown couch model"):
        couch_model("5dof")
    with pytest.raises(CorrectionError, match="PTV"):
        compute_couch_correction(reg, "HFS", ptv=np.zeros((0, 3)))
    with pytest.raises(CorrectionError, match="isocentre_mm"):
        compute_couch_correction(reg.transform, "HFS")


@pytest.mark.parametrize("orientation", ["HFS", "FFDR"])
def test_round_trip_dict(orientation):
    c = compute_couch_correction(_registration((3, -1, 2), (1, 0.5, -1)), orientation, "4dof", ptv=ISO + np.eye(3) * 10)
    d = c.to_dict()
    c2 = CouchCorrection.from_dict(d)
    assert c2.to_dict() == d
    assert c2.words() == c.words()


def test_applied_to_a_phantom_volume():
    # A ball phantom 8 mm off the isocentre, moved by a 6DOF error and then by the
    # couch correction (both as image resampling): its centroid returns to plan.
    n = 40
    origin = tuple(ISO - 20.0)
    z, y, x = np.mgrid[0:n, 0:n, 0:n].astype(float)
    centre_idx = np.array([24.0, 20.0, 16.0])  # x, y, z index
    ball = ((x - centre_idx[0]) ** 2 + (y - centre_idx[1]) ** 2 + (z - centre_idx[2]) ** 2 <= 36).astype(np.float32)
    planning = Volume(ball, origin=origin, spacing=(1.0, 1.0, 1.0))
    reg = _registration((3.0, -2.0, 1.5), (1.0, -1.5, 2.0))
    c = compute_couch_correction(reg, "FFS", "6dof")
    # Daily image: intensity at q is the planning intensity at T^-1(q).
    daily = resample(planning, planning, reg.transform.inverse())
    corrected = resample(daily, planning, c.as_lps_transform().inverse())

    def centroid(v):
        w = np.asarray(v.array, dtype=float)
        kk, jj, ii = np.nonzero(w > 0)
        pts = v.to_world(np.stack([ii, jj, kk], 1).astype(float))
        return (pts * w[kk, jj, ii, None]).sum(0) / w[kk, jj, ii].sum()

    planned = centroid(planning)
    assert np.linalg.norm(centroid(daily) - reg.transform.apply(planned)) < 0.1
    assert np.linalg.norm(centroid(corrected) - planned) < 0.1


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_protocol_shift_to_couch(orientation):
    # A protocol asks to shift the patient by (-5, +3, -2) mm LPS: the same move as
    # undoing the error (5, -3, 2) of TRANSLATION_CASES.
    from igrt.correction import couch_correction_from_shift

    c = couch_correction_from_shift([-5.0, 3.0, -2.0], orientation, ISO)
    assert (c.lateral_mm, c.longitudinal_mm, c.vertical_mm) == pytest.approx(TRANSLATION_CASES[orientation], abs=1e-9)
    with pytest.raises(CorrectionError, match="3 finite"):
        couch_correction_from_shift([1.0, np.nan, 0.0], orientation)


def test_residual_after_true_error():
    # Measured error (2, 0, 0) mm, true error (2.3, -0.4, 0) mm (HFS): after the move
    # the target is off by the measurement error, (0.3, -0.4, 0) mm.
    measured = _registration((2.0, 0.0, 0.0), (0, 0, 0))
    c = compute_couch_correction(measured, "HFS")
    true = RigidTransform.from_params((2.3, -0.4, 0.0), (0, 0, 0), ISO)
    assert c.residual_after_mm(true, ISO) == pytest.approx([0.3, -0.4, 0.0], abs=1e-9)
