"""Where mailseal keeps its state: MAILSEAL_HOME and the config file."""

import os


def home():
    """$MAILSEAL_HOME, else $XDG_DATA_HOME/mailseal, else ~/.local/share/mailseal."""
    explicit = os.environ.get("MAILSEAL_HOME")
    if explicit:
        return explicit
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "mailseal")


def ensure_home():
    """Create MAILSEAL_HOME (0700) and return it."""
    path = home()
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def database():
    return os.path.join(home(), "trust.db")


def keys_dir():
    return os.path.join(home(), "keys")


def config_file():
    """$MAILSEAL_CONFIG, else $XDG_CONFIG_HOME/mailseal/config.toml."""
    explicit = os.environ.get("MAILSEAL_CONFIG")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "mailseal", "config.toml")


def write_private(path, data):
    """Write a new file readable by its owner only (0600), atomically."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
