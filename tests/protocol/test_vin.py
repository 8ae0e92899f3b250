"""VIN value object (ISO 3779 syntax, optional 49 CFR 565 check digit)."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from protocol import InvalidVinError, ProtocolError, Vin
from protocol.vin import VIN_ALPHABET, VIN_LENGTH, check_digit, with_check_digit

valid_vins = st.text(alphabet=VIN_ALPHABET, min_size=VIN_LENGTH, max_size=VIN_LENGTH)


class _HasVin(BaseModel):
    vin: Vin


def test_alphabet_is_digits_and_capitals_without_i_o_q() -> None:
    assert len(VIN_ALPHABET) == 33
    assert not set("IOQ") & set(VIN_ALPHABET)
    assert VIN_LENGTH == 17


@given(valid_vins)
def test_any_17_chars_from_the_alphabet_is_a_vin(text: str) -> None:
    vin = Vin(text)
    assert vin == text
    assert isinstance(vin, str)
    assert vin.wmi == text[:3]


@given(
    valid_vins,
    st.integers(min_value=0, max_value=VIN_LENGTH - 1),
    st.sampled_from("IOQ"),
)
def test_i_o_q_anywhere_is_rejected(text: str, position: int, bad: str) -> None:
    candidate = text[:position] + bad + text[position + 1 :]
    with pytest.raises(InvalidVinError) as info:
        Vin(candidate)
    assert info.value.code == "invalid_vin"
    assert info.value.value == candidate


@given(st.text(alphabet=VIN_ALPHABET).filter(lambda s: len(s) != VIN_LENGTH))
def test_wrong_length_is_rejected(text: str) -> None:
    with pytest.raises(InvalidVinError) as info:
        Vin(text)
    assert info.value.code == "invalid_vin"


@given(st.text(min_size=VIN_LENGTH, max_size=VIN_LENGTH))
def test_arbitrary_17_char_text_is_accepted_only_if_all_in_alphabet(text: str) -> None:
    if set(text) <= set(VIN_ALPHABET):
        assert Vin(text) == text
    else:
        with pytest.raises(InvalidVinError):
            Vin(text)


@pytest.mark.parametrize(
    "text",
    [
        "wvwzzz1jzxw000001",  # lower case is not ISO 3779
        "WVWZZZ1JZXW00000 ",  # trailing space inside 17 chars
        " WVWZZZ1JZXW000001",  # leading space, 18 chars
        "WVWZZZ1JZXW00000\n",
        "WVWZZZ1JZXW0000-1",
        "WVWZZZ1JZXW00000Ä",
        "",
    ],
)
def test_malformed_vins_are_rejected(text: str) -> None:
    with pytest.raises(InvalidVinError) as info:
        Vin(text)
    assert info.value.code == "invalid_vin"
    # The typed error is still a ProtocolError and a ValueError, so generic handlers catch it.
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [None, 12345678901234567, b"WVWZZZ1JZXW000001", ["W"] * 17])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidVinError) as info:
        Vin(value)
    assert info.value.value is value


def test_vin_of_vin_is_the_same_object() -> None:
    vin = Vin("WVWZZZ1JZXW000001")
    assert Vin(vin) is vin


def test_vin_survives_copy_and_pickle() -> None:
    vin = Vin("WVWZZZ1JZXW000001")
    for clone in (copy.copy(vin), copy.deepcopy(vin), pickle.loads(pickle.dumps(vin))):
        assert clone == vin
        assert isinstance(clone, Vin)


def test_known_check_digits() -> None:
    # Worked examples: 1M8GDM9AXKP042788 is the NHTSA example (check digit X);
    # 11111111111111111 is valid: the weights sum to 89 and 89 mod 11 == 1.
    assert check_digit("1M8GDM9AXKP042788") == "X"
    assert Vin("1M8GDM9AXKP042788").has_valid_check_digit
    assert Vin("11111111111111111").has_valid_check_digit
    assert not Vin("1M8GDM9A1KP042788").has_valid_check_digit


@given(valid_vins)
def test_with_check_digit_always_yields_a_valid_check_digit(text: str) -> None:
    fixed = with_check_digit(text)
    assert fixed.has_valid_check_digit
    assert fixed[:8] == text[:8]
    assert fixed[9:] == text[9:]


def test_check_digit_is_not_enforced() -> None:
    # Only North America mandates it (49 CFR 565); European VINs often carry a Z there.
    vin = Vin("WVWZZZ1JZXW000001")
    assert vin == "WVWZZZ1JZXW000001"


def test_pydantic_field_validates_and_serialises_as_string() -> None:
    model = _HasVin.model_validate({"vin": "WVWZZZ1JZXW000001"})
    assert isinstance(model.vin, Vin)
    assert model.model_dump_json() == '{"vin":"WVWZZZ1JZXW000001"}'
    with pytest.raises(ValidationError, match="ISO 3779"):
        _HasVin.model_validate({"vin": "WVWZZZ1JZXW00000O"})
    with pytest.raises(ValidationError):
        _HasVin.model_validate({"vin": "short"})
