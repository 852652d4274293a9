"""EnvelopedData and AuthEnvelopedData (RFC 5652 section 6, RFC 5083): decrypt, encrypt.

Decryption first matches a RecipientInfo to one of our certificates and only
then asks for that key, so a protected key is unlocked only when it is the
one the message needs.  RSA PKCS#1 v1.5 decryption with the wrong key does
not fail (OpenSSL's implicit rejection returns a random key), so the key is
always matched to the RecipientInfo first and the content decryption's
padding or tag decides.  Authenticated content (AES-GCM) is released only
after its tag has been checked: nothing is returned before.
"""

import os
from dataclasses import dataclass, field

from asn1crypto import algos, cms, core
from asn1crypto import x509 as ax509

from ..errors import DecryptionFailed, MalformedCMS, NotForUs, Unsupported
from . import DIGESTS, asn1_errors, ber, hash_class, same_name

#: content-encryption algorithms we read: name -> (family, key length)
CIPHERS = {
    "aes128_cbc": ("aes-cbc", 16), "aes192_cbc": ("aes-cbc", 24), "aes256_cbc": ("aes-cbc", 32),
    "tripledes_3key": ("3des-cbc", 24),
    "aes128_gcm": ("aes-gcm", 16), "aes192_gcm": ("aes-gcm", 24), "aes256_gcm": ("aes-gcm", 32),
    "1.2.840.113549.1.9.16.3.18": ("chacha20-poly1305", 32),  # RFC 8103
}
#: content-encryption algorithms we write
WRITE_CIPHERS = ("aes256_cbc", "aes128_cbc", "aes256_gcm", "aes128_gcm")


class _GcmParams(core.Sequence):
    """GCMParameters (RFC 5084): asn1crypto has no class for them."""

    _fields = [
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


@dataclass
class Decrypted:
    """Plaintext and how it was protected."""

    content: bytes
    content_type: str
    cipher: str
    authenticated: bool
    key_transport: str
    recipient_cert: bytes  # DER of our certificate that matched
    recipient_count: int
    notes: list = field(default_factory=list)


@dataclass
class RecipientRef:
    """Who a RecipientInfo is for, in a form we can show."""

    kind: str  # ktri, kari, kekri, pwri, ori
    issuer: object = None  # asn1crypto Name
    serial: int = None
    ski: bytes = None

    def describe(self):
        if self.issuer is not None:
            return f"serial {self.serial:x} issued by {self.issuer.human_friendly}"
        if self.ski is not None:
            return f"key id {self.ski.hex()}"
        return self.kind


@dataclass
class _Envelope:
    """The parts of an (Auth)EnvelopedData; the ciphertext stays in place."""

    ctype: str
    recipient_infos: object  # asn1crypto RecipientInfos
    content_type: str
    algorithm: object  # asn1crypto EncryptionAlgorithm
    chunks: list  # ciphertext, as memoryview chunks (None if detached)
    aad: bytes = b""
    mac: bytes = None


def _parse(data, what):
    buf = memoryview(data)
    oid, body = ber.content_info(buf)
    ctype = ber.oid_value(buf, oid)
    if ctype not in ("enveloped_data", "authenticated_enveloped_data"):
        raise MalformedCMS(f"{what} holds {ctype}, not enveloped-data")
    kids = ber.children(buf, body)
    i = 1
    if len(kids) > i and kids[i].tag == 0xA0:  # originatorInfo
        i += 1
    if len(kids) < i + 2 or kids[0].tag != 0x02 or kids[i].tag != ber.SET or kids[i + 1].tag != ber.SEQUENCE:
        raise MalformedCMS(f"{what} is not a valid {ctype}")
    eci = ber.children(buf, kids[i + 1])
    if len(eci) < 2 or eci[0].tag != 0x06 or eci[1].tag != ber.SEQUENCE:
        raise MalformedCMS(f"{what} has no valid encrypted content info")
    chunks = None
    if len(eci) > 2:
        if eci[2].tag not in (0x80, 0xA0):
            raise MalformedCMS(f"{what} has an invalid encrypted content")
        chunks = ber.octets(buf, eci[2])
    envelope = _Envelope(ctype, cms.RecipientInfos.load(kids[i].raw(buf), strict=False), ber.oid_value(buf, eci[0]),
                         algos.EncryptionAlgorithm.load(eci[1].raw(buf), strict=False), chunks)
    for kid in kids[i + 2:]:
        if ctype == "authenticated_enveloped_data" and kid.tag == 0xA1:
            envelope.aad = b"\x31" + kid.raw(buf)[1:]  # authAttrs are authenticated as a SET OF
        elif ctype == "authenticated_enveloped_data" and kid.tag == ber.OCTET_STRING:
            envelope.mac = bytes(buf[kid.content_start:kid.content_end])
    if ctype == "authenticated_enveloped_data" and envelope.mac is None:
        raise MalformedCMS(f"{what} has no authentication tag")
    return envelope


def _refs(recipient_infos):
    """[(RecipientRef, RecipientInfo choice)] for every RecipientInfo."""
    out = []
    for ri in recipient_infos:
        if ri.name == "ktri":
            rid = ri.chosen["rid"]
            if rid.name == "issuer_and_serial_number":
                ref = RecipientRef("ktri", rid.chosen["issuer"], rid.chosen["serial_number"].native)
            else:
                ref = RecipientRef("ktri", ski=rid.chosen.native)
            out.append((ref, ri.chosen))
        elif ri.name == "kari":
            for rek in ri.chosen["recipient_encrypted_keys"]:
                rid = rek["rid"]
                if rid.name == "issuer_and_serial_number":
                    ref = RecipientRef("kari", rid.chosen["issuer"], rid.chosen["serial_number"].native)
                else:
                    ref = RecipientRef("kari", ski=rid.chosen["subject_key_identifier"].native)
                out.append((ref, (ri.chosen, rek["encrypted_key"].native)))
        else:
            out.append((RecipientRef(ri.name), ri.chosen))
    return out


def recipients(data, what="the encrypted part"):
    """[RecipientRef] for every recipient of an (Auth)EnvelopedData."""
    with asn1_errors(what):
        return [ref for ref, _ in _refs(_parse(data, what).recipient_infos)]


def _matches(ref, cert):
    if ref.issuer is not None:
        return cert.serial_number == ref.serial and same_name(cert.issuer, ref.issuer)
    if ref.ski is not None:
        return cert.key_identifier == ref.ski
    return False


def decrypt(data, candidates, what="the encrypted part"):
    """Decrypt with whichever candidate key a RecipientInfo names.

    candidates: [(certificate DER, unlock)] where unlock() returns the
    private key (it may ask for a passphrase, so it is called only for a
    certificate the message is really encrypted to).
    """
    opened = _open(data, candidates, what)
    if opened.family == "aes-gcm":
        opened.info.content = _gcm_decrypt(opened.cek, opened.iv, opened.env.mac, opened.env.chunks, opened.env.aad)
    elif opened.family == "chacha20-poly1305":
        opened.info.content = _chacha_decrypt(opened.cek, opened.iv, opened.env.mac, opened.env.chunks, opened.env.aad)
    else:
        opened.info.content = _cbc_decrypt(opened.family, opened.cek, opened.iv, opened.env.chunks)
    return opened.info


def decrypt_stream(data, candidates, what="the encrypted part", piece=1 << 20):
    """decrypt(), with the plaintext as a generator of chunks instead of one buffer.

    Everything that can fail is checked before this returns: the key, the
    GCM tag (a first pass decrypts into a scratch buffer and keeps nothing)
    and the CBC padding (its last block decrypts on its own).  So the chunks
    are released only after authentication, and a large message is never
    held as plaintext whole.  The Decrypted it returns has content None.
    """
    opened = _open(data, candidates, what)
    env = opened.env
    if opened.family == "chacha20-poly1305":  # one-shot AEAD: checked and decrypted whole
        plain = _chacha_decrypt(opened.cek, opened.iv, env.mac, env.chunks, env.aad)
        return opened.info, iter([plain])
    chunks = [c[i:i + piece] for c in env.chunks for i in range(0, len(c), piece)]
    if opened.family == "aes-gcm":
        scratch = bytearray(piece + 32)
        _gcm_decrypt(opened.cek, opened.iv, env.mac, chunks, env.aad, into=scratch)
        make = _gcm_decryptor(opened.cek, opened.iv, env.mac, env.aad)
        keep = ber.size(chunks)
    else:
        keep = ber.size(chunks) - _cbc_padding(opened.family, opened.cek, opened.iv, chunks)
        make = _cbc_decryptor(opened.family, opened.cek, opened.iv)

    def plaintext():
        decryptor, left = make(), keep
        for chunk in chunks:
            out = decryptor.update(chunk)[:left]
            left -= len(out)
            if out:
                yield out
        decryptor.finalize()

    return opened.info, plaintext()


@dataclass
class _Opened:
    env: object
    info: Decrypted  # without content yet
    family: str
    cek: bytes
    iv: bytes  # the IV, or the GCM nonce


def _open(data, candidates, what):
    """Find our RecipientInfo, unwrap the content key and check the cipher's parameters."""
    with asn1_errors(what):
        env = _parse(data, what)
        refs = _refs(env.recipient_infos)
        ours = [(der, ax509.Certificate.load(der), unlock) for der, unlock in candidates]
        match = None
        for ref, info in refs:
            for der, cert, unlock in ours:
                if _matches(ref, cert):
                    match = (ref, info, der, unlock)
                    break
            if match:
                break
        if match is None:
            names = "; ".join(ref.describe() for ref, _ in refs) or "nobody"
            raise NotForUs(f"the message is not encrypted to any of your keys (it is for: {names})",
                           hint="import the identity it was encrypted to with 'smime-trust identity import'")
        ref, info, cert_der, unlock = match
        cipher_name = env.algorithm["algorithm"].native
    if env.chunks is None:
        raise Unsupported(f"{what} carries no encrypted content (detached ciphertext is not supported)")
    if cipher_name not in CIPHERS:
        raise Unsupported(f"content encryption {cipher_name} is not supported (obsolete or unknown)")
    private_key = unlock()
    with asn1_errors(what):
        if ref.kind == "ktri":
            transport, cek = _unwrap_ktri(info, private_key)
        elif ref.kind == "kari":
            transport, cek = _unwrap_kari(*info, private_key)
        else:
            raise Unsupported(f"{ref.kind.upper()} recipient info is not supported")
    family, key_len = CIPHERS[cipher_name]
    if len(cek) != key_len:
        raise DecryptionFailed("the content key does not fit the cipher: the message was altered or the key is wrong")
    notes = []
    if family == "aes-gcm":
        if env.ctype != "authenticated_enveloped_data":
            raise Unsupported("AES-GCM inside plain enveloped-data is not supported")
        with asn1_errors(what):
            params = _GcmParams.load(env.algorithm["parameters"].dump())
            iv = params["aes_nonce"].native
            tag_len = params["aes_icvlen"].native
        if not 12 <= tag_len <= 16:  # RFC 5084: a shorter tag is forgeable by trying
            raise DecryptionFailed(f"the authentication tag is {tag_len} bytes, fewer than the 12 RFC 5084"
                                   " requires: the message was altered or is not safe to trust")
        if len(env.mac) != tag_len:
            raise DecryptionFailed("the authentication tag has the wrong length: the message was altered")
        authenticated = True
    elif family == "chacha20-poly1305":
        if env.ctype != "authenticated_enveloped_data":
            raise Unsupported("ChaCha20-Poly1305 inside plain enveloped-data is not supported")
        with asn1_errors(what):
            iv = core.OctetString.load(env.algorithm["parameters"].dump()).native
        if not isinstance(iv, bytes) or len(iv) != 12 or len(env.mac) != 16:
            raise DecryptionFailed("the ChaCha20-Poly1305 nonce or tag has the wrong length: the message was altered")
        authenticated = True
    else:
        with asn1_errors(what):
            iv = env.algorithm["parameters"].native
        if env.ctype == "authenticated_enveloped_data":
            raise Unsupported(f"{cipher_name} inside authenticated-enveloped-data is not an AEAD cipher")
        if family == "3des-cbc":
            notes.append("encrypted with the obsolete 3DES cipher")
        block = 8 if family == "3des-cbc" else 16
        total = ber.size(env.chunks)
        if not isinstance(iv, bytes) or len(iv) != block or total % block or not total:
            raise DecryptionFailed("the ciphertext or its IV has the wrong length: the message is truncated or altered")
        authenticated = False
    name = "chacha20_poly1305" if family == "chacha20-poly1305" else cipher_name
    info = Decrypted(None, env.content_type, name, authenticated, transport, cert_der, len(refs), notes)
    return _Opened(env, info, family, cek, iv)


#: ECDH key agreement schemes (RFC 5753, RFC 8418 for the names): OID -> X9.63 KDF hash
_ECDH_SCHEMES = {
    "1.3.133.16.840.63.0.2": "sha1", "1.3.132.1.11.0": "sha224", "1.3.132.1.11.1": "sha256",
    "1.3.132.1.11.2": "sha384", "1.3.132.1.11.3": "sha512",
    # the cofactor variants: the same for the prime curves, whose cofactor is 1
    "1.3.133.16.840.63.0.3": "sha1", "1.3.132.1.14.0": "sha224", "1.3.132.1.14.1": "sha256",
    "1.3.132.1.14.2": "sha384", "1.3.132.1.14.3": "sha512",
}
#: X25519/X448 key agreement with HKDF (RFC 8418): OID -> HKDF hash
_HKDF_SCHEMES = {"1.2.840.113549.1.9.16.3.19": "sha256", "1.2.840.113549.1.9.16.3.20": "sha384",
                 "1.2.840.113549.1.9.16.3.21": "sha512"}
#: what we write, by curve: the KDF hash matching the curve's strength (RFC 5753 section 8)
_ECDH_WRITE = {"secp256r1": "1.3.132.1.11.1", "secp384r1": "1.3.132.1.11.2", "secp521r1": "1.3.132.1.11.3"}
_KEY_WRAPS = {"aes128_wrap": 16, "aes192_wrap": 24, "aes256_wrap": 32}


class _EccCmsSharedInfo(core.Sequence):
    """ECC-CMS-SharedInfo (RFC 5753 section 7.2): the X9.63 KDF's shared info."""

    _fields = [
        ("key_info", algos.EncryptionAlgorithm),
        ("entity_u_info", core.OctetString, {"explicit": 0, "optional": True}),
        ("supp_pub_info", core.OctetString, {"explicit": 2}),
    ]


def _ecdh_kek(private_key, peer_key, scheme, wrap, ukm):
    """The key-encryption key of a key agreement (ephemeral-static): ECDH or X25519/X448, then
    the X9.63 KDF (RFC 5753) or HKDF (RFC 8418) over ECC-CMS-SharedInfo."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

    length = _KEY_WRAPS[wrap]
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        shared = private_key.exchange(ec.ECDH(), peer_key)
    else:
        shared = private_key.exchange(peer_key)
    info = _EccCmsSharedInfo({"key_info": {"algorithm": wrap}, "entity_u_info": ukm,
                              "supp_pub_info": (8 * length).to_bytes(4, "big")}).dump()
    if scheme in _HKDF_SCHEMES:
        return HKDF(algorithm=hash_class(_HKDF_SCHEMES[scheme])(), length=length, salt=ukm, info=info).derive(shared)
    return X963KDF(algorithm=hash_class(_ECDH_SCHEMES[scheme])(), length=length, sharedinfo=info).derive(shared)


def _unwrap_kari(info, encrypted_key, private_key):
    """(scheme name, content key) of a KeyAgreeRecipientInfo, with our EC key."""
    from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

    montgomery = {x25519.X25519PrivateKey: x25519.X25519PublicKey, x448.X448PrivateKey: x448.X448PublicKey}
    kind = next((k for k in montgomery if isinstance(private_key, k)), None)
    if kind is None and not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise Unsupported("key agreement needs an EC, X25519 or X448 key")
    originator = info["originator"]
    if originator.name != "originator_key":
        raise Unsupported("static-static ECDH (an originator certificate instead of a key) is not supported")
    scheme = info["key_encryption_algorithm"]["algorithm"].dotted
    if scheme not in _ECDH_SCHEMES and scheme not in _HKDF_SCHEMES:
        raise Unsupported(f"key agreement scheme {scheme} is not supported (the X9.63 KDF or HKDF are)")
    wrap = algos.EncryptionAlgorithm.load(info["key_encryption_algorithm"]["parameters"].dump())["algorithm"].native
    if wrap not in _KEY_WRAPS:
        raise Unsupported(f"key wrap {wrap} is not supported (AES key wrap is)")
    point = originator.chosen["public_key"].native
    try:
        if kind is not None:
            peer = montgomery[kind].from_public_bytes(point)
        else:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(private_key.curve, point)
    except (ValueError, TypeError):
        raise DecryptionFailed("the sender's ephemeral key is not a point on our curve: the message was altered") from None
    ukm = info["ukm"].native if info["ukm"].native is not None else None
    kek = _ecdh_kek(private_key, peer, scheme, wrap, ukm)
    try:
        name = f"hkdf-{_HKDF_SCHEMES[scheme]}" if scheme in _HKDF_SCHEMES else f"{_ECDH_SCHEMES[scheme]}kdf"
        return f"{'x25519' if kind is x25519.X25519PrivateKey else 'x448' if kind else 'ecdh'}-{name}-{wrap}", \
            aes_key_unwrap(kek, encrypted_key)
    except InvalidUnwrap:
        raise DecryptionFailed("the content key does not unwrap with your key: the message was altered") from None


def _kari_for(cert, public_key, cek):
    """A KeyAgreeRecipientInfo giving cek to an EC or X25519 certificate's holder (ephemeral-static:
    ECDH with the X9.63 KDF, RFC 5753; X25519 with HKDF-SHA256, RFC 8418)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, x25519
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    wrap = {16: "aes128_wrap", 24: "aes192_wrap", 32: "aes256_wrap"}[len(cek)]
    if isinstance(public_key, x25519.X25519PublicKey):
        scheme, algorithm = "1.2.840.113549.1.9.16.3.19", "x25519"
        ephemeral = x25519.X25519PrivateKey.generate()
        point = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        scheme, algorithm = _ECDH_WRITE.get(public_key.curve.name), "ec"
        if scheme is None:
            raise Unsupported(f"encrypting to a {public_key.curve.name} key is not supported (P-256, P-384, P-521 are)")
        ephemeral = ec.generate_private_key(public_key.curve)
        point = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
    kek = _ecdh_kek(ephemeral, public_key, scheme, wrap, None)
    return cms.RecipientInfo({"kari": cms.KeyAgreeRecipientInfo({
        "version": "v3",
        "originator": cms.OriginatorIdentifierOrKey({"originator_key": {
            "algorithm": {"algorithm": algorithm}, "public_key": point}}),
        "key_encryption_algorithm": {"algorithm": scheme, "parameters": algos.EncryptionAlgorithm({"algorithm": wrap})},
        "recipient_encrypted_keys": [{
            "rid": {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}},
            "encrypted_key": aes_key_wrap(kek, cek)}],
    })})


def _unwrap_ktri(info, private_key):
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise Unsupported("key transport needs an RSA key")
    alg = info["key_encryption_algorithm"]
    name = alg["algorithm"].native
    encrypted_key = info["encrypted_key"].native
    if name == "rsaes_pkcs1v15":
        pad = padding.PKCS1v15()
    elif name == "rsaes_oaep":
        params = alg["parameters"]
        oaep_hash = params["hash_algorithm"]["algorithm"].native
        mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
        label = params["p_source_algorithm"]["parameters"].native or None
        if oaep_hash not in DIGESTS or mgf_hash not in DIGESTS:
            raise Unsupported(f"RSA-OAEP with {oaep_hash}/{mgf_hash} is not supported")
        pad = padding.OAEP(mgf=padding.MGF1(hash_class(mgf_hash)()), algorithm=hash_class(oaep_hash)(), label=label)
    else:
        raise Unsupported(f"key transport {name} is not supported")
    try:
        return name, private_key.decrypt(encrypted_key, pad)
    except ValueError:
        raise DecryptionFailed("the content key does not decrypt with your key: the message was altered") from None


def _run_cipher(cipher, chunks, into=None):
    """Run a decryptor over chunks into one buffer (no intermediate copies).

    With into (a scratch buffer as large as the largest chunk plus a block),
    every chunk's output overwrites the last: nothing is kept."""
    if into is not None:
        scratch = memoryview(into)
        for chunk in chunks:
            cipher.update_into(chunk, scratch)
        scratch.release()
        return None
    total = sum(len(c) for c in chunks)
    out = bytearray(total + 32)
    view = memoryview(out)
    n = 0
    for chunk in chunks:
        n += cipher.update_into(chunk, view[n:])
    view.release()
    del out[n:]
    return out


def _cbc_decryptor(family, key, iv):
    """A function making a fresh CBC decryptor for key and iv (no padding removal)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if family == "3des-cbc":
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

        algorithm = TripleDES(key)
    else:
        algorithm = algorithms.AES(key)
    return lambda: Cipher(algorithm, modes.CBC(iv)).decryptor()


def _cbc_padding(family, key, iv, chunks):
    """The length of the CBC padding, from the last block alone (its IV is the block before)."""
    block = 8 if family == "3des-cbc" else 16
    tail = b""
    for chunk in reversed(chunks):  # the last two blocks, without joining a large ciphertext
        tail = bytes(chunk[-(2 * block - len(tail)):]) + tail
        if len(tail) == 2 * block:
            break
    if len(tail) < 2 * block:
        tail = iv + tail
    last = _cbc_decryptor(family, key, tail[:block])().update(tail[block:])
    pad = last[-1]
    if not 1 <= pad <= block or last[-pad:] != bytes([pad]) * pad:
        raise DecryptionFailed("the content does not decrypt (bad padding): the message was altered or the key is wrong")
    return pad


def _cbc_decrypt(family, key, iv, chunks):
    pad = _cbc_padding(family, key, iv, chunks)
    decryptor = _cbc_decryptor(family, key, iv)()
    plain = _run_cipher(decryptor, chunks)
    decryptor.finalize()
    del plain[-pad:]
    return plain  # a bytearray: copying 25 MB into bytes would only raise the peak


def _gcm_decryptor(key, nonce, tag, aad):
    """A function making a fresh GCM decryptor that checks tag at finalize()."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def make():
        decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag, min_tag_length=len(tag))).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor
    return make


def _chacha_decrypt(key, nonce, tag, chunks, aad):
    """ChaCha20-Poly1305 (RFC 8103): the plaintext, once the tag is checked."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    try:
        return ChaCha20Poly1305(key).decrypt(nonce, b"".join(chunks) + tag, aad or None)
    except InvalidTag:
        raise DecryptionFailed("the authentication tag does not match: the message was altered; nothing was decrypted") from None


def _gcm_decrypt(key, nonce, tag, chunks, aad, into=None):
    """The plaintext, once the tag is checked (with into: only the check)."""
    from cryptography.exceptions import InvalidTag

    try:
        decryptor = _gcm_decryptor(key, nonce, tag, aad)()
        plain = _run_cipher(decryptor, chunks, into)
        decryptor.finalize()  # checks the tag; nothing is returned before this
    except InvalidTag:
        raise DecryptionFailed("the authentication tag does not match: the message was altered; nothing was decrypted") from None
    except ValueError as exc:
        raise DecryptionFailed(f"the authenticated content cannot be decrypted ({exc})") from None
    return plain


#: RSAES-OAEP with SHA-256 and MGF1-SHA-256, no label (RFC 8017, as RFC 8551 recommends)
_OAEP_SHA256 = {"algorithm": "rsaes_oaep", "parameters": {
    "hash_algorithm": {"algorithm": "sha256"},
    "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}}}}


def encrypt(content, recipient_certs, cipher="aes256_cbc", oaep=False):
    """A DER ContentInfo encrypting content to every certificate given, as chunks.

    content is bytes or a list of byte chunks (they are encrypted in turn).

    AES-CBC gives EnvelopedData, AES-GCM AuthEnvelopedData.  RSA recipients
    get PKCS#1 v1.5 key transport (what every peer reads), EC recipients
    ephemeral-static ECDH with the X9.63 KDF and AES key wrap (RFC 5753).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from ..mime import Lazy, flat

    if cipher not in WRITE_CIPHERS:
        raise Unsupported(f"encrypting with {cipher} is not supported (choose one of {', '.join(WRITE_CIPHERS)})")
    family, key_len = CIPHERS[cipher]
    cek = os.urandom(key_len)
    infos = []
    for der in recipient_certs:
        public_key = x509.load_der_x509_certificate(der).public_key()
        cert = ax509.Certificate.load(der)
        if isinstance(public_key, (ec.EllipticCurvePublicKey, x25519.X25519PublicKey)):
            infos.append(_kari_for(cert, public_key, cek))
            continue
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise Unsupported(f"encrypting to a {type(public_key).__name__} certificate is not supported")
        infos.append(cms.RecipientInfo({"ktri": cms.KeyTransRecipientInfo({
            "version": "v0",
            "rid": cms.RecipientIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
                {"issuer": cert.issuer, "serial_number": cert.serial_number})}),
            "key_encryption_algorithm": _OAEP_SHA256 if oaep else {"algorithm": "rsaes_pkcs1v15",
                                                                     "parameters": core.Null()},
            "encrypted_key": public_key.encrypt(cek, padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
                if oaep else padding.PKCS1v15()),
        })}))
    chunks = content if isinstance(content, (list, tuple)) else [content]
    recipient_infos = cms.RecipientInfos(infos).dump()
    version = 0 if all(info.name == "ktri" for info in infos) else 2  # RFC 5652 section 6.1
    size = ber.size(chunks)
    if family == "aes-cbc":
        iv = os.urandom(16)
        pad = 16 - size % 16

        def cbc():  # encrypted as it is written out, a chunk at a time
            encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
            for chunk in flat(chunks):
                yield encryptor.update(chunk)
            yield encryptor.update(bytes([pad]) * pad) + encryptor.finalize()

        ciphertext = [Lazy(size + pad, cbc)]
        algorithm = algos.EncryptionAlgorithm({"algorithm": cipher, "parameters": iv}).dump()
        envelope = ber.tlv(ber.SEQUENCE, [
            core.Integer(version).dump(), recipient_infos,
            *ber.tlv(ber.SEQUENCE, [cms.ContentType("data").dump(), algorithm, *ber.tlv(0x80, ciphertext)]),
        ])
        return ber.tlv(ber.SEQUENCE, [cms.ContentType("enveloped_data").dump(), *ber.tlv(0xA0, envelope)])
    nonce = os.urandom(12)
    tag = []

    def gcm():  # the tag element after the ciphertext is read once this has run
        encryptor = Cipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
        for chunk in flat(chunks):
            yield encryptor.update(chunk)
        yield encryptor.finalize()
        tag[:] = [encryptor.tag]

    ciphertext = [Lazy(size, gcm)]
    params = _GcmParams({"aes_nonce": nonce, "aes_icvlen": 16})
    algorithm = algos.EncryptionAlgorithm({"algorithm": cipher, "parameters": core.Any.load(params.dump())}).dump()
    envelope = ber.tlv(ber.SEQUENCE, [
        core.Integer(0).dump(), recipient_infos,
        *ber.tlv(ber.SEQUENCE, [cms.ContentType("data").dump(), algorithm, *ber.tlv(0x80, ciphertext)]),
        *ber.tlv(ber.OCTET_STRING, [Lazy(16, lambda: tag)]),
    ])
    return ber.tlv(ber.SEQUENCE, [cms.ContentType("authenticated_enveloped_data").dump(), *ber.tlv(0xA0, envelope)])
