"""Label sanitising: upstream's own test vectors (records/labels/labels_test.go)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesolite.dns.labels import domain_frag, rfc952, rfc1123

LONG = "fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123"


@pytest.mark.parametrize(
    ("name", "want_1123", "want_952"),
    [
        ("4abc123", "4abc123", "abc123"),
        ("-4abc123", "4abc123", "abc123"),
        ("a.b.c.d.e", "a-b-c-d-e", "a-b-c-d-e"),
        ("a.c.d_de.", "a-c-d-de", "a-c-d-de"),
        ("---a---b", "a---b", "a---b"),
        ("abc--123", "abc--123", "abc--123"),
        ("r29f.dev.angrypigs", "r29f-dev-angrypigs", "r29f-dev-angrypigs"),
        ("fd%gsf---gs7-f$gs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg-123", "fdgsf---gs7-fgs--d7fddg1"),
        ("89fdgsf---gs7-fgs--d7fddg---123", "89fdgsf---gs7-fgs--d7fddg---123", "fdgsf---gs7-fgs--d7fddg1"),
        (
            "chronos with a space AND MIXED CASE-2.0.1",
            "chronoswithaspaceandmixedcase-2-0-1",
            "chronoswithaspaceandmixe",
        ),
        ("hello" + "-" * 58 + "f", "hellof", "hellof"),
        ("hello" + "-" * 56 + "f", "hello" + "-" * 56 + "f", "hellof"),
        ("", "", ""),
        ("-", "", ""),
        ("a---", "a", "a"),
    ],
)
def test_label_vectors(name: str, want_1123: str, want_952: str) -> None:
    assert rfc1123(name) == want_1123
    assert rfc952(name) == want_952


def test_long_label_is_cut_at_63() -> None:
    assert rfc1123(LONG) == "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"


@pytest.mark.parametrize(
    ("name", "want_1123", "want_952"),
    [
        ("a..c.e", "a.c.e", "a.c.e"),
        ("(@ host . com", "host.com", "host.com"),
        ("MiXeDcase.CoM", "mixedcase.com", "mixedcase.com"),
        ("space space.com", "spacespace.com", "spacespace.com"),
        (
            "pod_123$abc.marathon-0.6.0-dev.mesos",
            "pod-123abc.marathon-0.6.0-dev.mesos",
            "pod-123abc.marathon-0.dev.mesos",
        ),
    ],
)
def test_framework_names_keep_dots(name: str, want_1123: str, want_952: str) -> None:
    assert domain_frag(name, rfc1123) == want_1123
    assert domain_frag(name, rfc952) == want_952


@given(st.text())
def test_labels_are_always_valid(name: str) -> None:
    for func, limit, bad_start in ((rfc1123, 63, "-"), (rfc952, 24, "-0123456789")):
        label = func(name)
        assert re.fullmatch(r"[0-9a-z-]*", label)
        assert len(label) <= limit
        assert not label or label[0] not in bad_start
