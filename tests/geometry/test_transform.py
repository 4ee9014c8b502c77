"""Transform algebra: hand-worked cases plus property-based checks (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igrt.errors import GeometryError
from igrt.geometry import RigidTransform, rotation_matrix
from igrt.geometry.transform import euler_angles_deg

angle = st.floats(-89.0, 89.0, allow_nan=False)
small_angle = st.floats(-30.0, 30.0, allow_nan=False)
mm = st.floats(-200.0, 200.0, allow_nan=False)
vec = st.tuples(mm, mm, mm)


def test_rotation_about_z_by_90_maps_x_to_y():
    # Right-handed: +90 deg about z takes the x axis (patient left) to y (posterior).
    np.testing.assert_allclose(rotation_matrix(0, 0, 90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_rotation_order_is_x_then_y_then_z():
    # Rotating x-axis by 90 about x leaves it; then 90 about z gives +y.
    r = rotation_matrix(90, 0, 90)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # y axis: about x 90 -> +z; about z, +z stays.
    np.testing.assert_allclose(r @ [0, 1, 0], [0, 0, 1], atol=1e-12)


def test_rotation_about_centre_keeps_centre_fixed_and_adds_translation():
    t = RigidTransform.from_params((1.0, -2.0, 3.0), (0, 0, 90), centre_mm=(10.0, 0.0, 0.0))
    np.testing.assert_allclose(t.apply([10.0, 0.0, 0.0]), [11.0, -2.0, 3.0], atol=1e-12)
    # A point 1 mm left of the centre swings to 1 mm posterior of it.
    np.testing.assert_allclose(t.apply([11.0, 0.0, 0.0]), [11.0, -1.0, 3.0], atol=1e-12)


def test_invalid_matrix_is_refused():
    m = np.eye(4)
    m[0, 0] = -1  # a reflection is not a rigid motion
    with pytest.raises(GeometryError):
        RigidTransform(m)


@settings(max_examples=200, deadline=None)
@given(st.tuples(angle, angle, angle))
def test_euler_round_trip(angles):
    back = euler_angles_deg(rotation_matrix(*angles))
    np.testing.assert_allclose(rotation_matrix(*back), rotation_matrix(*angles), atol=1e-9)
    np.testing.assert_allclose(back, angles, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(vec, st.tuples(small_angle, small_angle, small_angle), vec, vec)
def test_params_round_trip_and_inverse(t, r, c, p):
    tr = RigidTransform.from_params(t, r, c)
    t2, r2 = tr.params(c)
    np.testing.assert_allclose(t2, t, atol=1e-8)
    np.testing.assert_allclose(r2, r, atol=1e-8)
    np.testing.assert_allclose(tr.inverse().apply(tr.apply(p)), p, atol=1e-8)
    assert tr.compose(tr.inverse()).is_close(RigidTransform.identity(), tol_mm=1e-8, tol_deg=1e-6)


@settings(max_examples=100, deadline=None)
@given(vec, st.tuples(small_angle, small_angle, small_angle), vec, st.tuples(small_angle, small_angle, small_angle), vec)
def test_composition_applies_right_first(t1, r1, t2, r2, p):
    a = RigidTransform.from_params(t1, r1)
    b = RigidTransform.from_params(t2, r2)
    np.testing.assert_allclose((a @ b).apply(p), a.apply(b.apply(p)), atol=1e-8)
    np.testing.assert_allclose((a @ b).inverse().apply(p), b.inverse().apply(a.inverse().apply(p)), atol=1e-8)


def test_dict_round_trip():
    tr = RigidTransform.from_params((1, 2, 3), (1, -2, 3), (4, 5, 6))
    d = tr.to_dict((4, 5, 6))
    assert RigidTransform.from_dict(d).is_close(tr)
    np.testing.assert_allclose(d["translation_mm"], [1, 2, 3], atol=1e-12)
