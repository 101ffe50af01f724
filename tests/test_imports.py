"""import_path: the object a dotted path names, or an ImportError that says what is missing."""

from __future__ import annotations

import pytest

from videoreason.imports import import_path
from videoreason.phases.grpo import GRPOModule


def test_a_dotted_path_names_its_object_and_a_bad_one_is_an_import_error():
    assert import_path("videoreason.phases.grpo.GRPOModule") is GRPOModule
    with pytest.raises(ImportError, match="has no attribute 'Nope'"):
        import_path("videoreason.phases.grpo.Nope")
    with pytest.raises(ImportError, match="not a dotted import path"):
        import_path("GRPOModule")
    with pytest.raises(ImportError):
        import_path("videoreason.no_such_module.Thing")
