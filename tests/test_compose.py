"""smime-sign and smime-encrypt: what goes inside, what stays outside, and that it survives transport."""

import base64
import json

from tests import peers
from tests.conftest import message


def parts_of(signed):
    """(header block, first part bytes) of a signed message, with an independent splitter."""
    head = peers.crlf(signed).partition(b"\r\n\r\n")[0]
    content, _ = peers.split_signed(signed)
    return head, content


def test_headers_stay_outside_the_signature(alice):
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    head, content = parts_of(signed)
    assert b"Subject: The plan" in head and b"From: Alice <alice@example.org>" in head
    assert b"Subject:" not in content and b"From:" not in content
    assert content.startswith(b"Content-Type: text/plain; charset=utf-8\r\n")
    assert head.count(b"MIME-Version: 1.0") == 1


def test_line_endings_follow_the_input(alice):
    lf = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    assert b"\r\n" not in lf
    crlf = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=peers.crlf(message()))
    assert crlf.count(b"\n") == crlf.count(b"\r\n")
    for signed in (lf, crlf):
        assert json.loads(alice.run("smime-verify", "--json", input=signed).stdout)["verdict"] == "trusted"


def test_8bit_text_is_armoured_before_signing(alice, ca, tmp_path):
    body = "Grüße aus Köln\nline with trailing space \nFrom the start of a line\n" + "x" * 1200 + "\n"
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message(body=body))
    _, content = parts_of(signed)
    assert content.isascii()
    assert b"Content-Transfer-Encoding: quoted-printable" in content
    assert b"\r\n=46rom the start" in content
    assert max(len(line) for line in content.split(b"\r\n")) <= 76
    ok, out, err = peers.OpenSSL(tmp_path).verify(signed, ca.pem())
    assert ok, err
    shown = alice.run("smime-verify", "--display", input=signed).stdout.decode()
    assert "Grüße aus Köln" in shown and "line with trailing space " in shown


def test_multipart_with_8bit_parts_is_armoured_part_by_part(alice, ca, tmp_path):
    msg = ("From: alice@example.org\nTo: bob@example.org\nSubject: files\nMIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n"
           "Content-Transfer-Encoding: 8bit\n\nsiehe Anhang, Jürgen\n--b1\nContent-Type: application/octet-stream;"
           " name=\"raw.bin\"\nContent-Transfer-Encoding: 8bit\n\n").encode() + bytes(range(1, 256)) + b"\n--b1--\n"
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=msg)
    _, content = parts_of(signed)
    assert content.isascii()
    assert b"Content-Transfer-Encoding: base64" in content  # the binary part
    ok, out, err = peers.OpenSSL(tmp_path).verify(signed, ca.pem())
    assert ok, err
    decoded = base64.b64decode(content.split(b"name=\"raw.bin\"")[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n--b1")[0])
    assert decoded == bytes(range(1, 256))  # exact bytes: binary content is never re-ended


def test_message_without_content_type(alice):
    raw = b"From: alice@example.org\nTo: bob@example.org\nSubject: bare\n\njust text\n"
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=raw)
    _, content = parts_of(signed)
    assert content.startswith(b"Content-Type: text/plain; charset=us-ascii\r\n\r\njust text")


def test_encrypted_message_keeps_its_headers_and_hides_the_content(alice):
    encrypted = alice.ok("smime-encrypt", input=message())
    head, _, body = encrypted.partition(b"\n\n")
    assert b"Subject: [...]" in head and b"To: bob@example.org" in head  # header protection obscures Subject
    assert b"application/pkcs7-mime; smime-type=enveloped-data" in head
    assert b"plan stands" not in encrypted
    assert body.replace(b"\n", b"").isascii()


def test_bcc_and_extra_recipients_can_decrypt(alice, ca, tmp_path):
    hidden = ca.issue("hidden@example.org")
    archive = ca.issue("archive@example.org")
    alice.install(hidden.cert_pem(), tmp_path, "hidden.pem")
    alice.install(archive.cert_pem(), tmp_path, "archive.pem")
    encrypted = alice.ok("smime-encrypt", "--to", "archive@example.org",
                         input=message(extra_headers="Bcc: hidden@example.org\n"))
    ossl = peers.OpenSSL(tmp_path)
    for person in (hidden, archive):
        ok, plain, err = ossl.decrypt(encrypted, person)
        assert ok, err
        assert b"the plan stands" in plain


def test_sign_and_encrypt_round_trip(alice, bob):
    both = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    result = bob.run("smime-decrypt", "--verify", "--passphrase-file", bob.passfile, input=both)
    assert result.returncode == 0, result.stderr
    assert b"the plan stands" in result.stdout
    assert result.stderr.startswith(b"[mailseal] \xe2\x9c\x93 trusted: signed by alice@example.org")


def test_opaque_sign_inside_encryption(alice, bob):
    both = alice.ok("smime-encrypt", "--sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    plain = bob.run("smime-decrypt", "--passphrase-file", bob.passfile, input=both)
    assert b"smime-type=signed-data" in plain.stdout  # kept without --verify
    result = bob.run("smime-decrypt", "--verify", "--passphrase-file", bob.passfile, input=both)
    assert result.returncode == 0 and b"the plan stands" in result.stdout


def test_gcm_round_trip(alice, bob):
    encrypted = alice.ok("smime-encrypt", "--cipher", "aes128-gcm", input=message())
    result = bob.run("smime-decrypt", "--verify", "--json", "--passphrase-file", bob.passfile, input=encrypted)
    report = json.loads(result.stderr.decode().splitlines()[-1])
    assert report["decryption"] == {"cipher": "aes128_gcm", "authenticated": True,
                                    "key_transport": "rsaes_pkcs1v15", "notes": []}


def test_x25519_recipients_round_trip(make_home, ca, tmp_path):
    """X25519 key agreement with HKDF (RFC 8418), which no peer here writes: a recipient with an
    X25519 encryption certificate (as RFC 9216's Dana has) decrypts what mailseal writes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519

    from mailseal.cms import enveloped
    from tests import peers

    key = x25519.X25519PrivateKey.generate()
    xena = ca.issue("xena@example.org", key=key, key_usage=None)
    sender = make_home("sender")
    sender.import_identity(ca.issue("sam@example.org"), tmp_path)
    sender.install(xena.cert_pem(), tmp_path, "xena.pem")
    encrypted = sender.ok("smime-encrypt", "--cipher", "aes128-gcm",
                          input=message(frm="sam@example.org", to="xena@example.org"))
    done = enveloped.decrypt(peers.body_der(encrypted),
                             [(xena.cert.public_bytes(serialization.Encoding.DER), lambda: key)])
    assert done.key_transport == "x25519-hkdf-sha256-aes128_wrap" and done.authenticated
    assert b"the plan stands" in bytes(done.content)


# --- header protection (RFC 9788) -------------------------------------------------------------

def test_encrypted_header_protection_round_trip(alice, bob, people, tmp_path):
    """The Subject travels inside; outside it reads [...]; Bob's decryption shows the real one and
    reports nothing amiss; openssl (no RFC 9788) still decrypts to a usable entity."""
    encrypted = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    assert b"Subject: [...]" in encrypted and b"The plan" not in encrypted
    plain = bob.ok("smime-decrypt", "--passphrase-file", bob.passfile, input=encrypted)
    head = plain.split(b"\n\n", 1)[0]
    assert b"Subject: The plan" in head and b"[...]" not in head and b"HP-Outer" not in head
    result = bob.run("smime-decrypt", "--verify", "--json", "--passphrase-file", bob.passfile, input=encrypted)
    report = json.loads(result.stderr)
    assert report["verdict"] == "trusted" and report["protected_headers"]["mode"] == "cipher"
    assert report["protected_headers"]["fields"]["Subject"] == "The plan" and not report["protected_headers"]["notes"]
    shown = bob.ok("smime-decrypt", "--display", "--passphrase-file", bob.passfile, input=encrypted).decode()
    assert "Subject: The plan" in shown.split("─" * 40)[0]
    ok, inner, _ = peers.OpenSSL(tmp_path).decrypt(encrypted, people["bob"])
    assert ok and b'hp="cipher"' in inner


def test_header_protection_can_be_turned_off(alice):
    assert b"Subject: The plan" in alice.ok("smime-encrypt", "--no-protect-headers", input=message())
    alice.write_config('[accounts.me]\naddresses = ["alice@example.org"]\nprotect_headers = "never"\n')
    assert b"Subject: The plan" in alice.ok("smime-encrypt", input=message())


def test_a_changed_outer_header_is_reported_and_the_signed_from_binds(alice, bob):
    """A clear signature with protected headers: a relay that rewrites From or Subject outside
    cannot make the message look like someone else's; the difference is reported."""
    signed = alice.ok("smime-sign", "--protect-headers", "--passphrase-file", alice.passfile, input=message())
    assert b'hp="clear"' in signed and b"Subject: The plan" in signed
    forged = signed.replace(b"From: Alice <alice@example.org>", b"From: Carol <carol@example.org>", 1)
    forged = forged.replace(b"Subject: The plan", b"Subject: Wire the money", 1)
    result = bob.run("smime-verify", "--json", input=forged)
    report = json.loads(result.stdout)
    assert report["verdict"] == "trusted"  # signed by alice, for the From inside the signature
    notes = " ".join(report["notes"])
    assert "outer From" in notes and "carol@example.org" in notes and "outer Subject" in notes
    assert report["protected_headers"]["fields"]["From"] == "Alice <alice@example.org>"
    untouched = json.loads(bob.run("smime-verify", "--json", input=signed).stdout)
    assert untouched["verdict"] == "trusted" and not any("outer" in n for n in untouched["notes"])


def test_legacy_display_part_is_not_shown_twice(alice, bob):
    """An older RFC 9788 sender's legacy-display part repeats the header as text for old clients;
    mailseal shows the protected header once, and not that part."""
    body = ("Content-Type: multipart/mixed; boundary=\"ld\"\n\n--ld\n"
            "Content-Type: text/plain; charset=us-ascii; hp-legacy-display=\"1\"\n\n"
            "Subject: The plan\n\n--ld\nContent-Type: text/plain\n\nthe real text\n--ld--\n")
    raw = (b"From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: The plan\n"
           b"Date: Mon, 02 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\n" + body.encode())
    encrypted = alice.ok("smime-encrypt", input=raw)
    shown = bob.ok("smime-decrypt", "--display", "--passphrase-file", bob.passfile, input=encrypted).decode()
    content = shown.split("─" * 40)[1]
    assert "the real text" in content and "Subject: The plan" not in content
