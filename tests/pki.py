"""Throwaway certificate authorities and S/MIME identities for the tests."""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


def new_key(kind="rsa"):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    curves = {"ec-p384": ec.SECP384R1, "ec-p521": ec.SECP521R1}
    if kind in curves:
        return ec.generate_private_key(curves[kind]())
    raise ValueError(kind)


def name(cn, email=None):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailseal tests")]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


class CA:
    def __init__(self, cn="mailseal Test CA", key=None, not_before=None, not_after=None):
        self.key = key or new_key()
        self.name = name(cn)
        builder = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                   .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or NOW - 30 * DAY).not_valid_after(not_after or NOW + 3650 * DAY)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False))
        self.cert = builder.sign(self.key, hashes.SHA256())

    def issue(self, email, *, cn=None, kind="rsa", key=None, not_before=None, not_after=None, san=True,
              dn_email=False, key_usage="both", eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION,), extra_emails=()):
        key = key or new_key(kind)
        builder = (x509.CertificateBuilder()
                   .subject_name(name(cn or email.split("@")[0].title(), email if dn_email else None))
                   .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or NOW - DAY).not_valid_after(not_after or NOW + 365 * DAY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.RFC822Name(e) for e in (email, *extra_emails)]), critical=False)
        if key_usage:
            sign = key_usage in ("both", "sign")
            enc = key_usage in ("both", "encrypt")
            is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=sign, content_commitment=False, key_encipherment=enc and not is_ec,
                data_encipherment=False, key_agreement=enc and is_ec, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Person(email, key, cert, self)

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory, filename="ca.pem"):
        path = os.path.join(directory, filename)
        with open(path, "wb") as handle:
            handle.write(self.pem())
        return path


class Person:
    def __init__(self, email, key, cert, ca):
        self.email = email
        self.key = key
        self.cert = cert
        self.ca = ca

    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def p12(self, password=b"secret", chain=True, legacy=False):
        cas = [self.ca.cert] if chain and self.ca else None
        if legacy:  # 3DES + SHA-1 MAC, what gpgsm 2.2 and old tools read
            encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                          .kdf_rounds(2048)
                          .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                          .hmac_hash(hashes.SHA1()).build(password))
        elif password:
            encryption = serialization.BestAvailableEncryption(password)
        else:
            encryption = serialization.NoEncryption()
        return pkcs12.serialize_key_and_certificates(self.email.encode(), self.key, self.cert, cas, encryption)

    def write(self, directory, password=b"secret", **kw):
        """Write NAME.p12, NAME.pem (cert) and NAME.key; return the .p12 path."""
        base = os.path.join(directory, self.email.split("@")[0])
        with open(base + ".p12", "wb") as handle:
            handle.write(self.p12(password, **kw))
        with open(base + ".pem", "wb") as handle:
            handle.write(self.cert_pem())
        with open(base + ".key", "wb") as handle:
            handle.write(self.key_pem())
        return base + ".p12"


def self_signed(email, kind="rsa"):
    """A self-signed S/MIME identity without any CA."""
    key = new_key(kind)
    subject = name(email.split("@")[0].title())
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - DAY).not_valid_after(NOW + 365 * DAY)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .sign(key, hashes.SHA256()))
    return Person(email, key, cert, None)
