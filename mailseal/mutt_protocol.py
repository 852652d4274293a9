"""mutt's classic S/MIME command protocol, served by mailseal (bin/smime-mutt).

With crypt_use_gpgme unset, mutt and neomutt run one shell command per
S/MIME operation ($smime_sign_command, $smime_verify_command, ...).  They
pass temporary files, not pipes, and read back what openssl would have
written:

- sign: %f the MIME entity (LF, 7-bit), the passphrase line on stdin;
  stdout the detached SignedData, DER.
- encrypt: %f the entity, %c the recipients' certificate files; stdout
  the EnvelopedData, DER (mutt labels it enveloped-data, so AES-CBC).
- decrypt: %f the DER, the passphrase line on stdin; stdout the decrypted
  MIME entity.
- verify: %f the signed part (CRLF), %s the DER signature; nothing on
  stdout (mutt closes it), and the signature is good only when the exit
  status is 0 and the first stderr line is "Verification successful".
  All of stderr is shown in the pager.
- verify_opaque: %s the DER; stdout the signed entity, stderr as verify.
- the sender check: get_signer_cert writes the signer's PEM certificate
  into the existing file %c, get_cert_email prints its addresses, which
  mutt compares with From by a case-insensitive *prefix* match.
- Ctrl-K: pk7out (%f the message; stdout a PEM PKCS7), get_cert (stdout
  PEM certificates), import_cert (%f those certificates, a label on stdin;
  what it prints is shown to the user).

Here each step does mailseal's work: signing uses your identity from the
trust database (the key mutt names is only a fallback), a signature is
"successful" only when mailseal's verdict is trusted, the sender check
binds the signer to From exactly (closing mutt's prefix match), and Ctrl-K
records a certificate as seen (never trusted by itself) and says how to
trust it.  ASN.1 stays in mailseal.cms; PEM here is only base64 framing.
"""

import base64
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import certs, identity, mime
from .addresses import header_addresses
from .errors import (FileProblem, MailsealError, MalformedCMS, NoIdentity, NotAMessage, PassphraseNeeded,
                     RecipientsBlocked, Unsupported, WrongPassphrase)
from .passphrase import Passphrase

#: the first stderr line mutt takes for a good signature (smime.c, case-insensitive, whole line)
SUCCESS = "Verification successful"
#: what the first stderr line says otherwise (as openssl does)
FAILURE = "Verification failure"
#: mutt's smime_encrypt_with values -> the content cipher mailseal writes
CIPHERS = {"": "aes256_cbc", "aes256": "aes256_cbc", "aes-256": "aes256_cbc", "aes256-cbc": "aes256_cbc",
           "aes192": "aes256_cbc",  # mailseal writes AES-128 or AES-256; 192 gets the stronger one
           "aes128": "aes128_cbc", "aes-128": "aes128_cbc", "aes128-cbc": "aes128_cbc"}
#: mutt's smime_sign_digest_alg values mailseal signs with (mutt derives micalg from the same value)
DIGESTS = ("sha256", "sha384", "sha512", "sha224")
#: the line get_signer_cert puts before the certificate when the signer is not the sender
SENDER_MARK = "mailseal-sender-check:"
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)-----END \1-----", re.S)


class NoSignature(MailsealError):
    """The message carries no S/MIME signature (nothing to take a certificate from)."""

    exit_code = 6
    kind = "unsigned"


# -- the passphrase mutt writes ---------------------------------------------------------------

class MuttPassphrase:
    """The line mutt writes on stdin for sign and decrypt (always written, often empty).

    Read once, on first need, from the file descriptor.  An empty line falls
    back to the passphrase_command of the account that covers the identity,
    so a user with `pass` can just press Enter at mutt's prompt.
    """

    def __init__(self, fd=0, config=None):
        self.fd = fd
        self.config = config
        self._line = None

    def line(self):
        if self._line is None:
            self._line = Passphrase(fd=self.fd).get() if self.fd is not None else b""
        return self._line

    def for_identity(self, ident=None):
        command = None
        if self.config is not None and ident is not None:
            for address in ident.emails:
                account = self.config.account_for(address)
                if account and account.passphrase_command:
                    command = account.passphrase_command
                    break
        return _Source(self, command)


class _Source:
    """A passphrase source for one key (what Identity.unlock asks)."""

    def __init__(self, parent, command):
        self.parent, self.command = parent, command

    def get(self, what="the key"):
        line = self.parent.line()
        if line:
            return line
        if self.command:
            return Passphrase(command=self.command).get(what)
        raise PassphraseNeeded(f"{what} is protected by a passphrase and mutt passed an empty one",
                               hint="type it at mutt's passphrase prompt, or set passphrase_command for the"
                                    " account in config.toml, or import the key with --unprotected")


# -- files mutt passes ---------------------------------------------------------------------------

def read_file(path, what="the file"):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise FileProblem(f"cannot read {what} {path}: {exc.strerror}") from None


def pem(label, der):
    """PEM framing of DER bytes (64 columns, as openssl writes it)."""
    text = base64.b64encode(bytes(der)).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode("ascii")


def unpem(data, labels):
    """The DER of the first PEM block with one of labels, or None."""
    for match in _PEM.finditer(data):
        if match.group(1).decode("ascii") in labels:
            try:
                return base64.b64decode(b"".join(match.group(2).split()), validate=True)
            except ValueError:
                raise FileProblem(f"the {match.group(1).decode()} block is not valid base64") from None
    return None


def _one_certificate(path, what):
    found = certs.load_many(read_file(path, what), f"{what} {path}")
    return found[0]


# -- sign ---------------------------------------------------------------------------------------

def signing_key(store, passphrase, cert_file=None, key_file=None, issuer_file=None, selector=None):
    """(private key, certificate, [chain certificates]) to sign with.

    The certificate mutt passes (%c, from $smime_default_key or sign-as)
    names the identity by its fingerprint; its key then comes from
    mailseal's own store.  A certificate that is not one of your identities
    is signed with the key file mutt passes (%k), as openssl would.
    """
    moment = datetime.now(timezone.utc)
    if cert_file:
        cert = _one_certificate(cert_file, "the signing certificate")
        fp = certs.fingerprint(cert)
        ident = next((i for i in identity.identities(store) if i.fingerprint == fp), None)
        if ident is not None:
            problem = certs.unusable_for(ident.cert, "sign", moment)
            if problem:
                raise NoIdentity(f"cannot sign with {ident.label()}: {problem}",
                                 hint="choose another key with mutt's 'sign (a)s'")
            chain = [c for c in ident.chain if not certs.is_self_signed(c)]
            return ident.unlock(passphrase.for_identity(ident)), ident.cert, chain
        if not key_file:
            raise NoIdentity(f"the certificate {os.path.basename(cert_file)} ({fp[:16]}) is not one of your"
                             " identities and no key file was given",
                             hint="import it with 'smime-trust identity import FILE.p12'")
        key = _load_key(read_file(key_file, "the key file"), passphrase.for_identity(None), key_file)
        _check_pair(key, cert, key_file)
        chain = []
        if issuer_file and os.path.abspath(issuer_file) != os.path.abspath(cert_file) \
                and os.path.exists(issuer_file):
            chain = [c for c in certs.load_many(read_file(issuer_file, "the issuer file"), issuer_file)
                     if not certs.is_self_signed(c)]
        return key, cert, chain
    ident = identity.for_signing(store, None, selector) if selector else _only_identity(store, moment)
    return ident.unlock(passphrase.for_identity(ident)), ident.cert, \
        [c for c in ident.chain if not certs.is_self_signed(c)]


def _only_identity(store, moment):
    everyone = identity.identities(store)
    current = [i for i in everyone if identity.status(i, everyone, moment) == "current"]
    if len(current) != 1:
        raise NoIdentity("no certificate was given and " + ("you have no identity" if not current else
                         f"you have {len(current)} identities"),
                         hint="pass mutt's %c (--cert %c), or --as ADDRESS")
    return current[0]


def _load_key(data, source, path):
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: it needs the passphrase
        pass
    except ValueError as exc:
        raise FileProblem(f"{path} holds no readable private key ({exc})") from None
    try:
        return serialization.load_pem_private_key(data, password=source.get(f"the key {os.path.basename(path)}"))
    except (ValueError, TypeError):
        raise WrongPassphrase(f"the passphrase does not unlock the key {os.path.basename(path)}") from None


def _check_pair(key, cert, path):
    from cryptography.hazmat.primitives import serialization

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) \
            != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise FileProblem(f"the key {os.path.basename(path)} does not belong to the certificate mutt passed")


def sign(content, key, cert, chain=(), digest="sha256"):
    """The detached signature (DER chunks) over mutt's entity, canonicalised to CRLF.

    digest must be the one mutt puts into micalg ($smime_sign_digest_alg)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from .cms import signed

    digest = (digest or "sha256").lower().replace("-", "")
    if digest not in DIGESTS:
        raise Unsupported(f"mutt asks for a {digest} signature, which mailseal does not make",
                          hint="set smime_sign_digest_alg=sha256")
    if isinstance(key, ed25519.Ed25519PrivateKey) and digest != "sha512":
        raise Unsupported("an Ed25519 key signs with SHA-512, but mutt would announce micalg="
                          f"{digest}", hint="set smime_sign_digest_alg=sha512")
    return signed.sign(mime.canonical(bytes(content)), key, certs.der(cert), [certs.der(c) for c in chain],
                       digest=digest, detached=True)


# -- encrypt ------------------------------------------------------------------------------------

def cipher_for(name):
    """mailseal's content cipher for mutt's $smime_encrypt_with value."""
    key = (name or "").strip().lower()
    if key in CIPHERS:
        return CIPHERS[key]
    raise Unsupported(f"mailseal never encrypts with {name}", hint="choose AES-256 in mutt's S/MIME menu"
                      " ('encrypt (w)ith'), or set smime_encrypt_with=aes256")


def encrypt(content, cert_files, cipher="aes256"):
    """The EnvelopedData (DER chunks) of mutt's entity to every certificate file given.

    A certificate that cannot be encrypted to (expired, not for e-mail
    protection, no key encipherment) stops everything: nothing is written,
    and each one is named with its reason.
    """
    from .cms import enveloped

    chosen = cipher_for(cipher)
    if not cert_files:
        raise RecipientsBlocked([("(none)", "mutt passed no certificate to encrypt to")])
    moment = datetime.now(timezone.utc)
    targets, blocked = [], []
    for path in cert_files:
        cert = _one_certificate(path, "the certificate")
        who = ", ".join(certs.emails(cert)) or certs.common_name(cert) or os.path.basename(path)
        problem = certs.unusable_for(cert, "encrypt", moment)
        if problem:
            blocked.append((f"{who} ({os.path.basename(path)})", problem))
            continue
        der = certs.der(cert)
        if der not in targets:
            targets.append(der)
    if blocked:
        raise RecipientsBlocked(blocked)
    return enveloped.encrypt(mime.canonical(bytes(content)), targets, chosen)


# -- decrypt ------------------------------------------------------------------------------------

@dataclass
class Decryption:
    entity: bytes  # the decrypted MIME entity, for mutt's stdout
    message_id: str  # from protected header fields (RFC 9788), if the sender put them inside
    info: object  # mailseal.cms.enveloped.Decrypted
    warnings: list = field(default_factory=list)  # for stderr, which mutt shows above the content


def decrypt(store, der, passphrase, key_file=None, cert_file=None):
    """Decrypt mutt's DER with whichever of your keys it was sent to.

    Every identity mailseal holds is a candidate (current and historical,
    matched to a RecipientInfo before any key is unlocked); the key and
    certificate files mutt passes (%k, %c) are used too when they are not
    one of your identities.
    """
    from . import protection, reading
    from .cms import enveloped

    candidates = [(certs.der(i.cert), lambda i=i: i.unlock(passphrase.for_identity(i)))
                  for i in identity.identities(store)]
    if cert_file and key_file and os.path.exists(cert_file) and os.path.exists(key_file):
        cert = _one_certificate(cert_file, "the certificate")
        if all(der_ != certs.der(cert) for der_, _ in candidates):
            candidates.append((certs.der(cert), lambda: _load_key(read_file(key_file, "the key file"),
                                                                  passphrase.for_identity(None), key_file)))
    decrypted = enveloped.decrypt(bytes(der), candidates)
    content = mime.canonical(decrypted.content)
    inner = reading._decrypted_entity(content, decrypted, 1)
    message_id = None
    carrier = inner
    if inner.ctype == "multipart/signed":
        try:
            carrier = inner.parts()[0]
        except MailsealError:
            carrier = inner
    if protection.protected_from(carrier) is not None or (carrier.param("hp") or "").lower() == "cipher":
        message_id = carrier.get("Message-ID")
    return Decryption(inner.raw, message_id, decrypted, _warnings(decrypted, inner))


def _warnings(decrypted, inner):
    """What the reader must know that mutt would not say: unauthenticated content (EFAIL), notes."""
    from . import reading
    from .display import BANNER_PREFIX, CIPHER_NAMES

    out = [f"{BANNER_PREFIX}note: {note}" for note in decrypted.notes]
    try:
        signed = reading.smime_kind(inner) in ("signed", "opaque")
    except MailsealError:
        signed = False
    if not decrypted.authenticated and not signed:
        cipher = CIPHER_NAMES.get(decrypted.cipher, decrypted.cipher)
        out.insert(0, f"{BANNER_PREFIX}! encrypted ({cipher}) but not signed: the content is NOT authenticated"
                      " and may have been altered on the way")
    return out


# -- verify -------------------------------------------------------------------------------------

@dataclass
class MuttVerdict:
    """A verdict in the form mutt reads it: stderr lines (first: success or failure) and an exit code."""

    verdict: object  # mailseal.verification.SignatureVerdict
    lines: list = field(default_factory=list)

    @property
    def ok(self):
        return self.verdict.verdict == "trusted"

    @property
    def exit_code(self):
        return self.verdict.exit_code

    def text(self):
        return "\n".join(self.lines) + "\n"


def verify(store, config, content, signature, *, allow_sha1=None):
    """mailseal's verdict on a detached signature over mutt's %f, for $smime_verify_command."""
    from .verification import Judge

    judge = Judge(store, config, allow_sha1=allow_sha1)
    content = mime.canonical(bytes(content))
    result = judge.check_signed(bytes(signature), content)
    return _report(_judge_without_header(judge, result, content))


def verify_opaque(store, config, der, *, allow_sha1=None):
    """(the signed entity, MuttVerdict) of opaque signed-data, for $smime_verify_opaque_command."""
    from .verification import Judge

    judge = Judge(store, config, allow_sha1=allow_sha1)
    result = judge.check_signed(bytes(der))
    if result.content is None:
        raise NotAMessage("the signed-data carries no content (a detached signature given as opaque)")
    content = mime.canonical(result.content)
    return content, _report(_judge_without_header(judge, result, content))


def _judge_without_header(judge, result, content):
    """The verdict when the message header is not at hand (mutt passes only the signed part).

    A From protected inside the signature (RFC 9788) is the sender; else the
    signature is judged for each address of the signer's certificate, and
    trusted for any of them is enough here: mutt's sender check (see
    signer_certificate) then binds it to From, exactly.
    """
    from . import protection

    try:
        inner = mime.Entity(content, strict=False)
        from_addrs = header_addresses(inner, "From") if protection.protected_from(inner) else []
    except MailsealError:
        from_addrs = []
    if from_addrs:
        return judge.judge(result, from_addrs)
    emails = []
    for report in result.signers:
        if report.cert_der:
            for address in certs.emails(certs.load_der(report.cert_der)):
                if address not in emails:
                    emails.append(address)
    if not emails:
        return judge.judge(result, [])
    first = None
    for address in emails:
        verdict = judge.judge(result, [address])
        if verdict.verdict == "trusted":
            return verdict
        first = first or verdict
    return first


def _report(verdict):
    from .display import banner

    lines = [SUCCESS if verdict.verdict == "trusted" else FAILURE, banner(verdict=verdict)]
    lines += [f"  {r}" for r in verdict.reasons[1:]]
    lines += [f"  note: {n}" for n in verdict.notes]
    if verdict.signer is not None:
        fp = certs.fingerprint(verdict.signer)
        lines.append(f"  signer: {verdict.signer.subject.rfc4514_string()}; issuer:"
                     f" {verdict.signer.issuer.rfc4514_string()}; SHA-256 {fp[:16]}")
        if verdict.verdict == "untrusted":
            lines.append(f"  to trust this certificate: smime-trust install {fp[:16]}"
                         f" (first look at it: smime-trust show {fp[:16]})")
    return MuttVerdict(verdict, lines)


# -- the sender check -----------------------------------------------------------------------------

@dataclass
class SenderCheck:
    signer: object  # x509 certificate, or None
    verdict: object  # SignatureVerdict of the message as a whole
    problem: str = None  # why the signer is not the trusted sender (None: it is)

    def certificate_file(self):
        """What goes into mutt's %c: the PEM, marked when the signer is not the sender."""
        mark = f"{SENDER_MARK} {self.problem}\n".encode("utf-8", "replace") if self.problem else b""
        return mark + certs.pem(self.signer)


def signer_certificate(store, config, raw, *, allow_sha1=None):
    """The signer of a whole message (headers included) and whether it is the trusted sender.

    mutt asks for it only after a good signature, then compares the
    certificate's addresses with From by prefix; mailseal binds the signer
    to From exactly, with the trust database, and marks the certificate when
    that fails (see cert_emails).
    """
    from . import reading
    from .verification import Judge

    judge = Judge(store, config, allow_sha1=allow_sha1)
    read = reading.read(bytes(raw), judge)
    verdict = read.verdict
    if verdict.signer is None:
        if read.encrypted_inside:
            raise NoSignature("the message is still encrypted here: mailseal cannot see its signer")
        raise NoSignature(f"no signer's certificate in the message ({verdict.verdict}:"
                          f" {verdict.reasons[0] if verdict.reasons else 'no signature'})")
    problem = None
    if verdict.verdict != "trusted":
        problem = f"{verdict.verdict}: {verdict.reasons[0] if verdict.reasons else 'not trusted'}"
    return SenderCheck(verdict.signer, verdict, problem)


def write_in_place(path, data):
    """Overwrite path's contents in place (mutt holds the file open: a rename would be unseen)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise FileProblem(f"cannot write {path}: {exc.strerror}") from None


def cert_emails(data):
    """Lines for $smime_get_cert_email_command: the certificate's addresses, one a line.

    A certificate get_signer_cert marked (the signer is not the trusted
    sender) gives one line that no address can start with, so mutt reports
    "certificate owner does not match sender" instead of trusting its prefix
    match."""
    text = data.decode("utf-8", "replace")
    for line in text.splitlines():
        if line.startswith(SENDER_MARK):
            return [" (mailseal: the signer is not the sender: " + line[len(SENDER_MARK):].strip() + ")"]
    found = certs.load_many(data, "the certificate")
    return list(certs.emails(found[0]))


# -- Ctrl-K: taking certificates from a message ---------------------------------------------------

def signature_data(raw):
    """The CMS bytes of the first S/MIME signature (or certs-only bundle) in a message."""
    from . import reading
    from .cms import content_type_of

    root = mime.parse_message(bytes(raw))

    def find(entity, depth=0):
        if depth > 20:
            return None
        kind = reading.smime_kind(entity)
        if kind == "signed":
            parts = entity.parts()
            if len(parts) == 2:
                return parts[1].decoded_body()
        elif kind in ("opaque", "certs-only"):
            return entity.decoded_body()
        elif kind == "enveloped":
            raise NoSignature("the message is encrypted: its signature is inside (open the message first)")
        if entity.is_multipart:
            for part in entity.parts():
                found = find(part, depth + 1)
                if found is not None:
                    return found
        elif entity.ctype == "message/rfc822":
            return find(mime.Entity(entity.decoded_body(), strict=False, depth=entity.depth + 1), depth + 1)
        return None

    der = find(root)
    if der is None:
        raise NoSignature("the message carries no S/MIME signature, so no certificate to take")
    der = bytes(der)
    if content_type_of(der) != "signed_data":
        raise MalformedCMS("the S/MIME part of the message is not a signed-data structure")
    return der


def pk7out(raw):
    """$smime_pk7out_command: the message's signature as a PEM PKCS7."""
    return pem("PKCS7", signature_data(raw))


def certificates_in(data):
    """Certificates in a PEM or DER PKCS7 (what pk7out wrote), or in PEM/DER certificate data."""
    from .cms import content_type_of, signed

    der = unpem(data, ("PKCS7", "CMS"))
    if der is None and content_type_of(data) == "signed_data":
        der = data
    if der is not None:
        found = [certs.load_der(d) for d in signed.certificates_only(der)]
        if not found:
            raise NoSignature("the signature carries no certificate")
        return found
    return certs.load_many(data, "the certificate file")


def get_cert(data):
    """$smime_get_cert_command: every certificate as PEM, each after subject= and issuer= lines."""
    out = bytearray()
    for cert in certificates_in(data):
        out += f"subject={cert.subject.rfc4514_string()}\nissuer={cert.issuer.rfc4514_string()}\n".encode()
        out += certs.pem(cert)
    return bytes(out)


def import_certificates(store, config, data, label=""):
    """Record the certificates mutt took from a message (Ctrl-K), as seen in mail.

    Like smime-import, this never trusts a certificate by itself: it counts
    as trusted only when it chains to a CA you trust (or you install it).
    CA certificates are kept to build chains, not trusted as CAs.  Returns
    [{address, fingerprint, status, reason, new, ...}] (kind 'ca' for CAs).
    """
    from .trust import TrustView

    found = certs.load_many(data, "the certificate file")
    moment = datetime.now(timezone.utc)
    recorded = []
    with store.transaction():
        for cert in found:
            store.add_certificate(cert)
        for cert in found:
            fp = certs.fingerprint(cert)
            if certs.is_ca(cert):
                recorded.append({"kind": "ca", "fingerprint": fp, "subject": cert.subject.rfc4514_string()})
                continue
            addresses = certs.emails(cert)
            if not addresses:
                recorded.append({"kind": "certificate", "address": None, "fingerprint": fp,
                                 "subject": cert.subject.rfc4514_string(), "new": False})
                continue
            for address in addresses:
                known = any(r["source"] == "message" for r in store.bindings(address=address, fingerprint=fp))
                store.record_sighting(address, fp, moment)
                if not known:
                    store.log("import", address, fp, {"via": "mutt extract-keys", "label": label or None})
                recorded.append({"kind": "certificate", "address": address, "fingerprint": fp,
                                 "subject": cert.subject.rfc4514_string(), "new": not known})
    view = TrustView(store, config)
    anchors = {certs.fingerprint(a) for a in view.anchors}
    for item in recorded:
        cert = store.certificate(item["fingerprint"])
        item["not_after"] = certs.not_after(cert).isoformat()
        if item["kind"] == "ca":
            item["status"] = "trusted" if item["fingerprint"] in anchors else "untrusted"
            item["reason"] = "a CA you trust" if item["status"] == "trusted" else "kept to build chains; not a CA you trust"
        elif item["address"] is None:
            item["status"], item["reason"] = "untrusted", "the certificate carries no e-mail address: not recorded"
        else:
            standing = view.standing(item["address"], item["fingerprint"])
            item.update(status=standing.status, reason=standing.reason, usable_for_encryption=standing.usable,
                        problem=standing.problem)
    return recorded


def import_report(recorded):
    """What the user reads after Ctrl-K: each address, its state, and what can be done."""
    lines = []
    for item in recorded:
        fp = item["fingerprint"][:16]
        if item["kind"] == "ca":
            lines.append(f"mailseal: CA certificate {item['subject']} ({fp}): {item['reason']}")
            if item["status"] != "trusted":
                lines.append(f"  to trust every certificate it issued: smime-trust install --ca {fp}")
            continue
        if item["address"] is None:
            lines.append(f"mailseal: {item['subject']} ({fp}): {item['reason']}")
            continue
        address = item["address"]
        what = "recorded as seen in mail" if item["new"] else "already on record"
        lines.append(f"mailseal: {address}: certificate {fp} (until {item['not_after'][:10]}) {what}")
        if item["status"] == "trusted":
            use = "mutt can encrypt to it" if item.get("usable_for_encryption") else \
                f"but it cannot be encrypted to: {item.get('problem')}"
            lines.append(f"  trusted: {item['reason']}; {use}")
        elif item["status"] == "removed":
            lines.append(f"  not trusted: {item['reason']}")
            lines.append(f"  to trust it again: smime-trust install {fp}")
        else:
            lines.append(f"  not trusted: {item['reason']}")
            lines.append(f"  to trust it for {address}: smime-trust install {fp}")
            lines.append(f"  to look at it first: smime-trust show {fp}")
    return "\n".join(lines) + "\n"


# -- the muttrc lines ---------------------------------------------------------------------------------

def default_export_dir():
    """Where mutt's key store goes when config.toml names no [mutt] export_dir."""
    from . import paths

    return os.path.join(paths.home(), "mutt")


def export_dir(config):
    return os.path.expanduser(config.mutt_export_dir) if config.mutt_export_dir else default_export_dir()


def refresh(store, config):
    """Re-export mutt's key store after a change: the configured one, else the default one if it exists."""
    from . import mutt

    if config.mutt_export_dir:
        return mutt.export(store, config, config.mutt_export_dir)
    if os.path.isdir(default_export_dir()):
        return mutt.export(store, config, default_export_dir())
    return None


def _quote(value):
    """A muttrc string: single quotes take everything literally (no $ or backtick expansion)."""
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'


def rc(store, config, directory=None, selector=None):
    """Export mutt's key store and return the muttrc lines that point mutt at it.

    smime_default_key names the identity that signs (selector: an address or
    fingerprint; else the only current identity, else the first account's).
    """
    from . import mutt

    directory = os.path.abspath(os.path.expanduser(directory) if directory else export_dir(config))
    summary = mutt.export(store, config, directory)
    lines = ["# mailseal: mutt's S/MIME key store, exported from the trust database (smime-mutt rc)"]
    for name in ("certificates", "keys"):
        path = os.path.join(summary["directory"], name)
        if re.search(r"[\s;&|<>()$`\\\"']", path):
            lines.append(f"# warning: mutt pastes %c and %k into a shell command unquoted; {path!r} will break it")
        lines.append(f"set smime_{name}={_quote(path)}")
    ident, why = _default_identity(store, config, selector)
    if ident is None:
        lines.append(f"# no smime_default_key: {why}")
    else:
        kid = summary["key_ids"][ident.fingerprint]
        lines.append(f"# {ident.label()}")
        lines.append(f"set smime_default_key={_quote(kid)}")
    return "\n".join(lines) + "\n"


def _default_identity(store, config, selector):
    moment = datetime.now(timezone.utc)
    if selector:
        return identity.for_signing(store, None, selector, moment), None
    everyone = identity.identities(store)
    current = [i for i in everyone if identity.status(i, everyone, moment) == "current"]
    if not everyone:
        return None, "you have no identity (import one with 'smime-trust identity import FILE.p12')"
    if len(current) == 1:
        return current[0], None
    for account in config.accounts:
        for address in account.addresses:
            try:
                return identity.for_signing(store, address, account.identity, moment), None
            except NoIdentity:
                continue
    if current:
        return sorted(current, key=lambda i: certs.not_before(i.cert), reverse=True)[0], None
    return None, "none of your identities is valid now"
