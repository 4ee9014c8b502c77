"""Couch corrections (IEC 61217), action levels and setup correction protocols.

Start with `decide` (registration -> `CorrectionDecision`), or
`compute_couch_correction` for the move alone; protocols live in
`igrt.correction.protocols`. DICOM REG export: `igrt.correction.export`.
"""

from igrt.correction.action_levels import (
    ACTION_LEVEL_PRESETS,
    ActionLevels,
    CorrectionDecision,
    DecisionStatus,
    action_levels_for,
    decide,
)
from igrt.correction.couch import (
    FOUR_DOF,
    SIX_DOF,
    CouchCorrection,
    CouchModel,
    compute_couch_correction,
    couch_correction_from_shift,
    couch_model,
    ptv_points_from_mask,
)
from igrt.correction.errors import CorrectionError, ExportUnavailableError
from igrt.correction.protocols import (
    ProtocolStep,
    SimulatedCourse,
    enal,
    nal,
    online,
    online_correction,
    residual_systematic_sd,
    sal,
    simulate_protocol,
    uncorrected_error,
)

__all__ = [
    "ACTION_LEVEL_PRESETS",
    "ActionLevels",
    "CorrectionDecision",
    "CorrectionError",
    "CouchCorrection",
    "CouchModel",
    "DecisionStatus",
    "ExportUnavailableError",
    "FOUR_DOF",
    "ProtocolStep",
    "SIX_DOF",
    "SimulatedCourse",
    "action_levels_for",
    "compute_couch_correction",
    "couch_correction_from_shift",
    "couch_model",
    "decide",
    "enal",
    "nal",
    "online",
    "online_correction",
    "ptv_points_from_mask",
    "residual_systematic_sd",
    "sal",
    "simulate_protocol",
    "uncorrected_error",
]
