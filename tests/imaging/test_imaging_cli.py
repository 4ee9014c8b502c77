"""`igrt cbct simulate/reconstruct` and `igrt drr` end to end on small files."""

import numpy as np
import SimpleITK as sitk
from typer.testing import CliRunner

from igrt.cli import app
from igrt.geometry import Volume
from igrt.io.images import write_image


def _ct(tmp_path):
    like = Volume.centred(np.zeros((24, 40, 40), np.float32), (2.5, 2.5, 2.5), (10.0, -5.0, 0.0))
    x, y, _ = like.world_coordinates()
    hu = np.where(np.hypot(x - 10.0, y + 5.0) < 35.0, 0.0, -1000.0) * np.ones(like.shape)
    hu[10:14, 18:22, 18:22] = 1000.0
    path = tmp_path / "ct.mha"
    write_image(like.with_array(hu.astype(np.float32)), path)
    return path


def test_simulate_then_reconstruct_round_trip(tmp_path):
    ct = _ct(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["cbct", "simulate", str(ct), "--out", str(tmp_path / "p.mha"), "--geometry",
                              str(tmp_path / "g.xml"), "--projections", "90", "--detector", "96,64", "--pixel", "3.0",
                              "--photons", "0", "--sid", "1500"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g.xml").read_text().count("<Projection>") == 90
    res = runner.invoke(app, ["cbct", "reconstruct", str(tmp_path / "p.mha"), "--geometry", str(tmp_path / "g.xml"),
                              "--out", str(tmp_path / "cbct.mha"), "--like", str(ct), "--isocentre", "10,-5,0",
                              "--window", "ram-lak"])
    assert res.exit_code == 0, res.output
    rec = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "cbct.mha")))
    assert rec.shape == (24, 40, 40)
    assert abs(float(rec[6:18, 14:26, 8:16].mean())) < 40.0  # water ~0 HU
    assert rec[10:14, 18:22, 18:22].mean() > 600.0  # the bone block where it was


def test_drr_command_writes_stereo_pair(tmp_path):
    ct = _ct(tmp_path)
    res = CliRunner().invoke(app, ["drr", str(ct), "--out", str(tmp_path / "kv.mha"), "--stereo", "--size", "64,48",
                                   "--pixel", "2.0"])
    assert res.exit_code == 0, res.output
    for i in (1, 2):
        img = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"kv_{i}.mha")))
        assert img.shape == (48, 64) and img.max() > 1.0


def test_bad_cli_input_is_one_line_error(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", "from igrt.cli import main; main()", "cbct", "reconstruct",
                          str(tmp_path / "missing.mha"), "--geometry", str(tmp_path / "g.xml"), "--out",
                          str(tmp_path / "o.mha")], capture_output=True, text=True)
    assert res.returncode == 2
    assert "error:" in res.stderr and "Traceback" not in res.stderr
