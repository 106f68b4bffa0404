"""Range reads, redirects and start-up errors against real servers on 127.0.0.1.

Contracts: a range read returns exactly the bytes asked for whatever the network does (resets,
truncation, 5xx, stalls are retried and resumed); a server that ignores ``Range`` is detected, not
mistaken for data; the Hub token goes to the Hub endpoint only, never to the host it redirects to;
an expired redirect (401/403) is resolved once more and the same range retried, a second denial is
permanent; a dataset whose server cannot be reached fails with an error that says so and names the
URL (a 404 stays "missing"); parquet data files are read with exact ranges.
"""

from __future__ import annotations

import random
import shutil

import pyarrow.parquet as pq
import pytest

from lerobot_stream import StreamingLeRobotDataset
from lerobot_stream.remote.download import download, probe, read_range, read_suffix
from lerobot_stream.remote.http_client import forget_redirects, hf_token
from lerobot_stream.remote.location import resolve_location
from lerobot_stream.remote.retry import (
    RangeNotSupportedError,
    RemoteFileError,
    RetryPolicy,
    ServerUnreachableError,
)
from servers import FaultProxy, NginxServer, Redirector, free_port, nginx_binary

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

FAST = RetryPolicy(retries=8, backoff_s=0.01, max_backoff_s=0.05, timeout_s=1.5)
SIZE = 700_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """(nginx, bytes of /blob.bin)."""
    root = tmp_path_factory.mktemp("www")
    data = random.Random(1).randbytes(SIZE)
    (root / "blob.bin").write_bytes(data)
    with NginxServer(root) as server:
        yield server, data


def test_range_reads_are_exact_through_faults(served):
    server, data = served
    faults = ["drop", "503", "truncate", "stall", "500", "drop"]
    with FaultProxy(server.port, faults, stall_s=3.0, partial_bytes=1000) as proxy:
        url = f"{proxy.url}/blob.bin"
        assert read_range(url, 100_000, 400_000, FAST) == data[100_000:400_000]
        assert read_range(url, 0, 1, FAST) == data[:1]
        assert probe(url, 4096, FAST) == (data[:4096], SIZE)
        assert read_suffix(url, 8, FAST) == (data[-8:], SIZE)
        assert read_suffix(url, 2 * SIZE, FAST) == (data, SIZE)  # a suffix longer than the file
        assert read_range(url, SIZE - 5, SIZE, FAST) == data[-5:]
        assert proxy.faults_served == faults


def test_a_server_ignoring_range_is_detected_and_whole_files_still_download(served, tmp_path):
    server, data = served
    url = f"{server.url}/norange/blob.bin"
    with pytest.raises(RangeNotSupportedError, match="ignores HTTP Range"):
        probe(url, 4096, FAST)
    with pytest.raises(RangeNotSupportedError):
        read_range(url, 10, 20, FAST)
    with open(tmp_path / "whole", "wb") as out:
        download(url, out, SIZE, FAST)
    assert (tmp_path / "whole").read_bytes() == data


def test_transient_errors_give_up_with_the_url(served):
    server, _ = served
    with FaultProxy(server.port, ["503"] * 3) as proxy:
        url = f"{proxy.url}/blob.bin"
        with pytest.raises(RemoteFileError, match=f"{url}: HTTP 503") as err:
            read_range(url, 0, 10, RetryPolicy(retries=2, backoff_s=0.01))
        assert not err.value.permanent


def test_hub_token_goes_to_the_hub_only():
    hub = "https://huggingface.co"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", "hf_secret")
        mp.delenv("HF_ENDPOINT", raising=False)
        assert hf_token(f"{hub}/datasets/org/name/resolve/main/x") == "hf_secret"
        assert hf_token(f"{hub}:443/x") == "hf_secret"
        for other in (
            "https://huggingface.co.evil.example/x",
            "http://huggingface.co/x",
            "https://cdn.hf.co/x",
        ):
            assert hf_token(other) is None, other
        mp.setenv("HF_ENDPOINT", "http://127.0.0.1:8080")
        assert hf_token("http://127.0.0.1:8080/x") == "hf_secret"
        assert hf_token("http://127.0.0.1:8081/x") is None


def test_redirects_keep_the_token_home_and_expired_ones_resolve_once(served, monkeypatch):
    server, data = served
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    forget_redirects()
    with (
        FaultProxy(server.port) as cdn,
        Redirector(cdn.url, strip_prefix="/datasets/org/name/resolve/main") as hub,
    ):
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        location = resolve_location("hf://datasets/org/name", None, None)
        url = location.download_url("blob.bin")
        assert url == f"{hub.url}/datasets/org/name/resolve/main/blob.bin"
        assert read_range(url, 10, 1000, FAST) == data[10:1000]
        assert read_range(url, 5000, 6000, FAST) == data[5000:6000]
        assert len(hub.request_heads) == 1  # the redirect is remembered
        assert all(b"authorization: bearer hf_secret" in h.lower() for h in hub.request_heads)
        assert not any(b"authorization" in h.lower() for h in cdn.request_heads)

        cdn.set_faults(["403"])  # the signed URL expired: resolve again, same range
        assert read_range(url, 7000, 9000, FAST) == data[7000:9000]
        assert len(hub.request_heads) == 2
        cdn.set_faults(["403", "403"])  # denied again after resolving: permanent
        with pytest.raises(RemoteFileError, match="HTTP 403") as err:
            read_range(url, 0, 10, FAST)
        assert err.value.permanent
        assert len(hub.request_heads) == 3
        assert not any(b"authorization" in h.lower() for h in cdn.request_heads)
    forget_redirects()


def test_unreachable_server_at_start_up_says_so_and_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/ds"  # nothing listens there
    policy = RetryPolicy(retries=2, backoff_s=0.01, max_backoff_s=0.02, timeout_s=2)
    with pytest.raises(ServerUnreachableError, match=rf"Could not reach the server for {url}/meta/info.json"):
        StreamingLeRobotDataset("x/y", root=url, remote_retry=policy)


def test_start_up_retries_5xx_then_reports_an_unreachable_server(tiny_dataset, tmp_path):
    www = tmp_path / "www"
    shutil.copytree(tiny_dataset, www / "ds")
    policy = RetryPolicy(retries=2, backoff_s=0.01, max_backoff_s=0.02, timeout_s=2)
    with NginxServer(www) as server, FaultProxy(server.port, ["503", "502"]) as proxy:
        ds = StreamingLeRobotDataset("x/y", root=f"{proxy.url}/ds", remote_retry=policy)  # retried
        assert ds.num_episodes == 8 and proxy.faults_served == ["503", "502"]
        proxy.set_faults(["503"] * 3)
        with pytest.raises(ServerUnreachableError, match="HTTP 503"):
            StreamingLeRobotDataset("x/y", root=f"{proxy.url}/ds", remote_retry=policy)
        with pytest.raises(FileNotFoundError, match="Missing dataset metadata file"):
            StreamingLeRobotDataset("x/y", root=f"{proxy.url}/nope", remote_retry=policy)


def test_parquet_row_groups_are_read_with_exact_ranges(tiny_dataset, tmp_path):
    www = tmp_path / "www"
    shutil.copytree(tiny_dataset, www / "ds")
    rel = "data/chunk-000/file-000.parquet"
    local = pq.ParquetFile(www / "ds" / rel)
    with NginxServer(www) as server:
        location = resolve_location("x", f"{server.url}/ds", None)
        remote = location.parquet_file(rel)
        for group in range(local.metadata.num_row_groups):
            assert remote.read_row_group(group).equals(local.read_row_group(group))
        location.parquet_file(rel).read_row_group(0)  # the footer is not read again
        sent = server.bytes_sent()[f"/ds/{rel}"]
    size = (www / "ds" / rel).stat().st_size
    groups = [local.metadata.row_group(g) for g in range(local.metadata.num_row_groups)]
    spans = [sum(g.column(c).total_compressed_size for c in range(g.num_columns)) for g in groups]
    # every row group once (twice for group 0), the footer once: never the whole file twice
    assert sum(spans) <= sent <= size + spans[0]
