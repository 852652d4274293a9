"""Real S/MIME peers for interoperability tests: openssl cms, GnuPG gpgsm, NSS cmsutil.

Each runs as a real program in a throwaway home.  Message plumbing here is
deliberately independent of mailseal's own MIME code: a peer must never be
fed bytes that only mailseal's parser agreed on.
"""

import base64
import os
import re
import subprocess
import time

from tests.conftest import need


def sh(*args, input=None, env=None, check=True, cwd=None):
    result = subprocess.run([str(a) for a in args], input=input, capture_output=True, env=env, cwd=cwd, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    return result


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def split_signed(message):
    """(exact first part in CRLF, signature DER) of a multipart/signed message."""
    message = crlf(message)
    head, _, body = message.partition(b"\r\n\r\n")
    boundary = re.search(rb'boundary="?([^";\r\n]+)"?', head, re.I).group(1)
    pieces = (b"\r\n" + body).split(b"\r\n--" + boundary)
    content = pieces[1][2:]  # after the delimiter line's CRLF
    sig_part = pieces[2][2:]
    sig_body = sig_part.partition(b"\r\n\r\n")[2]
    return content, base64.b64decode(b"".join(sig_body.split()))


def body_der(message):
    """The base64 body of a single-part application/pkcs7-mime message, decoded."""
    body = crlf(message).partition(b"\r\n\r\n")[2]
    return base64.b64decode(b"".join(body.split()))


def wrap_der(der, smime_type, headers=b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: peer\r\n"):
    """A message around DER: application/pkcs7-mime, base64."""
    b64 = base64.encodebytes(der).replace(b"\n", b"\r\n")
    return (headers + b"MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=" + smime_type
            + b"; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64)


def wrap_detached(content, der, headers=b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: peer\r\n"):
    """A multipart/signed message from exact content bytes and a detached signature."""
    boundary = b"peer-boundary-4711"
    b64 = base64.encodebytes(der).replace(b"\n", b"\r\n")
    return (headers + b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\";"
            b" micalg=sha-256; boundary=\"" + boundary + b"\"\r\n\r\n--" + boundary + b"\r\n" + content
            + b"\r\n--" + boundary + b"\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--" + boundary + b"--\r\n")


class OpenSSL:
    def __init__(self, workdir):
        self.bin = need("openssl")
        self.dir = str(workdir)

    def path(self, name, data=None):
        path = os.path.join(self.dir, name)
        if data is not None:
            with open(path, "wb") as handle:
                handle.write(data)
        return path

    def verify(self, message, ca_pem, inform="SMIME"):
        """(ok, content, stderr) of `openssl cms -verify`."""
        out = self.path("verified.out")
        result = sh(self.bin, "cms", "-verify", "-inform", inform, "-in", self.path("in.msg", message),
                    "-CAfile", self.path("ca.pem", ca_pem), "-out", out, check=False)
        content = open(out, "rb").read() if os.path.exists(out) else b""
        return result.returncode == 0, content, result.stderr.decode(errors="replace")

    def decrypt(self, message, person, inform="SMIME"):
        out = self.path("decrypted.out")
        result = sh(self.bin, "cms", "-decrypt", "-inform", inform, "-in", self.path("in.msg", message),
                    "-recip", self.path("recip.pem", person.cert_pem()), "-inkey", self.path("key.pem", person.key_pem()),
                    "-out", out, check=False)
        return result.returncode == 0, (open(out, "rb").read() if result.returncode == 0 else b""), result.stderr

    def sign(self, content, person, *options):
        """`openssl cms -sign` S/MIME output (clear-signed unless -nodetach)."""
        return sh(self.bin, "cms", "-sign", "-in", self.path("content.txt", content),
                  "-signer", self.path("signer.pem", person.cert_pem()),
                  "-inkey", self.path("signer.key", person.key_pem()),
                  "-certfile", self.path("chain.pem", person.ca.pem()), *options).stdout

    def encrypt(self, content, *people, options=(), keyopts=()):
        """`openssl cms -encrypt`; keyopts (e.g. rsa_padding_mode:oaep) apply to every recipient."""
        recipients = []
        for i, person in enumerate(people):
            recipients += ["-recip", self.path(f"r{i}.pem", person.cert_pem())]
            for keyopt in keyopts:
                recipients += ["-keyopt", keyopt]
        return sh(self.bin, "cms", "-encrypt", "-in", self.path("content.txt", content), *options,
                  *recipients).stdout


class Gpgsm:
    """gpgsm in a throwaway GNUPGHOME (no dirmngr, no CRLs, no prompts)."""

    def __init__(self, workdir, ca):
        self.bin = need("gpgsm")
        self.home = os.path.join(str(workdir), "gnupg")
        os.makedirs(self.home, mode=0o700)
        with open(os.path.join(self.home, "gpgsm.conf"), "w") as handle:
            handle.write("disable-crl-checks\ndisable-trusted-cert-crl-check\ndisable-dirmngr\n"
                         "disable-policy-checks\npinentry-mode loopback\n")
        with open(os.path.join(self.home, "gpg-agent.conf"), "w") as handle:
            handle.write("allow-loopback-pinentry\n")
        from cryptography.hazmat.primitives import hashes

        fpr = ca.cert.fingerprint(hashes.SHA1()).hex().upper()
        with open(os.path.join(self.home, "trustlist.txt"), "w") as handle:
            handle.write(f"{fpr} S relax\n")
        self.env = dict(os.environ, GNUPGHOME=self.home)
        self.run("--import", self.file("ca.pem", ca.pem()))

    def file(self, name, data):
        path = os.path.join(self.home, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    def run(self, *args, input=None, check=True):
        return sh(self.bin, "--batch", "--status-fd", "2", *args, input=input, env=self.env, check=check)

    def import_person(self, person, with_key=False):
        if with_key:  # gpgsm 2.2 reads only 3DES/SHA-1 PKCS#12; an empty passphrase leaves the key open
            p12 = os.path.join(self.home, "p.p12")
            sh(need("openssl"), "pkcs12", "-export", "-in", self.file("p.pem", person.cert_pem()),
               "-inkey", self.file("p.key", person.key_pem()), "-passout", "pass:", "-keypbe", "PBE-SHA1-3DES",
               "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-out", p12)
            self.run("--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12, input=b"\n")
        else:
            self.run("--import", self.file("p.pem", person.cert_pem()))

    def verify_detached(self, content, sig):
        result = self.run("--verify", self.file("sig.der", sig), self.file("content.bin", content), check=False)
        status = result.stderr.decode(errors="replace")
        return result.returncode == 0 and "GOODSIG" in status and "TRUST_FULLY" in status, status

    def verify_opaque(self, der):
        out = os.path.join(self.home, "opaque.out")
        result = self.run("--output", out, "--verify", self.file("sig.der", der), check=False)
        status = result.stderr.decode(errors="replace")
        ok = result.returncode == 0 and "GOODSIG" in status and "TRUST_FULLY" in status
        return ok, (open(out, "rb").read() if ok else b""), status

    def decrypt(self, der):
        """gpgsm 2.2 exits 2 when any RecipientInfo before ours names a key it lacks,
        even after DECRYPTION_OKAY; the status line and the output decide."""
        out = os.path.join(self.home, "dec.out")
        result = self.run("--output", out, "--decrypt", self.file("enc.der", der), check=False)
        ok = b"[GNUPG:] DECRYPTION_OKAY" in result.stderr and b"DECRYPTION_FAILED" not in result.stderr
        plain = open(out, "rb").read() if ok and os.path.exists(out) else b""
        return ok and bool(plain), plain, result.stderr

    def sign(self, content, email, detached=True):
        out = os.path.join(self.home, "sig.out")
        if os.path.exists(out):
            os.unlink(out)
        self.run("-u", email, "--output", out, "--detach-sign" if detached else "--sign",
                 self.file("content.txt", content))
        return open(out, "rb").read()

    def encrypt(self, content, *emails):
        out = os.path.join(self.home, "enc.out")
        if os.path.exists(out):
            os.unlink(out)
        args = []
        for email in emails:
            args += ["-r", email]
        self.run("--cipher-algo", "AES256", *args, "--output", out, "--encrypt", self.file("content.txt", content))
        return open(out, "rb").read()

    def close(self):
        sh(need("gpgconf"), "--homedir", self.home, "--kill", "all", check=False)
        time.sleep(0.2)


class Nss:
    """NSS (Thunderbird's engine) cmsutil with a throwaway certificate database."""

    def __init__(self, workdir, ca):
        self.cmsutil = need("cmsutil")
        self.dir = os.path.join(str(workdir), "nss")
        os.makedirs(self.dir)
        self.db = "sql:" + self.dir
        sh(need("certutil"), "-N", "-d", self.db, "--empty-password")
        sh(need("certutil"), "-A", "-d", self.db, "-n", "ca", "-t", "C,C,C", "-i", self.file("ca.pem", ca.pem()))

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    def import_person(self, person, with_key=False):
        if with_key:
            sh(need("pk12util"), "-i", self.file("p.p12", person.p12(b"nss")), "-d", self.db, "-W", "nss", "-K", "")
        else:
            sh(need("certutil"), "-A", "-d", self.db, "-n", person.email, "-t", ",,",
               "-i", self.file("p.pem", person.cert_pem()))

    def decrypt(self, der):
        out = os.path.join(self.dir, "dec.out")
        result = sh(self.cmsutil, "-D", "-i", self.file("enc.der", der), "-d", self.db, "-p", "", "-o", out,
                    check=False)
        return result.returncode == 0, (open(out, "rb").read() if result.returncode == 0 else b""), result.stderr

    def verify_detached(self, content, sig):
        result = sh(self.cmsutil, "-D", "-n", "-c", self.file("content.bin", content), "-i", self.file("sig.der", sig),
                    "-d", self.db, check=False)
        return result.returncode == 0, result.stderr

    def encrypt(self, content, *emails):
        out = os.path.join(self.dir, "enc.out")
        sh(self.cmsutil, "-E", "-r", ",".join(emails), "-i", self.file("content.txt", content), "-o", out,
           "-d", self.db)
        return open(out, "rb").read()

    def sign(self, content, nickname, detached=True):
        out = os.path.join(self.dir, "sig.out")
        sh(self.cmsutil, "-S", *(["-T"] if detached else []), "-N", nickname, "-G", "-P", "-H", "SHA256",
           "-i", self.file("content.txt", content), "-o", out, "-d", self.db, "-p", "")
        return open(out, "rb").read()
