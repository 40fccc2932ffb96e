"""Configuration of the mock portal: frozen dataclasses, one loader for file and flags.

A config file is TOML; every key is optional. Durations are written in milliseconds or seconds
as their names say (``median_ms``, ``token_ttl_s``) and converted to seconds here, once::

    citizens = 1000000
    [faults]
    shed_in_flight = 2000
    [faults.routes."/api/v1/services"]
    latency = { kind = "lognormal", median_ms = 20, p99_ms = 250 }
    error = { status = 503, rate = 0.01 }
    [capacity.payments]
    servers = 8
    service_time = { kind = "fixed", ms = 4 }

The same fault structure is accepted live by ``PUT /admin/faults`` (as JSON).
"""

from __future__ import annotations

import binascii
import math
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .routes import SERVICES
from .totp import decode_secret

LatencyKind = Literal["fixed", "uniform", "lognormal", "exponential"]

# z-score of the 99th percentile of the standard normal: turns (median, p99) into a lognormal's
# sigma, so a user states latency the way dashboards show it.
Z_P99 = 2.3263478740408408

# Beyond these a draw overflows, or a capacity becomes infinite: refused as config mistakes.
MAX_LOGNORMAL_SPREAD = 1000.0
MIN_SERVICE_TIME_S = 1e-6

# Clerks of one simulated pool: far above any real backend's, and a pool of this size still
# takes well under a megabyte (one float per clerk), so no fault document can exhaust memory.
MAX_SERVERS = 10_000


class ConfigError(ValueError):
    """A config file or a fault document is wrong; the message says what and where."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Latency:
    """A latency distribution; all parameters in seconds.

    >>> Latency.parse({"kind": "lognormal", "median_ms": 20, "p99_ms": 200}, "x").mean_s > 0.02
    True
    """

    kind: LatencyKind
    value_s: float = 0.0  # fixed; mean of exponential
    low_s: float = 0.0  # uniform
    high_s: float = 0.0  # uniform
    median_s: float = 0.0  # lognormal
    p99_s: float = 0.0  # lognormal

    @property
    def sigma(self) -> float:
        """The lognormal's shape parameter from median and p99."""
        return math.log(self.p99_s / self.median_s) / Z_P99

    @property
    def mean_s(self) -> float:
        if self.kind in ("fixed", "exponential"):
            return self.value_s
        if self.kind == "uniform":
            return (self.low_s + self.high_s) / 2
        return self.median_s * math.exp(self.sigma**2 / 2)

    @classmethod
    def parse(cls, raw: Any, where: str) -> Latency:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a table like {{kind = 'fixed', ms = 5}}")
        kind = raw.get("kind")
        keys = set(raw) - {"kind"}
        if kind in ("fixed", "exponential"):
            _only(keys, {"ms"}, where)
            return cls(kind=kind, value_s=_ms(raw, "ms", where))
        if kind == "uniform":
            _only(keys, {"min_ms", "max_ms"}, where)
            low, high = _ms(raw, "min_ms", where), _ms(raw, "max_ms", where)
            if high < low:
                raise ConfigError(f"{where}: max_ms must be >= min_ms")
            return cls(kind=kind, low_s=low, high_s=high)
        if kind == "lognormal":
            _only(keys, {"median_ms", "p99_ms"}, where)
            median, p99 = _ms(raw, "median_ms", where), _ms(raw, "p99_ms", where)
            if not 0 < median < p99:
                raise ConfigError(f"{where}: lognormal needs 0 < median_ms < p99_ms")
            if p99 / median > MAX_LOGNORMAL_SPREAD:
                raise ConfigError(
                    f"{where}: p99_ms / median_ms must be at most {MAX_LOGNORMAL_SPREAD:g}"
                )
            return cls(kind=kind, median_s=median, p99_s=p99)
        raise ConfigError(
            f"{where}.kind: expected one of fixed, uniform, lognormal, exponential; got {kind!r}"
        )

    def to_json(self) -> dict[str, Any]:
        if self.kind in ("fixed", "exponential"):
            return {"kind": self.kind, "ms": self.value_s * 1000}
        if self.kind == "uniform":
            return {"kind": self.kind, "min_ms": self.low_s * 1000, "max_ms": self.high_s * 1000}
        return {"kind": self.kind, "median_ms": self.median_s * 1000, "p99_ms": self.p99_s * 1000}


@dataclass(frozen=True, kw_only=True, slots=True)
class RouteFaults:
    """Faults injected on one route template (or ``*`` for every route)."""

    latency: Latency | None = None
    error_status: int = 0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    # The request is handled (a payment is made), then the answer is lost: the connection is
    # reset instead. What an idempotency key exists for: the client must retry with it.
    lose_response_rate: float = 0.0
    slow_body_s: float = 0.0

    @classmethod
    def parse(cls, raw: Any, where: str) -> RouteFaults:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a table")
        known = {"latency", "error", "reset_rate", "lose_response_rate", "slow_body_ms"}
        _only(set(raw), known, where)
        latency = Latency.parse(raw["latency"], f"{where}.latency") if "latency" in raw else None
        status, rate = 0, 0.0
        if "error" in raw:
            err = raw["error"]
            if not isinstance(err, Mapping):
                raise ConfigError(f"{where}.error: expected {{status = 503, rate = 0.01}}")
            _only(set(err), {"status", "rate"}, f"{where}.error")
            status = err.get("status", 503)
            if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
                raise ConfigError(f"{where}.error.status: expected an HTTP status 400..599")
            rate = _fraction(err, "rate", f"{where}.error")
        reset = _fraction(raw, "reset_rate", where) if "reset_rate" in raw else 0.0
        lose = _fraction(raw, "lose_response_rate", where) if "lose_response_rate" in raw else 0.0
        slow = _ms(raw, "slow_body_ms", where) if "slow_body_ms" in raw else 0.0
        return cls(
            latency=latency,
            error_status=status,
            error_rate=rate,
            reset_rate=reset,
            lose_response_rate=lose,
            slow_body_s=slow,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.latency is not None:
            out["latency"] = self.latency.to_json()
        if self.error_rate:
            out["error"] = {"status": self.error_status, "rate": self.error_rate}
        if self.reset_rate:
            out["reset_rate"] = self.reset_rate
        if self.lose_response_rate:
            out["lose_response_rate"] = self.lose_response_rate
        if self.slow_body_s:
            out["slow_body_ms"] = self.slow_body_s * 1000
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Capacity:
    """A simulated backend: ``servers`` clerks, each serving one request at a time.

    Theoretical capacity of one mock process is ``servers / service_time.mean_s`` req/s.
    """

    servers: int
    service_time: Latency

    @property
    def capacity_rps(self) -> float:
        return self.servers / self.service_time.mean_s

    @classmethod
    def parse(cls, raw: Any, where: str) -> Capacity:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected {{servers = 8, service_time = {{...}}}}")
        # capacity_rps is derived: accepted (and ignored) so that GET -> PUT round-trips.
        _only(set(raw) - {"capacity_rps"}, {"servers", "service_time"}, where)
        servers = raw.get("servers")
        if (
            not isinstance(servers, int)
            or isinstance(servers, bool)
            or not 1 <= servers <= MAX_SERVERS
        ):
            raise ConfigError(f"{where}.servers: expected an integer 1..{MAX_SERVERS}")
        if "service_time" not in raw:
            raise ConfigError(f"{where}.service_time: missing")
        st = Latency.parse(raw["service_time"], f"{where}.service_time")
        if st.mean_s < MIN_SERVICE_TIME_S:
            raise ConfigError(f"{where}.service_time: mean must be at least 0.001 ms")
        return cls(servers=servers, service_time=st)

    def to_json(self) -> dict[str, Any]:
        return {
            "servers": self.servers,
            "service_time": self.service_time.to_json(),
            "capacity_rps": round(self.capacity_rps, 3),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Faults:
    """Everything that can be changed live through ``/admin/faults``."""

    routes: Mapping[str, RouteFaults] = field(default_factory=dict)
    capacity: Mapping[str, Capacity] = field(default_factory=dict)
    shed_in_flight: int = 0  # 0: no load shedding
    shed_retry_after_s: int = 1
    seed: int | None = None

    @classmethod
    def parse(cls, raw: Any, where: str = "faults") -> Faults:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected an object")
        _only(
            set(raw), {"routes", "capacity", "shed_in_flight", "shed_retry_after_s", "seed"}, where
        )
        routes_raw = raw.get("routes", {})
        if not isinstance(routes_raw, Mapping):
            raise ConfigError(f"{where}.routes: expected a table of route templates")
        routes = {
            str(k): RouteFaults.parse(v, f'{where}.routes."{k}"') for k, v in routes_raw.items()
        }
        for key in routes:
            if key != "*" and not key.startswith("/"):
                raise ConfigError(f'{where}.routes."{key}": a route template starts with / or is *')
        cap_raw = raw.get("capacity", {})
        if not isinstance(cap_raw, Mapping):
            raise ConfigError(f"{where}.capacity: expected a table of services")
        for name in cap_raw:
            if name not in SERVICES:
                raise ConfigError(
                    f"{where}.capacity.{name}: unknown service; "
                    f"expected one of {', '.join(SERVICES)}"
                )
        capacity = {str(k): Capacity.parse(v, f"{where}.capacity.{k}") for k, v in cap_raw.items()}
        shed = _int(raw, "shed_in_flight", where, 0)
        retry = _int(raw, "shed_retry_after_s", where, 1)
        seed = raw.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ConfigError(f"{where}.seed: expected an integer")
        return cls(
            routes=routes,
            capacity=capacity,
            shed_in_flight=shed,
            shed_retry_after_s=max(retry, 1),
            seed=seed,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "routes": {k: v.to_json() for k, v in sorted(self.routes.items())},
            "capacity": {k: v.to_json() for k, v in sorted(self.capacity.items())},
            "shed_in_flight": self.shed_in_flight,
            "shed_retry_after_s": self.shed_retry_after_s,
            "seed": self.seed,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class PortalConfig:
    """All settings of one mock portal; the same in every worker process."""

    # Signing key of tokens; shared by all workers so any worker serves any request. None: a
    # random key per app, or with ``serve`` one kept in the data directory across restarts.
    secret: bytes | None = field(default=None, repr=False)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    admin_remote: bool = False  # /admin/faults answers loopback clients only unless set
    issuer: str = "http://127.0.0.1"
    citizens: int = 1_000_000
    mfa_code: str = "000000"
    # login -> base32 TOTP secret: those citizens' second factor is a time-based code
    # (RFC 6238) instead of the fixed mfa_code, as a deployment's test accounts have.
    totp_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    clients: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"portal-web": ("http://localhost/callback",)}
    )
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 86_400
    challenge_ttl_s: int = 600
    code_ttl_s: int = 60
    login_max_failures: int = 5  # failures for one login within the window before 429
    login_window_s: int = 300
    # Applications move submitted -> in_review -> approved/rejected on this clock.
    review_after_s: float = 2.0
    decide_after_s: float = 6.0
    rejection_rate: float = 0.1
    payment_settle_s: float = 0.5
    payment_failure_rate: float = 0.02
    idempotency_ttl_s: int = 86_400
    # Bounds that keep an hour at 7,000 req/s within memory and disk; eviction is counted.
    max_applications: int = 2_000_000
    application_ttl_s: int = 86_400
    max_idempotency_keys: int = 2_000_000
    max_revocations: int = 1_000_000
    data_dir: Path | None = None  # None: a temporary folder removed on shutdown
    faults: Faults = field(default_factory=Faults)
    # Connections: a request's headers must arrive within header_timeout_s of the connection
    # (or of the request's first byte), which closes slowloris clients; an idle keep-alive
    # connection is closed after keepalive_timeout_s (as nginx's default). max_connections per
    # process, 0: as many as the descriptor limit allows beside the store's own descriptors.
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 75.0
    max_connections: int = 0

    def with_overrides(self, **changes: Any) -> PortalConfig:
        return replace(self, **changes)


_SCALARS: dict[str, type] = {
    "issuer": str,
    "citizens": int,
    "mfa_code": str,
    "access_token_ttl_s": int,
    "refresh_token_ttl_s": int,
    "challenge_ttl_s": int,
    "code_ttl_s": int,
    "login_max_failures": int,
    "login_window_s": int,
    "review_after_s": float,
    "decide_after_s": float,
    "rejection_rate": float,
    "payment_settle_s": float,
    "payment_failure_rate": float,
    "idempotency_ttl_s": int,
    "max_applications": int,
    "application_ttl_s": int,
    "max_idempotency_keys": int,
    "max_revocations": int,
    "admin_remote": bool,
    "admin_token": str,
    "header_timeout_s": float,
    "keepalive_timeout_s": float,
    "max_connections": int,
}
# Settings that must be positive (> 0), or at least 0, to mean anything.
_POSITIVE = ("header_timeout_s", "keepalive_timeout_s")
_NON_NEGATIVE = ("max_connections",)


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> PortalConfig:
    """Build a config from an optional TOML file, then keyword overrides (from flags).

    Errors name the file and the key: ``ConfigError("portal.toml: faults.routes.x: ...")``.
    """
    values: dict[str, Any] = {}
    if path is not None:
        where = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from None
        try:
            values = _from_mapping(raw)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PortalConfig(**values)


def _from_mapping(raw: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    faults_raw: dict[str, Any] = dict(raw.get("faults", {}))
    for key, value in raw.items():
        if key in _SCALARS:
            values[key] = _scalar(key, value)
        elif key in _SETTINGS:
            values[key] = _SETTINGS[key](value)
        elif key == "capacity":
            faults_raw["capacity"] = value
        elif key != "faults":
            raise ConfigError(f"{key}: unknown setting")
    if faults_raw:
        values["faults"] = Faults.parse(faults_raw)
    return values


def _scalar(key: str, value: Any) -> Any:
    want = _SCALARS[key]
    ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{key}: expected {want.__name__}, got {value!r}")
    if key in _POSITIVE and not value > 0:
        raise ConfigError(f"{key}: must be > 0")
    if key in _NON_NEGATIVE and value < 0:
        raise ConfigError(f"{key}: must be >= 0")
    return value


def _secret(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) < 16:
        raise ConfigError("secret: expected a string of at least 16 characters")
    return value.encode()


def _clients(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping) or not all(
        isinstance(v, list) and all(isinstance(u, str) for u in v) for v in value.values()
    ):
        raise ConfigError("clients: expected { client_id = [redirect URIs] }")
    return {str(k): tuple(v) for k, v in value.items()}


def _totp_secrets(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError('totp_secrets: expected { "citizen-5" = "BASE32SECRET" }')
    out = {}
    for login, secret in value.items():
        try:
            if not isinstance(secret, str) or not decode_secret(secret):
                raise ValueError(secret)
        except (ValueError, binascii.Error):
            raise ConfigError(f"totp_secrets.{login}: expected a base32 secret") from None
        out[str(login)] = secret
    return out


# Settings with a parser of their own (the scalars are checked by type in _SCALARS).
_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "secret": _secret,
    "data_dir": lambda value: Path(str(value)),
    "clients": _clients,
    "totp_secrets": _totp_secrets,
}


def _only(keys: set[str], allowed: set[str], where: str) -> None:
    extra = sorted(keys - allowed)
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: unknown key; expected {', '.join(sorted(allowed))}")


def _ms(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = raw.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"{where}.{key}: expected a number of milliseconds")
    if value < 0:
        raise ConfigError(f"{where}.{key}: must be >= 0")
    return float(value) / 1000.0


def _fraction(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = raw.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ConfigError(f"{where}.{key}: expected a fraction between 0 and 1")
    return float(value)


def _int(raw: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}.{key}: expected an integer >= 0")
    return value
