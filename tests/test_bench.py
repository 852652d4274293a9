"""The benchmark script (make bench) runs end to end and reports every section."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_benchmark_smoke(tmp_path):
    out = tmp_path / "results.json"
    command = [sys.executable, os.path.join(REPO, "bench", "benchmark.py"),
               "--runs", "2", "--bulk", "20", "--large-mb", "1", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stdout
    results = json.loads(out.read_text())
    assert results["machine"]["cpu_count"] > 0 and results["machine"]["openssl"]
    assert set(results["latency"]) == {"sign", "encrypt", "decrypt", "verify"}
    for op, row in results["latency"].items():
        for key in ("mailseal_ms_median", "mailseal_ms_min", "openssl_ms_median", "ratio"):
            assert row[key] > 0, (op, key, row)
    bulk = results["bulk"]
    for key in ("mailseal_per_s", "openssl_per_s", "ratio"):
        assert bulk[key] > 0, (key, bulk)
    assert bulk["messages"] == 20
    assert bulk["import_summary"]["messages"] == 20
    assert bulk["import_summary"]["imported"] == 20  # 20 senders, one message each: every one was learned from
    assert bulk["import_summary"]["error"] == 0
    large = results["large"]
    assert large["message_bytes"] > 900_000
    for op in ("encrypt", "decrypt"):
        for key in ("mailseal_s", "mailseal_rss_mb", "mailseal_rss_x", "openssl_s", "openssl_rss_mb", "time_ratio"):
            assert large[op][key] > 0, (op, key, large[op])
