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

    def sign_der(self, content, person, *options, detached=True):
        """`openssl cms -sign -binary` as DER: a detached signature, or (detached=False) opaque signed-data."""
        return sh(self.bin, "cms", "-sign", "-binary", "-outform", "DER", *(() if detached else ("-nodetach",)),
                  "-in", self.path("content.txt", content),
                  "-signer", self.path("signer.pem", person.cert_pem()),
                  "-inkey", self.path("signer.key", person.key_pem()),
                  "-certfile", self.path("chain.pem", person.ca.pem()), *options).stdout

    def verify_der(self, der, ca_pem, content=None):
        """(ok, content, stderr) of `openssl cms -verify -binary` on DER, detached when content is given."""
        out = self.path("verified.out")
        if os.path.exists(out):
            os.unlink(out)
        detached = ("-content", self.path("detached.bin", content)) if content is not None else ()
        result = sh(self.bin, "cms", "-verify", "-binary", "-inform", "DER", "-in", self.path("in.der", der),
                    *detached, "-CAfile", self.path("ca.pem", ca_pem), "-out", out, check=False)
        ok = result.returncode == 0
        content = open(out, "rb").read() if ok and os.path.exists(out) else b""
        return ok, content, result.stderr.decode(errors="replace")


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
        return self.encrypt_with(content, "AES256", *emails)

    def import_key_by_hand(self, person):
        """Give gpg-agent the private key directly, unprotected, as its own key file.

        gpgsm 2.2.40 crashes importing EC PKCS#12 files (EC import came in 2.2.42), and it
        fails on about one in thirty of the 3DES files import_person(with_key=True) writes
        ("data error at shrouded_key_bag.decrypted-text"): this takes RSA, EC and Ed25519
        keys without PKCS#12.  The certificate is imported first."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        def mpi(number):  # libgcrypt reads #hex# as a signed big-endian integer
            raw = number.to_bytes((number.bit_length() + 7) // 8 or 1, "big")
            return ("00" if raw[0] & 0x80 else "") + raw.hex()

        self.import_person(person)
        listing = sh(self.bin, "--with-colons", "--with-keygrip", "-k", person.email, env=self.env).stdout.decode()
        keygrip = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("grp:"))
        key = person.key
        if isinstance(key, rsa.RSAPrivateKey):
            numbers = key.private_numbers()
            p, q = sorted((numbers.p, numbers.q))  # libgcrypt wants p < q and u = p^-1 mod q
            sexp = (f"(private-key (rsa (n #{mpi(numbers.public_numbers.n)}#)\n (e #{mpi(numbers.public_numbers.e)}#)"
                    f"\n (d #{mpi(numbers.d)}#)\n (p #{mpi(p)}#)\n (q #{mpi(q)}#)\n (u #{mpi(pow(p, -1, q))}#)))")
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            curve = {"secp256r1": "NIST P-256", "secp384r1": "NIST P-384", "secp521r1": "NIST P-521"}[key.curve.name]
            q = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint).hex()
            sexp = f'(private-key (ecc (curve "{curve}") (q #{q}#) (d #{mpi(key.private_numbers().private_value)}#)))'
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            q = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
            d = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption()).hex()
            sexp = f"(private-key (ecc (curve Ed25519) (flags eddsa) (q #40{q}#) (d #{d}#)))"
        else:
            raise ValueError(f"import_key_by_hand takes RSA, EC or Ed25519 keys, not {type(key).__name__}")
        keys = os.path.join(self.home, "private-keys-v1.d")
        os.makedirs(keys, mode=0o700, exist_ok=True)
        with open(os.path.join(keys, keygrip + ".key"), "w") as handle:
            handle.write(f"Key: {sexp}\n")

    def encrypt_with(self, content, cipher_algo, *emails):
        """`gpgsm --encrypt --cipher-algo CIPHER_ALGO` (e.g. AES128, AES256) to the given addresses, as DER."""
        out = os.path.join(self.home, "enc.out")
        if os.path.exists(out):
            os.unlink(out)
        args = []
        for email in emails:
            args += ["-r", email]
        self.run("--cipher-algo", cipher_algo, *args, "--output", out, "--encrypt", self.file("content.txt", content))
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

    def verify_opaque(self, der):
        """(ok, content, stderr) of `cmsutil -D` on opaque signed-data (rc 0 only for a good, trusted signature)."""
        out = os.path.join(self.dir, "opaque.out")
        if os.path.exists(out):
            os.unlink(out)
        result = sh(self.cmsutil, "-D", "-i", self.file("sig.der", der), "-d", self.db, "-o", out, check=False)
        ok = result.returncode == 0
        return ok, (open(out, "rb").read() if ok and os.path.exists(out) else b""), result.stderr
