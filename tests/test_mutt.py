"""mutt and neomutt native S/MIME through mailseal: smime-mutt speaks mutt's command protocol.

The first half runs each subcommand the way mutt runs it (files as mutt
writes them, the passphrase line on stdin, what mutt reads back) and checks
the results with openssl.  The second half drives the real clients, mutt
2.2.12 and neomutt 20220429, in tmux with the examples in examples/mutt and
examples/neomutt, copied unchanged into a throwaway configuration.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests import peers, pki
from tests.conftest import REPO, Home, message, need, run
from tests.peers import crlf
from tests.tmux import tmux_session  # noqa: F401

ENTITY = b"Content-Type: text/plain; charset=us-ascii\nContent-Disposition: inline\n\nHello from mutt.\n"


def write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def rc_settings(home, *args):
    """Run 'smime-mutt rc' and return its settings as a dict (what mutt would set)."""
    out = home.ok("smime-mutt", "rc", *args).decode()
    return dict(re.findall(r"^set (\w+)='([^']*)'$", out, re.M))


def mutt_files(home):
    """(key file, certificate file, issuer file) mutt passes as %k, %c, %i for the default key."""
    settings = rc_settings(home)
    kid = settings["smime_default_key"]
    issuer = kid
    with open(os.path.join(settings["smime_keys"], ".index")) as handle:
        for line in handle:
            fields = line.split()
            if fields[1] == kid and fields[3] != "?":
                issuer = fields[3]
    return (os.path.join(settings["smime_keys"], kid), os.path.join(settings["smime_certificates"], kid),
            os.path.join(settings["smime_certificates"], issuer))


def first_line(data):
    return data.decode(errors="replace").splitlines()[0] if data else ""


# --- the protocol, subcommand by subcommand --------------------------------------------------------

def test_rc_points_mutt_at_the_exported_store(alice, people):
    settings = rc_settings(alice)
    assert set(settings) == {"smime_certificates", "smime_keys", "smime_default_key"}
    kid = settings["smime_default_key"]
    assert re.fullmatch(r"[0-9a-f]{8}\.\d+", kid)
    with open(os.path.join(settings["smime_keys"], ".index")) as handle:
        assert f"alice@example.org {kid} " in handle.read()
    with open(os.path.join(settings["smime_certificates"], kid), "rb") as handle:
        assert handle.read() == people["alice"].cert_pem()
    refused = alice.run("smime-mutt", "rc", "--as", "nobody@example.org")
    assert refused.returncode == 31 and refused.stdout == b""


def test_sign_as_mutt_does_verifies_with_openssl(alice, ca, tmp_path):
    key, cert, issuer = mutt_files(alice)
    entity = write(tmp_path / "entity", ENTITY)
    result = alice.run("smime-mutt", "sign", "--digest=sha256", "--key", key, "--cert", cert, "--issuer", issuer,
                       entity, input=b"secret\n")
    assert result.returncode == 0 and result.stderr == b"", result.stderr  # any stderr makes mutt pause
    signed = peers.wrap_detached(crlf(ENTITY), result.stdout,
                                 headers=b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: s\r\n")
    ok, content, err = peers.OpenSSL(tmp_path).verify(signed, ca.pem())
    assert ok and b"Hello from mutt." in content, err
    assert alice.run("smime-verify", input=signed).returncode == 0
    # an empty %d (smime_sign_digest_alg unset) leaves the switch out: SHA-256
    assert alice.run("smime-mutt", "sign", "--digest=", "--cert", cert, entity, input=b"secret\n").returncode == 0
    # the digest mutt announces in micalg is the one used
    sha512 = alice.run("smime-mutt", "sign", "--digest=sha512", "--cert", cert, entity, input=b"secret\n")
    assert sha512.returncode == 0
    printed = peers.sh(need("openssl"), "cms", "-cmsout", "-print", "-inform", "DER",
                       "-in", write(tmp_path / "sig.der", sha512.stdout)).stdout
    assert b"sha512" in printed


def test_sign_passphrase_line_from_mutt(alice, tmp_path):
    key, cert, issuer = mutt_files(alice)
    entity = write(tmp_path / "entity", ENTITY)
    args = ("smime-mutt", "sign", "--digest=sha256", "--key", key, "--cert", cert, "--issuer", issuer, entity)
    empty = alice.run(*args, input=b"\n")
    assert empty.returncode == 21 and empty.stdout == b"" and b"passphrase" in empty.stderr
    wrong = alice.run(*args, input=b"wrong\n")
    assert wrong.returncode == 22 and wrong.stdout == b""
    # an empty line (Enter at mutt's prompt) falls back to the account's passphrase_command
    alice.write_config(f'[accounts.me]\naddresses = ["alice@example.org"]\n'
                       f'passphrase_command = "cat {alice.passfile}"\n')
    assert alice.run(*args, input=b"\n").returncode == 0
    sha1 = alice.run("smime-mutt", "sign", "--digest=sha1", "--cert", cert, entity, input=b"secret\n")
    assert sha1.returncode == 13 and sha1.stdout == b"" and b"smime_sign_digest_alg" in sha1.stderr


def test_sign_with_a_key_file_mailseal_does_not_hold(home, people, tmp_path):
    """%k and %c of a key outside mailseal (smime_keys' own store) still sign."""
    carol = people["carol"]
    key = write(tmp_path / "carol.key", carol.key_pem())
    cert = write(tmp_path / "carol.pem", carol.cert_pem())
    result = home.run("smime-mutt", "sign", "--key", key, "--cert", cert, write(tmp_path / "e", ENTITY), input=b"\n")
    assert result.returncode == 0, result.stderr
    ok, _, err = peers.OpenSSL(tmp_path).verify(peers.wrap_detached(crlf(ENTITY), result.stdout), carol.ca.pem())
    assert ok, err


def test_encrypt_as_mutt_does_decrypts_with_openssl(alice, people, tmp_path):
    bob_cert = write(tmp_path / "bob.crt", people["bob"].cert_pem())
    alice_cert = write(tmp_path / "alice.crt", people["alice"].cert_pem())
    entity = write(tmp_path / "entity", ENTITY)
    result = alice.run("smime-mutt", "encrypt", "--cipher=aes256", entity, bob_cert, alice_cert)
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    ok, plain, err = peers.OpenSSL(tmp_path).decrypt(result.stdout, people["bob"], inform="DER")
    assert ok and plain == crlf(ENTITY), err
    printed = peers.sh(need("openssl"), "cms", "-cmsout", "-print", "-inform", "DER",
                       "-in", write(tmp_path / "env.der", result.stdout)).stdout
    assert b"aes-256-cbc" in printed and b"envelopedData" in printed
    # an empty %a (smime_encrypt_with unset) is AES-256 too; what mailseal never writes is refused
    assert alice.run("smime-mutt", "encrypt", "--cipher=", entity, bob_cert).returncode == 0
    des = alice.run("smime-mutt", "encrypt", "--cipher=des3", entity, bob_cert)
    assert des.returncode == 13 and des.stdout == b"" and b"smime_encrypt_with=aes256" in des.stderr


def test_encrypt_refuses_an_expired_certificate(alice, ca, people, tmp_path):
    old = ca.issue("old@example.org", not_before=pki.NOW - 400 * pki.DAY, not_after=pki.NOW - pki.DAY)
    result = alice.run("smime-mutt", "encrypt", write(tmp_path / "e", ENTITY),
                       write(tmp_path / "bob.crt", people["bob"].cert_pem()), write(tmp_path / "old.crt", old.cert_pem()))
    assert result.returncode == 30 and result.stdout == b""
    assert b"old@example.org" in result.stderr and b"expired" in result.stderr


def test_decrypt_as_mutt_does(bob, people, tmp_path):
    key, cert, _ = mutt_files(bob)
    der = peers.OpenSSL(tmp_path).encrypt(crlf(ENTITY), people["bob"], options=("-outform", "DER", "-aes256"))
    path = write(tmp_path / "enc.der", der)
    result = bob.run("smime-mutt", "decrypt", "--key", key, "--cert", cert, path, input=b"secret\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.replace(b"\r\n", b"\n") == ENTITY
    # AES-CBC without a signature inside: mutt shows this stderr above the content (EFAIL)
    assert b"not signed: the content is NOT authenticated" in result.stderr
    empty = bob.run("smime-mutt", "decrypt", "--key", key, "--cert", cert, path, input=b"\n")
    assert empty.returncode == 21 and empty.stdout == b""  # mutt: "Decryption failed", passphrase forgotten
    not_ours = peers.OpenSSL(tmp_path).encrypt(crlf(ENTITY), people["carol"], options=("-outform", "DER"))
    refused = bob.run("smime-mutt", "decrypt", write(tmp_path / "carol.der", not_ours), input=b"secret\n")
    assert refused.returncode == 20 and refused.stdout == b""


def test_decrypt_remembers_a_protected_message_id(alice, bob, tmp_path):
    """mutt passes no header; the Message-ID protected inside (RFC 9788) lets replies follow encryption."""
    from mailseal.store import Store

    encrypted = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    der = peers.body_der(encrypted)
    result = bob.run("smime-mutt", "decrypt", write(tmp_path / "enc.der", der), input=b"secret\n")
    assert result.returncode == 0 and result.stderr == b"", result.stderr  # signed inside: no warning
    assert b"multipart/signed" in result.stdout and b"Hello Bob" in result.stdout
    with Store(os.path.join(bob.path, "trust.db")) as store:
        assert store.was_encrypted(["<plan-1@example.org>"]) == ["<plan-1@example.org>"]


def _verify_files(home, signed, tmp_path):
    content, sig = peers.split_signed(signed)
    return home.run("smime-mutt", "verify", write(tmp_path / "part", content), write(tmp_path / "part.sig", sig))


def test_verify_says_successful_only_when_trusted(alice, bob, tmp_path):
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    good = _verify_files(bob, signed, tmp_path)
    assert good.returncode == 0 and good.stdout == b""  # mutt closes stdout at once
    assert first_line(good.stderr) == "Verification successful"
    assert "signed by alice@example.org" in good.stderr.decode()
    # a valid signature by a stranger (unknown CA) is not "successful"
    dan_home = _stranger(tmp_path)
    strange = _verify_files(bob, dan_home.ok("smime-sign", "--passphrase-file", dan_home.passfile,
                                             input=message(frm="dan@example.net")), tmp_path)
    assert strange.returncode == 1 and strange.stdout == b""
    assert first_line(strange.stderr) == "Verification failure"
    assert "smime-trust install" in strange.stderr.decode()
    # altered content
    content, sig = peers.split_signed(signed)
    altered = bob.run("smime-mutt", "verify", write(tmp_path / "c", content.replace(b"plan", b"plot")),
                      write(tmp_path / "c.sig", sig))
    assert altered.returncode == 5 and first_line(altered.stderr) == "Verification failure"
    garbage = bob.run("smime-mutt", "verify", write(tmp_path / "g", content), write(tmp_path / "g.sig", b"\x30\x03abc"))
    assert garbage.returncode == 12 and first_line(garbage.stderr) == "Verification failure"


def test_verify_never_reads_stdin(alice, bob, tmp_path):
    """mutt lends its terminal as verify's stdin: reading it would hang mutt."""
    content, sig = peers.split_signed(alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message()))
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "bin", "smime-mutt"), "verify",
                             write(tmp_path / "p", content), write(tmp_path / "p.sig", sig)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bob.env)
    try:
        proc.wait(timeout=60)  # stdin stays open: a read would block
    finally:
        proc.kill()
    assert proc.returncode == 0 and proc.stdout.read() == b""
    assert first_line(proc.stderr.read()) == "Verification successful"
    proc.stdin.close()
    proc.stdout.close()
    proc.stderr.close()


def test_verify_opaque_gives_the_content(alice, bob, tmp_path):
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    result = bob.run("smime-mutt", "verify-opaque", write(tmp_path / "o.der", peers.body_der(opaque)))
    assert result.returncode == 0 and first_line(result.stderr) == "Verification successful"
    assert b"the plan stands" in result.stdout and result.stdout.startswith(b"Content-Type: text/plain")


def _stranger(tmp_path, email="dan@example.net"):
    """A home whose identity comes from a CA nobody trusts."""
    person = pki.CA("Unknown CA").issue(email)
    home = Home(tmp_path / email.split("@")[0])
    os.makedirs(tmp_path / "stranger-files", exist_ok=True)
    home.import_identity(person, tmp_path / "stranger-files")
    return home


def _forged_by_prefix(ca, tmp_path):
    """Mail From alice@example.org, signed with a certificate the trusted CA issued to
    alice@example.org.evil.net: mutt's prefix match would take it for Alice's."""
    mallory = Home(tmp_path / "mallory")
    os.makedirs(tmp_path / "mallory-files", exist_ok=True)
    mallory.import_identity(ca.issue("alice@example.org.evil.net"), tmp_path / "mallory-files")
    return mallory.ok("smime-sign", "--as", "alice@example.org.evil.net", "--passphrase-file", mallory.passfile,
                      input=message())


def test_sender_check_binds_exactly_to_from(alice, bob, ca, tmp_path):
    """mutt compares get_cert_email's lines with From by prefix; mailseal binds the signer exactly."""
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    msg, certfile = write(tmp_path / "msg", signed), write(tmp_path / "signer.pem", b"")
    inode = os.stat(certfile).st_ino
    assert bob.run("smime-mutt", "get-signer-cert", msg, certfile).returncode == 0
    assert os.stat(certfile).st_ino == inode  # written in place: mutt reads it through its own descriptor
    emails = bob.ok("smime-mutt", "get-cert-email", certfile).decode().splitlines()
    assert emails == ["alice@example.org"]
    # a certificate from the trusted CA for alice@example.org.evil.net, on mail From alice@example.org
    forged = _forged_by_prefix(ca, tmp_path)
    part = _verify_files(bob, forged, tmp_path)
    assert first_line(part.stderr) == "Verification successful"  # a good signature, for its own address
    write(certfile, b"")
    assert bob.run("smime-mutt", "get-signer-cert", write(tmp_path / "forged", forged), certfile).returncode == 0
    lines = bob.ok("smime-mutt", "get-cert-email", certfile).decode().splitlines()
    assert lines and not any(line.lower().startswith("alice@example.org") for line in lines), lines
    assert "mismatch" in lines[0]


def test_ctrl_k_pipeline_records_certificates(bob, people, tmp_path):
    dan_home = _stranger(tmp_path)
    signed = dan_home.ok("smime-sign", "--passphrase-file", dan_home.passfile, input=message(frm="dan@example.net"))
    pk7 = bob.run("smime-mutt", "pk7out", write(tmp_path / "msg", signed))
    assert pk7.returncode == 0 and pk7.stdout.startswith(b"-----BEGIN PKCS7-----")
    listed = peers.sh(need("openssl"), "pkcs7", "-print_certs", "-in", write(tmp_path / "p7.pem", pk7.stdout)).stdout
    assert b"dan@example.net" in listed or b"Dan" in listed  # openssl reads what pk7out wrote
    certs_pem = bob.ok("smime-mutt", "get-cert", tmp_path / "p7.pem")
    assert certs_pem.startswith(b"subject=") and b"-----BEGIN CERTIFICATE-----" in certs_pem
    report = bob.run("smime-mutt", "import-cert", write(tmp_path / "certs.pem", certs_pem), input=b"dan\n")
    assert report.returncode == 0, report.stderr
    text = report.stdout.decode()
    assert "dan@example.net" in text and "not trusted" in text and "smime-trust install" in text
    listing = json.loads(bob.ok("smime-trust", "list", "--json"))
    [dan] = [e for e in listing["certificates"] if e["address"] == "dan@example.net"]
    assert dan["status"] == "untrusted" and dan["sources"] == ["message"]
    again = bob.ok("smime-mutt", "import-cert", tmp_path / "certs.pem", input=b"\n").decode()
    assert "already on record" in again
    # a certificate from a CA Bob trusts is trusted, and mutt can encrypt to it
    carol = people["carol"]
    trusted = bob.ok("smime-mutt", "import-cert", write(tmp_path / "carol.pem", carol.cert_pem()), input=b"\n")
    assert "trusted: issued by" in trusted.decode() and "mutt can encrypt to it" in trusted.decode()
    unsigned = bob.run("smime-mutt", "pk7out", write(tmp_path / "plain", message()))
    assert unsigned.returncode == 6 and unsigned.stdout == b""


def test_help_lists_examples_and_exit_codes():
    result = run("smime-mutt", "--help")
    assert result.returncode == 0
    for word in (b"smime_verify_command", b"Exit codes", b"verify-opaque", b"import-cert"):
        assert word in result.stdout


# --- the real clients, in tmux ------------------------------------------------------------------

SENT_WAIT = 60


class Client:
    """A throwaway mutt or neomutt: its own HOME, a test muttrc that sources the example
    smime.rc unchanged, smime-mutt on PATH, and a sendmail stub that keeps what it is given."""

    def __init__(self, tmp_path, home, program):
        self.program = program
        self.dir = tmp_path / f"{program}-client"
        for sub in ("bin", "home", "mail", "tmp"):
            os.makedirs(self.dir / sub, exist_ok=True)
        wrapper = self.dir / "bin" / "smime-mutt"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPO}/bin/smime-mutt" "$@"\n')
        wrapper.chmod(0o755)
        self.sent, self.sent_args = self.dir / "sent.eml", self.dir / "sent.args"
        stub = self.dir / "sendmail"
        stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{self.sent_args}.tmp"\ncat > "{self.sent}.tmp"\n'
                        f'mv "{self.sent_args}.tmp" "{self.sent_args}"\nmv "{self.sent}.tmp" "{self.sent}"\n')
        stub.chmod(0o755)
        example = "mutt" if program == "mutt" else "neomutt"
        with open(os.path.join(REPO, "examples", example, "smime.rc"), "rb") as handle:
            (self.dir / "smime.rc").write_bytes(handle.read())  # the example, as it is
        self.rc = self.dir / "test.muttrc"
        self.rc.write_text(
            f"set folder='{self.dir / 'mail'}' mbox_type=mbox tmpdir='{self.dir / 'tmp'}'\n"
            "set sort=mailbox-order\n"
            "set from='bob@example.org' realname='Bob'\n"
            "set autoedit edit_headers editor=true abort_unmodified=no\n"
            f"set sendmail='{stub}' record='' copy=no\n"
            "set wait_key=no\n"
            f"source '{self.dir / 'smime.rc'}'\n")
        self.env = dict(home.env, HOME=str(self.dir / "home"), LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm",
                        PATH=f"{self.dir / 'bin'}:{os.environ['PATH']}")
        self.env.pop("MAIL", None)

    def argv(self, *args):
        return [need(self.program), "-n", "-F", str(self.rc), *args]

    def mbox(self, name, *messages):
        out = b""
        for raw in messages:
            raw = raw.replace(b"\r\n", b"\n")
            raw = re.sub(rb"(?m)^(>*From )", rb">\1", raw)
            out += b"From alice@example.org Mon Nov  2 10:00:00 2026\n" + raw + (b"" if raw.endswith(b"\n") else b"\n")
            out += b"\n"
        path = self.dir / name
        path.write_bytes(out)
        return str(path)

    def wait_sent(self, timeout=SENT_WAIT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.sent.exists() and self.sent_args.exists():
                return self.sent.read_bytes()
            time.sleep(0.2)
        raise AssertionError(f"{self.program} sent nothing within {timeout} s")


@pytest.mark.parametrize("program", ["neomutt", "mutt"])
def test_example_rc_configures_the_client(program, bob, tmp_path):
    """The example, unchanged, turns GPGME off and sets every command mutt runs to smime-mutt."""
    client = Client(tmp_path, bob, program)
    names = ["crypt_use_gpgme", "smime_default_key", "smime_keys", "smime_certificates"] + \
        [f"smime_{c}_command" for c in ("sign", "encrypt", "decrypt", "verify", "verify_opaque", "pk7out",
                                         "get_cert", "get_signer_cert", "get_cert_email", "import_cert")]
    query = [a for name in names for a in ("-Q", name)]
    result = subprocess.run(client.argv(*query), env=client.env, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    values = {}
    for line in result.stdout.decode().splitlines():
        match = re.match(r'(?:set )?(\w+)(?: = |=)"?(.*?)"?$', line)
        if match:
            values[match.group(1)] = match.group(2)
        elif line.endswith(" is unset"):
            values[line.split()[0]] = "no"
    assert values.pop("crypt_use_gpgme") == "no"
    settings = rc_settings(bob)
    for name in ("smime_default_key", "smime_keys", "smime_certificates"):
        assert values.pop(name) == settings[name]
    assert len(values) == 10
    for name, value in values.items():
        sub = name[len("smime_"):-len("_command")].replace("_", "-")
        assert value.startswith(f"smime-mutt {sub} "), (name, value)
        assert bob.run("smime-mutt", sub, "--help").returncode == 0


def _open_first(session, client, mbox, passphrase=None):
    """Start the client on mbox, open its first message, answer the passphrase prompt; the screen."""
    tmux = session(client.argv("-R", "-f", mbox), env=client.env, cwd=str(client.dir))
    tmux.wait_for(r"1 .*(Alice|Dan)")
    tmux.keys("Enter")
    if passphrase is not None:
        tmux.wait_for("Enter S/MIME passphrase:")
        if passphrase:
            tmux.keys(passphrase, literal=True)
        tmux.keys("Enter")
    return tmux


@pytest.fixture
def bob_knows_alice(alice, bob):
    """Bob's home after he saw a signed message from Alice (her certificate, from his trusted CA)."""
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    assert bob.run("smime-import", input=signed).returncode == 0
    return bob


@pytest.mark.parametrize("program", ["neomutt", "mutt"])
def test_client_shows_a_trusted_signature_as_verified(program, alice, bob, tmux_session, tmp_path):
    client = Client(tmp_path, bob, program)
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    tmux = _open_first(tmux_session, client, client.mbox("signed.mbox", signed))
    screen = tmux.wait_for(r"S/MIME signature successfully verified")
    assert "Verification successful" in screen
    assert "[mailseal] ✓ trusted: signed by alice@example.org" in screen
    assert "the plan stands." in screen
    assert "could NOT be verified" not in screen


def test_mutt_shows_an_opaque_signature_as_verified(alice, bob, tmux_session, tmp_path):
    client = Client(tmp_path, bob, "mutt")
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    assert b"the plan stands" not in opaque  # base64 inside the signed-data
    tmux = _open_first(tmux_session, client, client.mbox("opaque.mbox", opaque))
    screen = tmux.wait_for(r"S/MIME signature successfully verified")
    assert "[mailseal] ✓ trusted: signed by alice@example.org" in screen and "the plan stands." in screen


@pytest.mark.parametrize("program", ["neomutt", "mutt"])
def test_client_decrypts_an_encrypted_message(program, alice, bob, tmux_session, tmp_path):
    client = Client(tmp_path, bob, program)
    encrypted = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile,
                         input=message(subject="Secret plan", body="The treasure is under the oak.\n"))
    assert b"treasure" not in encrypted
    tmux = _open_first(tmux_session, client, client.mbox("encrypted.mbox", encrypted), passphrase="secret")
    screen = tmux.wait_for("The treasure is under the oak.")
    assert "The following data is S/MIME encrypted" in screen
    screen = tmux.wait_for(r"S/MIME signature successfully verified")
    assert "Decryption failed" not in screen and "NOT authenticated" not in screen


@pytest.mark.parametrize("program", ["neomutt", "mutt"])
def test_client_decrypts_with_an_empty_passphrase_and_passphrase_command(program, alice, bob, tmux_session,
                                                                         tmp_path):
    """mutt asks even when it need not: Enter, and the account's passphrase_command unlocks the key."""
    bob.write_config(f'[accounts.me]\naddresses = ["bob@example.org"]\npassphrase_command = "cat {bob.passfile}"\n')
    client = Client(tmp_path, bob, program)
    encrypted = alice.ok("smime-encrypt", input=message(body="Only encrypted, not signed.\n"))
    tmux = _open_first(tmux_session, client, client.mbox("encrypted.mbox", encrypted), passphrase="")
    screen = tmux.wait_for("Only encrypted, not signed.")
    assert "The following data is S/MIME encrypted" in screen
    assert "not signed: the content is NOT authenticated" in screen  # what mutt itself would not say


def _from_dan(tmp_path):
    """A message signed by Dan, whose CA nobody trusts."""
    dan_home = _stranger(tmp_path)
    draft = message(frm="dan@example.net", subject="From Dan").replace(b"From: Alice <", b"From: Dan <")
    return dan_home.ok("smime-sign", "--passphrase-file", dan_home.passfile, input=draft)


def test_mutt_does_not_verify_a_stranger(bob, tmux_session, tmp_path):
    client = Client(tmp_path, bob, "mutt")
    tmux = _open_first(tmux_session, client, client.mbox("dan.mbox", _from_dan(tmp_path)))
    screen = tmux.wait_for(r"S/MIME signature could NOT be verified")
    assert "Verification failure" in screen and "smime-trust install" in screen
    assert "the plan stands." in screen  # the message is shown all the same


def test_mutt_sender_check_is_exact(bob, ca, tmux_session, tmp_path):
    """A trusted certificate for alice@example.org.evil.net on mail From alice@example.org:
    openssl's get_cert_email would pass mutt's prefix match; smime-mutt does not."""
    forged = _forged_by_prefix(ca, tmp_path)
    client = Client(tmp_path, bob, "mutt")
    tmux = _open_first(tmux_session, client, client.mbox("forged.mbox", forged))
    screen = tmux.wait_for(r"S/MIME certificate owner does not match sender")
    assert "successfully verified" not in screen


def test_neomutt_sends_signed_and_encrypted(alice, bob_knows_alice, ca, people, tmux_session, tmp_path):
    client = Client(tmp_path, bob_knows_alice, "neomutt")
    draft = client.dir / "draft.eml"
    draft.write_text("From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: Re: The plan\n\n"
                     "Agreed. Meet at the oak.\n")
    tmux = tmux_session(client.argv("-H", str(draft)), env=client.env, cwd=str(client.dir))
    tmux.wait_for(r"Security: *None")
    tmux.keys("S")
    tmux.wait_for(r"\(b\)oth")
    tmux.keys("b")
    tmux.wait_for(r"Security: *Sign, Encrypt \(S/MIME\)")
    tmux.keys("y")
    tmux.wait_for("Enter S/MIME passphrase:")
    tmux.keys("secret", literal=True)
    tmux.keys("Enter")
    sent = client.wait_sent()
    assert "alice@example.org" in client.sent_args.read_text().split()
    assert b"Agreed" not in sent and re.search(rb"smime-type=enveloped-data", sent)
    ossl = peers.OpenSSL(tmp_path)
    ok, inner, err = ossl.decrypt(sent, people["alice"])
    assert ok, err
    assert b"multipart/signed" in inner
    ok, content, err = ossl.verify(inner, ca.pem())  # signed by Bob, under the CA
    assert ok and b"Agreed. Meet at the oak." in content, err
    # and bob is the signer; mailseal agrees, from Alice's side
    assert alice.run("smime-decrypt", "--verify", "--passphrase-file", alice.passfile,
                     input=sent).returncode == 0


def test_mutt_sends_signed(alice, bob, ca, tmux_session, tmp_path):
    client = Client(tmp_path, bob, "mutt")
    draft = client.dir / "draft.eml"
    draft.write_text("From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: Signed\n\nSigned by mutt.\n")
    tmux = tmux_session(client.argv("-H", str(draft)), env=client.env, cwd=str(client.dir))
    tmux.wait_for(r"Security: *None")
    tmux.keys("S")
    tmux.wait_for(r"\(s\)ign")
    tmux.keys("s")
    tmux.wait_for(r"Security: *Sign \(S/MIME\)")
    tmux.keys("y")
    tmux.wait_for("Enter S/MIME passphrase:")
    tmux.keys("secret", literal=True)
    tmux.keys("Enter")
    sent = client.wait_sent()
    ok, content, err = peers.OpenSSL(tmp_path).verify(sent, ca.pem())
    assert ok and b"Signed by mutt." in content, err
    assert b"micalg=sha-256" in sent
    assert alice.run("smime-verify", input=sent).returncode == 0  # trusted, bound to From


def test_mutt_ctrl_k_imports_into_mailseal(bob, tmux_session, tmp_path):
    signed = _from_dan(tmp_path)
    before = json.loads(bob.ok("smime-trust", "list", "--json"))
    assert not [e for e in before["certificates"] if e["address"] == "dan@example.net"]
    client = Client(tmp_path, bob, "mutt")
    tmux = tmux_session(client.argv("-R", "-f", client.mbox("dan.mbox", signed)),
                        env=client.env, cwd=str(client.dir))
    tmux.wait_for(r"1 .*From Dan")
    tmux.keys("C-k")
    screen = tmux.wait_for("Press any key to continue")
    assert "dan@example.net" in screen and "recorded as seen in mail" in screen
    assert "smime-trust install" in screen
    tmux.keys("Enter")
    listing = json.loads(bob.ok("smime-trust", "list", "--json"))
    [dan] = [e for e in listing["certificates"] if e["address"] == "dan@example.net"]
    assert dan["status"] == "untrusted" and dan["sources"] == ["message"]  # seen, never trusted by Ctrl-K
    # mutt's key store (exported by 'smime-mutt rc' at mutt's start) was exported again: it lists
    # the certificate as unverified, so mutt will not use it without asking
    with open(os.path.join(bob.path, "mutt", "certificates", ".index")) as handle:
        lines = [line.split() for line in handle if line.startswith("dan@example.net ")]
    assert lines and all(fields[4] == "u" for fields in lines)


def test_mutt_sends_nothing_when_smime_mutt_refuses(bob_knows_alice, tmux_session, tmp_path):
    """Fail closed: 3DES chosen in mutt's menu is refused, and mutt keeps the message unsent."""
    client = Client(tmp_path, bob_knows_alice, "mutt")
    draft = client.dir / "draft.eml"
    draft.write_text("From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: Weak\n\nNot with DES.\n")
    tmux = tmux_session(client.argv("-H", str(draft)), env=client.env, cwd=str(client.dir))
    tmux.wait_for(r"Security: *None")
    tmux.keys("S")
    tmux.wait_for(r"encrypt \(w\)ith")
    tmux.keys("w")
    tmux.wait_for(r"1: DES, 2: RC2, 3: AES")
    tmux.keys("d")
    tmux.wait_for(r"2: Triple-DES")
    tmux.keys("t")
    tmux.wait_for(r"Encrypt with: des3")
    tmux.keys("y")
    screen = tmux.wait_for("Press any key to continue")
    assert "mailseal never encrypts with des3" in screen
    tmux.keys("Enter")
    tmux.wait_for(r"Mutt: Compose")  # back in the compose menu, the message kept
    time.sleep(1)
    assert not client.sent.exists()
