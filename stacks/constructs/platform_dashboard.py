"""One CloudWatch dashboard for the platform: a row per area, alarm states first, then the
metrics behind the alarms with their thresholds drawn in."""

from __future__ import annotations

from collections import defaultdict

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stacks.constructs.platform_alarms import PlatformAlarms

_WIDTH = 24  # the dashboard grid
_GRAPH_WIDTH = 8
_HEIGHT = 6


class PlatformDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, dashboard_name: str, alarms: PlatformAlarms) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            period_override=cloudwatch.PeriodOverride.AUTO,
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# {dashboard_name}\n"
                    "Every alarm notifies the platform's alarm topic. Live clickstream views are in "
                    "OpenSearch Dashboards (*Clickstream overview*); see docs/observability.md."
                ),
                width=_WIDTH,
                height=2,
            )
        )
        for area in alarms.areas.values():
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(
                    title=f"{area.title}: alarms", alarms=list(area.alarms), width=_WIDTH, height=3
                )
            )
            self.dashboard.add_widgets(*_graphs(area.alarms))


def _graphs(alarms: list[cloudwatch.Alarm]) -> list[cloudwatch.IWidget]:
    """One graph per metric name and threshold (e.g. Lambda Errors of every function; the Duration
    of each function with its own timeout), the threshold drawn as a line. A metric math alarm (the
    drift of a group of features) gets its own graph."""
    by_metric: dict[tuple[str, float], list[cloudwatch.Alarm]] = defaultdict(list)
    for alarm in alarms:
        metric = alarm.metric
        title = metric.metric_name if isinstance(metric, cloudwatch.Metric) else alarm.node.id
        by_metric[(title, _threshold(alarm))].append(alarm)
    widgets: list[cloudwatch.IWidget] = []
    for (title, threshold), group in by_metric.items():
        widgets.append(
            cloudwatch.GraphWidget(
                title=title,
                left=[alarm.metric for alarm in group],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=threshold, label="threshold")],
                width=_GRAPH_WIDTH,
                height=_HEIGHT,
            )
        )
    return widgets


def _threshold(alarm: cloudwatch.Alarm) -> float:
    resource = alarm.node.default_child
    assert isinstance(resource, cloudwatch.CfnAlarm)
    return float(resource.threshold or 0)
