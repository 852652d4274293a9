"""SignedData (RFC 5652 section 5): check every signer over exact bytes; sign.

verify() reports, for each SignerInfo, whether its digest and signature
hold over the content and what it says about its signer (certificate,
signing time, SMIMECapabilities, SMIMEEncryptionKeyPreference).  It does
not decide trust: that needs the trust database and path validation, which
live outside this package.
"""

import functools
import hashlib
from dataclasses import dataclass, field

from asn1crypto import algos, cms, core
from asn1crypto import x509 as ax509

from ..errors import MalformedCMS, Unsupported
from . import DIGESTS, FORBIDDEN_DIGESTS, CertificateIds, asn1_errors, ber, hash_class

#: what our signatures advertise we can decrypt, most preferred first
CAPABILITIES = ("aes256_gcm", "aes128_gcm", "aes256_cbc", "aes192_cbc", "aes128_cbc")


@dataclass
class SignerReport:
    """The result of checking one SignerInfo."""

    index: int
    ok: bool = False
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    cert_der: bytes = None
    digest_algorithm: str = ""
    signature_algorithm: str = ""
    signing_time: object = None  # datetime (UTC) or None
    capabilities: list = field(default_factory=list)
    encrypt_key_pref: dict = None  # {"issuer": DER, "serial": int} or {"ski": bytes}
    weak_digest: bool = False


@dataclass
class SignedContent:
    """What a SignedData holds, and each signer's report."""

    content_type: str
    content: bytes  # the embedded content (opaque signing), else None
    certificates: list  # DER of every certificate carried
    signers: list


def _parse(data, what):
    """(eContentType, eContent chunks or None, [certificate DER], [SignerInfo]) of a SignedData."""
    buf = memoryview(data)
    oid, body = ber.content_info(buf)
    ctype = ber.oid_value(buf, oid)
    if ctype != "signed_data":
        raise MalformedCMS(f"{what} holds {ctype}, not signed-data")
    kids = ber.children(buf, body)
    if len(kids) < 4 or kids[0].tag != 0x02 or kids[1].tag != ber.SET or kids[2].tag != ber.SEQUENCE:
        raise MalformedCMS(f"{what} is not a valid SignedData")
    eci = ber.children(buf, kids[2])
    if not eci or eci[0].tag != 0x06:
        raise MalformedCMS(f"{what} has no encapsulated content type")
    econtent_type = ber.oid_value(buf, eci[0])
    chunks = None
    if len(eci) > 1:
        inner = ber.children(buf, eci[1])
        if len(inner) != 1 or inner[0].tag not in (ber.OCTET_STRING, ber.CONSTRUCTED_OCTET_STRING):
            raise Unsupported(f"{what} embeds content that is not an OCTET STRING (old PKCS#7 form)")
        chunks = ber.octets(buf, inner[0])
    certs, signer_infos = [], None
    for kid in kids[3:]:
        if kid.tag == 0xA0:  # [0] IMPLICIT CertificateSet
            for choice in cms.CertificateSet.load(b"\x31" + kid.raw(buf)[1:], strict=False):
                if choice.name == "certificate":
                    certs.append(choice.chosen.dump())
        elif kid.tag == ber.SET:
            signer_infos = list(cms.SignerInfos.load(kid.raw(buf), strict=False))
    if signer_infos is None:
        raise MalformedCMS(f"{what} has no SignerInfos")
    return econtent_type, chunks, certs, signer_infos


def certificates_only(data, what="the certificate bundle"):
    """The certificates (DER) of a SignedData used as a bundle (PKCS#7 certs-only)."""
    with asn1_errors(what):
        return _parse(data, what)[2]


def verify(data, detached=None, extra_certs=(), allow_sha1=False, what="the signature"):
    """Check a DER/BER SignedData over `detached` bytes or its own content.

    extra_certs: DER certificates to look for signers in when the message
    does not carry the signer's certificate (from the trust database).
    The embedded content of a large opaque signature is hashed in place,
    never copied more than once.
    """
    with asn1_errors(what):
        econtent_type, chunks, certs, signer_infos = _parse(data, what)
        pool = [CertificateIds(der) for der in list(certs) + list(extra_certs)]
    embedded = chunks is not None
    if detached is not None:
        chunks = [detached]
    digests = {}

    def digest(name):
        if name not in digests:
            h = hashlib.new(DIGESTS[name])
            for chunk in chunks:
                h.update(chunk)
            digests[name] = h.digest()
        return digests[name]

    content = b"".join(chunks) if embedded and detached is None else None
    result = SignedContent(econtent_type, content, certs, [])
    for index, si in enumerate(signer_infos):
        with asn1_errors(f"{what} (signer {index + 1})"):
            report = _check_signer(index, si, digest if chunks is not None else None, econtent_type, pool,
                                   allow_sha1, chunks)
        if detached is not None and embedded:
            report.ok = False
            report.problems.insert(0, "a detached signature that also embeds content: the visible part may differ from what was signed")
        if chunks is None:
            report.ok = False
            report.problems.insert(0, "the signature has no content to check (detached, but no signed part given)")
        result.signers.append(report)
    return result


def _check_signer(index, si, digest, econtent_type, pool, allow_sha1, chunks):
    report = SignerReport(index)
    digest_name = si["digest_algorithm"]["algorithm"].native
    report.digest_algorithm = digest_name
    report.signature_algorithm = si["signature_algorithm"]["algorithm"].native
    report.cert_der = _find_cert(si["sid"], pool)
    if report.cert_der is None:
        report.problems.append("the signer's certificate is not in the message and not on record")
    if digest_name in FORBIDDEN_DIGESTS:
        report.problems.append(f"digest {digest_name} is broken and never accepted")
        return report
    if digest_name not in DIGESTS:
        report.problems.append(f"digest algorithm {digest_name} is not supported")
        return report
    if digest is None:
        return report
    computed = digest(digest_name)

    attrs = si["signed_attrs"]
    if not isinstance(attrs, core.Void) and len(attrs):
        values, duplicate = _attribute_values(attrs.contents)
        if duplicate:
            report.problems.append(f"signed attribute {duplicate} appears more than once")
            return report
        for name in ("content_type", "message_digest"):
            if name not in values:
                report.problems.append(f"signed attribute {name} is missing")
                return report
            if len(values[name]) != 1:
                report.problems.append(f"signed attribute {name} must have exactly one value")
                return report
        content_type = cms.ContentType.load(values["content_type"][0]).native
        if content_type != econtent_type:
            report.problems.append(
                f"the content-type attribute ({content_type}) disagrees with the content ({econtent_type})")
            return report
        if values.get("signing_time"):
            report.signing_time = cms.Time.load(values["signing_time"][0]).chosen.native
        if values.get("smime_capabilities"):
            report.capabilities = list(_capabilities(values["smime_capabilities"][0]))
        if values.get("encrypt_key_pref"):
            pref = cms.SMIMEEncryptionKeyPreference.load(values["encrypt_key_pref"][0])
            if pref.name == "issuer_and_serial_number":
                report.encrypt_key_pref = {"issuer": pref.chosen["issuer"].dump(),
                                           "serial": pref.chosen["serial_number"].native}
            elif pref.name == "recipientKeyId":
                report.encrypt_key_pref = {"ski": pref.chosen["subjectKeyIdentifier"].native}
        if cms.OctetString.load(values["message_digest"][0]).native != computed:
            report.problems.append("the content was altered after signing (message digest does not match)")
            return report
        signed_bytes = b"\x31" + attrs.dump()[1:]
    else:
        report.notes.append("the signature has no signed attributes (no signing time)")
        signed_bytes = b"".join(chunks)
    if report.cert_der is None:
        return report
    problem = _check_signature(report.cert_der, si, digest_name, signed_bytes)
    if problem:
        report.problems.append(problem)
        return report
    if digest_name == "sha1":
        report.weak_digest = True
        if not allow_sha1:
            report.problems.append("the signature uses SHA-1, which is rejected by default (--allow-sha1 accepts it)")
            return report
        report.notes.append("the signature uses the weak SHA-1 digest (accepted by override)")
    report.ok = True
    return report


#: the signed attributes mailseal reads, by the DER of their OBJECT IDENTIFIER
_ATTRIBUTE_OIDS = {
    bytes.fromhex("06092a864886f70d010903"): "content_type",
    bytes.fromhex("06092a864886f70d010904"): "message_digest",
    bytes.fromhex("06092a864886f70d010905"): "signing_time",
    bytes.fromhex("06092a864886f70d01090f"): "smime_capabilities",
    bytes.fromhex("060b2a864886f70d010910020b"): "encrypt_key_pref",
}


def _attribute_values(contents):
    """({name: [value DER]}, name of a repeated attribute or None) of SignedAttributes contents.

    Walked by offsets: asn1crypto's generic parse of every attribute costs
    more than the signature check, and a bulk import does it per message.
    """
    buf = memoryview(contents)
    values, seen = {}, set()
    pos = 0
    while pos < len(buf):
        attr = ber.read(buf, pos, len(buf))
        pos = attr.end
        parts = ber.children(buf, attr)
        if len(parts) != 2 or parts[0].tag != 0x06 or parts[1].tag != ber.SET:
            raise MalformedCMS("a signed attribute is malformed")
        oid = parts[0].raw(buf)
        if oid in seen:
            return values, _ATTRIBUTE_OIDS.get(oid) or cms.CMSAttributeType.load(oid).native
        seen.add(oid)
        if oid in _ATTRIBUTE_OIDS:
            values[_ATTRIBUTE_OIDS[oid]] = [v.raw(buf) for v in ber.children(buf, parts[1])]
    return values, None


@functools.lru_cache(maxsize=64)
def _capabilities(der):
    """SMIMECapabilities as algorithm names (one sender sends the same list every time)."""
    return [c["capability_id"].native for c in cms.SMIMECapabilites.load(der)]


def _find_cert(sid, pool):
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        serial = sid.chosen["serial_number"].native
        for cert in pool:
            if cert.serial == serial and cert.names(issuer):
                return cert.der
    else:
        ski = sid.chosen.native
        for cert in pool:
            if cert.key_identifier == ski:
                return cert.der
    return None


def _check_signature(cert_der, si, digest_name, data):
    """None if the signature over data verifies, else the reason."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

    sig_alg = si["signature_algorithm"]
    name = sig_alg["algorithm"].native
    signature = si["signature"].native
    try:
        family = sig_alg.signature_algo
    except ValueError:
        return f"signature algorithm {name} is not supported"
    try:
        combined_hash = sig_alg.hash_algo
    except ValueError:
        combined_hash = None
    if family in ("rsassa_pkcs1v15", "ecdsa") and combined_hash not in (None, digest_name):
        return f"signature algorithm {name} disagrees with digest algorithm {digest_name}"
    try:
        public_key = x509.load_der_x509_certificate(cert_der).public_key()
    except ValueError as exc:
        return f"the signer's certificate cannot be read ({exc})"
    try:
        if family == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hash_class(digest_name)())
        elif family == "rsassa_pss" and isinstance(public_key, rsa.RSAPublicKey):
            params = sig_alg["parameters"]
            pss_hash = params["hash_algorithm"]["algorithm"].native
            mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
            if pss_hash not in DIGESTS or mgf_hash not in DIGESTS:
                return f"RSA-PSS with {pss_hash}/{mgf_hash} is not supported"
            if pss_hash != digest_name:
                return f"RSA-PSS hash {pss_hash} disagrees with digest algorithm {digest_name}"
            public_key.verify(signature, data,
                              padding.PSS(mgf=padding.MGF1(hash_class(mgf_hash)()),
                                          salt_length=params["salt_length"].native),
                              hash_class(pss_hash)())
        elif family == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hash_class(digest_name)()))
        elif family == "ed25519" and isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif family == "ed448" and isinstance(public_key, ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        elif family in ("rsassa_pkcs1v15", "rsassa_pss", "ecdsa", "ed25519", "ed448"):
            return f"signature algorithm {name} does not match the signer's {type(public_key).__name__} key"
        else:
            return f"signature algorithm {name} is not supported"
    except InvalidSignature:
        return "the signature value does not verify: the signed data was altered or signed by another key"
    except (ValueError, KeyError, TypeError) as exc:
        return f"the signature cannot be checked ({exc})"
    return None


def _digest(name, chunks):
    from ..mime import flat

    h = hashlib.new(name)
    for chunk in flat(chunks):
        h.update(chunk)
    return h.digest()


def _time(moment):
    if 1950 <= moment.year < 2050:
        return cms.Time({"utc_time": moment})
    return cms.Time({"generalized_time": moment})


def digest_for(key, digest):
    """The digest a signature by key really uses: RFC 8419 fixes SHA-512 for Ed25519."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return "sha512" if isinstance(key, ed25519.Ed25519PrivateKey) else digest


def sign(content, key, cert_der, chain=(), *, digest="sha256", detached=True,
         signing_time=None, capabilities=CAPABILITIES, key_preference=True, encryption_cert=None):
    """A DER ContentInfo(SignedData) over content by key/cert_der, as a list of chunks.

    The content (bytes or a list of chunks) must already be canonical
    (CRLF).  The certificate and the
    given chain are included; signed attributes are content-type,
    signing-time, message-digest, SMIMECapabilities and, with
    key_preference, SMIMEEncryptionKeyPreference naming our certificate (or
    encryption_cert, the DER of a separate encryption certificate, which is
    then carried too).
    """
    from datetime import datetime, timezone

    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    if digest not in DIGESTS or digest == "sha1":
        raise Unsupported(f"signing with digest {digest} is not supported (use sha256, sha384 or sha512)")
    chunks = content if isinstance(content, (list, tuple)) else [content]
    cert = ax509.Certificate.load(cert_der)
    ias = cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number})
    moment = (signing_time or datetime.now(timezone.utc)).replace(microsecond=0)
    digest = digest_for(key, digest)
    attrs = [
        {"type": "content_type", "values": ["data"]},
        {"type": "signing_time", "values": [_time(moment)]},
        {"type": "message_digest", "values": [_digest(digest, chunks)]},
        {"type": "smime_capabilities", "values": [[{"capability_id": c} for c in capabilities]]},
    ]
    if key_preference:
        target = ias
        if encryption_cert is not None:
            enc = ax509.Certificate.load(encryption_cert)
            target = cms.IssuerAndSerialNumber({"issuer": enc.issuer, "serial_number": enc.serial_number})
            chain = [encryption_cert, *chain]
        attrs.append({"type": "encrypt_key_pref",
                      "values": [cms.SMIMEEncryptionKeyPreference({"issuer_and_serial_number": target})]})
    if isinstance(key, rsa.RSAPrivateKey):
        sig_alg = {"algorithm": "rsassa_pkcs1v15", "parameters": core.Null()}
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig_alg = {"algorithm": f"{digest}_ecdsa"}
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        sig_alg = {"algorithm": "ed25519"}
    else:
        raise Unsupported(f"signing with a {type(key).__name__} is not supported")
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": ias}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
        "signed_attrs": cms.CMSAttributes(attrs),
        "signature_algorithm": algos.SignedDigestAlgorithm(sig_alg),
        "signature": b"",
    })
    to_sign = b"\x31" + signer["signed_attrs"].dump(force=True)[1:]
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), hash_class(digest)())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(to_sign, ec.ECDSA(hash_class(digest)()))
    else:
        signature = key.sign(to_sign)
    signer["signature"] = signature
    certificates = cms.CertificateSet([cms.CertificateChoices({"certificate": ax509.Certificate.load(der)})
                                       for der in [cert_der, *chain]])
    content_chunks = [] if detached else ber.tlv(0xA0, ber.tlv(ber.OCTET_STRING, list(chunks)))
    signed_data = ber.tlv(ber.SEQUENCE, [
        core.Integer(1).dump(),
        cms.DigestAlgorithms([algos.DigestAlgorithm({"algorithm": digest})]).dump(),
        *ber.tlv(ber.SEQUENCE, [cms.ContentType("data").dump(), *content_chunks]),
        b"\xa0" + certificates.dump()[1:],
        cms.SignerInfos([signer]).dump(),
    ])
    return ber.tlv(ber.SEQUENCE, [cms.ContentType("signed_data").dump(), *ber.tlv(0xA0, signed_data)])
