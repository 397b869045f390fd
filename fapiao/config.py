"""All configuration in one place: environment variables prefixed ``FAPIAO_`` (or a ``.env`` file).

With nothing set, fapiao runs on embedded defaults: it starts its own Kafka broker on loopback and keeps
its SQLite database under ``./var``. Setting ``FAPIAO_KAFKA_BOOTSTRAP`` (and ``FAPIAO_DATABASE_URL``) points
the same code at an external Apache Kafka and PostgreSQL and starts no broker.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fapiao.domain.backoff import RetryPolicy
from fapiao.domain.tax import LINE_TAX_TOLERANCE

_RETRY = RetryPolicy()  # the delivery retry defaults


if TYPE_CHECKING:
    from fapiao.topics import TopicNames


DEV_LINK_SECRET = SecretStr("dev-only-link-secret-change-me")
PRODUCTION_SECRET_CHARS = 32  # link secret, and admin token, outside development


class SmtpSecurity(str, Enum):
    none = "none"
    starttls = "starttls"
    ssl = "ssl"


class ConfigError(Exception):
    """A setting has a value fapiao cannot start with; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FAPIAO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where the embedded database, mail and documents live.")

    kafka_bootstrap: str | None = Field(
        None, description="host:port[,host:port] of an external Kafka. Empty: start the embedded broker."
    )
    embedded_kafka_port: int = Field(29092, ge=1, le=65535, description="Loopback port of the embedded broker.")
    topic_prefix: str = Field("fapiao", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="Prefix of every topic.")
    topic_partitions: int = Field(4, ge=1, le=1000, description="Partitions of each topic created by fapiao.")
    topic_replication: int = Field(1, ge=1, le=10, description="Replication factor of created topics.")
    group_prefix: str = Field(
        "fapiao", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="Consumer group prefix (`{prefix}-order-ingest`, …)."
    )
    broker_rebalance_timeout: float = Field(6.0, gt=0, description="Seconds; short so a group forms quickly.")
    broker_session_timeout: float = Field(
        6.0, description="Seconds before a dead member is evicted (Kafka's limits: 6 to 1800)."
    )
    broker_heartbeat_interval: float = Field(
        1.0, gt=0, description="Seconds between consumer heartbeats (less than the session timeout)."
    )
    fetch_max_wait_ms: int = Field(
        100, ge=1, le=10000, description="Longest a consumer fetch waits for data (Faust hard-codes 1500)."
    )
    ingest_fetch_max_wait_ms: int = Field(
        20,
        ge=1,
        le=10000,
        description="The same for order-ingest, the front door a merchant waits on for the link: shorter, so its p99 "
        "stays under 100 ms (idle, it costs ~2% of a core more than the 100 ms the other workers use).",
    )
    line_tax_tolerance: Decimal = Field(
        LINE_TAX_TOLERANCE,
        ge=Decimal("0.01"),
        le=Decimal("0.06"),
        decimal_places=2,
        description="Largest |amount × rate − tax| a pushed order line may show (00608); 0.01 on newer devices.",
    )
    merchant_cache_seconds: float = Field(
        5.0, ge=0, description="How long a worker reuses merchant settings it looked up (0: no cache)."
    )
    intake_max_lines: int = Field(
        1000, ge=1, le=100_000, description="Lines per pushed bill; more is refused with 00630 (split the order)."
    )
    intake_max_bill_bytes: int = Field(
        512 * 1024,
        ge=1024,
        le=64 * 2**20,
        description="UTF-8 bytes of one pushed bill; more is refused with 00631. Its orders.accepted must fit the "
        "broker's message size (Kafka's default 1 MB).",
    )
    intake_max_field_chars: int = Field(
        500, ge=230, le=100_000, description="Characters of any text field of a pushed bill; more: 00632."
    )

    database_url: str | None = Field(
        None, description="SQLAlchemy URL (`postgresql://…` uses psycopg 3). Empty: SQLite under the data dir."
    )

    http_host: str = Field("127.0.0.1", description="Address the HTTP gateway binds.")
    http_port: int = Field(
        8080, ge=1, le=65535, description="Port of the HTTP gateway (H5 pages, API, /healthz, /readyz)."
    )
    public_base_url: str | None = Field(
        None, description="Base URL printed in QR links. Empty: `http://{http_host}:{http_port}`."
    )
    env: str = Field(
        "development",
        pattern=r"^(development|production)$",
        description="`development` (dev defaults allowed) or `production`: refuses to start with the default or a "
        "short `FAPIAO_LINK_SECRET` / `FAPIAO_ADMIN_TOKEN`, and the admin cookie is `Secure`.",
    )
    link_secret: SecretStr = Field(
        DEV_LINK_SECRET,
        min_length=16,
        description="HMAC key that signs QR link tokens. Set your own in production.",
    )

    admin_token: SecretStr | None = Field(
        None, min_length=12, description="Token for the admin pages and API (≥ 12 characters). Empty: admin is closed."
    )

    smtp_host: str = Field("127.0.0.1", description="SMTP server for invoice e-mail.")
    smtp_port: int = Field(8025, ge=1, le=65535, description="SMTP port (the dev mailbox listens here).")
    smtp_security: SmtpSecurity = Field(SmtpSecurity.none, description="`none`, `starttls` or `ssl`.")
    smtp_user: str | None = Field(None, description="SMTP login, if the server wants one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle that signs the SMTP server's certificate, if private."
    )
    smtp_timeout: float = Field(10.0, gt=0, description="Seconds per SMTP conversation.")
    mail_from: str = Field("fapiao@localhost", description="From address of invoice e-mail.")

    sms_gateway_url: str | None = Field(
        None,
        description="HTTP endpoint that sends SMS (POST JSON `phone`, `message`). Empty: SMS requests fail as not configured.",
    )
    sms_timeout: float = Field(5.0, gt=0, description="Seconds per SMS gateway request.")
    templates_dir: Path | None = Field(
        None,
        description="Merchant message templates: `{dir}/{seller tax id}/email_subject.txt`, `email_body.txt`, `sms.txt`.",
    )
    download_link_days: int = Field(30, ge=1, le=3650, description="Days a download link in a message stays valid.")

    issuer: str = Field(
        "sandbox",
        pattern=r"^(sandbox|http)$",
        description="`sandbox` (built-in 数电 issuer) or `http` (an external issuing API).",
    )
    issuer_url: str | None = Field(
        None, description="Base URL of the external issuing API; needed with `FAPIAO_ISSUER=http`."
    )
    issuer_token: SecretStr | None = Field(None, description="Bearer token for the issuing API.")
    issuer_timeout: float = Field(10.0, gt=0, description="Seconds per issuing request.")

    retry_attempts: int = Field(4, ge=1, le=20, description="Tries for a transient error before dead-lettering.")
    retry_max_wait: float = Field(2.0, gt=0, description="Longest backoff between tries, in seconds.")

    order_query_timeout: float = Field(5.0, gt=0, description="Seconds per call to a merchant's order-query interface.")
    callback_timeout: float = Field(5.0, gt=0, description="Seconds per merchant callback request.")
    callback_retry_interval: float = Field(
        30.0, gt=0, description="How often the callbacks worker retries failed callbacks that are due."
    )
    buyer_reissue: bool = Field(
        False, description="The buyer may 重开 through the original QR link after a full 红冲 for 开票有误."
    )
    reversal_check_interval: float = Field(
        60.0,
        gt=0,
        description="How often invoice-issue voids 红字确认单 unconfirmed for 72 h and re-sends lost confirmations.",
    )
    delivery_retry_base: float = Field(
        _RETRY.base.total_seconds(),
        gt=0,
        description="Seconds before the first retry of an e-mail/SMS that failed transiently; doubles each try.",
    )
    delivery_retry_max_delay: float = Field(
        _RETRY.max_delay.total_seconds(), gt=0, description="Longest wait between two delivery tries, in seconds."
    )
    delivery_retry_max_attempts: int = Field(
        _RETRY.max_attempts, ge=1, le=1000, description="Tries of one delivery before it is recorded as failed."
    )
    delivery_retry_max_age: float = Field(
        _RETRY.max_age.total_seconds(),
        gt=0,
        description="Seconds after which a delivery still failing transiently is recorded as failed.",
    )
    delivery_lease: float = Field(
        _RETRY.lease.total_seconds(),
        gt=0,
        description="Seconds a delivery may stay `sending`; after that (a crashed worker) it is tried again. "
        "At least 3 x FAPIAO_SMTP_TIMEOUT.",
    )
    delivery_retry_interval: float = Field(
        5.0, gt=0, description="How often the delivery worker looks for deliveries whose retry is due."
    )

    worker_host: str = Field("127.0.0.1", description="Address a worker's /metrics, /healthz and /readyz bind.")
    worker_port: int = Field(
        6066,
        ge=1,
        le=65535,
        description="Port of a worker's HTTP endpoints (`worker all`: this and the next ones, one port per worker).",
    )
    worker_replicas: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes per worker kind started by `fapiao worker NAME` on this machine; they share the "
        "partitions through the consumer group. Replica i serves /metrics on worker_port + i.",
    )
    lag_interval: float = Field(15.0, gt=0, description="Seconds between consumer-lag readings for /metrics.")
    lag_exporter_port: int = Field(
        6065,
        ge=1,
        le=65535,
        description="Port of `fapiao lag-exporter`'s /metrics, /healthz and /readyz (the one lag exporter).",
    )

    log_level: str = Field(
        "warn",
        pattern=r"^(debug|info|warn|error|crit)$",
        description="Log level (`debug`, `info`, `warn`, `error`, `crit`).",
    )
    log_format: str = Field(
        "auto",
        pattern=r"^(auto|json|text)$",
        description="`json`: one object per line (containers); `text`: human-readable; `auto`: text on a terminal, else JSON.",
    )

    @field_validator(
        "kafka_bootstrap",
        "database_url",
        "public_base_url",
        "sms_gateway_url",
        "templates_dir",
        "smtp_ca_file",
        "issuer_url",
        "admin_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("broker_session_timeout")
    @classmethod
    def _within_kafka_session_limits(cls, v: float) -> float:
        # Apache Kafka's defaults: group.min.session.timeout.ms=6000, group.max.session.timeout.ms=1800000. A join
        # outside them fails with INVALID_SESSION_TIMEOUT, and the worker would never become ready.
        if not 6.0 <= v <= 1800.0:
            raise ValueError(
                "must be between 6 and 1800 seconds: Apache Kafka's brokers refuse a consumer session outside "
                "group.min.session.timeout.ms (6 s) and group.max.session.timeout.ms (30 min) by default"
            )
        return v

    @model_validator(mode="after")
    def _production_secrets(self) -> "Settings":
        if self.env != "production":
            return self
        problems = []
        link = self.link_secret.get_secret_value()
        if link == DEV_LINK_SECRET.get_secret_value():
            problems.append("FAPIAO_LINK_SECRET: the development default signs links anyone can forge; set your own")
        elif len(link) < PRODUCTION_SECRET_CHARS:
            problems.append(
                f"FAPIAO_LINK_SECRET: at least {PRODUCTION_SECRET_CHARS} characters in production (got {len(link)})"
            )
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if token is not None and len(token) < PRODUCTION_SECRET_CHARS:
            problems.append(
                f"FAPIAO_ADMIN_TOKEN: at least {PRODUCTION_SECRET_CHARS} characters in production "
                f"(got {len(token)}), or leave it empty to close the admin"
            )
        if problems:
            raise ValueError("FAPIAO_ENV=production: " + "; ".join(problems))
        return self

    @property
    def development(self) -> bool:
        return self.env == "development"

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> "Settings":
        if self.broker_heartbeat_interval >= self.broker_session_timeout:
            raise ValueError(
                f"FAPIAO_BROKER_HEARTBEAT_INTERVAL ({self.broker_heartbeat_interval}) must be less than "
                f"FAPIAO_BROKER_SESSION_TIMEOUT ({self.broker_session_timeout}); Kafka advises a third of it"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> "Settings":
        if self.delivery_lease < 3 * self.smtp_timeout:
            raise ValueError(
                f"FAPIAO_DELIVERY_LEASE ({self.delivery_lease}) must be at least 3 x FAPIAO_SMTP_TIMEOUT "
                f"({self.smtp_timeout}): a delivery still being sent would be taken for abandoned and sent twice"
            )
        return self

    @model_validator(mode="after")
    def _issuer_needs_url(self) -> "Settings":
        if self.issuer == "http" and not self.issuer_url:
            raise ValueError("issuer_url: FAPIAO_ISSUER=http needs FAPIAO_ISSUER_URL")
        return self

    @property
    def delivery_retry(self) -> RetryPolicy:
        return RetryPolicy(
            base=timedelta(seconds=self.delivery_retry_base),
            max_delay=timedelta(seconds=self.delivery_retry_max_delay),
            max_attempts=self.delivery_retry_max_attempts,
            max_age=timedelta(seconds=self.delivery_retry_max_age),
            lease=timedelta(seconds=self.delivery_lease),
        )

    @property
    def embedded_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.embedded_kafka_port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'fapiao.db').as_posix()}"

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @cached_property
    def topics(self) -> "TopicNames":
        from fapiao.topics import TopicNames

        return TopicNames(self.topic_prefix)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's error into one line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            if field:
                lines.append(
                    f"FAPIAO_{field.upper()}: {err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"
                )
            else:  # a rule across variables; its message names them
                lines.append(err["msg"].removeprefix("Value error, "))
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
