"""The quantity parser: every Kubernetes notation, exact, rounding like MilliValue()/Value()."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from collector.normalize.quantity import (
    parse_quantity,
    to_base_number,
    to_integer,
    to_millicores,
)

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {
    "m": Fraction(1, 1000),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
SUFFIXES = {**BINARY, **DECIMAL}


@pytest.mark.parametrize(
    ("text", "value", "millicores", "integer"),
    [
        ("0", 0, 0, 0),
        ("1", 1, 1000, 1),
        ("2", 2, 2000, 2),
        ("1930m", Fraction(193, 100), 1930, 2),
        ("100m", Fraction(1, 10), 100, 1),
        ("0.5", Fraction(1, 2), 500, 1),
        (".5", Fraction(1, 2), 500, 1),
        ("5.", 5, 5000, 5),
        ("+1.5", Fraction(3, 2), 1500, 2),
        ("-1.5", Fraction(-3, 2), -1500, -2),  # rounds away from zero, as k8s does
        ("-0", 0, 0, 0),
        ("0.1m", Fraction(1, 10000), 1, 1),  # sub-millicore rounds up
        ("1k", 1000, 1_000_000, 1000),
        ("1M", 10**6, 10**9, 10**6),
        ("1G", 10**9, 10**12, 10**9),
        ("1T", 10**12, 10**15, 10**12),
        ("1P", 10**15, 10**18, 10**15),
        ("1E", 10**18, 10**21, 10**18),
        ("1Ki", 1024, 1_024_000, 1024),
        ("1959264Ki", 2006286336, 2006286336000, 2006286336),
        ("1.5Gi", 1610612736, 1610612736000, 1610612736),
        ("1Mi", 2**20, 2**20 * 1000, 2**20),
        ("1Ti", 2**40, 2**40 * 1000, 2**40),
        ("1Pi", 2**50, 2**50 * 1000, 2**50),
        ("1Ei", 2**60, 2**60 * 1000, 2**60),
        ("750e-3", Fraction(3, 4), 750, 1),
        ("1e9", 10**9, 10**12, 10**9),
        ("1E3", 1000, 10**6, 1000),
        ("1e+3", 1000, 10**6, 1000),
        ("2.5e2", 250, 250_000, 250),
        ("1e-3", Fraction(1, 1000), 1, 1),
        ("12e-4", Fraction(12, 10000), 2, 1),  # 1.2 millicores -> 2
        ("18181869946", 18181869946, 18181869946000, 18181869946),
        ("0.000000001", Fraction(1, 10**9), 1, 1),
        ("1e400", 10**400, 10**403, 10**400),  # absurd but valid: exact
    ],
)
def test_table(text: str, value: Fraction | int, millicores: int, integer: int) -> None:
    assert parse_quantity(text) == value
    assert to_millicores(text) == millicores
    assert to_integer(text) == integer


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "1 ",
        " 1",
        "1KI",
        "1ki",
        "1K",
        "1e",
        "1E+",
        "e3",
        ".",
        "+",
        "-",
        "--1",
        "1.2.3",
        "1Kii",
        "1mi",
        "0x10",
        "1_000",
        "１",
        "1e3.5",
        "Ki",
        "1 Ki",
        "inf",
        "NaN",
        "1e1001",
        "1e-1001",
        "1" * 2000,
    ],
)
def test_garbage_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)
    with pytest.raises(ValueError):
        to_millicores(text)


def test_base_number_is_int_when_integral_else_float() -> None:
    assert to_base_number("1930m") == 1.93
    assert isinstance(to_base_number("2"), int)
    assert isinstance(to_base_number("2000m"), int)
    assert to_base_number("1Ki") == 1024


def _decimal_text(value: Fraction, digits: int) -> str:
    """``value`` (with a denominator dividing 10**digits) as a plain decimal string."""
    sign = "-" if value < 0 else ""
    scaled = abs(value) * 10**digits
    assert scaled.denominator == 1
    text = str(scaled.numerator).rjust(digits + 1, "0")
    return f"{sign}{text[:-digits]}.{text[-digits:]}" if digits else f"{sign}{text}"


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(sorted(SUFFIXES)))
def test_integer_with_suffix(n: int, suffix: str) -> None:
    assert parse_quantity(f"{n}{suffix}") == n * SUFFIXES[suffix]


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(0, 9))
@example(-1, 3)
def test_decimal_round_trip(units: int, digits: int) -> None:
    value = Fraction(units, 10**digits)
    assert parse_quantity(_decimal_text(value, digits)) == value


@given(st.integers(0, 10**9), st.integers(-30, 30), st.sampled_from("eE"))
def test_exponent_notation(n: int, exponent: int, letter: str) -> None:
    expected = n * Fraction(10) ** exponent
    assert parse_quantity(f"{n}{letter}{exponent}") == expected
    assert parse_quantity(f"{n}{letter}{exponent:+d}") == expected


@given(st.integers(0, 10**6))
def test_suffix_equivalences(n: int) -> None:
    assert parse_quantity(f"{n}Ki") == parse_quantity(str(n * 1024))
    assert parse_quantity(f"{n}Mi") == parse_quantity(f"{n * 1024}Ki")
    assert parse_quantity(f"{n}Gi") == parse_quantity(f"{n * 1024}Mi")
    assert parse_quantity(f"{n}Ei") == parse_quantity(f"{n * 1024}Pi")
    assert parse_quantity(f"{n}k") == parse_quantity(f"{n}e3") == parse_quantity(f"{n}E3")
    assert parse_quantity(f"{n}G") == parse_quantity(f"{n}e9") == parse_quantity(f"{n * 1000}M")
    assert parse_quantity(f"{n}") == parse_quantity(f"{n * 1000}m")
    assert parse_quantity(f"{n}m") == parse_quantity(f"{n}e-3")


@given(
    st.fractions(min_value=-(10**9), max_value=10**9, max_denominator=10**6),
    st.fractions(min_value=-(10**9), max_value=10**9, max_denominator=10**6),
)
def test_monotonic_and_rounding(a: Fraction, b: Fraction) -> None:
    # Express both exactly in millis where possible; otherwise via exponent notation.
    def text(x: Fraction) -> str:
        # x = p/q; write as decimal with enough digits when q divides a power of ten.
        for digits in range(13):
            if (x * 10**digits).denominator == 1:
                return _decimal_text(x, digits)
        return ""

    ta, tb = text(a), text(b)
    if not ta or not tb:
        return
    qa, qb = parse_quantity(ta), parse_quantity(tb)
    assert qa == a and qb == b
    if a < b:
        assert qa < qb
        assert to_millicores(ta) <= to_millicores(tb)
        assert to_integer(ta) <= to_integer(tb)
    # Rounding: away from zero, never below the exact value's magnitude.
    assert abs(to_millicores(ta)) >= abs(a * 1000)
    assert abs(to_millicores(ta)) - abs(a * 1000) < 1
    assert abs(to_integer(ta)) >= abs(a)
    assert abs(to_integer(ta)) - abs(a) < 1


@given(st.text(max_size=40))
@example("1e99999999999")
@example("9" * 1024 + "E")
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        value = parse_quantity(text)
    except ValueError:
        return
    assert isinstance(value, Fraction)
