"""Tampered messages: each attack is built from a real mailseal or openssl message.

A wrong GCM tag, flipped CBC bits in signed-then-encrypted mail (EFAIL's
malleability), swapped RecipientInfo keys, removed or altered signed
attributes and a digest algorithm downgrade.  Each must end in the exact
documented exit code, release no plaintext when decryption fails, never say
"trusted", and never crash (no Traceback).  The structures are rewritten with
asn1crypto; an untouched re-encoding is checked too, so that the rewriting
itself is known not to break anything.
"""

import base64
import datetime
import hashlib
import json

import pytest
from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests import peers
from tests.conftest import Home, message

BAD, UNSIGNED, DECRYPTION_FAILED = 5, 6, 23  # README: exit codes

BODY = ("Hello Bob,\n\nas agreed in the meeting, please pay 100 EUR to account 12345.\n\n"
        "Regards,\nAlice\n")
HEAD = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: The plan\r\n"


@pytest.fixture(scope="module")
def homes(tmp_path_factory, ca, people):
    """Alice (her identity; Bob, Dana and Erin installed), Bob and Erin, each with the CA trusted."""
    base = tmp_path_factory.mktemp("tampering")
    files = base / "files"
    files.mkdir()
    dana, erin = ca.issue("dana@example.org", kind="ec"), ca.issue("erin@example.org", kind="ec")
    alice, bob, erin_home = Home(base / "alice"), Home(base / "bob"), Home(base / "erin")
    alice.import_identity(people["alice"], files)
    bob.import_identity(people["bob"], files)
    erin_home.import_identity(erin, files)
    for home in (alice, bob, erin_home):
        home.install(ca.pem(), files, "ca.pem", ca=True)
    for name, person in (("bob", people["bob"]), ("dana", dana), ("erin", erin)):
        alice.install(person.cert_pem(), files, f"{name}-cert.pem")
    return {"alice": alice, "bob": bob, "erin": erin_home}


# --- plumbing ---------------------------------------------------------------------------------

def no_traceback(result):
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")


def rebody(msg, der):
    """msg with its single base64 body replaced by der (the header, with its Content-Type, kept)."""
    head = peers.crlf(msg).partition(b"\r\n\r\n")[0]
    return head + b"\r\n\r\n" + base64.encodebytes(der).replace(b"\n", b"\r\n")


def rewrite(der, change):
    """der with change(content of the ContentInfo) applied, re-encoded."""
    info = cms.ContentInfo.load(der)
    change(info["content"])
    return info.dump(force=True)


def flip(data, offset, mask=0x01):
    data = bytearray(data)
    data[offset] ^= mask
    return bytes(data)


def decrypt(home, msg, *args):
    result = home.run("smime-decrypt", "--passphrase-file", home.passfile, *args, input=msg)
    no_traceback(result)
    return result


def decrypt_report(home, msg):
    """(exit code, report, stdout) of smime-decrypt --verify --json."""
    result = decrypt(home, msg, "--verify", "--json")
    lines = result.stderr.decode().strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return result.returncode, report, result.stdout


def verify(home, msg, *args):
    """(exit code, verdict, report) of smime-verify --json."""
    result = home.run("smime-verify", "--json", *args, input=msg)
    no_traceback(result)
    report = json.loads(result.stdout)
    return result.returncode, report["verdict"], report


def assert_releases_nothing(home, msg):
    """Decryption fails with exit 23 and writes nothing, streaming and with --verify."""
    for args in ((), ("--verify",), ("--verify", "--json")):
        result = decrypt(home, msg, *args)
        assert result.returncode == DECRYPTION_FAILED, (args, result.returncode, result.stderr)
        assert result.stdout == b"", (args, result.stdout[:200])
        assert b"100 EUR" not in result.stderr


def encrypted(homes, *args, to="bob@example.org", body=BODY):
    return homes["alice"].ok("smime-encrypt", *args, input=message(to=to, body=body))


# --- AES-GCM: a wrong tag releases nothing ------------------------------------------------

def _gcm_mac(change):
    def apply(content):
        content["mac"] = change(content["mac"].native)
    return apply


def _gcm_ciphertext(content):
    eci = content["auth_encrypted_content_info"]
    eci["encrypted_content"] = flip(eci["encrypted_content"].native, 40)


GCM_TAMPERING = {
    "flipped tag": _gcm_mac(lambda mac: flip(mac, len(mac) - 1)),
    "truncated tag": _gcm_mac(lambda mac: mac[:12]),
    "zero tag": _gcm_mac(lambda mac: bytes(len(mac))),
    "flipped ciphertext": _gcm_ciphertext,
}


@pytest.mark.parametrize("tampering", list(GCM_TAMPERING))
@pytest.mark.parametrize("maker", ["mailseal", "openssl"])
def test_wrong_gcm_tag_releases_nothing(homes, people, tmp_path, maker, tampering):
    if maker == "mailseal":
        msg = encrypted(homes, "--cipher", "aes256-gcm")
    else:
        content = peers.crlf(b"Content-Type: text/plain\n\n" + BODY.encode())
        der = peers.OpenSSL(tmp_path).encrypt(content, people["bob"], options=("-aes-256-gcm", "-outform", "DER"))
        msg = peers.wrap_der(der, b"authEnveloped-data", HEAD)
    der = peers.body_der(msg)
    assert cms.ContentInfo.load(der)["content_type"].native == "authenticated_enveloped_data"
    assert b"100 EUR" in decrypt(homes["bob"], rebody(msg, rewrite(der, lambda c: None))).stdout  # control
    assert_releases_nothing(homes["bob"], rebody(msg, rewrite(der, GCM_TAMPERING[tampering])))


class GcmParameters(core.Sequence):
    """GCMParameters (RFC 5084 section 3.2); asn1crypto has no class for them."""

    _fields = [("aes_nonce", core.OctetString), ("aes_icvlen", core.Integer, {"default": 12})]


@pytest.mark.parametrize("length", [4, 8, 11])
def test_gcm_tag_truncated_below_rfc5084_minimum_releases_nothing(homes, length):
    """RFC 5084 allows aes-ICVlen 12 to 16 only.  An attacker who rewrites it to 4 and keeps
    4 bytes of the tag needs about 2^32 guesses per forgery instead of 2^128 (fewer with
    Ferguson's attack on short GCM tags); such a message must not decrypt as "authenticated"."""
    msg = encrypted(homes, "--cipher", "aes256-gcm")

    def change(content):
        algorithm = content["auth_encrypted_content_info"]["content_encryption_algorithm"]
        nonce = GcmParameters.load(algorithm["parameters"].dump())["aes_nonce"].native
        algorithm["parameters"] = core.Any.load(GcmParameters({"aes_nonce": nonce, "aes_icvlen": length}).dump())
        content["mac"] = content["mac"].native[:length]
    assert_releases_nothing(homes["bob"], rebody(msg, rewrite(peers.body_der(msg), change)))


# --- AES-CBC: flipped bits in signed-then-encrypted mail -----------------------------------

def _cbc_plaintext(der, person):
    """(plaintext with padding, IV, ciphertext) of an EnvelopedData, with person's RSA key."""
    content = cms.ContentInfo.load(der)["content"]
    serial = person.cert.serial_number
    (ktri,) = [ri.chosen for ri in content["recipient_infos"]
               if ri.name == "ktri" and ri.chosen["rid"].chosen["serial_number"].native == serial]
    cek = person.key.decrypt(ktri["encrypted_key"].native, padding.PKCS1v15())
    eci = content["encrypted_content_info"]
    iv = eci["content_encryption_algorithm"]["parameters"].native
    ciphertext = eci["encrypted_content"].native
    plain = Cipher(algorithms.AES(cek), modes.CBC(iv)).decryptor().update(ciphertext)
    return plain, iv, ciphertext


def _with_ciphertext(der, ciphertext):
    def change(content):
        content["encrypted_content_info"]["encrypted_content"] = ciphertext
    return rewrite(der, change)


def test_cbc_bit_flip_in_signed_content_is_a_bad_signature(homes, people):
    """EFAIL's gadget: flipping a bit of one ciphertext block flips that bit in the next
    plaintext block ("pay 100" becomes "pay 900") and garbles this one; the padding stays valid,
    so it decrypts, and the signature inside must then say bad, never trusted."""
    msg = encrypted(homes, "--sign", "--passphrase-file", homes["alice"].passfile, "--cipher", "aes256-cbc")
    der = peers.body_der(msg)
    plain, _, ciphertext = _cbc_plaintext(der, people["bob"])
    target = plain.index(b"pay 100") + 4  # the "1"
    block, column = divmod(target, 16)
    assert block >= 2 and plain[(block - 1) * 16:block * 16].isascii()  # the garbled block is message text
    tampered = rebody(msg, _with_ciphertext(der, flip(ciphertext, (block - 1) * 16 + column, 0x08)))

    code, report, _ = decrypt_report(homes["bob"], rebody(msg, _with_ciphertext(der, ciphertext)))  # control
    assert (code, report["verdict"]) == (0, "trusted")
    assert b"900 EUR to account" in decrypt(homes["bob"], tampered).stdout  # the flip did what EFAIL wants
    code, report, _ = decrypt_report(homes["bob"], tampered)
    assert (code, report["verdict"]) == (BAD, "bad"), report


def test_cbc_flip_breaking_the_padding_releases_nothing(homes, people):
    """Flipping the last byte of the next-to-last block turns the padding byte p into p ^ 0x80,
    never valid: decryption fails with exit 23 and writes nothing, with or without --verify."""
    msg = encrypted(homes, "--sign", "--passphrase-file", homes["alice"].passfile, "--cipher", "aes256-cbc")
    der = peers.body_der(msg)
    _, _, ciphertext = _cbc_plaintext(der, people["bob"])
    assert len(ciphertext) >= 32
    assert_releases_nothing(homes["bob"], rebody(msg, _with_ciphertext(der, flip(ciphertext, len(ciphertext) - 17,
                                                                                    0x80))))


def test_cbc_iv_flip_stripping_the_signature_is_unsigned_not_trusted(homes, people):
    """The IV decides the first plaintext block without garbling anything: turning
    "Content-Type: multipart/signed" into "Xontent-Type: ..." strips the signature layer (an
    attack CBC cannot detect).  The verdict must then be unsigned and not authenticated, exit 6:
    never trusted."""
    msg = encrypted(homes, "--sign", "--passphrase-file", homes["alice"].passfile, "--cipher", "aes256-cbc")
    der = peers.body_der(msg)
    plain, iv, _ = _cbc_plaintext(der, people["bob"])
    assert plain.startswith(b"Content-Type: multipart/signed")

    def change(content):
        algorithm = content["encrypted_content_info"]["content_encryption_algorithm"]
        algorithm["parameters"] = flip(iv, 0, ord("C") ^ ord("X"))
    code, report, _ = decrypt_report(homes["bob"], rebody(msg, rewrite(der, change)))
    assert (code, report["verdict"], report["content_authenticated"]) == (UNSIGNED, "unsigned", False), report


# --- two RecipientInfos with their encrypted keys swapped ----------------------------------

def _swap_keys(kind):
    """A change swapping the encrypted keys of the first two RecipientInfos of kind (ktri, kari)."""
    def change(content):
        holders = [ri.chosen if kind == "ktri" else ri.chosen["recipient_encrypted_keys"][0]
                   for ri in content["recipient_infos"] if ri.name == kind][:2]
        assert len(holders) == 2
        first, second = holders[0]["encrypted_key"].native, holders[1]["encrypted_key"].native
        holders[0]["encrypted_key"], holders[1]["encrypted_key"] = second, first
    return change


@pytest.mark.parametrize("options", [("--cipher", "aes256-cbc"), ("--cipher", "aes256-cbc", "--oaep"),
                                     ("--cipher", "aes256-gcm"), ("--cipher", "aes128-gcm", "--oaep")])
def test_swapped_rsa_recipient_keys_release_nothing(homes, options):
    """Bob's RecipientInfo now carries the key encrypted to Alice and hers Bob's: neither can
    decrypt (RSA PKCS#1 v1.5 does not even fail by itself: implicit rejection gives a random key,
    which the padding or the tag must catch)."""
    msg = encrypted(homes, *options)
    der = peers.body_der(msg)
    assert [ri.name for ri in cms.ContentInfo.load(der)["content"]["recipient_infos"]] == ["ktri", "ktri"]
    swapped = rebody(msg, rewrite(der, _swap_keys("ktri")))
    for reader in ("bob", "alice"):
        assert b"100 EUR" in decrypt(homes[reader], rebody(msg, rewrite(der, lambda c: None))).stdout  # control
        assert_releases_nothing(homes[reader], swapped)


@pytest.mark.parametrize("cipher", ["aes256-cbc", "aes256-gcm"])
def test_swapped_ecdh_recipient_keys_release_nothing(homes, cipher):
    """Two ECDH (KeyAgreeRecipientInfo) recipients, their wrapped keys swapped: the key
    unwrap (AES key wrap's integrity check) fails for Erin."""
    msg = encrypted(homes, "--cipher", cipher, to="dana@example.org, erin@example.org")
    der = peers.body_der(msg)
    assert sorted(ri.name for ri in cms.ContentInfo.load(der)["content"]["recipient_infos"]) == ["kari", "kari", "ktri"]
    assert b"100 EUR" in decrypt(homes["erin"], rebody(msg, rewrite(der, lambda c: None))).stdout  # control
    assert_releases_nothing(homes["erin"], rebody(msg, rewrite(der, _swap_keys("kari"))))


# --- signed attributes removed or altered ---------------------------------------------------

def signed(homes, form):
    args = ["--opaque"] if form == "opaque" else []
    return homes["alice"].ok("smime-sign", "--passphrase-file", homes["alice"].passfile, *args, input=message())


def resigned_with(homes, form, change, resign=None):
    """Alice's signed message with change(SignerInfo, SignedData) applied to its signature;
    resign: a private key that signs the changed signed attributes again (SHA-256, PKCS#1 v1.5)."""
    msg = signed(homes, form)
    if form == "detached":
        content, der = peers.split_signed(msg)
    else:
        der = peers.body_der(msg)

    def apply(signed_data):
        signer = signed_data["signer_infos"][0]
        change(signer, signed_data)
        if resign is not None:
            to_sign = b"\x31" + signer["signed_attrs"].dump(force=True)[1:]
            signer["signature"] = resign.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
    der = rewrite(der, apply)
    if form == "detached":
        return peers.wrap_detached(content, der, HEAD)
    return rebody(msg, der)


def _drop(name):
    def change(signer, _):
        signer["signed_attrs"] = cms.CMSAttributes([a for a in signer["signed_attrs"] if a["type"].native != name])
    return change


@pytest.mark.parametrize("form", ["detached", "opaque"])
def test_untouched_re_encoding_is_trusted(homes, form):
    """The control for every rewrite below: re-encoding the signature unchanged keeps the verdict."""
    assert verify(homes["bob"], resigned_with(homes, form, lambda s, d: None))[:2] == (0, "trusted")


@pytest.mark.parametrize("resign", [False, True], ids=["kept-signature", "re-signed"])
@pytest.mark.parametrize("attribute", ["message_digest", "content_type"])
@pytest.mark.parametrize("form", ["detached", "opaque"])
def test_removed_signed_attribute_is_bad(homes, people, form, attribute, resign):
    """Without message-digest the content is not bound to the signature, without content-type
    its type is not (RFC 5652 section 5.3): bad even when the signer's key signed what is left."""
    msg = resigned_with(homes, form, _drop(attribute), people["alice"].key if resign else None)
    code, verdict, report = verify(homes["bob"], msg)
    assert (code, verdict) == (BAD, "bad"), report


@pytest.mark.parametrize("form", ["detached", "opaque"])
def test_altered_signing_time_is_bad(homes, form):
    def change(signer, _):
        attrs = []
        for attr in signer["signed_attrs"]:
            if attr["type"].native == "signing_time":
                moment = attr["values"][0].native - datetime.timedelta(days=400)
                attr = cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": moment})]})
            attrs.append(attr)
        signer["signed_attrs"] = cms.CMSAttributes(attrs)
    code, verdict, report = verify(homes["bob"], resigned_with(homes, form, change))
    assert (code, verdict) == (BAD, "bad"), report


# --- digest algorithm downgrade ---------------------------------------------------------------

def _digest_to(name):
    def change(signer, signed_data):
        signer["digest_algorithm"] = algos.DigestAlgorithm({"algorithm": name})
        signed_data["digest_algorithms"] = cms.DigestAlgorithms([algos.DigestAlgorithm({"algorithm": name})])
    return change


@pytest.mark.parametrize("allow_sha1", [False, True], ids=["default", "allow-sha1"])
@pytest.mark.parametrize("digest", ["sha1", "md5"])
@pytest.mark.parametrize("form", ["detached", "opaque"])
def test_digest_algorithm_downgrade_is_bad(homes, form, digest, allow_sha1):
    """The SignerInfo's digestAlgorithm (and SignedData's list, and micalg) rewritten to a weak
    digest: bad, never trusted, also when SHA-1 is allowed."""
    msg = resigned_with(homes, form, _digest_to(digest))
    msg = msg.replace(b"micalg=sha-256", b"micalg=" + digest.encode())
    code, verdict, report = verify(homes["bob"], msg, *(["--allow-sha1"] if allow_sha1 else []))
    assert (code, verdict) == (BAD, "bad"), report


@pytest.mark.parametrize("allow_sha1", [False, True], ids=["default", "allow-sha1"])
def test_genuine_md5_signature_is_bad(homes, people, allow_sha1):
    """The signer's own key signs with MD5 throughout (digest, message-digest attribute,
    signature): MD5 is never accepted, whatever --allow-sha1 says."""
    key = people["alice"].key

    def change(signer, signed_data):
        _digest_to("md5")(signer, signed_data)
        attrs = []
        for attr in signer["signed_attrs"]:
            if attr["type"].native == "message_digest":
                attr = cms.CMSAttribute({"type": "message_digest", "values": [hashlib.md5(content).digest()]})
            attrs.append(attr)
        signer["signed_attrs"] = cms.CMSAttributes(attrs)
        signer["signature"] = key.sign(b"\x31" + signer["signed_attrs"].dump(force=True)[1:], padding.PKCS1v15(),
                                       hashes.MD5())

    msg = signed(homes, "detached")
    content, der = peers.split_signed(msg)
    der = rewrite(der, lambda signed_data: change(signed_data["signer_infos"][0], signed_data))
    tampered = peers.wrap_detached(content, der, HEAD).replace(b"micalg=sha-256", b"micalg=md5")
    code, verdict, report = verify(homes["bob"], tampered, *(["--allow-sha1"] if allow_sha1 else []))
    assert (code, verdict) == (BAD, "bad"), report
