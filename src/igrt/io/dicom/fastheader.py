"""A minimal DICOM header parser for image slices (the speed path of the CT reader).

pydicom parses and converts every element of every slice, about 2 ms per CT
file; a 200-slice series then spends most of its load time in headers. For
the usual uncompressed little-endian Part 10 files this module walks the
elements with ``struct`` (sequences skipped by length or by their
delimiters), keeps only the tags the series reader needs, and records where
the pixel bytes start. Anything unusual (no preamble, big endian, deflate,
odd structure) returns None and the caller falls back to pydicom.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF

# tag -> (keyword, kind): kind says how to convert the value bytes.
TAGS: dict[int, tuple[str, str]] = {
    0x00080008: ("ImageType", "strs"),
    0x00080012: ("InstanceCreationDate", "str"),
    0x00080013: ("InstanceCreationTime", "str"),
    0x00080016: ("SOPClassUID", "str"),
    0x00080018: ("SOPInstanceUID", "str"),
    0x00080020: ("StudyDate", "str"),
    0x00080060: ("Modality", "str"),
    0x00081030: ("StudyDescription", "str"),
    0x0008103E: ("SeriesDescription", "str"),
    0x00100010: ("PatientName", "str"),
    0x00100020: ("PatientID", "str"),
    0x00180050: ("SliceThickness", "float"),
    0x00180088: ("SpacingBetweenSlices", "float"),
    0x00181120: ("GantryDetectorTilt", "float"),
    0x00185100: ("PatientPosition", "str"),
    0x0020000D: ("StudyInstanceUID", "str"),
    0x0020000E: ("SeriesInstanceUID", "str"),
    0x00200010: ("StudyID", "str"),
    0x00200011: ("SeriesNumber", "int"),
    0x00200013: ("InstanceNumber", "int"),
    0x00200032: ("ImagePositionPatient", "floats"),
    0x00200037: ("ImageOrientationPatient", "floats"),
    0x00200052: ("FrameOfReferenceUID", "str"),
    0x00280002: ("SamplesPerPixel", "us"),
    0x00280008: ("NumberOfFrames", "int"),
    0x00280010: ("Rows", "us"),
    0x00280011: ("Columns", "us"),
    0x00280030: ("PixelSpacing", "floats"),
    0x00280100: ("BitsAllocated", "us"),
    0x00280103: ("PixelRepresentation", "us"),
    0x00281052: ("RescaleIntercept", "float"),
    0x00281053: ("RescaleSlope", "float"),
}


class FastHeader:
    """The few header values of one slice, with the pydicom-like ``get``/``in``/attribute access the reader uses."""

    __slots__ = ("values", "pixel_offset", "pixel_length", "file_meta")

    def __init__(self, values: dict, pixel_offset: int | None, pixel_length: int | None, transfer_syntax: str) -> None:
        self.values = values
        self.pixel_offset = pixel_offset
        self.pixel_length = pixel_length
        self.file_meta = SimpleNamespace(TransferSyntaxUID=transfer_syntax)

    def get(self, keyword: str, default=None):
        return self.values.get(keyword, default)

    def __contains__(self, keyword: str) -> bool:
        return keyword in self.values

    def __getattr__(self, keyword: str):
        try:
            return self.values[keyword]
        except KeyError:
            raise AttributeError(keyword) from None


def _convert(kind: str, b: bytes):
    if kind == "us":
        return struct.unpack_from("<H", b)[0] if len(b) >= 2 else None
    s = b.decode("latin-1").strip("\x00 ")
    if kind == "str":
        return s
    if kind == "strs":
        return [v.strip() for v in s.split("\\")]
    if not s:
        return None
    if kind == "floats":
        return [float(v) for v in s.split("\\")]
    if kind == "float":
        return float(s.split("\\")[0])
    return int(float(s.split("\\")[0]))  # "int" (IS)


def _skip_undefined(raw: bytes, pos: int, explicit: bool, end_tag: int) -> int:
    """Position after the delimiter ``end_tag`` of an undefined-length sequence or item."""
    n = len(raw)
    while pos + 8 <= n:
        group, elem = struct.unpack_from("<HH", raw, pos)
        tag = (group << 16) | elem
        if group == 0xFFFE:
            length = struct.unpack_from("<I", raw, pos + 4)[0]
            pos += 8
            if tag == end_tag:
                return pos
            if tag == _ITEM:
                pos = _skip_undefined(raw, pos, explicit, _ITEM_END) if length == _UNDEFINED else pos + length
            continue
        pos, length, _vr = _element_header(raw, pos, explicit)
        pos = _skip_undefined(raw, pos, explicit, _SEQ_END) if length == _UNDEFINED else pos + length
    raise ValueError("sequence without delimiter")


def _element_header(raw: bytes, pos: int, explicit: bool) -> tuple[int, int, bytes | None]:
    """(value position, value length, VR or None) of the element starting at ``pos``."""
    if explicit:
        vr = raw[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            return pos + 12, struct.unpack_from("<I", raw, pos + 8)[0], vr
        return pos + 8, struct.unpack_from("<H", raw, pos + 6)[0], vr
    return pos + 8, struct.unpack_from("<I", raw, pos + 4)[0], None


def parse_header(raw: bytes) -> FastHeader | None:
    """Parse a Part 10 slice file's bytes; None when the fast path does not apply."""
    try:
        if len(raw) < 144 or raw[128:132] != b"DICM":
            return None
        pos = 132
        ts = None
        n = len(raw)
        # File meta (group 0002) is always explicit VR little endian.
        while pos + 8 <= n:
            group = struct.unpack_from("<H", raw, pos)[0]
            if group != 0x0002:
                break
            vpos, length, _ = _element_header(raw, pos, True)
            if struct.unpack_from("<H", raw, pos + 2)[0] == 0x0010:
                ts = raw[vpos : vpos + length].decode("latin-1").strip("\x00 ")
            pos = vpos + length
        if ts == _EXPLICIT_LE:
            explicit = True
        elif ts == _IMPLICIT_LE:
            explicit = False
        else:
            return None
        values: dict = {}
        while pos + 8 <= n:
            group, elem = struct.unpack_from("<HH", raw, pos)
            tag = (group << 16) | elem
            vpos, length, vr = _element_header(raw, pos, explicit)
            if tag == _PIXEL_DATA:
                if length == _UNDEFINED:
                    return None  # encapsulated (compressed) pixel data
                return FastHeader(values, vpos, length, ts)
            if length == _UNDEFINED:
                pos = _skip_undefined(raw, vpos, explicit, _SEQ_END)
                continue
            spec = TAGS.get(tag)
            if spec is not None:
                values[spec[0]] = _convert(spec[1], raw[vpos : vpos + length])
            pos = vpos + length
        return FastHeader(values, None, None, ts)
    except (struct.error, ValueError, UnicodeDecodeError):
        return None
