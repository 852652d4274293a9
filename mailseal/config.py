"""The configuration file: accounts (matched by From) and trust settings.

Read with tomllib from $MAILSEAL_CONFIG, else
$XDG_CONFIG_HOME/mailseal/config.toml.  A missing file means defaults; a
malformed one is an error that names the file and the line.
"""

import os
from dataclasses import dataclass, field

from . import paths
from .addresses import normalize
from .errors import ConfigError

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class Account:
    name: str
    addresses: list = field(default_factory=list)
    identity: str = None
    sign_by_default: bool = True
    encrypt_by_default: bool = False
    sendmail: str = "/usr/sbin/sendmail"
    passphrase_command: str = None
    oaep: bool = False  # RSA-OAEP key transport for RSA recipients (else PKCS#1 v1.5, which all read)
    protect_headers: str = "encrypted"  # header protection (RFC 9788): "encrypted", "always" or "never"
    directory: dict = None


@dataclass
class Directory:
    """An account's LDAP directory ([accounts.NAME.directory]): where colleagues' certificates are."""

    account: str
    url: str
    base: str
    bind_dn: str = None  # none: an anonymous bind
    password: str = None
    password_command: str = None
    filter: str = "(mail=%s)"  # %s: the address, escaped (RFC 4515)
    attributes: list = field(default_factory=lambda: ["userCertificate;binary", "userSMIMECertificate"])
    starttls: bool = False
    ca_file: str = None  # CA certificates for ldaps:// and StartTLS (else the system's)
    timeout: float = 10.0  # seconds, for connecting and for each answer
    order: str = "local-first"  # or "directory-first"
    cache_hours: float = 24.0  # how long an answer is believed

    @property
    def key(self):
        return f"{self.url} {self.base}"


_DIRECTORY_TYPES = {
    "url": str, "base": str, "bind_dn": str, "password": str, "password_command": str, "filter": str,
    "attributes": list, "starttls": bool, "ca_file": str, "timeout": (int, float), "order": str,
    "cache_hours": (int, float),
}


@dataclass
class Config:
    path: str
    accounts: list = field(default_factory=list)
    allow_sha1: bool = False
    system_anchors: bool = False
    system_bundle: str = SYSTEM_BUNDLE
    mutt_export_dir: str = None  # [mutt] export_dir: keep mutt's key store in sync

    def directories(self, sender=None):
        """The directories to ask: the sending account's, or (no sender) every account's."""
        if sender is not None:
            account = self.account_for(sender)
            return [account.directory] if account and account.directory else []
        return [a.directory for a in self.accounts if a.directory]

    def account_for(self, address):
        """The account whose addresses include address, or None."""
        if not address:
            return None
        address = normalize(address)
        for account in self.accounts:
            if address in account.addresses:
                return account
        return None


_ACCOUNT_TYPES = {
    "addresses": list, "identity": str, "sign_by_default": bool, "encrypt_by_default": bool,
    "sendmail": str, "passphrase_command": str, "oaep": bool, "protect_headers": str, "directory": dict,
}
_TRUST_TYPES = {"allow_sha1": bool, "system_anchors": bool, "system_bundle": str}
_MUTT_TYPES = {"export_dir": str}


def _line_of(text, needle):
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None


def _fail(path, text, needle, message):
    line = _line_of(text, needle) if needle else None
    where = f"{path}, line {line}" if line else path
    raise ConfigError(f"{where}: {message}")


def load(path=None):
    """Read the configuration; defaults when the file does not exist."""
    import tomllib

    path = path or paths.config_file()
    if not os.path.exists(path):
        return Config(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    text = raw.decode("utf-8", "replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        line = None
        if "(at line " in message:
            line = message.split("(at line ", 1)[1].split(",")[0]
            message = message.split(" (at line ")[0]
        raise ConfigError(f"{path}, line {line}: {message}" if line else f"{path}: {message}") from None
    config = Config(path)
    for section, types, prefix in (("trust", _TRUST_TYPES, ""), ("mutt", _MUTT_TYPES, "mutt_")):
        table = data.get(section, {})
        if not isinstance(table, dict):
            _fail(path, text, section, f"[{section}] must be a table")
        for key, value in table.items():
            if key not in types:
                _fail(path, text, key, f"unknown setting {section}.{key} (known: {', '.join(types)})")
            if not isinstance(value, types[key]):
                _fail(path, text, key, f"{section}.{key} must be a {types[key].__name__}")
            setattr(config, prefix + key, value)
    accounts = data.get("accounts", {})
    if not isinstance(accounts, dict):
        _fail(path, text, "accounts", "accounts must be tables: [accounts.NAME]")
    known = {"trust", "mutt", "accounts"}
    for section in data:
        if section not in known:
            _fail(path, text, section, f"unknown section [{section}] (known: {', '.join(sorted(known))})")
    for name, table in accounts.items():
        if not isinstance(table, dict):
            _fail(path, text, f"accounts.{name}", f"accounts.{name} must be a table")
        account = Account(name)
        for key, value in table.items():
            if key not in _ACCOUNT_TYPES:
                _fail(path, text, key, f"unknown setting accounts.{name}.{key} (known: {', '.join(_ACCOUNT_TYPES)})")
            if not isinstance(value, _ACCOUNT_TYPES[key]):
                _fail(path, text, key, f"accounts.{name}.{key} must be a {_ACCOUNT_TYPES[key].__name__}")
            setattr(account, key, value)
        if account.protect_headers not in ("encrypted", "always", "never"):
            _fail(path, text, "protect_headers", f"accounts.{name}.protect_headers must be encrypted, always or never")
        if account.directory is not None:
            account.directory = _directory(path, text, name, account.directory)
        if not all(isinstance(a, str) for a in account.addresses):
            _fail(path, text, "addresses", f"accounts.{name}.addresses must be a list of strings")
        account.addresses = [normalize(a) for a in account.addresses]
        config.accounts.append(account)
    return config


def _directory(path, text, name, table):
    where = f"accounts.{name}.directory"
    for key, value in table.items():
        if key not in _DIRECTORY_TYPES:
            _fail(path, text, key, f"unknown setting {where}.{key} (known: {', '.join(_DIRECTORY_TYPES)})")
        if not isinstance(value, _DIRECTORY_TYPES[key]) or isinstance(value, bool) is not (_DIRECTORY_TYPES[key] is bool):
            _fail(path, text, key, f"{where}.{key} has the wrong type")
    for key in ("url", "base"):
        if key not in table:
            _fail(path, text, where, f"{where} needs {key}")
    directory = Directory(name, **table)
    if not directory.url.startswith(("ldap://", "ldaps://")):
        _fail(path, text, "url", f"{where}.url must start with ldap:// or ldaps://")
    if directory.filter.count("%s") < 1 or not directory.filter.startswith("("):
        _fail(path, text, "filter", f"{where}.filter must be an LDAP filter with %s for the address, like (mail=%s)")
    if directory.order not in ("local-first", "directory-first"):
        _fail(path, text, "order", f"{where}.order must be local-first or directory-first")
    if not directory.attributes or not all(isinstance(a, str) for a in directory.attributes):
        _fail(path, text, "attributes", f"{where}.attributes must be a list of attribute names")
    if directory.password and directory.password_command:
        _fail(path, text, "password_command", f"{where}: give password or password_command, not both")
    return directory
