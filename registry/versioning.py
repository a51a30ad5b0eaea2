"""Semantic versions: parsing, and a sort key that orders the same in Python and in SQL."""

from dataclasses import dataclass

import semver

from core.limits import MAX_INT

# Components are stored in integer columns; identifiers are zero-padded into a digits-only key
# (digits sort the same under every database collation, letters do not).
MAX_COMPONENT = MAX_INT
MAX_NUMERIC_IDENTIFIER_DIGITS = 20
MAX_VERSION_LENGTH = 64


class InvalidVersion(ValueError):
    pass


@dataclass(frozen=True)
class ParsedVersion:
    text: str
    major: int
    minor: int
    patch: int
    prerelease: str

    @property
    def prerelease_key(self) -> str:
        return prerelease_key(self.prerelease)


def parse_version(text: str) -> ParsedVersion:
    """Parse MAJOR.MINOR.PATCH[-PRERELEASE]; build metadata and a leading 'v' are refused."""
    if not isinstance(text, str) or not text:
        raise InvalidVersion("a version is required, e.g. 1.2.0")
    if len(text) > MAX_VERSION_LENGTH:
        raise InvalidVersion(f"at most {MAX_VERSION_LENGTH} characters")
    if text[0] in "vV":
        raise InvalidVersion(f"write {text[1:]!r}, without the leading 'v'")
    try:
        parsed = semver.Version.parse(text)
    except (ValueError, TypeError):
        raise InvalidVersion(
            f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0 or 2.0.0-rc.1)"
        ) from None
    if parsed.build:
        raise InvalidVersion("build metadata (+...) is not allowed: it does not order versions")
    for component in (parsed.major, parsed.minor, parsed.patch):
        if component > MAX_COMPONENT:
            raise InvalidVersion(f"each number must be at most {MAX_COMPONENT}")
    prerelease = parsed.prerelease or ""
    for identifier in prerelease.split(".") if prerelease else ():
        if identifier.isdigit() and len(identifier) > MAX_NUMERIC_IDENTIFIER_DIGITS:
            raise InvalidVersion("a numeric pre-release identifier is too long")
    return ParsedVersion(text, parsed.major, parsed.minor, parsed.patch, prerelease)


def prerelease_key(prerelease: str) -> str:
    """A digits-only string whose plain string order is SemVer 2.0 pre-release precedence.

    A release ("") sorts after every pre-release of the same MAJOR.MINOR.PATCH. Numeric
    identifiers sort below alphanumeric ones; a longer identifier list sorts after its prefix.
    """
    if not prerelease:
        return "3"
    parts = []
    for identifier in prerelease.split("."):
        if identifier.isdigit():
            parts.append("1" + identifier.zfill(MAX_NUMERIC_IDENTIFIER_DIGITS))
        else:
            # Characters are [0-9A-Za-z-], ord 45..122: three digits each, "000" ends the word.
            parts.append("2" + "".join(f"{ord(c):03d}" for c in identifier) + "000")
    return "".join(parts)


def sort_key(text: str) -> tuple:
    v = parse_version(text)
    return (v.major, v.minor, v.patch, v.prerelease_key)
