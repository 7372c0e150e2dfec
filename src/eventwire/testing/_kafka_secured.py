"""What a secured `KafkaCluster` offers its tests: the settings a client needs, users, ACLs,
certificates and tokens (a mixin over ``_kafka_security.ClusterSecurity``)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from eventwire.testing._broker import BrokerStartError
from eventwire.testing._kafka_node import KafkaNode
from eventwire.testing._kafka_security import (
    CLIENT_USER,
    SCRAM_MECHANISMS,
    ClusterSecurity,
)
from eventwire.testing._topic_client import ConsumedRecord, TopicClient

_SCRAM_ITERATIONS = 4096
#: Seconds `add_user` waits for a new SCRAM user to log in (credentials travel through the
#: metadata log to every broker).
_LOGIN_TIMEOUT = 30.0


class SecuredCluster(TopicClient):
    """The security half of `KafkaCluster` (see its docstring)."""

    _security: ClusterSecurity | None
    _nodes: dict[int, KafkaNode]

    def consume(
        self,
        topic: str,
        *,
        count: int | None = None,
        timeout: float = 30.0,
        as_user: str | None = None,
    ) -> list[ConsumedRecord]:
        """Read a topic from offset 0 of every partition with a plain consumer (see
        `LocalBroker.consume`). By default it reads through the kit's own listener;
        ``as_user`` reads through the secured client listener as that user (who needs READ
        on the topic with ``authorizer=True``)."""
        if as_user is None:
            return super().consume(topic, count=count, timeout=timeout)
        self._needs("SSL", "SASL_SSL", "SASL_PLAINTEXT", "SASL_OAUTHBEARER")
        return self._read_back(topic, count, timeout, self.librdkafka_config(as_user))

    def _client_settings(self) -> dict[str, Any]:
        # A secured cluster's own clients use the plaintext replication listener (a super
        # user): topics, read-back, users and ACLs need no credentials.
        if not self._nodes:
            raise BrokerStartError("the Kafka cluster was never started: call start() first")
        return {
            "bootstrap.servers": ",".join(node.internal_address for node in self._nodes.values())
        }

    # -- what a client needs -----------------------------------------------------------------

    @property
    def security(self) -> str:
        """The client listener's mode: ``"PLAINTEXT"``, ``"SSL"``, ``"SASL_SSL"``,
        ``"SASL_PLAINTEXT"`` or ``"SASL_OAUTHBEARER"``."""
        return "PLAINTEXT" if self._security is None else self._security.mode

    @property
    def ca_location(self) -> Path | None:
        """The CA bundle (PEM) that signed the brokers' certificates; ``None`` without TLS."""
        security = self._security
        return None if security is None or security.ca is None else security.ca.location

    @property
    def untrusted_ca_location(self) -> Path | None:
        """A second CA the brokers do not trust (for wrong-CA tests); ``None`` without TLS."""
        security = self._security
        if security is None or security.untrusted_ca is None:
            return None
        return security.untrusted_ca.location

    @property
    def users(self) -> dict[str, str]:
        """Each user and its password (with ``SSL``: its key's passphrase), ``admin`` (a
        super user) included."""
        return {} if self._security is None else dict(self._security.users)

    def client_config(
        self,
        user: str = CLIENT_USER,
        *,
        password: str | None = None,
        oauth: Literal["token", "oidc"] = "token",
    ) -> dict[str, Any]:
        """The ``PublisherConfig`` keyword arguments that connect as ``user``:
        ``bootstrap_servers`` and ``security`` (for ``SSL`` a ``TLS`` with the user's
        certificate and encrypted key; ``SaslScram`` SCRAM-SHA-512, ``SaslPlain``, or an
        ``OAuthBearer`` of unsecured tokens, ``OidcClientCredentials`` with
        ``oauth="oidc"``; each with the cluster's CA).

        Args:
            user: who to connect as.
            password: instead of the user's own (e.g. a wrong one).
            oauth: ``"token"`` (a token provider) or ``"oidc"`` (the cluster's token
                endpoint), for ``SASL_OAUTHBEARER``.

        Raises:
            ValueError: no such user, or the cluster is plaintext.
        """
        config: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        if self._security is not None:
            config["security"] = self._security.client_security(
                user, password=password, oauth=oauth
            )
        return config

    def librdkafka_config(self, user: str = CLIENT_USER) -> dict[str, Any]:
        """A confluent-kafka client's settings to connect as ``user``
        (``bootstrap.servers``, the security settings; an ``oauth_cb`` with
        ``SASL_OAUTHBEARER``), e.g. for a consumer of your own."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self._security is not None:
            config.update(self._security.librdkafka(user))
        return config

    def token_provider(self, user: str = CLIENT_USER, lifetime: float | None = None) -> Any:
        """An `OAuthBearer` token provider of unsecured tokens for ``user``, living
        ``lifetime`` seconds (default the cluster's ``token_lifetime``).

        Raises:
            ValueError: the cluster is not ``SASL_OAUTHBEARER``.
        """
        security = self._needs("SASL_OAUTHBEARER")
        provide: Any = security.token_provider(user, lifetime)
        return provide

    @property
    def token_endpoint_url(self) -> str:
        """The local OIDC token endpoint (``SASL_OAUTHBEARER``): client id = a user, client
        secret = its password.

        Raises:
            ValueError: the cluster is not ``SASL_OAUTHBEARER``.
        """
        endpoint = self._needs("SASL_OAUTHBEARER").endpoint
        if endpoint is None:
            raise BrokerStartError("the Kafka cluster is not running: call start() first")
        return endpoint.url

    @property
    def tokens_issued(self) -> int:
        """Tokens the OIDC endpoint issued so far (``SASL_OAUTHBEARER``; else 0)."""
        security = self._security
        return 0 if security is None or security.endpoint is None else security.endpoint.issued

    # -- users, certificates, ACLs -----------------------------------------------------------

    def add_user(self, name: str, password: str | None = None) -> str:
        """Add a user to the running cluster and return its password: SCRAM-SHA-512 and -256
        credentials through the Admin API (``SASL_SSL``, waiting until it can log in), a
        client certificate whose key the password encrypts (``SSL``), or an OIDC client
        (``SASL_OAUTHBEARER``). ``SASL_PLAINTEXT`` users are fixed at start (``users=``).

        Raises:
            ValueError: a plaintext cluster, or ``SASL_PLAINTEXT``.
            TimeoutError: a SCRAM user could not log in within 30 s.
        """
        security = self._needs("SSL", "SASL_SSL", "SASL_OAUTHBEARER")
        self._require_running()
        secret = password or secrets.token_hex(12)
        security.users[name] = secret
        if security.mode == "SSL":
            security.add_certificate(name, secret)
        elif security.mode == "SASL_OAUTHBEARER":
            assert security.endpoint is not None  # noqa: S101 - started with the cluster
            security.endpoint.clients[name] = secret
        else:
            self._create_scram_users({name: secret})
        return secret

    def issue_certificate(
        self,
        common_name: str,
        *,
        expired: bool = False,
        trusted: bool = True,
        password: str | None = None,
    ) -> tuple[Path, Path]:
        """A client certificate and its key (PEM files) for ``common_name``: one that expired
        yesterday, or one signed by `untrusted_ca_location`, to test what a broker refuses.

        Raises:
            ValueError: the cluster has no TLS listener.
        """
        security = self._needs("SSL", "SASL_SSL", "SASL_OAUTHBEARER")
        return security.ca_issue(common_name, password, expired=expired, trusted=trusted)

    def allow(
        self,
        user: str,
        operations: Iterable[str],
        *,
        topic: str | None = None,
        cluster: bool = False,
        prefixed: bool = False,
    ) -> None:
        """Grant ``user`` ACLs (with ``authorizer=True``): each of ``operations`` (``"WRITE"``,
        ``"READ"``, ``"DESCRIBE"``, ``"IDEMPOTENT_WRITE"``...) on ``topic`` (a name, or a
        prefix with ``prefixed``; ``"*"`` for every topic) or on the cluster. Returns once
        the brokers apply them.

        Raises:
            ValueError: neither or both of ``topic`` and ``cluster``, or an unknown operation.
            KafkaException: the cluster refused an ACL.
            TimeoutError: the brokers did not apply them within 30 s.
        """
        if (topic is None) == (not cluster):
            raise ValueError("give topic= or cluster=True")
        self._needs("SSL", "SASL_SSL", "SASL_PLAINTEXT", "SASL_OAUTHBEARER")
        bindings = []
        for operation in operations:
            try:
                acl = AclOperation[operation.upper()]
            except KeyError:
                raise ValueError(f"unknown ACL operation {operation!r}") from None
            bindings.append(
                AclBinding(
                    # librdkafka's BROKER resource is Kafka's CLUSTER one.
                    ResourceType.BROKER if cluster else ResourceType.TOPIC,
                    "kafka-cluster" if cluster else str(topic),
                    ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL,
                    f"User:{user}",
                    "*",
                    acl,
                    AclPermissionType.ALLOW,
                )
            )
        admin = self._admin_client()
        for future in admin.create_acls(bindings).values():
            error = future.exception()
            if error is not None:
                raise error
        # The controller took them; the brokers apply them once they replay the metadata log:
        # a client right after would still be refused.
        deadline = time.monotonic() + _LOGIN_TIMEOUT
        for binding in bindings:
            wanted = AclBindingFilter(
                binding.restype,
                binding.name,
                binding.resource_pattern_type,
                binding.principal,
                binding.host,
                binding.operation,
                binding.permission_type,
            )
            while not admin.describe_acls(wanted).result():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"ACL {binding} not in force after {_LOGIN_TIMEOUT:g} s")
                time.sleep(0.02)

    # -- internals ---------------------------------------------------------------------------

    def _needs(self, *modes: str) -> ClusterSecurity:
        security = self._security
        if security is None or security.mode not in modes:
            raise ValueError(
                f"this needs a cluster with security= {' or '.join(map(repr, modes))}, "
                f"not {self.security!r}"
            )
        return security

    def _create_scram_users(self, users: dict[str, str]) -> None:
        admin = self._admin_client()
        # One credential per user per request: a request per mechanism.
        for mechanism in SCRAM_MECHANISMS:
            kind = ScramMechanism[mechanism.replace("-", "_")]
            upserts: list[UserScramCredentialAlteration] = [
                UserScramCredentialUpsertion(
                    user, ScramCredentialInfo(kind, _SCRAM_ITERATIONS), password.encode()
                )
                for user, password in users.items()
            ]
            for future in admin.alter_user_scram_credentials(upserts).values():
                error = future.exception()
                if error is not None:
                    raise error
        for user in users:
            self._await_login(user)

    def _await_login(self, user: str) -> None:
        deadline = time.monotonic() + _LOGIN_TIMEOUT
        client = AdminClient({**self.librdkafka_config(user), "client.id": "eventwire-login-check"})
        last = ""
        while time.monotonic() < deadline:
            try:
                client.list_topics(timeout=2.0)
            except KafkaException as exc:
                last = exc.args[0].str()
                time.sleep(0.1)
                continue
            return
        raise TimeoutError(f"user {user!r} could not log in within {_LOGIN_TIMEOUT:g} s: {last}")

    def _after_start(self) -> None:
        security = self._security
        if security is not None and security.mode == "SASL_SSL":
            self._create_scram_users(dict(security.users))
