"""Run the fuzz targets (fuzz/targets.py) under atheris, each in its own process.

Every target starts from seeds (the corpus in tests/data, their CMS parts,
mailseal's own signed and encrypted output) and runs the given number of
inputs.  A crash (any exception but MailsealError) stops that target; its
input is saved in the output folder as crash-<target>-<hash>, to be made a
regression test (tests/test_fuzz_regressions.py).  Exit 0 only when every
target ran all its inputs without a crash.

Example:
  .venv/bin/python fuzz/run.py                       # what make fuzz runs: 8 targets x 20,000 inputs
  .venv/bin/python fuzz/run.py --runs 2000 mime cms  # a quick look at two targets
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def worker(target, libfuzzer_args):
    import atheris

    with atheris.instrument_imports():
        import mailseal  # noqa: F401
        from mailseal import (cms, composing, display, harvest, identity, mime, mutt_protocol,  # noqa: F401
                              parts, reading, store, trust, verification)
        from mailseal.cms import ber, enveloped, signed  # noqa: F401
    import targets
    from mailseal.errors import MailsealError

    function = targets.TARGETS[target]
    targets.world()

    def one(data):
        try:
            function(data)
        except MailsealError:
            pass

    atheris.Setup([sys.argv[0], *libfuzzer_args], one)
    atheris.Fuzz()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("targets", nargs="*", help="which targets (default: all)")
    parser.add_argument("--runs", type=int, default=20000, help="inputs per target (default 20000)")
    parser.add_argument("--out", default=os.path.join(HERE, "out"), help="where crashes are kept")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.worker:
        return worker(args.worker, rest)

    import targets

    chosen = args.targets or list(targets.TARGETS)
    unknown = [t for t in chosen if t not in targets.TARGETS]
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)} (known: {', '.join(targets.TARGETS)})")
    os.makedirs(args.out, exist_ok=True)
    seeds = targets.seeds()
    total, failed = 0, []
    for target in chosen:
        corpus = tempfile.mkdtemp(prefix=f"fuzz-{target}-")
        for n, seed in enumerate(seeds):
            with open(os.path.join(corpus, f"seed-{n}"), "wb") as handle:
                handle.write(seed)
        start = time.monotonic()
        result = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", target,
                                 f"-runs={args.runs}", "-max_len=65536", "-timeout=30", "-rss_limit_mb=4096",
                                 f"-artifact_prefix={os.path.join(args.out, 'crash-' + target + '-')}",
                                 corpus], capture_output=True, text=True)
        done = re.findall(r"Done (\d+) runs", result.stderr)
        runs = int(done[-1]) if done else 0
        total += runs
        ok = result.returncode == 0 and runs >= args.runs
        print(f"{target:8} {runs:>7} inputs  {time.monotonic() - start:6.1f} s  {'ok' if ok else 'CRASH'}")
        if not ok:
            failed.append(target)
            print("\n".join(result.stderr.splitlines()[-40:]))
    print(f"{total} inputs in all; {'no uncaught exception' if not failed else 'crashes in ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
