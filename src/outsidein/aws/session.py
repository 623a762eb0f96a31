"""The collector's boto3 session: same credentials and region, lighter clients.

Its clients load service models cut to the operations outsidein calls (``slim_models``) and read
large query/EC2 responses item by item (``stream_parse``), keeping only the items the evidence
needs (``reads.reduce_listed_item``). The session it is made from is left untouched, so a caller can
go on using it for anything else.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials

from outsidein.aws import reads
from outsidein.aws.slim_models import SlimModelLoader
from outsidein.aws.stream_parse import StreamingParserFactory

# Operations called on the collector's clients besides the reads table: the credential report's
# generation, the backup drill's object reads, and what botocore itself calls on an S3 client to find
# a bucket's region after a redirect. STS is never cut (credential providers call it).
EXTRA_OPERATIONS = {
    "iam": ("generate_credential_report",),
    "s3": ("get_object", "head_object", "head_bucket", "get_bucket_location", "list_objects_v2"),
}
UNCUT_SERVICES = frozenset({"sts"})


def collector_operations() -> dict[str, set[str]]:
    """Every operation the collector's clients call, by service (from the reads table)."""
    operations: dict[str, set[str]] = {}
    for value in vars(reads).values():
        candidates = value if isinstance(value, tuple) else (value,)
        for read in candidates:
            if isinstance(read, reads.ApiRead) and read.service not in UNCUT_SERVICES:
                operations.setdefault(read.service, set()).add(read.operation)
    for service, names in EXTRA_OPERATIONS.items():
        operations.setdefault(service, set()).update(names)
    return operations


class _SameCredentials(CredentialProvider):  # type: ignore[misc]
    """Hands the new session the source session's credentials object (refreshable ones keep refreshing)."""

    METHOD = "outsidein-source-session"

    def __init__(self, credentials: Credentials | None) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials | None:
        return self._credentials


def lean_session(source: boto3.Session) -> boto3.Session:
    """A new session with ``source``'s credentials, region and profile, whose clients are lighter."""
    profile = source.profile_name if source.profile_name in source.available_profiles else None
    core = botocore.session.Session(profile=profile)
    core.register_component("credential_provider", CredentialResolver([_SameCredentials(source.get_credentials())]))
    loader: Any = core.get_component("data_loader")
    core.register_component("data_loader", SlimModelLoader(collector_operations(), loader.search_paths))
    core.register_component("response_parser_factory", StreamingParserFactory(item_reducer=reads.reduce_listed_item))
    return boto3.Session(botocore_session=core, region_name=source.region_name)
