"""Digital phantom patients and treatment courses with known ground truth.

`build_patient` makes a labelled CT with structures and a plan (thorax/lung
SBRT or male pelvis/prostate); `simulate_course` draws the setup errors,
breathing and anatomy of every fraction from a seeded population model;
`daily_anatomy`/`daily_labels`/`daily_displacement` give the patient as it
is on a given day and breathing phase, with the exact deformation.
"""

from igrt.phantom.breathing import BreathingParams, breathing_displacement_mm, displacement_at_phase_mm
from igrt.phantom.config import PhantomConfig, default_config
from igrt.phantom.course import (
    BreathingModel,
    CourseConfig,
    CourseTruth,
    FractionTruth,
    PelvisModel,
    PelvisState,
    SetupErrorModel,
    SetupPopulation,
    default_course_config,
    sample_population,
    simulate_course,
    with_setup_error,
    zero_error_fraction,
)
from igrt.phantom.deformation import (
    DeformationModel,
    DisplacementField,
    daily_anatomy,
    daily_displacement,
    daily_labels,
    daily_structure_mask,
    deformation_model,
    landmarks_mm,
    map_daily_to_planning,
    map_planning_to_daily,
    target_position_mm,
)
from igrt.phantom.errors import PhantomError
from igrt.phantom.export import export_patient, truth_dict
from igrt.phantom.margins import expand_mask
from igrt.phantom.patient import PhantomPatient, build_patient

__all__ = [
    "BreathingModel",
    "BreathingParams",
    "CourseConfig",
    "CourseTruth",
    "DeformationModel",
    "DisplacementField",
    "FractionTruth",
    "PelvisModel",
    "PelvisState",
    "PhantomConfig",
    "PhantomError",
    "PhantomPatient",
    "SetupErrorModel",
    "SetupPopulation",
    "breathing_displacement_mm",
    "build_patient",
    "daily_anatomy",
    "daily_displacement",
    "daily_labels",
    "daily_structure_mask",
    "default_config",
    "default_course_config",
    "deformation_model",
    "displacement_at_phase_mm",
    "expand_mask",
    "export_patient",
    "landmarks_mm",
    "map_daily_to_planning",
    "map_planning_to_daily",
    "sample_population",
    "simulate_course",
    "target_position_mm",
    "truth_dict",
    "with_setup_error",
    "zero_error_fraction",
]
