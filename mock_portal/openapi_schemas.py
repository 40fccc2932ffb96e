"""JSON Schema (2020-12, the OpenAPI 3.1 dialect) of every body the mock portal reads or writes.

Small typed builders (:func:`obj`, :func:`string`, :func:`integer`, ...) keep each schema one
readable expression; enums and limits are imported from the handlers' own modules so the
document cannot drift from what the code checks. :func:`component_schemas` is the
``components.schemas`` section of the document built in :mod:`mock_portal.openapi`.

>>> obj({"id": string()})["required"]
['id']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .config import MAX_SERVERS
from .problems import TYPE_BASE
from .routes import SERVICES
from .services.applications import CRITERIA, MAX_COMMENT, STATUSES
from .services.auth import MAX_STATE_LEN, SCOPES
from .services.catalog import FIELD_TYPES, categories
from .services.payments import FAILURE_REASONS, MAX_KEY_LEN, METHODS

Schema = dict[str, Any]

COMPONENTS = "#/components/schemas/"
LATENCY_KINDS = ("fixed", "exponential", "uniform", "lognormal")
OAUTH_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "invalid_scope",
    "unsupported_grant_type",
    "unsupported_response_type",
)
CHARGE_KINDS = ("fine", "tax", "fee", "duty")


# -- builders -------------------------------------------------------------------------------


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": COMPONENTS + name}


def string(
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    fmt: str | None = None,
    description: str | None = None,
) -> Schema:
    out: Schema = {"type": "string"}
    for key, value in (
        ("minLength", min_length),
        ("maxLength", max_length),
        ("pattern", pattern),
        ("format", fmt),
        ("description", description),
    ):
        if value is not None:
            out[key] = value
    return out


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    out: Schema = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def number(minimum: float | None = None, maximum: float | None = None) -> Schema:
    out: Schema = {"type": "number"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def boolean() -> Schema:
    return {"type": "boolean"}


def enum(values: Iterable[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def const(value: str | bool | int) -> Schema:
    return {"const": value}


def array(items: Schema, *, min_items: int | None = None) -> Schema:
    out: Schema = {"type": "array", "items": items}
    if min_items is not None:
        out["minItems"] = min_items
    return out


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def obj(
    required: Mapping[str, Schema],
    optional: Mapping[str, Schema] | None = None,
    *,
    closed: bool = True,
    description: str | None = None,
) -> Schema:
    """An object with these members; ``closed`` refuses any other (``additionalProperties``)."""
    out: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    if description is not None:
        out["description"] = description
    return out


def map_of(values: Schema, keys: Schema | None = None) -> Schema:
    """An object used as a map: any (or matching) keys, each value of one schema."""
    out: Schema = {"type": "object", "additionalProperties": values}
    if keys is not None:
        out["propertyNames"] = keys
    return out


def date_time() -> Schema:
    return string(fmt="date-time", pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def date() -> Schema:
    return string(fmt="date", pattern=r"^\d{4}-\d{2}-\d{2}$")


def kopecks(minimum: int = 1) -> Schema:
    return {**integer(minimum), "description": "an amount in kopecks (1/100 rouble)"}


# -- problem details ------------------------------------------------------------------------


def problem_schema(*, oauth: bool) -> Schema:
    """RFC 9457 problem details; with ``oauth`` also RFC 6749 §5.2's ``error`` members."""
    required: dict[str, Schema] = {
        "type": string(fmt="uri", pattern="^" + TYPE_BASE.replace(".", r"\.") + "[a-z0-9-]+$"),
        "title": string(min_length=1),
        "status": integer(400, 599),
        "detail": string(),
    }
    optional: dict[str, Schema] = {"errors": array(ref("FieldError"), min_items=1)}
    if oauth:
        required |= {"error": enum(OAUTH_ERRORS), "error_description": string()}
    return obj(required, optional)


# -- single sign-on -------------------------------------------------------------------------

_DISCOVERY_LISTS = (
    "response_types_supported",
    "response_modes_supported",
    "grant_types_supported",
    "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_methods_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "scopes_supported",
    "claims_supported",
)
_DISCOVERY_URLS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "revocation_endpoint",
)

CHALLENGE = string(pattern=r"^[A-Za-z0-9\-_]{43}$", description="BASE64URL(SHA256(verifier))")
VERIFIER = string(pattern=r"^[A-Za-z0-9\-._~]{43,128}$")
SEALED = string(min_length=1, max_length=4096, description="an opaque token sealed by the portal")


def _sso_schemas() -> dict[str, Schema]:
    code_grant = obj(
        {
            "grant_type": const("authorization_code"),
            "client_id": string(),
            "code": string(),
            "redirect_uri": string(),
            "code_verifier": VERIFIER,
        },
        closed=False,
    )
    refresh_grant = obj(
        {"grant_type": const("refresh_token"), "client_id": string(), "refresh_token": string()},
        closed=False,
    )
    return {
        "Discovery": obj(
            {
                "issuer": string(),
                **{name: string(fmt="uri") for name in _DISCOVERY_URLS},
                **{name: array(string(), min_items=1) for name in _DISCOVERY_LISTS},
            }
        ),
        "LoginChallenge": obj(
            {
                "login_challenge": SEALED,
                "expires_in": integer(1),
                "client_id": string(),
                "scope": string(min_length=1),
                "login_endpoint": const("/oauth2/login"),
            }
        ),
        "LoginRequest": obj(
            {
                "login_challenge": SEALED,
                "login": string(min_length=1, max_length=128, description="citizen-<n>"),
                "password": string(min_length=1, max_length=256, description="Passw0rd-<n>"),
            },
            closed=False,
        ),
        "MfaRequired": obj(
            {
                "mfa_required": const(True),
                "mfa_token": SEALED,
                "expires_in": integer(1),
                "method": const("sms"),
            }
        ),
        "OtpRequest": obj(
            {"mfa_token": SEALED, "code": string(min_length=1, max_length=16)}, closed=False
        ),
        "TokenRequest": {"oneOf": [code_grant, refresh_grant]},
        "TokenResponse": obj(
            {
                "access_token": string(description="an HS256 JWT"),
                "token_type": const("Bearer"),
                "expires_in": integer(1),
                "refresh_token": string(),
                "scope": string(min_length=1),
            },
            {"id_token": string(description="an HS256 JWT, when the scope has openid")},
        ),
        "RevokeRequest": obj(
            {"token": string(min_length=1), "client_id": string()},
            {"token_type_hint": enum(("access_token", "refresh_token"))},
            closed=False,
        ),
        "Profile": obj(
            {
                "sub": string(pattern=r"^citizen-\d+$"),
                "login": string(pattern=r"^citizen-\d+$"),
                "given_name": string(),
                "family_name": string(),
                "birthdate": date(),
                "snils": string(pattern=r"^\d{3}-\d{3}-\d{3} \d{2}$"),
                "inn": string(pattern=r"^\d{12}$"),
                "email": string(fmt="email"),
                "phone_number": string(pattern=r"^\+79\d{9}$"),
                "region": string(),
                "mfa_enabled": boolean(),
            }
        ),
    }


SCOPE = string(
    pattern=r"^(" + "|".join(SCOPES) + r")( (" + "|".join(SCOPES) + r"))*$",
    description="space-separated scopes: " + ", ".join(SCOPES),
)
STATE = string(max_length=MAX_STATE_LEN)


# -- catalog and applications ---------------------------------------------------------------


def _page(item: str, extra: Mapping[str, Schema] | None = None) -> Schema:
    return obj(
        {
            "items": array(ref(item)),
            "page": integer(1),
            "per_page": integer(1, 100),
            "total": integer(0),
            "pages": integer(0),
            **(extra or {}),
        }
    )


def _catalog_schemas() -> dict[str, Schema]:
    summary: dict[str, Schema] = {
        "code": string(pattern=r"^\d{5}$"),
        "title": string(),
        "category": enum(categories()),
        "department": string(),
        "fee_kopecks": kopecks(0),
        "processing_days": integer(1),
    }
    return {
        "ServiceSummary": obj(summary),
        "ServicePage": _page(
            "ServiceSummary",
            {"facets": obj({"category": map_of(integer(1), enum(categories()))})},
        ),
        "FormField": obj(
            {
                "name": string(),
                "type": enum(FIELD_TYPES),
                "required": boolean(),
                "description": string(),
                "example": {"description": "a value that passes the field's rules"},
            },
            {
                "pattern": string(fmt="regex"),
                "max_length": integer(1),
                "min": integer(),
                "max": integer(),
                "options": array(string(), min_items=1),
            },
        ),
        "ServiceDetail": obj(
            {
                **summary,
                "category_title": string(),
                "online": boolean(),
                "fields": array(ref("FormField"), min_items=1),
                "rules": obj(
                    {"status_flow": array(string()), "rating_criteria": array(enum(CRITERIA))}
                ),
            }
        ),
    }


APPLICATION_ID = string(pattern=r"^APP-[0-9a-f]{16}$")


def _application_schemas() -> dict[str, Schema]:
    scores = {name: integer(1, 5) for name in CRITERIA}
    decisions = ("approved", "rejected")
    return {
        "ApplicationRequest": obj(
            {
                "service_code": string(min_length=1),
                "fields": map_of({}) | {"description": "the service's form fields, by name"},
            }
        ),
        "RatingRequest": obj(scores, {"comment": string(max_length=MAX_COMMENT)}),
        "Rating": obj(
            {
                "application_id": APPLICATION_ID,
                **scores,
                "average": number(1, 5),
                "comment": string(max_length=MAX_COMMENT),
                "status_at_rating": enum(STATUSES),
                "rated_at": date_time(),
            }
        ),
        "Application": obj(
            {
                "id": APPLICATION_ID,
                "service_code": string(),
                "service_title": string(),
                "category": enum(categories()),
                "status": enum(STATUSES),
                "submitted_at": date_time(),
                "updated_at": date_time(),
                "history": array(obj({"status": enum(STATUSES), "at": date_time()}), min_items=1),
                "decision": nullable(
                    obj({"outcome": enum(decisions)}, {"reason": string(min_length=1)})
                ),
                "fields": map_of({}),
                "rating": nullable(ref("Rating")),
            }
        ),
        "ApplicationPage": _page("Application"),
    }


# -- payments -------------------------------------------------------------------------------

PAYMENT_ID = string(pattern=r"^PAY-[0-9a-f]{20}$")
CHARGE_ID = string(pattern=r"^CH-\d+-\d$")
IDEMPOTENCY_KEY = string(
    min_length=1, max_length=MAX_KEY_LEN, pattern=r"^[\x20-\x7e]+$", description="printable ASCII"
)


def _payment_schemas() -> dict[str, Schema]:
    payment = obj(
        {
            "id": PAYMENT_ID,
            "charge_id": CHARGE_ID,
            "amount_kopecks": kopecks(),
            "currency": const("RUB"),
            "method": enum(METHODS),
            "status": enum(("processing", "succeeded", "failed")),
            "created_at": date_time(),
            "updated_at": date_time(),
        },
        {
            "receipt_url": string(pattern=r"^/api/v1/payments/PAY-[0-9a-f]{20}/receipt$"),
            "failure_reason": enum(FAILURE_REASONS),
        },
    )
    payment["allOf"] = [
        _when_status("succeeded", ["receipt_url"], ["failure_reason"]),
        _when_status("failed", ["failure_reason"], ["receipt_url"]),
        _when_status("processing", [], ["receipt_url", "failure_reason"]),
    ]
    charge = obj(
        {
            "id": CHARGE_ID,
            "kind": enum(CHARGE_KINDS),
            "payee": string(),
            "description": string(),
            "amount_kopecks": kopecks(),
            "currency": const("RUB"),
            "due_date": date(),
            "uin": string(pattern=r"^\d{20}$"),
        }
    )
    return {
        "Charge": charge,
        "ChargeList": obj(
            {"items": array(ref("Charge")), "total": integer(0), "total_kopecks": kopecks(0)}
        ),
        "PaymentRequest": obj(
            {"charge_id": string(min_length=1, max_length=64)},
            {
                "method": enum(METHODS) | {"default": "card"},
                "amount_kopecks": kopecks()
                | {"description": "if given, must equal the charge's amount"},
            },
        ),
        "Payment": payment,
        "Receipt": obj(
            {
                "receipt_number": string(pattern=r"^R-[0-9a-f]{20}$"),
                "payment_id": PAYMENT_ID,
                "paid_at": date_time(),
                "amount_kopecks": kopecks(),
                "currency": const("RUB"),
                "method": enum(METHODS),
                "payer": obj({"name": string(), "inn": string(pattern=r"^\d{12}$")}),
                "payee": string(),
                "purpose": string(),
                "uin": string(pattern=r"^\d{20}$"),
                "signature": string(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256"),
            }
        ),
    }


def _when_status(status: str, present: list[str], absent: list[str]) -> Schema:
    then: Schema = {"required": present} if present else {}
    if absent:
        then["not"] = {"anyOf": [{"required": [name]} for name in absent]}
    return {"if": {"properties": {"status": const(status)}}, "then": then}


# -- faults, ledger and operations ----------------------------------------------------------


def _latency() -> Schema:
    """One of the latency distributions, its parameters in milliseconds."""
    ms = number(0)
    shapes = (
        ({"fixed", "exponential"}, {"ms": ms}),
        ({"uniform"}, {"min_ms": ms, "max_ms": ms}),
        ({"lognormal"}, {"median_ms": ms, "p99_ms": ms}),
    )
    return {
        "oneOf": [obj({"kind": enum(sorted(kinds)), **params}) for kinds, params in shapes],
        "description": "kind and its parameters in milliseconds",
    }


def _fault_schemas() -> dict[str, Schema]:
    route_faults = obj(
        {},
        {
            "latency": ref("Latency"),
            "error": obj({"rate": number(0, 1)}, {"status": integer(400, 599)}),
            "reset_rate": number(0, 1),
            "lose_response_rate": number(0, 1),
            "slow_body_ms": number(0),
        },
    )
    route_key = string(pattern=r"^(\*$|/)", description="a route template, or * for all")
    service_key = enum(SERVICES)
    capacity = {"servers": integer(1, MAX_SERVERS), "service_time": ref("Latency")}
    derived = {
        "capacity_rps": number(0) | {"description": "servers / mean service time; ignored in a PUT"}
    }
    settings: dict[str, Schema] = {
        "shed_in_flight": integer(0),
        "shed_retry_after_s": integer(0),
        "seed": nullable(integer()),
    }
    return {
        "Latency": _latency(),
        "RouteFaults": route_faults,
        "Faults": obj(
            {},
            {
                "routes": map_of(ref("RouteFaults"), route_key),
                "capacity": map_of(obj(capacity, derived), service_key),
                **settings,
                "version": integer(0) | {"description": "ignored: GET's output can be PUT"},
            },
        ),
        "FaultsState": obj(
            {
                "version": integer(0),
                "routes": map_of(ref("RouteFaults"), route_key),
                "capacity": map_of(obj({**capacity, **derived}), service_key),
                "shed_in_flight": integer(0),
                "shed_retry_after_s": integer(1),
                "seed": nullable(integer()),
            }
        ),
        "LedgerReport": obj(
            {
                **{
                    name: integer()
                    for name in (
                        "entries",
                        "sum_kopecks",
                        "clearing_kopecks",
                        "payees_kopecks",
                        "processing_kopecks",
                        "succeeded_kopecks",
                        "failed_kopecks",
                        "payments",
                        "double_paid_charges",
                    )
                },
                "balanced": boolean(),
            }
        ),
        "Health": obj({"status": const("ok")}),
        "Readiness": obj({"status": enum(("ready",))}),
    }


def component_schemas() -> dict[str, Schema]:
    """The ``components.schemas`` of the document, sorted by name."""
    schemas: dict[str, Schema] = {
        "FieldError": obj(
            {"field": string(min_length=1), "message": string(min_length=1)},
            description="one invalid member: its dotted path and what is wrong",
        ),
        "Problem": problem_schema(oauth=False),
        "OAuthProblem": problem_schema(oauth=True),
        **_sso_schemas(),
        **_catalog_schemas(),
        **_application_schemas(),
        **_payment_schemas(),
        **_fault_schemas(),
    }
    return dict(sorted(schemas.items()))
