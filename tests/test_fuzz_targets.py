"""The fuzz targets (fuzz/targets.py) on their seeds, without the fuzzer: every seed gives a result
or a documented error, never an uncaught exception.  `make fuzz` runs 120,000 mutated inputs."""

import os
import sys

import pytest

from mailseal.errors import MailsealError
from tests.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "fuzz"))
import targets  # noqa: E402


@pytest.fixture(scope="module")
def seeds():
    with pytest.MonkeyPatch.context() as patch:  # targets.World points MAILSEAL_HOME at its own folder
        patch.setenv("MAILSEAL_HOME", "")
        patch.setenv("MAILSEAL_CONFIG", "")
        yield targets.seeds()


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_fuzz_target_on_its_seeds(seeds, name):
    assert len(seeds) > 20
    outcomes = {"ok": 0, "error": 0}
    for seed in seeds:
        for data in (seed, seed[: len(seed) // 2], seed.replace(b"\n", b"\r\n")):
            try:
                targets.TARGETS[name](data)
                outcomes["ok"] += 1
            except MailsealError:
                outcomes["error"] += 1
    assert outcomes["ok"]
    if name not in ("import", "mutt"):  # these count what they cannot read instead of raising
        assert outcomes["error"]  # the seeds reach both the good and the refusing paths
