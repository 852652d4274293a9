"""aerc: the smime-view part filter, the example configuration, and the real aerc 0.14 driven in tmux.

The unit-level tests run smime-view as aerc runs it: one decoded part on
stdin (the bare CMS data, no header), AERC_* variables in the environment.
The end-to-end tests start Debian's aerc with examples/aerc/ copied into a
throwaway home (only paths and the From address substituted) and check what
the user sees and what leaves the machine.
"""

import base64
import json
import os
import shutil
import sys
import textwrap
import time

import pytest

from tests import peers
from tests.conftest import PROGRAMS, REPO, message, read, run
from tests.tmux import tmux_session  # noqa: F401

EXAMPLES = os.path.join(REPO, "examples", "aerc")
ALICE_FROM = '"Alice" <alice@example.org>'  # how aerc 0.14 sets AERC_FROM


def view(home, part, *args, frm=ALICE_FROM, mime_type="application/pkcs7-mime", passphrase=True):
    """Run smime-view as aerc does: the part on stdin, AERC_* in the environment."""
    env = dict(home.env, AERC_MIME_TYPE=mime_type, AERC_FILENAME="smime.p7m", AERC_SUBJECT="[...]")
    if frm is not None:
        env["AERC_FROM"] = frm
    switches = ["--passphrase-file", home.passfile] if passphrase else []
    result = run("smime-view", *switches, *args, input=part, env=env)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stdout + result.stderr
    return result.stdout.decode("utf-8")


def first_line(text):
    return text.split("\n", 1)[0]


# -- smime-view, unit level ---------------------------------------------------------------------------


def test_encrypted_part_is_decrypted_and_its_signature_verified(alice, bob):
    encrypted = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    shown = view(bob, peers.body_der(encrypted))
    banner = first_line(shown)
    assert banner.startswith("[mailseal] ✓ trusted: signed by alice@example.org")
    assert "encrypted (AES-256-CBC)" in banner
    assert "Subject: The plan" in shown  # the protected Subject (the outer one reads [...])
    assert "the plan stands." in shown.split("─" * 40, 1)[1]


def test_signer_is_bound_to_aerc_from(alice, bob):
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    der = peers.body_der(opaque)
    assert first_line(view(bob, der)).startswith("[mailseal] ✓ trusted: signed by alice@example.org")
    forged = first_line(view(bob, der, frm='"Alice" <ceo@example.com>'))
    assert forged.startswith("[mailseal] ") and " mismatch: " in forged
    assert "alice@example.org" in forged
    nobody = first_line(view(bob, der, frm=None))
    assert " mismatch: " in nobody and "no From address" in nobody
    # --from wins over the environment (for use outside aerc)
    assert " trusted: " in first_line(view(bob, der, "--from", "alice@example.org", frm="x@example.com"))


def test_opaque_signed_part_shows_content(alice, bob):
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    shown = view(bob, peers.body_der(opaque), passphrase=False)  # verifying needs no key
    assert " trusted: " in first_line(shown) and "encrypted" not in first_line(shown)
    assert shown.rstrip().endswith("Alice") and "the plan stands." in shown


def test_authenticated_encryption_part(alice, bob):
    encrypted = alice.ok("smime-encrypt", "--cipher", "aes256-gcm", input=message())
    assert b"smime-type=authEnveloped-data" in encrypted
    shown = view(bob, peers.body_der(encrypted))
    assert "encrypted (AES-256-GCM, authenticated)" in first_line(shown) and "the plan stands." in shown


def test_altered_signed_part_is_bad(alice, bob):
    opaque = alice.ok("smime-sign", "--opaque", "--passphrase-file", alice.passfile, input=message())
    der = bytearray(peers.body_der(opaque))
    at = der.find(b"plan stands")
    assert at > 0
    der[at:at + 4] = b"PLAN"
    shown = view(bob, bytes(der))
    assert " bad" in first_line(shown) and first_line(shown).startswith("[mailseal] ")


@pytest.mark.parametrize("form", ["base64", "pem", "message"])
def test_part_as_base64_pem_or_whole_message(alice, bob, form):
    encrypted = alice.ok("smime-encrypt", "--passphrase-file", alice.passfile, input=message())
    der = peers.body_der(encrypted)
    b64 = base64.encodebytes(der)
    data = {"base64": b64, "pem": b"-----BEGIN PKCS7-----\n" + b64 + b"-----END PKCS7-----\n",
            "message": encrypted}[form]
    shown = view(bob, data)
    assert " unsigned" in first_line(shown) and "NOT authenticated" in first_line(shown)
    assert "the plan stands." in shown


def test_openssl_x_pkcs7_mime_part(bob, people, tmp_path):
    """openssl smime/cms writes application/x-pkcs7-mime; aerc maps it to the same filter."""
    ssl = peers.OpenSSL(tmp_path)
    encrypted = ssl.encrypt(b"Content-Type: text/plain\r\n\r\nfrom openssl\r\n", people["bob"])
    assert b"application/x-pkcs7-mime" in encrypted or b"application/pkcs7-mime" in encrypted
    shown = view(bob, peers.body_der(encrypted), mime_type="application/x-pkcs7-mime")
    assert "from openssl" in shown and " unsigned" in first_line(shown)


def test_garbage_is_an_error_banner_and_exit_0(bob):
    for junk in (b"\x00\x01\x02\xff\xfe binary junk", b"\x30\x82\x01\x00garbage", b""):
        shown = view(bob, junk)
        assert shown.startswith("✗ mailseal: "), shown
        assert shown.count("\n") <= 2
    text = view(bob, b"hello world\nthis is not S/MIME\n")
    assert first_line(text).startswith("✗ mailseal: ") and "not S/MIME" in first_line(text)
    assert "this is not S/MIME" in text  # text is never swallowed


def test_part_for_someone_else(alice, bob, people, tmp_path):
    alice.install(people["carol"].cert_pem(), tmp_path, "carol.pem")
    encrypted = alice.ok("smime-encrypt", input=message(to="carol@example.org"))  # to Carol and Alice
    shown = view(bob, peers.body_der(encrypted))
    assert first_line(shown).startswith("✗ mailseal: ")
    assert "not encrypted to any of your keys" in first_line(shown)
    assert "the plan stands" not in shown
    assert "bytes of CMS enveloped-data; not shown" in shown


def test_detached_signature_part_points_to_the_binding(alice, bob):
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message())
    _, signature = peers.split_signed(signed)
    shown = view(bob, signature, mime_type="application/pkcs7-signature")
    assert first_line(shown).startswith("✗ mailseal: ") and "detached signature" in first_line(shown)
    assert "smime-verify --display" in first_line(shown)


def test_missing_passphrase_is_explained(alice, bob):
    encrypted = alice.ok("smime-encrypt", input=message())
    shown = view(bob, peers.body_der(encrypted), passphrase=False)
    assert first_line(shown).startswith("✗ mailseal: ") and "passphrase" in first_line(shown)
    assert "--passphrase-file" in first_line(shown) or "passphrase_command" in first_line(shown)


def test_wrong_switch_inside_aerc_still_exits_0(bob):
    env = dict(bob.env, AERC_MIME_TYPE="application/pkcs7-mime")
    result = run("smime-view", "--no-such-switch", input=b"\x30\x00", env=env)
    assert result.returncode == 0
    assert b"aerc.conf" in result.stdout and b"--no-such-switch" in result.stderr
    outside = run("smime-view", "--no-such-switch", input=b"", env=bob.env)
    assert outside.returncode == 64 and outside.stdout == b""


def test_decryption_remembers_the_protected_message_id(alice, bob, people, tmp_path):
    """aerc gives a filter no Message-ID; the protected one inside (RFC 9788) is remembered, so that
    smime-sendmail encrypts the reply."""
    bob.install(people["alice"].cert_pem(), tmp_path, "alice.pem")
    bob.write_config('[accounts.bob]\naddresses = ["bob@example.org"]\n'
                     "sign_by_default = false\nencrypt_by_default = false\n")

    def reply_plan(original_id):
        reply = message(frm="bob@example.org", to="alice@example.org", subject="Re: The plan",
                        extra_headers=f"In-Reply-To: {original_id}\nReferences: {original_id}\n")
        reply = reply.replace(b"Message-ID: <plan-1@", b"Message-ID: <reply-1@")
        decided = bob.run("smime-sendmail", "--sendmail", shutil.which("true"), "--json", input=reply)
        assert decided.returncode == 0, decided.stderr
        return json.loads(decided.stdout)

    assert reply_plan("<plan-1@example.org>")["encrypt"] is False
    view(bob, peers.body_der(alice.ok("smime-encrypt", input=message())))
    plan = reply_plan("<plan-1@example.org>")
    assert plan["encrypt"] is True and any("plan-1@example.org" in why for why in plan["why"])
    # without header protection the part does not know its Message-ID: nothing is remembered
    unprotected = alice.ok("smime-encrypt", "--no-protect-headers",
                           input=message().replace(b"Message-ID: <plan-1@", b"Message-ID: <plan-2@"))
    assert "the plan stands." in view(bob, peers.body_der(unprotected))
    assert reply_plan("<plan-2@example.org>")["encrypt"] is False


# -- the example configuration --------------------------------------------------------------------


def test_example_configuration_is_what_the_tests_use():
    conf = open(os.path.join(EXAMPLES, "aerc.conf")).read()
    assert "application/pkcs7-mime=smime-view" in conf and "application/x-pkcs7-mime=smime-view" in conf
    binds = open(os.path.join(EXAMPLES, "binds.conf")).read()
    assert ":pipe -m sh -c 'smime-verify --display" in binds and ":pipe -m sh -c 'smime-decrypt --display" in binds
    accounts = open(os.path.join(EXAMPLES, "accounts.conf")).read()
    assert "outgoing = smime-sendmail --sendmail /usr/sbin/sendmail --" in accounts
    for name in ("aerc.conf", "binds.conf", "accounts.conf"):
        text = open(os.path.join(EXAMPLES, name)).read()
        for line in text.splitlines():  # aerc's ini parser cuts a value at ; or #
            if "=" in line and not line.lstrip().startswith("#"):
                assert ";" not in line and "#" not in line.split("=", 1)[1], (name, line)
    readme = open(os.path.join(EXAMPLES, "README.md")).read()
    for name in ("aerc.conf", "binds.conf", "accounts.conf", "smime-view", "X-Mailseal"):
        assert name in readme


# -- the real aerc 0.14 in tmux -------------------------------------------------------------------


class Aerc:
    """A throwaway home with examples/aerc/ installed, for one user, and aerc running in it.

    Layout: ROOT/home (HOME; ~/.config/aerc, ~/Mail/{INBOX,Sent,Drafts}),
    ROOT/{cache,data,state,run,tmp}, ROOT/bin (mailseal's programs from
    this checkout), ROOT/out (what the stub sendmail received).
    """

    def __init__(self, root, user, address, name, tmux_session):  # noqa: F811 - the fixture
        self.root = str(root)
        self.user = user  # the mailseal Home (MAILSEAL_HOME, MAILSEAL_CONFIG)
        self.address, self.name = address, name
        self.make_term = tmux_session
        self.home = os.path.join(self.root, "home")
        self.mail = os.path.join(self.home, "Mail")
        self.out = os.path.join(self.root, "out")
        self.bin = os.path.join(self.root, "bin")
        for folder in ("INBOX", "Sent", "Drafts"):
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(self.mail, folder, sub), exist_ok=True)
        for sub in ("cache", "data", "state", "tmp", "out", "bin", "home/.config/aerc"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        os.makedirs(os.path.join(self.root, "run"), mode=0o700, exist_ok=True)
        for program, path in PROGRAMS.items():  # the checkout's code, with the test's interpreter
            self._script(os.path.join(self.bin, program), f'"{sys.executable}" "{path}" "$@"\nrc=$?\n'
                         f'echo "{program} $rc" >> "{self.out}/exits.log"\nexit $rc\n')
        self.stub = os.path.join(self.root, "sendmail-stub")
        self._script(self.stub, textwrap.dedent(f"""\
            i=0; while [ -e "{self.out}/sent-$i.eml" ]; do i=$((i+1)); done
            cat > "{self.out}/sent-$i.eml"
            printf '%s\\n' "$@" > "{self.out}/sent-$i.args"
            touch "{self.out}/sent-$i.done"
            """))
        self.editor = os.path.join(self.root, "fake-editor")
        self._script(self.editor, "printf 'Hello from the fake editor.\\nSecond line.\\n' >> \"$1\"\n")
        self._configure()
        self.term = None

    @staticmethod
    def _script(path, body):
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)

    def _configure(self):
        conf = os.path.join(self.home, ".config", "aerc")
        example = open(os.path.join(EXAMPLES, "aerc.conf")).read()
        # the example as it is, then what a test needs: a log, no pager, the fake editor
        test_only = textwrap.dedent(f"""
            [general]
            log-file={self.root}/out/aerc.log
            log-level=debug
            [ui]
            dirlist-delay=0s
            new-message-bell=false
            [viewer]
            pager=cat
            [compose]
            editor={self.editor}
            """)
        with open(os.path.join(conf, "aerc.conf"), "w") as handle:
            handle.write(example + test_only)
        with open(os.path.join(conf, "binds.conf"), "w") as handle:  # aerc 0.14 reads one binds.conf
            handle.write(open("/usr/share/aerc/binds.conf").read() + "\n" + open(os.path.join(EXAMPLES,
                                                                                       "binds.conf")).read())
        accounts = open(os.path.join(EXAMPLES, "accounts.conf")).read()
        assert "/usr/sbin/sendmail" in accounts and "Me <me@example.org>" in accounts
        accounts = accounts.replace("/usr/sbin/sendmail", self.stub).replace(
            "Me <me@example.org>", f"{self.name} <{self.address}>")
        path = os.path.join(conf, "accounts.conf")
        with open(path, "w") as handle:
            handle.write(accounts)
        os.chmod(path, 0o600)  # aerc refuses laxer permissions

    def deliver(self, raw, folder="INBOX", name="1700000001.M1P1.test"):
        path = os.path.join(self.mail, folder, "cur", name + ":2,")
        with open(path, "wb") as handle:
            handle.write(raw)
        return path

    def env(self):
        return {"HOME": self.home, "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
                "XDG_CACHE_HOME": os.path.join(self.root, "cache"), "XDG_DATA_HOME": os.path.join(self.root, "data"),
                "XDG_STATE_HOME": os.path.join(self.root, "state"), "XDG_RUNTIME_DIR": os.path.join(self.root, "run"),
                "TMPDIR": os.path.join(self.root, "tmp"), "EDITOR": "/bin/false", "TERM": "screen-256color",
                "LANG": "C.UTF-8", "PATH": f"{self.bin}:/usr/bin:/bin",
                "MAILSEAL_HOME": self.user.path, "MAILSEAL_CONFIG": self.user.config}

    def start(self, ready):
        assert shutil.which("aerc"), "aerc is missing: run 'make deps'"
        self.term = self.make_term(["aerc"], env=self.env())
        self.term.wait_for(ready, timeout=30)
        return self.term

    def command(self, text):
        """An ex command (':text' Enter), from a place where ':' opens the command line."""
        self.term.keys(":" + text, literal=True)
        self.term.keys("Enter")

    def sent(self, number=0, timeout=30):
        """(message, args) the stub sendmail received as its number-th call."""
        done = os.path.join(self.out, f"sent-{number}.done")
        deadline = time.monotonic() + timeout
        while not os.path.exists(done):
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing was sent within {timeout}s; screen:\n{self.term.screen()}")
            time.sleep(0.1)
        return read(os.path.join(self.out, f"sent-{number}.eml")), \
            open(os.path.join(self.out, f"sent-{number}.args")).read().splitlines()

    def exits(self, program, count=1, timeout=30):
        """The exit codes of the first `count` runs of a mailseal program, once it ran that often."""
        log = os.path.join(self.out, "exits.log")
        deadline = time.monotonic() + timeout
        while True:
            codes = [int(line.split()[1]) for line in (open(log).read().splitlines() if os.path.exists(log) else [])
                     if line.split()[0] == program]
            if len(codes) >= count:
                return codes
            if time.monotonic() > deadline:
                raise AssertionError(f"{program} did not run {count} time(s) in {timeout}s; screen:\n"
                                     f"{self.term.screen()}")
            time.sleep(0.1)

    def nothing_sent(self):
        return not [n for n in os.listdir(self.out) if n.startswith("sent-")]

    def quit(self):
        """:quit, and aerc's exit code must be 0.  Right after a tab closes (a sent message) aerc 0.14
        may drop the keys of the command line, so it is tried again."""
        for attempt in range(3):
            self.command("quit")
            try:
                self.term.wait_for("EXITED rc=", timeout=5)
                break
            except AssertionError:
                if attempt == 2:
                    raise
                self.term.keys("Escape")
        self.term.wait_for("EXITED rc=0", timeout=1)

    def folder(self, name):
        found = []
        for sub in ("cur", "new"):
            directory = os.path.join(self.mail, name, sub)
            found += [read(os.path.join(directory, n)) for n in sorted(os.listdir(directory))]
        return found


def account_config(home, name, address, *, sign, encrypt):
    """mailseal's config.toml for the aerc user: the account, its passphrase from a command."""
    home.write_config(textwrap.dedent(f"""\
        [accounts.{name}]
        addresses = ["{address}"]
        passphrase_command = "cat {home.passfile}"
        sign_by_default = {str(sign).lower()}
        encrypt_by_default = {str(encrypt).lower()}
        """))


@pytest.fixture
def aerc_bob(bob, alice, people, tmp_path, tmux_session):  # noqa: F811 - the fixture
    """Bob in aerc: his identity, Alice's certificate, sign and encrypt off by default."""
    bob.install(people["alice"].cert_pem(), tmp_path, "alice-cert.pem")
    account_config(bob, "bob", "bob@example.org", sign=False, encrypt=False)
    return Aerc(tmp_path / "ab", bob, "bob@example.org", "Bob", tmux_session)


@pytest.fixture
def aerc_alice(alice, tmp_path, tmux_session):  # noqa: F811 - the fixture
    """Alice in aerc: her identity, Bob's certificate; the defaults are set by each test."""
    return Aerc(tmp_path / "aa", alice, "alice@example.org", "Alice", tmux_session)


def test_aerc_shows_encrypted_mail_through_smime_view(aerc_bob, alice):
    encrypted = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    aerc_bob.deliver(encrypted)
    aerc_bob.start(r"\[\.\.\.\]")  # the obscured outer Subject in the message list
    aerc_bob.term.keys("Enter")
    screen = aerc_bob.term.wait_for("the plan stands")
    assert "[mailseal] ✓ trusted: signed by alice@example.org" in screen  # AERC_FROM bound the signer
    assert "encrypted (AES-256-CBC)" in screen
    assert "Subject: The plan" in screen  # the protected Subject, shown by smime-view
    assert "smime-view" in open(os.path.join(aerc_bob.out, "aerc.log"), errors="replace").read()
    aerc_bob.quit()


def test_aerc_shows_why_it_cannot_decrypt(aerc_bob, alice, people, tmp_path):
    alice.install(people["carol"].cert_pem(), tmp_path, "carol-cert.pem")
    for_carol = alice.ok("smime-encrypt", input=message(to="carol@example.org"))
    aerc_bob.deliver(for_carol)
    aerc_bob.start(r"\[\.\.\.\]")
    aerc_bob.term.keys("Enter")
    screen = aerc_bob.term.wait_for("not encrypted to any of your keys")
    assert "✗ mailseal: " in screen and "bytes of CMS enveloped-data; not shown" in screen
    aerc_bob.term.keys("q")  # the viewer closes: the filter did not leave aerc hanging
    aerc_bob.term.wait_for(r"\[\.\.\.\]")
    aerc_bob.quit()


def test_aerc_pipe_binding_shows_the_verdict(aerc_bob, alice):
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile,
                      input=message(subject="Signed plan"))
    aerc_bob.deliver(signed)
    aerc_bob.start("Signed plan")
    aerc_bob.term.keys("s", "v")  # examples/aerc/binds.conf: sv = :pipe -m sh -c 'smime-verify --display | less -R'
    screen = aerc_bob.term.wait_for(r"\[mailseal\] .* signed by alice@example\.org")
    assert "[mailseal] ✓ trusted: signed by alice@example.org" in screen
    assert "the plan stands." in screen
    aerc_bob.term.keys("q")  # leaves less
    aerc_bob.term.wait_for("Process complete")
    aerc_bob.term.keys("Enter")
    aerc_bob.term.wait_for("Signed plan")
    aerc_bob.quit()


def test_aerc_decrypt_binding(aerc_bob, alice):
    encrypted = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    aerc_bob.deliver(encrypted)
    aerc_bob.start(r"\[\.\.\.\]")
    aerc_bob.term.keys("s", "d")  # sd = :pipe -m sh -c 'smime-decrypt --display | less -R'
    screen = aerc_bob.term.wait_for("the plan stands")
    assert "[mailseal] ✓ trusted: signed by alice@example.org" in screen and "encrypted (AES-256-CBC)" in screen
    aerc_bob.term.keys("q")
    aerc_bob.term.wait_for("Process complete")
    aerc_bob.term.keys("Enter")
    aerc_bob.quit()


def test_aerc_pipe_binding_tells_a_forged_signature(aerc_bob, alice):
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, input=message(subject="Signed plan"))
    aerc_bob.deliver(signed.replace(b"the plan stands", b"the plan is off"))
    aerc_bob.start("Signed plan")
    aerc_bob.term.keys("s", "v")
    screen = aerc_bob.term.wait_for(r"\[mailseal\] \S+ bad")
    assert "trusted" not in screen.split("[mailseal]", 1)[1].split("\n", 1)[0]
    aerc_bob.term.keys("q")
    aerc_bob.term.wait_for("Process complete")
    aerc_bob.term.keys("Enter")
    aerc_bob.quit()


# -- sending through smime-sendmail (accounts.conf: outgoing) ---------------------------------------


def compose(aerc, to, subject, *headers):
    """:compose with the fake editor, then the header fields on the review screen."""
    aerc.command("compose")
    aerc.term.wait_for(r"Send this email\?")
    aerc.command(f"header -f To {to}")
    aerc.command(f"header -f Subject {subject}")
    for name, value in headers:
        aerc.command(f"header -f {name} {value}")
    aerc.term.wait_for(subject)


def test_aerc_sends_encrypted_by_default(aerc_alice, alice, bob, people, tmp_path):
    account_config(alice, "alice", "alice@example.org", sign=True, encrypt=True)
    aerc_alice.start(r"\[alice\]|Connected")
    compose(aerc_alice, "bob@example.org", "Lunch plans")
    aerc_alice.term.keys("y")
    sent, args = aerc_alice.sent()
    assert args == ["-oi", "--", "bob@example.org"]
    assert b"smime-type=enveloped-data" in sent and b"Hello from the fake editor" not in sent
    assert b"Subject: [...]" in sent and b"Lunch plans" not in sent  # header protection
    aerc_alice.term.wait_for(r"Message sent")
    # Bob reads it, with mailseal and with openssl
    plain = bob.ok("smime-decrypt", "--verify", "--passphrase-file", bob.passfile, input=sent)
    assert b"Hello from the fake editor." in plain and b"Subject: Lunch plans" in plain
    ok, content, err = peers.OpenSSL(tmp_path).decrypt(sent, people["bob"])
    assert ok, err
    assert b"application/pkcs7-signature" in content or b"signed-data" in content  # signed inside
    assert b"X-Mailseal" not in sent and b"X-Mailseal" not in plain
    aerc_alice.quit()


def test_aerc_refuses_what_cannot_be_encrypted_and_keeps_the_draft(aerc_alice, alice):
    account_config(alice, "alice", "alice@example.org", sign=True, encrypt=False)
    aerc_alice.start(r"\[alice\]|Connected")
    compose(aerc_alice, "dave@example.net", "Secret plans", ("X-Mailseal", "encrypt"))
    aerc_alice.term.keys("y")
    assert aerc_alice.exits("smime-sendmail") == [30]
    aerc_alice.term.nudge()  # aerc 0.14 sometimes misses the repaint after a failed send
    screen = aerc_alice.term.wait_for("exit status 30")  # aerc 0.14 shows the code, not smime-sendmail's stderr
    assert "Message sent" not in screen
    screen = aerc_alice.term.wait_for(r"Send this email\?")  # the composer is back, content intact
    assert "Secret plans" in screen
    time.sleep(0.5)
    assert aerc_alice.nothing_sent()
    assert aerc_alice.folder("Sent") == []
    aerc_alice.term.keys("p")  # postpone: the draft is kept in Drafts
    deadline = time.monotonic() + 15  # aerc 0.14 writes the file in place: wait until it is whole
    while b"Second line." not in b"".join(aerc_alice.folder("Drafts")) and time.monotonic() < deadline:
        time.sleep(0.1)
    [draft] = aerc_alice.folder("Drafts")
    assert b"dave@example.net" in draft and b"Secret plans" in draft and b"X-Mailseal: encrypt" in draft
    assert b"Hello from the fake editor." in draft
    assert aerc_alice.nothing_sent()
    aerc_alice.quit()


def test_aerc_reply_to_encrypted_mail_is_encrypted(aerc_bob, alice):
    """encrypt_by_default is off for Bob; the reply is encrypted because the original was: smime-view
    remembered its (protected) Message-ID when aerc showed it."""
    encrypted = alice.ok("smime-encrypt", "--sign", "--passphrase-file", alice.passfile, input=message())
    aerc_bob.deliver(encrypted)
    aerc_bob.start(r"\[\.\.\.\]")
    aerc_bob.term.keys("Enter")
    aerc_bob.term.wait_for("the plan stands")
    aerc_bob.term.keys("R", "r")  # :reply (binds.conf)
    aerc_bob.term.wait_for(r"Send this email\?")
    aerc_bob.term.keys("y")
    sent, args = aerc_bob.sent()
    aerc_bob.term.wait_for("Message sent")
    assert args == ["-oi", "--", "alice@example.org"]
    assert b"smime-type=enveloped-data" in sent and b"Hello from the fake editor" not in sent
    assert b"In-Reply-To: <plan-1@example.org>" in sent.replace(b"\r\n", b"\n")
    plain = alice.ok("smime-decrypt", "--passphrase-file", alice.passfile, input=sent)
    assert b"Hello from the fake editor." in plain
    assert b"In-Reply-To: <plan-1@example.org>" in plain.replace(b"\r\n", b"\n")
    aerc_bob.quit()


def test_aerc_reply_to_plain_mail_follows_the_default(aerc_bob, alice):
    """The same reply to a message that came in clear stays clear (encrypt_by_default = false): the
    test above is not passing by accident."""
    aerc_bob.deliver(message())
    aerc_bob.start("The plan")
    aerc_bob.term.keys("Enter")
    aerc_bob.term.wait_for("the plan stands")
    aerc_bob.term.keys("R", "r")
    aerc_bob.term.wait_for(r"Send this email\?")
    aerc_bob.term.keys("y")
    sent, args = aerc_bob.sent()
    aerc_bob.term.wait_for("Message sent")
    assert args == ["-oi", "--", "alice@example.org"]
    assert b"pkcs7" not in sent and b"Hello from the fake editor." in sent
    aerc_bob.quit()
