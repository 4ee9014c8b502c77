"""Formats: RTK geometry XML, projection stacks (.mha) and Elekta HIS, on files written here."""

import numpy as np
import pytest

from igrt.imaging import CBCTGeometry, ImagingFormatError
from igrt.imaging.formats import (
    his_to_line_integrals,
    read_his,
    read_projections,
    read_rtk_geometry,
    write_his,
    write_projections,
    write_rtk_geometry,
)

from rtk_helpers import rtk_or_skip

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _geo():
    n = 5
    return CBCTGeometry(
        1000.0, 1536.0, np.linspace(-10.0, 190.5, n), (32, 24), (0.8, 0.8),
        offset_u_mm=115.0, offset_v_mm=np.linspace(0, 1.2, n), source_offset_u_mm=np.linspace(-0.5, 0.5, n),
    )


def test_rtk_xml_round_trip(tmp_path):
    geo = _geo()
    write_rtk_geometry(geo, tmp_path / "g.xml")
    back = read_rtk_geometry(tmp_path / "g.xml", geo.detector_shape, geo.pixel_spacing_mm)
    for attr in ("angles_deg", "offset_u_mm", "offset_v_mm", "source_offset_u_mm", "source_offset_v_mm"):
        np.testing.assert_allclose(getattr(back, attr), getattr(geo, attr), atol=1e-12)
    assert back.sad_mm == 1000.0 and back.sid_mm == 1536.0
    text = (tmp_path / "g.xml").read_text()
    assert "<ProjectionOffsetX>115</ProjectionOffsetX>" in text  # constant: written once at the top


def test_rtk_xml_is_what_rtk_reads_and_writes(tmp_path):
    rtk = rtk_or_skip()
    geo = _geo()
    write_rtk_geometry(geo, tmp_path / "g.xml")
    reader = rtk.ThreeDCircularProjectionGeometryXMLFileReader.New()
    reader.SetFilename(str(tmp_path / "g.xml"))
    reader.GenerateOutputInformation()
    g = reader.GetOutputObject()
    assert len(list(g.GetGantryAngles())) == 5
    mine = geo.rtk_matrices()
    for i in range(5):
        m = g.GetMatrix(i)
        ref = np.array([[m(r, c) for c in range(4)] for r in range(3)])
        np.testing.assert_allclose(mine[i] / mine[i][2, 3], ref / ref[2, 3], rtol=1e-9, atol=1e-9)
    # and RTK's own writer is read back by igrt
    w = rtk.ThreeDCircularProjectionGeometryXMLFileWriter.New()
    w.SetFilename(str(tmp_path / "rtk.xml"))
    w.SetObject(g)
    w.WriteFile()
    back = read_rtk_geometry(tmp_path / "rtk.xml", geo.detector_shape, geo.pixel_spacing_mm)
    np.testing.assert_allclose(back.angles_deg % 360, geo.angles_deg % 360, atol=1e-9)
    np.testing.assert_allclose(back.offset_v_mm, geo.offset_v_mm, atol=1e-9)


def test_rtk_xml_bad_files(tmp_path):
    (tmp_path / "x.xml").write_text("<Other/>")
    with pytest.raises(ImagingFormatError, match="not an RTK"):
        read_rtk_geometry(tmp_path / "x.xml", (8, 8), (1, 1))
    (tmp_path / "t.xml").write_text(
        "<RTKThreeDCircularGeometry version='3'><SourceToIsocenterDistance>1000</SourceToIsocenterDistance>"
        "<SourceToDetectorDistance>1500</SourceToDetectorDistance><InPlaneAngle>2</InPlaneAngle>"
        "<Projection><GantryAngle>0</GantryAngle></Projection></RTKThreeDCircularGeometry>"
    )
    with pytest.raises(ImagingFormatError, match="InPlaneAngle"):
        read_rtk_geometry(tmp_path / "t.xml", (8, 8), (1, 1))
    (tmp_path / "bad.xml").write_text("<RTK")
    with pytest.raises(ImagingFormatError, match="cannot read"):
        read_rtk_geometry(tmp_path / "bad.xml", (8, 8), (1, 1))


def test_projection_stack_round_trip_and_origin_shift(tmp_path):
    geo = _geo()
    rng = np.random.default_rng(0)
    stack = rng.random((5, 24, 32)).astype(np.float32)
    write_projections(tmp_path / "p.mha", stack, geo)
    arr, spacing, origin = read_projections(tmp_path / "p.mha")
    np.testing.assert_array_equal(arr, stack)
    assert spacing == pytest.approx((0.8, 0.8))
    assert origin == pytest.approx((-15.5 * 0.8, -11.5 * 0.8))
    # a stack whose origin is not centred moves the detector by the difference
    g2 = read_rtk_geometry_for(tmp_path, geo, origin=(0.0, 0.0))
    np.testing.assert_allclose(g2.offset_u_mm, geo.offset_u_mm + 15.5 * 0.8)


def read_rtk_geometry_for(tmp_path, geo, origin):
    write_rtk_geometry(geo, tmp_path / "g2.xml")
    return read_rtk_geometry(tmp_path / "g2.xml", geo.detector_shape, geo.pixel_spacing_mm, origin)


def test_his_round_trip_header_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 65535, size=(3, 20, 30), dtype=np.uint16)
    write_his(tmp_path / "a.his", frames, integration_time_us=33333.0)
    raw = (tmp_path / "a.his").read_bytes()
    assert len(raw) == 100 + frames.nbytes
    assert raw[:2] == b"\x00\x70"  # file type 0x7000, little-endian
    back, header = read_his(tmp_path / "a.his")
    np.testing.assert_array_equal(back, frames)
    assert header["frames"] == 3 and header["brx"] - header["ulx"] + 1 == 30 and header["integration_time_us"] == 33333.0
    (tmp_path / "short.his").write_bytes(raw[:-10])
    with pytest.raises(ImagingFormatError, match="truncated"):
        read_his(tmp_path / "short.his")
    (tmp_path / "bad.his").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(ImagingFormatError, match="0x7000"):
        read_his(tmp_path / "bad.his")
    li = his_to_line_integrals(np.array([65535, 0], np.uint16))
    np.testing.assert_allclose(li, [0.0, np.log(65536.0)], atol=1e-6)
