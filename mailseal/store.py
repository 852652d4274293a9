"""The trust database: one SQLite file shared by every mailseal program.

It records certificates, which address each is bound to (and where that
binding came from: a signed message, the user, the directory, an own
identity), the CA certificates the user trusts, the user's own identities
and an event log of every change.  Several programs use it at once (a mail
client renders while a hook imports), so it runs in WAL mode with a busy
timeout, and every change is one transaction.
"""

import json
import os
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone

from . import paths
from .errors import DatabaseError

SCHEMA_VERSION = 3


def busy_timeout_ms():
    """How long a writer waits for another one: $MAILSEAL_BUSY_TIMEOUT_MS, else 15 s."""
    try:
        return max(0, int(os.environ.get("MAILSEAL_BUSY_TIMEOUT_MS", "15000")))
    except ValueError:
        return 15000

#: schema changes, by the version they lead to; each runs in one transaction
MIGRATIONS = {
    1: """
    CREATE TABLE certificates (
        fingerprint TEXT PRIMARY KEY,          -- SHA-256, lower-case hex
        der BLOB NOT NULL,
        subject TEXT NOT NULL,
        issuer TEXT NOT NULL,
        serial TEXT NOT NULL,                  -- hex
        not_before TEXT NOT NULL,              -- ISO 8601, UTC
        not_after TEXT NOT NULL,
        is_ca INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE INDEX certificates_serial ON certificates(serial);
    CREATE TABLE bindings (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,                 -- normalised addr-spec
        fingerprint TEXT NOT NULL REFERENCES certificates(fingerprint),
        source TEXT NOT NULL CHECK (source IN ('message', 'user', 'directory', 'identity')),
        state TEXT NOT NULL CHECK (state IN ('trusted', 'seen', 'removed')),
        signing_time TEXT,                     -- of the latest message it was seen in
        capabilities TEXT,                     -- JSON list of algorithm names
        encrypt_key_pref TEXT,                 -- fingerprint the sender prefers we encrypt to
        message_id TEXT,
        first_seen TEXT NOT NULL,              -- messages: earliest signing time; else when recorded
        last_seen TEXT NOT NULL,               -- messages: latest signing time; else last change
        UNIQUE (address, fingerprint, source)
    );
    CREATE INDEX bindings_address ON bindings(address);
    CREATE TABLE anchors (
        fingerprint TEXT PRIMARY KEY REFERENCES certificates(fingerprint),
        state TEXT NOT NULL CHECK (state IN ('trusted', 'removed')),
        added TEXT NOT NULL
    );
    CREATE TABLE identities (
        fingerprint TEXT PRIMARY KEY REFERENCES certificates(fingerprint),
        key_file TEXT NOT NULL,                -- relative to MAILSEAL_HOME
        protected INTEGER NOT NULL,
        chain TEXT NOT NULL,                   -- JSON list of fingerprints
        added TEXT NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        action TEXT NOT NULL,
        address TEXT,
        fingerprint TEXT,
        detail TEXT
    );
    """,
    2: """
    -- what a directory (LDAP) answered for an address, until when to believe it
    CREATE TABLE directory_lookups (
        address TEXT NOT NULL,
        directory TEXT NOT NULL,               -- its URL and base DN
        looked_up TEXT NOT NULL,
        expires TEXT NOT NULL,
        fingerprints TEXT NOT NULL,            -- JSON list: the certificates it held
        problems TEXT,                         -- JSON list: what it held that was unreadable
        PRIMARY KEY (address, directory)
    );
    """,
    3: """
    -- messages that arrived encrypted (their Message-ID), so that a reply is encrypted too
    CREATE TABLE encrypted_messages (
        message_id TEXT PRIMARY KEY,           -- as in the header, angle brackets included
        seen TEXT NOT NULL
    );
    """,
}


def now_iso():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _iso(moment):
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat() if moment else None


@contextmanager
def _errors(path):
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise DatabaseError(f"the trust database {path} is locked by another program; try again") from None
        if "unable to open" in text or "readonly" in text or "read-only" in text:
            raise DatabaseError(f"the trust database {path} cannot be opened or written ({text})") from None
        raise DatabaseError(f"the trust database {path} failed: {text}") from None
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"the trust database {path} is corrupt or not a database ({exc})") from None


class Store:
    """A connection to the trust database.

    create=False opens nothing when the file does not exist yet: readers
    (verify) then see an empty database without leaving a file behind.
    """

    def __init__(self, path=None, create=True):
        self.path = path or paths.database()
        self.conn = None
        with _errors(self.path):
            if not os.path.exists(self.path):
                if not create:
                    self.conn = sqlite3.connect(":memory:", isolation_level=None)
                    self._migrate()
                    return
                paths.ensure_home()
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
                os.close(fd)
            if not os.access(self.path, os.R_OK):
                raise DatabaseError(f"the trust database {self.path} is not readable (check its permissions)")
            timeout = busy_timeout_ms()
            self.conn = sqlite3.connect(self.path, timeout=timeout / 1000, isolation_level=None)
            self.conn.execute(f"PRAGMA busy_timeout = {timeout}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise DatabaseError(f"the trust database {self.path} cannot use WAL mode ({mode})")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _migrate(self):
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"the trust database {self.path} was written by a newer mailseal (schema {version})")
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, SCHEMA_VERSION + 1):
                statement = ""
                for line in MIGRATIONS[target].splitlines(keepends=True):
                    statement += line
                    if sqlite3.complete_statement(statement):  # knows about comments and quotes
                        self.conn.execute(statement)
                        statement = ""
                self.conn.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def transaction(self):
        """One write transaction (BEGIN IMMEDIATE: writers queue, readers go on).

        Inside another one it adds to that one: a batch can gather many
        changes into one commit."""
        if self.conn.in_transaction:
            yield self.conn
            return
        with _errors(self.path):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql, args=()):
        with _errors(self.path):
            cursor = self.conn.execute(sql, args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    # -- certificates ---------------------------------------------------

    def add_certificate(self, cert):
        """Record cert (idempotent); return its fingerprint.  Call inside a transaction."""
        from . import certs

        fp = certs.fingerprint(cert)
        stamp = now_iso()
        # known already (the usual case in a bulk import): no need to format its names
        if self.conn.execute("UPDATE certificates SET last_seen = ? WHERE fingerprint = ?", (stamp, fp)).rowcount:
            return fp
        self.conn.execute(
            "INSERT INTO certificates (fingerprint, der, subject, issuer, serial, not_before, not_after, is_ca,"
            " first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (fingerprint) DO UPDATE SET last_seen = excluded.last_seen",
            (fp, certs.der(cert), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
             format(cert.serial_number, "x"), _iso(certs.not_before(cert)), _iso(certs.not_after(cert)),
             int(certs.is_ca(cert)), stamp, stamp))
        return fp

    def certificate(self, fp):
        from . import certs

        rows = self.query("SELECT der FROM certificates WHERE fingerprint = ?", (fp,))
        return certs.load_der(rows[0]["der"]) if rows else None

    def fingerprints_like(self, prefix):
        prefix = prefix.lower().replace(":", "")
        return [r["fingerprint"] for r in self.query(
            "SELECT fingerprint FROM certificates WHERE fingerprint LIKE ? ORDER BY fingerprint", (prefix + "%",))]

    def certificates_with_serial(self, serial):
        """DER of every certificate on record with this serial number."""
        return [r["der"] for r in self.query("SELECT der FROM certificates WHERE serial = ?",
                                             (format(serial, "x"),))]

    def all_certificate_ders(self, ca_only=False):
        sql = "SELECT der FROM certificates" + (" WHERE is_ca = 1" if ca_only else "")
        return [r["der"] for r in self.query(sql)]

    # -- bindings -------------------------------------------------------

    def bind(self, address, fp, source, state, *, signing_time=None, capabilities=None,
             encrypt_key_pref=None, message_id=None):
        """Create or update one address-certificate binding.  Inside a transaction."""
        stamp = now_iso()
        caps = json.dumps(capabilities) if capabilities is not None else None
        self.conn.execute(
            "INSERT INTO bindings (address, fingerprint, source, state, signing_time, capabilities,"
            " encrypt_key_pref, message_id, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (address, fingerprint, source) DO UPDATE SET state = excluded.state,"
            " last_seen = excluded.last_seen,"
            " signing_time = COALESCE(excluded.signing_time, signing_time),"
            " capabilities = COALESCE(excluded.capabilities, capabilities),"
            " encrypt_key_pref = COALESCE(excluded.encrypt_key_pref, encrypt_key_pref),"
            " message_id = COALESCE(excluded.message_id, message_id)",
            (address, fp, source, state, _iso(signing_time), caps, encrypt_key_pref, message_id, stamp, stamp))

    def record_sighting(self, address, fp, moment, *, capabilities=None, encrypt_key_pref=None, message_id=None):
        """Record that a signed message showed certificate fp for address.  Inside a transaction.

        For such bindings first_seen/last_seen are the signing times of the
        earliest and latest messages, so seeing the same message again
        writes nothing.  Returns 'new', 'newer', 'older' or 'known'.
        """
        moment = _iso(moment)
        rows = self.query("SELECT * FROM bindings WHERE address = ? AND fingerprint = ? AND source = 'message'",
                          (address, fp))
        caps = json.dumps(capabilities) if capabilities is not None else None
        if not rows:
            self.conn.execute(
                "INSERT INTO bindings (address, fingerprint, source, state, signing_time, capabilities,"
                " encrypt_key_pref, message_id, first_seen, last_seen) VALUES (?, ?, 'message', 'seen', ?, ?, ?, ?, ?, ?)",
                (address, fp, moment, caps, encrypt_key_pref, message_id, moment, moment))
            return "new"
        row = rows[0]
        if row["first_seen"] <= moment <= row["last_seen"]:
            return "known"
        if moment > row["last_seen"]:
            self.conn.execute(
                "UPDATE bindings SET last_seen = ?, signing_time = ?, message_id = COALESCE(?, message_id),"
                " capabilities = COALESCE(?, capabilities), encrypt_key_pref = COALESCE(?, encrypt_key_pref)"
                " WHERE id = ?", (moment, moment, message_id, caps, encrypt_key_pref, row["id"]))
            return "newer"
        self.conn.execute("UPDATE bindings SET first_seen = ? WHERE id = ?", (moment, row["id"]))
        return "older"

    def bindings(self, address=None, fingerprint=None):
        """Bindings joined with their certificates, newest first."""
        sql = ("SELECT b.*, c.der, c.subject, c.issuer, c.not_before, c.not_after FROM bindings b"
               " JOIN certificates c ON c.fingerprint = b.fingerprint")
        where, args = [], []
        if address is not None:
            where.append("b.address = ?")
            args.append(address)
        if fingerprint is not None:
            where.append("b.fingerprint = ?")
            args.append(fingerprint)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY b.address, c.not_before DESC"
        return self.query(sql, args)

    def set_binding_state(self, address, fp, state, sources=None, only_state=None):
        """Change the state of the bindings of address to fp.  Inside a transaction."""
        sql = "UPDATE bindings SET state = ?, last_seen = ? WHERE address = ? AND fingerprint = ?"
        args = [state, now_iso(), address, fp]
        if sources:
            sql += " AND source IN (%s)" % ",".join("?" * len(sources))
            args += list(sources)
        if only_state:
            sql += " AND state = ?"
            args.append(only_state)
        return self.conn.execute(sql, args).rowcount

    # -- anchors --------------------------------------------------------

    def add_anchor(self, cert):
        fp = self.add_certificate(cert)
        self.conn.execute(
            "INSERT INTO anchors (fingerprint, state, added) VALUES (?, 'trusted', ?)"
            " ON CONFLICT (fingerprint) DO UPDATE SET state = 'trusted'", (fp, now_iso()))
        return fp

    def set_anchor_state(self, fp, state):
        return self.conn.execute("UPDATE anchors SET state = ? WHERE fingerprint = ?", (state, fp)).rowcount

    def anchors(self):
        from . import certs

        return [certs.load_der(r["der"]) for r in self.query(
            "SELECT c.der FROM anchors a JOIN certificates c ON c.fingerprint = a.fingerprint"
            " WHERE a.state = 'trusted'")]

    def anchor_rows(self):
        return self.query("SELECT a.*, c.subject, c.not_after FROM anchors a"
                          " JOIN certificates c ON c.fingerprint = a.fingerprint ORDER BY a.added")

    # -- identities -----------------------------------------------------

    def add_identity(self, fp, key_file, protected, chain):
        self.conn.execute(
            "INSERT INTO identities (fingerprint, key_file, protected, chain, added) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (fingerprint) DO UPDATE SET key_file = excluded.key_file,"
            " protected = excluded.protected, chain = excluded.chain",
            (fp, key_file, int(protected), json.dumps(chain), now_iso()))

    def identity_rows(self):
        return self.query("SELECT i.*, c.der FROM identities i JOIN certificates c ON c.fingerprint = i.fingerprint"
                          " ORDER BY c.not_before DESC")

    # -- directory lookups ----------------------------------------------

    def directory_lookup(self, address, directory):
        rows = self.query("SELECT * FROM directory_lookups WHERE address = ? AND directory = ?", (address, directory))
        if not rows:
            return None
        row = rows[0]
        row["fingerprints"] = json.loads(row["fingerprints"])
        row["problems"] = json.loads(row["problems"]) if row["problems"] else []
        return row

    def record_directory_lookup(self, address, directory, fingerprints, problems, expires):
        """Remember a directory's answer; its certificates no longer in it lose their
        directory binding (unless you removed them: that decision stays).  Inside a transaction."""
        stamp = now_iso()
        previous = self.directory_lookup(address, directory)
        for fp in (previous["fingerprints"] if previous else []):
            if fp not in fingerprints:
                self.conn.execute("DELETE FROM bindings WHERE address = ? AND fingerprint = ? AND source = 'directory'"
                                  " AND state = 'seen'", (address, fp))
        self.conn.execute(
            "INSERT INTO directory_lookups (address, directory, looked_up, expires, fingerprints, problems)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (address, directory) DO UPDATE SET looked_up = excluded.looked_up,"
            " expires = excluded.expires, fingerprints = excluded.fingerprints, problems = excluded.problems",
            (address, directory, stamp, _iso(expires), json.dumps(fingerprints), json.dumps(problems)))

    # -- messages that came encrypted -----------------------------------

    def remember_encrypted(self, message_id):
        """Record that the message with this Message-ID arrived encrypted (idempotent)."""
        if not message_id:
            return
        with self.transaction():
            self.conn.execute("INSERT INTO encrypted_messages (message_id, seen) VALUES (?, ?)"
                              " ON CONFLICT (message_id) DO NOTHING", (message_id.strip(), now_iso()))

    def was_encrypted(self, message_ids):
        """Which of these Message-IDs arrived encrypted, as far as mailseal saw."""
        ids = [m.strip() for m in message_ids if m]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        return [r["message_id"] for r in self.query(
            f"SELECT message_id FROM encrypted_messages WHERE message_id IN ({marks})", ids)]

    # -- events ---------------------------------------------------------

    def log(self, action, address=None, fingerprint=None, detail=None):
        """Append to the event log.  Inside a transaction."""
        self.conn.execute("INSERT INTO events (time, action, address, fingerprint, detail) VALUES (?, ?, ?, ?, ?)",
                          (now_iso(), action, address, fingerprint,
                           json.dumps(detail) if isinstance(detail, (dict, list)) else detail))

    def events(self, limit=100):
        return self.query("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
