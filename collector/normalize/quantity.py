"""Kubernetes resource quantities, parsed exactly.

The grammar is the one of ``k8s.io/apimachinery/pkg/api/resource``::

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= <number> | <sign><number>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

Values are kept as :class:`fractions.Fraction`, so ``0.1`` is exactly one tenth and nothing is
lost to binary floating point. ``to_millicores`` and ``to_integer`` round up, away from zero, as
``Quantity.MilliValue()`` and ``Quantity.Value()`` do.

Exponents are bounded (see ``MAX_EXPONENT``): ``1e400`` is a valid quantity and parses, but
``1e999999999`` would ask for a billion-digit integer, so it is refused as out of range.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "MAX_EXPONENT",
    "parse_quantity",
    "to_base_number",
    "to_integer",
    "to_millicores",
]

MAX_EXPONENT = 1000
_MAX_LENGTH = 1024

_QUANTITY = re.compile(
    r"""
    (?P<sign>[+-])?
    (?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)
    (?:
        (?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)
      | [eE](?P<exponent>[+-]?[0-9]+)
      | (?P<decimal>[mkMGTPE])
    )?
    """,
    re.VERBOSE,
)

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


@lru_cache(maxsize=8192)
def parse_quantity(text: str) -> Fraction:
    """Parse a Kubernetes quantity (``"1930m"``, ``"1959264Ki"``, ``"750e-3"``) exactly.

    Raises ``ValueError`` on anything that is not a quantity, and on exponents so large that
    the exact value could not reasonably be held (more than ``MAX_EXPONENT`` decimal digits).
    """
    if not isinstance(text, str):
        raise ValueError(f"quantity must be a string, not {type(text).__name__}")
    if len(text) > _MAX_LENGTH:
        raise ValueError(f"quantity too long ({len(text)} characters)")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid quantity {text[:64]!r}")
    number = match["number"]
    whole, _, frac = number.partition(".")
    numerator = int(whole + frac) if (whole or frac) else 0
    scale = len(frac)  # value = numerator * 10**-scale
    if (binary := match["binary"]) is not None:
        value = Fraction(numerator * 1024 ** _BINARY[binary], 10**scale)
    else:
        if (exponent_text := match["exponent"]) is not None:
            exponent = int(exponent_text)
        elif (decimal := match["decimal"]) is not None:
            exponent = _DECIMAL[decimal]
        else:
            exponent = 0
        power = exponent - scale
        if abs(exponent) > MAX_EXPONENT or abs(power) > MAX_EXPONENT + _MAX_LENGTH:
            raise ValueError(f"quantity exponent out of range in {text[:64]!r}")
        value = Fraction(numerator * 10**power) if power >= 0 else Fraction(numerator, 10**-power)
    return -value if match["sign"] == "-" else value


def _ceil_away_from_zero(value: Fraction) -> int:
    magnitude = -(-abs(value.numerator) // value.denominator)
    return magnitude if value.numerator >= 0 else -magnitude


@lru_cache(maxsize=8192)
def to_millicores(text: str) -> int:
    """The quantity times 1000, rounded up away from zero (``MilliValue``): ``"1.5"`` -> 1500."""
    return _ceil_away_from_zero(parse_quantity(text) * 1000)


@lru_cache(maxsize=8192)
def to_integer(text: str) -> int:
    """The quantity in base units, rounded up away from zero (``Value``): ``"1Ki"`` -> 1024."""
    return _ceil_away_from_zero(parse_quantity(text))


@lru_cache(maxsize=8192)
def to_base_number(text: str) -> int | float:
    """The quantity in base units as a JSON-friendly number: an int when integral, else a float.

    Used for the ``capacity``/``allocatable`` maps, where CPU stays in cores (``"1930m"`` ->
    1.93) and everything else is usually an integer count of bytes or items.
    """
    value = parse_quantity(text)
    if value.denominator == 1:
        return value.numerator
    return float(value)
