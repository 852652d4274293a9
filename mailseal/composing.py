"""Signing and encrypting outgoing messages.

The message's own header fields (From, To, Subject, ...) stay outside; the
Content-* fields and the body become the inner entity, canonicalised to
CRLF.  Before a clear signature the inner entity is armoured for 7-bit
transport (8-bit text becomes quoted-printable), because a relay that
re-encodes a signed part breaks the signature.  Encryption goes to every
To/Cc/Bcc recipient and to the sender; if any of them has no usable
certificate, nothing is produced and every blocking recipient is named.
"""

from . import certs, identity, mime
from .addresses import header_addresses
from .errors import RecipientsBlocked

MICALG = {"sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512"}
PREAMBLE = b"This is a cryptographically signed message in MIME format.\r\n"


def signer_for(store, config, message, selector=None, moment=None):
    """The identity that signs message (From, the account's identity, or --as)."""
    from_addrs = header_addresses(message, "From")
    sender = from_addrs[0] if from_addrs else None
    account = config.account_for(sender) if sender else None
    chosen = selector or (account.identity if account else None)
    return identity.for_signing(store, sender, chosen, moment), account


def sign_entity(inner, key, ident, *, opaque=False, digest="sha256"):
    """The signed entity (multipart/signed or opaque pkcs7-mime) for inner chunks, as CRLF chunks.

    inner comes from mime.split_outer_inner: canonical chunks, armoured for
    7-bit transport when it will be clear-signed.
    """
    from .cms import signed

    chain_der = [certs.der(c) for c in ident.chain if not certs.is_self_signed(c)]
    if opaque:
        der = signed.sign(inner, key, certs.der(ident.cert), chain_der, digest=digest, detached=False)
        return mime.smime_part("signed-data", der)
    der = signed.sign(inner, key, certs.der(ident.cert), chain_der, digest=digest, detached=True)
    digest = signed.digest_for(key, digest)  # micalg names the digest really used (Ed25519: SHA-512)
    boundary = mime.boundary_for(inner).encode()
    head = (b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg="
            + MICALG.get(digest, digest).encode() + b";\r\n boundary=\"" + boundary + b"\"\r\n\r\n")
    signature_part = (b"Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
                      b"Content-Transfer-Encoding: base64\r\n"
                      b"Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
                      b"Content-Description: S/MIME Cryptographic Signature\r\n\r\n")
    return [head + PREAMBLE + b"\r\n--" + boundary + b"\r\n", *inner, b"\r\n--" + boundary + b"\r\n",
            signature_part, mime.encode_base64(der), b"--" + boundary + b"--\r\n"]


def protection_mode(config, message, encrypting, wanted=None):
    """The header protection (RFC 9788) to apply: "cipher", "clear" or None.

    wanted True/False overrides the account's protect_headers ("encrypted",
    the default: encrypted mail only; "always"; "never")."""
    if wanted is None:
        from_addrs = header_addresses(message, "From")
        account = config.account_for(from_addrs[0]) if config and from_addrs else None
        setting = account.protect_headers if account else "encrypted"
        wanted = setting == "always" or (setting == "encrypted" and encrypting)
    if not wanted:
        return None
    return "cipher" if encrypting else "clear"


def sign_message(raw, store, config, passphrase, *, selector=None, opaque=False, digest="sha256", protect=None):
    """Sign a whole message; return the signed message as chunks.  protect: see protection_mode."""
    message = mime.parse_message(raw)
    ident, account = signer_for(store, config, message, selector)
    key = ident.unlock(passphrase.with_command(account.passphrase_command if account else None))
    outer, inner = mime.split_outer_inner(message, armour=not opaque,
                                          protect=protection_mode(config, message, False, protect))
    return mime.assemble(outer, sign_entity(inner, key, ident, opaque=opaque, digest=digest), message.eol)


def recipients(message):
    """Every To, Cc and Bcc address of a message, normalised, in order."""
    return header_addresses(message, "To", "Cc", "Bcc")


def resolve(view, addresses, directories=()):
    """({address: certificate}, [(address, reason)]) for encryption (see mailseal.trust),
    asking the directories (mailseal.directory) as their order says."""
    from .directory import encryption_target

    found, blocked = {}, []
    for address in addresses:
        cert, reason, _ = encryption_target(view, directories, address)
        if cert is None:
            blocked.append((address, reason))
        else:
            found[address] = cert
    return found, blocked


def choose_cipher(view, found):
    """AES-256-GCM (AuthEnvelopedData, authenticated: no EFAIL gadgets) when every recipient
    advertised it in the SMIMECapabilities of mail they signed; else AES-256-CBC, which all read."""
    from .certs import fingerprint

    for address, cert in found.items():
        standing = view.standing(address, fingerprint(cert))
        capabilities = [c for r in (standing.rows if standing else []) for c in _capabilities(r)]
        if "aes256_gcm" not in capabilities:
            return "aes256_cbc"
    return "aes256_gcm"


def _capabilities(row):
    import json

    return json.loads(row["capabilities"]) if row.get("capabilities") else []


def encryption_targets(store, config, sender, addresses, with_cipher=False):
    """([certificate] for addresses, the sender's own identity); RecipientsBlocked naming each
    address (and the sender) that cannot be encrypted to, and why.  with_cipher: also the
    cipher every recipient can read (see choose_cipher)."""
    from .trust import TrustView

    if not addresses:
        raise RecipientsBlocked([("(none)", "the message has no To, Cc or Bcc recipient")])
    view = TrustView(store, config)
    found, blocked = resolve(view, addresses, config.directories(sender) if config else ())
    own = None
    if sender:
        own, reason = identity.for_encrypting_to_self(store, sender)
        if own is None:
            blocked.append((f"{sender} (you)", f"cannot encrypt a copy to yourself: {reason}"))
    else:
        blocked.append(("(sender)", "the message has no From address, so no copy can be encrypted to you"))
    if blocked:
        raise RecipientsBlocked(blocked)
    if with_cipher:
        return list(found.values()), own, choose_cipher(view, found)
    return list(found.values()), own


def encrypt_message(raw, store, config, passphrase, *, sign=False, selector=None, opaque=False,
                    digest="sha256", cipher=None, extra_recipients=(), to=None, oaep=None, protect=None):
    """Encrypt (optionally sign first) a message to its recipients and sender.

    to: encrypt to exactly these addresses (and the sender), whatever the
    header says (smime-sendmail sends each Bcc recipient a copy of its own).
    cipher None: AES-256-GCM if every recipient can read it, else AES-256-CBC.
    oaep: RSA-OAEP (SHA-256) key transport instead of PKCS#1 v1.5 (None: the account's oaep).
    protect: header protection (None: the account's protect_headers, on by default)."""
    from .cms import enveloped

    message = mime.parse_message(raw)
    from_addrs = header_addresses(message, "From")
    if to is None:
        to = recipients(message) + [a for a in extra_recipients if a not in recipients(message)]
    found, own, readable = encryption_targets(store, config, from_addrs[0] if from_addrs else None, to,
                                              with_cipher=True)
    cipher = cipher or readable
    if oaep is None:
        account = config.account_for(from_addrs[0]) if config and from_addrs else None
        oaep = bool(account and account.oaep)
    outer, inner = mime.split_outer_inner(message, armour=sign and not opaque,
                                          protect=protection_mode(config, message, True, protect))
    if sign:
        ident, account = signer_for(store, config, message, selector)
        key = ident.unlock(passphrase.with_command(account.passphrase_command if account else None))
        inner = sign_entity(inner, key, ident, opaque=opaque, digest=digest)

    targets = []
    for cert in found + [own.cert]:
        der = certs.der(cert)
        if der not in targets:
            targets.append(der)
    envelope = enveloped.encrypt(inner, targets, cipher, oaep=oaep)
    stype = "authEnveloped-data" if cipher.endswith("_gcm") else "enveloped-data"
    return mime.assemble(outer, mime.smime_part(stype, envelope), message.eol)
