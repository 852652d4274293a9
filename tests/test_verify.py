"""smime-verify: every form S/MIME signatures arrive in, every verdict with its exit code."""

import base64
import email
import email.policy
import json
import re

import pytest

from tests import peers, pki
from tests.conftest import message, read, tb

CONTENT = b"Content-Type: text/plain\r\n\r\nsigned words\r\n"


def report(home, msg, *args):
    result = home.run("smime-verify", "--json", *args, input=msg)
    data = json.loads(result.stdout)
    return data, result.returncode


@pytest.fixture
def signed(alice):
    return alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())


def test_json_has_the_documented_fields(bob, signed):
    data, code = report(bob, signed)
    assert code == 0 and data["verdict"] == "trusted"
    assert data["from"] == ["alice@example.org"]
    for key in ("emails", "subject", "issuer", "fingerprint_sha256", "not_before", "not_after"):
        assert key in data["signer"]
    assert data["signer"]["emails"] == ["alice@example.org"]
    assert re.fullmatch(r"[0-9a-f]{64}", data["signer"]["fingerprint_sha256"])
    assert data["reasons"] and "trusted CA" in data["reasons"][0]


def test_legacy_x_pkcs7_spellings(bob, signed):
    legacy = signed.replace(b"application/pkcs7-signature", b"application/x-pkcs7-signature")
    assert report(bob, legacy)[0]["verdict"] == "trusted"


def test_opaque_x_pkcs7_and_binary_body(alice, bob):
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    head, body = opaque.split(b"\n\n", 1)
    x = head.replace(b"application/pkcs7-mime", b"application/x-pkcs7-mime")
    assert report(bob, x + b"\n\n" + body)[0]["verdict"] == "trusted"
    binary = x.replace(b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: binary")
    assert report(bob, binary + b"\n\n" + base64.b64decode(body))[0]["verdict"] == "trusted"


def test_outlook_p7m_without_smime_type(alice, bob):
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    plain_type = re.sub(rb"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"",
                        b"Content-Type: application/octet-stream; name=\"smime.p7m\"", opaque)
    assert plain_type != opaque
    assert report(bob, plain_type)[0]["verdict"] == "trusted"


def test_exact_bytes_not_a_reserialisation(bob, signed):
    # Python's email generator refolds and rewrites: that must not verify...
    parsed = email.message_from_bytes(signed, policy=email.policy.SMTP)
    reserialised = parsed.as_bytes()
    assert reserialised != signed
    data, _ = report(bob, signed)
    assert data["verdict"] == "trusted"
    # ...while line-ending changes (what mail stores do) do not matter
    assert report(bob, peers.crlf(signed))[0]["verdict"] == "trusted"
    # one changed byte in the signed part is caught
    assert report(bob, signed.replace(b"Hello Bob", b"Hello Rob"))[0]["verdict"] == "bad"


def test_verdict_untrusted_then_installed(make_home, signed, people, tmp_path):
    home = make_home("reader")
    data, code = report(home, signed)
    assert (data["verdict"], code) == ("untrusted", 1)
    assert "trust anchor" in data["reasons"][0]
    home.install(people["alice"].cert_pem(), tmp_path, "alice.pem")
    data, code = report(home, signed)
    assert (data["verdict"], code) == ("trusted", 0)
    assert "installed by you" in data["reasons"][0]


def test_verdict_mismatch(bob, alice):
    forged = alice.ok("smime-sign", "--passphrase-file", alice.passfile, "--as", "alice@example.org",
                      input=message(frm="boss@example.org"))
    data, code = report(bob, forged)
    assert (data["verdict"], code) == ("mismatch", 2)
    assert "boss@example.org" in data["reasons"][0]


def test_verdict_mismatch_for_display_name_trick(bob, alice):
    msg = message().replace(b"From: Alice <alice@example.org>", b'From: "alice@example.org" <mallory@evil.example>')
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, "--as", "alice@example.org", input=msg)
    data, code = report(bob, signed)
    assert data["from"] == ["mallory@evil.example"] and code == 2


def test_verdict_expired(bob, ca, tmp_path):
    lapsed = ca.issue("alice@example.org", not_before=pki.NOW - 400 * pki.DAY, not_after=pki.NOW - 10 * pki.DAY)
    signed = peers.OpenSSL(tmp_path).sign(CONTENT, lapsed)  # openssl signs with any certificate, now
    data, code = report(bob, b"From: alice@example.org\r\n" + signed)
    assert (data["verdict"], code) == ("expired", 3)
    assert "was signed" in data["reasons"][0]


def test_signed_while_valid_but_expired_since(bob, ca, tmp_path):
    """A certificate valid at signing time still counts; the report says it expired since."""
    from datetime import datetime, timedelta, timezone

    from cryptography.hazmat.primitives import serialization

    from mailseal import mime
    from mailseal.cms import signed as cms_signed

    lapsed = ca.issue("alice@example.org", not_before=pki.NOW - 400 * pki.DAY, not_after=pki.NOW - 10 * pki.DAY)
    when = datetime.now(timezone.utc) - timedelta(days=30)
    content = mime.canonical(CONTENT)
    der = b"".join(cms_signed.sign(content, lapsed.key, lapsed.cert.public_bytes(serialization.Encoding.DER),
                                   signing_time=when))
    data, code = report(bob, peers.wrap_detached(content, der))
    assert (data["verdict"], code) == ("trusted", 0)
    assert any("expired since" in n for n in data["notes"])


def test_verdict_unsigned(bob):
    data, code = report(bob, message())
    assert (data["verdict"], code) == ("unsigned", 6)


def test_verdict_bad_exit_code(bob, signed):
    data, code = report(bob, signed.replace(b"plan stands", b"plan is off"))
    assert (data["verdict"], code) == ("bad", 5)


def test_display_banner_and_content(bob, signed):
    result = bob.run("smime-verify", "--display", input=signed)
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("[mailseal] ✓ trusted: signed by alice@example.org")
    assert "the plan stands." in result.stdout.decode()
    bad = bob.run("smime-verify", "--display", input=signed.replace(b"plan stands", b"plan is off"))
    assert bad.returncode == 0 and bad.stdout.decode().startswith("[mailseal] ✗ bad")
    untrusted_home = bob  # same home, now an unsigned message
    plain = untrusted_home.run("smime-verify", "--display", input=message())
    assert plain.returncode == 0 and plain.stdout.decode().startswith("[mailseal] - unsigned")


def test_display_marks_untrusted_with_question_mark(make_home, signed):
    home = make_home("reader")
    result = home.run("smime-verify", "--display", input=signed)
    assert result.stdout.decode().startswith("[mailseal] ? untrusted")


def test_extract_writes_content_and_verdict_to_stderr(bob, alice):
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    result = bob.run("smime-verify", "--extract", input=opaque)
    assert result.returncode == 0
    assert b"Subject: The plan" in result.stdout and b"the plan stands" in result.stdout
    assert b"pkcs7" not in result.stdout
    assert result.stderr.startswith(b"[mailseal] \xe2\x9c\x93 trusted")


def test_signer_certificate_not_in_message_is_found_on_record(bob, people, ca, tmp_path):
    # a signature without certificates (openssl -nocerts) verifies when the signer's cert is on record
    ossl = peers.OpenSSL(tmp_path)
    signed = ossl.sign(CONTENT, people["alice"], "-nocerts")
    msg = b"From: alice@example.org\r\n" + signed
    data, _ = report(bob, msg)
    assert data["verdict"] == "bad" and "not in the message" in data["reasons"][0]
    bob.install(people["alice"].cert_pem(), tmp_path, "alice.pem")
    data, _ = report(bob, msg)
    assert data["verdict"] == "trusted"


def test_system_ca_bundle_is_opt_in(make_home, signed):
    home = make_home("reader")
    data, _ = report(home, signed, "--system-ca")
    assert data["verdict"] == "untrusted"  # the test CA is not a system CA; the switch is accepted


def test_corpus_message_with_crlf_and_lf_endings(home, tmp_path):
    (tmp_path / "p").write_text("nss\n")
    home.ok("smime-trust", "install", "--ca", tb("TestCA.pem"))
    raw = read(tb("alice.dsig.SHA256.multipart.eml"))
    for variant in (raw, raw.replace(b"\r\n", b"\n"), peers.crlf(raw)):
        assert report(home, variant)[0]["verdict"] == "trusted"


def test_unsigned_cbc_content_is_flagged_as_unauthenticated(alice, bob):
    """EFAIL: CBC without a signature can be changed on the way; the verdict says so, and says
    nothing of the kind for GCM or for signed content."""
    cbc = alice.ok("smime-encrypt", "--cipher", "aes256-cbc", input=message())
    shown = bob.ok("smime-decrypt", "--display", "--passphrase-file", bob.passfile, input=cbc).decode()
    assert "NOT authenticated" in shown.splitlines()[0]
    report = json.loads(bob.run("smime-decrypt", "--verify", "--json", "--passphrase-file", bob.passfile,
                                input=cbc).stderr)
    assert report["content_authenticated"] is False
    gcm = alice.ok("smime-encrypt", "--cipher", "aes256-gcm", input=message())
    assert "NOT authenticated" not in bob.ok("smime-decrypt", "--display", "--passphrase-file", bob.passfile,
                                             input=gcm).decode()
    signed = alice.ok("smime-encrypt", "--sign", "--cipher", "aes256-cbc", "--passphrase-file", alice.passfile,
                      input=message())
    report = json.loads(bob.run("smime-decrypt", "--verify", "--json", "--passphrase-file", bob.passfile,
                                input=signed).stderr)
    assert report["verdict"] == "trusted" and report["content_authenticated"] is True


def test_a_body_imitating_the_banner_is_marked_as_message_text(alice, bob):
    """UI redressing: a line in an unsigned message that copies mailseal's banner cannot pass for it."""
    real = bob.ok("smime-verify", "--display",
                  input=alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())).decode()
    fake_banner = real.splitlines()[0]
    assert fake_banner.startswith("[mailseal] ✓ trusted")
    forged = message(body=fake_banner + "\nPlease wire the money.\n")
    shown = bob.ok("smime-verify", "--display", input=forged).decode().splitlines()
    assert shown[0].startswith("[mailseal] - unsigned")
    assert fake_banner not in shown and "(message text) " + fake_banner in shown
