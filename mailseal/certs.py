"""X.509 certificates as S/MIME sees them: addresses, fingerprints, usages.

Everything here uses cryptography's X.509 API; the CMS layer (mailseal.cms)
is the only place that parses ASN.1 by hand.
"""

import functools
import hashlib
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .addresses import normalize
from .errors import FileProblem

EMAIL_OID = x509.ObjectIdentifier("1.2.840.113549.1.9.1")


@functools.lru_cache(maxsize=256)
def load_der(der):
    """A certificate from DER; cached, since a bulk import meets the same
    senders' certificates again and again (certificates are immutable)."""
    return x509.load_der_x509_certificate(der)


def load_many(data, what="the file"):
    """Every certificate in PEM (one or several) or DER data."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise FileProblem(f"{what} holds no readable certificate ({exc})") from None


@functools.lru_cache(maxsize=256)
def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@functools.lru_cache(maxsize=256)
def fingerprint(cert):
    """SHA-256 fingerprint, lower-case hex without separators."""
    return hashlib.sha256(der(cert)).hexdigest()


def pretty_fingerprint(fp):
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)).upper()


@functools.lru_cache(maxsize=256)
def emails(cert):
    """Normalised e-mail addresses: rfc822Name SANs, then emailAddress in the DN (a tuple)."""
    found = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found += san.get_values_for_type(x509.RFC822Name)
    except (x509.ExtensionNotFound, ValueError):
        pass
    try:
        found += [a.value for a in cert.subject.get_attributes_for_oid(EMAIL_OID)]
    except ValueError:
        pass
    out = []
    for addr in found:
        norm = normalize(str(addr))
        if "@" in norm and norm not in out:
            out.append(norm)
    return tuple(out)


def common_name(cert):
    try:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return ""
    return str(names[0].value) if names else ""


def not_before(cert):
    return cert.not_valid_before_utc


def not_after(cert):
    return cert.not_valid_after_utc


def valid_at(cert, moment):
    return not_before(cert) <= moment <= not_after(cert)


def is_self_signed(cert):
    return cert.issuer == cert.subject


def is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        return False


def _key_usage(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _eku(cert):
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except (x509.ExtensionNotFound, ValueError):
        return None


def key_description(cert):
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def key_usages(cert):
    """Names of the KeyUsage bits set, or None when the extension is absent."""
    ku = _key_usage(cert)
    if ku is None:
        return None
    names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign"]
    out = [n for n in names if getattr(ku, n)]
    if ku.key_agreement:
        out += [n for n in ("encipher_only", "decipher_only") if getattr(ku, n)]
    return out


def extended_key_usages(cert):
    eku = _eku(cert)
    if eku is None:
        return None
    return [getattr(oid, "_name", None) or oid.dotted_string for oid in eku]


def unusable_for(cert, purpose, moment=None):
    """None if cert can be used for purpose ('sign' or 'encrypt'), else why not."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519

    moment = moment or datetime.now(timezone.utc)
    if moment > not_after(cert):
        return f"certificate expired on {not_after(cert):%Y-%m-%d}"
    if moment < not_before(cert):
        return f"certificate not valid before {not_before(cert):%Y-%m-%d}"
    eku = _eku(cert)
    if eku is not None and ExtendedKeyUsageOID.EMAIL_PROTECTION not in eku \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        return "certificate is not for e-mail protection (extended key usage)"
    ku = _key_usage(cert)
    key = cert.public_key()
    if purpose == "sign":
        if ku is not None and not (ku.digital_signature or ku.content_commitment):
            return "certificate's key usage does not allow signing"
    elif purpose == "encrypt":
        if isinstance(key, rsa.RSAPublicKey):
            if ku is not None and not ku.key_encipherment:
                return "certificate's key usage does not allow encryption (no keyEncipherment)"
        elif isinstance(key, (ec.EllipticCurvePublicKey, x25519.X25519PublicKey)):
            if ku is not None and not ku.key_agreement:
                return "certificate's key usage does not allow key agreement"
        else:
            return f"a {key_description(cert)} key cannot be encrypted to"
    return None


def describe(cert):
    """A JSON-ready description, as smime-verify --json and smime-trust show it."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "common_name": common_name(cert),
        "emails": emails(cert),
        "serial": format(cert.serial_number, "x"),
        "fingerprint_sha256": fingerprint(cert),
        "not_before": not_before(cert).isoformat(),
        "not_after": not_after(cert).isoformat(),
        "key": key_description(cert),
        "key_usage": key_usages(cert),
        "extended_key_usage": extended_key_usages(cert),
        "self_signed": is_self_signed(cert),
    }
