"""Composition of the whole platform: which stacks exist and how they are wired."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Environment, Stack, Tags

from platform_core.config import PlatformConfig
from stacks.cdc_stack import CdcStack
from stacks.clickstream_stack import ClickstreamStack
from stacks.data_lake_stack import DataLakeStack
from stacks.feature_stack import FeatureStack
from stacks.observability_stack import ObservabilityStack
from stacks.serving_stack import ServingStack
from stacks.training_stack import TrainingStack
from stacks.video_stack import VideoStack


@dataclass(frozen=True)
class Platform:
    data_lake: DataLakeStack
    observability: ObservabilityStack
    clickstream: ClickstreamStack
    cdc: CdcStack
    video: VideoStack
    features: FeatureStack
    training: TrainingStack
    serving: ServingStack

    @property
    def stacks(self) -> list[Stack]:
        return [
            self.data_lake,
            self.observability,
            self.clickstream,
            self.cdc,
            self.video,
            self.features,
            self.training,
            self.serving,
        ]


def build_platform(app: App, config: PlatformConfig, env: Environment) -> Platform:
    """Create every stack of one environment in ``app``."""
    prefix = "".join(part.capitalize() for part in config.resource_prefix.split("-"))
    data_lake = DataLakeStack(app, f"{prefix}DataLake", config=config, env=env)
    # Stateless stacks find the lake by name; the dependencies only order the deployment.
    observability = ObservabilityStack(app, f"{prefix}Observability", config=config, env=env)
    clickstream = ClickstreamStack(app, f"{prefix}Clickstream", config=config, env=env)
    cdc = CdcStack(app, f"{prefix}Cdc", config=config, env=env)
    video = VideoStack(app, f"{prefix}Video", config=config, env=env)
    features = FeatureStack(app, f"{prefix}Features", config=config, env=env)
    training = TrainingStack(app, f"{prefix}Training", config=config, env=env)
    serving = ServingStack(app, f"{prefix}Serving", config=config, env=env)
    dependants: tuple[Stack, ...] = (observability, clickstream, cdc, video, features, training, serving)
    for dependant in dependants:
        dependant.add_stack_dependency(data_lake)
    for dependant in (clickstream, cdc, video, features, serving):
        dependant.add_stack_dependency(observability)  # their alarms notify its topic, found by name
    features.add_stack_dependency(cdc)  # the orchestration starts the CDC stack's history job by name
    features.add_stack_dependency(training)  # ... and then the training pipeline, by name
    serving.add_stack_dependency(features)  # reads the feature groups and snapshot tables
    serving.add_stack_dependency(training)  # deploys from the model package group
    platform = Platform(
        data_lake=data_lake,
        observability=observability,
        clickstream=clickstream,
        cdc=cdc,
        video=video,
        features=features,
        training=training,
        serving=serving,
    )
    for tagged in platform.stacks:
        Tags.of(tagged).add("platform", config.prefix)
        Tags.of(tagged).add("environment", config.env_name)
    return platform
