"""`igrt cbct simulate` and `igrt cbct reconstruct`: cone-beam CT projections and FDK from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from igrt.errors import IgrtError

console = Console()


class CLIInputError(IgrtError):
    """A command-line value that cannot be used."""


def parse_triplet(text: str | None, name: str, kind=float):
    """'a,b,c' -> (a, b, c); None stays None."""
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        vals = tuple(kind(p) for p in parts)
    except ValueError:
        raise CLIInputError(f"--{name} needs three comma-separated numbers, got {text!r}") from None
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise CLIInputError(f"--{name} needs three comma-separated numbers, got {text!r}")
    return vals


def progress_bar(description: str):
    """A rich progress bar and a callback f(fraction) that advances it."""
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console, transient=False)
    task = prog.add_task(description, total=1.0)

    def update(fraction: float) -> None:
        prog.update(task, completed=min(1.0, float(fraction)))

    return prog, update


def _read_volume(path: Path):
    try:
        from igrt.io.images import read_image
    except ImportError:  # pragma: no cover - io.images is part of the package
        read_image = None
    if read_image is not None:
        return read_image(path)
    import SimpleITK as sitk

    from igrt.geometry import Volume

    img = sitk.ReadImage(str(path))
    return Volume(sitk.GetArrayFromImage(img), img.GetOrigin(), img.GetSpacing(),
                  np.asarray(img.GetDirection()).reshape(3, 3))


def _write_volume(volume, path: Path) -> None:
    from igrt.io.images import write_image

    write_image(volume, path)


def register(app: typer.Typer) -> None:
    cbct = typer.Typer(help="Cone-beam CT: simulate projections, reconstruct with FDK (IEC geometry, LPS volumes).",
                       no_args_is_help=True)
    app.add_typer(cbct, name="cbct")

    @cbct.command("simulate")
    def simulate(
        ct: Path = typer.Argument(..., help="CT in HU: DICOM series folder or any SimpleITK image"),
        out: Path = typer.Option(..., "--out", help="projection stack to write (.mha), line integrals"),
        geometry_out: Path = typer.Option(..., "--geometry", help="RTK geometry XML to write"),
        isocentre: str = typer.Option(None, help="plan isocentre x,y,z in LPS mm (default: CT centre)"),
        orientation: str = typer.Option("HFS", help="patient orientation (HFS, HFP, FFS, ...)"),
        projections: int = typer.Option(360, help="number of projections"),
        arc: float = typer.Option(360.0, help="gantry arc in degrees (short scan: 180 + fan angle or more)"),
        start: float = typer.Option(0.0, help="first gantry angle, degrees"),
        sad: float = typer.Option(1000.0, help="source-axis distance, mm"),
        sid: float = typer.Option(1536.0, help="source-detector distance, mm"),
        detector: str = typer.Option("512,512", help="detector columns,rows"),
        pixel: float = typer.Option(0.784, help="detector pixel size, mm"),
        offset_u: float = typer.Option(0.0, "--offset-u", help="detector lateral offset (half fan), mm"),
        photons: float = typer.Option(1e5, help="photons per pixel in air (I0); 0 for no noise"),
        scatter: float = typer.Option(0.0, help="scatter-to-primary ratio"),
        seed: int = typer.Option(None, help="random seed for the noise"),
    ) -> None:
        """Simulate CBCT projections of a CT and write them with their RTK geometry."""
        from igrt.imaging.formats import write_projections, write_rtk_geometry
        from igrt.imaging.geometry import PatientPlacement, circular_geometry
        from igrt.imaging.simulate import simulate_projections

        vol = _read_volume(ct)
        iso = parse_triplet(isocentre, "isocentre") or tuple(vol.centre)
        nu, nv = (int(x) for x in detector.replace("x", ",").split(","))
        geo = circular_geometry(projections, arc_deg=arc, start_deg=start, sad_mm=sad, sid_mm=sid,
                                detector_shape=(nu, nv), pixel_spacing_mm=(pixel, pixel), offset_u_mm=offset_u)
        place = PatientPlacement(iso, orientation)
        prog, update = progress_bar("projecting")
        with prog:
            p = simulate_projections(vol, geo, place,
                                     photons_per_pixel=photons if photons > 0 else None,
                                     scatter_to_primary=scatter, seed=seed, progress=update)
        write_projections(out, p, geo, place)
        write_rtk_geometry(geo, geometry_out)
        console.print(f"wrote {p.shape[0]} projections {nu}x{nv} to {out} and the geometry to {geometry_out}")

    @cbct.command("reconstruct")
    def reconstruct(
        projections: Path = typer.Argument(..., help="projection stack (.mha, line integrals [angle, v, u])"),
        geometry: Path = typer.Option(..., "--geometry", help="RTK geometry XML"),
        out: Path = typer.Option(..., "--out", help="volume to write (.mha, .nii.gz, ...)"),
        size: str = typer.Option(None, help="output grid size x,y,z voxels"),
        spacing: str = typer.Option(None, help="output voxel spacing x,y,z mm"),
        origin: str = typer.Option(None, help="LPS mm of the first voxel (default: grid centred on the isocentre)"),
        like: Path = typer.Option(None, "--like", help="take the output grid from this image"),
        isocentre: str = typer.Option(
            None, help="plan isocentre x,y,z LPS mm at the machine isocentre (default: as stored by igrt cbct simulate)"),
        orientation: str = typer.Option(None, help="patient orientation (default: as stored, else HFS)"),
        window: str = typer.Option("hann", help="ramp filter window: ram-lak, shepp-logan, hann"),
        mu_water: float = typer.Option(0.0193, help="water attenuation 1/mm for HU output; 0 for 1/mm output"),
    ) -> None:
        """FDK-reconstruct a projection stack onto an LPS grid (HU)."""
        from igrt.imaging.fdk import ReconGrid, fdk
        from igrt.imaging.formats import read_projection_placement, read_projections, read_rtk_geometry
        from igrt.imaging.geometry import PatientPlacement

        arr, (pu, pv), (ou, ov) = read_projections(projections)
        geo = read_rtk_geometry(geometry, (arr.shape[2], arr.shape[1]), (pu, pv), (ou, ov))
        stored = read_projection_placement(projections)
        iso = parse_triplet(isocentre, "isocentre")
        if iso is None:
            if stored is None:
                # Placing the image at an assumed isocentre would put it in the wrong place silently.
                raise CLIInputError(
                    f"{projections} does not say where the plan isocentre was; give --isocentre x,y,z (LPS mm)")
            iso = stored.isocentre_lps_mm
        place = PatientPlacement(iso, orientation or (stored.orientation if stored else "HFS"))
        if like is not None:
            if size or spacing or origin:
                raise CLIInputError("give either --like or --size/--spacing/--origin, not both")
            grid = ReconGrid.like(_read_volume(like))
        elif size or spacing:
            pix = geo.pixel_spacing_mm[0] / geo.magnification
            sp = parse_triplet(spacing, "spacing") or (pix, pix, pix)
            sz = parse_triplet(size, "size", int) or tuple(
                int(2 * np.floor(geo.fov_radius_mm() / s)) for s in sp)
            org = parse_triplet(origin, "origin")
            grid = ReconGrid(sz, sp, org) if org else ReconGrid.centred(sz, sp, place.isocentre_lps_mm)
        else:
            grid = None
        prog, update = progress_bar("reconstructing")
        with prog:
            vol = fdk(arr, geo, grid, place, window=window, mu_water_per_mm=mu_water if mu_water > 0 else None,
                      progress=update)
        _write_volume(vol, out)
        console.print(f"wrote {vol.size_xyz[0]}x{vol.size_xyz[1]}x{vol.size_xyz[2]} volume to {out}")
