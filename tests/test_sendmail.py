"""smime-sendmail: the sending policy in front of a real sendmail (here a stub that keeps what it gets)."""

import json
import os
import subprocess

import pytest

from tests import peers
from tests.conftest import message, need


class Stub:
    """A sendmail that saves each message and its arguments (and can be told to fail)."""

    def __init__(self, directory, fail=False):
        self.dir = directory
        self.path = os.path.join(directory, "sendmail-stub")
        with open(self.path, "w") as handle:
            handle.write("#!/bin/sh\nn=$(ls \"$(dirname \"$0\")\" | grep -c '[.]args$')\n"
                         "out=\"$(dirname \"$0\")/sent-$n\"\nprintf '%s\\n' \"$@\" > \"$out.args\"\ncat > \"$out\"\n"
                         + ("echo 'relay says no: 550 mailbox unavailable' >&2\nexit 1\n" if fail else ""))
        os.chmod(self.path, 0o755)

    def sent(self):
        """[(args, message)] in the order they were handed over."""
        out = []
        n = 0
        while os.path.exists(os.path.join(self.dir, f"sent-{n}")):
            with open(os.path.join(self.dir, f"sent-{n}.args")) as handle:
                args = handle.read().split("\n")[:-1]
            with open(os.path.join(self.dir, f"sent-{n}"), "rb") as handle:
                out.append((args, handle.read()))
            n += 1
        return out


@pytest.fixture
def stub(tmp_path):
    directory = tmp_path / "outbox"
    directory.mkdir()
    return Stub(str(directory))


def account(home, **settings):
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    home.write_config(f'[accounts.me]\naddresses = ["alice@example.org"]\n{lines}')


def send(home, stub, msg, *args):
    return home.run("smime-sendmail", "--sendmail", stub.path, "--passphrase-file", home.passfile, "--json",
                    *args, input=msg)


def kind(raw):
    head = raw.split(b"\n\n", 1)[0]
    if b"smime-type=enveloped-data" in head:
        return "encrypted"
    if b"multipart/signed" in head:
        return "signed"
    return "plain"


@pytest.mark.parametrize("defaults,lock,expected", [
    ({"sign_by_default": True, "encrypt_by_default": False}, None, "signed"),
    ({"sign_by_default": False, "encrypt_by_default": False}, None, "plain"),
    ({"sign_by_default": True, "encrypt_by_default": True}, None, "encrypted"),
    ({"sign_by_default": True, "encrypt_by_default": True}, "no-encrypt", "signed"),
    ({"sign_by_default": True, "encrypt_by_default": False}, "no-sign", "plain"),
    ({"sign_by_default": False, "encrypt_by_default": False}, "encrypt, no-sign", "encrypted"),
    ({"sign_by_default": False, "encrypt_by_default": False}, "sign", "signed"),
])
def test_account_defaults_and_the_lock(alice, stub, defaults, lock, expected):
    account(alice, **defaults)
    msg = message(extra_headers=f"X-Mailseal: {lock}\n" if lock else "")
    result = send(alice, stub, msg, "-oi", "--", "bob@example.org")
    assert result.returncode == 0, result.stderr
    [(args, sent)] = stub.sent()
    assert args == ["-oi", "--", "bob@example.org"]
    assert kind(sent) == expected
    assert b"X-Mailseal" not in sent
    assert (b"the plan stands" in sent) is (expected != "encrypted")


def test_what_is_sent_verifies_and_decrypts_with_openssl(alice, bob, people, ca, stub, tmp_path):
    """Signed then encrypted, the lock header gone inside too; openssl reads it as Bob."""
    account(alice, sign_by_default=True, encrypt_by_default=True)
    result = send(alice, stub, message(extra_headers="X-Mailseal: sign\n"), "bob@example.org")
    assert result.returncode == 0, result.stderr
    [(_, sent)] = stub.sent()
    openssl = peers.OpenSSL(tmp_path)
    ok, inner, err = openssl.decrypt(sent, people["bob"])
    assert ok, err
    assert b"X-Mailseal" not in inner and b"multipart/signed" in inner
    ok, content, err = openssl.verify(inner, ca.pem())
    assert ok, err
    assert b"the plan stands" in content
    plain = bob.ok("smime-decrypt", "--verify", "--passphrase-file", bob.passfile, input=sent)
    assert b"X-Mailseal" not in plain


def test_a_reply_to_an_encrypted_message_is_encrypted(alice, bob, people, stub, tmp_path):
    """Bob decrypts Alice's encrypted message; his reply is encrypted although his account says not
    to, unless his lock says no-encrypt."""
    encrypted = alice.ok("smime-encrypt", input=message())
    bob.ok("smime-decrypt", "--passphrase-file", bob.passfile, input=encrypted)  # mailseal records it
    bob.install(people["alice"].cert_pem(), tmp_path, "alice.pem")
    bob.write_config('[accounts.bob]\naddresses = ["bob@example.org"]\nsign_by_default = true\n'
                     'encrypt_by_default = false\n')
    reply = (b"From: Bob <bob@example.org>\nTo: alice@example.org\nSubject: Re: The plan\n"
             b"In-Reply-To: <plan-1@example.org>\nReferences: <plan-1@example.org>\n\nAgreed.\n")
    assert send(bob, stub, reply, "alice@example.org").returncode == 0
    assert kind(stub.sent()[-1][1]) == "encrypted"
    why = json.loads(send(bob, stub, reply, "alice@example.org").stdout)["why"]
    assert any("<plan-1@example.org>" in w for w in why)
    locked = reply.replace(b"\n\nAgreed", b"\nX-Mailseal: no-encrypt\n\nAgreed")
    assert send(bob, stub, locked, "alice@example.org").returncode == 0
    assert kind(stub.sent()[-1][1]) == "signed"
    unrelated = reply.replace(b"<plan-1@example.org>", b"<other@example.org>")
    assert send(bob, stub, unrelated, "alice@example.org").returncode == 0
    assert kind(stub.sent()[-1][1]) == "signed"


def test_a_reply_found_encrypted_in_notmuch(alice, bob, stub, tmp_path, people):
    """The original was never decrypted by mailseal, but notmuch holds it, encrypted."""
    need("notmuch")
    encrypted = alice.ok("smime-encrypt", input=message().replace(b"<plan-1@", b"<plan-nm@"))
    maildir = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1:2,S").write_bytes(encrypted)
    config = tmp_path / "notmuch-config"
    config.write_text(f"[database]\npath={maildir}\n[new]\ntags=new\n")
    env = dict(bob.env, NOTMUCH_CONFIG=str(config))
    subprocess.run(["notmuch", "new"], env=env, check=True, capture_output=True)
    bob.install(people["alice"].cert_pem(), tmp_path, "alice.pem")
    bob.write_config('[accounts.bob]\naddresses = ["bob@example.org"]\nencrypt_by_default = false\n')
    reply = (b"From: bob@example.org\nTo: alice@example.org\nSubject: Re\nIn-Reply-To: <plan-nm@example.org>\n\nok\n")
    result = subprocess.run([*_program("smime-sendmail"), "--sendmail", stub.path, "--passphrase-file",
                             bob.passfile, "alice@example.org"], input=reply, env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert kind(stub.sent()[-1][1]) == "encrypted"


def _program(name):
    import sys

    from tests.conftest import PROGRAMS

    return [sys.executable, PROGRAMS[name]]


def test_a_recipient_without_certificate_stops_everything(alice, stub):
    account(alice, encrypt_by_default=True)
    result = send(alice, stub, message(to="bob@example.org, carol@example.org", cc="dan@example.net"),
                  "bob@example.org", "carol@example.org", "dan@example.net")
    assert result.returncode == 30
    assert stub.sent() == []  # nothing reached sendmail: the client keeps the draft
    stderr = result.stderr.decode()
    assert "carol@example.org: no certificate on record" in stderr and "dan@example.net:" in stderr
    assert "bob@example.org:" not in stderr


def test_bcc_recipients_get_copies_of_their_own(alice, people, ca, stub, tmp_path):
    carol = people["carol"]
    alice.install(carol.cert_pem(), tmp_path, "carol.pem")
    account(alice, encrypt_by_default=True, sign_by_default=True)
    msg = message(extra_headers="Bcc: carol@example.org\n")
    result = send(alice, stub, msg, "-oi", "-f", "alice@example.org", "--", "bob@example.org", "carol@example.org")
    assert result.returncode == 0, result.stderr
    (main_args, main), (bcc_args, bcc) = stub.sent()
    assert main_args == ["-oi", "-f", "alice@example.org", "--", "bob@example.org"]
    assert bcc_args == ["-oi", "-f", "alice@example.org", "--", "carol@example.org"]
    openssl = peers.OpenSSL(tmp_path)
    ok, inner_main, _ = openssl.decrypt(main, people["bob"])
    assert ok and not openssl.decrypt(main, carol)[0]
    ok, inner_bcc, _ = openssl.decrypt(bcc, carol)
    assert ok and not openssl.decrypt(bcc, people["bob"])[0]
    for head in (main.split(b"\n\n", 1)[0], bcc.split(b"\n\n", 1)[0], inner_main, inner_bcc):
        assert b"Bcc:" not in head  # neither outside nor among the protected header fields


def test_recipients_from_the_header_when_none_are_given(alice, stub):
    account(alice, sign_by_default=False)
    assert send(alice, stub, message(cc="carol@example.org"), "-t").returncode == 0
    [(args, _)] = stub.sent()
    assert args == ["-oi", "--", "bob@example.org", "carol@example.org"]


def test_sendmail_failure_is_reported(alice, tmp_path):
    stub = Stub(str(tmp_path), fail=True)
    account(alice, sign_by_default=True)
    result = send(alice, stub, message(), "bob@example.org")
    assert result.returncode == 46
    assert b"relay says no: 550 mailbox unavailable" in result.stderr and b"nothing was sent" in result.stderr


@pytest.mark.parametrize("lock,error", [("encrypt please", "unknown word 'please'"),
                                        ("encrypt no-encrypt", "both encrypt and no-encrypt")])
def test_a_bad_lock_sends_nothing(alice, stub, lock, error):
    result = send(alice, stub, message(extra_headers=f"X-Mailseal: {lock}\n"), "bob@example.org")
    assert result.returncode == 10 and error in result.stderr.decode()
    assert stub.sent() == []


def test_save_sent_stores_what_was_really_sent(alice, stub, tmp_path):
    need("notmuch")
    maildir = tmp_path / "mail"
    maildir.mkdir()
    config = tmp_path / "notmuch-config"
    config.write_text(f"[database]\npath={maildir}\n[new]\ntags=new\n")
    env = dict(alice.env, NOTMUCH_CONFIG=str(config))
    subprocess.run(["notmuch", "new"], env=env, check=True, capture_output=True)
    account(alice, encrypt_by_default=True)
    result = subprocess.run([*_program("smime-sendmail"), "--sendmail", stub.path, "--save-sent",
                             "--passphrase-file", alice.passfile, "bob@example.org"],
                            input=message(), env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    files = subprocess.run(["notmuch", "search", "--output=files", "tag:sent"], env=env, check=True,
                           capture_output=True).stdout.split()
    assert len(files) == 1 and b"/Sent/" in files[0]
    assert open(files[0], "rb").read() == stub.sent()[0][1]  # the encrypted message, not the draft


def test_no_account_sends_as_it_came(home, stub):
    result = send(home, stub, message(frm="zed@example.org"), "bob@example.org")
    assert result.returncode == 0, result.stderr
    assert kind(stub.sent()[0][1]) == "plain"
