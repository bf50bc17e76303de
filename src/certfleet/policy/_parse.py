"""Policy documents in YAML: parsed strictly, every mistake reported with its line.

::

    rules:
      - name: strong-keys            # required, unique
        key_types: [ec-p256, rsa-3072]
        severity: high               # low | medium | high (default) | critical
        enforce: true                # false: report, never refuse
        scope: all                   # all (default) | issuance | inventory
        issued_from: 2026-03-15      # only certificates whose notBefore is on or after
        issued_before: 2027-03-15    # ... and before this day (UTC)
        expires_from: 2031-01-01     # only certificates whose notAfter is on or after
    presets: [cabf-tls]              # shipped rule packs, layered after these rules
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Callable
from typing import Any

import yaml
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier, SignatureAlgorithmOID

from certfleet.policy._checks import (
    AllowedIssuers,
    AllowedNames,
    Check,
    DeniedNames,
    IpRanges,
    KeyTypes,
    MaxValidity,
    RequiredEkus,
    SignatureAlgorithms,
    SpiffeIdPrefixes,
)
from certfleet.policy._matching import NamePattern, parse_network
from certfleet.policy._rules import Policy, Rule, RuleScope, RuleSeverity
from certfleet.policy.errors import PolicyParseError
from certfleet.policy.presets import PRESET_NAMES, preset_document

__all__ = ["CHECK_KEYS", "RULE_KEYS", "parse_policy"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_KEY_TYPE = re.compile(
    r"^(rsa-(1024|2048|3072|4096|6144|8192)|ec-p(256|384|521)|ed25519|ed448|ml-dsa-(44|65|87))$"
)
_MAX_DOCUMENT_BYTES = 1_000_000


def _oid_names(holder: type) -> dict[str, ObjectIdentifier]:
    found: dict[str, ObjectIdentifier] = {}
    for value in vars(holder).values():
        if isinstance(value, ObjectIdentifier):
            found[getattr(value, "_name", value.dotted_string)] = value
    return found


_SIGNATURES = _oid_names(SignatureAlgorithmOID)
_EKUS = _oid_names(ExtendedKeyUsageOID)


class _Located(dict[Any, Any]):
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Located:
    loader.flatten_mapping(node)
    mapping = _Located()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise _Problem(line, f"key {key!r} is not a string")
        if key in mapping:
            # PyYAML would keep the last silently: a rule whose first setting is ignored.
            raise _Problem(line, f"duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = line
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Problem(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _strings(value: Any, key: str, line: int) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _Problem(line, f"{key} must be a non-empty list")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise _Problem(line, f"{key}: {item!r} is not a non-empty string (quote it)")
    return [str(v).strip() for v in value]


def _key_types(value: Any, line: int) -> Check:
    items = [v.lower() for v in _strings(value, "key_types", line)]
    for item in items:
        if not _KEY_TYPE.match(item):
            raise _Problem(
                line, f"key_types: unknown key type {item!r} (e.g. ec-p256, rsa-3072, ed25519, ml-dsa-65)"
            )
    return KeyTypes(tuple(items))


def _max_validity(value: Any, line: int) -> Check:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Problem(line, f"max_validity_days must be a whole number of days, at least 1, not {value!r}")
    return MaxValidity(value)


def _patterns(value: Any, key: str, line: int) -> tuple[NamePattern, ...]:
    out = []
    for item in _strings(value, key, line):
        try:
            out.append(NamePattern.parse(item))
        except ValueError as exc:
            raise _Problem(line, f"{key}: {exc}") from None
    return tuple(out)


def _spiffe_prefixes(value: Any, line: int) -> tuple[str, ...]:
    items = _strings(value, "spiffe_id_prefixes", line)
    for item in items:
        authority = item.removeprefix("spiffe://").partition("/")[0]
        if not item.startswith("spiffe://") or not authority or item.endswith("/"):
            raise _Problem(
                line,
                f"spiffe_id_prefixes: {item!r} is not a SPIFFE ID prefix "
                "(spiffe://TD[/path], no trailing '/')",
            )
    return tuple(items)


def _ip_ranges(value: Any, line: int) -> Check:
    try:
        return IpRanges(tuple(parse_network(v) for v in _strings(value, "ip_ranges", line)))
    except ValueError as exc:
        raise _Problem(line, f"ip_ranges: {exc}") from None


def _known(value: Any, key: str, line: int, known: dict[str, ObjectIdentifier]) -> list[tuple[str, str]]:
    by_folded = {name.lower(): name for name in known}
    by_dotted = {oid.dotted_string: name for name, oid in known.items()}
    out = []
    for item in _strings(value, key, line):
        if item.lower() in by_folded:
            name = by_folded[item.lower()]
            out.append((known[name].dotted_string, name))
        elif item in by_dotted or re.fullmatch(r"[0-2](\.\d+)+", item):
            out.append((item, by_dotted.get(item, item)))
        else:
            close = difflib.get_close_matches(item, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (one of {', '.join(sorted(known))})"
            raise _Problem(line, f"{key}: unknown {item!r}{hint}")
    return out


_CHECKS: dict[str, Callable[[Any, int], Check]] = {
    "key_types": _key_types,
    "max_validity_days": _max_validity,
    "allowed_names": lambda v, line: AllowedNames(_patterns(v, "allowed_names", line)),
    "denied_names": lambda v, line: DeniedNames(_patterns(v, "denied_names", line)),
    "ip_ranges": _ip_ranges,
    "allowed_issuers": lambda v, line: AllowedIssuers(tuple(_strings(v, "allowed_issuers", line))),
    "signature_algorithms": lambda v, line: SignatureAlgorithms(
        tuple(name for _, name in _known(v, "signature_algorithms", line, _SIGNATURES))
    ),
    "required_ekus": lambda v, line: RequiredEkus(tuple(_known(v, "required_ekus", line, _EKUS))),
    "spiffe_id_prefixes": lambda v, line: SpiffeIdPrefixes(_spiffe_prefixes(v, line)),
}
CHECK_KEYS = tuple(_CHECKS)
RULE_KEYS = (
    "name",
    "description",
    "severity",
    "enforce",
    "scope",
    "profiles",
    "team",
    "issued_from",
    "issued_before",
    "expires_from",
    *CHECK_KEYS,
)
_TOP_LEVEL_KEYS = ("rules", "presets")


def _date(raw: _Located, key: str) -> dt.date | None:
    value = raw.get(key)
    if value is None:
        return None
    # YAML reads an unquoted 2026-03-15 as a date; a quoted one is a string.
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = dt.date.fromisoformat(value)
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise _Problem(raw.key_lines[key], f"{key} must be a date (YYYY-MM-DD), not {value!r}")
    return value


def _choice(value: Any, key: str, line: int, kind: type[RuleSeverity] | type[RuleScope]) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise _Problem(line, f"{key} must be one of {allowed}, not {value!r}") from None


def _rule(raw: Any, index: int, line: int, seen: set[str]) -> Rule:
    if not isinstance(raw, _Located):
        raise _Problem(line, f"rules[{index}] must be a mapping with a name and checks")
    lines = raw.key_lines
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _Problem(
            lines.get("name", raw.line),
            f"rules[{index}] needs a name: letters, digits, '.', '_' or '-', at most 100 characters",
        )
    where = f"rule {name!r}"
    if name in seen:
        raise _Problem(lines["name"], f"{where}: the name is already used by another rule")
    seen.add(name)
    for key in raw:
        if key not in RULE_KEYS:
            close = difflib.get_close_matches(key, RULE_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _Problem(lines[key], f"{where}: unknown key {key!r}{hint}")
    try:
        return _build(raw, name)
    except _Problem as problem:
        raise _Problem(problem.line, f"{where}: {problem.message}") from None


def _build(raw: _Located, name: str) -> Rule:
    lines = raw.key_lines
    checks = tuple(_CHECKS[key](raw[key], lines[key]) for key in CHECK_KEYS if key in raw)
    if not checks:
        raise _Problem(raw.line, f"checks nothing: give at least one of {', '.join(CHECK_KEYS)}")
    enforce = raw.get("enforce", True)
    if not isinstance(enforce, bool):
        raise _Problem(lines["enforce"], "enforce must be true or false")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _Problem(lines["description"], "description must be a string")
    team = raw.get("team")
    if team is not None and not isinstance(team, str | list):
        # YAML 1.1 reads a bare no, off or 1 as a boolean or number: say so.
        raise _Problem(lines["team"], f"team must be a string or a list of strings, not {team!r} (quote it)")
    teams = [team] if isinstance(team, str) else team
    return Rule(
        name=name,
        checks=checks,
        severity=_choice(
            raw.get("severity", "high"), "severity", lines.get("severity", raw.line), RuleSeverity
        ),
        enforce=enforce,
        scope=_choice(raw.get("scope", "all"), "scope", lines.get("scope", raw.line), RuleScope),
        profiles=tuple(_strings(raw["profiles"], "profiles", lines["profiles"])) if "profiles" in raw else (),
        teams=tuple(_strings(teams, "team", lines["team"])) if team is not None else (),
        description=description,
        issued_from=_date(raw, "issued_from"),
        issued_before=_date(raw, "issued_before"),
        expires_from=_date(raw, "expires_from"),
    )


def _presets(value: Any, line: int, seen: set[str]) -> list[Rule]:
    """The rules of each named preset, after the document's own: a certificate must meet
    every rule, so layering never loosens a team's rule and the stricter always wins."""
    rules: list[Rule] = []
    for name in _strings(value, "presets", line):
        if name not in PRESET_NAMES:
            close = difflib.get_close_matches(name, PRESET_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (one of {', '.join(PRESET_NAMES)})"
            raise _Problem(line, f"presets: unknown preset {name!r}{hint}")
        for rule in _parse(preset_document(name), allow_presets=False).rules:
            if rule.name in seen:
                raise _Problem(line, f"presets: {name}: rule {rule.name!r} is already defined")
            seen.add(rule.name)
            rules.append(dataclasses.replace(rule, preset=name))
    return rules


def _parse(text: str, *, allow_presets: bool = True) -> Policy:
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise _Problem(mark.line + 1 if mark else None, f"invalid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise _Problem(None, f"invalid YAML: {' '.join(str(exc).split())}") from None
    if document is None:
        raise _Problem(None, "empty policy: expected a mapping with 'rules'")
    if not isinstance(document, _Located):
        raise _Problem(1, "a policy is a mapping with 'rules' (and 'presets')")
    allowed = _TOP_LEVEL_KEYS if allow_presets else ("rules",)
    for key in document:
        if key not in allowed:
            expected = " or ".join(repr(k) for k in allowed)
            raise _Problem(document.key_lines[key], f"unknown top-level key {key!r} (expected {expected})")
    raw_rules = document.get("rules")
    line = document.key_lines.get("rules", 1)
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        raise _Problem(line, "rules must be a list")
    seen: set[str] = set()
    rules = []
    for index, raw in enumerate(raw_rules):
        rule_line = raw.line if isinstance(raw, _Located) else line
        rules.append(_rule(raw, index, rule_line, seen))
    if "presets" in document:
        rules.extend(_presets(document["presets"], document.key_lines["presets"], seen))
    return Policy(tuple(rules))


def parse_policy(text: str | bytes, *, source: str = "policy") -> Policy:
    """Parse a policy document. Raises :class:`PolicyParseError` naming the source and line
    of the first mistake: unknown keys, wrong types, unknown key types or algorithms."""
    if len(text) > _MAX_DOCUMENT_BYTES:
        raise PolicyParseError(source, None, f"larger than {_MAX_DOCUMENT_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyParseError(source, None, f"not UTF-8 text (byte {exc.start})") from None
    try:
        return _parse(text)
    except _Problem as problem:
        raise PolicyParseError(source, problem.line, problem.message) from None
