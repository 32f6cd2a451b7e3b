"""The rules for a store on object storage (`s3://`): options, credentials, conditional puts.

deltalake 1.x has no DynamoDB lock: it commits version N of a table's log by creating
`_delta_log/N.json` with a conditional put (`If-None-Match: *`); a second writer of the
same version must get 412 and retry on top. An object store that accepts the second put
instead lets it overwrite the first commit: rows committed and acknowledged, then gone,
with no error anywhere. So a store on `s3://` probes that once at open and refuses to write
where the probe is not refused (`check_conditional_put`).

Credentials come from the store's `storage_options` (`[store] storage_options` in the
config) or the standard `AWS_*` variables delta-rs itself reads; hubtide turns the AWS
SDK's instance-metadata lookup off unless `[store] allow_instance_metadata = true`, so a
laptop without credentials gets one line (`NoCredentials`) instead of a request to
169.254.169.254 and an SDK traceback. Nothing here logs or prints the options (secrets).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from storage.errors import StoreError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config

S3_SCHEMES = ("s3://", "s3a://")
# where conditional puts are probed at open (deleted right after)
PROBE_PREFIX = "_hubtide/probe-"
# how the option keys are named to delta-rs (either case works there)
_KEYS = ("aws_access_key_id", "aws_secret_access_key")
_PROFILE = ("aws_profile",)


class NoCredentials(StoreError):
    """An `s3://` store opened without credentials (and instance metadata not allowed)."""


class ConditionalPutUnsupported(StoreError):
    """The object store accepted a second create of the same key: concurrent delta-rs
    commits to it would silently overwrite each other, so the store refuses to write."""


def is_s3(uri: str) -> bool:
    """Whether `uri` names an S3 (or S3-compatible) location."""
    return uri.startswith(S3_SCHEMES)


def _lower(options: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in options.items()}


def delta_options(
    uri: str,
    storage_options: Mapping[str, str] | None,
    *,
    allow_instance_metadata: bool = False,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The options delta-rs gets for the store at `uri`.

    For `s3://`: credentials must be in the options or in `env` (default: this process's
    environment, which delta-rs also reads), unless `allow_instance_metadata`; and the
    instance-metadata lookup is turned off (`AWS_EC2_METADATA_DISABLED`) unless allowed.

    Raises:
        NoCredentials: an `s3://` URI with no credentials anywhere and metadata not allowed.
    """
    opts = dict(storage_options or {})
    if not is_s3(uri):
        return opts
    low = _lower(opts)
    env_low = _lower(os.environ if env is None else env)
    have = all(k in low or k in env_low for k in _KEYS) or any(
        k in low or k in env_low for k in _PROFILE
    )
    if not allow_instance_metadata:
        if not have:
            raise NoCredentials(
                f"{uri}: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in "
                "the config's store.storage_options (or in the environment), or set "
                "store.allow_instance_metadata = true (HUBTIDE_STORE_ALLOW_INSTANCE_METADATA"
                "=true) to take them from the cloud's instance-metadata endpoint"
            )
        if "aws_ec2_metadata_disabled" not in low:
            opts["AWS_EC2_METADATA_DISABLED"] = "true"
    return opts


def _obstore_config(options: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """delta-rs style S3 options as obstore's `S3Store` config and client options."""
    low = _lower(options)
    names = {
        "aws_access_key_id": "aws_access_key_id",
        "aws_secret_access_key": "aws_secret_access_key",
        "aws_session_token": "aws_session_token",
        "aws_region": "aws_region",
        "aws_default_region": "aws_region",
        "aws_endpoint_url": "aws_endpoint",
        "aws_endpoint": "aws_endpoint",
        "endpoint_url": "aws_endpoint",
        "aws_virtual_hosted_style_request": "aws_virtual_hosted_style_request",
    }
    config: dict[str, Any] = {names[k]: v for k, v in low.items() if k in names}
    client: dict[str, Any] = {}
    if low.get("aws_allow_http", "").lower() == "true":
        client["allow_http"] = True
    return config, client


def object_store(uri: str, options: Mapping[str, str] | None = None) -> Any:
    """An obstore store rooted at the store's root: `S3Store` for `s3://` (its bucket and
    prefix, the options as `delta_options` gave them), `LocalStore` for a folder (created
    when missing). Both answer `put(..., mode="create")` with `AlreadyExistsError` when the
    key exists: the one conditional primitive the store relies on (storage/lease.py)."""
    from obstore.store import LocalStore, S3Store  # only writers on a lease load obstore

    if is_s3(uri):
        bucket, _, prefix = uri.split("://", 1)[1].partition("/")
        config, client = _obstore_config(options or {})
        return S3Store(
            bucket,
            prefix=prefix.strip("/") or None,
            config=cast("S3Config", config),
            client_options=cast("ClientConfig", client),
        )
    if "://" in uri and not uri.startswith("file://"):
        raise StoreError(f"{uri}: leases need a folder or an s3:// store")
    from pathlib import Path

    root = Path(uri.removeprefix("file://")).expanduser().absolute()
    return LocalStore(root, mkdir=True)


def check_conditional_put(uri: str, options: Mapping[str, str]) -> None:
    """Create a probe object under the store's prefix twice: the second create must be
    refused (`If-None-Match: *` answered 412), as delta-rs's commits need. The probe is
    deleted afterwards. Done through obstore: the same `object_store` crate delta-rs
    commits with, so the probe sends what a commit sends.

    Raises:
        ConditionalPutUnsupported: the second create succeeded.
        StoreError: the object store could not be reached or refused the credentials
            (one line naming the URI; never the options).
    """
    import obstore  # imported here: commands on a local store never load it
    from obstore.exceptions import AlreadyExistsError

    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        store = object_store(uri, options)
        obstore.put(store, key, b"1", mode="create")
        try:
            obstore.put(store, key, b"2", mode="create")
        except AlreadyExistsError:
            return  # refused, as it must be
        finally:
            obstore.delete(store, key)
    except Exception as exc:
        # the SDK's message is many lines (a debug dump): keep its first
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise StoreError(
            f"{uri}: cannot use the object store: {type(exc).__name__}: {first}"
        ) from None
    raise ConditionalPutUnsupported(
        f"{uri}: the object store accepted a second create of the same key (If-None-Match: * "
        "not answered 412); delta-rs commits there would silently overwrite each other, so "
        "hubtide refuses to write. Use AWS S3 or a compatible store with conditional writes"
    )
