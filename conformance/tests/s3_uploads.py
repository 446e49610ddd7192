"""The reference Python client uploading through our worker's S3 upload URLs.

Not collected by the main session (the name does not start with ``test_``):
``cargo xtask conformance --transport s3-interop`` runs it by name, with moto
started and the ``AWS_*`` variables pointing at it, which both our worker's
``--s3-storage`` and boto3 here read. The conftest beside it supplies
``VGI_CONFORMANCE_WORKER`` and the JSON report.

With storage our worker caps inline requests at its 4 KiB externalization
threshold, so a larger request only gets through if the client asks for an
upload URL, PUTs the batch to the emulator and sends the pointer instead.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator

import boto3
import httpx
import pytest

from vgi_rpc.conformance import ConformanceService
from vgi_rpc.external import ExternalLocationConfig
from vgi_rpc.http import http_capabilities, http_connect, request_upload_urls


@pytest.fixture(scope="module")
def s3_worker_url() -> Iterator[str]:
    """Our worker serving HTTP with S3 storage and the default threshold."""
    worker = shlex.split(os.environ["VGI_CONFORMANCE_WORKER"])
    proc = subprocess.Popen([*worker, "--http", "--s3-storage"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("PORT:"), f"expected PORT:<n> from the worker, got {line!r}"
        yield f"http://127.0.0.1:{line.split(':', 1)[1]}"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def _object_keys() -> set[str]:
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=os.environ["AWS_BUCKET"])
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_capabilities_advertise_s3_uploads(s3_worker_url: str) -> None:
    caps = http_capabilities(s3_worker_url)
    assert caps.upload_url_support is True
    assert caps.max_request_bytes == 4096
    assert caps.max_upload_bytes is not None and caps.max_upload_bytes > 40_000


def test_large_request_goes_through_an_upload_url(s3_worker_url: str) -> None:
    before = _object_keys()
    # Random hex, and no request compression: the body must stay over the cap.
    big = os.urandom(20_000).hex()
    with http_connect(
        ConformanceService,
        s3_worker_url,
        external_location=ExternalLocationConfig(url_validator=None),
        compression_level=None,
    ) as proxy:
        assert proxy.echo_large_string(value=big) == big
    # The client's upload of the request, and the worker's of its answer.
    new = _object_keys() - before
    assert len(new) >= 2, f"expected the request and the response in S3, new objects: {sorted(new)}"


def test_vended_urls_put_then_get(s3_worker_url: str) -> None:
    urls = request_upload_urls(s3_worker_url, count=2)
    assert len(urls) == 2
    assert urls[0].upload_url != urls[1].upload_url
    payload = os.urandom(64 * 1024)
    put = httpx.put(urls[0].upload_url, content=payload, timeout=10.0)
    assert put.status_code in (200, 204), f"PUT answered {put.status_code}: {put.text[:200]}"
    got = httpx.get(urls[0].download_url, timeout=10.0)
    assert got.status_code == 200
    assert got.content == payload
