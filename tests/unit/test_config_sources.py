"""Configuration from outside the code: ``PublisherConfig.from_env()`` and
``PublisherConfig.from_properties()`` (librdkafka- and Java-style ``client.properties``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eventwire import ConfigError, PublisherConfig, RetryPolicy
from eventwire.security import TLS, OidcClientCredentials, SaslPlain, SaslScram, Secret

SECRET = "pa55-from-outside-1234"


@pytest.fixture
def ca(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def properties(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return path


def refused_file(tmp_path: Path, text: str, message: str) -> None:
    path = properties(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        PublisherConfig.from_properties(path)
    assert str(raised.value) == message.format(path=path)
    assert SECRET not in str(raised.value)


# -- the environment -----------------------------------------------------------------------------


def test_from_env_reads_the_documented_variables(ca: str) -> None:
    config = PublisherConfig.from_env(
        {
            "EVENTWIRE_BOOTSTRAP_SERVERS": "b-1.example:9096,b-2.example:9096",
            "EVENTWIRE_CLIENT_ID": "orders-api",
            "EVENTWIRE_SECURITY_PROTOCOL": "SASL_SSL",
            "EVENTWIRE_SASL_MECHANISM": "SCRAM-SHA-512",
            "EVENTWIRE_SASL_USERNAME": "orders",
            "EVENTWIRE_SASL_PASSWORD": SECRET,
            "EVENTWIRE_SSL_CA_LOCATION": ca,
            "EVENTWIRE_PRESET": "throughput",
            "EVENTWIRE_TOPIC_PREFIX": "prod.",
            "PATH": "/usr/bin",  # not ours: ignored
            "EVENTWIRE_KAFKA_CACHE": "kafka-cache",  # another eventwire variable: ignored
        }
    )
    assert config.bootstrap_servers == "b-1.example:9096,b-2.example:9096"
    assert (config.client_id, config.preset, config.topic_prefix) == (
        "orders-api",
        "throughput",
        "prod.",
    )
    assert config.security == SaslScram(
        username="orders", password=Secret(SECRET), tls=TLS(ca_location=ca)
    )
    assert SECRET not in repr(config)


def test_from_env_takes_fields_over_the_variables() -> None:
    config = PublisherConfig.from_env(
        {"EVENTWIRE_BOOTSTRAP_SERVERS": "a:9092", "EVENTWIRE_CLIENT_ID": "from-env"},
        client_id="from-code",
        retry=RetryPolicy.never(),
    )
    assert (config.client_id, config.retry) == ("from-code", RetryPolicy.never())


def test_from_env_oidc_and_hostname_verification_off() -> None:
    config = PublisherConfig.from_env(
        {
            "EVENTWIRE_BOOTSTRAP_SERVERS": "a:9093",
            "EVENTWIRE_SECURITY_PROTOCOL": "SASL_SSL",
            "EVENTWIRE_SASL_MECHANISM": "OAUTHBEARER",
            "EVENTWIRE_SASL_OAUTHBEARER_METHOD": "oidc",
            "EVENTWIRE_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL": "https://idp/token",
            "EVENTWIRE_SASL_OAUTHBEARER_CLIENT_ID": "orders-api",
            "EVENTWIRE_SASL_OAUTHBEARER_CLIENT_SECRET": SECRET,
            "EVENTWIRE_SASL_OAUTHBEARER_SCOPE": "kafka",
            "EVENTWIRE_SASL_OAUTHBEARER_EXTENSIONS": "logicalCluster=lkc-1",
            "EVENTWIRE_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "none",
        }
    )
    assert config.security == OidcClientCredentials(
        token_endpoint_url="https://idp/token",
        client_id="orders-api",
        client_secret=Secret(SECRET),
        scope="kafka",
        extensions={"logicalCluster": "lkc-1"},
        tls=TLS(verify_hostname=False),
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "EVENTWIRE_BOOTSTRAP_SERVERS is required (the Kafka cluster's host:port list)"),
        (
            {"EVENTWIRE_BOOTSTRAP_SERVERS": "a:1", "EVENTWIRE_SECURITY_PROTOCOL": "SASL_SSL"},
            "EVENTWIRE_SASL_MECHANISM is required: security.protocol=SASL_SSL "
            "(EVENTWIRE_SECURITY_PROTOCOL) (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)",
        ),
        (
            {
                "EVENTWIRE_BOOTSTRAP_SERVERS": "a:1",
                "EVENTWIRE_SECURITY_PROTOCOL": "SASL_SSL",
                "EVENTWIRE_SASL_MECHANISM": "PLAIN",
                "EVENTWIRE_SASL_PASSWORD": SECRET,
            },
            "EVENTWIRE_SASL_USERNAME is required with sasl.mechanism=PLAIN "
            "(EVENTWIRE_SASL_MECHANISM)",
        ),
        (
            {"EVENTWIRE_BOOTSTRAP_SERVERS": "a:1", "EVENTWIRE_SASL_PASWORD": SECRET},
            "EVENTWIRE_SASL_PASWORD is not a variable eventwire reads; the security variables "
            "are EVENTWIRE_SASL_MECHANISM, EVENTWIRE_SASL_OAUTHBEARER_CLIENT_ID, "
            "EVENTWIRE_SASL_OAUTHBEARER_CLIENT_SECRET, EVENTWIRE_SASL_OAUTHBEARER_EXTENSIONS, "
            "EVENTWIRE_SASL_OAUTHBEARER_METHOD, EVENTWIRE_SASL_OAUTHBEARER_SCOPE, "
            "EVENTWIRE_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL, EVENTWIRE_SASL_PASSWORD, "
            "EVENTWIRE_SASL_USERNAME, EVENTWIRE_SECURITY_PROTOCOL, EVENTWIRE_SSL_CA_LOCATION, "
            "EVENTWIRE_SSL_CERTIFICATE_LOCATION, EVENTWIRE_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM, "
            "EVENTWIRE_SSL_KEY_LOCATION, EVENTWIRE_SSL_KEY_PASSWORD",
        ),
        (
            {
                "EVENTWIRE_BOOTSTRAP_SERVERS": "a:1",
                "EVENTWIRE_SECURITY_PROTOCOL": "SSL",
                "EVENTWIRE_SSL_CA_LOCATION": "/nowhere/ca.pem",
            },
            "EVENTWIRE_SSL_CA_LOCATION: '/nowhere/ca.pem' does not exist",
        ),
        (
            {"EVENTWIRE_BOOTSTRAP_SERVERS": "a:1", "EVENTWIRE_SASL_USERNAME": "u"},
            "EVENTWIRE_SASL_USERNAME: sasl.username is set but EVENTWIRE_SECURITY_PROTOCOL is "
            "not set (PLAINTEXT), which does not use SASL",
        ),
    ],
)
def test_from_env_names_the_variable_in_its_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$") as raised:
        PublisherConfig.from_env(environ)
    assert SECRET not in str(raised.value)


# -- properties files ----------------------------------------------------------------------------


def test_confluent_clouds_librdkafka_client_properties(tmp_path: Path) -> None:
    path = properties(
        tmp_path,
        "# Required connection configs for Kafka producer, consumer, and admin\n"
        "bootstrap.servers=pkc-00000.us-east-1.aws.confluent.cloud:9092\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanisms=PLAIN\n"
        "sasl.username=ABCDEFGHIJKLMNOP\n"
        f"sasl.password={SECRET}\n"
        "\n"
        "# Best practice for higher availability in librdkafka clients prior to 1.7\n"
        "session.timeout.ms=45000\n"
        "client.id=ccloud-python-client-1a2b\n",
    )
    config = PublisherConfig.from_properties(path)
    assert config.bootstrap_servers == "pkc-00000.us-east-1.aws.confluent.cloud:9092"
    assert config.client_id == "ccloud-python-client-1a2b"
    assert config.security == SaslPlain(username="ABCDEFGHIJKLMNOP", password=Secret(SECRET))
    assert dict(config.librdkafka_overrides) == {}  # session.timeout.ms is a consumer's


def test_the_java_form_with_a_jaas_config(tmp_path: Path, ca: str) -> None:
    path = properties(
        tmp_path,
        "bootstrap.servers=b-1.msk.example:9096\n"
        "security.protocol = SASL_SSL\n"
        "sasl.mechanism: SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
        f"    username='orders' password=\"{SECRET}\";\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={ca}\n"
        "acks=all\n"
        "client.dns.lookup=use_all_dns_ips\n"
        "linger.ms=10\n"
        "compression.type=zstd\n"
        "schema.registry.url=https://psrc-00000.region.aws.confluent.cloud\n"
        "basic.auth.user.info=KEY:SECRET\n",
    )
    config = PublisherConfig.from_properties(path)
    assert config.security == SaslScram(
        username="orders", password=Secret(SECRET), tls=TLS(ca_location=ca)
    )
    assert (config.linger_ms, config.compression) == (10.0, "zstd")
    assert dict(config.librdkafka_overrides) == {"client.dns.lookup": "use_all_dns_ips"}


def test_the_java_oauth_form_becomes_oidc_client_credentials(tmp_path: Path) -> None:
    path = properties(
        tmp_path,
        "bootstrap.servers=pkc-1:9092\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=OAUTHBEARER\n"
        "sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer."
        "OAuthBearerLoginCallbackHandler\n"
        "sasl.oauthbearer.token.endpoint.url=https://idp.example/oauth2/token\n"
        "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
        f' required clientId="orders-api" clientSecret="{SECRET}" scope="kafka";\n',
    )
    config = PublisherConfig.from_properties(path)
    assert config.security == OidcClientCredentials(
        token_endpoint_url="https://idp.example/oauth2/token",
        client_id="orders-api",
        client_secret=Secret(SECRET),
        scope="kafka",
    )


def test_java_properties_escapes_and_continuations(tmp_path: Path) -> None:
    path = properties(
        tmp_path,
        "! a comment\n"
        "bootstrap.servers = a:9092,\\\n"
        "                    b:9092\n"
        "client.id=caf\\u00e9\\-svc\n",
    )
    config = PublisherConfig.from_properties(path, preset="low_latency")
    assert config.bootstrap_servers == "a:9092,b:9092"
    assert config.client_id == "café-svc"
    assert config.preset == "low_latency"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\n"
            f"sasl.password={SECRET}\n",
            "bootstrap.servers in {path} is required (the Kafka cluster's host:port list)",
        ),
        (
            "bootstrap.servers=a:1\nkey.serializer=org.apache.kafka.common.serialization."
            "StringSerializer\n",
            "{path}:2: key.serializer is a Java client setting librdkafka does not have; "
            "eventwire encodes events itself: remove it",
        ),
        (
            "bootstrap.servers=a:1\nsecurity.protocol=SSL\nssl.truststore.location=/x.jks\n"
            f"ssl.truststore.password={SECRET}\n",
            "{path}:3: ssl.truststore.location is a JKS store, which librdkafka cannot read: "
            "export the CA certificate as PEM (keytool -exportcert -rfc -keystore STORE -alias "
            "ALIAS) and set ssl.ca.location to it",
        ),
        (
            "bootstrap.servers=a:1\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="u" password="{SECRET}";\n',
            "{path}:4: sasl.jaas.config uses ScramLoginModule but sasl.mechanism is PLAIN "
            "({path}:3); they must agree",
        ),
        (
            "bootstrap.servers=a:1\nsecurity.protocol=SASL_SSL\nsasl.mechanism=AWS_MSK_IAM\n"
            "sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;\n",
            "{path}:4: sasl.jaas.config uses software.amazon.msk.auth.iam.IAMLoginModule, not "
            "supported (Amazon MSK IAM: give security=OAuthBearer(token_provider=...) in code, "
            "see docs/security.md)",
        ),
        (
            "bootstrap.servers=a:1\nacks=1\n",
            "{path}:2: librdkafka_overrides['acks'] = '1' is refused: eventwire always produces "
            "with acks=all ('all' or '-1'); idempotence requires it",
        ),
        (
            "bootstrap.servers=a:1\nbootstrap.servers=b:1\n",
            "{path}:2: bootstrap.servers is given twice (first at {path}:1)",
        ),
        (
            "bootstrap.servers=a:1\nsecurity.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\n",
            "{path}:3: OAUTHBEARER from a file needs sasl.oauthbearer.method=oidc with its token "
            "endpoint, client id and secret; a token provider of your own is code: give "
            "security=OAuthBearer(token_provider=...)",
        ),
    ],
)
def test_a_file_names_the_line_of_what_it_refuses(tmp_path: Path, text: str, message: str) -> None:
    refused_file(tmp_path, text, message)


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "nope.properties"
    with pytest.raises(ConfigError, match=f"^cannot read {re.escape(str(missing))}: "):
        PublisherConfig.from_properties(missing)
