"""``PublisherConfig(security=...)``: the variants of ``eventwire.security`` checked when built,
rendered into librdkafka settings, and their secrets never shown."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from eventwire import ConfigError, PublisherConfig
from eventwire.security import (
    TLS,
    OAuthBearer,
    OAuthToken,
    OidcClientCredentials,
    SaslPlain,
    SaslScram,
    Secret,
)

SECRET = "s3cr3t-never-shown-9876"
SERVERS = "broker-1:9093"


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    """Files TLS checks exist (their content is librdkafka's business)."""
    paths = {}
    for name in ("ca", "certificate", "key"):
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN-----\n")
        paths[name] = str(path)
    return paths


def make(security: Any, **changes: Any) -> PublisherConfig:
    settings: dict[str, Any] = {"bootstrap_servers": SERVERS, "security": security}
    settings.update(changes)
    return PublisherConfig(**settings)


def refused(message: str, security: Any = None, **changes: Any) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        make(security, **changes)


def provider() -> OAuthToken:
    return OAuthToken(value=Secret("token"), expires_at=2e9)


# -- Secret ------------------------------------------------------------------------------------


def test_a_secret_never_shows_itself() -> None:
    secret = Secret(SECRET)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret:>10}", repr([secret])):
        assert SECRET not in text
    assert repr(secret) == "Secret('***')"
    assert secret.reveal() == SECRET
    assert secret == Secret(SECRET)
    assert secret != Secret("other")
    assert pickle.loads(pickle.dumps(secret)) == secret  # noqa: S301 - our own bytes


@pytest.mark.parametrize("value", ["", None, 42, b"bytes"])
def test_a_secret_is_a_non_empty_str(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^a Secret must be a non-empty str"):
        Secret(value)


# -- rendering -----------------------------------------------------------------------------------


def test_tls_alone_is_ssl_with_hostname_verification_on(pem: dict[str, str]) -> None:
    settings = make(
        TLS(
            ca_location=pem["ca"],
            certificate_location=pem["certificate"],
            key_location=pem["key"],
            key_password=SECRET,  # type: ignore[arg-type]  # a str is wrapped
        )
    )._to_librdkafka()
    assert {k: v for k, v in settings.items() if k.startswith(("ssl.", "security."))} == {
        "security.protocol": "SSL",
        "ssl.ca.location": pem["ca"],
        "ssl.certificate.location": pem["certificate"],
        "ssl.key.location": pem["key"],
        "ssl.key.password": SECRET,
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_hostname_verification_is_off_only_when_asked() -> None:
    settings = make(TLS(verify_hostname=False))._to_librdkafka()
    assert settings["ssl.endpoint.identification.algorithm"] == "none"


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        (
            SaslPlain(username="api-key", password=Secret(SECRET)),
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "PLAIN",
                "sasl.username": "api-key",
                "sasl.password": SECRET,
            },
        ),
        (
            SaslScram(username="svc", password=Secret(SECRET), mechanism="SCRAM-SHA-256", tls=None),
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "svc",
                "sasl.password": SECRET,
            },
        ),
        (
            OAuthBearer(token_provider=provider),
            {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"},
        ),
        (
            OidcClientCredentials(
                token_endpoint_url="https://idp.example/oauth2/token",
                client_id="orders-api",
                client_secret=Secret(SECRET),
                scope="kafka",
                extensions={"logicalCluster": "lkc-1", "identityPoolId": "pool-2"},
            ),
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "OAUTHBEARER",
                "sasl.oauthbearer.method": "oidc",
                "sasl.oauthbearer.token.endpoint.url": "https://idp.example/oauth2/token",
                "sasl.oauthbearer.client.id": "orders-api",
                "sasl.oauthbearer.client.secret": SECRET,
                "sasl.oauthbearer.scope": "kafka",
                "sasl.oauthbearer.extensions": "logicalCluster=lkc-1,identityPoolId=pool-2",
            },
        ),
    ],
)
def test_each_sasl_variant_renders_its_settings(security: Any, expected: dict[str, Any]) -> None:
    settings = make(security)._to_librdkafka()
    security_keys = {k: v for k, v in settings.items() if k.startswith(("sasl.", "security."))}
    assert security_keys == expected
    # A SASL variant runs over TLS() by default: the system's CAs, hostname verified.
    tls = expected["security.protocol"] == "SASL_SSL"
    assert settings.get("ssl.endpoint.identification.algorithm") == ("https" if tls else None)
    assert "ssl.ca.location" not in settings


# -- checks --------------------------------------------------------------------------------------


def test_files_are_checked_when_built(tmp_path: Path, pem: dict[str, str]) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=re.escape(f"TLS.ca_location {missing!r} does not exist")):
        TLS(ca_location=missing)
    with pytest.raises(ConfigError, match=r"TLS\.certificate_location and TLS\.key_location"):
        TLS(certificate_location=pem["certificate"])
    with pytest.raises(ConfigError, match=r"TLS\.key_password is set but TLS\.key_location is"):
        TLS(key_password=Secret(SECRET))
    assert TLS(ca_location=str(tmp_path)).ca_location == str(tmp_path)  # a folder of CAs


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SaslPlain(username="", password=SECRET), "SaslPlain.username must be"),
        (lambda: SaslPlain(username="u", password=""), "SaslPlain.password must be"),
        (
            lambda: SaslScram(username="u", password=SECRET, mechanism="SCRAM-SHA-1"),
            "SaslScram.mechanism must be one of 'SCRAM-SHA-256', 'SCRAM-SHA-512'",
        ),
        (lambda: SaslPlain(username="u", password=SECRET, tls="yes"), "SaslPlain.tls must be"),
        (lambda: OAuthBearer(token_provider="token"), "OAuthBearer.token_provider must be"),
        (
            lambda: OidcClientCredentials(
                token_endpoint_url="idp/token", client_id="c", client_secret=SECRET
            ),
            "OidcClientCredentials.token_endpoint_url must be an http(s) URL",
        ),
        (
            lambda: OidcClientCredentials(
                token_endpoint_url="https://idp/token",
                client_id="c",
                client_secret=SECRET,
                extensions={"a": "x,y"},
            ),
            "OidcClientCredentials.extensions['a'] must not hold ',' or '='",
        ),
        (lambda: OAuthToken(value="t", expires_at=float("inf")), "OAuthToken.expires_at must be"),
    ],
)
def test_each_variant_refuses_what_cannot_work(build: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}") as raised:
        build()
    assert SECRET not in str(raised.value)


def test_security_and_the_flat_fields_are_not_mixed() -> None:
    refused(
        "security is set, and so is security_protocol, sasl_username: give one or the other "
        "(security=SaslPlain(...) holds them all)",
        SaslPlain(username="u", password=Secret(SECRET)),
        security_protocol="SASL_SSL",
        sasl_username="u",
    )


def test_an_override_of_what_security_sets_is_refused() -> None:
    refused(
        "librdkafka_overrides['ssl.endpoint.identification.algorithm'] is refused: "
        "security=TLS(...) sets it; use its fields",
        TLS(),
        librdkafka_overrides={"ssl.endpoint.identification.algorithm": "none"},
    )
    # Settings no variant has stay open (e.g. the token endpoint's own CA).
    config = make(
        OidcClientCredentials(
            token_endpoint_url="https://idp/token", client_id="c", client_secret=SECRET
        ),
        librdkafka_overrides={"https.ca.location": "/etc/idp-ca.pem"},
    )
    assert config._to_librdkafka()["https.ca.location"] == "/etc/idp-ca.pem"


def test_the_bootstrap_scheme_must_agree_with_the_variant() -> None:
    refused(
        "bootstrap_servers entry 'SSL://broker-1:9093' says SSL:// but security gives "
        "'SASL_SSL'; they must agree (drop the prefix, or use SASL_SSL://)",
        SaslScram(username="u", password=Secret(SECRET)),
        bootstrap_servers="SSL://broker-1:9093",
    )


def test_security_must_be_a_variant() -> None:
    refused(
        "security must be TLS, SaslPlain, SaslScram, OAuthBearer or OidcClientCredentials "
        "(from eventwire.security) or None, got dict",
        {"sasl.mechanism": "PLAIN"},
    )


def test_the_flat_password_may_be_a_secret() -> None:
    config = PublisherConfig(
        bootstrap_servers=SERVERS,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password=Secret(SECRET),
    )
    assert config._to_librdkafka()["sasl.password"] == SECRET
    assert SECRET not in repr(config)


# -- secrets never shown -------------------------------------------------------------------------


def _every_variant(pem: dict[str, str]) -> list[Any]:
    tls = TLS(
        ca_location=pem["ca"],
        certificate_location=pem["certificate"],
        key_location=pem["key"],
        key_password=Secret(SECRET),
    )
    return [
        tls,
        SaslPlain(username="u", password=Secret(SECRET), tls=tls),
        SaslScram(username="u", password=Secret(SECRET)),
        OidcClientCredentials(
            token_endpoint_url="https://idp/token", client_id="c", client_secret=Secret(SECRET)
        ),
    ]


def test_no_variant_shows_its_secrets(pem: dict[str, str]) -> None:
    for security in _every_variant(pem):
        config = make(security)
        for text in (repr(security), repr(config), str(config), repr(config.redacted_librdkafka())):
            assert SECRET not in text
        assert SECRET in config._to_librdkafka().values()  # librdkafka gets them
        assert config._scrub(f"librdkafka echoed {SECRET}!") == "librdkafka echoed ***!"


def test_a_token_never_shows_itself() -> None:
    token = OAuthToken(value="eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", expires_at=2e9)
    assert "eyJ" not in repr(token)
    assert isinstance(token.value, Secret)


def test_refusals_of_a_config_with_secrets_never_show_them(pem: dict[str, str]) -> None:
    for security in _every_variant(pem):
        for changes in (
            {"preset": "fast"},
            {"security_protocol": "SASL_SSL"},
            {"librdkafka_overrides": {"sasl.password": SECRET}},
            {"librdkafka_overrides": {"acks": "1", "ssl.keystore.password": SECRET}},
        ):
            with pytest.raises(ConfigError) as raised:
                make(security, **changes)
            assert SECRET not in str(raised.value) + repr(raised.value)
