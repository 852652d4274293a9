"""Fuzz targets over mailseal's parsers and each filter's entry point (atheris).

Each target feeds one input to library code and lets only MailsealError
through: that is the documented outcome of bad input (a clear message and
an exit code).  Anything else escaping is a crash, which atheris reports
with the input that caused it.  fuzz/run.py runs them; this file only
defines them and the throwaway identities they need.
"""

import base64
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


class World:
    """A temporary MAILSEAL_HOME with an unprotected identity and a trusted CA, opened once."""

    def __init__(self):
        from cryptography.hazmat.primitives import serialization

        from mailseal import config, identity, trust
        from mailseal.passphrase import Passphrase
        from mailseal.store import Store
        from mailseal.verification import Judge
        from tests import pki

        self.dir = tempfile.mkdtemp(prefix="mailseal-fuzz-")
        os.environ["MAILSEAL_HOME"] = self.dir
        os.environ["MAILSEAL_CONFIG"] = os.path.join(self.dir, "none.toml")
        ca = pki.CA("Fuzz CA")
        self.person = ca.issue("fuzz@example.org")
        self.store = Store(create=True)
        identity.import_pkcs12(self.store, self.person.p12(b"x"), b"x", unprotected=True)
        trust.install_file(self.store, ca.pem(), ca=True)
        self.config = config.load()
        self.judge = Judge(self.store, self.config)
        self.candidates = identity.decryption_candidates(self.store, Passphrase(), self.config)
        self.passphrase = Passphrase()
        self.cert_der = self.person.cert.public_bytes(serialization.Encoding.DER)


_world = None


def world():
    global _world
    if _world is None:
        _world = World()
    return _world


def mime_target(data):
    """The MIME parser, the canonical form and the part walk, as every filter uses them."""
    from mailseal import mime

    entity = mime.parse_message(data)
    if entity.is_multipart:
        for part in entity.parts():
            part.decoded_body()
    else:
        entity.decoded_body()
    mime.join(mime.split_outer_inner(entity, armour=True)[1])
    mime.parse_date(entity.get("Date") or "")


def cms_target(data):
    """The CMS parsers on raw DER/BER: signed-data, enveloped-data, certificate bundles."""
    from mailseal import cms
    from mailseal.cms import enveloped, signed

    kind = cms.content_type_of(data)
    if kind == "signed_data":
        signed.verify(data, detached=b"content")
        signed.certificates_only(data)
    elif kind in ("enveloped_data", "authenticated_enveloped_data"):
        enveloped.recipients(data)
        enveloped.decrypt(data, world().candidates)


def verify_target(data):
    """smime-verify and smime-decrypt --verify: the whole reading of a message."""
    from mailseal import display, reading

    result = reading.read(data, world().judge, candidates=world().candidates)
    display.page(result)
    result.to_json()


def decrypt_target(data):
    """smime-decrypt without --verify: the streaming path (decoded as read, decrypted as written)."""
    import io

    from mailseal import mime, reading

    root, der = reading.open_encrypted(io.BytesIO(data))
    if root is not None:
        mime.join(reading.decrypt_stream(root, der, world().candidates)[1])


def compose_target(data):
    """smime-sign and smime-encrypt (to oneself) on whatever a mail client might hand over."""
    from mailseal import composing, mime

    w = world()
    raw = b"From: fuzz@example.org\nTo: fuzz@example.org\n" + data
    mime.join(composing.sign_message(raw, w.store, w.config, w.passphrase))
    mime.join(composing.encrypt_message(raw, w.store, w.config, w.passphrase, to=["fuzz@example.org"]))


def import_target(data):
    """smime-import: what a signed message teaches the trust database."""
    from mailseal import harvest

    w = world()
    harvest.harvest(data, w.judge, w.store)


def view_target(data):
    """smime-view, aerc's part filter: DER, base64, PEM or a whole message."""
    from mailseal import display, parts

    w = world()
    display.page(parts.read_part(data, w.judge, candidates=w.candidates, frm="fuzz@example.org"))


def mutt_target(data):  # noqa: C901
    """smime-mutt, mutt's commands: verify (content and signature halves), verify-opaque, decrypt,
    the signer check and Ctrl-K's certificate extraction."""
    from mailseal import mutt_protocol
    from mailseal.errors import MailsealError

    w = world()
    half = len(data) // 2
    for call in (lambda: mutt_protocol.verify(w.store, w.config, data[:half], data[half:]),
                 lambda: mutt_protocol.verify_opaque(w.store, w.config, data),
                 lambda: mutt_protocol.decrypt(w.store, data, mutt_protocol.MuttPassphrase(None, w.config)),
                 lambda: mutt_protocol.signer_certificate(w.store, w.config, data),
                 lambda: mutt_protocol.pk7out(data)):
        try:
            call()
        except MailsealError:
            pass


TARGETS = {"mime": mime_target, "cms": cms_target, "verify": verify_target, "decrypt": decrypt_target,
           "compose": compose_target, "import": import_target, "view": view_target, "mutt": mutt_target}


def seeds():
    """Seed inputs: the corpus messages in tests/data, their CMS bodies, and mailseal's own output."""
    from mailseal import composing, mime
    from mailseal.errors import MailsealError

    found = []
    data = os.path.join(REPO, "tests", "data")
    for folder, _, files in os.walk(data):
        for name in files:
            if name.endswith((".eml", ".env", ".sig", ".p7m", ".msg")) or ".eml" in name:
                with open(os.path.join(folder, name), "rb") as handle:
                    found.append(handle.read())
    w = world()
    message = b"From: fuzz@example.org\nTo: fuzz@example.org\nSubject: seed\n\nseed text\n"
    found.append(message)
    found.append(mime.join(composing.sign_message(message, w.store, w.config, w.passphrase)))
    found.append(mime.join(composing.sign_message(message, w.store, w.config, w.passphrase, opaque=True)))
    found.append(mime.join(composing.encrypt_message(message, w.store, w.config, w.passphrase, sign=True)))
    found.append(mime.join(composing.encrypt_message(message, w.store, w.config, w.passphrase,
                                                     cipher="aes256_gcm")))
    for raw in list(found):
        try:
            entity = mime.parse_message(raw)
            parts = entity.parts() if entity.is_multipart else [entity]
            for part in parts:
                if "pkcs7" in part.ctype:
                    found.append(bytes(part.decoded_body()))
        except MailsealError:
            pass
    return found


def b64(data):
    return base64.b64encode(data)
