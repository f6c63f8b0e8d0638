"""The AsyncAPI document as one readable, self-contained HTML page (no scripts, no CDN).

For a person deciding how to subscribe: the servers, every channel with what it
carries, who publishes and who consumes it, and each payload as a table of fields.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;background:#fafbfc}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem}
h1{margin:.2rem 0}h2{border-bottom:2px solid #d7dde6;padding-bottom:.3rem;margin-top:2.5rem}
h3{margin:.2rem 0 .4rem}h4{margin:1rem 0 .3rem}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f5;padding:0 .25rem;
border-radius:3px}
article{background:#fff;border:1px solid #d7dde6;border-radius:6px;padding:1rem 1.2rem;margin:1rem 0}
table{border-collapse:collapse;width:100%;margin:.4rem 0;font-size:14px}
th,td{border:1px solid #d7dde6;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5}dt{font-weight:600;margin-top:.4rem}dd{margin-left:1.2rem}
.muted{color:#5b6575}.tag{font-size:12px;background:#e3ecfa;border-radius:3px;padding:0 .3rem}
nav ul{columns:2;padding-left:1.2rem}
"""


def render_asyncapi_html(doc: dict[str, Any]) -> str:
    info = doc.get("info", {})
    title = str(info.get("title", "AsyncAPI"))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — AsyncAPI {_e(doc.get('asyncapi', ''))}</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        f"<h1>{_e(title)} <span class='muted'>{_e(info.get('version', ''))}</span></h1>",
        f"<p class='muted'>AsyncAPI {_e(doc.get('asyncapi', ''))} · machine-readable: "
        "<a href='asyncapi'>JSON</a> · <a href='asyncapi.yaml'>YAML</a></p>",
        _markdown(str(info.get("description", ""))),
        _servers(doc.get("servers", {})),
        _channel_index(doc.get("channels", {})),
        "<h2 id='channels'>Channels</h2>",
        *(_channel(cid, channel, doc) for cid, channel in doc.get("channels", {}).items()),
        "<h2 id='schemas'>Schemas</h2>",
        *(
            _schema_article(name, schema)
            for name, schema in doc.get("components", {}).get("schemas", {}).items()
        ),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _markdown(text: str) -> str:
    """The little Markdown the descriptions use: paragraphs, ``- `` lists and `code`."""
    out: list[str] = []
    bullets: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            bullets.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if bullets:
            out.append("<ul>" + "".join(bullets) + "</ul>")
            bullets = []
        if line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    if bullets:
        out.append("<ul>" + "".join(bullets) + "</ul>")
    return "\n".join(out)


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _servers(servers: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(s.get('protocol', ''))}</td><td><code>{_e(s.get('host', ''))}</code>"
        f"</td><td>{_e(s.get('description', ''))}</td></tr>"
        for name, s in servers.items()
    )
    return (
        "<h2 id='servers'>Servers</h2><table><tr><th>name</th><th>protocol</th><th>host</th>"
        f"<th>description</th></tr>{rows}</table>"
    )


def _channel_index(channels: dict[str, Any]) -> str:
    items = "".join(
        f"<li><a href='#channel-{_e(cid)}'><code>{_e(c.get('address', cid))}</code></a></li>"
        for cid, c in channels.items()
    )
    return f"<nav><h2>Index</h2><ul>{items}</ul></nav>"


def _operations_on(doc: dict[str, Any], channel_id: str, action: str) -> list[dict[str, Any]]:
    ref = f"#/channels/{channel_id}"
    return [
        op
        for op in doc.get("operations", {}).values()
        if op.get("action") == action and op.get("channel", {}).get("$ref") == ref
    ]


def _channel(cid: str, channel: dict[str, Any], doc: dict[str, Any]) -> str:
    publishers = [_e(op.get("title", "")) for op in _operations_on(doc, cid, "send")]
    consumers = [
        f"{_e(op.get('title', ''))} <span class='tag'>durable "
        f"{_e(op.get('bindings', {}).get('nats', {}).get('queue', '?'))}</span>"
        f"<br><span class='muted'>{_e(op.get('summary', ''))}</span>"
        for op in _operations_on(doc, cid, "receive")
    ]
    parameters = "".join(
        f"<li><code>{{{_e(name)}}}</code>: {_e(p.get('description', ''))}</li>"
        for name, p in channel.get("parameters", {}).items()
    )
    messages = "".join(
        _message(_resolve(doc, m), doc) for m in channel.get("messages", {}).values() if isinstance(m, dict)
    )
    return (
        f"<article id='channel-{_e(cid)}'><h3><code>{_e(channel.get('address', cid))}</code></h3>"
        f"<p>{_inline(str(channel.get('description', '')))}</p><dl>"
        f"<dt>Event type</dt><dd><code>{_e(channel.get('title', ''))}</code></dd>"
        f"<dt>Parameters</dt><dd><ul>{parameters}</ul></dd>"
        f"<dt>Published by</dt><dd>{_list(publishers)}</dd>"
        f"<dt>Consumed by</dt><dd>{_list(consumers) if consumers else 'no netweave service'}</dd>"
        f"</dl>{messages}</article>"
    )


def _list(entries: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{e}</li>" for e in entries) + "</ul>"


def _message(message: dict[str, Any], doc: dict[str, Any]) -> str:
    payload = message.get("payload", {})
    parts = [
        f"<h4>Message {_e(message.get('name', ''))} <span class='tag'>{_e(message.get('contentType', ''))}"
        "</span></h4>",
        f"<p>{_inline(str(message.get('summary', '')))}</p>",
    ]
    headers = message.get("headers", {})
    if headers.get("properties"):
        parts.append("<p class='muted'>NATS headers</p>" + _properties_table(headers))
    parts.append("<p class='muted'>Payload</p>")
    for piece in payload.get("allOf", [payload]):
        if "$ref" in piece:
            parts.append(f"<p>A {_type_label(piece)} event, with:</p>")
        else:
            parts.append(_properties_table(piece))
            parts.extend(_referenced_tables(piece, doc))
    return "".join(parts)


def _referenced_tables(schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    """The fields of a payload's referenced parts (``data``) shown in place, one level deep."""
    tables = []
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            target = _resolve(doc, prop)
            tables.append(
                f"<p><code>{_e(name)}</code> is {_type_label(prop)}:</p>{_properties_table(target)}"
            )
    return tables


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = doc
    for key in ref[2:].split("/"):
        target = target.get(key, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def _schema_article(name: str, schema: dict[str, Any]) -> str:
    body = _properties_table(schema) if "properties" in schema else f"<p>{_type_label(schema)}</p>"
    return (
        f"<article id='schema-{_e(name)}'><h3>{_e(name)}</h3>"
        f"<p>{_inline(str(schema.get('description', '')))}</p>{body}</article>"
    )


def _properties_table(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td>{_type_label(prop)}</td>"
        f"<td>{'yes' if name in required else ''}</td><td>{_notes(prop)}</td></tr>"
        for name, prop in schema.get("properties", {}).items()
    )
    return f"<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th></tr>{rows}</table>"


def _type_label(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"<a href='#schema-{_e(name)}'>{_e(name)}</a>"
    for combinator, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " &amp; ")):
        if combinator in schema:
            return joiner.join(_type_label(s) for s in schema[combinator])
    if "const" in schema:
        return f"<code>{_e(repr(schema['const']).strip(chr(39)))}</code>"
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type_label(schema.get('items', {}))}"
    if (
        kind == "object"
        and isinstance(schema.get("additionalProperties"), dict)
        and "properties" not in schema
    ):
        return f"object of {_type_label(schema['additionalProperties'])}"
    label = _e(kind) if kind else "any"
    if "format" in schema:
        label += f" ({_e(schema['format'])})"
    return label


def _notes(schema: dict[str, Any]) -> str:
    notes = []
    if schema.get("description"):
        notes.append(_inline(str(schema["description"])))
    if "enum" in schema:
        notes.append("one of " + ", ".join(f"<code>{_e(v)}</code>" for v in schema["enum"]))
    if "default" in schema and schema["default"] is not None:
        notes.append(f"default <code>{_e(schema['default'])}</code>")
    if isinstance(schema.get("discriminator"), str):
        notes.append(f"which one: by <code>{_e(schema['discriminator'])}</code>")
    return "; ".join(notes)
