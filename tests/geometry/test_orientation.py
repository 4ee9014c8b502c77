"""LPS <-> IEC 61217 table frame for every patient orientation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igrt.errors import GeometryError
from igrt.geometry import PatientOrientation, iec_to_lps, lps_to_iec, lps_to_iec_matrix

# Hand-worked: where do the patient's left (+x), posterior (+y) and superior (+z)
# point in the IEC table frame (X lateral, Y toward gantry, Z up)?
EXPECTED = {
    # supine, head to gantry: left is +X (observer at the foot sees the patient's left on their right)
    "HFS": {"L": (1, 0, 0), "P": (0, 0, -1), "S": (0, 1, 0)},
    "HFP": {"L": (-1, 0, 0), "P": (0, 0, 1), "S": (0, 1, 0)},
    "FFS": {"L": (-1, 0, 0), "P": (0, 0, -1), "S": (0, -1, 0)},
    "FFP": {"L": (1, 0, 0), "P": (0, 0, 1), "S": (0, -1, 0)},
    # decubitus left: lying on the left side, so the patient's left points down
    "HFDL": {"L": (0, 0, -1), "P": (-1, 0, 0), "S": (0, 1, 0)},
    "HFDR": {"L": (0, 0, 1), "P": (1, 0, 0), "S": (0, 1, 0)},
    "FFDL": {"L": (0, 0, -1), "P": (1, 0, 0), "S": (0, -1, 0)},
    "FFDR": {"L": (0, 0, 1), "P": (-1, 0, 0), "S": (0, -1, 0)},
}


@pytest.mark.parametrize("code", list(EXPECTED))
def test_axes_by_hand(code):
    exp = EXPECTED[code]
    np.testing.assert_array_equal(lps_to_iec([1, 0, 0], code), exp["L"])
    np.testing.assert_array_equal(lps_to_iec([0, 1, 0], code), exp["P"])
    np.testing.assert_array_equal(lps_to_iec([0, 0, 1], code), exp["S"])


@pytest.mark.parametrize("o", list(PatientOrientation))
def test_proper_rotation(o):
    m = lps_to_iec_matrix(o)
    np.testing.assert_allclose(m @ m.T, np.eye(3))
    assert np.linalg.det(m) == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(PatientOrientation)),
    st.tuples(*[st.floats(-500, 500, allow_nan=False)] * 3),
)
def test_round_trip_every_orientation(o, v):
    np.testing.assert_allclose(iec_to_lps(lps_to_iec(v, o), o), v, atol=1e-9)


def test_unknown_orientation_is_a_clear_error():
    with pytest.raises(GeometryError, match="unknown patient orientation 'SITTING'"):
        lps_to_iec_matrix("SITTING")


def test_parse_is_case_insensitive():
    assert PatientOrientation.parse(" hfs ") is PatientOrientation.HFS
