"""The reference ConformanceService over HTTP with the reference's own S3Storage.

Our client is checked against it: every batch above the threshold comes
back as a pointer into S3, which the client must fetch itself. The storage
also vends the pre-signed upload URLs, as a deployment on S3 would.

The emulator is found as our worker's ``--s3-storage`` finds it, through
``AWS_ENDPOINT_URL`` and ``AWS_BUCKET`` (``--endpoint-url`` and ``--bucket``
win); boto3 reads the region and credentials from ``AWS_*`` itself.

Prints ``PORT:<n>`` once bound, as the conformance workers do, so the
harnesses that start those start this the same way (``--http`` is accepted
for them and changes nothing).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import waitress

from vgi_rpc.conformance import ConformanceService, ConformanceServiceImpl
from vgi_rpc.external import ExternalLocationConfig
from vgi_rpc.http import make_wsgi_app
from vgi_rpc.rpc import RpcServer
from vgi_rpc.s3 import S3Storage


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--bucket", default=os.environ.get("AWS_BUCKET"))
    parser.add_argument("--prefix", default="vgi-rpc/")
    parser.add_argument(
        "--externalize-threshold",
        type=int,
        default=1,
        help="Batches of this many bytes and more go to S3 (default 1: every non-empty one).",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=None,
        help="Inline request cap advertised beside the upload URLs (default: none).",
    )
    parser.add_argument("--max-response-bytes", type=int, default=None)
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    args = parser.parse_args()
    if not args.endpoint_url or not args.bucket:
        parser.error("the emulator is unknown: set AWS_ENDPOINT_URL and AWS_BUCKET, or pass both flags")

    storage = S3Storage(
        bucket=args.bucket,
        prefix=args.prefix,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=args.endpoint_url,
    )
    server = RpcServer(
        ConformanceService,
        ConformanceServiceImpl(),
        enable_describe=True,
        # The emulator's URLs are plain http on loopback, which the default
        # validator (https only) would refuse for uploaded requests.
        external_location=ExternalLocationConfig(
            storage=storage,
            externalize_threshold_bytes=args.externalize_threshold,
            url_validator=None,
        ),
    )
    app = make_wsgi_app(
        server,
        # One process: a key of its own is all its stream tokens need.
        token_key=os.urandom(32),
        upload_url_provider=storage,
        max_request_bytes=args.max_request_bytes,
        max_upload_bytes=64 * 1024 * 1024,
        max_response_bytes=args.max_response_bytes,
    )

    port = args.port
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((args.host, 0))
            port = int(s.getsockname()[1])
    print(f"PORT:{port}", flush=True)
    print(f"reference S3 server on http://{args.host}:{port}/ -> {args.endpoint_url}/{args.bucket}", file=sys.stderr)
    waitress.serve(app, host=args.host, port=port, threads=args.threads, _quiet=True)


if __name__ == "__main__":
    main()
