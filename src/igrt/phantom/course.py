"""Treatment-course truth: setup errors from a population model, breathing, anatomy change.

Setup error convention (used by every igrt module): ``FractionTruth.setup_error``
maps planning-CT points (LPS mm) to where that anatomy is on the day in the
room frame aligned with the plan; rotations are about the plan isocentre with
the order of `igrt.geometry.transform` (R = Rz @ Ry @ Rx). So the daily image
of a rigid patient is ``resample(planning_ct, grid, setup_error.inverse())``
and a perfect registration returns exactly ``setup_error``.

Population model (van Herk): per patient a systematic error ~ N(M, Sigma) per
axis, per fraction a random error ~ N(0, sigma) per axis, for translations
and rotations; the day's error parameters are their sums.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from igrt.geometry import RigidTransform
from igrt.phantom.breathing import BreathingParams
from igrt.phantom.errors import PhantomError

Vec3 = tuple[float, float, float]


def _v3(v) -> Vec3:
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.shape != (3,):
        raise PhantomError(f"expected three values (x, y, z), got {v!r}")
    return (float(a[0]), float(a[1]), float(a[2]))


@dataclass(frozen=True)
class SetupErrorModel:
    """Population setup-error model: SDs per LPS axis (mm, degrees)."""

    systematic_translation_sd_mm: Vec3 = (2.0, 2.0, 2.0)  # Sigma
    random_translation_sd_mm: Vec3 = (2.5, 2.5, 2.5)  # sigma
    systematic_rotation_sd_deg: Vec3 = (0.7, 0.7, 0.7)
    random_rotation_sd_deg: Vec3 = (0.7, 0.7, 0.7)
    mean_translation_mm: Vec3 = (0.0, 0.0, 0.0)  # M
    mean_rotation_deg: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        for f in self.__dataclass_fields__:
            v = _v3(getattr(self, f))
            if "_sd_" in f and min(v) < 0:
                raise PhantomError(f"{f} must be non-negative, got {v}")
            object.__setattr__(self, f, v)


@dataclass(frozen=True)
class BreathingModel:
    """Fraction-to-fraction distribution of breathing parameters (lung: the tumour moves with the lung)."""

    amplitude_mm: Vec3 = (1.0, -2.5, -8.0)  # mean signed end-inhale displacement
    amplitude_cv: float = 0.15  # relative SD of the amplitude between fractions
    period_s: float = 4.0
    period_sd_s: float = 0.4
    n: int = 2
    drift_sd_mm_per_s: Vec3 = (0.002, 0.005, 0.01)
    irregularity: float = 0.1
    baseline_shift_sd_mm: Vec3 = (1.0, 1.5, 2.0)  # tumour baseline vs bone, per fraction


@dataclass(frozen=True)
class PelvisModel:
    """Day-to-day pelvic anatomy: bladder and rectal filling, and the prostate motion they cause."""

    bladder_volume_cv: float = 0.3  # relative SD around the planning volume
    rectum_radius_sd_mm: float = 2.5
    prostate_mm_per_rectum_mm: Vec3 = (0.0, -0.6, 0.3)  # a fuller rectum pushes the prostate forward and up
    prostate_mm_per_100cc_bladder: Vec3 = (0.0, 0.5, -0.8)  # a fuller bladder pushes it back and down
    prostate_random_sd_mm: Vec3 = (0.4, 1.2, 1.2)
    prostate_drift_sd_mm_per_s: Vec3 = (0.0, 0.004, 0.004)


@dataclass(frozen=True)
class CourseConfig:
    setup: SetupErrorModel = field(default_factory=SetupErrorModel)
    breathing: BreathingModel = field(default_factory=BreathingModel)
    pelvis: PelvisModel = field(default_factory=PelvisModel)
    tumour_volume_loss_per_fraction: float = 0.0  # fraction of the planning GTV volume lost per fraction

    def to_dict(self) -> dict:
        return asdict(self)


def default_course_config(site: str) -> CourseConfig:
    """Lung: breathing 8 mm SI, tumour shrinking 3 %/fraction; pelvis: no breathing, bladder/rectum changes."""
    if site == "lung":
        return CourseConfig(tumour_volume_loss_per_fraction=0.03)
    if site == "pelvis":
        b = BreathingModel(amplitude_mm=(0.0, 0.0, 0.0), amplitude_cv=0.0, period_sd_s=0.0,
                           drift_sd_mm_per_s=PelvisModel().prostate_drift_sd_mm_per_s,
                           irregularity=0.0, baseline_shift_sd_mm=(0.0, 0.0, 0.0))
        return CourseConfig(breathing=b)
    raise PhantomError(f"unknown phantom site {site!r}; choose lung or pelvis")


@dataclass(frozen=True)
class PelvisState:
    """Pelvic anatomy on one day."""

    bladder_volume_cc: float
    bladder_scale: float  # linear scale of the bladder about its base anchor
    rectum_radius_mm: float
    rectum_scale: float  # in-plane scale of the rectum about its axis
    prostate_shift_mm: Vec3


@dataclass(frozen=True, eq=False)
class FractionTruth:
    """Ground truth of one fraction (index 0 = first fraction)."""

    index: int
    site: str
    isocentre_mm: Vec3
    target_centre_planning_mm: Vec3
    setup_error: RigidTransform
    setup_translation_mm: Vec3
    setup_rotation_deg: Vec3
    random_translation_mm: Vec3
    random_rotation_deg: Vec3
    breathing: BreathingParams
    target_shift_mm: Vec3  # static target offset vs bone on this day (lung baseline / prostate displacement)
    tumour_volume_factor: float = 1.0
    pelvis: PelvisState | None = None

    @property
    def tumour_scale(self) -> float:
        """Linear scale of the GTV (cube root of the volume factor)."""
        return float(self.tumour_volume_factor ** (1.0 / 3.0))

    def to_dict(self) -> dict:
        d = {
            "index": self.index,
            "fraction_number": self.index + 1,
            "setup_error": self.setup_error.to_dict(self.isocentre_mm),
            "setup_translation_mm": list(self.setup_translation_mm),
            "setup_rotation_deg": list(self.setup_rotation_deg),
            "random_translation_mm": list(self.random_translation_mm),
            "random_rotation_deg": list(self.random_rotation_deg),
            "breathing": self.breathing.to_dict(),
            "target_shift_mm": list(self.target_shift_mm),
            "tumour_volume_factor": self.tumour_volume_factor,
            "tumour_scale": self.tumour_scale,
            "pelvis": None if self.pelvis is None else {k: (list(v) if isinstance(v, tuple) else v)
                                                        for k, v in asdict(self.pelvis).items()},
        }
        return d

    @classmethod
    def from_dict(cls, d: dict, site: str, isocentre_mm, target_centre_planning_mm) -> "FractionTruth":
        """Inverse of `to_dict` (the course gives site, isocentre and target centre)."""
        pelvis = None if d.get("pelvis") is None else PelvisState(
            **{k: (_v3(v) if isinstance(v, list) else v) for k, v in d["pelvis"].items()})
        b = {k: (_v3(v) if isinstance(v, list) else v) for k, v in d["breathing"].items()}
        return cls(
            index=int(d["index"]),
            site=site,
            isocentre_mm=_v3(isocentre_mm),
            target_centre_planning_mm=_v3(target_centre_planning_mm),
            setup_error=RigidTransform(np.asarray(d["setup_error"]["matrix"], float)),
            setup_translation_mm=_v3(d["setup_translation_mm"]),
            setup_rotation_deg=_v3(d["setup_rotation_deg"]),
            random_translation_mm=_v3(d["random_translation_mm"]),
            random_rotation_deg=_v3(d["random_rotation_deg"]),
            breathing=BreathingParams(**b),
            target_shift_mm=_v3(d["target_shift_mm"]),
            tumour_volume_factor=float(d["tumour_volume_factor"]),
            pelvis=pelvis,
        )


@dataclass(frozen=True, eq=False)
class CourseTruth:
    """A simulated treatment course: the patient's systematic error and every fraction's truth."""

    site: str
    seed: int
    patient_id: str
    isocentre_mm: Vec3
    target_centre_planning_mm: Vec3
    systematic_translation_mm: Vec3
    systematic_rotation_deg: Vec3
    config: CourseConfig
    fractions: tuple[FractionTruth, ...]

    def to_dict(self) -> dict:
        return {
            "schema": "igrt.phantom.course/1",
            "site": self.site,
            "seed": self.seed,
            "patient_id": self.patient_id,
            "isocentre_mm": list(self.isocentre_mm),
            "target_centre_planning_mm": list(self.target_centre_planning_mm),
            "systematic_translation_mm": list(self.systematic_translation_mm),
            "systematic_rotation_deg": list(self.systematic_rotation_deg),
            "config": self.config.to_dict(),
            "fractions": [f.to_dict() for f in self.fractions],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CourseTruth":
        """Read back `to_dict` output (e.g. ``truth.json["course"]``)."""
        if d.get("schema") != "igrt.phantom.course/1":
            raise PhantomError(f"not an igrt phantom course (schema {d.get('schema')!r}, expected igrt.phantom.course/1)")
        c = d["config"]
        config = CourseConfig(
            setup=SetupErrorModel(**c["setup"]),
            breathing=BreathingModel(**{k: (_v3(v) if isinstance(v, list) else v) for k, v in c["breathing"].items()}),
            pelvis=PelvisModel(**{k: (_v3(v) if isinstance(v, list) else v) for k, v in c["pelvis"].items()}),
            tumour_volume_loss_per_fraction=float(c["tumour_volume_loss_per_fraction"]),
        )
        return cls(
            site=d["site"],
            seed=int(d["seed"]),
            patient_id=d["patient_id"],
            isocentre_mm=_v3(d["isocentre_mm"]),
            target_centre_planning_mm=_v3(d["target_centre_planning_mm"]),
            systematic_translation_mm=_v3(d["systematic_translation_mm"]),
            systematic_rotation_deg=_v3(d["systematic_rotation_deg"]),
            config=config,
            fractions=tuple(FractionTruth.from_dict(f, d["site"], d["isocentre_mm"], d["target_centre_planning_mm"])
                            for f in d["fractions"]),
        )


@dataclass(frozen=True)
class SetupPopulation:
    """Setup errors of a simulated population; arrays over (patient, fraction, axis)."""

    systematic_translation_mm: np.ndarray  # (P, 3)
    systematic_rotation_deg: np.ndarray  # (P, 3)
    random_translation_mm: np.ndarray  # (P, F, 3)
    random_rotation_deg: np.ndarray  # (P, F, 3)

    @property
    def translation_mm(self) -> np.ndarray:
        return self.systematic_translation_mm[:, None, :] + self.random_translation_mm

    @property
    def rotation_deg(self) -> np.ndarray:
        return self.systematic_rotation_deg[:, None, :] + self.random_rotation_deg


def _draw_setup(model: SetupErrorModel, n_patients: int, n_fractions: int, rng: np.random.Generator) -> SetupPopulation:
    sys_t = rng.normal(model.mean_translation_mm, model.systematic_translation_sd_mm, (n_patients, 3))
    sys_r = rng.normal(model.mean_rotation_deg, model.systematic_rotation_sd_deg, (n_patients, 3))
    rnd_t = rng.normal(0.0, model.random_translation_sd_mm, (n_patients, n_fractions, 3))
    rnd_r = rng.normal(0.0, model.random_rotation_sd_deg, (n_patients, n_fractions, 3))
    return SetupPopulation(sys_t, sys_r, rnd_t, rnd_r)


def sample_population(
    n_patients: int,
    n_fractions: int,
    config: CourseConfig | SetupErrorModel | None = None,
    seed: int = 0,
) -> SetupPopulation:
    """Setup errors of ``n_patients`` x ``n_fractions`` drawn from the population model (seeded)."""
    if n_patients < 1 or n_fractions < 1:
        raise PhantomError("a population needs at least one patient and one fraction")
    model = config.setup if isinstance(config, CourseConfig) else (config or SetupErrorModel())
    return _draw_setup(model, int(n_patients), int(n_fractions), np.random.default_rng([int(seed), 11]))


def simulate_course(patient, n_fractions: int | None = None, seed: int = 0, config: CourseConfig | None = None) -> CourseTruth:
    """Draw a course for ``patient`` (a `PhantomPatient`): ``n_fractions`` (default: the plan's) fractions.

    Independent seeded streams for setup, breathing and anatomy, so changing
    one model leaves the others' draws unchanged.
    """
    site = patient.site
    cfg = config or default_course_config(site)
    n = int(n_fractions if n_fractions is not None else (patient.plan.fractions or 1))
    if n < 1:
        raise PhantomError(f"a course needs at least one fraction, got {n}")
    rng_setup, rng_breath, rng_anat = (np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), 7]).spawn(3))
    setup = _draw_setup(cfg.setup, 1, n, rng_setup)
    iso = _v3(patient.isocentre_mm)
    centre = _v3(patient.target_centre_mm)
    bm = cfg.breathing
    fractions = []
    for k in range(n):
        t_mm = setup.translation_mm[0, k]
        r_deg = setup.rotation_deg[0, k]
        transform = RigidTransform.from_params(t_mm, r_deg, iso)
        amp = np.asarray(bm.amplitude_mm, float) * max(0.0, 1.0 + bm.amplitude_cv * rng_breath.standard_normal())
        period = max(1.5, bm.period_s + bm.period_sd_s * rng_breath.standard_normal())
        breathing = BreathingParams(
            amplitude_mm=_v3(amp),
            period_s=float(period),
            n=int(bm.n),
            phase_rad=float(rng_breath.uniform(0.0, np.pi)),
            drift_mm_per_s=_v3(rng_breath.normal(0.0, bm.drift_sd_mm_per_s)),
            irregularity=float(bm.irregularity),
            irregularity_seed=int(rng_breath.integers(0, 2**31 - 1)),
        )
        shift = rng_breath.normal(0.0, bm.baseline_shift_sd_mm)
        pelvis_state = None
        if site == "pelvis":
            pelvis_state, shift = _pelvis_day(patient, cfg.pelvis, rng_anat)
        loss = min(cfg.tumour_volume_loss_per_fraction * k, 0.8)
        fractions.append(
            FractionTruth(
                index=k,
                site=site,
                isocentre_mm=iso,
                target_centre_planning_mm=centre,
                setup_error=transform,
                setup_translation_mm=_v3(t_mm),
                setup_rotation_deg=_v3(r_deg),
                random_translation_mm=_v3(setup.random_translation_mm[0, k]),
                random_rotation_deg=_v3(setup.random_rotation_deg[0, k]),
                breathing=breathing,
                target_shift_mm=_v3(shift),
                tumour_volume_factor=float(1.0 - loss) if site == "lung" else 1.0,
                pelvis=pelvis_state,
            )
        )
    return CourseTruth(
        site=site,
        seed=int(seed),
        patient_id=patient.reference.patient_id,
        isocentre_mm=iso,
        target_centre_planning_mm=centre,
        systematic_translation_mm=_v3(setup.systematic_translation_mm[0]),
        systematic_rotation_deg=_v3(setup.systematic_rotation_deg[0]),
        config=cfg,
        fractions=tuple(fractions),
    )


def _pelvis_day(patient, model: PelvisModel, rng: np.random.Generator) -> tuple[PelvisState, np.ndarray]:
    v_plan = float(patient.config.bladder_volume_cc)
    r_plan = float(patient.config.rectum_radius_mm)
    v = float(np.clip(v_plan * (1.0 + model.bladder_volume_cv * rng.standard_normal()), 0.5 * v_plan, 2.0 * v_plan))
    r = float(np.clip(r_plan + model.rectum_radius_sd_mm * rng.standard_normal(), 0.8 * r_plan, 1.4 * r_plan))
    shift = (
        np.asarray(model.prostate_mm_per_rectum_mm) * (r - r_plan)
        + np.asarray(model.prostate_mm_per_100cc_bladder) * (v - v_plan) / 100.0
        + rng.normal(0.0, model.prostate_random_sd_mm)
    )
    state = PelvisState(
        bladder_volume_cc=v,
        bladder_scale=float((v / v_plan) ** (1.0 / 3.0)),
        rectum_radius_mm=r,
        rectum_scale=r / r_plan,
        prostate_shift_mm=_v3(shift),
    )
    return state, shift


def zero_error_fraction(patient, index: int = 0) -> FractionTruth:
    """A fraction with no setup error, no motion and no anatomy change (the planning situation)."""
    iso = _v3(patient.isocentre_mm)
    pelvis = None
    if patient.site == "pelvis":
        pelvis = PelvisState(float(patient.config.bladder_volume_cc), 1.0, float(patient.config.rectum_radius_mm), 1.0,
                             (0.0, 0.0, 0.0))
    return FractionTruth(index, patient.site, iso, _v3(patient.target_centre_mm), RigidTransform.identity(),
                         (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), BreathingParams(),
                         (0.0, 0.0, 0.0), 1.0, pelvis)


def with_setup_error(fraction: FractionTruth, translation_mm, rotation_deg=(0.0, 0.0, 0.0)) -> FractionTruth:
    """Copy of ``fraction`` with a given setup error (about its isocentre)."""
    t, r = _v3(translation_mm), _v3(rotation_deg)
    return replace(fraction, setup_error=RigidTransform.from_params(t, r, fraction.isocentre_mm),
                   setup_translation_mm=t, setup_rotation_deg=r)
