"""One S/MIME part without its message: what a part filter (aerc's [filters]) is given.

aerc hands a filter one leaf part, transfer-decoded, without any header:
for application/pkcs7-mime that is the bare CMS blob (DER or BER), with no
smime-type to say what it is.  Other tools hand over the same part as
base64 text or PEM.  This module recognises the form, sniffs the CMS
content type, and wraps the blob in a minimal message (the From given by
the caller, the matching application/pkcs7-mime header, base64) so that
mailseal.reading applies exactly the same verdict logic as to a whole
message.
"""

import re

from . import mime
from .errors import MailsealError, MalformedCMS, NotAMessage, Unsupported

#: CMS content type (mailseal.cms.content_type_of) -> smime-type parameter
SMIME_TYPES = {"signed_data": "signed-data", "enveloped_data": "enveloped-data",
               "authenticated_enveloped_data": "authEnveloped-data", "compressed_data": "compressed-data"}
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]+")


def cms_blob(data):
    """The CMS DER/BER of a part given as DER, base64 text or PEM; None if it is none of them."""
    from .cms import content_type_of

    if not data or data.isspace():
        raise NotAMessage("input is empty")
    if data[:1] == b"\x30":
        return bytes(data) if content_type_of(data) else None
    pem = _PEM.search(data)
    if pem:
        body = b"\n".join(line for line in pem.group(2).splitlines() if b":" not in line)  # RFC 1421 headers
        candidate = mime.decode_base64(body)
        return candidate if content_type_of(candidate) else None
    if _BASE64.fullmatch(data):
        try:
            candidate = mime.decode_base64(data)
        except MailsealError:
            return None
        return candidate if content_type_of(candidate) else None
    return None


def smime_type(der):
    """The smime-type of a CMS blob: 'signed-data', 'enveloped-data', 'authEnveloped-data', ..."""
    from .cms import content_type_of

    kind = content_type_of(der)
    if kind not in SMIME_TYPES:
        raise Unsupported(f"the CMS data holds {kind or 'an unknown content type'}, which is not S/MIME mail")
    return SMIME_TYPES[kind]


def wrap(der, frm=None, subject=None):
    """A minimal message around a CMS blob: From (if known), Subject, the application/pkcs7-mime header, base64."""
    stype = smime_type(der)
    head = []
    for name, value in (("From", frm), ("Subject", subject)):
        if value:
            clean = " ".join(str(value).split())  # no header injection through the environment
            head.append(f"{name}: {clean}\r\n".encode("utf-8", "surrogateescape"))
    head.append(b"MIME-Version: 1.0\r\n")
    body = mime.join(mime.smime_part(stype, der))
    return b"".join(head) + body


def as_message(data, frm=None, subject=None):
    """(message bytes, how the input came) for a part filter's input.

    A CMS blob in any form is wrapped (see wrap); a whole message whose
    outermost layer is S/MIME is taken as it is.  Anything else raises
    MalformedCMS with what was received.
    """
    der = cms_blob(data)
    if der is not None:
        return wrap(der, frm, subject), "part"
    from .reading import smime_kind

    try:
        message = mime.parse_message(data)
        if message.headers and smime_kind(message) is not None:
            return bytes(data), "message"
    except MailsealError:
        pass
    raise MalformedCMS(f"the part ({len(data)} bytes) is not S/MIME data: neither CMS (DER or BER),"
                       " nor base64 or PEM of it, nor an S/MIME message")


def without_outer_comparison(reading):
    """Drop the notes that compare protected header fields (RFC 9788) with the outer ones.

    A part filter sees no outer header (the wrapper has none, or only what
    the client reformatted), so such differences mean nothing there.
    """
    if reading.protection is not None and reading.protection.notes:
        dropped = reading.protection.notes
        reading.notes = [n for n in reading.notes if not any(n is d for d in dropped)]
        reading.protection.notes = []
    return reading


def message_id(reading):
    """The Message-ID a decrypted part knows of itself: the protected one (RFC 9788), or None."""
    if reading.protection is not None:
        value = reading.protection.fields.get("message-id")
        if value and value.strip():
            return value.strip()
    return None



def read_part(data, judge, *, candidates=None, frm=None, subject=None, mime_type=None):
    """The Reading of a part filter's input: decrypted (given candidates) and verified, layer by layer.

    frm is the sender the signature must bind to (aerc gives it in
    AERC_FROM; a whole message brings its own).  mime_type is the part's
    type as the client names it (aerc: AERC_MIME_TYPE), if known.
    """
    from . import reading

    if (mime_type or "").lower() in reading.SIGNATURE_TYPES:
        raise NotAMessage("this is a detached signature (smime.p7s): it can be checked only with the part it"
                          " signs, which a part filter never sees",
                          hint="verify the whole message: :pipe -m smime-verify --display")
    message, form = as_message(data, frm, subject)
    result = reading.read(message, judge, candidates=candidates, peel_inner_signatures=True, search_parts=True)
    return without_outer_comparison(result) if form == "part" else result


def error_page(exc, data):
    """What a part filter shows when it cannot read its part: the error banner, then the part itself
    when it is text, else what it is (binary CMS in a pager is noise)."""
    from . import display
    from .cms import content_type_of

    lines = [display.banner(error=exc)]
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.strip() and not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text):
        return "\n".join(lines) + "\n" + display._defuse(text)
    kind = content_type_of(data) if data[:1] == b"\x30" else None
    what = f"CMS {SMIME_TYPES.get(kind, kind)}" if kind else "binary data"
    lines.append(f"  the part: {len(data)} bytes of {what}; not shown")
    return "\n".join(lines) + "\n"
