"""Unit tests of the library: MIME views, addresses, the BER walker, the trust database."""

import os
import sqlite3
import stat

import pytest

from mailseal import addresses, mime
from mailseal.cms import ber
from mailseal.errors import DatabaseError, MalformedCMS, NotAMessage
from tests.conftest import read, tb


# --- mime ------------------------------------------------------------------------------

def test_first_part_is_exactly_what_was_signed():
    entity = mime.parse_message(read(tb("alice.dsig.SHA256.multipart.eml")))
    first, signature = entity.parts()
    assert len(first.raw) == 171 and first.raw.endswith(b"Bob.\r\n")
    assert first.raw.startswith(b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n")
    assert signature.ctype == "application/pkcs7-signature"


@pytest.mark.parametrize("data,expected", [
    (b"a\nb\n", b"a\r\nb\r\n"), (b"a\r\nb\r\n", b"a\r\nb\r\n"), (b"a\rb\r\nc\n", b"a\r\nb\r\nc\r\n"), (b"", b"")])
def test_canonical(data, expected):
    assert mime.canonical(data) == expected
    assert mime.canonical(mime.to_lf(expected)) == expected


def test_canonical_data_is_not_copied():
    data = b"line\r\n" * 1000
    assert mime.canonical(data) is data


def test_lf_chunks_handles_crlf_split_between_chunks():
    chunks = [b"one\r", b"\ntwo\r\nthree\r", b"\n"]
    assert b"".join(mime.lf_chunks(chunks, size=3)) == b"one\ntwo\nthree\n"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 56, 57, 58, 3 * 1024 * 57, 3 * 1024 * 57 + 1, 200_001])
def test_lazy_base64_announces_its_exact_size(size):
    data = os.urandom(size)
    lazy = mime.base64_lazy([data[:size // 3], data[size // 3:]])
    made = mime.join([lazy])
    assert len(lazy) == len(made) and made == bytes(mime.encode_base64(data))
    assert mime.join([lazy]) == made  # reading it again makes the same chunks


@pytest.mark.parametrize("body", [b"line\n" * 400_000, b"line\r\n" * 400_000, b"a\rb\n" * 400_000, b"x" * 3_000_000])
def test_canonical_region_of_a_large_body(body):
    raw = b"head\n\n" + body + b"tail"
    chunks = mime.canonical_region(raw, 6, 6 + len(body))
    assert mime.join(chunks) == mime.canonical(body) and ber.size(chunks) == len(mime.canonical(body))


def test_prepare_of_a_large_multipart_keeps_parts_apart():
    """A nested multipart without its closing delimiter ends where its part ends, and the large
    attachment comes out as the whole-copy version did."""
    attachment = (b"QUJD" * 19 + b"\n") * 40_000
    raw = (b"From: a@example.org\nContent-Type: multipart/mixed; boundary=out\n\n--out\n"
           b"Content-Type: multipart/alternative; boundary=in\n\n--in\nContent-Type: text/plain\n\nhi\n"
           b"--out\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
           + attachment + b"--out--\n")
    _, inner = mime.split_outer_inner(mime.parse_message(raw))
    made = mime.join(inner)
    assert ber.size(inner) == len(made)
    assert made.count(b"--out\r\n") == 2 and made.endswith(attachment.replace(b"\n", b"\r\n") + b"--out--\r\n")
    spans, closed = mime.split_multipart(raw, b"in", raw.index(b"--in"), raw.index(b"\n--out\nContent-Type: app"))
    assert not closed and raw[spans[0][0]:spans[0][1]].endswith(b"hi")


def test_parse_params():
    ctype, params = mime.parse_params('multipart/signed; protocol="application/pkcs7-signature"; MICALG=sha-256;'
                                      ' boundary="a;b\\"c"')
    assert ctype == "multipart/signed"
    assert params == {"protocol": "application/pkcs7-signature", "micalg": "sha-256", "boundary": 'a;b"c'}
    _, params = mime.parse_params("attachment; filename*0*=utf-8''Gr%C3%BC%C3%9Fe; filename*1=.txt")
    assert params["filename"] == "Grüße.txt"


def test_multipart_split_ignores_lookalike_lines():
    body = (b"preamble\n--xyz\nContent-Type: text/plain\n\n--xyzzy is not a delimiter\n--xyz  \n"
            b"Content-Type: text/plain\n\nsecond\n--xyz--\nepilogue\n")
    spans, closed = mime.split_multipart(body, b"xyz")
    assert closed and [body[s:e] for s, e in spans] == [
        b"Content-Type: text/plain\n\n--xyzzy is not a delimiter", b"Content-Type: text/plain\n\nsecond"]


def test_not_a_message():
    with pytest.raises(NotAMessage):
        mime.parse_message(b"")
    with pytest.raises(NotAMessage):
        mime.parse_message(b"no colon on this line\n")
    entity = mime.parse_message(b"From someone Mon Jan  1 00:00:00 2024\nSubject: mbox\n\nbody\n")
    assert entity.get("Subject") == "mbox" and entity.body == b"body\n"


def test_parse_date():
    assert mime.parse_date("Tue, 1 Feb 2022 09:00:00 +0200").isoformat() == "2022-02-01T07:00:00+00:00"
    assert mime.parse_date("nonsense") is None


# --- addresses --------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("Alice <alice@example.com>", ["alice@example.com"]),
    ('"alice@example.com" <mallory@evil.example>', ["mallory@evil.example"]),
    ('"Bob, Jr." <bob@example.com>, carol@example.com', ["bob@example.com", "carol@example.com"]),
    ("alice@example.com (Alice <not@this.one>)", ["alice@example.com"]),
    ("friends: a@example.com, b@example.com;", ["a@example.com", "b@example.com"]),
    ("<@relay.example:route@example.com>", ["route@example.com"]),
    ("undisclosed-recipients:;", []),
    ("Just A Name", []),
])
def test_address_parsing(value, expected):
    assert addresses.parse(value) == expected


def test_address_normalisation():
    assert addresses.normalize("Alice@EXAMPLE.com") == "alice@example.com"
    assert addresses.normalize("jürgen@bücher.example") == "jürgen@xn--bcher-kva.example"
    assert addresses.same("x@BÜCHER.example", "X@xn--bcher-kva.example")


# --- the BER walker --------------------------------------------------------------------

def test_ber_indefinite_lengths_and_constructed_octets():
    # SEQUENCE (indefinite) { OCTET STRING constructed (indefinite) { "ab", "cd" } }
    data = bytes([0x30, 0x80, 0x24, 0x80, 0x04, 2]) + b"ab" + bytes([0x04, 2]) + b"cd" + bytes(4)
    top = ber.read(memoryview(data), 0, len(data))
    assert top.end == len(data)
    [inner] = ber.children(memoryview(data), top)
    assert b"".join(ber.octets(memoryview(data), inner)) == b"abcd"


@pytest.mark.parametrize("data", [b"\x30\x05\x04\x03ab", b"\x30\x80\x04\x01a", b"\x30\x89" + bytes(9), b"\x04"])
def test_ber_refuses_truncation(data):
    with pytest.raises(MalformedCMS):
        top = ber.read(memoryview(data), 0, len(data))
        ber.children(memoryview(data), top)


def test_header_lengths():
    assert ber.header(0x04, 5) == b"\x04\x05"
    assert ber.header(0x04, 200) == b"\x04\x81\xc8"
    assert ber.header(0x30, 70000) == b"\x30\x83\x01\x11\x70"


# --- the trust database ------------------------------------------------------------------

def test_database_is_wal_private_and_versioned(tmp_path, monkeypatch):
    from mailseal.store import SCHEMA_VERSION, Store

    monkeypatch.setenv("MAILSEAL_HOME", str(tmp_path / "home"))
    with Store() as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert stat.S_IMODE(os.stat(tmp_path / "home" / "trust.db").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "home").st_mode) == 0o700


def test_reader_does_not_create_a_database(tmp_path, monkeypatch):
    from mailseal.store import Store

    monkeypatch.setenv("MAILSEAL_HOME", str(tmp_path / "home"))
    with Store(create=False) as store:
        assert store.anchors() == []
    assert not os.path.exists(tmp_path / "home")


def test_newer_schema_is_refused(tmp_path, monkeypatch):
    from mailseal.store import Store

    monkeypatch.setenv("MAILSEAL_HOME", str(tmp_path))
    Store().close()
    conn = sqlite3.connect(tmp_path / "trust.db")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="newer mailseal"):
        Store()


def test_a_failed_transaction_changes_nothing(tmp_path, monkeypatch, ca):
    from mailseal.store import Store

    monkeypatch.setenv("MAILSEAL_HOME", str(tmp_path))
    with Store() as store:
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.add_anchor(ca.cert)
                raise RuntimeError("interrupted")
        assert store.anchors() == []
        with store.transaction():
            store.add_anchor(ca.cert)
        assert len(store.anchors()) == 1
