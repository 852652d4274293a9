"""Your own identity: PKCS#12 import from every common maker, keys at rest, passphrases, renewals."""

import json
import os
import stat
import subprocess

import pytest

from tests import peers, pki
from tests.conftest import message, need, read, tb


def identities(home):
    return json.loads(home.ok("smime-trust", "identity", "list", "--json"))


def signer_fp(home, signed):
    return json.loads(home.run("smime-verify", "--json", input=signed).stdout)["signer"]["fingerprint_sha256"]


def openssl_p12(tmp_path, person, *options, password="secret"):
    """A PKCS#12 file made by the openssl 3 command line."""
    d = tmp_path / "ossl"
    d.mkdir(exist_ok=True)
    (d / "cert.pem").write_bytes(person.cert_pem())
    (d / "key.pem").write_bytes(person.key_pem())
    (d / "ca.pem").write_bytes(person.ca.pem())
    out = d / "out.p12"
    peers.sh(need("openssl"), "pkcs12", "-export", "-in", d / "cert.pem", "-inkey", d / "key.pem",
             "-certfile", d / "ca.pem", "-passout", f"pass:{password}", *options, "-out", out)
    return out


@pytest.mark.parametrize("options", [(), ("-legacy",),
                                     ("-legacy", "-certpbe", "PBE-SHA1-RC2-40", "-keypbe", "PBE-SHA1-RC2-40"),
                                     ("-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1")],
                         ids=["openssl3-default", "legacy-rc2-3des", "rc2-40", "3des-sha1"])
def test_import_openssl_made_pkcs12(home, people, tmp_path, options):
    path = openssl_p12(tmp_path, people["alice"], *options)
    out = home.ok("smime-trust", "identity", "import", "--passphrase-file", home.passfile, path)
    assert b"alice@example.org" in out
    [ident] = identities(home)
    assert ident["emails"] == ["alice@example.org"] and ident["status"] == "current" and ident["protected"]


@pytest.mark.parametrize("name,address", [("Alice.p12", "alice@example.com"), ("Fran.p12", "fran@example.com"),
                                          ("Alice-ec.p12", "alice-ec@example.com")])
def test_import_nss_made_pkcs12(home, tmp_path, name, address):
    (tmp_path / "pass").write_text("nss\n")
    home.ok("smime-trust", "identity", "import", "--passphrase-file", tmp_path / "pass", tb(name))
    assert identities(home)[0]["emails"] == [address]


def test_passphrase_from_stdin(home, people, tmp_path):
    path = people["alice"].write(tmp_path)
    home.ok("smime-trust", "identity", "import", path, input=b"secret\n")
    assert len(identities(home)) == 1


def test_wrong_passphrase_stores_nothing(home, people, tmp_path):
    path = people["alice"].write(tmp_path)
    result = home.run("smime-trust", "identity", "import", path, input=b"wrong\n")
    assert result.returncode == 22
    assert b"passphrase does not open" in result.stderr
    assert identities(home) == []
    assert not os.path.exists(os.path.join(home.path, "keys")) or not os.listdir(os.path.join(home.path, "keys"))


def test_key_and_database_are_private(home, people, tmp_path):
    home.import_identity(people["alice"], tmp_path)
    keys = os.path.join(home.path, "keys")
    [keyfile] = os.listdir(keys)
    assert stat.S_IMODE(os.stat(os.path.join(keys, keyfile)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(home.path, "trust.db")).st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in read(os.path.join(keys, keyfile))  # encrypted at rest


def test_unprotected_key_needs_no_passphrase(home, people, tmp_path):
    home.import_identity(people["alice"], tmp_path, unprotected=True)
    keys = os.path.join(home.path, "keys")
    assert b"ENCRYPTED" not in read(os.path.join(keys, os.listdir(keys)[0]))
    signed = home.ok("smime-sign", input=message())
    assert b"multipart/signed" in signed


def test_empty_passphrase_file_needs_unprotected(home, people, tmp_path):
    path = tmp_path / "nopass.p12"
    path.write_bytes(people["alice"].p12(b""))
    result = home.run("smime-trust", "identity", "import", path, input=b"\n")
    assert result.returncode == 42 and b"--unprotected" in result.stderr
    home.ok("smime-trust", "identity", "import", "--unprotected", path, input=b"\n")


def test_self_signed_identity_without_chain(home, make_home, tmp_path):
    selfie = pki.self_signed("solo@example.net")
    path = tmp_path / "solo.p12"
    path.write_bytes(selfie.p12(b"secret", chain=False))
    home.ok("smime-trust", "identity", "import", "--passphrase-file", home.passfile, path)
    signed = home.ok("smime-sign", "--passphrase-file", home.passfile, input=message(frm="solo@example.net"))
    reader = make_home("reader")
    result = reader.run("smime-verify", "--json", input=signed)
    assert json.loads(result.stdout)["verdict"] == "untrusted"
    (tmp_path / "solo.pem").write_bytes(selfie.cert_pem())
    reader.ok("smime-trust", "install", tmp_path / "solo.pem")
    assert json.loads(reader.run("smime-verify", "--json", input=signed).stdout)["verdict"] == "trusted"


def test_certificate_without_address_is_refused(home, ca, tmp_path):
    nobody = ca.issue("x@example.org", san=False)
    path = tmp_path / "nobody.p12"
    path.write_bytes(nobody.p12(b"secret"))
    result = home.run("smime-trust", "identity", "import", "--passphrase-file", home.passfile, path)
    assert result.returncode == 42 and b"no e-mail address" in result.stderr


def test_not_a_pkcs12_file(home, tmp_path):
    (tmp_path / "junk.p12").write_bytes(b"this is not PKCS#12")
    result = home.run("smime-trust", "identity", "import", "--passphrase-file", home.passfile, tmp_path / "junk.p12")
    assert result.returncode == 42 and b"PKCS#12" in result.stderr


# --- passphrases for filters ------------------------------------------------------------

def test_protected_key_without_passphrase_says_how(home, people, tmp_path):
    home.import_identity(people["alice"], tmp_path)
    result = home.run("smime-sign", input=message())
    assert result.returncode == 21 and result.stdout == b""
    for hint in (b"--passphrase-file", b"--passphrase-fd", b"passphrase_command", b"--unprotected"):
        assert hint in result.stderr


def test_wrong_passphrase_for_filter(home, people, tmp_path):
    home.import_identity(people["alice"], tmp_path)
    (tmp_path / "bad").write_text("nope\n")
    result = home.run("smime-sign", "--passphrase-file", tmp_path / "bad", input=message())
    assert result.returncode == 22 and result.stdout == b""


def test_passphrase_command_from_config(home, people, tmp_path):
    home.import_identity(people["alice"], tmp_path)
    home.write_config(f'[accounts.work]\naddresses = ["alice@example.org"]\n'
                      f'passphrase_command = "cat {home.passfile}"\n')
    assert b"multipart/signed" in home.ok("smime-sign", input=message())
    home.write_config('[accounts.work]\naddresses = ["alice@example.org"]\npassphrase_command = "exit 3"\n')
    result = home.run("smime-sign", input=message())
    assert result.returncode == 21 and b"exit code 3" in result.stderr


def test_passphrase_fd(home, people, tmp_path):
    home.import_identity(people["alice"], tmp_path)
    reader, writer = os.pipe()
    os.write(writer, b"secret\n")
    os.close(writer)
    from tests.conftest import PROGRAMS
    import sys

    result = subprocess.run([sys.executable, PROGRAMS["smime-sign"], "--passphrase-fd", str(reader)],
                            input=message(), capture_output=True, env=home.env, pass_fds=(reader,))
    os.close(reader)
    assert result.returncode == 0, result.stderr
    assert b"multipart/signed" in result.stdout


def test_passphrase_on_stdin_like_mutt(home, people, tmp_path):
    home.import_identity(people["alice"], tmp_path)
    (tmp_path / "draft.eml").write_bytes(message())
    signed = home.ok("smime-sign", "--passphrase-fd", "0", tmp_path / "draft.eml", input=b"secret\n")
    assert b"multipart/signed" in signed
    result = home.run("smime-sign", "--passphrase-fd", "0", input=message())
    assert result.returncode == 64 and b"FILE" in result.stderr  # stdin cannot carry both


# --- several identities, renewals --------------------------------------------------------

def test_identity_follows_from_and_as(home, ca, tmp_path):
    work = ca.issue("me@work.example")
    private = ca.issue("me@home.example")
    home.import_identity(work, tmp_path)
    home.import_identity(private, tmp_path)
    fp = {p.email: p.cert.fingerprint(__import__("cryptography").hazmat.primitives.hashes.SHA256()).hex()
          for p in (work, private)}
    home.install(ca.pem(), tmp_path, "ca.pem", ca=True)
    signed = home.ok("smime-sign", "--passphrase-file", home.passfile, input=message(frm="me@home.example"))
    assert signer_fp(home, signed) == fp["me@home.example"]
    signed = home.ok("smime-sign", "--passphrase-file", home.passfile, "--as", "me@work.example",
                     input=message(frm="me@home.example"))
    assert signer_fp(home, signed) == fp["me@work.example"]
    result = home.run("smime-sign", "--passphrase-file", home.passfile, input=message(frm="stranger@example.net"))
    assert result.returncode == 31 and b"stranger@example.net" in result.stderr


def test_renewed_identity_signs_and_old_key_still_decrypts(alice, bob, ca, people, tmp_path):
    # Alice encrypts to Bob's current certificate
    old_mail = alice.ok("smime-encrypt", input=message())
    # Bob renews: new key, new certificate, same address
    renewed = ca.issue("bob@example.org", not_before=pki.NOW - pki.DAY / 2)
    os.makedirs(tmp_path / "renew")
    bob.import_identity(renewed, tmp_path / "renew")
    states = {i["fingerprint_sha256"]: i["status"] for i in identities(bob)}
    new_fp = renewed.cert.fingerprint(__import__("cryptography").hazmat.primitives.hashes.SHA256()).hex()
    assert states[new_fp] == "current" and sorted(states.values()) == ["current", "historical"]
    # old mail still opens, with the old key
    result = bob.run("smime-decrypt", "--passphrase-file", bob.passfile, input=old_mail)
    assert result.returncode == 0 and b"the plan stands" in result.stdout
    # new mail is signed with the new identity
    reply = bob.ok("smime-sign", "--passphrase-file", bob.passfile, input=message(frm="bob@example.org",
                                                                                     to="alice@example.org"))
    assert signer_fp(bob, reply) == new_fp
