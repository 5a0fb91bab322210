"""template.yaml's dashboard shows what the code emits, and every alarm reaches a person: the
metric names are read from both sides and compared both ways; the dimensions a SEARCH asks for are
the ones the code sets (tracking.decisions), so its query finds the series."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.domain.config import parse_config
from ecspilot.tracking.decisions import DEPLOYMENT_METRIC, job_dimensions, service_dimensions
from tests.dashboard import NAMESPACE, dashboard_metrics, emitted_metrics
from tests.template import function_ids, load_template

OWN = [m for m in dashboard_metrics() if m.namespace == NAMESPACE]
CONFIG = parse_config(
    {
        "version": 1,
        "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
        "jobs": [{"name": "report", "cluster": "batch", "task_definition": "report"}],
    }
)
# Powertools adds service=POWERTOOLS_SERVICE_NAME to every metric; the template sets it to ecspilot
DEFAULT_DIMENSION = {"service"}
ALARM_ACTIONS = {
    "Fn::If": [
        "HasAlarmTopic",
        [{"Ref": "AlarmTopicArn"}],
        {"Fn::If": ["NotificationsEnabled", [{"Ref": "NotifyTopic"}], {"Ref": "AWS::NoValue"}]},
    ]
}


def resources(kind: str) -> dict[str, Any]:
    return {lid: r for lid, r in load_template()["Resources"].items() if r["Type"] == kind}


def test_every_ecspilot_metric_on_the_dashboard_is_emitted_by_some_code_path() -> None:
    shown = {m.name for m in OWN}
    assert shown - emitted_metrics() == set()


def test_every_metric_the_code_emits_is_on_the_dashboard() -> None:
    shown = {m.name for m in OWN}
    assert emitted_metrics() - shown == set()


def test_the_name_reader_finds_constants_lookups_and_templated_names() -> None:
    # a reader that missed a form would make the two tests above pass vacuously
    emitted = emitted_metrics()
    assert set(DEPLOYMENT_METRIC.values()) <= emitted  # count(DEPLOYMENT_METRIC[status])
    assert {"JobRunsSucceeded", "JobRunsFailed"} <= emitted  # count("A" if ... else "B")
    assert {"QueueMessagesStarted", "ReconcileCreate", "ReconcileInSync"} <= emitted
    assert len(emitted) >= 40


@pytest.mark.parametrize("name", [*sorted(DEPLOYMENT_METRIC.values()), "DeploymentDuration"])
def test_deployment_outcomes_are_searched_per_service_with_the_dimensions_the_tracker_sets(name: str) -> None:
    [metric] = [m for m in OWN if m.name == name]
    assert metric.dimensions == set(service_dimensions(CONFIG, "prod", "web")) | DEFAULT_DIMENSION


@pytest.mark.parametrize("name", ["JobRunsSucceeded", "JobRunsFailed", "JobRunDuration"])
def test_job_run_outcomes_are_searched_per_job_with_the_dimensions_the_tracker_sets(name: str) -> None:
    [metric] = [m for m in OWN if m.name == name]
    assert metric.dimensions == set(job_dimensions(CONFIG, "report")) | DEFAULT_DIMENSION


def test_undimensioned_metrics_are_asked_for_with_the_default_service_dimension_of_the_stack() -> None:
    service_name = load_template()["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_SERVICE_NAME"
    ]
    explicit = [m for m in OWN if m.dimension_values]
    assert explicit
    assert {m.dimension_values for m in explicit} == {(("service", service_name),)}


def test_the_dashboard_shows_queue_depth_and_age_and_every_dead_letter_queue() -> None:
    sqs = {m.name for m in dashboard_metrics() if m.namespace == "AWS/SQS"}
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"} <= sqs
    [dashboard] = resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    queues = list(resources("AWS::SQS::Queue"))
    assert queues
    for queue in queues:
        assert f"${{{queue}.QueueName}}" in body, queue


@pytest.mark.parametrize("metric", ["Errors", "Duration"])
def test_the_dashboard_shows_every_functions_errors_and_durations(metric: str) -> None:
    [dashboard] = resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    conditional = {k for k, r in load_template()["Resources"].items() if "Condition" in r}
    for function in function_ids().values():
        if function in conditional:  # e.g. ChatAnswerFunction (ChatActions): a Sub cannot name it
            assert f"${{{function}}}" not in body, function
            continue
        assert f'"AWS/Lambda", "{metric}", "FunctionName", "${{{function}}}"' in body, function


def test_every_function_has_an_errors_alarm() -> None:
    alarmed = {
        d["Value"]["Ref"]
        for r in resources("AWS::CloudWatch::Alarm").values()
        if r["Properties"]["MetricName"] == "Errors" and r["Properties"]["Namespace"] == "AWS/Lambda"
        for d in r["Properties"]["Dimensions"]
        if d["Name"] == "FunctionName"
    }
    assert alarmed == set(function_ids().values())


@pytest.mark.parametrize("alarm", sorted(resources("AWS::CloudWatch::Alarm")))
def test_every_alarm_notifies_the_alarm_topic_else_the_notification_topic_when_one_is_configured(
    alarm: str,
) -> None:
    assert resources("AWS::CloudWatch::Alarm")[alarm]["Properties"]["AlarmActions"] == ALARM_ACTIONS
