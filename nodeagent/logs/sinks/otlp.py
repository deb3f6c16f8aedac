"""OTLP/HTTP logs: ``ExportLogsServiceRequest`` POSTed as the OpenTelemetry Collector's otlphttp receiver
takes it, built with the official ``opentelemetry-proto`` messages.

Options:
  endpoint        base URL (http:// or https://); the request goes to ``<endpoint>/v1/logs``
  logs_endpoint   the full URL, used as it is (instead of endpoint; as OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)
  encoding        protobuf (default, ``application/x-protobuf``) or json (``application/json``, the
                  OTLP/JSON mapping: enums as integers, 64-bit integers as strings, lowerCamelCase names)
  headers, gzip (default false), timeout (default 10s), bearer_token | bearer_token_file, basic_auth,
  tls             as every HTTP sink (see :mod:`nodeagent.logs.sinks._http`)

The message: one ResourceLogs per resource (a container's file on a node), one ScopeLogs (scope
``nodeagent`` with the agent's version), one LogRecord per record. Resource attributes follow the
semantic conventions: ``host.name`` and ``k8s.node.name`` (the node), ``log.file.path``, and from the
record's ``kubernetes`` metadata ``k8s.namespace.name``, ``k8s.pod.name``, ``k8s.pod.uid``,
``k8s.container.name``, ``k8s.container.restart_count``, ``container.id``, ``container.image.name`` /
``container.image.tag`` (from the image), ``container.image.id`` / ``container.image.repo_digests``
(from the image ID), ``k8s.pod.ip``, ``k8s.<kind>.name`` for a Deployment, ReplicaSet, StatefulSet,
DaemonSet, Job or CronJob owner, ``k8s.pod.label.<key>``, ``k8s.pod.annotation.<key>``,
``k8s.node.label.<key>``; any other key is passed on as ``k8s.<key>``. Labels are pod-wide, so they go on
the resource (as the Collector's k8sattributes processor puts them), not on every record.

A LogRecord: ``time_unix_nano`` (the record's time), ``observed_time_unix_nano`` (when the batch was
built), ``body`` (the message as a string), attributes ``log.iostream`` (stdout/stderr) and the record's
parsed ``fields`` (nested values as kvlists and arrays). Severity: the stream does not set one — neither
the Collector's filelog receiver (container parser) nor Fluent Bit's opentelemetry output derives a
severity from stderr — but a parsed ``level`` or ``severity`` field sets ``severity_text`` and the matching
``severity_number`` (trace, debug, info, notice, warn, error, fatal/critical/panic...).

Answers (the OTLP/HTTP specification): 2xx is delivery; its ExportLogsServiceResponse may carry a
``partial_success``: the rejected records are counted in ``nodeagent_logs_records_dropped{reason=
"partial_success"}`` and its error message is logged at most once a minute. 429, 502, 503 and 504 are
retried, honouring Retry-After; every other 4xx and 5xx drops the batch (the specification says they
must not be retried). Refusals carry a google.rpc.Status, whose message is quoted in the error.

protobuf is imported when the first otlp sink is built, so an agent without one does not pay for it
(about 1.2 MB of RSS and 40-90 ms, measured on top of the agent).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, ClassVar

from nodeagent import __version__
from nodeagent.config.schema import Field, Invalid, Section
from nodeagent.config.values import parse_choice, parse_http_url
from nodeagent.logs import metrics
from nodeagent.logs.encoding import unix_nanos
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._http import HttpPoster, PostingSink, check_http_options, http_fields

log = logging.getLogger("nodeagent.logs.sinks.otlp")

CONTENT_TYPES = {"protobuf": "application/x-protobuf", "json": "application/json"}
LOGS_PATH = "/v1/logs"
RETRYABLE_STATUSES = frozenset((429, 502, 503, 504))
SCOPE_NAME = "nodeagent"
PARTIAL_SUCCESS_LOG_INTERVAL = 60.0  # seconds between two logs of a partial success's message
MAX_VALUE_DEPTH = 16  # nested fields deeper than this are sent as their text

# kubernetes metadata key -> resource attribute (semantic conventions)
K8S_ATTRIBUTES = {
    "namespace": "k8s.namespace.name",
    "pod": "k8s.pod.name",
    "pod_uid": "k8s.pod.uid",
    "container": "k8s.container.name",
    "restart_count": "k8s.container.restart_count",
    "container_id": "container.id",
    "pod_ip": "k8s.pod.ip",
}
K8S_PREFIXED = {
    "labels": "k8s.pod.label.",
    "annotations": "k8s.pod.annotation.",
    "node_labels": "k8s.node.label.",
}
OWNER_KINDS = {
    "Deployment": "k8s.deployment.name",
    "ReplicaSet": "k8s.replicaset.name",
    "StatefulSet": "k8s.statefulset.name",
    "DaemonSet": "k8s.daemonset.name",
    "Job": "k8s.job.name",
    "CronJob": "k8s.cronjob.name",
}
# A parsed level -> SeverityNumber (the first of its range, as the filelog receiver's severity parser).
SEVERITY_NUMBERS = {
    "trace": 1,
    "debug": 5,
    "info": 9,
    "information": 9,
    "informational": 9,
    "notice": 10,
    "warn": 13,
    "warning": 13,
    "error": 17,
    "err": 17,
    "critical": 21,
    "crit": 21,
    "alert": 22,
    "emergency": 23,
    "emerg": 23,
    "fatal": 21,
    "panic": 21,
}
SEVERITY_FIELDS = ("level", "severity")

Attribute = tuple[str, Any]  # (key, str | int | tuple of str): hashable, so a resource is a dict key


def split_image(image: str) -> tuple[str, str | None]:
    """``registry:5000/app:1.2@sha256:..`` -> (``registry:5000/app``, ``1.2``)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :] or None
    return name, None


def resource_attributes(record: Record) -> tuple[Attribute, ...]:
    """The record's resource, as (key, value) pairs in a stable order."""
    attributes: list[Attribute] = [
        ("host.name", record.node),
        ("k8s.node.name", record.node),
        ("log.file.path", record.file),
    ]
    kubernetes = record.kubernetes or {}
    if not record.kubernetes:
        attributes.pop(1)  # a host's own file: no Kubernetes node to speak of
        return tuple(attributes)
    owner_kind = kubernetes.get("owner_kind")
    for key, value in kubernetes.items():
        if value is None or value == "":
            continue
        if key in K8S_ATTRIBUTES:
            attributes.append((K8S_ATTRIBUTES[key], value if key == "restart_count" else str(value)))
        elif key in K8S_PREFIXED and isinstance(value, Mapping):
            prefix = K8S_PREFIXED[key]
            attributes.extend((prefix + str(name), str(text)) for name, text in sorted(value.items()))
        elif key == "image" and isinstance(value, str):
            name, tag = split_image(value)
            attributes.append(("container.image.name", name))
            if tag:
                attributes.append(("container.image.tag", tag))
        elif key == "image_id" and isinstance(value, str):
            attributes.append(("container.image.id", value.rsplit("@", 1)[-1]))
            if "@" in value:
                attributes.append(("container.image.repo_digests", (value,)))
        elif key == "owner_name" and owner_kind in OWNER_KINDS:
            attributes.append((OWNER_KINDS[owner_kind], str(value)))
        elif key == "owner_kind" and owner_kind in OWNER_KINDS:
            continue
        else:
            attributes.append((f"k8s.{key}", _hashable(value)))
    return tuple(attributes)


def _hashable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return tuple(map(_hashable, value))
    return json.dumps(value, sort_keys=True, default=str)


def set_value(target: Any, value: Any, depth: int = 0) -> None:
    """Fill an AnyValue from a Python value (None leaves it empty: OTLP's null)."""
    if value is None:
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        set_text(target, "string_value", value)
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif depth >= MAX_VALUE_DEPTH:
        set_text(target, "string_value", json.dumps(value, default=str, ensure_ascii=False))
    elif isinstance(value, Mapping):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            pair = target.kvlist_value.values.add()
            set_text(pair, "key", str(key))
            set_value(pair.value, item, depth + 1)
    elif isinstance(value, list | tuple):
        target.array_value.SetInParent()
        for item in value:
            set_value(target.array_value.values.add(), item, depth + 1)
    else:
        set_text(target, "string_value", str(value))


def set_text(target: Any, name: str, text: str) -> None:
    """A string field; text that is not valid UTF-8 (a lone surrogate) goes with the culprit replaced."""
    try:
        setattr(target, name, text)
    except (UnicodeEncodeError, ValueError):
        setattr(target, name, text.encode("utf-8", "replace").decode("utf-8"))


def _add_attribute(attributes: Any, key: str, value: Any) -> None:
    pair = attributes.add()
    set_text(pair, "key", key)
    set_value(pair.value, value)


def build_request(batch: Sequence[Record], observed_ns: int) -> Any:
    """The ExportLogsServiceRequest for a batch (records of one resource grouped, in order)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    by_source: dict[tuple[str, str, int], Any] = {}  # (file, node, id(kubernetes)) -> its log_records
    by_resource: dict[tuple[Attribute, ...], Any] = {}
    for record in batch:
        source = (record.file, record.node, id(record.kubernetes))
        records = by_source.get(source)
        if records is None:
            resource = resource_attributes(record)
            records = by_resource.get(resource)
            if records is None:
                resource_logs = request.resource_logs.add()
                for key, value in resource:
                    _add_attribute(resource_logs.resource.attributes, key, value)
                scope_logs = resource_logs.scope_logs.add()
                scope_logs.scope.name = SCOPE_NAME
                scope_logs.scope.version = __version__
                records = by_resource[resource] = scope_logs.log_records
            by_source[source] = records
        log_record = records.add()
        log_record.time_unix_nano = unix_nanos(record.time) or 0
        log_record.observed_time_unix_nano = observed_ns
        set_text(log_record.body, "string_value", record.message)
        if record.stream:
            _add_attribute(log_record.attributes, "log.iostream", record.stream)
        fields = getattr(record, "fields", None)  # parsed by filters, when the record model has them
        if fields:
            for key, value in fields.items():
                _add_attribute(log_record.attributes, str(key), value)
            set_severity(log_record, fields)
    return request


def set_severity(log_record: Any, fields: Mapping[str, Any]) -> None:
    for name in SEVERITY_FIELDS:
        level = fields.get(name)
        if isinstance(level, str) and level:
            set_text(log_record, "severity_text", level)
            log_record.severity_number = SEVERITY_NUMBERS.get(level.strip().lower(), 0)
            return


def encode_request(request: Any, encoding: str) -> bytes:
    if encoding == "protobuf":
        return bytes(request.SerializeToString())
    from google.protobuf import json_format

    # OTLP/JSON: enums as integers; int64 as strings and lowerCamelCase names are json_format's
    # defaults. No trace or span ids are sent, so the hex rule for them has nothing to apply to.
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def decode_response(body: bytes, encoding: str) -> Any:
    """An ExportLogsServiceResponse; raises ValueError when the body is not one."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    try:
        if encoding == "protobuf":
            return ExportLogsServiceResponse.FromString(body)
        return json_format.Parse(body or b"{}", ExportLogsServiceResponse(), ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None


@cache
def status_message_class() -> Any:
    """google.rpc.Status (code, message, details), which opentelemetry-proto does not ship.

    Declared from its published .proto in a pool of its own, so it cannot clash with a
    googleapis-common-protos that some other code may import.
    """
    from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="nodeagent/google/rpc/status.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=["google/protobuf/any.proto"],
    )
    status = file.message_type.add(name="Status")
    status.field.add(name="code", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    status.field.add(name="message", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    status.field.add(
        name="details",
        number=3,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


def describe_status(body: bytes, content_type: str) -> str | None:
    """A refusal's google.rpc.Status as ``code N: message``; None when the body is not one."""
    from google.protobuf.message import DecodeError

    if not body:
        return None
    code: Any
    message: Any
    if content_type == CONTENT_TYPES["protobuf"]:
        try:
            status = status_message_class().FromString(body)
        except DecodeError:
            return None
        code, message = status.code, status.message
    elif content_type == CONTENT_TYPES["json"]:
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        code, message = data.get("code", 0), data.get("message", "")
    else:
        return None
    return f"status {code}: {message}" if message or code else None


def logs_url(values: dict[str, Any]) -> str:
    if values["logs_endpoint"] is not None:
        return str(values["logs_endpoint"])
    return str(values["endpoint"]).rstrip("/") + LOGS_PATH


def check_options(values: dict[str, Any]) -> None:
    if (values["endpoint"] is None) == (values["logs_endpoint"] is None):
        raise Invalid("endpoint", "set either endpoint (/v1/logs is appended) or logs_endpoint")
    check_http_options({**values, "url": logs_url(values)})


MAX_RESPONSE_BYTES = 64 * 1024  # an ExportLogsServiceResponse (partial_success) is tiny; more is not read


class OtlpSink(PostingSink):
    type: ClassVar[str] = "otlp"
    option_schema: ClassVar[Section] = Section(
        (
            Field("endpoint", None, "Base URL; requests go to <endpoint>/v1/logs.", parse_http_url),
            Field(
                "logs_endpoint", None, "Full URL of the logs endpoint (instead of endpoint).", parse_http_url
            ),
            Field("encoding", "protobuf", "protobuf or json.", parse_choice(*CONTENT_TYPES)),
            *http_fields(gzip_default=False),
        ),
        subject="an otlp sink",
        check=check_options,
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        settings = self.read_options()
        self.url = logs_url(settings)
        self.encoding: str = settings["encoding"]
        self.content_type = CONTENT_TYPES[self.encoding]
        self._poster = HttpPoster(
            name,
            "POST",
            self.url,
            settings,
            retryable_statuses=RETRYABLE_STATUSES,
            describe_error=describe_status,
        )
        self._partial_logged_at: float | None = None
        self._partial_unlogged = 0
        build_request([], 0)  # imports protobuf now (at configuration), not in the first send

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        body = encode_request(build_request(batch, time.time_ns()), self.encoding)
        answer = await self._poster.post(body, self.content_type, keep_body=MAX_RESPONSE_BYTES)
        self._partial_success(answer)

    def _partial_success(self, answer: bytes) -> None:
        if not answer:
            return
        try:
            response = decode_response(answer, self.encoding)
        except ValueError as exc:  # delivered all the same: the body only could have told of rejections
            log.debug("unreadable OTLP response", extra={"sink": self.name, "err": str(exc)[:200]})
            return
        if not response.HasField("partial_success"):
            return
        rejected = response.partial_success.rejected_log_records
        message = response.partial_success.error_message
        if rejected > 0:
            metrics.RECORDS_DROPPED.labels(self.name, "partial_success").inc(rejected)
        if not (rejected or message):
            return
        self._partial_unlogged += rejected
        now = time.monotonic()
        if self._partial_logged_at is None or now - self._partial_logged_at >= PARTIAL_SUCCESS_LOG_INTERVAL:
            log.warning(
                "OTLP receiver rejected part of a request",
                extra={
                    "sink": self.name,
                    "rejected_since_last_log": self._partial_unlogged,
                    "err": message[:300],
                },
            )
            self._partial_logged_at = now
            self._partial_unlogged = 0
