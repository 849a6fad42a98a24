"""Module-level resources, configs and assets of the asset-side Dagster tests (they pickle)."""

from __future__ import annotations

import enum

from pydantic import PrivateAttr

from host import AssetExecutionContext, Config, ConfigurableResource, InitResourceContext, asset
from tests.recording import Recorded, write


class Tier(enum.Enum):
    """An enum field, given by value at launch."""

    GOLD = "gold"
    SILVER = "silver"


class Region(Config):
    """Nested configuration of a resource."""

    name: str = "eu"
    zone: int = 1


class Store(ConfigurableResource):
    """A recorded resource with plain, enum and nested-config fields."""

    record: str
    label: str
    tier: Tier = Tier.SILVER
    region: Region = Region()
    _up: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label=self.label, run="")
        self._up = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label=self.label, run="")

    def describe(self) -> str:
        assert self._up, f"{self.label} used while not up"
        return f"{self.label}/{self.tier.value}/{self.region.name}{self.region.zone}"


class Bucket(ConfigurableResource):
    """Depends on credentials configured at launch (Dagster's nested example)."""

    record: str
    credentials: Recorded
    region: str = "us-east-1"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="setup", key=context.resource_key, label="bucket", run="")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        write(self.record, event="teardown", key=context.resource_key, label="bucket", run="")


class Client:
    """A plain object given to assets as it is (a ResourceParam)."""

    def __init__(self, name: str) -> None:
        self.name = name


class GreetingConfig(Config):
    """An asset's config, as in Dagster's docs."""

    person_name: str
    greeting: str = "hello"
    times: int = 1


@asset(required_resource_keys={"db"})
def from_context(context: AssetExecutionContext) -> str:
    """Dagster's required_resource_keys style."""
    return str(context.resources.db.use())


@asset
def greeting(config: GreetingConfig) -> str:
    """Takes its config for the run."""
    return " ".join([f"{config.greeting}, {config.person_name}"] * config.times)


@asset
def described(store: Store) -> str:
    """Takes a Store resource by annotation."""
    return store.describe()


@asset
def bucket_region(bucket: Bucket) -> str:
    """Takes a bucket whose credentials come up first."""
    return f"{bucket.credentials.use()}@{bucket.region}"
