"""Settings refuse weak secrets outside development and map URLs to async drivers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import DEV_SECRET_KEY, Settings, to_async_url


@pytest.mark.parametrize("secret", [DEV_SECRET_KEY, "short", "x" * 31])
def test_production_refuses_default_or_short_secret(secret: str) -> None:
    """Production will not start with the development secret or one under 32 characters."""
    with pytest.raises(ValidationError, match="PP_SECRET_KEY"):
        Settings(env="production", secret_key=secret)


@pytest.mark.parametrize("secret", [" " * 40, "\t\n" * 20, "   " + "k" * 31 + "   "])
def test_production_refuses_a_secret_of_whitespace(secret: str) -> None:
    """Padding is not strength: the length counts only what is not whitespace around it."""
    with pytest.raises(ValidationError, match="PP_SECRET_KEY"):
        Settings(env="production", secret_key=secret)


def test_production_accepts_a_long_secret() -> None:
    """A 32-character random secret is enough."""
    assert Settings(env="production", secret_key="k" * 32).env == "production"


def test_development_allows_the_default_secret() -> None:
    """The zero-configuration demo runs on the development secret."""
    assert Settings().secret_key == DEV_SECRET_KEY


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """PP_ENV and PP_SECRET_KEY from the environment are checked the same way."""
    monkeypatch.setenv("PP_ENV", "production")
    monkeypatch.setenv("PP_SECRET_KEY", "tiny")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/pp", "postgresql+asyncpg://u:p@db:5432/pp"),
        ("postgres://u@db/pp", "postgresql+asyncpg://u@db/pp"),
        ("sqlite:///data/pp.db", "sqlite+aiosqlite:///data/pp.db"),
        ("postgresql+asyncpg://u@db/pp", "postgresql+asyncpg://u@db/pp"),
    ],
)
def test_urls_map_to_async_drivers(given: str, expected: str) -> None:
    """Plain URLs get their async driver; URLs that name one are kept."""
    assert to_async_url(given) == expected
    assert Settings(database_url=given).async_database_url == expected


def test_station_config_overrides_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """PP_STATION_CONFIG_OVERRIDES lists station settings; a name that is none is refused."""
    assert Settings().station_config_overrides == ("interval_s",)
    monkeypatch.setenv("PP_STATION_CONFIG_OVERRIDES", "interval_s, heartbeat_s")
    assert Settings().station_config_overrides == ("interval_s", "heartbeat_s")
    monkeypatch.setenv("PP_STATION_CONFIG_OVERRIDES", "")
    assert Settings().station_config_overrides == ()
    monkeypatch.setenv("PP_STATION_CONFIG_OVERRIDES", "intervall_s")
    with pytest.raises(ValidationError, match="not a station setting: intervall_s"):
        Settings()
