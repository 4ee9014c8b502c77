"""Projection stacks remember where the patient lay, so reconstructions land in patient coordinates."""

import numpy as np
import pytest
from typer.testing import CliRunner

from igrt.cli import app
from igrt.imaging.formats import read_projection_placement, write_projections
from igrt.imaging.geometry import PatientPlacement, circular_geometry
from igrt.io.images import read_image

from test_imaging_cli import _ct


def test_placement_round_trips_through_the_mha_metadata(tmp_path):
    geo = circular_geometry(4, detector_shape=(8, 6), pixel_spacing_mm=(1.0, 1.0))
    write_projections(tmp_path / "p.mha", np.zeros((4, 6, 8), np.float32), geo, PatientPlacement((10.5, -5, 3), "FFP"))
    place = read_projection_placement(tmp_path / "p.mha")
    assert place.isocentre_lps_mm == pytest.approx((10.5, -5.0, 3.0))
    assert place.orientation.value == "FFP"
    write_projections(tmp_path / "q.mha", np.zeros((4, 6, 8), np.float32), geo)
    assert read_projection_placement(tmp_path / "q.mha") is None


def test_reconstruct_uses_the_stored_isocentre(tmp_path):
    ct = _ct(tmp_path)  # bone block at a known place, grid centred at (10, -5, 0)
    runner = CliRunner()
    res = runner.invoke(app, ["cbct", "simulate", str(ct), "--out", str(tmp_path / "p.mha"), "--geometry",
                              str(tmp_path / "g.xml"), "--projections", "90", "--detector", "96,64", "--pixel", "3.0",
                              "--photons", "0", "--sid", "1500", "--isocentre", "10,-5,0"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["cbct", "reconstruct", str(tmp_path / "p.mha"), "--geometry", str(tmp_path / "g.xml"),
                              "--out", str(tmp_path / "cbct.mha"), "--size", "40,40,24", "--spacing", "2.5,2.5,2.5"])
    assert res.exit_code == 0, res.output
    rec = read_image(tmp_path / "cbct.mha")
    np.testing.assert_allclose(rec.centre, [10.0, -5.0, 0.0], atol=1e-3)
    k, j, i = np.unravel_index(np.argmax(rec.array), rec.shape)
    truth = read_image(ct)
    # The brightest voxel lies in the bone block of the CT (same LPS place).
    idx = np.round(truth.to_index(rec.to_world([i, j, k]))).astype(int)
    assert truth.array[idx[2], idx[1], idx[0]] == pytest.approx(1000.0)


def test_reconstruct_refuses_to_guess_the_isocentre(tmp_path):
    geo = circular_geometry(4, detector_shape=(8, 6), pixel_spacing_mm=(1.0, 1.0))
    write_projections(tmp_path / "p.mha", np.zeros((4, 6, 8), np.float32), geo)
    from igrt.imaging.formats import write_rtk_geometry

    write_rtk_geometry(geo, tmp_path / "g.xml")
    res = CliRunner().invoke(app, ["cbct", "reconstruct", str(tmp_path / "p.mha"), "--geometry", str(tmp_path / "g.xml"),
                                   "--out", str(tmp_path / "o.mha")])
    assert res.exit_code != 0
    assert "isocentre" in str(res.exception) or "isocentre" in res.output
