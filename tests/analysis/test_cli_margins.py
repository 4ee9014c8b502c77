"""`igrt margins` end to end (CliRunner, and the real entry point for errors)."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from igrt.cli import app, main

runner = CliRunner()


def _run_main(monkeypatch, capsys, args):
    monkeypatch.setattr(sys, "argv", ["igrt", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr()


def _cohort(path):
    rows = ["patient,fraction,x,y,z"]
    data = {"A": [(1, 0, 0), (2, 2, 0), (3, 4, 0)], "B": [(4, -1, 0), (6, -1, 0), (8, -1, 0)], "C": [(-2, 3, 0), (-2, 3, 0), (-2, 6, 0)]}
    for p, fr in data.items():
        for k, (x, y, z) in enumerate(fr, 1):
            rows.append(f"{p},{k},{x},{y},{z}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_margins_cli(tmp_path, monkeypatch, capsys):
    f = _cohort(tmp_path / "cohort.csv")
    res = runner.invoke(app, ["margins", str(f)], terminal_width=200)
    assert res.exit_code == 0, res.output
    # x: Sigma 4, sigma sqrt(5/3) = 1.29, van Herk 10.90, Stroom 8.90 (see tests/analysis)
    assert "4.00" in res.output and "1.29" in res.output and "10.90" in res.output and "8.90" in res.output
    res = runner.invoke(app, ["margins", str(f), "--json", "--intra-sigma", "1.0"])
    d = json.loads(res.output)
    assert d["statistics"]["Sigma_mm"][0] == pytest.approx(4.0)
    assert d["margins"]["van_herk_mm"][0] == pytest.approx(11.143095, abs=1e-6)
    res = runner.invoke(app, ["margins", str(f), "--per-patient"], terminal_width=200)
    assert "per patient" in res.output
    code, out = _run_main(monkeypatch, capsys, ["margins", str(tmp_path / "missing.csv")])
    assert code == 2 and "not found" in out.err
