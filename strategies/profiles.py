"""Profiles: every kernel the model knows, or the three versions."""

from __future__ import annotations

from hypothesis import strategies as st

from pcpfuzz.profiles import PROFILES, VERSIONS, Profile


def profiles() -> st.SearchStrategy[Profile]:
    """Any profile: versions, the rungs of the series, the zoo of known bugs."""
    return st.sampled_from(tuple(PROFILES.values()))


def versions() -> st.SearchStrategy[Profile]:
    """v5.9-nofix, v5.10 or v5.11."""
    return st.sampled_from(VERSIONS)
