"""Your own identities: certificate, chain and private key, current and past.

A PKCS#12 file (from a CA, your organisation, Thunderbird/NSS, OpenSSL,
legacy RC2/3DES ones, self-signed, with or without chain) is imported once:
the certificate and chain go into the trust database, the key into
MAILSEAL_HOME/keys (0600), encrypted at rest under the file's passphrase
unless imported unprotected.  Every key ever imported is kept: a renewed
identity signs from then on, the old key still decrypts old mail.
"""

import os
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone

from . import certs, paths
from .addresses import normalize
from .errors import FileProblem, NoIdentity, NotFound, Unsupported, WrongPassphrase


@dataclass
class Identity:
    fingerprint: str
    cert: object
    chain: list  # x509 certificates, issuer first
    key_file: str
    protected: bool

    @property
    def emails(self):
        return certs.emails(self.cert)

    def unlock(self, passphrase):
        """The private key; passphrase is a mailseal.passphrase.Passphrase."""
        from cryptography.hazmat.primitives import serialization

        try:
            with open(self.key_file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise FileProblem(f"cannot read the key of {self.label()} ({exc.strerror})") from None
        password = passphrase.get(f"the key of {self.label()}") if self.protected else None
        try:
            # RSA key validation costs 35 ms per call; this key was validated when
            # it was imported, and the file is ours (0600), so it is not repeated
            return serialization.load_pem_private_key(data, password=password, unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError):
            raise WrongPassphrase(f"the passphrase does not unlock the key of {self.label()}") from None

    def label(self):
        return f"{', '.join(self.emails) or certs.common_name(self.cert)} ({self.fingerprint[:16]})"


def _read_pkcs12(data, password):
    from cryptography.hazmat.primitives.serialization import pkcs12

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NSS writes BER: cryptography warns, then reads it
        try:
            return pkcs12.load_pkcs12(data, password)
        except ValueError as exc:
            text = str(exc)
            if "password" in text.lower() or "mac" in text.lower():
                raise WrongPassphrase("the passphrase does not open this PKCS#12 file") from None
            raise FileProblem(f"not a readable PKCS#12 file ({text})") from None
        except TypeError as exc:
            raise Unsupported(f"this PKCS#12 file holds a key type mailseal cannot use yet ({exc})") from None


def import_pkcs12(store, data, password, *, unprotected=False, what="the PKCS#12 file"):
    """Import an identity from PKCS#12 bytes; return the Identity."""
    from cryptography.hazmat.primitives import serialization

    bundle = _read_pkcs12(data, password or None)
    if bundle.key is None or bundle.cert is None:
        raise FileProblem(f"{what} holds no private key with its certificate")
    cert = bundle.cert.certificate
    key = bundle.key
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo):
        raise FileProblem(f"{what}: the private key does not belong to the certificate")
    addresses = certs.emails(cert)
    if not addresses:
        raise FileProblem(f"{what}: the certificate carries no e-mail address")
    chain = [c.certificate for c in bundle.additional_certs]
    if unprotected:
        encryption = serialization.NoEncryption()
    else:
        if not password:
            raise FileProblem(f"{what} has an empty passphrase, so the key cannot be stored encrypted under it",
                              hint="import it with --unprotected, or protect the file with a passphrase first")
        encryption = serialization.BestAvailableEncryption(password)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    fp = certs.fingerprint(cert)
    relative = os.path.join("keys", f"{fp}.pem")
    paths.write_private(os.path.join(paths.home(), relative), pem)
    with store.transaction():
        store.add_certificate(cert)
        chain_fps = [store.add_certificate(c) for c in chain]
        store.add_identity(fp, relative, not unprotected, chain_fps)
        for address in addresses:
            store.bind(address, fp, "identity", "trusted")
        store.log("identity-import", ", ".join(addresses), fp,
                  {"protected": not unprotected, "chain": chain_fps})
    return load_identity(store, fp)


def load_identity(store, fp):
    for ident in identities(store):
        if ident.fingerprint == fp:
            return ident
    raise NotFound(f"no identity with fingerprint {fp}")


def identities(store):
    """Every identity on record, newest certificate first."""
    out = []
    for row in store.identity_rows():
        import json

        chain = [store.certificate(fp) for fp in json.loads(row["chain"])]
        out.append(Identity(row["fingerprint"], certs.load_der(row["der"]), [c for c in chain if c is not None],
                            os.path.join(paths.home(), row["key_file"]), bool(row["protected"])))
    return out


def status(ident, all_identities, moment=None):
    """'current', 'historical' (a newer one signs for its addresses) or 'expired'."""
    moment = moment or datetime.now(timezone.utc)
    if moment > certs.not_after(ident.cert):
        return "expired"
    for other in all_identities:
        if other is ident or not set(other.emails) & set(ident.emails):
            continue
        if certs.not_before(other.cert) > certs.not_before(ident.cert) and certs.valid_at(other.cert, moment):
            return "historical"
    return "current"


def find(store, selector):
    """Identities matching an address or a fingerprint (prefix)."""
    selector = selector.strip()
    all_ids = identities(store)
    if "@" in selector:
        address = normalize(selector)
        return [i for i in all_ids if address in i.emails]
    prefix = selector.lower().replace(":", "")
    return [i for i in all_ids if i.fingerprint.startswith(prefix)]


def for_signing(store, address, selector=None, moment=None):
    """The identity that signs for address: newest valid one carrying it.

    selector (--as, or the account's identity setting) names an address or
    a fingerprint instead.
    """
    moment = moment or datetime.now(timezone.utc)
    if selector:
        candidates = find(store, selector)
        what = selector
    else:
        if not address:
            raise NoIdentity("the message has no From address to choose a signing identity by",
                             hint="use --as ADDRESS")
        candidates = find(store, address)
        what = address
    if not candidates:
        raise NoIdentity(f"no identity of yours for {what}",
                         hint="import one with 'smime-trust identity import FILE.p12'")
    problems = []
    usable = []
    for ident in candidates:
        problem = certs.unusable_for(ident.cert, "sign", moment)
        if problem:
            problems.append(f"{ident.label()}: {problem}")
        else:
            usable.append(ident)
    if not usable:
        raise NoIdentity(f"no usable identity for {what}: " + "; ".join(problems))
    usable.sort(key=lambda i: certs.not_before(i.cert), reverse=True)
    return usable[0]


def for_encrypting_to_self(store, address, moment=None):
    """The own certificate to encrypt a copy to, or (None, reason)."""
    moment = moment or datetime.now(timezone.utc)
    candidates = find(store, address) if address else []
    if not candidates:
        return None, "no identity of yours for this address (import one with 'smime-trust identity import')"
    reasons = []
    usable = []
    for ident in candidates:
        problem = certs.unusable_for(ident.cert, "encrypt", moment)
        (reasons.append(problem) if problem else usable.append(ident))
    if not usable:
        return None, "; ".join(reasons)
    usable.sort(key=lambda i: certs.not_before(i.cert), reverse=True)
    return usable[0], None


def decryption_candidates(store, passphrase, config=None):
    """[(certificate DER, unlock)] for every key we ever held.

    unlock() uses the passphrase source, falling back to the
    passphrase_command of the account that covers the identity.
    """
    out = []
    for ident in identities(store):
        source = passphrase
        if config is not None:
            for address in ident.emails:
                account = config.account_for(address)
                if account and account.passphrase_command:
                    source = passphrase.with_command(account.passphrase_command)
                    break
        out.append((certs.der(ident.cert), lambda ident=ident, source=source: ident.unlock(source)))
    return out
