"""The fast slice-header parser agrees with pydicom on real files and declines what it cannot read."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from igrt.io.dicom.fastheader import TAGS, parse_header


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm"])
def test_matches_pydicom(name):
    path = get_testdata_file(name)
    raw = open(path, "rb").read()
    fast = parse_header(raw)
    assert fast is not None
    ds = pydicom.dcmread(path)
    checked = 0
    for keyword, kind in TAGS.values():
        if keyword not in ds or ds[keyword].value in (None, ""):
            continue
        ref = ds[keyword].value
        got = fast.get(keyword)
        if kind == "floats":
            np.testing.assert_allclose(got, [float(v) for v in ref])
        elif kind in ("float",):
            assert got == pytest.approx(float(ref))
        elif kind in ("int", "us"):
            assert got == int(ref)
        elif kind == "strs":
            assert got == list(ref)
        else:
            assert got == str(ref).strip()
        checked += 1
    assert checked >= 15
    # The recorded pixel offset points at the same bytes pydicom reads.
    n = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    assert raw[fast.pixel_offset : fast.pixel_offset + n] == ds.PixelData[:n]


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "MR_small_RLE.dcm", "rtstruct.dcm", "no_meta.dcm"])
def test_declines_what_it_does_not_handle(name):
    raw = open(get_testdata_file(name), "rb").read()
    assert parse_header(raw) is None


def test_garbage_and_truncation():
    assert parse_header(b"hello") is None
    raw = open(get_testdata_file("CT_small.dcm"), "rb").read()
    assert parse_header(raw[:1000]) is None or parse_header(raw[:1000]).pixel_offset is None
