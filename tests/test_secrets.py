"""A PostgreSQL URI may name a Secret Manager secret instead of carrying its password, so the
password never shows in a job's options."""

from __future__ import annotations

import pytest

import transforms.core.secrets as secrets
from transforms.core import SecretError, with_secret_password
from transforms.state import StateError, open_state

NAME = "projects/news/secrets/newsbeam-db/versions/latest"


def test_the_secret_becomes_the_password_and_leaves_the_query() -> None:
    asked = []

    def fetch(name: str) -> str:
        asked.append(name)
        return "p@ss w:rd/1\n"  # as a secret file is often saved, with a newline

    uri = f"postgresql://newsbeam@10.0.0.5:5432/news?password_secret={NAME}&sslmode=require"
    assert with_secret_password(uri, fetch) == (
        "postgresql://newsbeam:p%40ss%20w%3Ard%2F1@10.0.0.5:5432/news?sslmode=require")
    assert asked == [NAME]
    ipv6 = f"postgresql://newsbeam@[fd00::5]/news?password_secret={NAME}"
    assert with_secret_password(ipv6, fetch) == "postgresql://newsbeam:p%40ss%20w%3Ard%2F1@[fd00::5]/news"


def test_a_uri_without_a_secret_is_left_alone() -> None:
    uri = "postgresql://newsbeam:kept@db:5432/news?table=articles"

    def fetch(name: str) -> str:
        raise AssertionError("nothing to fetch")

    assert with_secret_password(uri, fetch) == uri


def test_a_secret_that_cannot_be_read_is_one_line_naming_it() -> None:
    def fetch(name: str) -> str:
        raise PermissionError("403 Permission 'secretmanager.versions.access' denied\nmore")

    with pytest.raises(SecretError) as error:
        with_secret_password(f"postgresql://u@db/news?password_secret={NAME}", fetch)
    assert str(error.value) == (
        f"password_secret {NAME}: 403 Permission 'secretmanager.versions.access' denied")


@pytest.mark.services
def test_the_state_store_connects_with_the_secret(
    postgres_uri: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The local server trusts 127.0.0.1, so what this shows is that the store reads the secret
    # and hands PostgreSQL a URI it accepts (it refuses an unknown query parameter).
    asked = []
    monkeypatch.setattr(secrets, "secret_manager_value", lambda name: asked.append(name) or "pw")
    store = open_state(f"{postgres_uri}&password_secret={NAME}")
    assert store.committed_runs() == set()
    store.close()
    assert asked == [NAME]

    def denied(name: str) -> str:
        raise PermissionError("denied")

    monkeypatch.setattr(secrets, "secret_manager_value", denied)
    with pytest.raises(StateError, match=f"password_secret {NAME}: denied"):
        open_state(f"{postgres_uri}&password_secret={NAME}")
