"""All of mailseal's ASN.1: the CMS (RFC 5652) structures S/MIME uses.

asn1crypto parses and builds the structures, cryptography does every
computation.  cryptography's own PKCS#7 API is not used: it cannot verify,
cannot read BER (what NSS writes), refuses a whole message when any
RecipientInfo is not RSA key transport, has no custom signed attributes
(SMIMEEncryptionKeyPreference, the capabilities we really support), no
opaque output, and its import alone costs about 160 ms per filter run.
Nothing outside this package touches ASN.1.

Submodules: signed (SignedData: verify, sign), enveloped (EnvelopedData and
AuthEnvelopedData: decrypt, encrypt), certs (the few certificate fields the
X.509 API of cryptography does not give us).
"""

from contextlib import contextmanager

from ..errors import MalformedCMS

#: the exceptions asn1crypto raises on malformed input (lazily, on access)
ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError, EOFError)


@contextmanager
def asn1_errors(what):
    """Turn asn1crypto's parse errors into one clear MalformedCMS error."""
    try:
        yield
    except MalformedCMS:
        raise
    except ASN1_ERRORS as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MalformedCMS(f"{what} is not a valid CMS structure: {detail}") from None


def content_type_of(data):
    """The CMS content type name of DER/BER data, or None if it is not CMS."""
    from . import ber

    try:
        buf = memoryview(data)
        oid, _ = ber.content_info(buf)
        return ber.oid_value(buf, oid)
    except (MalformedCMS,) + ASN1_ERRORS:
        return None


#: hashlib names of the digests we accept, by asn1crypto name
DIGESTS = {"sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
#: digests no signature may use, whatever the override
FORBIDDEN_DIGESTS = {"md2", "md5"}


def hash_class(name):
    """The cryptography hash class for a digest name like 'sha256'."""
    from cryptography.hazmat.primitives import hashes

    return {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
            "sha384": hashes.SHA384, "sha512": hashes.SHA512}[name]


def match_certificate(ref, ders):
    """The certificate (DER) among ders that ref names, or None.

    ref is {"issuer": DER name, "serial": int} or {"ski": bytes}, as
    mailseal.cms.signed reports SMIMEEncryptionKeyPreference.
    """
    from asn1crypto import x509 as ax509

    with asn1_errors("a certificate reference"):
        issuer = ax509.Name.load(ref["issuer"]) if "issuer" in ref else None
        for der in ders:
            cert = ax509.Certificate.load(der)
            if issuer is not None and cert.serial_number == ref.get("serial") and cert.issuer == issuer:
                return der
            if "ski" in ref and cert.key_identifier == ref["ski"]:
                return der
    return None
