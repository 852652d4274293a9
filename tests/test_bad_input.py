"""Bad input gets one clear line on stderr, a distinct exit code, and loses nothing."""

import base64
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from tests import peers, pki
from tests.conftest import PROGRAMS, message, read, tb

FILTERS = ["smime-verify", "smime-decrypt", "smime-sign", "smime-encrypt"]


def one_line(stderr):
    lines = stderr.decode().strip().splitlines()
    assert len(lines) >= 1
    return lines[0]


@pytest.mark.parametrize("program", FILTERS)
@pytest.mark.parametrize("data", [b"hello world\nthis is not a mail message\n", b"\x00\x01\x02\xff\xfe binary junk"],
                         ids=["text", "binary"])
def test_not_a_mail_message(alice, program, data):
    result = alice.run(program, "--passphrase-file", alice.passfile, input=data) if program != "smime-verify" \
        else alice.run(program, input=data)
    assert result.returncode == 10
    assert "not a mail message" in one_line(result.stderr)
    assert result.stdout == b""


@pytest.mark.parametrize("program", FILTERS)
def test_empty_input(alice, program):
    result = alice.run(program, input=b"")
    assert result.returncode == 10
    assert "input is empty" in one_line(result.stderr)
    assert result.stdout == b""


@pytest.mark.parametrize("program", ["smime-verify", "smime-decrypt"])
def test_display_never_swallows_the_message(alice, program):
    junk = b"hello world\nthis is not a mail message\n"
    result = alice.run(program, "--display", input=junk)
    assert result.returncode == 0
    first, rest = result.stdout.split(b"\n", 1)
    assert b"not a mail message" in first
    assert rest == junk


def _opaque(alice):
    return alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())


def test_truncated_base64(alice):
    signed = _opaque(alice)
    cut = signed[:len(signed) - 101]  # mid-line, not on a 4-character boundary
    b64 = cut.split(b"\n\n", 1)[1].replace(b"\n", b"")
    assert len(b64) % 4  # the point of this case
    result = alice.run("smime-verify", input=cut)
    assert result.returncode == 11
    assert "truncated" in one_line(result.stderr)


def test_truncated_cms(alice):
    signed = _opaque(alice)
    head, body = signed.split(b"\n\n", 1)
    der = base64.b64decode(body)
    short = head + b"\n\n" + base64.encodebytes(der[:len(der) // 2 // 3 * 3])
    result = alice.run("smime-verify", input=short)
    assert result.returncode == 12
    assert "truncated or malformed" in one_line(result.stderr)


def test_garbage_cms_in_signature(alice):
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    garbage = base64.encodebytes(os.urandom(600))
    broken = re.sub(rb"(Signature\n\n)[A-Za-z0-9+/=\n]+", lambda m: m.group(1) + garbage, signed)
    assert broken != signed
    result = alice.run("smime-verify", input=broken)
    assert result.returncode == 12
    assert "CMS" in one_line(result.stderr)


def test_garbage_cms_in_encrypted_part(alice):
    msg = (b"From: a@example.org\nTo: b@example.org\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\n"
           b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(b"\x30\x82\x01\x00" + os.urandom(200)))
    result = alice.run("smime-decrypt", input=msg)
    assert result.returncode == 12 and result.stdout == b""


def test_message_for_someone_else(alice, make_home, ca, tmp_path):
    encrypted = alice.ok("smime-encrypt", input=message())
    carol = make_home("carol")
    os.makedirs(tmp_path / "c")
    carol.import_identity(ca.issue("carol@example.org"), tmp_path / "c")
    result = carol.run("smime-decrypt", "--passphrase-file", carol.passfile, input=encrypted)
    assert result.returncode == 20
    assert "not encrypted to any of your keys" in one_line(result.stderr)
    assert result.stdout == b""


def test_decrypt_with_wrong_passphrase(alice, bob, tmp_path):
    encrypted = alice.ok("smime-encrypt", input=message())
    (tmp_path / "wrong").write_text("wrong\n")
    result = bob.run("smime-decrypt", "--passphrase-file", tmp_path / "wrong", input=encrypted)
    assert result.returncode == 22 and result.stdout == b""
    assert "passphrase does not unlock" in one_line(result.stderr)


def test_tampered_signature_value(alice):
    signed = _opaque(alice)
    head, body = signed.split(b"\n\n", 1)
    der = bytearray(base64.b64decode(body))
    der[-5] ^= 0x40  # inside the signature value, the last element of the SignerInfo
    result = alice.run("smime-verify", input=head + b"\n\n" + base64.encodebytes(bytes(der)))
    assert result.returncode == 5
    assert "does not verify" in result.stdout.decode()


def test_tampered_signed_text(alice):
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    result = alice.run("smime-verify", input=signed.replace(b"plan stands", b"plan changed"))
    assert result.returncode == 5
    assert "altered" in result.stdout.decode()


def test_tampered_ciphertext(alice, bob):
    encrypted = alice.ok("smime-encrypt", input=message())
    head, body = encrypted.split(b"\n\n", 1)
    der = bytearray(base64.b64decode(body))
    der[-3] ^= 0x01  # last CBC block: the padding no longer checks out
    result = bob.run("smime-decrypt", "--passphrase-file", bob.passfile,
                     input=head + b"\n\n" + base64.encodebytes(bytes(der)))
    assert result.returncode == 23 and result.stdout == b""
    assert "altered" in one_line(result.stderr)


def test_forged_gcm_tag_releases_nothing(alice, bob):
    encrypted = alice.ok("smime-encrypt", "--cipher", "aes256-gcm", input=message())
    assert b"authEnveloped-data" in encrypted
    head, body = encrypted.split(b"\n\n", 1)
    der = bytearray(base64.b64decode(body))
    der[-1] ^= 0x01  # the tag is the last element
    result = bob.run("smime-decrypt", "--passphrase-file", bob.passfile,
                     input=head + b"\n\n" + base64.encodebytes(bytes(der)))
    assert result.returncode == 23
    assert result.stdout == b"" and b"plan" not in result.stderr
    # the untouched message decrypts
    ok = bob.run("smime-decrypt", "--passphrase-file", bob.passfile, input=encrypted)
    assert ok.returncode == 0 and b"the plan stands" in ok.stdout


def test_forged_gcm_tag_on_a_large_message_releases_nothing(alice, bob):
    """Decryption writes as it decrypts, so the tag is checked in a first pass over all of it."""
    msg = big_message(3 * 1024 * 1024)
    encrypted = alice.ok("smime-encrypt", "--cipher", "aes256-gcm", input=msg)
    head, body = encrypted.split(b"\n\n", 1)
    der = bytearray(base64.b64decode(body))
    der[-1] ^= 0x01
    result = bob.run("smime-decrypt", "--passphrase-file", bob.passfile,
                     input=head + b"\n\n" + base64.encodebytes(bytes(der)))
    assert result.returncode == 23 and result.stdout == b""


def test_truncated_large_encryption_is_a_clear_error(alice, bob):
    encrypted = alice.ok("smime-encrypt", input=big_message(2 * 1024 * 1024))
    for cut in (len(encrypted) // 2, len(encrypted) - 7):
        result = bob.run("smime-decrypt", "--passphrase-file", bob.passfile, input=encrypted[:cut])
        assert result.returncode in (11, 12) and result.stdout == b"", result.stderr
        assert b"Traceback" not in result.stderr


def test_crlf_message_decrypts_to_crlf(alice, bob):
    msg = message().replace(b"\n", b"\r\n")
    encrypted = alice.ok("smime-encrypt", input=msg)
    assert b"\r\n" in encrypted
    plain = bob.ok("smime-decrypt", "--passphrase-file", bob.passfile, input=encrypted)
    assert plain.endswith(msg.split(b"\r\n\r\n", 1)[1]) and b"\n" not in plain.replace(b"\r\n", b"")
    assert plain.startswith(b"From: Alice <alice@example.org>\r\n")


def test_bare_text_from_openssl_gets_a_text_header(people, bob, tmp_path):
    """openssl cms -encrypt without -text encrypts text with no MIME header."""
    der = peers.OpenSSL(tmp_path).encrypt(b"just words\r\n", people["bob"], options=("-outform", "DER"))
    encrypted = peers.wrap_der(der, b"enveloped-data")
    plain = bob.ok("smime-decrypt", "--passphrase-file", bob.passfile, input=encrypted)
    assert b"Content-Type: text/plain; charset=utf-8" in plain and plain.endswith(b"just words\r\n")


def test_multipart_signed_without_signature_part(alice):
    msg = (b"From: alice@example.org\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\";"
           b" micalg=sha-256; boundary=b1\n\n--b1\nContent-Type: text/plain\n\nhi\n--b1--\n")
    result = alice.run("smime-verify", input=msg)
    assert result.returncode == 10 and "2 parts" in one_line(result.stderr)


# --- recipients without a usable certificate: nothing is written ---------------------------

def test_missing_recipient_certificates_block_everything(alice, ca, tmp_path):
    expired = ca.issue("old@example.org", not_before=pki.NOW - 400 * pki.DAY, not_after=pki.NOW - 30 * pki.DAY)
    signing_only = ca.issue("signer@example.org", key_usage="sign")
    alice.install(expired.cert_pem(), tmp_path, "old.pem")
    alice.install(signing_only.cert_pem(), tmp_path, "signer.pem")
    msg = message(to="bob@example.org, old@example.org", cc="signer@example.org, nobody@example.org",
                  extra_headers="Bcc: hidden@example.org\n")
    result = alice.run("smime-encrypt", input=msg)
    assert result.returncode == 30 and result.stdout == b""
    err = result.stderr.decode()
    assert "bob@example.org" not in err  # Bob has a certificate
    assert re.search(r"old@example.org: certificate expired on", err)
    assert re.search(r"signer@example.org: .*does not allow encryption", err)
    assert re.search(r"nobody@example.org: no certificate on record", err)
    assert re.search(r"hidden@example.org: no certificate on record", err)  # Bcc counts too


def test_sender_without_identity_blocks(home, people, tmp_path):
    home.install(people["bob"].cert_pem(), tmp_path, "bob.pem")
    result = home.run("smime-encrypt", input=message())
    assert result.returncode == 30 and result.stdout == b""
    assert "alice@example.org (you)" in result.stderr.decode()


def test_message_without_recipients(alice):
    msg = b"From: alice@example.org\nSubject: nobody\n\nhello\n"
    result = alice.run("smime-encrypt", input=msg)
    assert result.returncode == 30 and result.stdout == b""


# --- the trust database and the configuration ------------------------------------------

def test_locked_database(alice, tmp_path):
    db = os.path.join(alice.path, "trust.db")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({db!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)\n")],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        env = dict(alice.env, MAILSEAL_BUSY_TIMEOUT_MS="500")
        (tmp_path / "x.pem").write_bytes(pki.CA("Another").issue("x@example.org").cert_pem())
        result = subprocess.run([sys.executable, PROGRAMS["smime-trust"], "install", tmp_path / "x.pem"],
                                capture_output=True, env=env)
        assert result.returncode == 40
        assert "locked" in one_line(result.stderr)
    finally:
        holder.kill()
        holder.wait()


def test_corrupt_database(alice):
    alice.corrupt_database(b"this is not an SQLite database" * 100)
    for program in ("smime-verify", "smime-encrypt"):
        result = alice.run(program, input=message())
        assert result.returncode == 40
        line = one_line(result.stderr)
        assert "corrupt" in line and "Traceback" not in result.stderr.decode()


def test_unreadable_database(alice):
    if os.geteuid() == 0:
        # root reads any file; a directory in place of the database is unreadable to everyone
        db = os.path.join(alice.path, "trust.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        os.mkdir(db)
    else:
        os.chmod(os.path.join(alice.path, "trust.db"), 0)
    result = alice.run("smime-verify", input=message())
    assert result.returncode == 40 and "Traceback" not in result.stderr.decode()


def test_malformed_config_names_file_and_line(alice):
    alice.write_config('[accounts.work]\naddresses = ["alice@example.org"]\nsign_by_default = maybe\n')
    result = alice.run("smime-sign", "--passphrase-file", alice.passfile, input=message())
    assert result.returncode == 41
    assert f"{alice.config}, line 3" in one_line(result.stderr)
    alice.write_config('[accounts.work]\naddresses = "alice@example.org"\n')
    result = alice.run("smime-sign", "--passphrase-file", alice.passfile, input=message())
    assert result.returncode == 41 and f"{alice.config}, line 2" in one_line(result.stderr)
    assert "must be a list" in one_line(result.stderr)


# --- a 25 MB attachment ------------------------------------------------------------------

def _peak_rss(home, program, *args, input):
    """Run a program; return (result, its own peak RSS in bytes)."""
    proc = subprocess.Popen([sys.executable, PROGRAMS[program], *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=home.env)
    import threading

    out = {}
    reader = threading.Thread(target=lambda: out.update(stdout=proc.stdout.read()))
    err_reader = threading.Thread(target=lambda: out.update(stderr=proc.stderr.read()))
    reader.start()
    err_reader.start()
    proc.stdin.write(input)
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    reader.join()
    err_reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out["stdout"], out["stderr"]), usage.ru_maxrss * 1024


def big_message(size=25 * 1024 * 1024):
    attachment = base64.encodebytes(os.urandom(size))
    return (b"From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: the archive\n"
            b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n--zz\n"
            b"Content-Type: text/plain; charset=utf-8\n\nThe archive is attached.\n--zz\n"
            b"Content-Type: application/octet-stream; name=\"archive.bin\"\nContent-Transfer-Encoding: base64\n\n"
            + attachment + b"--zz--\n")


def test_25_megabyte_attachment(alice, bob):
    msg = big_message()
    small, small_rss = _peak_rss(alice, "smime-encrypt", "--sign", "--passphrase-file", alice.passfile,
                                 input=message())
    assert small.returncode == 0
    encrypted, enc_rss = _peak_rss(alice, "smime-encrypt", "--sign", "--no-protect-headers", "--passphrase-file",
                                   alice.passfile, input=msg)
    assert encrypted.returncode == 0, encrypted.stderr
    decrypted, dec_rss = _peak_rss(bob, "smime-decrypt", "--verify", "--passphrase-file", bob.passfile,
                                   input=encrypted.stdout)
    assert decrypted.returncode == 0, decrypted.stderr  # trusted
    assert decrypted.stdout == msg  # every byte back, line endings included
    plain, plain_rss = _peak_rss(bob, "smime-decrypt", "--passphrase-file", bob.passfile, input=encrypted.stdout)
    assert plain.returncode == 0, plain.stderr
    assert msg[msg.index(b"--zz\nContent-Type: application/octet-stream"):] in plain.stdout  # signature kept
    # peak memory beyond the interpreter's own: encrypting streams (the input, once, and
    # megabyte pieces); decrypting decodes as it reads and decrypts as it writes (the CMS
    # data, once); verifying needs the input, the CMS data and the plaintext at once
    assert enc_rss - small_rss < 1.5 * len(msg), (enc_rss, small_rss, len(msg))
    assert plain_rss - small_rss < 1.5 * len(msg), (plain_rss, small_rss, len(msg))
    assert dec_rss - small_rss < 4 * len(msg), (dec_rss, small_rss, len(msg))


@pytest.mark.parametrize("cipher", ["aes256-cbc", "aes256-gcm"])
def test_25_megabyte_encryption_decrypts_with_openssl(alice, people, tmp_path, cipher):
    """The encrypted output is produced as it is written: its DER lengths are announced before the
    content exists, so a peer that checks them must read every byte back."""
    msg = big_message()
    encrypted = alice.ok("smime-encrypt", "--cipher", cipher, input=msg)
    ok, plain, err = peers.OpenSSL(tmp_path).decrypt(encrypted, people["bob"])
    assert ok, err
    attachment = msg[msg.index(b"--zz\nContent-Type: application/octet-stream"):]
    assert plain.startswith(b"Content-Type: multipart/mixed") and plain.endswith(attachment.replace(b"\n", b"\r\n"))
