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
