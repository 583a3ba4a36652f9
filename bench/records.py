"""The records the bench writes and reads: release items in RFC 013's shape (what
`relctl release create` writes), deployment entries (what `relctl deploy` appends), fake
ECR images, and a raw JSON-protocol client for timing moto itself without boto3.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlparse

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from harness import ACCOUNT, REGION

_ser, _de = TypeSerializer(), TypeDeserializer()
TERMINAL = {"succeeded", "failed", "superseded"}


def stamp(at: float | None = None) -> str:
    """RFC 013's timestamp: naive ISO-8601 UTC with six fractional digits."""
    dt = datetime.fromtimestamp(time.time() if at is None else at, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_stamp(text: str) -> float:
    """Unix seconds of a stamp relctl or the CLI wrote (naive means UTC)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def to_item(value: dict) -> dict:
    return {k: _ser.serialize(v) for k, v in value.items()}


def from_item(item: dict) -> dict:
    return {k: _de.deserialize(v) for k, v in item.items()}


def ecr_uri(repository: str, tag: str) -> str:
    return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}:{tag}"


def release(project: str, images: dict[str, str], release_id: str | None = None,
            description: str = "bench release", deployments: list | None = None,
            at: float | None = None) -> dict:
    """A release item as `relctl release create` writes it (no deployments yet)."""
    created = stamp(at)
    item = {
        "release_id": release_id or str(uuid.uuid4()),
        "project_id": project,
        "project_name": project,
        "date_created": created,
        "description": description,
        "requested_by": {"id": "bench", "name": "bench"},
        "images": dict(sorted(images.items())),
        "release_manifest": json.dumps({"images": images}),
        "deployments": deployments or [],
    }
    if deployments:
        item["last_date_deployed"] = max(d["date_created"] for d in deployments)
    return item


def entry(environment: str, at: float | None = None, description: str = "bench") -> dict:
    """A deployment entry as a hand-written intent (RFC 013: environment {id, name})."""
    return {
        "date_created": stamp(at),
        "description": description,
        "environment": {"id": environment, "name": environment},
        "requested_by": {"id": "bench", "name": "bench"},
    }


def put_releases(dynamodb, table: str, items: list[dict]) -> int:
    """BatchWriteItem in 25s, resending what was not processed; returns the calls made."""
    calls = 0
    for i in range(0, len(items), 25):
        pending = [{"PutRequest": {"Item": to_item(it)}} for it in items[i:i + 25]]
        while pending:
            calls += 1
            out = dynamodb.batch_write_item(RequestItems={table: pending})
            pending = out.get("UnprocessedItems", {}).get(table, [])
    return calls


def deployments_of(dynamodb, table: str, release_id: str) -> list[dict]:
    out = dynamodb.get_item(
        TableName=table, Key={"release_id": {"S": release_id}}, ConsistentRead=True,
        ProjectionExpression="deployments",
    )
    return from_item(out.get("Item", {})).get("deployments", [])


def manifest(seed: str) -> str:
    """A small docker v2 schema2 manifest, unique per seed (so each has its own digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = hashlib.sha256(f"layer {seed}".encode()).hexdigest()
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 1024, "digest": "sha256:" + layer}],
    })


def push_image(ecr, repository: str, seed: str, tags: list[str]) -> None:
    """What a CI push leaves in ECR: one manifest under each of `tags`."""
    body = manifest(seed)
    for tag in tags:
        ecr.put_image(repositoryName=repository, imageManifest=body, imageTag=tag,
                      imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json")


class RawJson:
    """AWS JSON-1.x calls straight over one keep-alive HTTP connection: moto checks no
    signature, so this times moto's own handling without boto3's client-side cost."""

    TARGETS = {
        "dynamodb": ("DynamoDB_20120810", "1.0"),
        "ssm": ("AmazonSSM", "1.1"),
        "ecr": ("AmazonEC2ContainerRegistry_V20150921", "1.1"),
        "ecs": ("AmazonEC2ContainerServiceV20141113", "1.1"),
    }

    def __init__(self, endpoint: str):
        u = urlparse(endpoint)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def call(self, service: str, operation: str, body: dict) -> dict:
        prefix, version = self.TARGETS[service]
        day = time.strftime("%Y%m%d", time.gmtime())
        headers = {
            "Content-Type": f"application/x-amz-json-{version}",
            "X-Amz-Target": f"{prefix}.{operation}",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "Authorization": f"AWS4-HMAC-SHA256 Credential=bench/{day}/{REGION}/{service}/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=0",
        }
        self.conn.request("POST", "/", body=json.dumps(body), headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{service}.{operation}: HTTP {r.status}: {data[:300]!r}")
        return json.loads(data or b"{}")

    def close(self) -> None:
        self.conn.close()
