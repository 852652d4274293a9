"""The trust database, smime-import and the iOS trust flow (list, show, install, remove, status)."""

import json
import mailbox
import os
import sqlite3

import pytest

from tests import pki
from tests.conftest import message
from tests.mail import signed_message, write_maildir

HOUR = pki.DAY / 24


def js(home, *args, code=0):
    result = home.run("smime-trust", *args, "--json")
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def imported(home, *args, input=b""):
    result = home.run("smime-import", "--json", *args, input=input)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def verdict(home, raw):
    result = home.run("smime-verify", "--json", input=raw)
    return json.loads(result.stdout)["verdict"], result.returncode


def standing(home, address):
    return {e["fingerprint_sha256"]: e for e in js(home, "list", address)["certificates"]}


def fp(person):
    from mailseal.certs import fingerprint

    return fingerprint(person.cert)


def bindings_and_events(home):
    conn = sqlite3.connect(os.path.join(home.path, "trust.db"))
    try:
        return (conn.execute("SELECT * FROM bindings ORDER BY id").fetchall(),
                conn.execute("SELECT * FROM events ORDER BY id").fetchall())
    finally:
        conn.close()


@pytest.fixture
def reader(bob):
    return bob  # Bob's home: his identity and the CA trusted


# --- smime-import: what is learned, and what is not -----------------------------------

def test_import_learns_the_signer_with_capabilities_and_time(reader, people):
    raw = signed_message(people["alice"], when=pki.NOW - HOUR, message_id="<m1@example.org>")
    summary = imported(reader, input=raw)
    assert summary["imported"] == 1 and summary["verdicts"] == {"trusted": 1}
    entry = standing(reader, "alice@example.org")[fp(people["alice"])]
    assert entry["status"] == "trusted" and entry["sources"] == ["message"]
    assert entry["usable_for_encryption"] is True
    assert entry["message_id"] == "<m1@example.org>"
    assert entry["capabilities"][:3] == ["aes256_gcm", "aes128_gcm", "aes256_cbc"]
    assert entry["first_seen"] == entry["last_seen"] == (pki.NOW - HOUR).isoformat()
    # and now Bob can encrypt to Alice without installing anything (her CA is trusted)
    assert js(reader, "status", "alice@example.org")[0]["ok"] is True


@pytest.mark.parametrize("case", ["bad", "mismatch", "unsigned-with-certificate", "partial"])
def test_import_learns_nothing_from(reader, people, case):
    alice = people["alice"]
    if case == "bad":
        raw = signed_message(alice).replace(b"Signed words.", b"Forged words.")
    elif case == "mismatch":
        raw = signed_message(alice, frm="boss@example.org")
    elif case == "unsigned-with-certificate":
        raw = ("From: alice@example.org\nTo: bob@example.org\nSubject: my cert\nMIME-Version: 1.0\n"
               "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nmy new cert\n--b\n"
               "Content-Type: application/pkix-cert; name=alice.cer\nContent-Transfer-Encoding: base64\n\n").encode() \
            + __import__("base64").encodebytes(alice.cert.public_bytes(__import__(
                "cryptography").hazmat.primitives.serialization.Encoding.DER)) + b"--b--\n"
    else:  # a mailing list wrapped Alice's signed part in an unsigned multipart/mixed with a footer
        head, body = signed_message(alice).split(b"\n\n", 1)
        signed_part = b"Content-Type:" + head.split(b"Content-Type:", 1)[1] + b"\n\n" + body
        raw = (b"From: alice@example.org\nTo: list@example.org\nMIME-Version: 1.0\n"
               b"Content-Type: multipart/mixed; boundary=outer\n\n--outer\n" + signed_part
               + b"\n--outer\nContent-Type: text/plain\n\n-- list footer\n--outer--\n")
        report = json.loads(reader.run("smime-verify", "--json", input=raw).stdout)
        assert report["verdict"] == "unsigned" and report["parts"][0]["verdict"] == "trusted"
    summary = imported(reader, input=raw)
    assert summary["imported"] == 0 and summary["skipped"] == 1
    assert js(reader, "list", "alice@example.org")["certificates"] == []


def test_importing_twice_changes_nothing(reader, people, tmp_path):
    box = write_maildir(tmp_path / "Mail", [signed_message(people[n], when=pki.NOW - k * HOUR)
                                            for k, n in enumerate(["alice", "carol", "alice"], 1)])
    first = imported(reader, "--maildir", box)
    assert first["messages"] == 3 and first["imported"] == 2 and first["updated"] == 1
    before = bindings_and_events(reader)
    again = imported(reader, "--maildir", box)
    assert again["unchanged"] == 3 and again["imported"] == again["updated"] == 0
    assert bindings_and_events(reader) == before


def test_mbox_files_and_stdin(reader, people, tmp_path):
    box = mailbox.mbox(str(tmp_path / "archive.mbox"))
    box.add(signed_message(people["alice"]))
    box.add(signed_message(people["carol"]))
    box.close()
    assert imported(reader, "--mbox", tmp_path / "archive.mbox")["imported"] == 2
    (tmp_path / "one.eml").write_bytes(signed_message(pki.CA().issue("dan@example.org")))
    assert imported(reader, tmp_path / "one.eml")["verdicts"] == {"untrusted": 1}


def test_a_broken_message_is_counted_not_fatal(reader, people, tmp_path):
    box = write_maildir(tmp_path / "Mail", [b"not a message at all\n", signed_message(people["alice"])])
    summary = imported(reader, "--maildir", box)
    assert summary["error"] == 1 and summary["imported"] == 1
    assert "not a mail message" in summary["errors"][0]["reason"]
    single = reader.run("smime-import", input=b"not a message\n")
    assert single.returncode == 10


# --- newest evidence wins, expired never blocks -----------------------------------------------

def test_newest_signing_time_wins_for_encryption(reader, ca):
    old = ca.issue("alice@example.org", not_before=pki.NOW - 300 * pki.DAY)
    new = ca.issue("alice@example.org", not_before=pki.NOW - 200 * pki.DAY)  # both valid, both trusted
    imported(reader, input=signed_message(new, when=pki.NOW - 2 * HOUR))
    imported(reader, input=signed_message(old, when=pki.NOW - 5 * HOUR))  # older mail, read later
    assert js(reader, "status", "alice@example.org")[0]["fingerprint_sha256"] == fp(new)
    imported(reader, input=signed_message(old, when=pki.NOW - HOUR))  # she went back to the old one
    assert js(reader, "status", "alice@example.org")[0]["fingerprint_sha256"] == fp(old)


def test_expired_certificate_never_blocks_a_newer_valid_one(reader, ca, tmp_path):
    valid = ca.issue("alice@example.org")
    lapsed = ca.issue("alice@example.org", not_before=pki.NOW - 100 * pki.DAY, not_after=pki.NOW - pki.DAY)
    imported(reader, input=signed_message(valid, when=pki.NOW - 10 * pki.DAY))
    imported(reader, input=signed_message(lapsed, when=pki.NOW - 2 * pki.DAY))  # newer mail, now expired
    status = js(reader, "status", "alice@example.org")[0]
    assert status["ok"] and status["fingerprint_sha256"] == fp(valid)
    entries = standing(reader, "alice@example.org")
    assert entries[fp(lapsed)]["problem"].startswith("certificate expired")


def test_encryption_key_preference_names_a_separate_certificate(reader, ca):
    signing = ca.issue("alice@example.org", key_usage="sign")
    encryption = ca.issue("alice@example.org", key_usage="encrypt")
    imported(reader, input=signed_message(signing, encryption_cert=encryption.cert))
    status = js(reader, "status", "alice@example.org")[0]
    assert status["ok"] and status["fingerprint_sha256"] == fp(encryption)


# --- certificate change detection -------------------------------------------------------------

def test_changed_certificate_is_flagged_and_not_used(reader, people, tmp_path):
    alice = people["alice"]
    imported(reader, input=signed_message(alice, when=pki.NOW - 2 * HOUR))
    impostor = pki.self_signed("alice@example.org")
    raw = signed_message(impostor, when=pki.NOW - HOUR)
    assert verdict(reader, raw) == ("changed", 4)
    report = json.loads(reader.run("smime-verify", "--json", input=raw).stdout)
    assert "another trusted certificate" in report["reasons"][0] and fp(alice)[:16] in report["reasons"][0]
    summary = imported(reader, input=raw)
    assert summary["events"] == {"import": 1, "changed": 1}
    # encryption keeps using the known certificate
    assert js(reader, "status", "alice@example.org")[0]["fingerprint_sha256"] == fp(alice)
    assert any(e["action"] == "changed" for e in js(reader, "log"))
    # until the user installs the new one (after checking it with Alice)
    reader.ok("smime-trust", "install", "alice@example.org")
    assert verdict(reader, raw) == ("trusted", 0)
    assert js(reader, "status", "alice@example.org")[0]["fingerprint_sha256"] == fp(impostor)


def test_renewal_chaining_to_the_anchor_replaces_the_old_certificate(reader, people, ca):
    old = people["alice"]
    imported(reader, input=signed_message(old, when=pki.NOW - 2 * pki.DAY))
    renewed = ca.issue("alice@example.org", not_before=pki.NOW - HOUR)
    raw = signed_message(renewed, when=pki.NOW - 0.5 * HOUR)
    assert verdict(reader, raw) == ("trusted", 0)
    summary = imported(reader, input=raw)
    assert summary["events"] == {"import": 1, "renewal": 1}
    assert js(reader, "status", "alice@example.org")[0]["fingerprint_sha256"] == fp(renewed)
    renewal = [e for e in js(reader, "log") if e["action"] == "renewal"][0]
    assert fp(old) in renewal["detail"]


# --- the iOS flow: view, install, remove -------------------------------------------------------

def test_install_and_remove_turn_the_verdict(make_home, people):
    home = make_home("nobody-trusted")  # no CA: Alice is unknown here
    raw = signed_message(people["alice"])
    assert verdict(home, raw) == ("untrusted", 1)
    imported(home, input=raw)
    status = js(home, "status", "alice@example.org", code=30)[0]
    assert not status["ok"] and "smime-trust install alice@example.org" in status["reason"]
    done = js(home, "install", "alice@example.org")
    assert done[0]["addresses"] == ["alice@example.org"]
    assert verdict(home, raw) == ("trusted", 0)
    assert js(home, "status", "alice@example.org")[0]["ok"]
    js(home, "remove", "alice@example.org")
    assert verdict(home, raw) == ("untrusted", 1)
    status = js(home, "status", "alice@example.org", code=30)[0]
    assert "removed by you" in status["reason"]
    entry = standing(home, "alice@example.org")[fp(people["alice"])]
    assert entry["status"] == "removed" and set(entry["sources"]) == {"message", "user"}  # history kept
    actions = [e["action"] for e in js(home, "log")]
    assert actions[:3] == ["remove", "install", "import"]


def test_removed_certificate_stays_untrusted_even_if_its_ca_is_trusted(reader, people):
    raw = signed_message(people["alice"])
    imported(reader, input=raw)
    js(reader, "remove", fp(people["alice"])[:20])
    assert verdict(reader, raw) == ("untrusted", 1)
    assert not js(reader, "status", "alice@example.org", code=30)[0]["ok"]
    js(reader, "install", fp(people["alice"])[:20])
    assert verdict(reader, raw) == ("trusted", 0)


def test_show_is_the_view_certificate_screen(reader, people):
    imported(reader, input=signed_message(people["alice"], message_id="<show@example.org>"))
    info = js(reader, "show", "alice@example.org")
    assert info["emails"] == ["alice@example.org"] and info["fingerprint_sha256"] == fp(people["alice"])
    assert info["chain"][-1] == people["alice"].ca.cert.subject.rfc4514_string()
    assert info["key_usage"] == ["digital_signature", "key_encipherment"]
    assert info["extended_key_usage"] == ["emailProtection"]
    assert info["bindings"][0]["message_id"] == "<show@example.org>"
    assert info["bindings"][0]["reason"].startswith("issued by mailseal Test CA")
    text = reader.ok("smime-trust", "show", fp(people["alice"])[:12]).decode()
    assert "SHA-256" in text and "emailProtection" in text and "<show@example.org>" in text


def test_status_names_every_blocker(reader, people, ca, tmp_path):
    lapsed = ca.issue("old@example.org", not_before=pki.NOW - 100 * pki.DAY, not_after=pki.NOW - pki.DAY)
    reader.install(lapsed.cert_pem(), tmp_path, "old.pem")
    imported(reader, input=signed_message(people["alice"]))
    result = reader.run("smime-trust", "status", "alice@example.org", "old@example.org", "nobody@example.org")
    assert result.returncode == 30
    text = result.stdout.decode()
    assert "🔒 alice@example.org" in text and "🔓 old@example.org: certificate expired" in text
    assert "🔓 nobody@example.org: no certificate on record" in text
    assert reader.run("smime-trust", "status", "alice@example.org").returncode == 0


def test_unknown_fingerprint_and_address(reader):
    assert reader.run("smime-trust", "show", "nobody@example.org").returncode == 44
    assert reader.run("smime-trust", "remove", "deadbeef").returncode == 44


def test_encrypting_uses_harvested_certificates(reader, make_home, people, ca, tmp_path):
    """Bob learned Alice's certificate from her signed mail and encrypts to her: she can read it."""
    imported(reader, input=signed_message(people["alice"]))
    reply = message(frm="bob@example.org", to="alice@example.org")
    encrypted = reader.ok("smime-encrypt", input=reply)
    alice = make_home("alice-reads")
    os.makedirs(tmp_path / "a")
    alice.import_identity(people["alice"], tmp_path / "a")
    result = alice.run("smime-decrypt", "--passphrase-file", alice.passfile, input=encrypted)
    assert result.returncode == 0 and b"the plan stands" in result.stdout
