"""smime-import in its settings: notmuch's post-new hook, mutt's key store, concurrency and faults."""

import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests import peers, pki
from tests.conftest import PROGRAMS, REPO, message, need
from tests.mail import signed_message, write_maildir


def imported(home, *args, input=b""):
    result = home.run("smime-import", "--json", *args, input=input)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def crowd():
    """Forty EC identities under one CA (quick to make), for bulk mail."""
    ca = pki.CA("Crowd CA")
    return ca, [ca.issue(f"user{i:02d}@example.net", kind="ec") for i in range(40)]


# --- notmuch ----------------------------------------------------------------------------------

@pytest.fixture
def wrapper_bin(tmp_path):
    """A bin directory whose smime-import runs the checkout's, as an installed one would."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "smime-import").write_text(f"#!/bin/sh\nexec {sys.executable} {PROGRAMS['smime-import']} \"$@\"\n")
    (bindir / "smime-import").chmod(0o755)
    return bindir


class NotmuchMail:
    """A maildir with a notmuch configuration whose hook directory holds one post-new hook."""

    def __init__(self, tmp_path, home, wrapper_bin, messages, hook):
        maildir = write_maildir(tmp_path / "mail", messages)
        hooks = tmp_path / "hooks"
        hooks.mkdir()
        (hooks / "post-new").symlink_to(hook)
        config = tmp_path / "notmuch-config"
        config.write_text(f"[database]\npath={maildir}\nhook_dir={hooks}\n[new]\ntags=new;unread\n"
                          "[user]\nname=Bob\nprimary_email=bob@example.org\n")
        self.gnupg = tmp_path / "gnupg"
        self.gnupg.mkdir(mode=0o700)
        self.env = dict(home.env, NOTMUCH_CONFIG=str(config), GNUPGHOME=str(self.gnupg),
                        PATH=f"{wrapper_bin}{os.pathsep}{os.environ['PATH']}")

    def run(self, *args):
        result = subprocess.run(args, capture_output=True, env=self.env, timeout=120)
        assert result.returncode == 0, result.stderr
        return result

    def ids(self, query):
        out = self.run("notmuch", "search", "--output=messages", query).stdout.decode().split()
        return sorted(i.removeprefix("id:") for i in out)

    def close(self):
        subprocess.run(["gpgconf", "--homedir", str(self.gnupg), "--kill", "all"], capture_output=True)


@pytest.fixture
def notmuch_mail(tmp_path, wrapper_bin):
    need("notmuch")
    made = []

    def make(home, messages, hook=os.path.join(REPO, "hooks", "notmuch-post-new")):
        made.append(NotmuchMail(tmp_path, home, wrapper_bin, messages, hook))
        return made[-1]

    yield make
    for mail in made:
        mail.close()


def test_notmuch_new_with_the_post_new_hook(bob, people, notmuch_mail):
    stranger = pki.CA("Stranger CA").issue("dan@example.net")
    mail = notmuch_mail(bob, [
        signed_message(people["alice"], message_id="<t@x>"),
        signed_message(stranger, message_id="<u@x>"),
        signed_message(people["carol"], message_id="<b@x>").replace(b"Signed words", b"Forged words"),
        b"From: eve@example.org\nTo: bob@example.org\nMessage-ID: <p@x>\nSubject: hi\n\nplain\n",
    ])
    mail.run("notmuch", "new")
    assert mail.ids("tag:smime-signed") == ["b@x", "t@x", "u@x"]
    assert mail.ids("tag:smime-trusted") == ["t@x"]
    assert mail.ids("tag:smime-untrusted") == ["u@x"]
    assert mail.ids("tag:smime-bad") == ["b@x"]
    assert mail.ids("tag:new") == ["b@x", "p@x", "t@x", "u@x"]  # the hook leaves notmuch's own tags alone
    listed = json.loads(bob.ok("smime-trust", "list", "--json"))["certificates"]
    assert {e["address"]: e["status"] for e in listed} == {"alice@example.org": "trusted",
                                                           "dan@example.net": "untrusted",
                                                           "bob@example.org": "trusted"}


def test_example_post_new_chain_and_saved_searches(bob, people, notmuch_mail, tmp_path):
    """examples/notmuch: the chained post-new hook imports before the rest clears tag:new, and the
    saved search finds the untrusted signer; a failing import does not stop the chain."""
    hook = tmp_path / "post-new"
    example = open(os.path.join(REPO, "examples", "notmuch", "post-new")).read()
    hook.write_text(example + "notmuch tag -new -- tag:new\n")  # the user's own work after ours
    hook.chmod(0o755)
    stranger = pki.CA("Stranger CA").issue("dan@example.net")
    mail = notmuch_mail(bob, [signed_message(people["alice"], message_id="<t@x>"),
                              signed_message(stranger, message_id="<u@x>")], hook=hook)
    mail.run("sh", os.path.join(REPO, "examples", "notmuch", "saved-searches.sh"))
    mail.run("notmuch", "new")
    assert mail.ids("query:smime-untrusted") == ["u@x"]
    assert mail.ids("tag:new") == []  # the user's part of the chain ran after the import
    assert mail.ids("query:smime-encrypted") == []
    bob.ok("smime-trust", "install", "dan@example.net")
    [dan] = json.loads(bob.ok("smime-trust", "list", "dan@example.net", "--json"))["certificates"]
    assert dan["status"] == "trusted"

    # a broken smime-import: reported on stderr, the user's part still runs
    (tmp_path / "mail" / "new" / "later").write_bytes(signed_message(people["carol"], message_id="<c@x>"))
    (tmp_path / "bin" / "smime-import").write_text("#!/bin/sh\nexit 3\n")
    result = mail.run("notmuch", "new")
    assert b"smime-import failed (exit 3)" in result.stderr
    assert mail.ids("tag:new") == [] and mail.ids("tag:smime-signed") == ["t@x", "u@x"]


# --- mutt's key store ----------------------------------------------------------------------------

def mutt_index(path):
    """Parse an .index file the way mutt's smime.c does (whitespace split, defaults for short lines)."""
    entries = []
    with open(path) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 3:
                continue
            fields += ["?", "t", "es"][len(fields) - 3:]
            entries.append(dict(zip(["mailbox", "keyid", "label", "issuer", "trust", "purpose"], fields)))
    return entries


def mutt_find(entries, address):
    """mutt's recipient lookup: purpose e, mailbox equal (case-insensitive), exactly one trusted."""
    found = [e for e in entries if e["mailbox"].lower() == address.lower() and "e" in e["purpose"]]
    trusted = {e["keyid"] for e in found if e["trust"] == "t"}
    return trusted.pop() if len(trusted) == 1 else None


def test_export_for_mutt_reads_back_like_mutt(alice, people, tmp_path):
    imported(alice, input=signed_message(pki.CA("Other").issue("dan@example.net")))  # seen, untrusted
    target = tmp_path / "smime"
    alice.ok("smime-trust", "export", "--mutt", target)
    certs_dir, keys_dir = target / "certificates", target / "keys"
    entries = mutt_index(certs_dir / ".index")
    bob_id = mutt_find(entries, "Bob@Example.org")
    assert bob_id and (certs_dir / bob_id).read_bytes() == people["bob"].cert_pem()
    assert [e["trust"] for e in entries if e["mailbox"] == "dan@example.net"] == ["u"]
    assert mutt_find(entries, "dan@example.net") is None  # mutt would not use it silently
    [key] = mutt_index(keys_dir / ".index")
    assert key["mailbox"] == "alice@example.org" and (keys_dir / key["keyid"]).exists()
    assert oct((keys_dir / key["keyid"]).stat().st_mode & 0o777) == "0o600"
    assert (certs_dir / key["issuer"]).read_bytes() == people["alice"].ca.pem()
    # what mutt's smime_encrypt_command and smime_sign_command would do with these paths
    ossl = need("openssl")
    (tmp_path / "msg").write_bytes(b"Content-Type: text/plain\n\nvia mutt\n")
    encrypted = peers.sh(ossl, "cms", "-encrypt", "-aes256", "-outform", "DER", "-in", tmp_path / "msg",
                         certs_dir / bob_id, certs_dir / key["keyid"]).stdout
    ok, plain, err = peers.OpenSSL(tmp_path).decrypt(encrypted, people["bob"], inform="DER")
    assert ok and b"via mutt" in plain, err
    signature = peers.sh(ossl, "smime", "-sign", "-md", "sha256", "-signer", certs_dir / key["keyid"],
                         "-inkey", keys_dir / key["keyid"], "-passin", "stdin", "-in", tmp_path / "msg",
                         "-certfile", certs_dir / key["issuer"], "-outform", "DER", input=b"secret\n").stdout
    assert signature.startswith(b"\x30")


def test_mutt_store_follows_every_change(alice, people, tmp_path):
    target = tmp_path / "smime"
    alice.write_config(f'[mutt]\nexport_dir = "{target}"\n')
    carol = people["carol"]
    alice.install(carol.cert_pem(), tmp_path, "carol.pem")  # a change: exported
    assert mutt_find(mutt_index(target / "certificates" / ".index"), "carol@example.org")
    alice.ok("smime-trust", "remove", "carol@example.org")
    assert mutt_find(mutt_index(target / "certificates" / ".index"), "carol@example.org") is None
    imported(alice, input=signed_message(people["carol"]))  # learned again from mail, CA trusted
    assert mutt_find(mutt_index(target / "certificates" / ".index"), "carol@example.org") is None  # removed wins
    dan = pki.CA("Other").issue("dan@example.net")
    imported(alice, input=signed_message(dan))
    assert [e["trust"] for e in mutt_index(target / "certificates" / ".index") if e["mailbox"] == "dan@example.net"] \
        == ["u"]


# --- concurrency and faults ---------------------------------------------------------------------

def test_a_large_batch_on_every_core_ends_as_one_process_would(make_home, crowd, tmp_path):
    """A maildir of 240 messages is harvested by worker processes; the trust database ends as a
    single process leaves it, the counts add up, and importing again changes nothing."""
    ca, people = crowd
    start = pki.NOW - datetime.timedelta(hours=1)
    mails = [signed_message(people[i % 40], when=start + datetime.timedelta(seconds=i), message_id=f"<bulk-{i}@x>")
             for i in reversed(range(240))]  # newest first: later files are older news
    mails.append(b"From: eve@example.org\nSubject: plain\n\nno signature\n")
    maildir = write_maildir(tmp_path / "mail", mails)
    listings = {}
    for jobs in ("1", "2"):
        home = make_home("home-" + jobs)
        home.ok("smime-trust", "install", "--ca", "/dev/stdin", input=ca.pem())
        summary = imported(home, "--maildir", maildir, "--jobs", jobs)
        assert summary["messages"] == 241 and summary["skipped"] == 1 and summary["error"] == 0
        assert summary["imported"] == 40 and summary["verdicts"] == {"trusted": 240, "unsigned": 1}
        listings[jobs] = json.loads(home.ok("smime-trust", "list", "--json"))
        again = imported(home, "--maildir", maildir, "--jobs", jobs)
        assert again["unchanged"] == 240 and again["imported"] == again["updated"] == 0
    assert listings["1"]["certificates"] == listings["2"]["certificates"]
    newest = {e["address"]: e["message_id"] for e in listings["2"]["certificates"]}
    assert newest["user00@example.net"] == "<bulk-200@x>" and len(newest) == 40


def test_eight_importers_at_once_lose_nothing(bob, crowd):
    ca, people = crowd
    bob.ok("smime-trust", "install", "--ca", "/dev/stdin", input=ca.pem())
    procs = [subprocess.Popen([sys.executable, PROGRAMS["smime-import"], "--json"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bob.env) for _ in range(8)]
    for proc, person in zip(procs, people):
        proc.stdin.write(signed_message(person))
        proc.stdin.close()
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        assert json.loads(proc.stdout.read())["imported"] == 1
    listed = json.loads(bob.ok("smime-trust", "list", "--json"))["certificates"]
    assert {e["address"] for e in listed} >= {p.email for p in people[:8]}
    assert sum(1 for e in json.loads(bob.ok("smime-trust", "log", "--json", "--limit", "100"))
               if e["action"] == "import") == 8


def test_verifying_while_an_import_writes(bob, alice, crowd, tmp_path):
    ca, people = crowd
    box = write_maildir(tmp_path / "Mail", [signed_message(p, when=pki.NOW - k * pki.DAY / 100)
                                            for k in range(6) for p in people])
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    importer = subprocess.Popen([sys.executable, PROGRAMS["smime-import"], "--maildir", box, "--quiet"],
                                env=bob.env, stderr=subprocess.PIPE)
    checks = 0
    try:
        while importer.poll() is None or checks < 3:
            result = bob.run("smime-verify", "--json", input=signed)
            assert result.returncode == 0, result.stderr
            checks += 1
    finally:
        importer.wait(timeout=300)
    assert importer.returncode == 0, importer.stderr.read()
    assert checks >= 3


def test_import_killed_halfway_leaves_the_database_consistent(bob, crowd, tmp_path):
    ca, people = crowd
    messages = [signed_message(p, when=pki.NOW - k * pki.DAY / 100) for k in range(10) for p in people]
    box = write_maildir(tmp_path / "Mail", messages)
    db = os.path.join(bob.path, "trust.db")
    importer = subprocess.Popen([sys.executable, PROGRAMS["smime-import"], "--maildir", box, "--quiet"],
                                env=bob.env)
    deadline = time.time() + 120
    while time.time() < deadline:
        conn = sqlite3.connect(db, timeout=30)
        done = conn.execute("SELECT count(*) FROM events WHERE action = 'import'").fetchone()[0]
        conn.close()
        if done >= 10:
            break
        time.sleep(0.05)
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # each message is one transaction: a binding from mail exists exactly when its import event does
        bound = conn.execute("SELECT count(*) FROM bindings WHERE source = 'message'").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events WHERE action = 'import'").fetchone()[0]
        assert bound == events and 10 <= bound < 40 + 1
    finally:
        conn.close()
    summary = imported(bob, "--maildir", box)  # the rest, and nothing twice
    assert summary["messages"] == 400 and summary["error"] == 0
    listed = json.loads(bob.ok("smime-trust", "list", "--json"))["certificates"]
    assert len([e for e in listed if e["address"].endswith("@example.net")]) == 40


@pytest.mark.parametrize("program,args", [("smime-import", ()), ("smime-trust", ("list",)),
                                          ("smime-trust", ("status", "a@example.org"))])
def test_corrupt_database_is_a_clear_error(alice, program, args):
    alice.corrupt_database(b"garbage " * 512)
    result = alice.run(program, *args, input=signed_message(pki.CA().issue("x@example.org")))
    assert result.returncode == 40
    assert b"corrupt" in result.stderr and b"Traceback" not in result.stderr
