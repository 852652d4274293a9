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
    directory: dict = None


@dataclass
class Config:
    path: str
    accounts: list = field(default_factory=list)
    allow_sha1: bool = False
    system_anchors: bool = False
    system_bundle: str = SYSTEM_BUNDLE
    mutt_export_dir: str = None  # [mutt] export_dir: keep mutt's key store in sync

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
    "sendmail": str, "passphrase_command": str, "directory": dict,
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
        if not all(isinstance(a, str) for a in account.addresses):
            _fail(path, text, "addresses", f"accounts.{name}.addresses must be a list of strings")
        account.addresses = [normalize(a) for a in account.addresses]
        config.accounts.append(account)
    return config
