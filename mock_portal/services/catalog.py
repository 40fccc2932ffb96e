"""The catalog of service types: 500+ generated but plausible services, each with its form.

The catalog is built once per process from fixed tables (no randomness), so every worker and
every run agree on codes, titles and forms. Each form field states its type and rules and an
``example`` value that passes them, so a client can fill any form validly.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ..problems import Problem
from ..wire import JSON, page_body, pagination

LIST_CACHE_SIZE = 4096  # distinct (q, category, page, per_page) answers kept ready

# Field types: name -> (rule for the OpenAPI/documentation, regex or None, example)
FIELD_TYPES: dict[str, tuple[str, str | None, Any]] = {
    "text": ("free text", None, "Lenina street 1, apt 2"),
    "date": ("YYYY-MM-DD", r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$", "2026-05-17"),
    "snils": ("insurance number NNN-NNN-NNN NN", r"^\d{3}-\d{3}-\d{3} \d{2}$", "112-233-445 95"),
    "inn": ("taxpayer number, 12 digits", r"^\d{12}$", "500100732259"),
    "passport": ("passport series and number NNNN NNNNNN", r"^\d{4} \d{6}$", "4510 123456"),
    "phone": ("phone +7XXXXXXXXXX", r"^\+7\d{10}$", "+79161234567"),
    "email": ("e-mail address", r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "citizen@mail.example"),
    "vehicle_plate": (
        "vehicle plate, Russian letters that look Latin",
        r"^[\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425ABEKMHOPCTYX]"
        r"\d{3}[\u0410-\u042fA-Z]{2}\d{2,3}$",
        "A123BC77",
    ),
    "integer": ("whole number within min..max", None, 1),
    "choice": ("one of the listed options", None, None),
    "boolean": ("true or false", None, True),
}

# (category slug, category title, department, [(base title, fee roubles, days, field set)])
_CATEGORIES: tuple[tuple[str, str, str, tuple[tuple[str, int, int, str], ...]], ...] = (
    (
        "passports",
        "Passports and registration",
        "Ministry of Internal Affairs",
        (
            ("Issue of a domestic passport", 300, 10, "identity"),
            ("Issue of a foreign passport", 2000, 30, "identity"),
            ("Registration at the place of residence", 0, 3, "address"),
            ("Temporary registration at the place of stay", 0, 3, "address"),
            ("Replacement of a passport on reaching 45", 300, 10, "identity"),
        ),
    ),
    (
        "snils",
        "Insurance number (SNILS)",
        "Social Fund of Russia",
        (
            ("Issue of an insurance number (SNILS)", 0, 5, "identity"),
            ("Change of personal data in SNILS", 0, 5, "identity"),
        ),
    ),
    (
        "registry",
        "Registry extracts",
        "Federal Service for State Registration",
        (
            ("Extract from the Unified State Register of Real Estate", 350, 3, "property"),
            ("Extract from the Unified State Register of Legal Entities", 200, 1, "business"),
            ("Certificate of no criminal record", 0, 30, "identity"),
            ("Extract of pension rights", 0, 1, "identity"),
        ),
    ),
    (
        "vehicles",
        "Vehicles and driving",
        "State Traffic Safety Inspectorate",
        (
            ("Registration of a vehicle", 2850, 1, "vehicle"),
            ("Replacement of a driving licence", 2000, 1, "vehicle"),
            ("Appeal of a traffic fine", 0, 10, "fine"),
            ("Removal of a vehicle from the register", 0, 1, "vehicle"),
        ),
    ),
    (
        "fines",
        "Fines and debts",
        "Federal Bailiff Service",
        (
            ("Information on enforcement proceedings", 0, 1, "identity"),
            ("Deferral of a fine payment", 0, 10, "fine"),
        ),
    ),
    (
        "taxes",
        "Taxes",
        "Federal Tax Service",
        (
            ("Property tax deduction", 0, 30, "tax"),
            ("Social tax deduction for treatment", 0, 30, "tax"),
            ("Registration as self-employed", 0, 6, "tax"),
            ("Issue of a taxpayer number (INN)", 0, 5, "identity"),
        ),
    ),
    (
        "benefits",
        "Benefits and allowances",
        "Social Fund of Russia",
        (
            ("Unified allowance for families with children", 0, 10, "family"),
            ("Maternity capital certificate", 0, 5, "family"),
            ("Disposal of maternity capital", 0, 10, "family"),
            ("Compensation for housing and utilities", 0, 10, "address"),
            ("Unemployment benefit", 0, 10, "employment"),
        ),
    ),
    (
        "pensions",
        "Pensions",
        "Social Fund of Russia",
        (
            ("Assignment of an old-age pension", 0, 10, "identity"),
            ("Change of pension delivery method", 0, 5, "identity"),
            ("Certificate of pension amount", 0, 1, "identity"),
        ),
    ),
    (
        "family",
        "Family and children",
        "Civil Registry Office",
        (
            ("State registration of marriage", 350, 30, "family"),
            ("State registration of birth", 0, 1, "family"),
            ("State registration of divorce", 650, 30, "family"),
            ("Enrolment of a child in kindergarten", 0, 7, "education"),
        ),
    ),
    (
        "education",
        "Education",
        "Ministry of Education",
        (
            ("Enrolment in the first grade", 0, 7, "education"),
            ("Application to a university", 0, 10, "education"),
            ("Recognition of a foreign education document", 0, 30, "education"),
        ),
    ),
    (
        "health",
        "Health",
        "Ministry of Health",
        (
            ("Appointment with a doctor", 0, 1, "health"),
            ("Attachment to a polyclinic", 0, 3, "health"),
            ("Compulsory medical insurance policy", 0, 5, "health"),
            ("Certificate of vaccination", 0, 1, "health"),
        ),
    ),
    (
        "property",
        "Housing and property",
        "Federal Service for State Registration",
        (
            ("Registration of ownership of real estate", 2000, 9, "property"),
            ("Cadastral registration of a property", 0, 5, "property"),
            ("Permit for construction", 0, 7, "property"),
        ),
    ),
    (
        "business",
        "Business",
        "Federal Tax Service",
        (
            ("Registration of an individual entrepreneur", 800, 3, "business"),
            ("Registration of a limited liability company", 4000, 3, "business"),
            ("Licence for retail sale of alcohol", 65000, 30, "business"),
        ),
    ),
    (
        "employment",
        "Work and employment",
        "Federal Service for Labour and Employment",
        (
            ("Registration as a job seeker", 0, 1, "employment"),
            ("Electronic employment record", 0, 1, "identity"),
        ),
    ),
    (
        "migration",
        "Migration",
        "Ministry of Internal Affairs",
        (
            ("Residence permit", 5000, 180, "identity"),
            ("Work permit for a foreign citizen", 3500, 10, "identity"),
        ),
    ),
    (
        "weapons",
        "Weapons licences",
        "Federal Service of National Guard Troops",
        (("Licence to purchase a hunting weapon", 500, 30, "identity"),),
    ),
    (
        "environment",
        "Nature and hunting",
        "Ministry of Natural Resources",
        (
            ("Hunting licence", 650, 5, "identity"),
            ("Fishing permit", 0, 3, "identity"),
        ),
    ),
    (
        "culture",
        "Culture and sport",
        "Ministry of Culture",
        (
            ("Pushkin card", 0, 1, "identity"),
            ("Sports qualification rank", 0, 30, "identity"),
        ),
    ),
)

# Variants that multiply base services into the catalog's 500+ types (regional and special
# procedures are separate service types on the real portal).
_VARIANTS = (
    ("", 1.0),
    (" (for a minor)", 1.0),
    (" (urgent procedure)", 2.0),
    (" (duplicate)", 0.5),
    (" via a multifunctional centre", 1.0),
    (" for residents of the Far East", 1.0),
    (" for persons with disabilities", 0.0),
    (" (re-issue after loss)", 1.5),
    (" (change of data)", 1.0),
    (" (in electronic form)", 1.0),
)

FieldSpec = tuple[str, str, bool, dict[str, Any]]
_COMMON: tuple[FieldSpec, ...] = (
    ("applicant_snils", "snils", True, {}),
    ("contact_phone", "phone", True, {}),
)
_FIELD_SETS: dict[str, tuple[FieldSpec, ...]] = {
    "identity": (("passport", "passport", True, {}), ("birth_date", "date", True, {}),
                 ("reason", "choice", True, {"options": ["first_issue", "replacement", "loss"]})),
    "address": (("address", "text", True, {"max_length": 300}),
                ("move_in_date", "date", True, {}),
                ("residents", "integer", True, {"min": 1, "max": 20})),
    "property": (("cadastral_number", "text", True, {"max_length": 40}),
                 ("area_sq_m", "integer", True, {"min": 1, "max": 100000})),
    "business": (("inn", "inn", True, {}), ("activity_code", "text", True, {"max_length": 10}),
                 ("email", "email", False, {})),
    "vehicle": (("plate", "vehicle_plate", True, {}),
                ("vin", "text", True, {"max_length": 17}),
                ("year", "integer", True, {"min": 1950, "max": 2026})),
    "fine": (("resolution_number", "text", True, {"max_length": 25}),
             ("explanation", "text", False, {"max_length": 2000})),
    "tax": (("inn", "inn", True, {}), ("year", "integer", True, {"min": 2019, "max": 2026}),
            ("amount_roubles", "integer", True, {"min": 1, "max": 10_000_000})),
    "family": (("spouse_snils", "snils", False, {}), ("child_birth_date", "date", False, {}),
               ("children", "integer", True, {"min": 0, "max": 15})),
    "education": (("child_snils", "snils", True, {}),
                  ("institution", "text", True, {"max_length": 200}),
                  ("priority", "choice", True, {"options": ["first", "second", "third"]})),
    "health": (("policy_number", "text", True, {"max_length": 16}),
               ("clinic", "text", True, {"max_length": 200}),
               ("home_visit", "boolean", False, {})),
    "employment": (("inn", "inn", False, {}), ("last_employer", "text", True, {"max_length": 200}),
                   ("email", "email", True, {})),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    required: bool
    rules: dict[str, Any]
    pattern: re.Pattern[str] | None

    def to_json(self) -> dict[str, Any]:
        rule, regex, example = FIELD_TYPES[self.type]
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "description": rule,
        }
        if regex is not None:
            out["pattern"] = regex
        out.update(self.rules)
        if self.type == "choice":
            example = self.rules["options"][0]
        elif self.type == "integer":
            example = self.rules.get("min", 0)
        elif self.type == "text":
            example = example[: self.rules.get("max_length", 300)]
        out["example"] = example
        return out

    def check(self, value: Any) -> str | None:
        """None if the value passes, else the message of a field error."""
        t = self.type
        if t == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                return "must be an integer"
            low, high = self.rules.get("min"), self.rules.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                return f"must be between {low} and {high}"
            return None
        if t == "boolean":
            return None if isinstance(value, bool) else "must be true or false"
        if not isinstance(value, str):
            return "must be a string"
        if t == "choice":
            options = self.rules["options"]
            return None if value in options else f"must be one of {', '.join(options)}"
        if not value.strip():
            return "must not be blank"
        max_length = self.rules.get("max_length", 300)
        if len(value) > max_length:
            return f"at most {max_length} characters"
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return f"must match {FIELD_TYPES[t][0]}"
        return None


@dataclass(frozen=True, slots=True)
class Service:
    code: str
    title: str
    category: str
    category_title: str
    department: str
    fee_kopecks: int
    processing_days: int
    fields: tuple[Field, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "category": self.category,
            "department": self.department,
            "fee_kopecks": self.fee_kopecks,
            "processing_days": self.processing_days,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "category_title": self.category_title,
            "online": True,
            "fields": [f.to_json() for f in self.fields],
            "rules": {
                "status_flow": ["submitted", "in_review", "approved|rejected"],
                "rating_criteria": [
                    "service_time",
                    "waiting_time",
                    "courtesy",
                    "comfort",
                    "information",
                ],
            },
        }

    def validate(self, fields: Any) -> list[dict[str, str]]:
        if not isinstance(fields, dict):
            return [{"field": "fields", "message": "must be an object of form fields"}]
        errors = []
        known = {f.name for f in self.fields}
        for name in sorted(set(fields) - known):
            errors.append({"field": f"fields.{name[:64]}", "message": "unknown field"})
        for f in self.fields:
            if f.name not in fields or fields[f.name] is None:
                if f.required:
                    errors.append({"field": f"fields.{f.name}", "message": "required"})
                continue
            problem = f.check(fields[f.name])
            if problem is not None:
                errors.append({"field": f"fields.{f.name}", "message": problem})
        return errors


def _field(name: str, ftype: str, required: bool, rules: dict[str, Any]) -> Field:
    regex = FIELD_TYPES[ftype][1]
    return Field(name, ftype, required, dict(rules), re.compile(regex, re.ASCII) if regex else None)


@functools.cache
def build_catalog() -> tuple[Service, ...]:
    services = []
    code = 10000
    for slug, cat_title, department, bases in _CATEGORIES:
        for title, fee_roubles, days, field_set in bases:
            fields = tuple(_field(*spec) for spec in _COMMON + _FIELD_SETS[field_set])
            for suffix, fee_factor in _VARIANTS:
                code += 1
                services.append(
                    Service(
                        code=str(code),
                        title=title + suffix,
                        category=slug,
                        category_title=cat_title,
                        department=department,
                        fee_kopecks=int(fee_roubles * fee_factor) * 100,
                        processing_days=max(1, days // 2) if "urgent" in suffix else days,
                        fields=fields,
                    )
                )
    return tuple(services)


@functools.cache
def services_by_code() -> dict[str, Service]:
    return {s.code: s for s in build_catalog()}


@functools.cache
def categories() -> tuple[str, ...]:
    return tuple(c[0] for c in _CATEGORIES)


@functools.cache
def _detail_body(code: str) -> bytes:
    return orjson.dumps(services_by_code()[code].detail())


_list_cache: OrderedDict[tuple[str, str, int, int], bytes] = OrderedDict()


def _list_body(q: str, category: str, page: int, per_page: int) -> bytes:
    key = (q, category, page, per_page)
    body = _list_cache.get(key)
    if body is not None:
        _list_cache.move_to_end(key)
        return body
    needle = q.casefold()
    matches = [
        s
        for s in build_catalog()
        if (not category or s.category == category)
        and (not needle or needle in s.title.casefold() or needle in s.category_title.casefold())
    ]
    facets: dict[str, int] = {}
    for s in matches:
        facets[s.category] = facets.get(s.category, 0) + 1
    start = (page - 1) * per_page
    result = page_body([s.summary() for s in matches[start : start + per_page]], page, per_page,
                       len(matches))  # fmt: skip
    result["facets"] = {"category": facets}
    body = orjson.dumps(result)
    _list_cache[key] = body
    if len(_list_cache) > LIST_CACHE_SIZE:
        _list_cache.popitem(last=False)
    return body


async def list_services(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    category = request.query.get("category", "")
    if len(q) > 100:
        raise Problem(400, "invalid-parameter", "q: at most 100 characters",
                      errors=[{"field": "q", "message": "at most 100 characters"}])  # fmt: skip
    if category and category not in categories():
        raise Problem(
            400,
            "invalid-parameter",
            f"unknown category {category[:64]!r}; known: {', '.join(categories())}",
            errors=[{"field": "category", "message": "unknown category"}],
        )
    page, per_page = pagination(request)
    return web.Response(body=_list_body(q, category, page, per_page), content_type=JSON)


async def get_service(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if code not in services_by_code():
        raise Problem(404, "not-found", f"no service with code {code[:32]!r}")
    return web.Response(body=_detail_body(code), content_type=JSON)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/services", list_services)
    app.router.add_get("/api/v1/services/{code}", get_service)
