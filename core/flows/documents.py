"""How each document kind is named to residents."""

from __future__ import annotations

from core.i18n import N_, Translator
from core.schedule import DocumentKind

_NAMES: dict[DocumentKind, str] = {
    DocumentKind.RESIDENCE_CARD: N_("Residence card (period of stay)"),
    DocumentKind.RESIDENCE_CARD_PR: N_("Residence card (permanent resident / HSP ii)"),
    DocumentKind.SPR_CERTIFICATE: N_("Special permanent resident certificate"),
    DocumentKind.SPECIFIED_RESIDENCE_CARD: N_("Specified Residence Card"),
    DocumentKind.MY_NUMBER_CARD: N_("My Number Card"),
    DocumentKind.E_CERTIFICATE: N_("My Number Card e-certificate"),
    DocumentKind.INSURANCE_CERTIFICATE: N_("Health insurance eligibility certificate"),
}

_SHORT: dict[DocumentKind, str] = {
    DocumentKind.RESIDENCE_CARD: N_("Residence card"),
    DocumentKind.RESIDENCE_CARD_PR: N_("PR residence card"),
    DocumentKind.SPR_CERTIFICATE: N_("SPR certificate"),
    DocumentKind.SPECIFIED_RESIDENCE_CARD: N_("Specified card"),
    DocumentKind.MY_NUMBER_CARD: N_("My Number Card"),
    DocumentKind.E_CERTIFICATE: N_("E-certificate"),
    DocumentKind.INSURANCE_CERTIFICATE: N_("Eligibility cert."),
}


def document_name(t: Translator, kind: str) -> str:
    """The full name of a document kind, for sentences."""
    return t.gettext(_NAMES[DocumentKind(kind)])


def document_label(t: Translator, kind: str) -> str:
    """A short name (at most 20 characters in English) for buttons."""
    return t.gettext(_SHORT[DocumentKind(kind)])
