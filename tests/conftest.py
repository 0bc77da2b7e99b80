"""Shared fixtures: the authorization server and the provider servers."""

pytest_plugins = ["support.idp_fixtures", "support.provider_fixtures"]
