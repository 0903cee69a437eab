"""Tests for checking and pseudonymising customer identifiers."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.access.identity import (
    IdentifierKind,
    InvalidIdentifier,
    check_identifier,
    pseudonymise,
)
from app.identity_codes import contains_identity_code

_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"

# Published examples of valid codes, independent of the implementation.
KNOWN_VALID_CODES = [
    "131052-308T",
    "010594Y9032",
    "010594Y9021",
    "020502E902X",
    "020516C903K",
    "010501A9032",
]

ALL_CENTURY_SIGNS = "+-UVWXYABCDEF"


def with_check_char(ddmmyy: str, sign: str, individual: str) -> str:
    """Build a code whose check character is right, to isolate other faults."""
    return ddmmyy + sign + individual + _CHECK_CHARS[int(ddmmyy + individual) % 31]


def with_wrong_check_char(code: str) -> str:
    """Replace the check character of a valid code by a different one."""
    right = code[-1]
    wrong = _CHECK_CHARS[(_CHECK_CHARS.index(right) + 1) % len(_CHECK_CHARS)]
    return code[:-1] + wrong


@pytest.mark.parametrize("code", KNOWN_VALID_CODES)
def test_test_helper_reproduces_published_check_characters(code: str) -> None:
    assert with_check_char(code[:6], code[6], code[7:10]) == code


@pytest.mark.parametrize("code", KNOWN_VALID_CODES)
def test_published_personal_identity_codes_are_accepted(code: str) -> None:
    assert check_identifier(code) is IdentifierKind.PERSONAL_IDENTITY_CODE


@pytest.mark.parametrize(
    "code",
    [
        with_check_char("170885", "+", "123"),  # 1800s
        with_check_char("311299", "+", "002"),  # last day of the 1800s
        with_check_char("010100", "-", "999"),  # 1900, temporary number range
        with_check_char("290296", "-", "245"),  # 1996 is a leap year
        with_check_char("290200", "A", "123"),  # 2000 is a leap year
        with_check_char("290204", "B", "900"),  # 2004 is a leap year
        with_check_char("310123", "F", "002"),
    ],
)
def test_valid_codes_from_each_century_are_accepted(code: str) -> None:
    assert check_identifier(code) is IdentifierKind.PERSONAL_IDENTITY_CODE


@pytest.mark.parametrize("sign", ALL_CENTURY_SIGNS)
def test_every_century_sign_is_accepted(sign: str) -> None:
    # The check character does not depend on the century sign.
    code = "010594" + sign + "9032"
    assert check_identifier(code) is IdentifierKind.PERSONAL_IDENTITY_CODE


@pytest.mark.parametrize(
    "code",
    [with_wrong_check_char(code) for code in KNOWN_VALID_CODES]
    + ["131052-3080", "131052-308G", "131052-308Z", "131052-308I"],
)
def test_wrong_check_character_is_refused(code: str) -> None:
    with pytest.raises(InvalidIdentifier, match="check character"):
        check_identifier(code)


@pytest.mark.parametrize(
    "code",
    [
        with_check_char("310299", "-", "123"),  # 31 February
        with_check_char("300299", "A", "123"),  # 30 February
        with_check_char("290200", "-", "123"),  # 1900 is not a leap year
        with_check_char("290200", "+", "123"),  # 1800 is not a leap year
        with_check_char("290201", "A", "123"),  # 2001 is not a leap year
        with_check_char("311199", "-", "123"),  # 31 November
        with_check_char("000199", "-", "123"),  # day 0
        with_check_char("011399", "-", "123"),  # month 13
        with_check_char("010099", "-", "123"),  # month 0
    ],
)
def test_code_with_impossible_date_is_refused(code: str) -> None:
    with pytest.raises(InvalidIdentifier, match="date"):
        check_identifier(code)


def test_leap_day_2000_is_accepted_but_leap_day_1900_is_not() -> None:
    assert check_identifier(with_check_char("290200", "A", "123")) == "personal_identity_code"
    with pytest.raises(InvalidIdentifier, match="date"):
        check_identifier(with_check_char("290200", "-", "123"))


@pytest.mark.parametrize("sign", ["G", "H", "K", "T", "Z"])
def test_unknown_century_sign_is_refused(sign: str) -> None:
    with pytest.raises(InvalidIdentifier, match="century sign"):
        check_identifier(with_check_char("010594", sign, "903"))


@pytest.mark.parametrize(
    "code",
    ["131052-308t", "010594y9032", "020502e902x", "020516c903k", "010501a9032"],
)
def test_lower_case_code_is_refused_as_lower_case(code: str) -> None:
    with pytest.raises(InvalidIdentifier, match="upper case"):
        check_identifier(code)


@pytest.mark.parametrize("individual", ["000", "001"])
def test_unissued_individual_numbers_are_refused(individual: str) -> None:
    with pytest.raises(InvalidIdentifier, match="individual number"):
        check_identifier(with_check_char("010594", "Y", individual))


def test_lowest_issued_individual_number_is_accepted() -> None:
    code = with_check_char("010594", "Y", "002")
    assert check_identifier(code) is IdentifierKind.PERSONAL_IDENTITY_CODE


@pytest.mark.parametrize(
    "business_id",
    [
        "0112038-9",
        "0737546-2",
        "1572860-0",  # remainder 0 gives check digit 0
        "1234567-1",
        "0000000-0",
    ],
)
def test_business_id_with_right_check_digit_is_accepted(business_id: str) -> None:
    assert check_identifier(business_id) is IdentifierKind.BUSINESS_ID


@pytest.mark.parametrize("business_id", ["0112038-8", "0737546-3", "1572860-1", "1234567-0"])
def test_business_id_with_wrong_check_digit_is_refused(business_id: str) -> None:
    with pytest.raises(InvalidIdentifier, match="check digit"):
        check_identifier(business_id)


@pytest.mark.parametrize("check_digit", "0123456789")
def test_business_id_whose_remainder_is_one_is_always_refused(check_digit: str) -> None:
    # 0000006: weighted sum 6 * 2 = 12, remainder 1, so no check digit fits.
    with pytest.raises(InvalidIdentifier, match="cannot be valid"):
        check_identifier("0000006-" + check_digit)


@pytest.mark.parametrize(
    "value",
    [
        "CUST-000123",
        "a",
        "12345678",
        "131052-308",  # one character short of an identity code
        "131052-308TX",  # one character too long
        "131052 308T",
        "0112038-99",
        "0112038_9",
        "asiakas-Jyväskylä-7",
        "\u0661\u0663\u0661\u0660\u0665\u0662-\u0663\u0660\u0668T",  # non-ASCII digits
        "131052-308\u212a",  # Kelvin sign, not an ASCII K
    ],
)
def test_other_values_are_accepted_as_opaque(value: str) -> None:
    assert check_identifier(value) is IdentifierKind.OPAQUE


@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_empty_or_blank_value_is_refused(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="empty"):
        check_identifier(value)


@pytest.mark.parametrize("value", [" 131052-308T", "131052-308T\n", "\tCUST-1", "0112038-9 "])
def test_whitespace_padded_value_is_refused(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="whitespace"):
        check_identifier(value)


REFUSED_VALUES = [
    with_wrong_check_char("131052-308T"),
    with_check_char("310299", "-", "123"),
    with_check_char("290200", "-", "123"),
    with_check_char("010594", "G", "903"),
    "131052-308t",
    with_check_char("010594", "Y", "000"),
    with_check_char("010594", "Y", "001"),
    "0112038-8",
    "0000006-0",
    " 131052-308T",
    "131052-308T ",
    "   \t",
]


@pytest.mark.parametrize("value", REFUSED_VALUES)
def test_error_message_never_contains_the_submitted_value(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        check_identifier(value)
    error = caught.value
    shown = [str(error), repr(error), *map(str, error.args)]
    for fragment in {value, value.strip()} - {""}:
        assert all(fragment not in text for text in shown)
    # Nothing chained either, so a logged traceback cannot carry the value.
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_invalid_identifier_is_a_value_error() -> None:
    assert issubclass(InvalidIdentifier, ValueError)


def test_identifier_kinds_have_stable_string_values() -> None:
    assert [str(kind) for kind in IdentifierKind] == [
        "personal_identity_code",
        "business_id",
        "opaque",
    ]


def test_pseudonymise_matches_rfc_4231_hmac_sha256_vector() -> None:
    # RFC 4231, test case 2.
    assert pseudonymise(b"Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@pytest.mark.parametrize("value", ["131052-308T", "0112038-9", "CUST-1", "ääkkönen"])
def test_pseudonymise_is_deterministic(value: str) -> None:
    key = b"k" * 32
    assert pseudonymise(key, value) == pseudonymise(key, value)


@pytest.mark.parametrize("value", ["131052-308T", "0112038-9", "CUST-1"])
def test_pseudonymise_depends_on_the_key(value: str) -> None:
    assert pseudonymise(b"a" * 32, value) != pseudonymise(b"b" * 32, value)


def test_pseudonymise_distinguishes_values() -> None:
    key = b"k" * 32
    assert pseudonymise(key, "010594Y9032") != pseudonymise(key, "010594Y9021")


def test_pseudonymise_is_lower_case_hex_of_sha256_length() -> None:
    digest = pseudonymise(b"key", "131052-308T")
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


def test_pseudonymise_encodes_the_value_as_utf8() -> None:
    key = b"key"
    expected = hmac.new(key, b"\xc3\xa4", hashlib.sha256).hexdigest()
    assert pseudonymise(key, "\u00e4") == expected


def test_pseudonymise_does_not_contain_the_value() -> None:
    assert "131052-308T" not in pseudonymise(b"key", "131052-308T")


class TestCodesInsideText:
    """contains_identity_code: what the request checks refuse in ids, filters and free text."""

    @pytest.mark.parametrize(
        "text",
        ["131052-308T", "ura-131052-308t-x", "asiakas 131052-308T soitti", "y:0112038-9", "0112038-9"],
    )
    def test_a_code_written_as_its_own_token_is_found(self, text: str) -> None:
        assert contains_identity_code(text)

    @pytest.mark.parametrize(
        # Each holds a code-shaped run with a valid check character, glued to more digits.
        "text",
        ["wrk0-17640112038-9", "batch-20112038-9", "1131052-308T", "0112038-90"],
    )
    def test_a_code_shaped_run_inside_a_longer_number_is_not_a_code(self, text: str) -> None:
        assert not contains_identity_code(text)
