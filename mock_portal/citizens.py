"""The deterministic pool of test citizens, their profiles and their outstanding charges.

Credentials are derived from the index, so scenarios, the mock and any other client agree
without a user table: login ``citizen-<n>``, password ``Passw0rd-<n>``; citizens with
``n % 5 == 0`` have a second factor. Each citizen has 0-4 charges (fines, taxes, fees, duties)
derived from the index; amounts are integer kopecks.
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

MFA_EVERY = 5
LOGIN_PREFIX = "citizen-"
PASSWORD_PREFIX = "Passw0rd-"  # noqa: S105 - the published test-citizen scheme
_MASK = (1 << 64) - 1
# Citizens whose charges stay computed (about 1 KB each): a login-and-pay journey asks for
# them 3-5 times within seconds (listing, each payment, each settlement), from two threads.
CHARGES_CACHE_SIZE = 4096
PROFILE_CACHE_SIZE = 16384  # signed-in citizens whose /me body is kept ready

_FIRST = ("Ivan", "Anna", "Sergey", "Elena", "Dmitry", "Olga", "Alexey", "Maria", "Pavel", "Irina")
_LAST = ("Ivanov", "Smirnov", "Kuznetsov", "Popov", "Vasiliev", "Petrov", "Sokolov", "Mikhailov")
_REGIONS = (
    "Moscow",
    "Saint Petersburg",
    "Novosibirsk Oblast",
    "Sverdlovsk Oblast",
    "Republic of Tatarstan",
    "Krasnodar Krai",
    "Nizhny Novgorod Oblast",
    "Primorsky Krai",
)
# (kind, payee, description, min roubles, max roubles)
_CHARGE_KINDS = (
    ("fine", "State Traffic Safety Inspectorate", "Traffic fine under article 12.9", 500, 5_000),
    ("tax", "Federal Tax Service", "Property tax for individuals", 300, 40_000),
    ("fee", "Ministry of Internal Affairs", "State fee for a foreign passport", 2_000, 6_000),
    ("duty", "Federal Service for State Registration", "State duty for registration", 350, 4_000),
    ("tax", "Federal Tax Service", "Transport tax", 500, 25_000),
    ("fine", "Moscow Parking Administration", "Parking fine", 2_500, 5_000),
)


def mix(n: int, salt: int = 0) -> int:
    """splitmix64: a fast, well-spread hash of an integer (deterministic across processes)."""
    z = (n + 0x9E3779B97F4A7C15 * (salt + 1)) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def parse_login(login: str, pool: int) -> int | None:
    """The citizen index of a login, or None if it names no citizen of the pool."""
    if not login.startswith(LOGIN_PREFIX):
        return None
    digits = login[len(LOGIN_PREFIX) :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        return None
    if len(digits) > 1 and digits[0] == "0":
        return None
    n = int(digits)
    return n if n < pool else None


def check_password(n: int, password: str) -> bool:
    expected = f"{PASSWORD_PREFIX}{n}".encode()
    return hmac.compare_digest(expected, password.encode("utf-8", "surrogatepass"))


def has_mfa(n: int) -> bool:
    return n % MFA_EVERY == 0


def subject(n: int) -> str:
    return f"{LOGIN_PREFIX}{n}"


def profile(n: int) -> dict[str, Any]:
    h = mix(n, 1)
    born = date(1950, 1, 1) + timedelta(days=h % (365 * 55))
    snils = (
        f"{(h >> 8) % 1000:03d}-{(h >> 18) % 1000:03d}-{(h >> 28) % 1000:03d} {(h >> 38) % 100:02d}"
    )
    return {
        "sub": subject(n),
        "login": subject(n),
        "given_name": _FIRST[h % len(_FIRST)],
        "family_name": _LAST[(h >> 4) % len(_LAST)],
        "birthdate": born.isoformat(),
        "snils": snils,
        "inn": f"{(h >> 12) % 10**12:012d}",
        "email": f"{subject(n)}@mail.example",
        "phone_number": f"+79{(h >> 20) % 10**9:09d}",
        "region": _REGIONS[(h >> 40) % len(_REGIONS)],
        "mfa_enabled": has_mfa(n),
    }


@functools.lru_cache(maxsize=PROFILE_CACHE_SIZE)
def profile_json(n: int) -> bytes:
    """The profile as the JSON body of ``/api/v1/me`` (the hot path: cached)."""
    return orjson.dumps(profile(n))


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    citizen: int
    kind: str
    payee: str
    description: str
    amount_kopecks: int
    due_date: str
    uin: str  # the unique accrual identifier of the State Information System on payments

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "payee": self.payee,
            "description": self.description,
            "amount_kopecks": self.amount_kopecks,
            "currency": "RUB",
            "due_date": self.due_date,
            "uin": self.uin,
        }


def charges(n: int) -> list[Charge]:
    """All charges ever issued to citizen ``n`` (paid ones included): 0-4 of them."""
    return list(_charges(n))


@functools.lru_cache(maxsize=CHARGES_CACHE_SIZE)
def _charges(n: int) -> tuple[Charge, ...]:
    count = mix(n, 2) % 5
    out = []
    for i in range(count):
        h = mix(n * 8 + i, 3)
        kind, payee, description, low, high = _CHARGE_KINDS[h % len(_CHARGE_KINDS)]
        roubles = low + (h >> 8) % (high - low + 1)
        kopecks = roubles * 100 + (h >> 24) % 100 if kind == "tax" else roubles * 100
        due = date(2026, 1, 1) + timedelta(days=(h >> 32) % 365)
        out.append(
            Charge(
                id=f"CH-{n}-{i}",
                citizen=n,
                kind=kind,
                payee=payee,
                description=description,
                amount_kopecks=kopecks,
                due_date=due.isoformat(),
                uin=f"{h % 10**20:020d}",
            )
        )
    return tuple(out)


def charge_by_id(charge_id: str, pool: int) -> Charge | None:
    """The charge with this id, whoever owns it, or None."""
    parts = charge_id.split("-")
    if len(parts) != 3 or parts[0] != "CH":
        return None
    n = parse_login(LOGIN_PREFIX + parts[1], pool)
    if n is None or not parts[2].isascii() or not parts[2].isdigit() or len(parts[2]) > 1:
        return None
    found = _charges(n)
    i = int(parts[2])
    return found[i] if i < len(found) else None
