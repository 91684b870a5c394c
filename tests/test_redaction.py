"""Personal data redaction on realistic customer messages: what must be masked, and look-alikes that must not be
(order numbers, amounts, dates, tracking codes)."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.storage.redaction import Redactor


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


@pytest.mark.parametrize("message, expected", [
    ("hi, it's jane.doe+shop@mail.example.co.uk, I never got the confirmation",
     "hi, it's [EMAIL], I never got the confirmation"),
    ("charged twice on my visa 4111 1111 1111 1111!!", "charged twice on my visa [CARD]!!"),
    ("card no 5500-0000-0000-0004 exp 12/27", "card no [CARD] exp 12/27"),
    ("refund to DE89 3704 0044 0532 0130 00 thanks", "refund to [IBAN] thanks"),
    ("my iban is GB29NWBK60161331926819.", "my iban is [IBAN]."),
    ("call me back on +44 20 7946 0958 after 5pm", "call me back on [PHONE] after 5pm"),
    ("my number is (415) 555-2671", "my number is [PHONE]"),
    ("ring 020 7946 0958 pls", "ring [PHONE] pls"),
    ("SSN 123-45-6789 for the tax form", "SSN [SSN] for the tax form"),
    ("login blocked from 192.168.10.24 again", "login blocked from [IP] again"),
    ("email a@b.io or call +1 800 555 0142, card 4012888888881881",
     "email [EMAIL] or call [PHONE], card [CARD]"),
])
def test_personal_data_is_masked(redactor, message, expected):
    result = redactor.redact(message)
    assert result.text == expected and result.changed


@pytest.mark.parametrize("message", [
    "where is order 113542617735902?",  # Bitext-style order number: not a valid card or phone
    "I was charged $1,249.99 on 2024-03-05 for 3 items",
    "tracking 1Z999AA10123456784 shows nothing",
    "card ending 1111 was declined",
    "order #4111111111111112 never arrived",  # 16 digits failing the Luhn check
    "version 1.2.3.4567 of the app crashes",
    "refunds take 5-10 business days, ref 2023-11-24",
])
def test_look_alikes_are_left_alone(redactor, message):
    assert redactor.redact(message).text == message


def test_counts_kinds_and_extra_patterns():
    r = Redactor(kinds=["email"], extra_patterns={"customer_id": r"CUST-\d{6}"}, placeholder="<{kind}>")
    result = r.redact("I am CUST-123456, mail me at x@y.com or CUST-654321; card 4111111111111111")
    assert result.text == "I am <CUSTOMER_ID>, mail me at <EMAIL> or <CUSTOMER_ID>; card 4111111111111111"
    assert result.found == {"customer_id": 2, "email": 1}


def test_settings_switch_it_off_and_reject_bad_patterns():
    assert Redactor.from_settings(load_settings(privacy={"redact": []}).privacy) is None
    assert Redactor.from_settings(load_settings().privacy) is not None
    with pytest.raises(ConfigError, match="customer_id: not a valid regular expression"):
        load_settings(privacy={"extra_patterns": {"customer_id": "CUST-(\\d"}})
    with pytest.raises(ConfigError):
        load_settings(privacy={"redact": ["email", "passport"]})


def _luhn_complete(body: str) -> str:
    """``body`` with the check digit that makes it Luhn-valid."""
    from stdnum import luhn

    return body + luhn.calc_check_digit(body)


try:
    from hypothesis import given, settings as hyp_settings, strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the dev extras
    given = None

if given is not None:
    @hyp_settings(max_examples=150, deadline=None)
    @given(prefix=st.sampled_from(["4", "51", "55", "22", "27", "34", "37", "35", "6"]),
           length=st.integers(13, 19), digits=st.text("0123456789", min_size=19, max_size=19),
           separator=st.sampled_from(["", " ", "-", "."]), group=st.sampled_from([4, 3, 5]),
           before=st.sampled_from(["my card ", "card no. ", "charged on ", "(", "card:"]),
           after=st.sampled_from(["", ".", "!", " please", ")", ", exp 12/27"]))
    def test_card_numbers_are_masked_whatever_separates_their_digits(redactor, prefix, length, digits, separator,
                                                                      group, before, after):
        """Luhn-valid numbers with an issuer's prefix, written as customers write them (spaces, dashes, dots, or
        nothing between groups), are masked alike, and no run of their digits is left behind."""
        number = _luhn_complete((prefix + digits)[: length - 1])
        written = separator.join(number[i:i + group] for i in range(0, len(number), group))
        out = redactor.redact(before + written + after)
        assert out.text == before + "[CARD]" + after, (written, out.text)
        assert out.found == {"card": 1}


def test_dotted_card_numbers_and_their_look_alikes():
    r = Redactor()
    assert r.redact("card 4111.1111.1111.1111 was declined").text == "card [CARD] was declined"
    assert r.redact("version 2.14.1 and order 4111.11 EUR").text == "version 2.14.1 and order 4111.11 EUR"
    assert r.redact("tracking 4111.1111.1111.1112").text == "tracking 4111.1111.1111.1112"  # not Luhn-valid
