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


def same_name(a, b):
    """Are two asn1crypto Names equal?  Byte-equal names (the usual case) skip
    asn1crypto's RFC 4518 string preparation, which costs about half a
    millisecond a comparison."""
    return a.dump() == b.dump() or a == b


def match_certificate(ref, ders):
    """The certificate (DER) among ders that ref names, or None.

    ref is {"issuer": DER name, "serial": int} or {"ski": bytes}, as
    mailseal.cms.signed reports SMIMEEncryptionKeyPreference.
    """
    with asn1_errors("a certificate reference"):
        for der in ders:
            cert = CertificateIds(der)
            if "issuer" in ref and cert.serial == ref.get("serial") and cert.names(ref["issuer"]):
                return der
            if "ski" in ref and cert.key_identifier == ref["ski"]:
                return der
    return None


class CertificateIds:
    """A certificate's serial number and issuer, read by offsets: finding the
    signer among a message's certificates by a full parse of each costs more
    than checking the signature.  The key identifier, rarely asked for, is
    parsed on demand."""

    __slots__ = ("der", "serial", "issuer")

    def __init__(self, der):
        from . import ber

        buf = memoryview(der)
        top = ber.read(buf, 0, len(buf))
        tbs = ber.read(buf, top.content_start, top.content_end) if top.tag == ber.SEQUENCE else top
        if tbs.tag != ber.SEQUENCE:
            raise MalformedCMS("a certificate in the message is malformed")
        tbs = ber.children(buf, tbs, count=4)
        if tbs and tbs[0].tag == 0xA0:  # [0] version
            tbs = tbs[1:]
        if len(tbs) < 3 or tbs[0].tag != 0x02 or tbs[2].tag != ber.SEQUENCE:
            raise MalformedCMS("a certificate in the message is malformed")
        self.der = der
        self.serial = int.from_bytes(buf[tbs[0].content_start:tbs[0].content_end], "big", signed=True)
        self.issuer = tbs[2].raw(buf)

    def names(self, issuer):
        """Is issuer (DER bytes or an asn1crypto Name) this certificate's issuer?"""
        from asn1crypto import x509 as ax509

        raw = issuer if isinstance(issuer, bytes) else issuer.dump()
        return self.issuer == raw or ax509.Name.load(self.issuer) == ax509.Name.load(raw)

    @property
    def key_identifier(self):
        from asn1crypto import x509 as ax509

        return ax509.Certificate.load(self.der).key_identifier
