"""Directory lookup against a real slapd: certificates for colleagues who never wrote to you."""

import datetime
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from tests import peers, pki
from tests.conftest import message
from tests.ldap_server import READER, READER_PASSWORD, SUFFIX, Slapd

DAY = datetime.timedelta(days=1)


def der(person):
    return person.cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    """The directory: a slapd holding the people of example.org, issued by the session CA or others."""
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def staff(org, ca):
    """Entries: one certificate, several, expired only, none, malformed, a PKCS#7 bundle,
    a certificate for another address, one from an unknown CA."""
    stranger_ca = pki.CA("Stranger CA")
    p = {
        "dora": ca.issue("dora@example.org"),
        "ed_old": ca.issue("ed@example.org", not_before=pki.NOW - 300 * DAY),
        "ed_new": ca.issue("ed@example.org", not_before=pki.NOW - 2 * DAY),
        "ed_sign_only": ca.issue("ed@example.org", not_before=pki.NOW - DAY, key_usage="sign"),
        "ed_expired": ca.issue("ed@example.org", not_before=pki.NOW - 400 * DAY, not_after=pki.NOW - 30 * DAY),
        "fay": ca.issue("fay@example.org", not_before=pki.NOW - 400 * DAY, not_after=pki.NOW - 30 * DAY),
        "hal": ca.issue("hal@example.org"),
        "ivy_other": ca.issue("someone@example.org"),
        "jo": stranger_ca.issue("jo@example.org"),
    }
    org.person("dora", "dora@example.org", certificates=[der(p["dora"])])
    org.person("ed", "ed@example.org", certificates=[der(p[k]) for k in ("ed_old", "ed_new", "ed_sign_only",
                                                                          "ed_expired")])
    org.person("fay", "fay@example.org", certificates=[der(p["fay"])])
    org.person("gus", "gus@example.org")
    org.person("gil", "gil@example.org", smime=[b"\x30\x03garbage, not a certificate"])
    bundle = pkcs7.serialize_certificates([p["hal"].cert, ca.cert], serialization.Encoding.DER)
    org.person("hal", "hal@example.org", smime=[bundle])
    org.person("ivy", "ivy@example.org", certificates=[der(p["ivy_other"])])
    org.person("jo", "jo@example.org", certificates=[der(p["jo"])])
    return p


def directory_config(org, **settings):
    table = {"url": org.url, "base": SUFFIX, "timeout": 3, **settings}
    lines = [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return ('[accounts.work]\naddresses = ["alice@example.org"]\n\n[accounts.work.directory]\n'
            + "\n".join(lines) + "\n")


@pytest.fixture
def colleague(alice, org, staff):
    """Alice, whose account's directory is the slapd."""
    alice.write_config(directory_config(org))
    return alice


def fingerprint(person):
    from mailseal import certs

    return certs.fingerprint(person.cert)


def lookup(home, *addresses, ok=True):
    result = home.run("smime-trust", "lookup", "--json", *addresses)
    if ok:
        assert result.returncode == 0, result.stderr
    return result, json.loads(result.stdout) if result.stdout else None


# --- what the directory holds ----------------------------------------------------------------

def test_lookup_shows_what_the_directory_holds(colleague, staff):
    _, found = lookup(colleague, "dora@example.org", "ed@example.org", "fay@example.org", "gus@example.org",
                      "gil@example.org", "hal@example.org", "ivy@example.org", "jo@example.org")
    by = {entry["address"]: entry for entry in found}
    [dora] = by["dora@example.org"]["certificates"]
    assert dora["fingerprint_sha256"] == fingerprint(staff["dora"]) and dora["usable"]
    assert len(by["ed@example.org"]["certificates"]) == 4
    [fay] = by["fay@example.org"]["certificates"]
    assert not fay["usable"] and "expired" in fay["problem"]
    assert by["gus@example.org"]["certificates"] == [] and not by["gus@example.org"]["error"]
    assert by["gil@example.org"]["problems"] == [f"a malformed userSMIMECertificate in uid=gil,ou=people,{SUFFIX}"]
    [hal] = by["hal@example.org"]["certificates"]  # the PKCS#7 bundle's CA certificate carries no address
    assert hal["fingerprint_sha256"] == fingerprint(staff["hal"]) and hal["usable"]
    [ivy] = by["ivy@example.org"]["certificates"]
    assert ivy["status"] == "untrusted" and "does not carry the address ivy@example.org" in ivy["reason"]
    [jo] = by["jo@example.org"]["certificates"]
    assert jo["status"] == "untrusted" and "Stranger CA" in jo["reason"]
    text = colleague.ok("smime-trust", "lookup", "dora@example.org", "gil@example.org").decode()
    assert "🔒" in text and "malformed userSMIMECertificate" in text


def test_encrypting_to_a_colleague_found_in_the_directory(colleague, staff, people, tmp_path):
    """Nobody wrote to Alice, yet mail to Dora and Ed encrypts; Ed's newest valid encryption
    certificate is the one used, and each recipient decrypts with openssl."""
    msg = message(to="dora@example.org, ed@example.org")
    encrypted = colleague.ok("smime-encrypt", input=msg)
    openssl = peers.OpenSSL(tmp_path)
    for person in (staff["dora"], staff["ed_new"]):
        ok, plain, err = openssl.decrypt(encrypted, person)
        assert ok, err
        assert b"the plan stands" in plain
    ok, _, _ = openssl.decrypt(encrypted, staff["ed_old"])
    assert not ok  # the older certificate was not chosen
    status = json.loads(colleague.ok("smime-trust", "status", "--json", "ed@example.org"))
    assert status[0]["fingerprint_sha256"] == fingerprint(staff["ed_new"])
    listed = json.loads(colleague.ok("smime-trust", "list", "--json", "dora@example.org"))["certificates"]
    assert listed[0]["sources"] == ["directory"] and listed[0]["status"] == "trusted"


@pytest.mark.parametrize("address,reason", [
    ("fay@example.org", "expired"),
    ("gus@example.org", "holds no certificate(s) for it"),
    ("gil@example.org", "a malformed userSMIMECertificate"),
    ("ivy@example.org", "does not carry the address ivy@example.org"),
    ("jo@example.org", "Stranger CA"),
])
def test_what_cannot_be_used_is_a_reason_and_nothing_is_sent(colleague, address, reason):
    result = colleague.run("smime-encrypt", input=message(to=f"dora@example.org, {address}"))
    assert result.returncode == 30 and result.stdout == b""
    stderr = result.stderr.decode()
    assert address in stderr and reason in stderr, stderr
    assert "dora@example.org:" not in stderr  # she is fine; only the blocking recipient is named


def test_the_filter_is_escaped(colleague):
    """An address with filter characters cannot widen the search (RFC 4515 escaping)."""
    _, found = lookup(colleague, "*@example.org", "x)(mail=*@example.org")
    assert all(entry["certificates"] == [] for entry in found)


# --- the cache ---------------------------------------------------------------------------------

def test_answers_are_cached_and_a_lookup_refreshes_them(alice, org, staff, ca):
    alice.write_config(directory_config(org, cache_hours=1))
    org.person("kim", "kim@example.org", certificates=[der(staff["dora"])])  # a wrong one at first
    first = json.loads(alice.run("smime-trust", "status", "--json", "kim@example.org").stdout)
    assert not first[0]["ok"] and "does not carry the address kim@example.org" in first[0]["reason"]
    kim = ca.issue("kim@example.org")
    org.replace(f"uid=kim,ou=people,{SUFFIX}", "userCertificate;binary", [der(kim)])
    cached = json.loads(alice.run("smime-trust", "status", "--json", "kim@example.org").stdout)
    assert not cached[0]["ok"] and cached[0]["directory"][0]["cached"]  # believed for cache_hours
    _, found = lookup(alice, "kim@example.org")
    assert [c["fingerprint_sha256"] for c in found[0]["certificates"]] == [fingerprint(kim)]
    status = json.loads(alice.ok("smime-trust", "status", "--json", "kim@example.org"))
    assert status[0]["ok"] and status[0]["fingerprint_sha256"] == fingerprint(kim)
    listed = json.loads(alice.ok("smime-trust", "list", "--json", "kim@example.org"))["certificates"]
    assert [c["fingerprint_sha256"] for c in listed] == [fingerprint(kim)]  # the stale binding is gone


def test_a_cached_answer_serves_while_the_server_is_down(alice, tmp_path, ca):
    server = Slapd(tmp_path / "slapd")
    try:
        lee = ca.issue("lee@example.org")
        server.person("lee", "lee@example.org", certificates=[der(lee)])
        alice.write_config(directory_config(server))
        alice.ok("smime-encrypt", input=message(to="lee@example.org"))
        server.stop()
        alice.ok("smime-encrypt", input=message(to="lee@example.org"))  # from the cache
        alice.write_config(directory_config(server, cache_hours=0))
        alice.ok("smime-encrypt", input=message(to="lee@example.org"))  # the certificate stays on record
        result = alice.run("smime-encrypt", input=message(to="nobody@example.org"))
        assert result.returncode == 30 and b"cannot be reached" in result.stderr
    finally:
        server.close()


# --- faults -----------------------------------------------------------------------------------

def test_server_down(alice, org):
    from tests.ldap_server import free_port

    alice.write_config(directory_config(org, url=f"ldap://127.0.0.1:{free_port()}"))
    result = alice.run("smime-encrypt", input=message(to="dora@example.org"))
    assert result.returncode == 30 and result.stdout == b""
    assert b"dora@example.org: no certificate on record" in result.stderr
    assert b"could not be asked: cannot be reached (server down or wrong address)" in result.stderr
    lookup_result, _ = lookup(alice, "dora@example.org", ok=False)
    assert lookup_result.returncode == 45


def test_timeout(alice, org):
    alice.write_config(directory_config(org, timeout=1))
    org.pause()
    try:
        result = alice.run("smime-encrypt", input=message(to="dora@example.org"), timeout=60)
    finally:
        org.resume()
    assert result.returncode == 30 and result.stdout == b""
    assert b"did not answer within 1 s" in result.stderr


def test_wrong_credentials(alice, org, staff):
    alice.write_config(directory_config(org, bind_dn=READER, password="wrong"))
    result = alice.run("smime-encrypt", input=message(to="dora@example.org"))
    assert result.returncode == 30 and result.stdout == b""
    assert f"refused the bind as {READER}: wrong bind DN or password".encode() in result.stderr
    # the right password, from a command, works
    secret = os.path.join(alice.path, "ldap-password")
    with open(secret, "w") as handle:
        handle.write(READER_PASSWORD + "\n")
    alice.write_config(directory_config(org, bind_dn=READER, password_command=f"cat {secret}"))
    alice.ok("smime-encrypt", input=message(to="dora@example.org"))


def test_wrong_base(alice, org):
    alice.write_config(directory_config(org, base="dc=nowhere,dc=test"))
    result = alice.run("smime-encrypt", input=message(to="dora@example.org"))
    assert result.returncode == 30 and b"has no entry dc=nowhere,dc=test" in result.stderr


# --- order and configuration ------------------------------------------------------------------

def test_directory_first_prefers_the_directory(alice, org, staff, ca, tmp_path):
    """A certificate installed locally wins with local-first; directory-first asks anyway and the
    directory's usable certificate wins."""
    mo_local = ca.issue("mo@example.org", not_before=pki.NOW - 100 * DAY)
    mo_directory = ca.issue("mo@example.org", not_before=pki.NOW - 200 * DAY)
    org.person("mo", "mo@example.org", certificates=[der(mo_directory)])
    alice.install(mo_local.cert_pem(), tmp_path, "mo.pem")
    alice.write_config(directory_config(org))
    status = json.loads(alice.ok("smime-trust", "status", "--json", "mo@example.org"))
    assert status[0]["fingerprint_sha256"] == fingerprint(mo_local) and "directory" not in status[0]
    alice.write_config(directory_config(org, order="directory-first"))
    status = json.loads(alice.ok("smime-trust", "status", "--json", "mo@example.org"))
    assert status[0]["fingerprint_sha256"] == fingerprint(mo_directory)


@pytest.mark.parametrize("settings,error", [
    ({"url": "http://x"}, "url must start with ldap:// or ldaps://"),
    ({"filter": "mail=%s"}, "filter must be an LDAP filter"),
    ({"order": "random"}, "order must be local-first or directory-first"),
    ({"colour": "red"}, "unknown setting accounts.work.directory.colour"),
])
def test_directory_configuration_errors_name_the_line(alice, org, settings, error):
    alice.write_config(directory_config(org, **settings))
    result = alice.run("smime-trust", "lookup", "dora@example.org")
    assert result.returncode == 41
    line = next(n for n, text in enumerate(open(alice.config).read().splitlines(), 1)
                if text.startswith(next(iter(settings))))
    assert f"line {line}: " in result.stderr.decode() and error in result.stderr.decode()


# --- TLS --------------------------------------------------------------------------------------

def server_certificate(tmp_path):
    """A CA and a server certificate for 127.0.0.1, as PEM files: (ca, cert, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    server_ca = pki.CA("Directory TLS CA")
    key = pki.new_key()
    cert = (x509.CertificateBuilder().subject_name(pki.name("127.0.0.1")).issuer_name(server_ca.name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(pki.NOW - DAY).not_valid_after(pki.NOW + 30 * DAY)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(server_ca.key, hashes.SHA256()))
    paths = [tmp_path / "tls-ca.pem", tmp_path / "server.pem", tmp_path / "server.key"]
    paths[0].write_bytes(server_ca.pem())
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return [str(p) for p in paths]


def test_ldaps_and_starttls(alice, ca, tmp_path):
    tls_ca, cert, key = server_certificate(tmp_path)
    server = Slapd(tmp_path / "slapd", tls=(cert, key))
    try:
        nia = ca.issue("nia@example.org")
        server.person("nia", "nia@example.org", certificates=[der(nia)])
        for settings in ({"url": server.ldaps_url, "ca_file": tls_ca},
                         {"starttls": True, "ca_file": tls_ca}):
            alice.write_config(directory_config(server, **settings))
            _, found = lookup(alice, "nia@example.org")
            assert [c["fingerprint_sha256"] for c in found[0]["certificates"]] == [fingerprint(nia)]
        # a server certificate the client cannot verify is refused, not ignored
        (tmp_path / "other-ca.pem").write_bytes(pki.CA("Some other CA").pem())
        alice.write_config(directory_config(server, url=server.ldaps_url, ca_file=str(tmp_path / "other-ca.pem")))
        result, found = lookup(alice, "nia@example.org", ok=False)
        assert result.returncode == 45 and found[0]["error"]
    finally:
        server.close()


def test_smime_sendmail_finds_recipients_in_the_directory(alice, org, staff, tmp_path):
    """Sending encrypted through smime-sendmail asks the account's directory; when the directory
    cannot be asked nothing is sent."""
    from tests.test_sendmail import Stub

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    stub = Stub(str(outbox))
    alice.write_config(directory_config(org).replace('addresses = ["alice@example.org"]\n',
                                                     'addresses = ["alice@example.org"]\nencrypt_by_default = true\n'))
    result = alice.run("smime-sendmail", "--sendmail", stub.path, "--passphrase-file", alice.passfile,
                       "dora@example.org", input=message(to="dora@example.org"))
    assert result.returncode == 0, result.stderr
    [(_, sent)] = stub.sent()
    ok, plain, err = peers.OpenSSL(tmp_path).decrypt(sent, staff["dora"])
    assert ok, err
    from tests.ldap_server import free_port

    alice.write_config(directory_config(org, url=f"ldap://127.0.0.1:{free_port()}").replace(
        'addresses = ["alice@example.org"]\n', 'addresses = ["alice@example.org"]\nencrypt_by_default = true\n'))
    result = alice.run("smime-sendmail", "--sendmail", stub.path, "--passphrase-file", alice.passfile,
                       "hal@example.org", input=message(to="hal@example.org"))
    assert result.returncode == 30 and b"could not be asked: cannot be reached" in result.stderr
    assert len(stub.sent()) == 1  # nothing more was handed to sendmail
