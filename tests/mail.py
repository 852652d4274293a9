"""Signed test messages with a chosen signer, signing time and Message-ID."""

import base64
import itertools

from cryptography.hazmat.primitives import serialization

_counter = itertools.count(1)


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def signed_message(person, *, frm=None, when=None, message_id=None, body="Signed words.\n", encryption_cert=None,
                   chain=True, to="bob@example.org"):
    """A multipart/signed message by person (a tests.pki.Person), LF line endings like a maildir."""
    from mailseal.cms import signed

    frm = frm or person.email
    n = next(_counter)
    message_id = message_id or f"<signed-{n}@example.org>"
    content = ("Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body.replace("\n", "\r\n")).encode()
    ca_chain = [der(person.ca.cert)] if chain and person.ca else []
    sig = b"".join(signed.sign(content, person.key, der(person.cert), ca_chain, signing_time=when,
                               encryption_cert=der(encryption_cert) if encryption_cert is not None else None))
    boundary = f"sig-{n}".encode()
    head = (f"From: {frm}\r\nTo: {to}\r\nSubject: note {n}\r\nMessage-ID: {message_id}\r\n"
            "MIME-Version: 1.0\r\n").encode()
    raw = (head + b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;"
           b" boundary=\"" + boundary + b"\"\r\n\r\n--" + boundary + b"\r\n" + content + b"\r\n--" + boundary
           + b"\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(sig).replace(b"\n", b"\r\n") + b"--" + boundary + b"--\r\n")
    return raw.replace(b"\r\n", b"\n")


def write_maildir(directory, messages):
    """A maildir holding the messages (in cur/); returns its path."""
    import os

    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    for i, raw in enumerate(messages):
        with open(os.path.join(directory, "cur", f"{i:06d}.mailseal:2,S"), "wb") as handle:
            handle.write(raw)
    return str(directory)
