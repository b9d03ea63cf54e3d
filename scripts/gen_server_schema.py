#!/usr/bin/env python3
"""Generate python/realtalk/server/_schema.py from the protocol reference.

Reads ``events-ga.json`` and ``events-beta.json`` (default: ``../shared/protocol`` beside
the repository) and writes the client-event schema of both dialects as plain Python data,
for :mod:`realtalk.server._validate`. The output is deterministic and already in the shape
``ruff format`` keeps, so regenerating an unchanged reference reproduces the file byte for
byte::

    .venv/bin/python scripts/gen_server_schema.py                 # rewrite _schema.py
    .venv/bin/python scripts/gen_server_schema.py --output /tmp/x  # write elsewhere

Where the facts come from:

* Structure (fields, required or not, JSON types, enums, nested models, unions) from the
  pydantic-model view of each client event (``client_events[*].model`` and ``models``):
  unlike the TypedDict view it names the element type of every list.
* Whether ``null`` is accepted from the send-side TypedDict view (the package marks a
  field ``Optional`` there only when the API spec makes it nullable; the pydantic models
  make every optional field nullable), plus every field whose description says it "can be
  set to ``null``" (beta ``turn_detection`` and friends, which the TypedDicts omit). A model
  with no TypedDict counterpart accepts ``null`` only where its description says so.
* Numeric ranges and size limits from the docstrings (PROTOCOL.md section 10), listed in
  ``RANGES`` below because they are prose in the reference, not data.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PROTOCOL_DIR = REPO.parent / "shared" / "protocol"
DEFAULT_OUTPUT = REPO / "python" / "realtalk" / "server" / "_schema.py"
LINE = 100

# Documented limits (PROTOCOL.md section 10), by field name; they apply wherever a client
# model has a numeric field of that name. ``rate`` is a literal 24000 in the package; the
# live API reports other rates as a range error ("Expected a value >= 24000"), so it is a
# range here.
RANGES: dict[str, tuple[str, float, float]] = {
    "temperature": ("number", 0.6, 1.2),
    "speed": ("number", 0.25, 1.5),
    "threshold": ("number", 0.0, 1.0),
    "retention_ratio": ("number", 0.0, 1.0),
    "max_output_tokens": ("integer", 1, 4096),
    "max_response_output_tokens": ("integer", 1, 4096),
    "rate": ("integer", 24000, 24000),
}
# ``metadata`` of response.create: at most 16 pairs, keys <= 64 and values <= 512 chars.
METADATA = ("map", ("string", 512), 16, 64)
# A description saying this marks a field as nullable even when its TypedDict does not.
NULL_SENTENCE = re.compile(r"set\s+to\s+`?null`?", re.IGNORECASE)
PRIMITIVES = {"string", "integer", "number", "boolean", "any"}


def shared_prefix(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def split_top(text: str) -> list[str]:
    """Split a readable type (``A | array<B | C> | "x"``) at its top-level ``|``."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current = ""
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "|" and depth == 0 and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


class Dialect:
    """The schema of one dialect, built from its reference file."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.models: dict[str, Any] = reference["models"]
        self.events: dict[str, Any] = reference["client_events"]
        self.by_short: dict[str, list[str]] = {}
        for full in self.models:
            self.by_short.setdefault(full.rsplit(".", 1)[1], []).append(full)
        self.specs: dict[str, dict[str, tuple[bool, Any]]] = {}  # full name -> fields
        self.names: dict[str, str] = {}  # full name -> emitted name

    # -- resolution ----------------------------------------------------------------------

    def resolve(self, short: str, context: str) -> str:
        """The model a short type name in ``context``'s fields refers to: the same
        module's, else the only model of that name, else the one whose module shares the
        longest prefix with the context's (``ServerVad`` in
        ``realtime_transcription_session_audio_input`` is the transcription one)."""
        candidates = [k for k in self.by_short.get(short, []) if self.models[k]["kind"] == "model"]
        module = context.rsplit(".", 1)[0]
        for full in candidates:
            if full.rsplit(".", 1)[0] == module:
                return full
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise SystemExit(f"cannot resolve {short!r} in {context}")
        return max(candidates, key=lambda k: shared_prefix(k, module))

    def typeddict_fields(self, full: str) -> dict[str, Any] | None:
        """The send-side TypedDict fields that correspond to model ``full``."""
        for event in self.events.values():
            if event["model"] == full:
                fields: dict[str, Any] = event["send_param"]["fields"]
                return fields
        module, name = full.rsplit(".", 1)
        own = set(self.models[full]["fields"])
        for candidate in (f"{module}_param.{name}", f"{module}_param.{name}Param"):
            if self.models.get(candidate, {}).get("kind") == "typeddict":
                fields = self.models[candidate]["fields"]
                return fields
        same = [
            k
            for k, m in self.models.items()
            if m["kind"] == "typeddict"
            and k.rsplit(".", 1)[1] in (name, name + "Param")
            and set(m["fields"]) == own
        ]
        return self.models[same[0]]["fields"] if len(same) == 1 else None

    # -- conversion ----------------------------------------------------------------------

    def model(self, full: str) -> str:
        """Convert model ``full`` (once) and return its reference ``("ref", full)``."""
        if full not in self.specs:
            self.specs[full] = {}  # recursion guard
            typed = self.typeddict_fields(full)
            spec: dict[str, tuple[bool, Any]] = {}
            for name, field in self.models[full]["fields"].items():
                node = self.convert(field["type"], full, name)
                nullable = bool(NULL_SENTENCE.search(field.get("description") or ""))
                if typed is not None and name in typed:
                    nullable = nullable or "null" in split_top(typed[name]["type"])
                if nullable:
                    node = union([node, "null"])
                spec[name] = (bool(field["required"]), node)
            self.specs[full] = spec
        return full

    def convert(self, text: str, context: str, field: str) -> Any:
        parts = [p for p in split_top(text) if p != "null"]
        members: list[Any] = []
        literals: list[str] = []
        refs: list[str] = []
        for part in parts:
            if part.startswith('"'):
                literals.append(json.loads(part))
            elif part.startswith("array<"):
                members.append(("array", self.convert(part[6:-1], context, field)))
            elif part.startswith("object<string, "):
                value = self.convert(part[len("object<string, ") : -1], context, field)
                limited = field == "metadata" and value == "string"
                members.append(METADATA if limited else ("map", value))
            elif re.fullmatch(r"-?\d+", part):
                if field not in RANGES:
                    raise SystemExit(f"numeric literal {part} in {context}.{field}")
            elif part in PRIMITIVES:
                members.append(part)
            else:
                refs.append(self.model(self.resolve(part, context)))
        if field in RANGES:
            kind, lo, hi = RANGES[field]
            if field == "rate":
                members.append(kind)
            if kind not in members:
                raise SystemExit(f"range for non-{kind} field {context}.{field}: {text}")
            members = [(kind, lo, hi) if m == kind else m for m in members]
        if "string" in members:
            literals = []  # an open set of strings: the listed values are only examples
        if literals:
            members.insert(0, ("enum", *literals))
        if refs:
            members.append(self.tagged(refs))
        return union(members)

    def tagged(self, refs: list[str]) -> Any:
        """One node for a union of models: ``("tagged", field, {value: node})`` when all
        members carry a one-value literal ``field`` (``type`` first, then ``role``), nested
        when a value is shared (GA ``message`` items are told apart by ``role``)."""
        if len(refs) == 1:
            return ref(refs[0])
        for name in discriminators(self.models, refs):
            groups: dict[str, list[str]] = {}
            for full in refs:
                value = json.loads(split_top(self.models[full]["fields"][name]["type"])[0])
                groups.setdefault(value, []).append(full)
            if len(groups) > 1:
                return ("tagged", name, {v: self.tagged(g) for v, g in groups.items()})
        return ("union", *(ref(r) for r in refs))

    # -- naming and output -----------------------------------------------------------------

    def assign_names(self) -> None:
        """Short class names; a clash between different structures is resolved by
        prefixing the module's main class name (``...UserMessage.Content``)."""
        by_short: dict[str, list[str]] = {}
        for full in self.specs:
            by_short.setdefault(full.rsplit(".", 1)[1], []).append(full)
        for short, fulls in by_short.items():
            shapes = {repr(self.specs[f]) for f in fulls}
            for full in fulls:
                if len(shapes) == 1:
                    self.names[full] = short
                else:
                    module = full.rsplit(".", 2)[1]
                    camel = "".join(w.capitalize() for w in module.split("_"))
                    self.names[full] = f"{camel}.{short}"

    def rename(self, node: Any) -> Any:
        if isinstance(node, Ref):
            return self.names[node.full]
        if isinstance(node, tuple):
            return tuple(self.rename(n) for n in node)
        if isinstance(node, dict):
            return {k: self.rename(v) for k, v in node.items()}
        return node

    def build(self) -> tuple[dict[str, str], dict[str, dict[str, tuple[bool, Any]]]]:
        roots = {t: self.model(e["model"]) for t, e in sorted(self.events.items())}
        self.assign_names()
        events = {t: self.names[full] for t, full in roots.items()}
        models: dict[str, dict[str, tuple[bool, Any]]] = {}
        for full, spec in self.specs.items():
            name = self.names[full]
            renamed = {k: (req, self.rename(node)) for k, (req, node) in spec.items()}
            if name in models and models[name] != renamed:
                raise SystemExit(f"two different models named {name}")
            models[name] = renamed
        return events, dict(sorted(models.items()))


class Ref:
    """A model reference, renamed to its emitted name once all models are known."""

    __slots__ = ("full",)

    def __init__(self, full: str) -> None:
        self.full = full

    def __repr__(self) -> str:
        return f"Ref({self.full})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.full == self.full

    def __hash__(self) -> int:
        return hash(self.full)


def ref(full: str) -> Ref:
    return Ref(full)


def union(members: list[Any]) -> Any:
    flat: list[Any] = []
    for m in members:
        for item in m[1:] if isinstance(m, tuple) and m[0] == "union" else (m,):
            if item not in flat:
                flat.append(item)
    return flat[0] if len(flat) == 1 else ("union", *flat)


def discriminators(models: dict[str, Any], refs: list[str]) -> Iterator[str]:
    """Fields that every model in ``refs`` has with a single string literal as type."""
    common: list[str] | None = None
    for full in refs:
        names = [
            name
            for name, f in models[full]["fields"].items()
            if len([p for p in split_top(f["type"]) if p != "null"]) == 1
            and split_top(f["type"])[0].startswith('"')
        ]
        common = names if common is None else [n for n in common if n in names]
    ordered = sorted(common or [], key=lambda n: (n not in ("type", "role"), n != "type", n))
    yield from ordered


# --- output ---------------------------------------------------------------------------------


def flat(value: Any) -> str:
    if isinstance(value, tuple):
        inner = ", ".join(flat(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flat(k)}: {flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return repr(value)


def pretty(value: Any, indent: int, prefix: str, suffix: str) -> list[str]:
    """Lines for ``prefix + value + suffix`` at ``indent``, in ruff format's layout: one
    line when it fits in LINE columns, else the brackets exploded one element per line
    with a trailing comma."""
    one = " " * indent + prefix + flat(value) + suffix
    if len(one) <= LINE or not isinstance(value, tuple | dict) or not value:
        return [one]
    pad = " " * indent
    if isinstance(value, dict):
        lines = [f"{pad}{prefix}{{"]
        for k, v in value.items():
            lines += pretty(v, indent + 4, f"{flat(k)}: ", ",")
        return [*lines, f"{pad}}}{suffix}"]
    lines = [f"{pad}{prefix}("]
    for v in value:
        lines += pretty(v, indent + 4, "", ",")
    return [*lines, f"{pad}){suffix}"]


HEADER = '''\
# GENERATED by scripts/gen_server_schema.py from ../shared/protocol/events-{ga,beta}.json.
# Do not edit by hand; regenerate with: .venv/bin/python scripts/gen_server_schema.py
"""The shape of every client event of both Realtime dialects, as plain data.

This module owns nothing but data: the schema :mod:`realtalk.server._validate` checks client
events against. It must never hold logic, never be edited by hand (the generator's test
checks that it is exactly what the generator writes), and never import ``openai``.

``GA_EVENTS`` / ``BETA_EVENTS`` map each client event ``type`` to its model;
``GA_MODELS`` / ``BETA_MODELS`` map a model name to its fields, ``name: (required, node)``
(see the generator's docstring for where types, nullability and ranges come from).
A node is

* ``"string"``, ``"integer"``, ``"number"`` (an integer or a decimal), ``"boolean"``,
  ``"null"``, ``"any"`` (any JSON value);
* a model name (capitalised): a JSON object with exactly that model's fields;
* ``("enum", v1, v2, ...)``: one of these strings;
* ``("integer", lo, hi)`` / ``("number", lo, hi)``: a documented range, inclusive;
* ``("string", max_len)``: a string of at most ``max_len`` characters;
* ``("array", node)``; ``("map", node)`` (any keys) or ``("map", node, max_props,
  max_key_len)``;
* ``("union", node, ...)``: any member (``"null"`` among them means null is accepted);
* ``("tagged", field, {value: node})``: objects told apart by the string ``field``.
"""

from typing import Any, Final

Node = Any
"""A schema node: a type name, a model name, or a tuple as described above."""
'''


def render(schemas: dict[str, tuple[dict[str, str], dict[str, Any]]]) -> str:
    out = [HEADER]
    for dialect, (events, models) in schemas.items():
        upper = dialect.upper()
        out.append("")
        out += pretty(events, 0, f"{upper}_EVENTS: Final[dict[str, str]] = ", "")
        out.append("")
        out.append(f"{upper}_MODELS: Final[dict[str, dict[str, tuple[bool, Node]]]] = {{")
        for name, fields in models.items():
            out.append(f"    {flat(name)}: {{")
            for field, spec in fields.items():
                out += pretty(spec, 8, f"{flat(field)}: ", ",")
            out.append("    },")
        out.append("}")
    return "\n".join(out) + "\n"


def extend(dialect: str, models: dict[str, dict[str, tuple[bool, Any]]]) -> None:
    """What the reference documents but the package's types leave out: GA
    ``response.create`` ``input`` also takes ``{"type": "item_reference", "id": ...}``
    (PROTOCOL.md section 5.2, and the field's own description: "this can include
    references to items that previously appeared in the session using their id")."""
    if dialect != "ga":
        return
    required, node = models["RealtimeResponseCreateParams"]["input"]
    if node[0] != "array" or node[1][:2] != ("tagged", "type"):
        raise SystemExit(f"GA response.input changed shape: {node}")
    tags = {**node[1][2], "item_reference": "ItemReference"}
    models["RealtimeResponseCreateParams"]["input"] = (
        required,
        ("array", ("tagged", "type", tags)),
    )
    models["ItemReference"] = {"id": (True, "string"), "type": (True, ("enum", "item_reference"))}


def generate(protocol_dir: Path) -> str:
    schemas = {}
    for dialect in ("ga", "beta"):
        reference = json.loads((protocol_dir / f"events-{dialect}.json").read_text("utf-8"))
        events, models = Dialect(reference).build()
        extend(dialect, models)
        schemas[dialect] = (events, dict(sorted(models.items())))
    return render(schemas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol-dir", type=Path, default=DEFAULT_PROTOCOL_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = generate(args.protocol_dir)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.splitlines())} lines)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
