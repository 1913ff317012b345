"""Settings: the only place where kubeinv reads environment variables and configuration files.

Sources, highest precedence first:

1. command-line flags (passed in as a nested dict by ``collector.cli``);
2. environment variables ``KUBEINV_*``, with ``__`` for nesting (``KUBEINV_SCHEDULE__INTERVAL``);
3. the TOML file named by ``--config`` or ``KUBEINV_CONFIG``;
4. the defaults below.

Every other module receives a :class:`Settings` (or a part of it) as an argument.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError
from pydantic_settings.sources.utils import parse_env_vars

from collector.durations import is_zero_duration, parse_duration
from collector.errors import SettingsError

ENV_PREFIX = "KUBEINV_"
ENV_NESTED = "__"
CONFIG_ENV = "KUBEINV_CONFIG"
_IN_CLUSTER_VARS = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


def _blank_is_unset(value: Any) -> Any:
    """An empty or blank text (an environment variable set to "") leaves the setting unset."""
    return None if isinstance(value, str) and not value.strip() else value


def _crontab(value: str) -> str:
    if len(value.split()) != 5:
        raise ValueError(
            f"{value!r} is not a crontab expression: expected 5 fields "
            "(minute hour day month weekday)"
        )
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 (costs 0.15 s)

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid crontab expression: {exc}") from None
    return value


def _postgresql_url(value: str) -> str:
    if not value.startswith(("postgres://", "postgresql://")):
        raise ValueError("must be a postgresql:// URL (or unset for the embedded database)")
    return value


# Optional texts that a blank value leaves unset; the check sees only a text.
Crontab = Annotated[
    Annotated[str, AfterValidator(_crontab)] | None, BeforeValidator(_blank_is_unset)
]
PostgresqlUrl = Annotated[
    Annotated[str, AfterValidator(_postgresql_url)] | None, BeforeValidator(_blank_is_unset)
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectionSettings(_Section):
    """How clusters are reached."""

    concurrency: int = Field(default=32, ge=1, le=10_000, description="clusters collected at once")
    timeout: float = Field(
        default=10.0, gt=0, description="seconds per API request; also bounds each exec plugin run"
    )
    cluster_timeout: float = Field(
        default=60.0, gt=0, description="deadline for one cluster, retries included"
    )
    page_size: int = Field(default=500, ge=1, le=100_000, description="nodes per list page")
    max_retries: int = Field(
        default=4, ge=0, le=20, description="retries per request (429, 5xx, resets)"
    )
    backoff_base: float = Field(default=0.2, ge=0, description="first retry delay in seconds")
    backoff_max: float = Field(default=5.0, ge=0, description="largest retry delay in seconds")


class ScheduleSettings(_Section):
    """When ``kubeinv run`` collects."""

    interval: str | None = Field(
        default="15m", description="e.g. 15m, 1h; ignored when cron is set"
    )
    cron: Crontab = Field(default=None, description="crontab expression, e.g. '*/15 * * * *'")
    timezone: str = Field(default="UTC", description="time zone of the cron expression")
    jitter: float = Field(
        default=0.0, ge=0, description="random delay in seconds added to each tick"
    )
    run_at_start: bool = Field(default=True, description="collect once immediately at start")
    shutdown_grace: float = Field(
        default=30.0, ge=0, description="seconds a run in flight may take to finish after SIGTERM"
    )

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parse_duration(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone name such as UTC or Europe/Paris"
            ) from None
        return value

    @model_validator(mode="after")
    def _need_one(self) -> ScheduleSettings:
        if self.interval is None and self.cron is None:
            raise ValueError("set either schedule.interval or schedule.cron")
        return self

    @property
    def interval_delta(self) -> timedelta | None:
        return parse_duration(self.interval) if self.interval else None


class MetricsSettings(_Section):
    """The Prometheus endpoint of ``kubeinv run``."""

    port: int | None = Field(
        default=None, ge=0, le=65535, description="serve /metrics and /healthz here"
    )
    host: str = Field(default="127.0.0.1", description="address to bind; 0.0.0.0 in a container")


def _duration(text: str | float | int, meaning: str) -> timedelta:
    """``parse_duration``, with an error that says what the setting takes."""
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {meaning}") from None


def parse_retire_after(text: str | float | int) -> timedelta | None:
    """``lifecycle.retire_after``: a duration (``7d``, ``12h``), ``0s`` (retire at the end of the
    first run that does not reach a cluster) or ``never`` (None: no automatic retirement)."""
    if isinstance(text, str) and text.strip().lower() == "never":
        return None
    if is_zero_duration(text):
        return timedelta(0)
    return _duration(text, "a retirement delay; use a duration such as 7d, 12h or 0s, or never")


def parse_retention(text: str | float | int) -> timedelta | None:
    """A retention: a duration (``90d``, ``12h``), or ``0`` (None: keep everything)."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a retention")
    if is_zero_duration(text):
        return None
    return _duration(
        text, "a retention; use a duration such as 90d or 12h, or 0 to keep everything"
    )


class DurationSetting(str):
    """The value of a duration setting with words of its own: the text as given, which logs and
    error messages quote, and ``delta``, what it means by the ``parse`` of its kind (a subclass).
    In a setting, a number is seconds: ``30`` is ``"30s"``."""

    delta: timedelta | None

    @staticmethod
    def parse(text: str) -> timedelta | None:
        raise NotImplementedError("a kind of DurationSetting names its parse")

    def __new__(cls, text: str) -> Self:
        setting = super().__new__(cls, text)
        setting.delta = cls.parse(text)
        return setting

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(
            _number_as_seconds, core_schema.no_info_after_validator_function(cls, handler(str))
        )


def _number_as_seconds(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}s"
    return value


class RetireAfter(DurationSetting):
    parse = staticmethod(parse_retire_after)


class Retention(DurationSetting):
    parse = staticmethod(parse_retention)


class LifecycleSettings(_Section):
    """When a cluster that no run reaches any more is retired."""

    retire_after: RetireAfter = Field(
        default=RetireAfter("7d"),
        description="retire a cluster no target has reached for this long, at the end of a "
        "run: a duration (7d, 12h), 0s (the first run that does not reach it) or never",
    )


class RetentionSettings(_Section):
    """How long the run ledger is kept. History is never pruned."""

    ledger: Retention = Field(
        default=Retention("90d"),
        description="delete collection_run and cluster_collection rows older than this after "
        "each run (e.g. 90d, 12h); 0 keeps everything",
    )


class LogSettings(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Settings(BaseSettings):
    """Every setting of kubeinv. See config/kubeinv.example.toml for each key.

    Plain ``Settings()`` takes its arguments and the environment (pydantic-settings' sources: no
    .env file or secrets directory is configured); load_settings composes the flags, the
    environment and the config file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED,
        extra="forbid",
        frozen=True,
    )

    database_url: PostgresqlUrl = Field(
        default=None, description="PostgreSQL DSN; unset -> the embedded PostgreSQL"
    )
    data_dir: Path | None = Field(default=None, description="directory of the embedded PostgreSQL")
    kubeconfigs: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="kubeconfig files, directories or globs"
    )
    contexts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="context name globs to include"
    )
    exclude_contexts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="context name globs to exclude"
    )
    in_cluster: bool = Field(default=False, description="also collect the cluster kubeinv runs in")
    service_account_dir: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount"),
        description="where the pod's service account (token, ca.crt) is mounted, for in_cluster",
    )
    collection: CollectionSettings = Field(default_factory=CollectionSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    # Not settings of their own: the environment kubectl-compatible target loading needs.
    # Filled by load_settings from KUBECONFIG and HOME (never from the TOML file).
    kubeconfig_env: str | None = Field(default=None, exclude=True)
    home: Path | None = Field(default=None, exclude=True)
    config_file: Path | None = Field(default=None, exclude=True)
    # KUBERNETES_SERVICE_HOST/PORT, for the in-cluster target.
    in_cluster_env: dict[str, str] = Field(default_factory=dict, exclude=True)

    @property
    def embedded_data_dir(self) -> Path:
        """Where the embedded PostgreSQL lives: ``data_dir`` (load_settings fills in the
        default), or the default for settings built without load_settings."""
        return self.data_dir if self.data_dir is not None else default_data_dir(os.environ)

    @field_validator("kubeconfigs", "contexts", "exclude_contexts", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        # KUBEINV_KUBECONFIGS may be JSON (pydantic-settings) or a plain comma separated list.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                try:
                    return json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON list: {exc}") from None
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


_SETTINGS_FIELDS = {
    "database_url",
    "data_dir",
    "kubeconfigs",
    "contexts",
    "exclude_contexts",
    "in_cluster",
    "service_account_dir",
    "collection",
    "schedule",
    "metrics",
    "log",
    "lifecycle",
    "retention",
}


class _DictSource(PydanticBaseSettingsSource):
    """A fixed nested dict (the parsed TOML file)."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file {path}: not found") from None
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _SETTINGS_FIELDS)
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown setting {unknown[0]!r}; "
            f"known top-level keys: {', '.join(sorted(_SETTINGS_FIELDS))}"
        )
    return data


def _key_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if not isinstance(part, int))


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace(".", ENV_NESTED)


def _has_key(data: Mapping[str, Any], key: str) -> bool:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _describe_error(
    exc: ValidationError,
    *,
    flags: Mapping[str, Any],
    flag_names: Mapping[str, str],
    environ: Mapping[str, str],
    file_data: Mapping[str, Any],
    config_file: Path | None,
) -> str:
    """One line per problem, naming the key and where its value came from."""
    lines = []
    for err in exc.errors():
        key = _key_of(tuple(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown setting"
        source = ""
        env_name = _env_name(key) if key else ""
        if key and _has_key(flags, key):
            source = f" (from flag {flag_names.get(key, '--' + key.replace('_', '-'))})"
        elif env_name and (env_name in environ or env_name.lower() in {k.lower() for k in environ}):
            source = f" (from environment variable {env_name})"
        elif config_file is not None and key and _has_key(file_data, key):
            source = f" (from config file {config_file})"
        value = err.get("input")
        shown = ""
        if isinstance(value, str | int | float) and key and repr(value) not in message:
            shown = f": got {value!r}"
        if key.endswith("database_url"):
            shown = ""  # may hold a password
        lines.append(f"invalid setting {key or '<root>'}{source}: {message}{shown}")
    return "; ".join(lines)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    flag_names: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from flags, the environment and the config file.

    ``flags`` holds only the flags the user gave, nested like the settings
    (``{"collection": {"concurrency": 4}}``). ``flag_names`` maps dotted keys to flag spellings
    for error messages. Raises :class:`SettingsError` naming the offending key.
    """
    given: dict[str, Any] = dict(flags or {})
    env = os.environ if environ is None else environ
    path_text = config_file if config_file is not None else env.get(CONFIG_ENV) or None
    path = Path(path_text).expanduser() if path_text else None
    file_data = read_config_file(path) if path is not None else {}

    class _Bound(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            env_source = _EnvSource(settings_cls, env)
            return (
                InitSettingsSource(settings_cls, init_kwargs=given),
                env_source,
                _DictSource(settings_cls, file_data),
            )

    try:
        bound = _Bound()
    except PydanticSettingsError as exc:
        # An environment variable of a nested table that is not valid JSON.
        raise SettingsError(f"invalid setting: {exc}") from None
    except ValidationError as exc:
        raise SettingsError(
            _describe_error(
                exc,
                flags=given,
                flag_names=flag_names or {},
                environ=env,
                file_data=file_data,
                config_file=path,
            )
        ) from None
    values = {name: getattr(bound, name) for name in _SETTINGS_FIELDS}
    if values["data_dir"] is None:
        values["data_dir"] = default_data_dir(env)
    home = env.get("HOME")
    return Settings.model_construct(
        **values,
        kubeconfig_env=env.get("KUBECONFIG") or None,
        home=Path(home) if home else None,
        config_file=path,
        in_cluster_env={k: env[k] for k in _IN_CLUSTER_VARS if k in env},
    )


class _EnvSource(EnvSettingsSource):
    """The ``KUBEINV_*`` environment variables of a given mapping (os.environ by default)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(
            settings_cls,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_NESTED,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def default_data_dir(env: Mapping[str, str], *, is_root: bool | None = None) -> Path:
    """Where the embedded PostgreSQL keeps its data when ``data_dir`` is not set.

    ``$XDG_DATA_HOME/kubeinv`` (``~/.local/share/kubeinv``); as root ``/var/lib/kubeinv``,
    because root's home is mode 0700 and the server runs as an unprivileged user.
    """
    root = (os.geteuid() == 0) if is_root is None else is_root
    if root:
        return Path("/var/lib/kubeinv")
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return base / "kubeinv"
