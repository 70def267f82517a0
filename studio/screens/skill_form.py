"""The skill form: add a skill of any type to an expert, or edit one (including pick / omit)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from studio.edits import (
    SkillFields,
    format_headers,
    join_args,
    join_list,
    parse_headers,
    split_args,
    split_list,
)
from studio.keys import bindings
from studio.screens import fit_form_body, settle_cursors
from studio.session import BASE_SKILL_NAME

TYPE_CHOICES: tuple[tuple[str, str], ...] = (
    ("MCP server started as a command (mcpStdioSkill)", "mcpStdioSkill"),
    ("Remote MCP server over SSE (mcpSseSkill)", "mcpSseSkill"),
    ("Remote MCP server over streamable HTTP (mcpStreamableHttpSkill)", "mcpStreamableHttpSkill"),
    ("Questions answered by the user (interactiveSkill)", "interactiveSkill"),
)

TYPE_CLASS = {
    "mcpStdioSkill": "-stdio",
    "mcpSseSkill": "-sse",
    "mcpStreamableHttpSkill": "-http",
    "interactiveSkill": "-interactive",
}
"""The screen class that shows the fields of each type (see skill_form.tcss)."""

DEFAULT_SCHEMA = '{"type": "object", "properties": {"question": {"type": "string"}}}'


def _is_empty(value: Any) -> bool:
    return value is None or value is False or value in ("", [], {})


class SkillFormScreen(ModalScreen[SkillFields | None]):
    """Add or edit one skill of an expert; dismisses with the fields, or ``None``."""

    CSS_PATH = "skill_form.tcss"
    BINDINGS = bindings("form-submit", "form-cancel")

    def __init__(
        self,
        expert: str,
        original: SkillFields | None,
        *,
        taken: Sequence[str],
        adds_base: bool = False,
        check: Callable[[SkillFields], str | None] | None = None,
    ) -> None:
        """Build the form.

        Args:
            expert: The expert the skill belongs to.
            original: The skill to edit, or ``None`` to add one.
            taken: Names of the expert's skills.
            adds_base: The expert has no skills yet, so ``@perstack/base`` comes along (said
                in the form).
            check: Tries the edit on the file; returns why it would be refused, so the form
                can say so and stay open.
        """
        super().__init__()
        self._expert = expert
        self._original = original
        self._taken = list(taken)
        self._adds_base = adds_base and original is None
        self._check_edit = check

    # Layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        original = self._original
        values: Mapping[str, Any] = original.values if original else {}
        skill_type = original.type if original else "mcpStdioSkill"
        found = values.get("tools")
        tools: dict[str, Any] = found if isinstance(found, dict) else {}
        tool_name, tool = next(iter(tools.items()), ("", {}))
        tool = tool if isinstance(tool, dict) else {}
        title = (
            f"Edit skill {original.name} of {self._expert}"
            if original
            else f"New skill for {self._expert}"
        )

        def text(name: str) -> str:
            value = values.get(name)
            return value if isinstance(value, str) else ""

        def items(name: str) -> str:
            value = values.get(name)
            return join_list(value) if isinstance(value, list) else ""

        with Vertical(id="form-dialog"):
            yield Static(title, id="form-title", markup=False)
            with VerticalScroll(id="form-body"):
                yield Label("Type")
                yield Select(
                    TYPE_CHOICES,
                    value=skill_type if skill_type in TYPE_CLASS else "mcpStdioSkill",
                    allow_blank=False,
                    id="skill-type",
                    disabled=original is not None,
                )
                yield Label("Name (the key under skills)")
                yield Input(
                    original.name if original else "",
                    placeholder="github",
                    id="skill-name",
                    disabled=original is not None,
                )
                if self._adds_base:
                    yield Static(
                        f"{self._expert} has no skills yet: {BASE_SKILL_NAME} (files, exec, "
                        "todos) is added too, since an expert that lists skills needs it.",
                        id="skill-base-note",
                        classes="hint",
                        markup=False,
                    )
                with Vertical(classes="field -for-stdio"):
                    yield Label("Command")
                    yield Input(text("command"), placeholder="npx", id="skill-command")
                    yield Label("Package (or Arguments below, not both)")
                    yield Input(
                        text("packageName"),
                        placeholder="@modelcontextprotocol/server-github",
                        id="skill-package",
                    )
                    yield Label("Arguments (as in a shell)")
                    args = values.get("args")
                    yield Input(
                        join_args(args) if isinstance(args, list) else "",
                        placeholder="-y @modelcontextprotocol/server-github",
                        id="skill-args",
                    )
                    yield Label("Environment variables passed to the server (names)")
                    yield Input(
                        items("requiredEnv"),
                        placeholder="GITHUB_PERSONAL_ACCESS_TOKEN",
                        id="skill-env",
                    )
                    yield Checkbox(
                        "Start on first use once perstack.lock lists its tools (lazyInit)",
                        value=values.get("lazyInit") is True,
                        id="skill-lazy",
                    )
                with Vertical(classes="field -for-sse -for-http"):
                    yield Label("Endpoint (a public https URL)")
                    yield Input(
                        text("endpoint"), placeholder="https://example.com/mcp", id="skill-endpoint"
                    )
                with Vertical(classes="field -for-http"):
                    yield Label("Headers (Name: value; Name: value; ${VAR} reads the environment)")
                    headers = values.get("headers")
                    yield Input(
                        format_headers(headers) if isinstance(headers, dict) else "",
                        placeholder="Authorization: Bearer ${TOKEN}",
                        id="skill-headers",
                    )
                with Vertical(classes="field -for-stdio -for-sse -for-http"):
                    yield Label("Pick: only these tools (empty: all)")
                    yield Input(
                        items("pick"), placeholder="readTextFile, writeTextFile", id="skill-pick"
                    )
                    yield Label("Omit: never these tools")
                    yield Input(items("omit"), placeholder="exec", id="skill-omit")
                    yield Label("Allowed domains when sandboxed")
                    yield Input(
                        items("allowedDomains"),
                        placeholder="api.github.com, *.githubusercontent.com",
                        id="skill-domains",
                    )
                with Vertical(classes="field -for-interactive"):
                    if len(tools) > 1:
                        yield Static(
                            f"This skill has {len(tools)} tools: edit them in the editor.",
                            classes="hint",
                            markup=False,
                        )
                    else:
                        yield Label("Tool name")
                        yield Input(tool_name, placeholder="askUser", id="skill-tool-name")
                        yield Label("Tool description")
                        tool_description = tool.get("description")
                        yield Input(
                            tool_description if isinstance(tool_description, str) else "",
                            placeholder="Ask the user a question",
                            id="skill-tool-description",
                        )
                        yield Label("Input JSON schema")
                        schema = tool.get("inputJsonSchema")
                        yield TextArea(
                            schema if isinstance(schema, str) else DEFAULT_SCHEMA,
                            id="skill-tool-schema",
                            soft_wrap=True,
                            tab_behavior="focus",
                        )
                yield Label("Description (for people; not sent to the model)")
                yield Input(text("description"), id="skill-description")
                yield Label("Rule (added to the expert's system prompt)")
                yield Input(text("rule"), id="skill-rule")
            yield Static("", id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Static("Ctrl+S applies · Esc cancels", classes="hint", markup=False)
                yield Button("Cancel", id="cancel")
                yield Button(
                    "Add skill" if original is None else "Apply", id="submit", variant="primary"
                )

    def on_resize(self) -> None:
        fit_form_body(self)

    def on_mount(self) -> None:
        settle_cursors(self)
        fit_form_body(self)
        self._show_type(self._type())
        self.query_one("#skill-name" if self._original is None else "#skill-description").focus()

    def _type(self) -> str:
        value = self.query_one("#skill-type", Select).value
        return value if isinstance(value, str) else "mcpStdioSkill"

    def _show_type(self, skill_type: str) -> None:
        for name, css_class in TYPE_CLASS.items():
            self.set_class(name == skill_type, css_class)

    @on(Select.Changed, "#skill-type")
    def _type_changed(self, event: Select.Changed) -> None:
        self._show_type(self._type())

    # Reading the form --------------------------------------------------------------------------

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def fields(self) -> SkillFields:
        """What the form holds.

        Raises:
            ValueError: A field cannot be read (unclosed quote, bad header, invalid JSON).
        """
        skill_type = self._type()
        original = self._original.values if self._original else {}
        values: dict[str, Any] = {"type": skill_type}

        def put(name: str, value: Any) -> None:
            # An empty field removes the key, but an empty value already in the file
            # (``pick = []``, ``lazyInit = false``) stays as written.
            old = original.get(name)
            if not _is_empty(value):
                values[name] = value
            elif name in original and _is_empty(old):
                values[name] = old

        if skill_type == "mcpStdioSkill":
            put("command", self._value("skill-command"))
            put("packageName", self._value("skill-package"))
            put("args", split_args(self._value("skill-args")))
            put("requiredEnv", split_list(self._value("skill-env")))
            put("lazyInit", self.query_one("#skill-lazy", Checkbox).value)
        if skill_type in ("mcpSseSkill", "mcpStreamableHttpSkill"):
            put("endpoint", self._value("skill-endpoint"))
        if skill_type == "mcpStreamableHttpSkill":
            put("headers", parse_headers(self._value("skill-headers")))
        if skill_type != "interactiveSkill":
            put("pick", split_list(self._value("skill-pick")))
            put("omit", split_list(self._value("skill-omit")))
            put("allowedDomains", split_list(self._value("skill-domains")))
        elif self.query("#skill-tool-name"):
            name = self._value("skill-tool-name")
            tool: dict[str, Any] = {}
            description = self._value("skill-tool-description")
            if description:
                tool["description"] = description
            tool["inputJsonSchema"] = self.query_one("#skill-tool-schema", TextArea).text
            old_tools = original.get("tools")
            old_tool = next(iter(old_tools.values()), None) if isinstance(old_tools, dict) else None
            if isinstance(old_tool, dict):
                # Keys the form does not show stay as they were.
                tool = {**{k: v for k, v in old_tool.items() if k not in tool}, **tool}
                if not description:
                    tool.pop("description", None)
            if name:
                values["tools"] = {name: tool}
        elif "tools" in original:
            values["tools"] = original["tools"]
        put("description", self._value("skill-description"))
        put("rule", self._value("skill-rule"))
        return SkillFields(name=self._value("skill-name"), values=values)

    def _check(self, fields: SkillFields) -> str | None:
        values = fields.values
        if not fields.name:
            return "Give the skill a name, e.g. github."
        if self._original is None and fields.name in self._taken:
            return f"{self._expert} already has a skill {fields.name!r}."
        if fields.type == "mcpStdioSkill":
            if not values.get("command"):
                return "Give the command that starts the server, e.g. npx or uvx."
            if bool(values.get("packageName")) == bool(values.get("args")):
                return "Give a package or arguments (exactly one of the two)."
        if fields.type in ("mcpSseSkill", "mcpStreamableHttpSkill") and not values.get("endpoint"):
            return "Give the server's endpoint URL."
        if fields.type == "interactiveSkill" and self.query("#skill-tool-name"):
            tools = values.get("tools")
            if not tools:
                return "Name the tool the user answers, e.g. askUser."
            schema = next(iter(tools.values())).get("inputJsonSchema", "")
            try:
                parsed = json.loads(schema)
            except ValueError as error:
                return f"The input JSON schema is not valid JSON: {error}"
            if not isinstance(parsed, dict):
                return 'The input JSON schema must be a JSON object, e.g. {"type": "object"}.'
        return None

    # Actions -----------------------------------------------------------------------------------

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        """Check the form and close with its fields."""
        error = self.query_one("#form-error", Static)
        try:
            fields = self.fields()
        except ValueError as unreadable:
            error.update(str(unreadable))
            return
        problem = self._check(fields)
        if problem is None and self._check_edit is not None:
            problem = self._check_edit(fields)
        if problem:
            error.update(problem)
            return
        self.dismiss(fields)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
