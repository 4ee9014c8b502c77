"""Fixtures for the DICOM tests: a small synthetic planning set, written once per session."""

import pytest

from io_helpers import make_reference


@pytest.fixture(scope="session")
def reference():
    return make_reference()


@pytest.fixture(scope="session")
def written_set(tmp_path_factory, reference):
    from igrt.io.dicom import write_planning_folder

    folder = tmp_path_factory.mktemp("planning")
    return write_planning_folder(reference, folder)
