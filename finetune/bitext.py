"""The Bitext customer-support sample as a fictitious company's texts: placeholders filled with its details.

Bitext's replies carry placeholders (``{{Customer Support Phone Number}}``); filled with one company's details they
read like a real help desk's answers, with the concrete facts (numbers, hours, addresses) a real FAQ has.
"""

from __future__ import annotations

import re

COMPANY = {  # a fictitious company's details, put where Bitext has placeholders
    "Customer Support Phone Number": "1-800-555-0142",
    "Support Phone Number": "1-800-555-0142",
    "Customer Support Availability": "8am to 8pm, Monday to Saturday",
    "Customer Support Email": "help@northwind-shop.example",
    "Customer Support Email Address": "help@northwind-shop.example",
    "Email": "help@northwind-shop.example",
    "Website Name": "northwind-shop.example",
    "Website URL": "https://northwind-shop.example",
    "Company Name": "Northwind Shop",
    "Live Chat": "Live Chat",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


def fill(text: str) -> str:
    """Bitext placeholders replaced by the company's details; menu names ({{Order History}}) keep their name."""
    return _PLACEHOLDER.sub(lambda m: COMPANY.get(m.group(1), m.group(1)), text)
