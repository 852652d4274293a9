"""Messages made by NSS/Thunderbird and OpenSSL give the outcomes tests/data/thunderbird/SOURCE.md lists.

Bob's identity (Bob.p12) is imported and the NSS Test CA is trusted, as in
Thunderbird's own tests.  Where Thunderbird and OpenSSL disagree, the
expectation below says which mailseal follows and why.
"""

import json

import pytest

from tests.conftest import read, tb

TEXT = b"This is a test message from Alice to Bob."


@pytest.fixture
def bob_tb(home, tmp_path):
    """Bob of the Thunderbird corpus, with the NSS Test CA as trust anchor."""
    (tmp_path / "pass").write_text("nss\n")
    home.ok("smime-trust", "identity", "import", "--passphrase-file", tmp_path / "pass", tb("Bob.p12"))
    home.ok("smime-trust", "install", "--ca", tb("TestCA.pem"))
    home.passfile = str(tmp_path / "pass")
    return home


def verify(home, name, *args):
    result = home.run("smime-verify", "--json", *args, input=read(tb(name)))
    report = json.loads(result.stdout)
    assert result.returncode == {"trusted": 0, "untrusted": 1, "mismatch": 2, "expired": 3, "changed": 4,
                                 "bad": 5, "unsigned": 6}[report["verdict"]]
    return report


def decrypt(home, name, *args):
    result = home.run("smime-decrypt", "--verify", "--json", "--passphrase-file", home.passfile, *args,
                      input=read(tb(name)))
    report = json.loads(result.stderr.decode().strip().splitlines()[-1])
    return result, report


# --- clear (multipart/signed) and opaque signatures by Alice -------------------

@pytest.mark.parametrize("digest", ["SHA256", "SHA384", "SHA512"])
@pytest.mark.parametrize("form", ["dsig.{}.multipart", "sig.{}.opaque", "html.sig.{}.opaque"])
def test_good_signatures_are_trusted(bob_tb, digest, form):
    report = verify(bob_tb, f"alice.{form.format(digest)}.eml")
    assert report["verdict"] == "trusted"
    assert report["signer"]["emails"] == ["alice@example.com"]
    assert report["signer"]["digest_algorithm"] == digest.lower()
    assert report["from"] == ["alice@example.com"]
    assert "NSS Test CA" in report["reasons"][0]


@pytest.mark.parametrize("form", ["dsig.SHA1.multipart", "sig.SHA1.opaque", "html.sig.SHA1.opaque"])
def test_sha1_is_rejected_unless_allowed(bob_tb, form):
    report = verify(bob_tb, f"alice.{form}.eml")
    assert report["verdict"] == "bad"
    assert "SHA-1" in report["reasons"][0]
    assert verify(bob_tb, f"alice.{form}.eml", "--allow-sha1")["verdict"] == "trusted"


@pytest.mark.parametrize("digest", ["SHA1", "SHA256", "SHA384", "SHA512"])
def test_tampered_messages_are_bad(bob_tb, digest):
    report = verify(bob_tb, f"alice.dsig.{digest}.multipart.bad.eml", "--allow-sha1")
    assert report["verdict"] == "bad"
    assert "altered" in report["reasons"][0]


@pytest.mark.parametrize("digest", ["SHA1", "SHA256", "SHA384", "SHA512"])
def test_detached_signature_with_embedded_content_is_bad(bob_tb, digest):
    report = verify(bob_tb, f"alice.dsig.{digest}.multipart.mismatch-econtent.eml", "--allow-sha1")
    assert report["verdict"] == "bad"
    assert "embeds content" in report["reasons"][0]


def test_date_header_far_from_signing_time_is_noted(bob_tb):
    # Thunderbird calls this BAD; the signature itself is valid (OpenSSL agrees),
    # only the unsigned Date header moved, so mailseal trusts it and says so.
    report = verify(bob_tb, "alice.future.dsig.SHA256.multipart.eml")
    assert report["verdict"] == "trusted"
    assert any("Date header" in note for note in report["notes"])


def test_untrusted_without_the_ca(home):
    report = verify(home, "alice.dsig.SHA256.multipart.eml")
    assert report["verdict"] == "untrusted"
    assert "trust anchor" in report["reasons"][0]


# --- double signatures: Dave signed what Alice signed; the message is From Dave --

@pytest.mark.parametrize("name", [
    "alice.plain.dsig.SHA256.multipart.dave.dsig.SHA256.multipart.eml",
    "alice.plain.dsig.SHA384.multipart.dave.sig.SHA384.opaque.eml",
    "alice.plain.sig.SHA512.opaque.dave.dsig.SHA512.multipart.eml",
    "alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml",
])
def test_double_signature_from_the_outer_signer(bob_tb, name):
    # OpenSSL: both signatures valid.  The sender (From) is Dave, whose outer
    # signature covers everything; Alice's inner one is reported beside it.
    report = verify(bob_tb, name)
    assert report["verdict"] == "trusted"
    assert report["signer"]["emails"] == ["dave@example.com"]
    assert any("alice@example.com" in note and "inner" in note for note in report["notes"])
    assert [layer["verdict"] for layer in report["layers"]] == ["trusted", "mismatch"]


@pytest.mark.parametrize("name", ["alice.plain.dsig.SHA1.multipart.dave.dsig.SHA1.multipart.eml",
                                  "alice.plain.sig.SHA1.opaque.dave.sig.SHA1.opaque.eml"])
def test_double_sha1_signature_is_bad_by_default(bob_tb, name):
    assert verify(bob_tb, name)["verdict"] == "bad"
    assert verify(bob_tb, name, "--allow-sha1")["verdict"] == "trusted"


# --- encrypted -----------------------------------------------------------------

def test_enveloped_only(bob_tb):
    result, report = decrypt(bob_tb, "alice.env.eml")
    assert result.returncode == 6  # decrypted, not signed
    assert TEXT in result.stdout
    assert result.stdout.startswith(b"Date: Mon, 26 Jan 2026")  # outer headers kept
    assert report["decryption"]["cipher"] == "aes128_cbc"
    assert report["decryption"]["authenticated"] is False


@pytest.mark.parametrize("digest", ["SHA256", "SHA384", "SHA512"])
@pytest.mark.parametrize("form", ["dsig.{}.multipart.env", "sig.{}.opaque.env", "html.sig.{}.opaque.env"])
def test_signed_then_encrypted(bob_tb, digest, form):
    result, report = decrypt(bob_tb, f"alice.{form.format(digest)}.eml")
    assert result.returncode == 0, result.stderr
    assert report["verdict"] == "trusted"
    assert report["signer"]["emails"] == ["alice@example.com"]
    assert b"pkcs7" not in result.stdout.lower()  # the signature layer is gone
    assert (b"test message from Alice" in result.stdout)


def test_signed_then_encrypted_sha1(bob_tb):
    result, report = decrypt(bob_tb, "alice.sig.SHA1.opaque.env.eml")
    assert result.returncode == 5 and report["verdict"] == "bad" and TEXT in result.stdout
    result, report = decrypt(bob_tb, "alice.sig.SHA1.opaque.env.eml", "--allow-sha1")
    assert result.returncode == 0 and report["verdict"] == "trusted"


def test_decrypt_keeps_inner_signature_without_verify(bob_tb):
    result = bob_tb.run("smime-decrypt", "--passphrase-file", bob_tb.passfile,
                        input=read(tb("alice.dsig.SHA256.multipart.env.eml")))
    assert result.returncode == 0
    assert b"multipart/signed" in result.stdout
    # and what comes out still verifies
    assert json.loads(bob_tb.run("smime-verify", "--json", input=result.stdout).stdout)["verdict"] == "trusted"


@pytest.mark.parametrize("digest", ["SHA256", "SHA384", "SHA512"])
def test_encrypt_then_sign_opaque(bob_tb, digest):
    # Alice signed the ciphertext; the signature is valid (OpenSSL agrees).
    result, report = decrypt(bob_tb, f"alice.env.sig.{digest}.opaque.eml")
    assert result.returncode == 0 and report["verdict"] == "trusted" and TEXT in result.stdout
    assert [layer["kind"] for layer in report["layers"]] == ["opaque-signed", "encrypted"]


@pytest.mark.parametrize("digest", ["SHA256", "SHA384", "SHA512"])
def test_encrypt_then_clear_sign_that_does_not_verify(bob_tb, digest):
    # OpenSSL: the clear signature around the encryption is INVALID; the
    # content still decrypts and is shown, with the signature called bad.
    result, report = decrypt(bob_tb, f"alice.env.dsig.{digest}.multipart.eml")
    assert result.returncode == 5 and report["verdict"] == "bad" and TEXT in result.stdout


@pytest.mark.parametrize("digest", ["SHA256", "SHA384", "SHA512"])
def test_triple_wrap(bob_tb, digest):
    for name in (f"alice.env.sig.{digest}.opaque.dave.sig.{digest}.opaque.eml",
                 f"alice.env.dsig.{digest}.multipart.dave.sig.{digest}.opaque.eml"):
        result, report = decrypt(bob_tb, name)
        assert report["verdict"] == "trusted" and report["signer"]["emails"] == ["dave@example.com"]
        assert TEXT in result.stdout


def test_smime_verify_on_encrypted_message_says_so(bob_tb):
    report = verify(bob_tb, "alice.env.eml")
    assert report["verdict"] == "unsigned" and report["encrypted"] is True
    assert "smime-decrypt" in report["reasons"][0]


# --- hand-made structures (smime-manual) -----------------------------------------

def test_outer_bad_signature_inner_good(bob_tb):
    for name in ("outer-smime-bad-sig-inner-smime-enc-sig.eml", "alice.dsig.SHA256.multipart.env.dsig.eml"):
        result, report = decrypt(bob_tb, name)
        assert report["verdict"] == "trusted", name  # Thunderbird: GOOD (inner)
        assert any("outer layer" in n and "bad" in n for n in report["notes"]), name
        assert TEXT in result.stdout


def test_outer_bad_signature_inner_unsigned(bob_tb):
    result, report = decrypt(bob_tb, "outer-smime-bad-sig-inner-smime-enc.eml")
    assert report["verdict"] == "bad" and TEXT in result.stdout


def test_encryption_nested_in_mixed_is_not_decrypted(bob_tb):
    # Thunderbird rejects it too: encrypted content inside an unencrypted container
    result = bob_tb.run("smime-decrypt", "--passphrase-file", bob_tb.passfile,
                        input=read(tb("alice.env.mixed.dsig.SHA256.multipart.eml")))
    assert result.returncode == 24 and result.stdout == b""
    assert verify(bob_tb, "alice.env.mixed.dsig.SHA256.multipart.eml")["verdict"] == "bad"


@pytest.mark.parametrize("name", ["outer-pgp-sig-inner-smime-enc.eml", "outer-pgp-sig-inner-smime-enc-sig.eml"])
def test_outer_openpgp_signature(bob_tb, name):
    # The OpenPGP signature is not ours to check, but its first part is the whole
    # content: the S/MIME layer inside is found.  These two were encrypted to an
    # older Bob key that is not shipped, so the answer is "not for you", clearly.
    result = bob_tb.run("smime-decrypt", "--passphrase-file", bob_tb.passfile, input=read(tb(name)))
    assert result.returncode == 20 and result.stdout == b""
    assert b"not encrypted to any of your keys" in result.stderr and b"serial 28" in result.stderr
    shown = bob_tb.run("smime-decrypt", "--display", input=read(tb(name)))
    assert shown.returncode == 0 and shown.stdout.endswith(read(tb(name)))  # nothing lost


# --- partial signatures and the EFAIL bait -------------------------------------------

@pytest.mark.parametrize("name,part", [("alice.dsig.SHA256.multipart.in.mixed.eml", "1"),
                                       ("alice.dsig.SHA256.multipart.in.mixed.with.header.eml", "2")])
def test_signed_part_inside_unsigned_mixed(bob_tb, name, part):
    report = verify(bob_tb, name)
    assert report["verdict"] == "unsigned"
    assert f"only part {part} is signed" in report["reasons"][0]
    assert report["parts"][0]["verdict"] == "trusted"


def test_multipart_alternative_bait_is_not_decrypted(bob_tb):
    raw = read(tb("multipart-alternative.eml"))
    result = bob_tb.run("smime-decrypt", "--passphrase-file", bob_tb.passfile, input=raw)
    assert result.returncode == 24 and b"SECRET-TEXT" not in result.stdout
    shown = bob_tb.run("smime-decrypt", "--display", "--passphrase-file", bob_tb.passfile, input=raw)
    assert shown.returncode == 0 and b"SECRET-TEXT" not in shown.stdout


def test_nested_signed_messages_show_inner_text(bob_tb):
    raw = read(tb("nested-sigs.eml"))
    report = verify(bob_tb, "nested-sigs.eml", "--allow-sha1")
    assert report["verdict"] == "bad"  # headers were edited after signing
    shown = bob_tb.run("smime-verify", "--display", input=raw)
    assert shown.returncode == 0 and b"level 2" in shown.stdout


# --- OpenSSL-made RSA-OAEP (Fran) ------------------------------------------------------

@pytest.fixture
def fran(home, tmp_path):
    (tmp_path / "pass").write_text("nss\n")
    home.ok("smime-trust", "identity", "import", "--passphrase-file", tmp_path / "pass", tb("Fran.p12"))
    home.passfile = str(tmp_path / "pass")
    return home


@pytest.mark.parametrize("name", ["fran-oaep_ossl.env", "fran-oaep-label_ossl.env",
                                  "fran-oaep-sha256hash_ossl.env", "fran-oaep-sha256hash-sha256mgf_ossl.env"])
def test_openssl_oaep_messages_decrypt(fran, name):
    result = fran.run("smime-decrypt", "--passphrase-file", fran.passfile, input=read(tb(name)))
    assert result.returncode == 0, result.stderr
    assert b"This is a test message to Fran." in result.stdout


def test_legacy_3des_content_is_read_with_a_warning(fran):
    result = fran.run("smime-decrypt", "--verify", "--passphrase-file", fran.passfile,
                      input=read(tb("fran-oaep_ossl.env")))
    assert b"3DES" in result.stderr


@pytest.mark.parametrize("name,scheme", [("fran-ec_ossl-aes128-sha256.env", "sha256kdf-aes128_wrap"),
                                         ("fran-ec_ossl-aes256-sha512.env", "sha512kdf-aes256_wrap")])
def test_openssl_ecdh_messages_decrypt(home, tmp_path, name, scheme):
    """ECDH key agreement (P-384, the X9.63 KDF with SHA-256 or SHA-512, AES key wrap), made by OpenSSL."""
    (tmp_path / "pass").write_text("nss\n")
    home.ok("smime-trust", "identity", "import", "--passphrase-file", tmp_path / "pass", tb("Fran-ec.p12"))
    result = home.run("smime-decrypt", "--verify", "--json", "--passphrase-file", tmp_path / "pass",
                      input=read(tb(name)))
    assert b"This is a test message to Fran." in result.stdout, result.stderr
    report = json.loads(result.stderr)
    assert report["decryption"]["key_transport"] == "ecdh-" + scheme
