"""The OpenAPI 3.1 document of the mock portal's API (docs/api.md), served at ``/openapi.json``.

Every route the app registers is here (``HEAD`` is implied by ``GET``, as aiohttp adds it), with
every status its handler can answer. Errors are RFC 9457 problem details whose ``status`` is
the HTTP status; the OAuth endpoints add RFC 6749's ``error`` and ``error_description``.
Bodies are in :mod:`mock_portal.openapi_schemas`; this module assembles paths and responses.

Two behaviours apply to every operation and are documented once each: ``413`` on a body larger
than the request limit, and ``503`` with ``Retry-After`` when load shedding is configured.
Faults injected through ``/admin/faults`` may answer any status from 400 to 599 on purpose;
those are outside the contract.

>>> doc = build_document()
>>> doc["paths"]["/api/v1/payments"]["post"]["responses"]["201"]["headers"]["Location"]["required"]
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .openapi_schemas import (
    APPLICATION_ID,
    CHALLENGE,
    IDEMPOTENCY_KEY,
    PAYMENT_ID,
    SCOPE,
    STATE,
    Schema,
    component_schemas,
    enum,
    integer,
    ref,
    string,
)
from .problems import PROBLEM_TYPE, title_of
from .services.applications import STATUSES
from .services.auth import MAX_STATE_LEN
from .services.catalog import categories
from .wire import DEFAULT_PER_PAGE, FORM, JSON, MAX_PER_PAGE

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
DIALECT = "https://spec.openapis.org/oas/3.1/dialect/base"

Obj = dict[str, Any]

CITIZEN: list[Obj] = [{"citizenBearer": []}]
ADMIN: list[Obj] = [{"adminBearer": []}]


# -- building blocks ------------------------------------------------------------------------


# Operations and admin endpoints are never shed nor faulted (mock_portal.middleware).
UNSHED_TAGS = ("operations", "admin")


def _content(schema: Schema, media: str = JSON) -> Obj:
    return {media: {"schema": schema}}


def response_headers(*required: str, optional: tuple[str, ...] = ()) -> dict[str, Obj]:
    """Response header objects by name, from :data:`HEADERS`."""
    out = {name: {**HEADERS[name], "required": True} for name in required}
    return out | {name: {**HEADERS[name], "required": False} for name in optional}


HEADERS: dict[str, Obj] = {
    "Location": {"description": "where the created resource lives", "schema": string()},
    "Retry-After": {"description": "seconds to wait before retrying", "schema": integer(1)},
    "Idempotency-Key": {
        "description": "the request's Idempotency-Key, echoed",
        "schema": IDEMPOTENCY_KEY,
    },
    "Idempotent-Replayed": {
        "description": "present when the response is the stored one of an earlier request",
        "schema": enum(["true"]),
    },
    "WWW-Authenticate": {"description": "the Bearer challenge", "schema": string()},
    "Cache-Control": {"description": "tokens are never cached", "schema": enum(["no-store"])},
}


def ok(
    description: str,
    schema: Schema | None,
    *,
    media: str = JSON,
    headers: Mapping[str, Obj] | None = None,
) -> Obj:
    """A response with this body schema (None: no body) and these headers."""
    out: Obj = {"description": description}
    if schema is not None:
        out["content"] = _content(schema, media)
    if headers:
        out["headers"] = dict(headers)
    return out


def problem(
    status: int,
    description: str,
    *,
    oauth: bool | None = False,
    headers: Mapping[str, Obj] | None = None,
) -> Obj:
    """An error response: problem details with this exact ``status`` and ``title``.

    ``oauth=True``: always with OAuth's ``error``; ``None``: with or without it.
    """
    if oauth is None:
        base = {"anyOf": [ref("Problem"), ref("OAuthProblem")]}
    else:
        base = ref("OAuthProblem" if oauth else "Problem")
    exact = {"properties": {"status": {"const": status}, "title": {"const": title_of(status)}}}
    return ok(description, {"allOf": [base, exact]}, media=PROBLEM_TYPE, headers=headers)


def _responses_ref(name: str) -> Obj:
    return {"$ref": f"#/components/responses/{name}"}


def _param(name: str, where: str, schema: Schema, description: str, required: bool) -> Obj:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
    }


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Obj:
    return _param(name, "query", schema, description, required)


def path(name: str, schema: Schema, description: str) -> Obj:
    return _param(name, "path", schema, description, True)


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: Mapping[int, Obj],
    *,
    security: list[Obj] | None = None,
    parameters: list[Obj] | None = None,
    body: Obj | None = None,
    description: str | None = None,
) -> Obj:
    """One operation; adds the 413 of any body and the 503 of load shedding (which spares
    the operations and admin endpoints)."""
    out: Obj = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description is not None:
        out["description"] = description
    out["security"] = security if security is not None else []
    if parameters:
        out["parameters"] = parameters
    all_responses = dict(responses)
    if body is not None:
        out["requestBody"] = body
        all_responses.setdefault(413, _responses_ref("ContentTooLarge"))
        all_responses.setdefault(415, _responses_ref("UnsupportedMediaType"))
    if security is not None and security:
        all_responses.setdefault(401, _responses_ref("Unauthorized"))
    if tag not in UNSHED_TAGS:
        all_responses.setdefault(503, _responses_ref("Overloaded"))
    out["responses"] = {str(status): all_responses[status] for status in sorted(all_responses)}
    return out


def json_body(name: str) -> Obj:
    return {"required": True, "content": _content(ref(name))}


def form_body(name: str) -> Obj:
    return {"required": True, "content": _content(ref(name), FORM)}


PAGINATION = [
    {"$ref": "#/components/parameters/page"},
    {"$ref": "#/components/parameters/per_page"},
]


# -- paths ----------------------------------------------------------------------------------


def _sso_paths() -> dict[str, Obj]:
    redirect = ok(
        "signed in: to the client's redirect_uri with ?code= (and &state= when given)",
        None,
        headers=response_headers("Location", "Cache-Control"),
    )
    throttled = problem(
        429, "too many failed attempts for this login", headers=response_headers("Retry-After")
    )
    bad_json = "malformed body, or a required member missing (listed in errors)"
    oauth_401 = problem(
        401, "unknown client_id", oauth=True, headers=response_headers("WWW-Authenticate")
    )
    pkce_params = [
        query("response_type", enum(["code"]), "only the code flow", required=True),
        query("client_id", string(), "a registered client, e.g. portal-web", required=True),
        query("redirect_uri", string(), "a redirect URI registered for it", required=True),
        query("code_challenge", CHALLENGE, "PKCE challenge", required=True),
        query("code_challenge_method", enum(["S256"]), "PKCE method", required=True),
        query("scope", SCOPE | {"default": "openid"}, "requested scopes"),
        query("state", STATE, f"returned with the code; at most {MAX_STATE_LEN} chars"),
        query("nonce", STATE, "copied into the ID token"),
    ]
    return {
        "/.well-known/openid-configuration": {
            "get": operation(
                "discovery",
                "OpenID discovery document",
                "sso",
                {200: ok("the SSO's endpoints and capabilities", ref("Discovery"))},
            )
        },
        "/oauth2/authorize": {
            "get": operation(
                "authorize",
                "Start an authorization-code flow with PKCE",
                "sso",
                {
                    200: ok(
                        "a login challenge",
                        ref("LoginChallenge"),
                        headers=response_headers("Cache-Control"),
                    ),
                    400: problem(
                        400, "invalid client, redirect_uri, PKCE, scope or state", oauth=True
                    ),
                },
                parameters=pkce_params,
            )
        },
        "/oauth2/login": {
            "post": operation(
                "login",
                "Sign in with login and password",
                "sso",
                {
                    200: ok("a second factor is required", ref("MfaRequired")),
                    302: redirect,
                    400: problem(400, f"{bad_json}; invalid or expired login_challenge"),
                    401: problem(401, "the login or the password is wrong"),
                    429: throttled,
                },
                body=json_body("LoginRequest"),
            )
        },
        "/oauth2/otp": {
            "post": operation(
                "otp",
                "Confirm the second factor",
                "sso",
                {
                    302: redirect,
                    400: problem(400, f"{bad_json}; invalid or expired mfa_token"),
                    401: problem(401, "the one-time code is wrong"),
                    429: throttled,
                },
                body=json_body("OtpRequest"),
            )
        },
        "/oauth2/token": {
            "post": operation(
                "token",
                "Exchange a code (with its PKCE verifier) or a refresh token for tokens",
                "sso",
                {
                    200: ok(
                        "tokens; a refresh token is single-use (rotation)",
                        ref("TokenResponse"),
                        headers=response_headers("Cache-Control"),
                    ),
                    400: problem(400, "malformed form, or an OAuth error", oauth=None),
                    401: oauth_401,
                },
                body=form_body("TokenRequest"),
            )
        },
        "/oauth2/revoke": {
            "post": operation(
                "revoke",
                "Revoke an access or refresh token (RFC 7009)",
                "sso",
                {
                    200: ok("revoked, or the token was not valid anyway; empty body", None),
                    400: problem(400, "malformed form, or no token", oauth=None),
                    401: oauth_401,
                },
                body=form_body("RevokeRequest"),
                description="Revoking a refresh token ends its session: its access tokens too.",
            )
        },
        "/api/v1/me": {
            "get": operation(
                "me",
                "The citizen's profile (also the OpenID userinfo endpoint)",
                "citizen",
                {200: ok("the profile", ref("Profile"))},
                security=CITIZEN,
            )
        },
    }


def _catalog_paths() -> dict[str, Obj]:
    return {
        "/api/v1/services": {
            "get": operation(
                "listServices",
                "Search the catalog of service types",
                "catalog",
                {
                    200: ok("one page of services, with facet counts", ref("ServicePage")),
                    400: problem(400, "an invalid query parameter (listed in errors)"),
                },
                parameters=[
                    query("q", string(max_length=100), "words of the title or category"),
                    query("category", enum(categories()), "one category"),
                    *PAGINATION,
                ],
            )
        },
        "/api/v1/services/{code}": {
            "get": operation(
                "getService",
                "One service with its form fields and rules",
                "catalog",
                {
                    200: ok("the service", ref("ServiceDetail")),
                    404: problem(404, "no service with this code"),
                },
                parameters=[path("code", string(pattern=r"^\d{5}$"), "the service's code")],
            )
        },
    }


def _application_paths() -> dict[str, Obj]:
    app_id = path("id", APPLICATION_ID, "the application's id")
    not_found = problem(404, "no such application for this citizen")
    return {
        "/api/v1/applications": {
            "post": operation(
                "submitApplication",
                "Submit an application for a service",
                "applications",
                {
                    201: ok("submitted", ref("Application"), headers=response_headers("Location")),
                    400: problem(400, "the body is not a JSON object"),
                    422: problem(422, "unknown service, or invalid form fields (in errors)"),
                },
                security=CITIZEN,
                body=json_body("ApplicationRequest"),
            ),
            "get": operation(
                "listApplications",
                "The citizen's applications, newest first",
                "applications",
                {
                    200: ok("one page of applications", ref("ApplicationPage")),
                    400: problem(400, "an invalid query parameter (listed in errors)"),
                },
                security=CITIZEN,
                parameters=[*PAGINATION, query("status", enum(STATUSES), "only this status")],
            ),
        },
        "/api/v1/applications/{id}": {
            "get": operation(
                "getApplication",
                "One application; its status moves with time",
                "applications",
                {200: ok("the application", ref("Application")), 404: not_found},
                security=CITIZEN,
                parameters=[app_id],
            )
        },
        "/api/v1/applications/{id}/rating": {
            "post": operation(
                "rateApplication",
                'Rate the service ("Your control"): five criteria 1..5',
                "applications",
                {
                    201: ok("the rating", ref("Rating")),
                    400: problem(400, "the body is not a JSON object"),
                    404: not_found,
                    409: problem(409, "the application has already been rated"),
                    422: problem(422, "invalid scores or comment (listed in errors)"),
                },
                security=CITIZEN,
                parameters=[app_id],
                body=json_body("RatingRequest"),
            )
        },
    }


def _payment_paths() -> dict[str, Obj]:
    pay_id = path("id", PAYMENT_ID, "the payment's id")
    not_found = problem(404, "no such payment for this citizen")
    echo = response_headers("Idempotency-Key", optional=("Idempotent-Replayed",))
    return {
        "/api/v1/payments/charges": {
            "get": operation(
                "listCharges",
                "The citizen's outstanding fines, taxes, fees and duties",
                "payments",
                {200: ok("charges not paid nor being paid", ref("ChargeList"))},
                security=CITIZEN,
            )
        },
        "/api/v1/payments": {
            "post": operation(
                "createPayment",
                "Pay a charge, idempotently",
                "payments",
                {
                    201: ok(
                        "created; processing until it settles",
                        ref("Payment"),
                        headers=response_headers("Location") | echo,
                    ),
                    400: problem(400, "Idempotency-Key missing or invalid; malformed body"),
                    404: problem(404, "no such charge for this citizen", headers=echo),
                    409: problem(409, "the charge is paid or being paid", headers=echo),
                    422: problem(
                        422,
                        "invalid members (in errors); amount differs from the "
                        "charge's (stored, so echoed); the key was used with another body",
                        headers=response_headers(
                            optional=("Idempotency-Key", "Idempotent-Replayed")
                        ),
                    ),
                },
                security=CITIZEN,
                parameters=[
                    _param(
                        "Idempotency-Key",
                        "header",
                        IDEMPOTENCY_KEY,
                        "a replay within 24 h returns the original response",
                        True,
                    ),
                ],
                body=json_body("PaymentRequest"),
            )
        },
        "/api/v1/payments/{id}": {
            "get": operation(
                "getPayment",
                "A payment: processing, then succeeded or failed",
                "payments",
                {200: ok("the payment", ref("Payment")), 404: not_found},
                security=CITIZEN,
                parameters=[pay_id],
            )
        },
        "/api/v1/payments/{id}/receipt": {
            "get": operation(
                "getReceipt",
                "The receipt of a succeeded payment",
                "payments",
                {
                    200: ok("the signed receipt", ref("Receipt")),
                    404: not_found,
                    409: problem(409, "the payment has not succeeded (yet)"),
                },
                security=CITIZEN,
                parameters=[pay_id],
            )
        },
    }


def _admin_paths() -> dict[str, Obj]:
    denied = {
        401: _responses_ref("AdminUnauthorized"),
        403: problem(403, "the admin API answers loopback clients only"),
    }
    state = ok("the faults now applied, with their version", ref("FaultsState"))
    return {
        "/admin/faults": {
            "get": operation(
                "getFaults", "Injected faults", "admin", {200: state, **denied}, security=ADMIN
            ),
            "put": operation(
                "putFaults",
                "Replace the injected faults (every worker applies them within 0.5 s)",
                "admin",
                {
                    200: state,
                    400: problem(400, "the body is not a JSON object"),
                    422: problem(422, "the fault document is invalid (detail says where)"),
                    **denied,
                },
                security=ADMIN,
                body=json_body("Faults"),
            ),
        },
        "/admin/ledger": {
            "get": operation(
                "getLedger",
                "Totals and invariants of the payments ledger",
                "admin",
                {200: ok("the ledger's report", ref("LedgerReport")), **denied},
                security=ADMIN,
            )
        },
    }


def _ops_paths() -> dict[str, Obj]:
    not_ready = problem(
        503,
        "starting, draining, or its store cannot write (disk full, read-only)",
        headers=response_headers("Retry-After"),
    )
    return {
        "/metrics": {
            "get": operation(
                "metrics",
                "Prometheus metrics",
                "operations",
                {200: ok("text exposition format", string(), media="text/plain")},
            )
        },
        "/healthz": {
            "get": operation("healthz", "Liveness", "operations", {200: ok("alive", ref("Health"))})
        },
        "/readyz": {
            "get": operation(
                "readyz",
                "Readiness",
                "operations",
                {200: ok("serving", ref("Readiness")), 503: not_ready},
            )
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                "operations",
                {200: ok("the OpenAPI 3.1 document", {"type": "object"})},
            )
        },
    }


# -- document -------------------------------------------------------------------------------


def _components() -> Obj:
    auth_problem = problem(
        401,
        "no bearer token, or it is malformed, badly signed, expired or revoked",
        headers=response_headers("WWW-Authenticate"),
    )
    admin_problem = problem(
        401, "no or a wrong admin token", headers=response_headers("WWW-Authenticate")
    )
    page = integer(1, 1_000_000) | {"default": 1}
    per_page = integer(1, MAX_PER_PAGE) | {"default": DEFAULT_PER_PAGE}
    return {
        "schemas": component_schemas(),
        "parameters": {
            "page": query("page", page, "1-based page number"),
            "per_page": query("per_page", per_page, "items per page"),
        },
        "headers": HEADERS,
        "responses": {
            "Unauthorized": auth_problem,
            "AdminUnauthorized": admin_problem,
            "ContentTooLarge": problem(413, "the body exceeds the request size limit"),
            "UnsupportedMediaType": problem(415, "the body is not of the documented media type"),
            "Overloaded": problem(
                503,
                "load shedding (too many requests in flight), or a store that cannot write "
                "(disk full, read-only): nothing was changed",
                headers=response_headers("Retry-After"),
            ),
        },
        "securitySchemes": {
            "citizenBearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "an access token from POST /oauth2/token (HS256, 15 minutes)",
            },
            "adminBearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "the admin token (--admin-token, or printed at start-up)",
            },
        },
    }


def build_document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document, as a JSON-ready dict."""
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": DIALECT,
        "info": {
            "title": "Public-services portal mock",
            "version": API_VERSION,
            "summary": "Single sign-on, catalog, applications, payments and ratings",
            "description": __doc__.split("\n\n>>>")[0] if __doc__ else "",
        },
        "tags": [
            {"name": name}
            for name in (
                "sso",
                "citizen",
                "catalog",
                "applications",
                "payments",
                "admin",
                "operations",
            )
        ],
        "paths": {
            **_sso_paths(),
            **_catalog_paths(),
            **_application_paths(),
            **_payment_paths(),
            **_admin_paths(),
            **_ops_paths(),
        },
        "components": _components(),
    }
