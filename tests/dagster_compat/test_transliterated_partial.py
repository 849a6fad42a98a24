"""Dagster's ``.partial()`` tests (``pythonic_resources/test_partial.py``), run on host.

Each test keeps the behaviour the Dagster test checks: a resource given part of its config when
it is declared gets the rest from the run config, launch values win over declared ones, and a
required field nobody gives is a configuration error before the run.
"""

from __future__ import annotations

from typing import Any

import pytest

from host import ConfigError, ConfigurableResource, DefinitionError, asset, run_assets


def _launch(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"resources": {key: {"config": config} for key, config in resources.items()}}


class Wrapper(ConfigurableResource):
    """Writes text between a prefix and a postfix into ``written``."""

    prefix: str
    postfix: str

    def wrap(self, text: str) -> str:
        return f"{self.prefix}{text}{self.postfix}"


@asset
def greeting(writer: Wrapper) -> str:
    return writer.wrap("hi")


def test_partial_with_nothing_takes_every_field_at_launch() -> None:
    result = run_assets([greeting], {"writer": Wrapper.partial()},
                        run_config=_launch(writer={"prefix": ">", "postfix": "<"}))
    assert result.success
    assert result.outputs["greeting"] == ">hi<"


def test_partial_with_some_fields_takes_the_rest_at_launch() -> None:
    result = run_assets([greeting], {"writer": Wrapper.partial(prefix="(")},
                        run_config=_launch(writer={"postfix": ")"}))
    assert result.outputs["greeting"] == "(hi)"


def test_partial_with_every_field_needs_no_launch_config() -> None:
    result = run_assets([greeting], {"writer": Wrapper.partial(prefix="{", postfix="}")})
    assert result.outputs["greeting"] == "{hi}"


@pytest.mark.parametrize(
    ("declared", "launched", "expected"),
    [
        ({"prefix": "{"}, {"prefix": "[", "postfix": "]"}, "[hi]"),
        ({"prefix": "<", "postfix": ">"}, {"prefix": "*", "postfix": "*"}, "*hi*"),
    ],
)
def test_launch_values_override_partial_values(
    declared: dict[str, str], launched: dict[str, str], expected: str
) -> None:
    result = run_assets([greeting], {"writer": Wrapper.partial(**declared)},
                        run_config=_launch(writer=launched))
    assert result.outputs["greeting"] == expected


def test_a_partial_credentials_resource_shared_by_two_resources_is_completed_once() -> None:
    class Credentials(ConfigurableResource):
        username: str
        password: str

    class Bucket(ConfigurableResource):
        credentials: Credentials
        bucket_name: str

    class Machines(ConfigurableResource):
        credentials: Credentials

    @asset
    def seen(s3: Bucket, ec2: Machines) -> tuple[str, ...]:
        return (s3.credentials.username, s3.credentials.password, s3.bucket_name,
                ec2.credentials.username, ec2.credentials.password)

    credentials = Credentials.partial(username="foo")
    result = run_assets(
        [seen],
        {"aws_credentials": credentials,
         "s3": Bucket(bucket_name="my_bucket", credentials=credentials),
         "ec2": Machines(credentials=credentials)},
        run_config=_launch(aws_credentials={"password": "bar"}),
    )
    assert result.outputs["seen"] == ("foo", "bar", "my_bucket", "foo", "bar")


def test_partial_resources_nested_two_deep_are_completed_at_launch() -> None:
    class Credentials(ConfigurableResource):
        username: str
        password: str

    class DbSettings(ConfigurableResource):
        creds: Credentials
        host: str
        database: str

    class Db(ConfigurableResource):
        settings: DbSettings

    @asset
    def seen(db: Db) -> tuple[str, ...]:
        return (db.settings.creds.username, db.settings.creds.password, db.settings.host,
                db.settings.database)

    credentials = Credentials.partial(username="foo")
    settings = DbSettings.partial(creds=credentials, host="localhost")
    result = run_assets(
        [seen],
        {"credentials": credentials, "db_settings": settings, "db": Db(settings=settings)},
        run_config=_launch(credentials={"password": "bar"},
                           db_settings={"host": "localhost", "database": "my_db"}),
    )
    assert result.outputs["seen"] == ("foo", "bar", "localhost", "my_db")


@pytest.mark.parametrize("given", [{"prefix": "("}, {"prefix": "(", "postfix": ")"}])
def test_configure_at_launch_with_config_values_points_to_partial(given: dict[str, str]) -> None:
    with pytest.raises(DefinitionError) as caught:
        run_assets([greeting], {"writer": Wrapper.configure_at_launch(**given)})
    message = str(caught.value)
    assert "configure_at_launch" in message
    assert "partial" in message
    for name in given:
        assert name in message


def test_a_field_neither_declared_nor_launched_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        run_assets([greeting], {"writer": Wrapper.partial(prefix="(")})
    message = str(caught.value)
    assert "writer" in message
    assert "postfix" in message
