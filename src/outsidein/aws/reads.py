"""The AWS API reads outsidein makes: one table, shared by the live collector and the CLI-folder loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiRead:
    """One read-only AWS API call, paginated to completion.

    ``cli_name`` is the AWS CLI command whose ``--output json`` saves the same document,
    so an auditor's folder of CLI outputs maps onto the same evidence keys.
    """

    service: str
    operation: str
    cli_name: str
    result_key: str  # the list the checks read; its presence validates a CLI file
    kwargs: dict[str, Any] = field(default_factory=dict)
    paginated: bool = True
    empty_ok: bool = False  # the API answers {} when the resource has none (a CLI file may hold {})

    @property
    def call(self) -> str:
        return f"{self.service}.{self.operation}"


REGIONAL_READS: tuple[ApiRead, ...] = (
    ApiRead("ec2", "describe_security_groups", "describe-security-groups", "SecurityGroups",
            {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_network_acls", "describe-network-acls", "NetworkAcls",
            {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_vpcs", "describe-vpcs", "Vpcs", {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_subnets", "describe-subnets", "Subnets", {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_route_tables", "describe-route-tables", "RouteTables",
            {"PaginationConfig": {"PageSize": 100}}),
    ApiRead("ec2", "describe_internet_gateways", "describe-internet-gateways", "InternetGateways",
            {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_nat_gateways", "describe-nat-gateways", "NatGateways",
            {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_flow_logs", "describe-flow-logs", "FlowLogs", {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_network_interfaces", "describe-network-interfaces", "NetworkInterfaces",
            {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("ec2", "describe_instances", "describe-instances", "Reservations",
            {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("logs", "describe_log_groups", "describe-log-groups", "logGroups", {"PaginationConfig": {"PageSize": 50}}),
    ApiRead("rds", "describe_db_instances", "describe-db-instances", "DBInstances",
            {"PaginationConfig": {"PageSize": 100}}),
    ApiRead("elasticache", "describe_cache_clusters", "describe-cache-clusters", "CacheClusters",
            {"PaginationConfig": {"PageSize": 100}}),
    ApiRead("elasticache", "describe_cache_subnet_groups", "describe-cache-subnet-groups", "CacheSubnetGroups",
            {"PaginationConfig": {"PageSize": 100}}),
    ApiRead("mq", "list_brokers", "list-brokers", "BrokerSummaries", {"PaginationConfig": {"PageSize": 100}}),
    ApiRead("elbv2", "describe_load_balancers", "describe-load-balancers", "LoadBalancers",
            {"PaginationConfig": {"PageSize": 400}}),
    ApiRead("accessanalyzer", "list_analyzers", "list-analyzers", "analyzers"),
    # layer 5: secrets (values are masked at collection, see outsidein.secrets.aws)
    ApiRead("secretsmanager", "list_secrets", "list-secrets", "SecretList"),
    ApiRead("lambda", "list_functions", "list-functions", "Functions"),
    ApiRead("ecs", "list_task_definitions", "list-task-definitions", "taskDefinitionArns", {"status": "ACTIVE"}),
)

GLOBAL_READS: tuple[ApiRead, ...] = (
    ApiRead("iam", "get_account_authorization_details", "get-account-authorization-details", "RoleDetailList",
            {"PaginationConfig": {"PageSize": 1000}}),
    ApiRead("iam", "get_account_summary", "get-account-summary", "SummaryMap", paginated=False),
    ApiRead("s3", "list_buckets", "list-buckets", "Buckets", paginated=False),
)

def internet_facing_alb(load_balancer: dict[str, Any]) -> bool:
    """An application load balancer reachable from the internet: what AWS WAF sits in front of."""
    return (load_balancer.get("Type", "application") == "application"
            and load_balancer.get("Scheme") == "internet-facing" and bool(load_balancer.get("LoadBalancerArn")))


# Reads made once per resource, because the API has no batch form.
ECS_DESCRIBE_TASK_DEFINITION = ApiRead("ecs", "describe_task_definition", "describe-task-definition", "taskDefinition",
                                       paginated=False)
EC2_USER_DATA = ApiRead("ec2", "describe_instance_attribute", "describe-instance-attribute", "UserData",
                        paginated=False)
MQ_DESCRIBE_BROKER = ApiRead("mq", "describe_broker", "describe-broker", "BrokerId", paginated=False)
# Layer 12: the AWS WAF web ACL of each internet-facing application load balancer ({} when none).
WAF_WEB_ACL_FOR_RESOURCE = ApiRead("wafv2", "get_web_acl_for_resource", "get-web-acl-for-resource", "WebACL",
                                   paginated=False, empty_ok=True)
S3_BUCKET_POLICY = ApiRead("s3", "get_bucket_policy", "get-bucket-policy", "Policy", paginated=False)
S3_PUBLIC_ACCESS_BLOCK = ApiRead("s3", "get_public_access_block", "get-public-access-block",
                                 "PublicAccessBlockConfiguration", paginated=False)
S3_BUCKET_ACL = ApiRead("s3", "get_bucket_acl", "get-bucket-acl", "Grants", paginated=False)
S3CONTROL_PUBLIC_ACCESS_BLOCK = ApiRead("s3control", "get_public_access_block", "get-account-public-access-block",
                                        "PublicAccessBlockConfiguration", paginated=False)
CREDENTIAL_REPORT = ApiRead("iam", "get_credential_report", "get-credential-report", "Content", paginated=False)
CALLER_IDENTITY = ApiRead("sts", "get_caller_identity", "get-caller-identity", "Account", paginated=False)

PER_BUCKET_READS = (S3_BUCKET_POLICY, S3_PUBLIC_ACCESS_BLOCK, S3_BUCKET_ACL)

# Layer 9: read only for backup buckets (named in [backups], or found by name or tag; see outsidein.backups.aws).
S3_BUCKET_TAGGING = ApiRead("s3", "get_bucket_tagging", "get-bucket-tagging", "TagSet", paginated=False)
S3_BUCKET_ENCRYPTION = ApiRead("s3", "get_bucket_encryption", "get-bucket-encryption",
                               "ServerSideEncryptionConfiguration", paginated=False)
S3_BUCKET_VERSIONING = ApiRead("s3", "get_bucket_versioning", "get-bucket-versioning", "Status", paginated=False)
S3_OBJECT_LOCK = ApiRead("s3", "get_object_lock_configuration", "get-object-lock-configuration",
                         "ObjectLockConfiguration", paginated=False)
S3_BUCKET_LIFECYCLE = ApiRead("s3", "get_bucket_lifecycle_configuration", "get-bucket-lifecycle-configuration",
                              "Rules", paginated=False)
S3_BUCKET_LOGGING = ApiRead("s3", "get_bucket_logging", "get-bucket-logging", "LoggingEnabled", paginated=False)
S3_LIST_OBJECTS = ApiRead("s3", "list_objects_v2", "list-objects-v2", "Contents",
                          {"PaginationConfig": {"PageSize": 1000}})
KMS_DESCRIBE_KEY = ApiRead("kms", "describe_key", "describe-key", "KeyMetadata", paginated=False)
BACKUP_BUCKET_READS = (S3_BUCKET_ENCRYPTION, S3_BUCKET_VERSIONING, S3_OBJECT_LOCK, S3_BUCKET_LIFECYCLE,
                       S3_BUCKET_LOGGING, S3_LIST_OBJECTS)
BACKUP_BUCKETS = "outsidein.backup_buckets"  # pseudo-call: {"buckets": {name: why it is a backup bucket}}
PER_RESOURCE_READS = (MQ_DESCRIBE_BROKER, WAF_WEB_ACL_FOR_RESOURCE, *PER_BUCKET_READS)
SINGLE_GLOBAL_READS = (S3CONTROL_PUBLIC_ACCESS_BLOCK, CREDENTIAL_REPORT, CALLER_IDENTITY)
ALL_READS = REGIONAL_READS + GLOBAL_READS + PER_RESOURCE_READS + SINGLE_GLOBAL_READS

# "This resource simply has none" answers: an absence, not a failure to read.
ABSENT_CODES = {
    "s3.get_bucket_policy": {"NoSuchBucketPolicy"},
    "s3.get_public_access_block": {"NoSuchPublicAccessBlockConfiguration"},
    "s3control.get_public_access_block": {"NoSuchPublicAccessBlockConfiguration"},
    "s3.get_bucket_tagging": {"NoSuchTagSet"},
    "s3.get_bucket_encryption": {"ServerSideEncryptionConfigurationNotFoundError"},
    "s3.get_object_lock_configuration": {"ObjectLockConfigurationNotFoundError"},
    "s3.get_bucket_lifecycle_configuration": {"NoSuchLifecycleConfiguration"},
}


def reduce_listed_item(response: str, member: str, item: dict[str, Any]) -> dict[str, Any] | None:
    """What the evidence keeps of one item of a large list response (None: nothing; see ``stream_parse``).

    ``GetAccountAuthorizationDetails`` lists every AWS-managed policy (1,300 and more, each with its
    document), attached or not. A policy attached to nothing grants nothing, so an AWS-managed one
    attached to no identity and used as no permissions boundary is dropped, and every kept managed
    policy keeps only its default version. Customer-managed policies are all kept.
    """
    if response != "GetAccountAuthorizationDetailsResponse" or member != "Policies":
        return item
    aws_managed = ":iam::aws:policy/" in str(item.get("Arn", ""))
    if aws_managed and item.get("AttachmentCount") == 0 and not item.get("PermissionsBoundaryUsageCount"):
        return None
    versions = item.get("PolicyVersionList")
    if isinstance(versions, list) and len(versions) > 1:
        return {**item, "PolicyVersionList": [v for v in versions if v.get("IsDefaultVersion")] or versions}
    return item
