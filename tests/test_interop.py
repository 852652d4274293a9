"""Interoperability in both directions with real peers: openssl cms, gpgsm, NSS cmsutil.

mailseal -> peer: what smime-sign signs verifies with openssl and gpgsm (and
NSS); what smime-encrypt encrypts decrypts with openssl and NSS (and gpgsm).
peer -> mailseal: what openssl, gpgsm and NSS sign or encrypt verifies or
decrypts with mailseal, with the right verdict.
"""

import json

import pytest

from tests import peers
from tests.conftest import message
from tests.pki import CA

CONTENT = (b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"Peer-made content, =C3=A9t=C3=A9 included.\r\n")


@pytest.fixture
def openssl(tmp_path):
    return peers.OpenSSL(tmp_path)


@pytest.fixture
def gpgsm(tmp_path, ca, people):
    peer = peers.Gpgsm(tmp_path, ca)
    yield peer
    peer.close()


@pytest.fixture
def nss(tmp_path, ca):
    return peers.Nss(tmp_path, ca)


def sign(home, msg, *args):
    return home.ok("smime-sign", "--passphrase-file", home.passfile, *args, input=msg)


class Verdict(tuple):
    """(verdict, exit code) that shows the whole report when a comparison fails."""

    def __new__(cls, report, code):
        self = super().__new__(cls, (report["verdict"], code))
        self.report = report
        return self

    def __repr__(self):
        return f"{tuple(self)!r} {json.dumps(self.report)}"


def verdict(home, msg):
    result = home.run("smime-verify", "--json", input=msg)
    return Verdict(json.loads(result.stdout), result.returncode)


# --- mailseal signs, peers verify ------------------------------------------------

def test_clear_signature_verifies_with_openssl(alice, ca, openssl):
    signed = sign(alice, message())
    ok, content, err = openssl.verify(signed, ca.pem())
    assert ok, err
    assert b"the plan stands" in content
    assert b'protocol="application/pkcs7-signature"' in signed and b"micalg=sha-256" in signed


@pytest.mark.parametrize("digest", ["sha384", "sha512"])
def test_other_digests_verify_with_openssl(alice, ca, openssl, digest):
    signed = sign(alice, message(), "--digest", digest)
    assert f"micalg=sha-{digest[3:]}".encode() in signed
    ok, _, err = openssl.verify(signed, ca.pem())
    assert ok, err


def test_opaque_signature_verifies_with_openssl(alice, ca, openssl):
    signed = sign(alice, message(), "--opaque")
    assert b"smime-type=signed-data" in signed
    ok, content, err = openssl.verify(signed, ca.pem())
    assert ok, err
    assert b"the plan stands" in content


def test_clear_signature_verifies_with_gpgsm(alice, people, gpgsm):
    gpgsm.import_person(people["alice"])
    content, sig = peers.split_signed(sign(alice, message()))
    ok, status = gpgsm.verify_detached(content, sig)
    assert ok, status


def test_opaque_signature_verifies_with_gpgsm(alice, people, gpgsm):
    gpgsm.import_person(people["alice"])
    ok, content, status = gpgsm.verify_opaque(peers.body_der(sign(alice, message(), "--opaque")))
    assert ok, status
    assert b"the plan stands" in content


def test_clear_signature_verifies_with_nss(alice, people, nss):
    content, sig = peers.split_signed(sign(alice, message()))
    ok, err = nss.verify_detached(content, sig)
    assert ok, err


def test_ec_identity_signs_for_openssl(home, ca, tmp_path, openssl):
    erin = ca.issue("erin@example.org", kind="ec")
    home.import_identity(erin, tmp_path)
    signed = home.ok("smime-sign", "--passphrase-file", home.passfile, input=message(frm="erin@example.org"))
    ok, _, err = openssl.verify(signed, ca.pem())
    assert ok, err


def test_signature_carries_capabilities_signing_time_and_chain(alice, ca, openssl):
    der = peers.body_der(sign(alice, message(), "--opaque"))
    printed = peers.sh(openssl.bin, "cms", "-cmsout", "-print", "-inform", "DER",
                       "-in", openssl.path("s.der", der)).stdout.decode()
    assert "signingTime" in printed and "messageDigest" in printed
    assert "S/MIME Capabilities" in printed or "smimeCapabilities" in printed
    assert "aes-256-cbc" in printed.lower()
    assert printed.count("subject:") >= 2 or "mailseal Test CA" in printed  # leaf and its CA


# --- mailseal encrypts, peers decrypt ------------------------------------------------

def test_encrypted_decrypts_with_openssl_for_recipient_and_sender(alice, people, openssl):
    encrypted = alice.ok("smime-encrypt", input=message())
    assert b"smime-type=enveloped-data" in encrypted
    for person in (people["bob"], people["alice"]):
        ok, plain, err = openssl.decrypt(encrypted, person)
        assert ok, err
        assert b"the plan stands" in plain
    ok, _, _ = openssl.decrypt(encrypted, people["carol"])
    assert not ok  # carol is not a recipient


@pytest.mark.parametrize("kind", ["ec", "ec-p384", "ec-p521"])
@pytest.mark.parametrize("cipher", ["aes256-cbc", "aes128-gcm"])
def test_encrypted_to_ec_recipients_decrypts_with_openssl(alice, ca, openssl, tmp_path, kind, cipher):
    """ECDH key agreement (RFC 5753) to an EC certificate, read by openssl cms."""
    dana = ca.issue("dana@example.org", kind=kind)
    alice.install(dana.cert_pem(), tmp_path, "dana.pem")
    encrypted = alice.ok("smime-encrypt", "--cipher", cipher, input=message(to="dana@example.org"))
    ok, plain, err = openssl.decrypt(encrypted, dana)
    assert ok, err
    assert b"the plan stands" in plain
    printed = peers.sh(openssl.bin, "cms", "-cmsout", "-print", "-inform", "DER", "-in",
                       openssl.path("e.der", peers.body_der(encrypted))).stdout.decode()
    assert "dhSinglePass-stdDH-sha" in printed and "id-aes" in printed


@pytest.mark.parametrize("kind", ["ec", "ec-p384"])
def test_openssl_ecdh_to_an_ec_identity_decrypts(home, ca, tmp_path, openssl, kind):
    """openssl encrypts to an EC identity of ours (its default: the SHA-1 X9.63 KDF); mailseal
    decrypts, and mail from mailseal to that identity round-trips."""
    erin = ca.issue("erin@example.org", kind=kind)
    home.import_identity(erin, tmp_path)
    home.install(ca.pem(), tmp_path, "ca.pem", ca=True)
    der = openssl.encrypt(message(frm="x@example.org", to="erin@example.org"), erin,
                          options=("-aes256", "-outform", "DER"))
    plain = home.ok("smime-decrypt", "--passphrase-file", home.passfile,
                    input=peers.wrap_der(der, b"enveloped-data"))
    assert b"the plan stands" in plain
    mine = home.ok("smime-encrypt", "--sign", "--passphrase-file", home.passfile,
                   input=message(frm="erin@example.org", to="erin@example.org"))
    result = home.run("smime-decrypt", "--verify", "--passphrase-file", home.passfile, input=mine)
    assert result.returncode == 0 and b"the plan stands" in result.stdout, result.stderr


def test_encrypted_uses_aes256_cbc(alice, openssl):
    der = peers.body_der(alice.ok("smime-encrypt", input=message()))
    printed = peers.sh(openssl.bin, "cms", "-cmsout", "-print", "-inform", "DER",
                       "-in", openssl.path("e.der", der)).stdout.decode()
    assert "aes-256-cbc" in printed and "rsaEncryption" in printed


def test_encrypted_decrypts_with_nss(alice, people, nss):
    nss.import_person(people["bob"], with_key=True)
    ok, plain, err = nss.decrypt(peers.body_der(alice.ok("smime-encrypt", input=message())))
    assert ok, err
    assert b"the plan stands" in plain


def test_encrypted_decrypts_with_gpgsm(alice, people, gpgsm):
    gpgsm.import_person(people["bob"], with_key=True)
    gpgsm.import_person(people["alice"])  # the sender's copy is for her; gpgsm must know whose it is
    ok, plain, err = gpgsm.decrypt(peers.body_der(alice.ok("smime-encrypt", input=message())))
    assert ok, err
    assert b"the plan stands" in plain


def test_signed_and_encrypted_opens_with_openssl(alice, ca, people, openssl):
    both = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    ok, inner, err = openssl.decrypt(both, people["bob"])
    assert ok, err
    ok, content, err = openssl.verify(inner, ca.pem())
    assert ok, err
    assert b"the plan stands" in content


# --- peers sign, mailseal verifies ------------------------------------------------------

@pytest.mark.parametrize("options,form", [((), "clear"), (("-nodetach",), "opaque"),
                                          (("-md", "sha512"), "clear"),
                                          (("-keyopt", "rsa_padding_mode:pss"), "clear")])
def test_openssl_signatures_are_trusted(bob, people, openssl, options, form):
    signed = openssl.sign(CONTENT, people["alice"], *options)
    msg = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: openssl\r\n" + signed
    assert verdict(bob, msg) == ("trusted", 0)
    result = bob.run("smime-verify", "--extract", input=msg)
    assert b"Peer-made content" in result.stdout


def test_openssl_ec_signature_is_trusted(bob, ca, openssl):
    erin = ca.issue("erin@example.org", kind="ec")
    signed = openssl.sign(CONTENT, erin)
    assert verdict(bob, b"From: erin@example.org\r\n" + signed) == ("trusted", 0)


def test_openssl_signature_from_someone_else_is_mismatch(bob, people, openssl):
    signed = openssl.sign(CONTENT, people["carol"])
    assert verdict(bob, b"From: alice@example.org\r\n" + signed) == ("mismatch", 2)


def test_gpgsm_signatures_are_trusted(bob, people, gpgsm):
    gpgsm.import_person(people["alice"], with_key=True)
    sig = gpgsm.sign(CONTENT, "alice@example.org", detached=True)
    assert verdict(bob, peers.wrap_detached(CONTENT, sig)) == ("trusted", 0)
    opaque = gpgsm.sign(CONTENT, "alice@example.org", detached=False)
    assert verdict(bob, peers.wrap_der(opaque, b"signed-data")) == ("trusted", 0)


def test_nss_signatures_are_trusted(bob, people, nss):
    nss.import_person(people["alice"], with_key=True)
    sig = nss.sign(CONTENT, "alice@example.org", detached=True)
    assert verdict(bob, peers.wrap_detached(CONTENT, sig)) == ("trusted", 0)
    opaque = nss.sign(CONTENT, "alice@example.org", detached=False)
    assert verdict(bob, peers.wrap_der(opaque, b"signed-data")) == ("trusted", 0)


def test_peer_signature_by_unknown_ca_is_untrusted(bob, openssl):
    stranger = CA("Stranger CA").issue("alice@example.org")
    signed = openssl.sign(CONTENT, stranger)
    assert verdict(bob, b"From: alice@example.org\r\n" + signed) == ("untrusted", 1)


# --- peers encrypt, mailseal decrypts --------------------------------------------------

def decrypts(home, msg):
    result = home.run("smime-decrypt", "--passphrase-file", home.passfile, input=msg)
    assert result.returncode == 0, result.stderr
    assert b"Peer-made content" in result.stdout


@pytest.mark.parametrize("options,keyopts", [
    (("-aes-256-cbc",), ()), (("-aes-128-cbc",), ()), (("-aes-192-cbc",), ()), (("-aes-256-gcm",), ()),
    (("-aes-128-gcm",), ()), ((), ("rsa_padding_mode:oaep",)),
    (("-aes-256-cbc",), ("rsa_padding_mode:oaep", "rsa_oaep_md:sha256"))])
def test_openssl_encryption_decrypts(bob, people, openssl, options, keyopts):
    encrypted = openssl.encrypt(CONTENT, people["bob"], options=options, keyopts=keyopts)
    decrypts(bob, b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: openssl\r\n" + encrypted)


def test_gpgsm_encryption_decrypts(bob, people, gpgsm):
    gpgsm.import_person(people["bob"])
    decrypts(bob, peers.wrap_der(gpgsm.encrypt(CONTENT, "bob@example.org"), b"enveloped-data"))


def test_nss_encryption_decrypts(bob, people, nss):
    nss.import_person(people["bob"])
    decrypts(bob, peers.wrap_der(nss.encrypt(CONTENT, "bob@example.org"), b"enveloped-data"))


def test_openssl_sign_then_encrypt(bob, ca, people, openssl):
    signed = openssl.sign(CONTENT, people["alice"])
    encrypted = openssl.encrypt(signed, people["bob"], options=("-aes-256-cbc",))
    msg = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: openssl\r\n" + encrypted
    result = bob.run("smime-decrypt", "--verify", "--json", "--passphrase-file", bob.passfile, input=msg)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert report["verdict"] == "trusted" and report["encrypted"] is True
    assert b"Peer-made content" in result.stdout


def test_gcm_when_every_recipient_advertised_it(alice, bob, people, ca, openssl, tmp_path):
    """Bob's signed mail (mailseal advertises AES-GCM) teaches Alice that he reads AES-GCM; a
    recipient whose capabilities are unknown keeps the message in AES-256-CBC."""
    signed = bob.ok("smime-sign", "--passphrase-file", bob.passfile,
                    input=message(frm="bob@example.org", to="alice@example.org"))
    alice.ok("smime-import", input=signed)
    to_bob = alice.ok("smime-encrypt", input=message())
    assert b"smime-type=authEnveloped-data" in to_bob
    assert b"the plan stands" in bob.ok("smime-decrypt", "--passphrase-file", bob.passfile, input=to_bob)
    carol = people["carol"]
    alice.install(carol.cert_pem(), tmp_path, "carol.pem")
    to_both = alice.ok("smime-encrypt", input=message(to="bob@example.org, carol@example.org"))
    assert b"smime-type=enveloped-data" in to_both
    ok, _, err = openssl.decrypt(to_both, carol)
    assert ok, err


def test_oaep_key_transport_decrypts_with_openssl(alice, people, openssl):
    encrypted = alice.ok("smime-encrypt", "--oaep", input=message())
    printed = peers.sh(openssl.bin, "cms", "-cmsout", "-print", "-inform", "DER",
                       "-in", openssl.path("e.der", peers.body_der(encrypted))).stdout.decode()
    assert "rsaesOaep" in printed and "sha256" in printed
    ok, plain, err = openssl.decrypt(encrypted, people["bob"])
    assert ok, err
    assert b"the plan stands" in plain
    alice.write_config('[accounts.me]\naddresses = ["alice@example.org"]\noaep = true\n')
    printed = peers.sh(openssl.bin, "cms", "-cmsout", "-print", "-inform", "DER", "-in", openssl.path(
        "f.der", peers.body_der(alice.ok("smime-encrypt", input=message())))).stdout.decode()
    assert "rsaesOaep" in printed
