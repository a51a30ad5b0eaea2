"""SemVer parsing and precedence, the same in Python and in the database."""

import pytest
import semver
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.models import ModelVersion
from registry.versioning import InvalidVersion, parse_version, sort_key


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "1.0.0+b", "1.0.0-01", "a.b.c", "", "1.0.0 "])
def test_it_refuses_what_is_not_a_plain_semver(text):
    with pytest.raises(InvalidVersion):
        parse_version(text)


def test_it_refuses_numbers_too_large_for_the_columns():
    with pytest.raises(InvalidVersion):
        parse_version("2147483648.0.0")


identifier = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.text(alphabet="abcXYZ-", min_size=1, max_size=6).filter(lambda s: not s.isdigit()),
)
versions = st.builds(
    lambda major, minor, patch, pre: f"{major}.{minor}.{patch}" + (f"-{'.'.join(pre)}" if pre else ""),
    st.integers(0, 30), st.integers(0, 30), st.integers(0, 30),
    st.lists(identifier, max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(versions, versions)
def test_the_sort_key_orders_exactly_as_semver_precedence(a, b):
    expected = semver.Version.parse(a).compare(b)
    key_a, key_b = sort_key(a), sort_key(b)
    assert (key_a > key_b) - (key_a < key_b) == expected


def test_the_database_orders_versions_by_precedence(data_scientist, churn_model):
    texts = ["1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
             "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "0.9.10", "0.9.9", "10.0.0",
             "1.0.0-alpha-b", "1.0.0-Alpha", "1.0.0-9"]
    from registry.models import RegisteredModel

    model = RegisteredModel.objects.get(name="churn_prediction")
    for number, text in enumerate(texts, start=1):
        parsed = parse_version(text)
        ModelVersion.objects.create(
            model=model, version=text, number=number, major=parsed.major, minor=parsed.minor,
            patch=parsed.patch, prerelease=parsed.prerelease,
            prerelease_key=parsed.prerelease_key, framework="sklearn",
            created_by=data_scientist,
        )
    from_db = list(
        ModelVersion.objects.order_by("major", "minor", "patch", "prerelease_key")
        .values_list("version", flat=True)
    )
    assert from_db == sorted(texts, key=semver.Version.parse)
