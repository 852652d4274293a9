"""The user's trust decisions: install a certificate for its addresses, trust a CA.

Like iOS's "Install" on a sender's certificate: the certificate is bound
to every address it carries and trusted for them (for verification and as
an encryption target).  --ca makes a CA certificate a trust anchor.
"""

from . import certs
from .errors import FileProblem


def install(store, data, *, ca=False, what="the file"):
    """Install the certificate(s) in data; return [{fingerprint, addresses, kind}]."""
    found = certs.load_many(data, what)
    done = []
    with store.transaction():
        if ca:
            for cert in found:
                if not (certs.is_ca(cert) or certs.is_self_signed(cert)):
                    raise FileProblem(f"{what}: {cert.subject.rfc4514_string()} is not a CA certificate"
                                      " (install it without --ca to trust it for its addresses)")
                fp = store.add_anchor(cert)
                store.log("anchor-install", None, fp, {"subject": cert.subject.rfc4514_string()})
                done.append({"fingerprint": fp, "addresses": [], "kind": "anchor",
                             "subject": cert.subject.rfc4514_string()})
            return done
        leaves = [c for c in found if not certs.is_ca(c)]
        if not leaves:
            raise FileProblem(f"{what} holds only CA certificates (use --ca to trust a CA)")
        for cert in found:
            fp = store.add_certificate(cert)
            if cert not in leaves:
                continue
            addresses = certs.emails(cert)
            if not addresses:
                raise FileProblem(f"{what}: {cert.subject.rfc4514_string()} carries no e-mail address")
            for address in addresses:
                store.bind(address, fp, "user", "trusted")
            store.log("install", ", ".join(addresses), fp, {"subject": cert.subject.rfc4514_string()})
            done.append({"fingerprint": fp, "addresses": addresses, "kind": "certificate",
                         "subject": cert.subject.rfc4514_string()})
    return done
