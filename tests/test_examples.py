"""The examples in examples/ are what the code reads."""

import os

from mailseal import config
from tests.conftest import REPO


def test_example_config_loads():
    loaded = config.load(os.path.join(REPO, "examples", "config.toml"))
    assert loaded.allow_sha1 is False and loaded.system_anchors is False
    work = loaded.account_for("Me@Example.org")
    assert work.name == "work" and work.passphrase_command == "pass show mail/smime"
    assert work.sign_by_default and not work.encrypt_by_default and work.sendmail == "/usr/sbin/sendmail"
    assert work.protect_headers == "encrypted" and work.oaep is False
    assert loaded.account_for("me@example.net").name == "private"
    assert loaded.account_for("stranger@example.com") is None
    [directory] = loaded.directories()
    assert directory.url == "ldaps://ldap.example.org" and directory.filter == "(mail=%s)"
    assert directory.order == "local-first" and directory.bind_dn is None
    assert loaded.directories("me@example.net") == [] and loaded.directories("me@example.org") == [directory]


def test_example_config_mutt_section_loads_when_uncommented(tmp_path):
    text = open(os.path.join(REPO, "examples", "config.toml")).read()
    text = text.replace("#[mutt]", "[mutt]").replace('#export_dir = ', 'export_dir = ')
    (tmp_path / "config.toml").write_text(text)
    loaded = config.load(str(tmp_path / "config.toml"))
    assert loaded.mutt_export_dir == "~/.mutt/smime"
