"""The store on `s3://`, against a local `moto_server` process (tests/s3.py)."""

from __future__ import annotations

import obstore
from obstore.store import S3Store

from tests.s3 import S3Root


def test_the_local_s3_refuses_a_second_create_of_a_key(s3_root: S3Root) -> None:
    """The premise of every s3:// test: moto answers `If-None-Match: *` with 412."""
    opts = s3_root.storage_options
    bucket = s3_root.uri.removeprefix("s3://").split("/")[0]
    st = S3Store(
        bucket,
        config={
            "aws_access_key_id": opts["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": opts["AWS_SECRET_ACCESS_KEY"],
            "aws_region": opts["AWS_REGION"],
            "aws_endpoint": opts["AWS_ENDPOINT_URL"],
        },
        client_options={"allow_http": True},
    )
    obstore.put(st, "k", b"1", mode="create")
    try:
        obstore.put(st, "k", b"2", mode="create")
    except obstore.exceptions.AlreadyExistsError as exc:
        assert "412" in str(exc)
    else:
        raise AssertionError("the second create was accepted")
    assert bytes(obstore.get(st, "k").bytes()) == b"1"
