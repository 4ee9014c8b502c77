"""`igrt drr`: digitally reconstructed radiographs of a CT for a gantry kV or a stereoscopic pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from igrt.cli.cbct import CLIInputError, _read_volume, console, parse_triplet, progress_bar


def _write_2d(image: np.ndarray, pose, path: Path) -> None:
    """Write a DRR as a 2D image (spacing = detector pixels; origin/direction describe the panel in LPS)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.asarray(image, np.float32))
    img.SetSpacing(tuple(float(s) for s in pose.spacing_mm))
    sitk.WriteImage(img, str(path))


def register(app: typer.Typer) -> None:
    @app.command("drr")
    def drr_command(
        ct: Path = typer.Argument(..., help="CT in HU: DICOM series folder or any SimpleITK image"),
        out: Path = typer.Option(..., "--out", help="image to write (.mha, .nii, .png not supported); "
                                 "a stereo pair writes OUT with _1/_2 before the suffix"),
        isocentre: str = typer.Option(None, help="plan isocentre x,y,z LPS mm (default: CT centre)"),
        orientation: str = typer.Option("HFS", help="patient orientation"),
        gantry: float = typer.Option(0.0, help="gantry angle (deg) for a gantry-mounted kV imager"),
        kv_offset: float = typer.Option(90.0, help="kV source angle relative to the gantry (0 = beam's eye view)"),
        stereo: bool = typer.Option(False, "--stereo", help="ExacTrac-like oblique pair instead of the gantry kV"),
        tube_angle: float = typer.Option(45.0, help="stereo tube angle from vertical, degrees"),
        size: str = typer.Option("512,512", help="detector columns,rows"),
        pixel: float = typer.Option(0.5, help="detector pixel size, mm"),
        mode: str = typer.Option("integral", help="integral (attenuation line integral), mip, or mean"),
    ) -> None:
        """Render DRR(s) of a CT through igrt's ray caster."""
        from igrt.imaging.drr import gantry_kv_pose, render, stereo_kv_pair
        from igrt.imaging.geometry import PatientPlacement

        vol = _read_volume(ct)
        iso = parse_triplet(isocentre, "isocentre") or tuple(vol.centre)
        try:
            nu, nv = (int(x) for x in size.replace("x", ",").split(","))
        except ValueError:
            raise CLIInputError(f"--size needs columns,rows, got {size!r}") from None
        place = PatientPlacement(iso, orientation)
        if stereo:
            poses = list(stereo_kv_pair(place, tube_angle_deg=tube_angle, shape=(nu, nv), spacing_mm=(pixel, pixel)))
            paths = [out.with_name(out.name.replace(out.suffix, f"_{i + 1}{out.suffix}")) for i in range(2)]
        else:
            poses = [gantry_kv_pose(gantry, place, kv_offset_deg=kv_offset, shape=(nu, nv), spacing_mm=(pixel, pixel))]
            paths = [out]
        prog, update = progress_bar("rendering")
        with prog:
            for i, (pose, path) in enumerate(zip(poses, paths)):
                _write_2d(render(vol, pose, mode=mode), pose, path)
                update((i + 1) / len(poses))
        for pose, path in zip(poses, paths):
            console.print(f"{pose.name}: wrote {path}")
