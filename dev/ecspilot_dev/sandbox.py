"""Sample AWS resources for a local AWS (moto): clusters with container instances,
task definitions, services and image pushes.

Shared by the demo, the tests and the benchmarks so that each builds the same
world the same way. It only calls public AWS APIs, so it works against moto
in-process and against moto's server alike; never point it at a real account.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.domain.images import ecr_registry
from ecspilot_dev.local import load_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
SANDBOX_AMI = "ami-0ec5e11a0000000f1"


def fake_digest(seed: str) -> str:
    """A stable sha256 digest for ``seed`` (moto derives digests from layers otherwise)."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class Sandbox:
    """Builds resources in a local AWS through ``clients``."""

    def __init__(self, clients: Clients, account: str = ACCOUNT, region: str = REGION) -> None:
        self.clients = clients
        self.account = account
        self.region = region

    @property
    def registry(self) -> str:
        return ecr_registry(self.account, self.region)

    def image(self, repository: str, tag: str = "v0") -> str:
        return f"{self.registry}/{repository}:{tag}"

    def _ami(self) -> str:
        # moto accepts any well-formed AMI id; listing its catalogue of real AMIs costs ~1.5 s
        return SANDBOX_AMI

    def cluster(
        self,
        name: str,
        instances_per_zone: int = 0,
        zones: Sequence[str] = ZONES,
        instance_type: str = "t3.medium",
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Create a cluster, with ``instances_per_zone`` EC2 container instances in each zone."""
        kwargs: dict[str, Any] = {"clusterName": name}
        if tags:
            kwargs["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        arn: str = self.clients.ecs.create_cluster(**kwargs)["cluster"]["clusterArn"]
        for zone in zones:
            for _ in range(instances_per_zone):
                self.container_instance(name, zone, instance_type)
        return arn

    def container_instance(self, cluster: str, zone: str, instance_type: str = "t3.medium") -> str:
        """Start an EC2 instance in ``zone`` and register it with ``cluster``."""
        ec2 = self.clients.get("ec2")
        instance = ec2.run_instances(
            ImageId=self._ami(),
            MinCount=1,
            MaxCount=1,
            InstanceType=instance_type,
            Placement={"AvailabilityZone": zone},
        )["Instances"][0]
        document = {
            "instanceId": instance["InstanceId"],
            "region": self.region,
            "availabilityZone": zone,
            "instanceType": instance_type,
            "accountId": self.account,
        }
        resp = self.clients.ecs.register_container_instance(
            cluster=cluster, instanceIdentityDocument=json.dumps(document)
        )
        return str(resp["containerInstance"]["containerInstanceArn"])

    def task_definition(self, family: str, images: Mapping[str, str], **extra: Any) -> str:
        """Register a task definition with one container per ``images`` entry (name -> image)."""
        containers = [
            {
                "name": name,
                "image": image,
                "memory": 256,
                "essential": i == 0,
                "environment": [{"name": "CONTAINER", "value": name}],
            }
            for i, (name, image) in enumerate(images.items())
        ]
        params: dict[str, Any] = {"family": family, "containerDefinitions": containers, **extra}
        return str(self.clients.ecs.register_task_definition(**params)["taskDefinition"]["taskDefinitionArn"])

    def service(self, cluster: str, name: str, task_definition: str, desired: int = 2, **extra: Any) -> str:
        resp = self.clients.ecs.create_service(
            cluster=cluster, serviceName=name, taskDefinition=task_definition, desiredCount=desired, **extra
        )
        return str(resp["service"]["serviceArn"])

    def repository(self, name: str) -> None:
        self.clients.ecr.create_repository(repositoryName=name)

    def push(self, repository: str, tag: str, digest: str | None = None) -> dict[str, Any]:
        """Put an image into ECR and return the ``ECR Image Action`` event ECR would send."""
        digest = digest or fake_digest(f"{repository}:{tag}")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": digest,
            },
            "layers": [],
        }
        self.clients.ecr.put_image(
            repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag, imageDigest=digest
        )
        return push_event(repository, tag, digest, account=self.account, region=self.region)


def push_event(
    repository: str,
    tag: str,
    digest: str,
    account: str = ACCOUNT,
    region: str = REGION,
    action: str = "PUSH",
    result: str = "SUCCESS",
) -> dict[str, Any]:
    """An ``ECR Image Action`` event, from ``events/ecr_push.json`` with these values."""
    event = load_event(
        "ecr_push",
        {
            "repository-name": repository,
            "image-tag": tag,
            "image-digest": digest,
            "action-type": action,
            "result": result,
        },
        account=account,
        region=region,
    )
    event["id"] = f"{repository}-{tag}-{digest[7:19]}"
    return event


def create_state_table(clients: Clients, name: str) -> None:
    """Create the state table with the schema template.yaml gives it (keys, gsi1, TTL)."""
    ddb = clients.dynamodb
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


class QueuePump:
    """Plays Lambda's SQS event source mapping against a local queue: receive a batch, shape the
    event Lambda would send, invoke the handler, delete what it did not report as failed.
    (moto never invokes Lambda from SQS.)"""

    def __init__(self, clients: Clients, queue_url: str, visibility_timeout: int = 0) -> None:
        self.clients = clients
        self.queue_url = queue_url
        self.visibility_timeout = visibility_timeout
        self.arn = clients.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def receive(self, max_messages: int = 10) -> dict[str, Any]:
        """One batch as the ``run_queued_jobs`` function receives it."""
        messages = self.clients.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            VisibilityTimeout=self.visibility_timeout,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn,
                    "awsRegion": self.clients.sqs.meta.region_name,
                }
                for m in messages
            ]
        }

    def settle(self, event: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Delete the batch's messages that the handler did not report in ``batchItemFailures``."""
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.clients.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"]
                )


def create_jobs_queue(
    clients: Clients, name: str = "ecspilot-jobs", max_receive_count: int = 5
) -> tuple[str, str]:
    """The jobs queue and its dead-letter queue, with the redrive policy template.yaml gives them."""
    sqs = clients.sqs
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "720",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return queue_url, dlq_url
