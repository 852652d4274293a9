"""Benchmark mailseal's installed programs against `openssl cms` on the same input.

Three measurements, each beside openssl doing the same job on the same files:

  latency  cold start of smime-sign, -encrypt, -decrypt and -verify on a
           10 KB message: median and minimum of --runs runs, run alternately
           with openssl in one loop so noise hits both
  bulk     smime-import --maildir on --bulk signed messages from 20 senders,
           against `openssl cms -verify` once per message: messages/second
  large    encrypt (alice to bob) and decrypt (bob) a --large-mb message with
           a binary attachment: wall time and peak RSS (/usr/bin/time)

Everything happens in a temporary directory, removed at the end: a throwaway
CA, alice's and bob's MAILSEAL_HOMEs set up with smime-trust as a user would,
MAILSEAL_CONFIG pointing to a file that does not exist.  The programs are the
ones installed next to the Python running this script (make venv).

Example:
  .venv/bin/python bench/benchmark.py --json bench/results.json    # what make bench runs
  .venv/bin/python bench/benchmark.py --only latency --runs 30
  .venv/bin/python bench/benchmark.py --only bulk,large --bulk 500 --large-mb 5
"""

import argparse
import base64
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from cryptography.hazmat.primitives import serialization  # noqa: E402

from tests import mail, pki  # noqa: E402

SECTIONS = ("latency", "bulk", "large")
OPS = ("sign", "encrypt", "decrypt", "verify")
PASSPHRASE = "secret"  # what tests.pki protects the .p12 files with


class Failed(Exception):
    pass


def run(command, *, stdin=None, stdout=subprocess.DEVNULL, env=None, ok=(0,)):
    """Run a command with stdin from a file path; raise Failed (with its stderr) unless its exit code is in ok."""
    with open(stdin or os.devnull, "rb") as handle:
        result = subprocess.run(command, stdin=handle, stdout=stdout, stderr=subprocess.PIPE, env=env)
    if result.returncode not in ok:
        raise Failed(f"{' '.join(map(str, command))} failed with exit code {result.returncode}:\n"
                     + result.stderr.decode(errors="replace").rstrip())
    return result


def timed(command, **kw):
    start = time.perf_counter()
    run(command, **kw)
    return time.perf_counter() - start


def program(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.access(path, os.X_OK):
        raise Failed(f"{name} is not installed next to {sys.executable}: run 'make venv' and use .venv/bin/python")
    return path


class Setup:
    """The throwaway CA, alice and bob, their files and homes, inside directory work."""

    def __init__(self, work):
        self.work = work
        self.ca = pki.CA(cn="mailseal bench CA")
        self.ca_pem = self.ca.write(work)
        self.passfile = self.file("passphrase", PASSPHRASE + "\n")
        self.env = dict(os.environ, MAILSEAL_CONFIG=os.path.join(work, "no-config.toml"))
        self.env.pop("MAILSEAL_DEBUG", None)
        self.people = {n: self.ca.issue(f"{n}@example.org") for n in ("alice", "bob")}
        for person in self.people.values():
            person.write(work)  # NAME.p12, NAME.pem (certificate), NAME.key
            self.file(self.key(person), person.key.private_bytes(  # the same key, encrypted, for openssl -passin
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(PASSPHRASE.encode())))
        self.homes = {}
        for me, peer in (("alice", "bob"), ("bob", "alice")):
            self.homes[me] = env = self.home(me)
            run([program("smime-trust"), "identity", "import", "--passphrase-file", self.passfile,
                 self.path(me + ".p12")], env=env)
            run([program("smime-trust"), "install", self.path(peer + ".pem")], env=env)

    def path(self, name):
        return os.path.join(self.work, name)

    def file(self, name, data):
        with open(self.path(name), "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        return self.path(name)

    def key(self, person):
        return self.path(person.email.split("@")[0] + "-encrypted.key")

    def home(self, name):
        """A fresh MAILSEAL_HOME that trusts the CA; its environment."""
        env = dict(self.env, MAILSEAL_HOME=self.path("home-" + name))
        run([program("smime-trust"), "install", "--ca", self.ca_pem], env=env)
        return env

    def message(self, name, body, extra_head=""):
        head = ("From: Alice <alice@example.org>\nTo: Bob <bob@example.org>\nSubject: mailseal bench\n"
                "Date: Mon, 02 Nov 2026 10:00:00 +0000\nMessage-ID: <bench@example.org>\nMIME-Version: 1.0\n")
        return self.file(name, head + extra_head + "\n" + body)

    def openssl(self, op, source, out=os.devnull):
        """The openssl cms command doing op on file source, as alice (sign, encrypt) or bob."""
        who = self.people["alice" if op in ("sign", "encrypt") else "bob"]
        args = {"sign": ["-sign", "-signer", self.path("alice.pem"), "-inkey", self.key(who),
                         "-passin", "file:" + self.passfile, "-certfile", self.ca_pem],
                "encrypt": ["-encrypt", "-aes256"],
                "decrypt": ["-decrypt", "-recip", self.path("bob.pem"), "-inkey", self.key(who),
                            "-passin", "file:" + self.passfile],
                "verify": ["-verify", "-CAfile", self.ca_pem]}[op]
        recipients = [self.path("bob.pem"), self.path("alice.pem")] if op == "encrypt" else []
        return ["openssl", "cms", *args, "-in", source, "-out", out, *recipients]

    def mailseal(self, op):
        """The mailseal filter doing op (stdin to stdout), and its environment."""
        passphrase = ["--passphrase-file", self.passfile] if op in ("sign", "decrypt") else []
        return [program("smime-" + op), *passphrase], self.homes["alice" if op in ("sign", "encrypt") else "bob"]


def latency(setup, runs):
    lines = "".join(f"Line {i:03d} of a ten kilobyte message, long enough to wrap in no client at all.\n"
                    for i in range(125))
    plain = setup.message("10k.eml", lines, "Content-Type: text/plain; charset=us-ascii\n")
    inputs = {"sign": plain, "encrypt": plain}
    for op, made in (("sign", "verify"), ("encrypt", "decrypt")):  # mailseal's own output is the next input
        command, env = setup.mailseal(op)
        with open(setup.path(f"10k-{op}ed.eml"), "wb") as out:
            run(command, stdin=plain, stdout=out, env=env)
        inputs[made] = out.name
    commands = {op: (*setup.mailseal(op), setup.openssl(op, inputs[op])) for op in OPS}
    for op, (command, env, openssl) in commands.items():  # warm-up, and proof that every command works
        run(command, stdin=inputs[op], env=env)
        run(openssl)
    times = {op: {"mailseal": [], "openssl": []} for op in OPS}
    for i in range(runs):
        for op, (command, env, openssl) in commands.items():
            pair = [("mailseal", lambda: timed(command, stdin=inputs[op], env=env)), ("openssl", lambda: timed(openssl))]
            for tool, measure in pair[::1 if i % 2 == 0 else -1]:  # alternate which goes first
                times[op][tool].append(measure())
    result = {}
    for op, t in times.items():
        ms, ossl = [x * 1000 for x in t["mailseal"]], [x * 1000 for x in t["openssl"]]
        result[op] = {"mailseal_ms_median": statistics.median(ms), "mailseal_ms_min": min(ms),
                      "openssl_ms_median": statistics.median(ossl), "openssl_ms_min": min(ossl),
                      "ratio": statistics.median(ms) / statistics.median(ossl)}
    return result


def bulk(setup, count):
    senders = [setup.ca.issue(f"sender{i:02d}@example.org") for i in range(min(20, count))]
    start = pki.NOW - datetime.timedelta(seconds=count + 60)  # signing times rise: each message is news
    messages = [mail.signed_message(senders[i % len(senders)], when=start + datetime.timedelta(seconds=i),
                                    body=f"Bulk message {i}.\n\nNothing to see here.\n") for i in range(count)]
    maildir = mail.write_maildir(setup.path("maildir"), messages)
    files = sorted(os.path.join(maildir, "cur", f) for f in os.listdir(os.path.join(maildir, "cur")))
    timings = {}
    for jobs in ("1", "default"):  # one process, then the default: a worker per CPU
        env = setup.home("importer-" + jobs)
        command = [program("smime-import"), "--maildir", maildir, "--quiet", "--json"]
        with tempfile.TemporaryFile() as out:
            timings[jobs] = timed(command + (["--jobs", "1"] if jobs == "1" else []), stdout=out, env=env)
            out.seek(0)
            summary = json.load(out)
        # which later message of a sender counts as "updated" rather than "unchanged" depends on
        # the order workers finish in; every message must be read, verified and trusted
        if summary["messages"] != count or summary["error"] or summary["skipped"] \
                or summary["verdicts"] != {"trusted": count} or summary["imported"] != len(senders):
            raise Failed(f"smime-import did not learn from every message: {json.dumps(summary)}")
    elapsed = timings["default"]
    start_ossl = time.perf_counter()
    for path in files:
        run(["openssl", "cms", "-verify", "-CAfile", setup.ca_pem, "-in", path, "-out", os.devnull])
    elapsed_ossl = time.perf_counter() - start_ossl
    return {"messages": count, "senders": len(senders), "jobs": os.cpu_count(),
            "mailseal_s": elapsed, "mailseal_per_s": count / elapsed,
            "mailseal_one_process_s": timings["1"], "mailseal_one_process_per_s": count / timings["1"],
            "openssl_s": elapsed_ossl, "openssl_per_s": count / elapsed_ossl,
            "ratio": elapsed_ossl / elapsed, "ratio_one_process": elapsed_ossl / timings["1"],
            "import_summary": summary}


def large(setup, megabytes):
    target = int(megabytes * 1_000_000)
    blob = base64.encodebytes(os.urandom(target * 57 // 77)).decode()  # 57 bytes make a 77-byte line
    body = ("--b1\nContent-Type: text/plain; charset=us-ascii\n\nThe file you asked for.\n--b1\n"
            "Content-Type: application/octet-stream; name=blob.bin\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=blob.bin\n\n" + blob + "--b1--\n")
    plain = setup.message("large.eml", body, 'Content-Type: multipart/mixed; boundary="b1"\n')
    size = os.path.getsize(plain)
    encrypted = setup.path("large-encrypted.eml")
    result = {"message_bytes": size}
    for op, source in (("encrypt", plain), ("decrypt", encrypted)):
        command, env = setup.mailseal(op)
        row = {}
        for tool in ("mailseal", "openssl"):
            report = setup.path(f"time-{op}-{tool}")
            if tool == "mailseal":
                out = encrypted if op == "encrypt" else os.devnull  # bob decrypts what mailseal encrypted
                with open(out, "wb") as handle:
                    elapsed = timed(["/usr/bin/time", "-o", report, "-f", "%e %M", *command],
                                    stdin=source, stdout=handle, env=env)
            else:
                elapsed = timed(["/usr/bin/time", "-o", report, "-f", "%e %M", *setup.openssl(op, source)])
            with open(report) as handle:
                rss = int(handle.read().split()[-1]) * 1024
            row.update({f"{tool}_s": elapsed, f"{tool}_rss_mb": rss / 1e6, f"{tool}_rss_x": rss / size})
        row.update(time_ratio=row["mailseal_s"] / row["openssl_s"], rss_ratio=row["mailseal_rss_mb"] / row["openssl_rss_mb"])
        result[op] = row
    return result


def machine():
    import mailseal

    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    spawn = [timed(["true"]) * 1000 for _ in range(20)]
    return {"python": platform.python_version(), "openssl": openssl, "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "mailseal": mailseal.__version__,
            "spawn_true_ms_median": statistics.median(spawn)}  # what starting any process costs here


def table(results):
    out = []
    m = results["machine"]
    out.append(f"machine: {m['cpu_count']} CPU, Python {m['python']}, {m['openssl']}, "
               f"spawning /bin/true {m['spawn_true_ms_median']:.1f} ms")
    if "latency" in results:
        s = results["settings"]
        out += ["", f"Filter latency, cold start, 10 KB message ({s['runs']} runs)",
                f"{'operation':<10}{'mailseal median':>17}{'min':>9}{'openssl median':>16}{'min':>8}{'ratio':>8}"]
        for op, r in results["latency"].items():
            out.append(f"{op:<10}{r['mailseal_ms_median']:>14.1f} ms{r['mailseal_ms_min']:>6.1f} ms"
                       f"{r['openssl_ms_median']:>13.1f} ms{r['openssl_ms_min']:>5.1f} ms{r['ratio']:>7.1f}x")
        out.append("ratio = mailseal / openssl time (lower is better for mailseal)")
    if "bulk" in results:
        b = results["bulk"]
        out += ["", f"Bulk import, {b['messages']} signed messages from {b['senders']} senders (maildir)",
                f"smime-import --maildir   {b['mailseal_per_s']:>9.1f} msg/s  ({b['mailseal_s']:.2f} s,"
                f" a worker per CPU: {b['jobs']})",
                f"  the same, --jobs 1     {b['mailseal_one_process_per_s']:>9.1f} msg/s"
                f"  ({b['mailseal_one_process_s']:.2f} s)",
                f"openssl cms -verify each {b['openssl_per_s']:>9.1f} msg/s  ({b['openssl_s']:.2f} s)",
                f"ratio = mailseal rate / openssl rate: {b['ratio']:.2f}x, with --jobs 1: {b['ratio_one_process']:.2f}x"
                " (higher is better for mailseal)",
                "import summary: " + ", ".join(f"{k} {b['import_summary'][k]}" for k in
                                               ("messages", "imported", "updated", "unchanged", "skipped", "error"))]
    if "large" in results:
        g = results["large"]
        out += ["", f"Large message, {g['message_bytes'] / 1e6:.1f} MB with a binary attachment",
                f"{'operation':<10}{'mailseal':>10}{'RSS':>17}{'openssl':>10}{'RSS':>17}{'time ratio':>12}"]
        for op in ("encrypt", "decrypt"):
            r = g[op]
            out.append(f"{op:<10}{r['mailseal_s']:>8.2f} s{r['mailseal_rss_mb']:>7.0f} MB ({r['mailseal_rss_x']:.1f}x)"
                       f"{r['openssl_s']:>8.2f} s{r['openssl_rss_mb']:>7.0f} MB ({r['openssl_rss_x']:.1f}x)"
                       f"{r['time_ratio']:>11.1f}x")
        out.append("RSS (Nx) = peak resident memory as a multiple of the message size; time ratio = mailseal / openssl")
    return "\n".join(out)


def sections(values):
    chosen = {s.strip() for v in values or [",".join(SECTIONS)] for s in v.split(",") if s.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(sorted(unknown))}")
    return [s for s in SECTIONS if s in chosen]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs per filter for latency (default 15; 10 or more for figures worth quoting)")
    parser.add_argument("--bulk", type=int, default=2000, help="signed messages for bulk import (default 2000)")
    parser.add_argument("--large-mb", type=float, default=25, help="size of the large message in MB (default 25)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--only", action="append", metavar="SECTION",
                        help="latency, bulk or large; repeatable or a comma list (default: all)")
    args = parser.parse_args(argv)
    try:
        chosen = sections(args.only)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if args.runs < 1 or args.bulk < 1 or args.large_mb <= 0:
        parser.error("--runs, --bulk and --large-mb must be positive")
    if args.runs < 10 and "latency" in chosen:
        print(f"benchmark: note: --runs {args.runs} is a smoke test; use 10 or more for figures", file=sys.stderr)
    if not shutil.which("openssl") or not os.access("/usr/bin/time", os.X_OK):
        print("benchmark: openssl and /usr/bin/time are needed: run 'make deps'", file=sys.stderr)
        return 2
    results = {"machine": machine(), "settings": {"runs": args.runs, "bulk": args.bulk, "large_mb": args.large_mb}}
    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="mailseal-bench-") as work:
            setup = Setup(work)
            for name in chosen:
                print(f"benchmark: {name} ...", file=sys.stderr, flush=True)
                results[name] = {"latency": lambda: latency(setup, args.runs), "bulk": lambda: bulk(setup, args.bulk),
                                 "large": lambda: large(setup, args.large_mb)}[name]()
    except Failed as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 1
    results["settings"]["seconds"] = time.perf_counter() - began
    print(table(results))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
            handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
