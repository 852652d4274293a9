"""The interop matrix ("Modern CMS"): every algorithm, every producer, every consumer.

Four parties: mailseal (smime-sign / smime-encrypt, smime-verify / smime-decrypt),
openssl cms (OpenSSL 3.0), gpgsm 2.2.40 and NSS cmsutil 3.87.  For every
signature algorithm (RSA PKCS#1 v1.5 SHA-256, RSA-PSS SHA-256, ECDSA P-256,
Ed25519; detached and opaque) and every encryption (RSA PKCS#1 v1.5 key
transport, RSA-OAEP SHA-256, ECDH P-256 and P-384, each with AES-128/256-CBC
and AES-128/256-GCM), each party produces a message when it can and each of
the others consumes it: a signature must verify and be trusted (the signer
chains to the test CA), the content must come out; an encrypted message must
decrypt to the content.

UNSUPPORTED below is the support table, measured on this machine (how: the
comment above it).  A cell is unsupported when its producer cannot write the
algorithm or its consumer cannot read it; every other cell must pass.  A
consumer marked unsupported is still given the message: it must fail saying
what EVIDENCE records, and if it reads the message after all the table is
stale and the test fails, so the table stays measured.  Each producer's output
is parsed to check it really is the algorithm of its row.  `pytest -s` prints
the matrix.

Parameters where a producer has a choice: openssl signs RSA-PSS with the salt
as long as the digest (its default, 222 bytes, crashes gpgsm 2.2.40: "double
free"); openssl's ECDH uses its default X9.63 KDF with SHA-1, mailseal the
curve's SHA-2 (RFC 5753); RSA-OAEP is SHA-256 with MGF1-SHA-256 everywhere.
"""

import json
from dataclasses import dataclass

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests import peers, pki
from tests.conftest import Home, message

MARKER = b"Matrix marker 5ea1-c0de"
CONTENT = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + MARKER + b": made by a peer.\r\n"

PEERS = ("mailseal", "openssl", "gpgsm", "nss")
SIGNATURES = ("rsa-pkcs1-sha256", "rsa-pss-sha256", "ecdsa-p256-sha256", "ed25519")
FORMS = ("detached", "opaque")
KEY_MANAGEMENT = ("rsa-pkcs1", "rsa-oaep", "ecdh-p256", "ecdh-p384")
CIPHERS = ("aes128-cbc", "aes256-cbc", "aes128-gcm", "aes256-gcm")
ENCRYPTIONS = tuple(f"{km}+{cipher}" for km in KEY_MANAGEMENT for cipher in CIPHERS)
ROLES = ("sign", "verify", "encrypt", "decrypt")

# How each entry was measured (OpenSSL 3.0.19, gpgsm 2.2.40 with libksba 1.6.3, NSS 3.87.1):
# keys from tests.pki, every producer's output of every algorithm given to every consumer
# by hand, plus the ways each peer offers to choose an algorithm (openssl -keyopt,
# gpgsm --cipher-algo with names and OIDs, cmsutil's options, an RSASSA-PSS key in NSS).
# The reason is what the peer said, or why it has no way to write the algorithm.
# Keys: (peer, role, feature); a feature is a signature algorithm, a key management
# algorithm or a content cipher.  Reasons do not name the peer: the matrix adds it.
_GPGSM_NO_ECDH_ENCRYPT = "to an EC certificate: can't encrypt: Wrong key usage (INV_RECP 3)"
_GPGSM_GCM_WRITE = ("--cipher-algo with a GCM OID writes EnvelopedData with a 16-byte IV and no tag;"
                    " gpgsm itself reads it as 'error getting authtag: No data', openssl refuses it")
_GPGSM_NO_ECDH_DECRYPT = "decrypting session key failed: Invalid session key (ECDH came in gpgsm 2.2.42)"
_GPGSM_NO_GCM_READ = "error getting IV: Buffer too short (it does not read RFC 5084 GCMParameters)"
_NSS_NO_ECDH_ENCRYPT = "-E to an EC certificate: SEC_ERROR_INVALID_ALGORITHM (no ECDH key agreement)"
_NSS_NO_GCM_WRITE = "-E has no cipher option and no AuthEnvelopedData (it always wrote AES-128-CBC)"
_NSS_NO_ECDH_DECRYPT = "SEC_ERROR_BAD_DER on a KeyAgreeRecipientInfo (no ECDH key agreement)"
_NSS_NO_GCM_READ = "SEC_ERROR_UNRECOGNIZED_OID (no AuthEnvelopedData / AES-GCM)"
UNSUPPORTED = {
    # mailseal: a gap, not a peer limit
    ("mailseal", "sign", "rsa-pss-sha256"):
        "mailseal gap: smime-sign has no RSA-PSS; mailseal.cms.signed.sign() signs RSA keys with PKCS#1 v1.5 only",
    # openssl cms, OpenSSL 3.0.19
    ("openssl", "sign", "ed25519"):
        "cms -sign -md sha512: eddsa_digest_signverify_init: invalid digest (no RFC 8419 in OpenSSL 3.0)",
    ("openssl", "verify", "ed25519"):
        "eddsa_digest_signverify_init: invalid digest (also on the LAMPS signedByCarlosEd25519 example)",
    # gpgsm 2.2.40
    ("gpgsm", "sign", "rsa-pss-sha256"): "no option to sign with RSA-PSS: an RSA key signs PKCS#1 v1.5",
    ("gpgsm", "sign", "ed25519"): "ksba_cms_build failed: Invalid OID string",
    ("gpgsm", "verify", "ed25519"): "'DSA requires the hash length to be a multiple of 8 bits', BADSIG",
    ("gpgsm", "encrypt", "rsa-oaep"): "no option for RSA-OAEP key transport: RSA recipients get PKCS#1 v1.5",
    ("gpgsm", "encrypt", "ecdh-p256"): _GPGSM_NO_ECDH_ENCRYPT,
    ("gpgsm", "encrypt", "ecdh-p384"): _GPGSM_NO_ECDH_ENCRYPT,
    ("gpgsm", "encrypt", "aes128-gcm"): _GPGSM_GCM_WRITE,
    ("gpgsm", "encrypt", "aes256-gcm"): _GPGSM_GCM_WRITE,
    ("gpgsm", "decrypt", "rsa-oaep"): "recp 0 - error getting encrypted session key (no RSA-OAEP)",
    ("gpgsm", "decrypt", "ecdh-p256"): _GPGSM_NO_ECDH_DECRYPT,
    ("gpgsm", "decrypt", "ecdh-p384"): _GPGSM_NO_ECDH_DECRYPT,
    ("gpgsm", "decrypt", "aes128-gcm"): _GPGSM_NO_GCM_READ,
    ("gpgsm", "decrypt", "aes256-gcm"): _GPGSM_NO_GCM_READ,
    # NSS cmsutil 3.87.1
    ("nss", "sign", "rsa-pss-sha256"): ("no PSS option: an RSA key signs PKCS#1 v1.5 (an RSASSA-PSS key gives"
                                        " RSASSA-PSS without parameters, which openssl rejects)"),
    ("nss", "sign", "ed25519"): "pk12util cannot import an Ed25519 key: SEC_ERROR_PKCS12_UNABLE_TO_IMPORT_KEY",
    ("nss", "verify", "ed25519"): "signer0.status=ProcessingError (no Ed25519 in NSS 3.87)",
    ("nss", "encrypt", "rsa-oaep"): "-E has no key transport option: RSA recipients get PKCS#1 v1.5",
    ("nss", "encrypt", "ecdh-p256"): _NSS_NO_ECDH_ENCRYPT,
    ("nss", "encrypt", "ecdh-p384"): _NSS_NO_ECDH_ENCRYPT,
    ("nss", "encrypt", "aes256-cbc"): ("-E has no cipher option: it always wrote AES-128-CBC, also after"
                                       " verifying a signature that advertised AES-256-CBC"),
    ("nss", "encrypt", "aes128-gcm"): _NSS_NO_GCM_WRITE,
    ("nss", "encrypt", "aes256-gcm"): _NSS_NO_GCM_WRITE,
    ("nss", "decrypt", "rsa-oaep"): "SEC_ERROR_UNSUPPORTED_KEYALG (no RSA-OAEP)",
    ("nss", "decrypt", "ecdh-p256"): _NSS_NO_ECDH_DECRYPT,
    ("nss", "decrypt", "ecdh-p384"): _NSS_NO_ECDH_DECRYPT,
    ("nss", "decrypt", "aes128-gcm"): _NSS_NO_GCM_READ,
    ("nss", "decrypt", "aes256-gcm"): _NSS_NO_GCM_READ,
}

#: what a consumer marked unsupported must say when it is given the message anyway (any one of
#: the cell's features): a failure for another reason (a missing key, a broken setup) is a FAIL
EVIDENCE = {
    ("openssl", "verify", "ed25519"): "invalid digest",
    ("gpgsm", "verify", "ed25519"): "DSA requires the hash length",
    ("nss", "verify", "ed25519"): "ProcessingError",
    ("gpgsm", "decrypt", "rsa-oaep"): "error getting encrypted session key",
    ("gpgsm", "decrypt", "ecdh-p256"): "Invalid session key",
    ("gpgsm", "decrypt", "ecdh-p384"): "Invalid session key",
    ("gpgsm", "decrypt", "aes128-gcm"): "error getting IV",
    ("gpgsm", "decrypt", "aes256-gcm"): "error getting IV",
    ("nss", "decrypt", "rsa-oaep"): "SEC_ERROR_UNSUPPORTED_KEYALG",
    ("nss", "decrypt", "ecdh-p256"): "SEC_ERROR_BAD_DER",
    ("nss", "decrypt", "ecdh-p384"): "SEC_ERROR_BAD_DER",
    ("nss", "decrypt", "aes128-gcm"): "SEC_ERROR_UNRECOGNIZED_OID",
    ("nss", "decrypt", "aes256-gcm"): "SEC_ERROR_UNRECOGNIZED_OID",
}


def unsupported(peer, role, algorithm):
    """Why peer cannot do role with algorithm ("km+cipher" for encryption), or None."""
    reasons = [UNSUPPORTED[(peer, role, f)] for f in algorithm.split("+") if (peer, role, f) in UNSUPPORTED]
    return f"{peer} {role}: " + "; ".join(reasons) if reasons else None


def evidence(peer, role, algorithm):
    """The texts of which one must appear in peer's error output for an unsupported algorithm."""
    return [EVIDENCE[(peer, role, f)] for f in algorithm.split("+") if (peer, role, f) in EVIDENCE]


# --- the parties ----------------------------------------------------------------------------

@dataclass
class World:
    ca: object
    signers: dict  # by key kind: rsa, ec, ed
    readers: dict  # by key kind: rsa, p256, p384
    writer: Home  # mailseal producing: every identity (From = To for encryption: one recipient)
    reader: Home  # mailseal consuming: the readers' identities and the CA, nothing about signers
    openssl: object
    gpgsm: object
    nss: object

    def signer(self, algorithm):
        return self.signers[{"rsa-pkcs1-sha256": "rsa", "rsa-pss-sha256": "rsa", "ecdsa-p256-sha256": "ec",
                             "ed25519": "ed"}[algorithm]]

    def recipient(self, km):
        return self.readers[{"rsa-pkcs1": "rsa", "rsa-oaep": "rsa", "ecdh-p256": "p256", "ecdh-p384": "p384"}[km]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Keys, mailseal homes and peer homes, made once for the module."""
    base = tmp_path_factory.mktemp("matrix")
    ca = pki.CA("mailseal Matrix CA")
    signers = {"rsa": ca.issue("rsa-signer@example.org"),
               "ec": ca.issue("ec-signer@example.org", kind="ec"),
               "ed": ca.issue("ed-signer@example.org", key=ed25519.Ed25519PrivateKey.generate(), key_usage="sign")}
    readers = {"rsa": ca.issue("rsa-reader@example.org"),
               "p256": ca.issue("p256-reader@example.org", kind="ec"),
               "p384": ca.issue("p384-reader@example.org", kind="ec-p384")}
    files = base / "files"
    files.mkdir()
    writer, reader = Home(base / "writer"), Home(base / "reader")
    for person in [*signers.values(), *readers.values()]:
        writer.import_identity(person, files)
    for person in readers.values():
        reader.import_identity(person, files)
    for home in (writer, reader):
        home.install(ca.pem(), files, "ca.pem", ca=True)

    (base / "openssl").mkdir()
    openssl = peers.OpenSSL(base / "openssl")
    gpgsm = peers.Gpgsm(base, ca)
    try:
        for person in (signers["rsa"], signers["ec"], *readers.values()):
            gpgsm.import_key_by_hand(person)  # not PKCS#12: gpgsm 2.2.40 fails on some (and on every EC one)
        gpgsm.import_person(signers["ed"])
        nss = peers.Nss(base, ca)
        for person in (signers["rsa"], signers["ec"], *readers.values()):
            nss.import_person(person, with_key=True)
        yield World(ca, signers, readers, writer, reader, openssl, gpgsm, nss)
    finally:
        gpgsm.close()


def _tail(text):
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[:300]


# --- what a producer really wrote -----------------------------------------------------------

def signature_of(der):
    """(signature family, digest) of the only SignerInfo of a SignedData."""
    signed_data = cms.ContentInfo.load(der)["content"]
    (signer,) = list(signed_data["signer_infos"])
    return signer["signature_algorithm"].signature_algo, signer["digest_algorithm"]["algorithm"].native


EXPECTED_SIGNATURE = {"rsa-pkcs1-sha256": ("rsassa_pkcs1v15", "sha256"), "rsa-pss-sha256": ("rsassa_pss", "sha256"),
                      "ecdsa-p256-sha256": ("ecdsa", "sha256"), "ed25519": ("ed25519", "sha512")}


def encryption_of(der):
    """"km+cipher" of an (Auth)EnvelopedData with exactly one recipient, as this module names them."""
    info = cms.ContentInfo.load(der)
    content = info["content"]
    eci = content["auth_encrypted_content_info" if info["content_type"].native == "authenticated_enveloped_data"
                  else "encrypted_content_info"]
    cipher = eci["content_encryption_algorithm"]["algorithm"].native.replace("_", "-")
    if cipher.endswith("gcm") != (info["content_type"].native == "authenticated_enveloped_data"):
        return f"{cipher} in {info['content_type'].native}"
    infos = list(content["recipient_infos"])
    if len(infos) != 1:
        return f"{len(infos)} recipient infos"
    ri = infos[0]
    if ri.name == "ktri":
        algorithm = ri.chosen["key_encryption_algorithm"]
        if algorithm["algorithm"].native == "rsaes_pkcs1v15":
            km = "rsa-pkcs1"
        elif algorithm["algorithm"].native == "rsaes_oaep":
            km = f"rsa-oaep-{algorithm['parameters']['hash_algorithm']['algorithm'].native}".replace("-sha256", "")
        else:
            km = algorithm["algorithm"].native
    elif ri.name == "kari":
        point = ri.chosen["originator"].chosen["public_key"].native
        km = {65: "ecdh-p256", 97: "ecdh-p384"}.get(len(point), f"ecdh-{len(point)}-byte-point")
    else:
        km = ri.name
    return f"{km}+{cipher}"


# --- producers and consumers ----------------------------------------------------------------

@dataclass
class Signed:
    der: bytes  # the detached signature, or the opaque signed-data
    content: bytes = None  # the exact signed bytes of a detached signature


def produce_signature(w, producer, algorithm, form):
    signer = w.signer(algorithm)
    detached = form == "detached"
    if producer == "mailseal":
        body = MARKER.decode() + ": made by mailseal.\n"
        out = w.writer.ok("smime-sign", "--passphrase-file", w.writer.passfile, *([] if detached else ["--opaque"]),
                          input=message(frm=signer.email, to="someone@example.org", body=body))
        if detached:
            content, der = peers.split_signed(out)
            return Signed(der, content)
        return Signed(peers.body_der(out))
    if producer == "openssl":
        options = ("-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:digest") \
            if algorithm == "rsa-pss-sha256" else ()
        der = w.openssl.sign_der(CONTENT, signer, *options, detached=detached)
    elif producer == "gpgsm":
        der = w.gpgsm.sign(CONTENT, signer.email, detached=detached)
    else:
        der = w.nss.sign(CONTENT, signer.email, detached=detached)
    return Signed(der, CONTENT if detached else None)


def consume_signature(w, consumer, algorithm, signed):
    """(ok, detail): the signature verifies, is trusted, and the content comes out."""
    signer = w.signer(algorithm)
    if consumer == "mailseal":
        head = f"From: {signer.email}\r\nTo: reader@example.org\r\nSubject: matrix\r\n".encode()
        msg = peers.wrap_detached(signed.content, signed.der, head) if signed.content is not None \
            else peers.wrap_der(signed.der, b"signed-data", head)
        result = w.reader.run("smime-verify", "--extract", input=msg)
        return result.returncode == 0 and MARKER in result.stdout, \
            f"smime-verify exit {result.returncode}: {result.stderr.decode(errors='replace')}"
    if consumer == "openssl":
        ok, content, err = w.openssl.verify_der(signed.der, w.ca.pem(), signed.content)
    elif consumer == "gpgsm":
        if signed.content is not None:
            (ok, err), content = w.gpgsm.verify_detached(signed.content, signed.der), b""
        else:
            ok, content, err = w.gpgsm.verify_opaque(signed.der)
    else:
        if signed.content is not None:
            (ok, err), content = w.nss.verify_detached(signed.content, signed.der), b""
        else:
            ok, content, err = w.nss.verify_opaque(signed.der)
    if signed.content is not None:
        content = signed.content  # what the detached signature was checked over
    return ok and MARKER in content, err.decode(errors="replace") if isinstance(err, bytes) else err


OPENSSL_CIPHER = {"aes128-cbc": "-aes-128-cbc", "aes256-cbc": "-aes-256-cbc", "aes128-gcm": "-aes-128-gcm",
                  "aes256-gcm": "-aes-256-gcm"}
GPGSM_CIPHER = {"aes128-cbc": "AES128", "aes256-cbc": "AES256"}


def produce_encryption(w, producer, algorithm):
    km, cipher = algorithm.split("+")
    reader = w.recipient(km)
    if producer == "mailseal":
        body = MARKER.decode() + ": made by mailseal.\n"
        out = w.writer.ok("smime-encrypt", "--cipher", cipher, *(["--oaep"] if km == "rsa-oaep" else []),
                          input=message(frm=reader.email, to=reader.email, body=body))
        return peers.body_der(out)
    if producer == "openssl":
        keyopts = ("rsa_padding_mode:oaep", "rsa_oaep_md:sha256") if km == "rsa-oaep" else ()
        return w.openssl.encrypt(CONTENT, reader, options=("-binary", "-outform", "DER", OPENSSL_CIPHER[cipher]),
                                 keyopts=keyopts)
    if producer == "gpgsm":
        return w.gpgsm.encrypt_with(CONTENT, GPGSM_CIPHER[cipher], reader.email)
    return w.nss.encrypt(CONTENT, reader.email)


def consume_encryption(w, consumer, algorithm, der):
    """(ok, detail): the message decrypts to the content."""
    reader = w.recipient(algorithm.split("+")[0])
    if consumer == "mailseal":
        head = f"From: someone@example.org\r\nTo: {reader.email}\r\nSubject: matrix\r\n".encode()
        stype = b"authEnveloped-data" if algorithm.endswith("gcm") else b"enveloped-data"
        result = w.reader.run("smime-decrypt", "--passphrase-file", w.reader.passfile,
                              input=peers.wrap_der(der, stype, head))
        return result.returncode == 0 and MARKER in result.stdout, \
            f"smime-decrypt exit {result.returncode}: {result.stderr.decode(errors='replace')}"
    if consumer == "openssl":
        ok, plain, err = w.openssl.decrypt(der, reader, inform="DER")
    elif consumer == "gpgsm":
        ok, plain, err = w.gpgsm.decrypt(der)
    else:
        ok, plain, err = w.nss.decrypt(der)
    return ok and MARKER in plain, err.decode(errors="replace") if isinstance(err, bytes) else err


# --- running and printing the matrix ----------------------------------------------------------

@dataclass
class Cell:
    row: str  # algorithm (and form)
    producer: str
    consumer: str
    status: str  # ok, unsupported, FAIL, STALE (marked unsupported, but it worked)
    reason: str = ""


def run_matrix(rows, produce_role, consume_role, algorithm_of, produce, check, consume):
    """Every (row, producer, consumer) cell.  produce(producer, row) -> object; check(row, obj) ->
    None or what is wrong with what was produced; consume(consumer, row, obj) -> (ok, detail)."""
    cells = []
    for row in rows:
        algorithm = algorithm_of(row)
        for producer in PEERS:
            others = [c for c in PEERS if c != producer]
            why_not = unsupported(producer, produce_role, algorithm)
            if why_not:
                cells += [Cell(row, producer, c, "unsupported", why_not) for c in others]
                continue
            try:
                made = produce(producer, row)
                wrong = check(row, made)
            except Exception as exc:  # a producer that should work and does not: every cell fails
                made, wrong = None, f"{type(exc).__name__}: {_tail(str(exc))}"
            if wrong:
                cells += [Cell(row, producer, c, "FAIL", f"{producer} {produce_role}: {wrong}") for c in others]
                continue
            for consumer in others:
                ok, detail = consume(consumer, row, made)
                why_not = unsupported(consumer, consume_role, algorithm)
                said = evidence(consumer, consume_role, algorithm)
                if why_not and ok:
                    cells.append(Cell(row, producer, consumer, "STALE",
                                      f"marked '{why_not}', but it worked: update UNSUPPORTED"))
                elif why_not and said and not any(text in detail for text in said):
                    cells.append(Cell(row, producer, consumer, "FAIL", f"{consumer} {consume_role} failed, but"
                                      f" not saying any of {said}: {_tail(detail)}"))
                elif why_not:
                    cells.append(Cell(row, producer, consumer, "unsupported", why_not))
                elif ok:
                    cells.append(Cell(row, producer, consumer, "ok"))
                else:
                    cells.append(Cell(row, producer, consumer, "FAIL",
                                      f"{consumer} {consume_role}: {_tail(detail)}"))
    return cells


def render(title, cells):
    """The matrix as text: a grid (rows: algorithm and producer; columns: consumer) and its legend."""
    legend, lines = {}, [title, f"{'':28}{'producer':10}" + "".join(f"{c:10}" for c in PEERS)]
    by_key = {(c.row, c.producer, c.consumer): c for c in cells}
    for row in dict.fromkeys(c.row for c in cells):
        for producer in PEERS:
            marks = []
            for consumer in PEERS:
                cell = by_key.get((row, producer, consumer))
                if cell is None:
                    marks.append("-")
                elif cell.status == "ok":
                    marks.append("ok")
                elif cell.status == "unsupported":
                    marks.append(f"u{legend.setdefault(cell.reason, len(legend) + 1)}")
                else:
                    marks.append(cell.status)
            lines.append(f"{row if producer == PEERS[0] else '':28}{producer:10}" + "".join(f"{m:10}" for m in marks))
    lines.append("unsupported(reason):")
    lines += [f"  u{n}: {reason}" for reason, n in legend.items()]
    bad = [c for c in cells if c.status not in ("ok", "unsupported")]
    for c in bad:
        lines.append(f"  {c.status} {c.row}: {c.producer} -> {c.consumer}: {c.reason}")
    counts = {s: sum(c.status == s for c in cells) for s in ("ok", "unsupported", "FAIL", "STALE")}
    lines.append("cells: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def test_support_table_names_only_known_peers_roles_and_features():
    features = {"sign": SIGNATURES, "verify": SIGNATURES, "encrypt": KEY_MANAGEMENT + CIPHERS,
                "decrypt": KEY_MANAGEMENT + CIPHERS}
    for peer, role, feature in UNSUPPORTED:
        assert peer in PEERS and role in ROLES and feature in features[role], (peer, role, feature)
    for key in EVIDENCE:
        assert key in UNSUPPORTED, key
    for key in UNSUPPORTED:  # every reading limit is checked against what the peer says
        assert key[1] not in ("verify", "decrypt") or key in EVIDENCE, key
    assert not any(peer == "mailseal" and role in ("verify", "decrypt") for peer, role, _ in UNSUPPORTED), \
        "mailseal reads every algorithm of the matrix"


def test_signature_matrix(world):
    rows = [f"{algorithm}/{form}" for algorithm in SIGNATURES for form in FORMS]

    def check(row, signed):
        found = signature_of(signed.der)
        expected = EXPECTED_SIGNATURE[row.split("/")[0]]
        if found != expected:
            return f"wrote {found}, not {expected}"
        if signed.content is not None and MARKER not in signed.content:
            return "the signed content is not the message"
        return None

    cells = run_matrix(rows, "sign", "verify", lambda row: row.split("/")[0],
                       lambda producer, row: produce_signature(world, producer, *row.split("/")), check,
                       lambda consumer, row, signed: consume_signature(world, consumer, row.split("/")[0], signed))
    report(cells, "S/MIME interop matrix, signatures (rows: algorithm/form, producer; columns: consumer)")


def test_encryption_matrix(world):
    def check(algorithm, der):
        found = encryption_of(der)
        return None if found == algorithm else f"wrote {found}, not {algorithm}"

    cells = run_matrix(ENCRYPTIONS, "encrypt", "decrypt", lambda row: row,
                       lambda producer, row: produce_encryption(world, producer, row), check,
                       lambda consumer, row, der: consume_encryption(world, consumer, row, der))
    report(cells, "S/MIME interop matrix, encryption (rows: key management+cipher, producer; columns: consumer)")


def report(cells, title):
    """Print the matrix; every cell a peer supports must have passed."""
    print("\n" + render(title, cells))
    failed = [c for c in cells if c.status not in ("ok", "unsupported")]
    assert not failed, "\n".join(f"{c.status} {c.row}: {c.producer} -> {c.consumer}: {c.reason}" for c in failed)
    assert sum(c.status == "ok" for c in cells) >= 30  # the matrix did run


def test_ed25519_clear_signature_names_its_digest_in_micalg(world):
    """RFC 8551 section 3.5.3 / RFC 8419: micalg names the digest the signature used, and
    Ed25519 in CMS digests with SHA-512; a micalg that disagrees makes strict readers fail."""
    signer = world.signers["ed"]
    signed = world.writer.ok("smime-sign", "--passphrase-file", world.writer.passfile,
                             input=message(frm=signer.email, to="someone@example.org"))
    _, der = peers.split_signed(signed)
    assert signature_of(der) == ("ed25519", "sha512")
    head = peers.crlf(signed).partition(b"\r\n\r\n")[0]
    assert b"micalg=sha-512" in head, head.decode(errors="replace")
    verdict = json.loads(world.reader.run("smime-verify", "--json", input=signed).stdout)["verdict"]
    assert verdict == "trusted"
