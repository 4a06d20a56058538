"""The S3 bucket behind MLflow's artifact root: created if missing, private, reachable with the given credentials."""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

_PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


class ArtifactStoreError(RuntimeError):
    """The artifact store cannot be used; the message names the endpoint, bucket and what went wrong."""


def s3_client(endpoint_url: str):
    return boto3.client(
        "s3", endpoint_url=endpoint_url or None, config=Config(retries={"max_attempts": 2}, connect_timeout=5)
    )


def ensure_private_bucket(endpoint_url: str, bucket: str) -> bool:
    """Create ``bucket`` if missing and make sure no public grant is on it; returns True when it was created."""
    client = s3_client(endpoint_url)
    endpoint = endpoint_url or "(AWS default)"
    where = f"S3 endpoint {endpoint} (MLFLOW_S3_ENDPOINT_URL), bucket {bucket!r} (S3_ARTIFACT_BUCKET)"
    try:
        created = False
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
                raise
            client.create_bucket(Bucket=bucket, ACL="private")
            created = True
        grants = client.get_bucket_acl(Bucket=bucket)["Grants"]
        if any(g["Grantee"].get("URI") in _PUBLIC_GRANTEES for g in grants):
            client.put_bucket_acl(Bucket=bucket, ACL="private")
        return created
    except EndpointConnectionError as exc:
        raise ArtifactStoreError(f"{where}: cannot connect ({exc})") from None
    except ClientError as exc:
        error = exc.response["Error"]
        hint = (
            ": the credentials were rejected, check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            if error["Code"] in ("403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")
            else ""
        )
        raise ArtifactStoreError(f"{where}: {error['Code']} {error.get('Message', '')}{hint}".rstrip()) from None
    except BotoCoreError as exc:
        raise ArtifactStoreError(f"{where}: {exc}") from None
