"""A real slapd for the directory tests: started on 127.0.0.1 with a generated configuration."""

import os
import shutil
import signal
import socket
import subprocess
import time

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=org"
ADMIN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
READER = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Slapd:
    """slapd in a directory of its own; entries added through python-ldap as the root DN."""

    def __init__(self, workdir, tls=None):
        """tls: (certificate PEM file, key PEM file) to also listen on ldaps:// and offer StartTLS."""
        if not os.path.exists(SLAPD):
            raise RuntimeError("slapd is not installed: run make deps")
        self.dir = str(workdir)
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        self.conf = os.path.join(self.dir, "slapd.conf")
        config = CONFIG.format(dir=self.dir, suffix=SUFFIX, admin=ADMIN, password=ADMIN_PASSWORD)
        if tls:
            config = f"TLSCertificateFile {tls[0]}\nTLSCertificateKeyFile {tls[1]}\n" + config
        with open(self.conf, "w") as handle:
            handle.write(config)
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.tls_port = free_port() if tls else None
        self.ldaps_url = f"ldaps://127.0.0.1:{self.tls_port}" if tls else None
        self.proc = None
        self.start()
        self.add(SUFFIX, objectClass=[b"dcObject", b"organization"], dc=[b"example"], o=[b"Example"])
        self.add(f"ou=people,{SUFFIX}", objectClass=[b"organizationalUnit"], ou=[b"people"])
        self.add(READER, objectClass=[b"person"], cn=[b"reader"], sn=[b"reader"],
                 userPassword=[READER_PASSWORD.encode()])

    def start(self):
        listen = self.url + "/" + (f" {self.ldaps_url}/" if self.ldaps_url else "")
        self.proc = subprocess.Popen([SLAPD, "-f", self.conf, "-h", listen, "-d", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("slapd did not start: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not listen within 20 s")

    def connection(self):
        import ldap

        conn = ldap.initialize(self.url)
        conn.simple_bind_s(ADMIN, ADMIN_PASSWORD)
        return conn

    def add(self, dn, **attributes):
        conn = self.connection()
        try:
            conn.add_s(dn, [(name.replace("_", ";"), values) for name, values in attributes.items()])
        finally:
            conn.unbind_s()

    def replace(self, dn, name, values):
        import ldap

        conn = self.connection()
        try:
            conn.modify_s(dn, [(ldap.MOD_REPLACE, name, values)])
        finally:
            conn.unbind_s()

    def person(self, uid, mail, *, certificates=(), smime=()):
        """An inetOrgPerson with userCertificate;binary values (DER) and userSMIMECertificate values."""
        attributes = {"objectClass": [b"inetOrgPerson"], "uid": [uid.encode()], "cn": [uid.encode()],
                      "sn": [uid.encode()], "mail": [mail.encode()]}
        if certificates:
            attributes["userCertificate_binary"] = list(certificates)
        if smime:
            attributes["userSMIMECertificate"] = list(smime)
        self.add(f"uid={uid},ou=people,{SUFFIX}", **attributes)

    def pause(self):
        """Stop answering (SIGSTOP): connections are accepted by the kernel, nothing replies."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(os.path.join(self.dir, "db"), ignore_errors=True)
