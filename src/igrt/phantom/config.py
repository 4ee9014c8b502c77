"""Knobs of the phantom anatomy and plan (all lengths in mm, LPS; doses in Gy)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from igrt.phantom.errors import PhantomError

SITES = ("lung", "pelvis")


@dataclass(frozen=True)
class PhantomConfig:
    """Everything `build_patient` uses besides grid and seed.

    Margins are per LPS axis (x = left-right, y = antero-posterior,
    z = cranio-caudal) in mm, applied with a 3D Euclidean distance transform
    (ellipsoidal structuring element when anisotropic).
    """

    site: str
    body_scale: float = 1.0  # scales the body outline in x and y
    grid_centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # target
    tumour_centre_mm: tuple[float, float, float] = (-62.0, 15.0, -15.0)  # lung GTV (right lung)
    tumour_semi_axes_mm: tuple[float, float, float] = (12.0, 11.0, 13.0)
    tumour_lobulation: float = 0.15  # relative surface irregularity of the GTV
    prostate_centre_mm: tuple[float, float, float] = (0.0, -15.0, -28.0)
    prostate_semi_axes_mm: tuple[float, float, float] = (22.0, 16.0, 20.0)
    bladder_volume_cc: float = 250.0  # planning bladder volume (wall + urine)
    rectum_radius_mm: float = 14.0
    ctv_margin_mm: tuple[float, float, float] = (3.0, 3.0, 3.0)
    ptv_margin_mm: tuple[float, float, float] = (5.0, 5.0, 5.0)
    # image appearance
    noise_hu: float = 12.0  # white noise SD
    texture_scale: float = 1.0  # multiplies every tissue's texture SD
    psf_sigma_mm: float = 0.7  # Gaussian blur of the scanner point-spread function
    vessel_density: float = 1.0  # lung vessel tree strength (0 = none)
    # plan
    gantry_angles_deg: tuple[float, ...] = (180.0, 210.0, 240.0, 270.0, 300.0, 330.0, 0.0)
    energy_mv: float = 6.0
    prescription_gy: float = 54.0
    fractions: int = 3
    patient_id: str = ""
    patient_name: str = ""

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise PhantomError(f"unknown phantom site {self.site!r}; choose one of {', '.join(SITES)}")
        for name in ("ctv_margin_mm", "ptv_margin_mm"):
            m = getattr(self, name)
            if len(m) != 3 or min(m) < 0:
                raise PhantomError(f"{name} must be three non-negative numbers (x, y, z) in mm, got {m}")
        if min(self.tumour_semi_axes_mm) <= 0 or min(self.prostate_semi_axes_mm) <= 0:
            raise PhantomError("target semi-axes must be positive (mm)")
        if not 20.0 <= self.bladder_volume_cc <= 900.0:
            raise PhantomError(f"bladder_volume_cc {self.bladder_volume_cc} is outside 20..900 cc")
        if not 5.0 <= self.rectum_radius_mm <= 30.0:
            raise PhantomError(f"rectum_radius_mm {self.rectum_radius_mm} is outside 5..30 mm")
        if self.fractions < 1 or self.prescription_gy <= 0:
            raise PhantomError("prescription_gy must be positive and fractions at least 1")
        if not 0.5 <= self.body_scale <= 1.5:
            raise PhantomError(f"body_scale {self.body_scale} is outside 0.5..1.5")


def default_config(site: str, **overrides) -> PhantomConfig:
    """Site defaults (lung SBRT 3 x 18 Gy; prostate 20 x 3 Gy), then ``overrides`` by field name."""
    site = str(site).lower()
    if site not in SITES:
        raise PhantomError(f"unknown phantom site {site!r}; choose one of {', '.join(SITES)}")
    if site == "lung":
        cfg = PhantomConfig(site="lung")
    else:
        cfg = PhantomConfig(
            site="pelvis",
            ctv_margin_mm=(2.0, 2.0, 2.0),
            ptv_margin_mm=(6.0, 5.0, 8.0),
            gantry_angles_deg=(0.0, 51.43, 102.86, 154.29, 205.71, 257.14, 308.57),
            energy_mv=10.0,
            prescription_gy=60.0,
            fractions=20,
        )
    known = {f.name for f in fields(PhantomConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise PhantomError(f"unknown phantom option(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    overrides = {k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()}
    return replace(cfg, **overrides)
