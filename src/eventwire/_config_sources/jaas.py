"""``sasl.jaas.config``, the Java client's login line, read into librdkafka's keys."""

from __future__ import annotations

import re
from typing import Final

from eventwire._config_sources.settings import Setting, Settings
from eventwire._errors import ConfigError

_OAUTH_LOGIN_HANDLER: Final = (
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
)


def read_jaas(settings: Settings) -> None:
    """Replace ``sasl.jaas.config`` (and an OAuth login handler) in ``settings`` by the
    librdkafka keys it stands for: the mechanism, the user and password, or the OIDC client.

    Raises:
        ConfigError: the login module is not one librdkafka has, disagrees with
            ``sasl.mechanism``, or gives a value that is also given on its own.
    """
    jaas = settings.pop("sasl.jaas.config", None)
    handler = settings.pop("sasl.login.callback.handler.class", None)
    if handler is not None and handler.value != _OAUTH_LOGIN_HANDLER:
        raise ConfigError(
            f"{handler.origin}: sasl.login.callback.handler.class {handler.value} is Java "
            "code that does not run here; give security= in code"
        )
    if jaas is None:
        return
    module, options = _parse_jaas(jaas)
    module_name = module.rsplit(".", 1)[-1]
    mechanism = settings.get("sasl.mechanism") or settings.get("sasl.mechanisms")
    expected = {
        "PlainLoginModule": ("PLAIN",),
        "ScramLoginModule": ("SCRAM-SHA-256", "SCRAM-SHA-512"),
        "OAuthBearerLoginModule": ("OAUTHBEARER",),
    }.get(module_name)
    if expected is None:
        hint = (
            " (Amazon MSK IAM: give security=OAuthBearer(token_provider=...) in code, "
            "see docs/security.md)"
            if "msk" in module.lower() or "iam" in module_name.lower()
            else "; give security= in code"
        )
        raise ConfigError(f"{jaas.origin}: sasl.jaas.config uses {module}, not supported{hint}")
    if mechanism is not None and mechanism.value.upper() not in expected:
        raise ConfigError(
            f"{jaas.origin}: sasl.jaas.config uses {module_name} but sasl.mechanism is "
            f"{mechanism.value} ({mechanism.origin}); they must agree"
        )
    if mechanism is None and len(expected) == 1:
        settings["sasl.mechanism"] = Setting(expected[0], jaas.origin)
    if module_name == "OAuthBearerLoginModule":
        names = {
            "clientId": "sasl.oauthbearer.client.id",
            "clientSecret": "sasl.oauthbearer.client.secret",
            "scope": "sasl.oauthbearer.scope",
        }
        if handler is None and "clientId" not in options:
            raise ConfigError(
                f"{jaas.origin}: OAuthBearerLoginModule without clientId/clientSecret "
                "(Kafka's unsecured tokens, or a login handler of your own) cannot be read "
                "from a file; give security=OAuthBearer(token_provider=...) in code"
            )
        settings.setdefault("sasl.oauthbearer.method", Setting("oidc", jaas.origin))
    else:
        names = {"username": "sasl.username", "password": "sasl.password"}
    for option, key in names.items():
        if option in options:
            if key in settings:
                raise ConfigError(
                    f"{jaas.origin}: sasl.jaas.config gives {option} and so does "
                    f"{settings[key].origin}; give it once"
                )
            settings[key] = Setting(options[option], jaas.origin)


_JAAS: Final = re.compile(
    r"^\s*(?P<module>[\w.$]+)\s+(?P<flag>required|requisite|sufficient|optional)\b(?P<rest>.*?)"
    r"\s*;?\s*$",
    re.DOTALL,
)
_JAAS_OPTION: Final = re.compile(
    r"""(?P<name>[\w.-]+)\s*=\s*(?:"(?P<double>(?:[^"\\]|\\.)*)"|'(?P<single>[^']*)'"""
    r"""|(?P<bare>[^\s;"']+))"""
)


def _parse_jaas(found: Setting) -> tuple[str, dict[str, str]]:
    """The login module and options of a one-module ``sasl.jaas.config``.

    Raises:
        ConfigError: it is not ``Module flag name="value" ...;`` (the message shows no value).
    """
    match = _JAAS.match(found.value)
    if match is None:
        raise ConfigError(
            f"{found.origin}: sasl.jaas.config is not 'LoginModule required name=\"value\" ...;'"
        )
    options: dict[str, str] = {}
    rest = match["rest"]
    position = 0
    for option in _JAAS_OPTION.finditer(rest):
        if rest[position : option.start()].strip():
            break
        value = option["double"]
        if value is not None:
            value = re.sub(r"\\(.)", r"\1", value)
        else:
            value = option["single"] if option["single"] is not None else option["bare"]
        options[option["name"]] = value
        position = option.end()
    if rest[position:].strip().rstrip(";").strip():
        raise ConfigError(
            f"{found.origin}: sasl.jaas.config could not be read after its options "
            f'{", ".join(options) or "(none)"}: give each as name="value"'
        )
    return match["module"], options
