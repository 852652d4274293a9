"""Path validation for S/MIME certificates (RFC 8550), with cryptography's verifier.

The verifier's defaults are the Web PKI's; S/MIME needs other extension
policies: emailProtection (or no EKU at all) instead of clientAuth, no
required AuthorityKeyIdentifier or SubjectAltName (addresses may sit in the
subject DN only), and CAs whose basicConstraints or keyUsage are not marked
critical.  The verifier does not compare addresses: binding the signer to
From is done by the caller.
"""

from dataclasses import dataclass

from cryptography.x509.oid import ExtendedKeyUsageOID


@dataclass
class Validation:
    ok: bool
    reason: str = ""
    chain: list = None  # certificates, leaf first, anchor last
    expired: bool = False


def _eku_check(policy, cert, eku):
    if eku is not None and ExtendedKeyUsageOID.EMAIL_PROTECTION not in eku \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        raise ValueError("the certificate is not for e-mail protection (extended key usage)")


def _policies():
    from cryptography import x509
    from cryptography.x509.verification import Criticality, ExtensionPolicy

    ee = (ExtensionPolicy.webpki_defaults_ee()
          .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_check)
          .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
          .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
          .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
          .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, None))
    ca = (ExtensionPolicy.webpki_defaults_ca()
          .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
          .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
          .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
          .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None))
    return ca, ee


def validate(leaf, intermediates, anchors, moment):
    """Does leaf chain to one of anchors at moment, through intermediates?"""
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    if not anchors:
        return Validation(False, "no trust anchor is installed (smime-trust install --ca FILE)")
    ca, ee = _policies()
    try:
        verifier = (PolicyBuilder().store(Store(list(anchors))).time(moment)
                    .extension_policies(ca_policy=ca, ee_policy=ee).build_client_verifier())
        # a self-signed certificate is never an intermediate; offering one
        # sends path building round in circles instead of saying "unknown CA"
        pool = [c for c in intermediates if c != leaf and c.issuer != c.subject]
        result = verifier.verify(leaf, pool)
    except VerificationError as exc:
        found = _explain(str(exc), leaf)
        if found.expired and abs((moment - _now()).total_seconds()) < 300:
            found.reason = "a certificate in its chain is not valid now (expired or not yet valid)"
        elif found.expired:
            # not valid then: is it a validity problem at all, or another CA?
            later = validate(leaf, intermediates, anchors, _now())
            if not later.ok and not later.expired:
                return later
        return found
    except ValueError as exc:
        return Validation(False, f"the certificate cannot be validated ({exc})")
    return Validation(True, "", list(result.chain))


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0)


def _explain(text, leaf):
    if "not valid at validation time" in text:
        return Validation(False, "a certificate in its chain was not valid at the signing time", expired=True)
    if "candidates exhausted" in text and "no interior errors" in text:
        return Validation(False, f"issued by {_issuer_name(leaf)}, which is not a trusted CA")
    if "e-mail protection" in text:
        return Validation(False, "the certificate is not for e-mail protection (extended key usage)")
    if "Forbidden signature algorithm" in text:
        return Validation(False, "its chain uses a forbidden signature algorithm (e.g. SHA-1)")
    if "Forbidden public key algorithm" in text:
        return Validation(False, "its chain uses a key type the path validator does not accept")
    return Validation(False, "its chain does not validate: " + text.replace("validation failed: ", ""))


def _issuer_name(cert):
    from cryptography.x509.oid import NameOID

    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"'{names[0].value}'" if names else "a CA"
