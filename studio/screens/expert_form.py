"""The expert form: add an expert, or edit one's key, description, instruction and delegates."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static, TextArea

from studio.edits import ExpertFields, join_list, split_list
from studio.keys import bindings
from studio.screens import fit_form_body, settle_cursors


def check_expert(
    fields: ExpertFields, *, taken: Sequence[str], original_key: str | None
) -> str | None:
    """Why the form cannot be applied, or ``None``.

    Args:
        fields: What the form holds.
        taken: Keys of the experts already in the file.
        original_key: The key being edited (``None`` when adding).
    """
    from runtime.config import EXPERT_KEY_RE, EXPERT_NAME_RE, SEMVER_RE, TAG_RE

    if not fields.key:
        return "Give the expert a key, e.g. my-expert."
    if not EXPERT_NAME_RE.match(fields.key):
        return (
            f"{fields.key!r} is not a valid expert key: use lowercase letters, digits, '-' and "
            "'_', optionally prefixed by @scope/."
        )
    if fields.key != original_key and fields.key in taken:
        return f"An expert {fields.key!r} already exists."
    if not fields.instruction.strip():
        return "Write an instruction: it is the expert's system prompt, and it is required."
    if fields.version and not SEMVER_RE.match(fields.version):
        return f"Version {fields.version!r} is not a semantic version like 1.0.0."
    for delegate in fields.delegates:
        if not EXPERT_KEY_RE.match(delegate):
            return f"Delegate {delegate!r} is not a valid expert key."
        if delegate == fields.key:
            return "An expert cannot delegate to itself."
    for tag in fields.tags:
        if not TAG_RE.match(tag):
            return f"Tag {tag!r} is invalid: use lowercase letters, digits, '-' and '_'."
    return None


class ExpertFormScreen(ModalScreen[ExpertFields | None]):
    """Add or edit an expert; dismisses with the form's fields, or ``None`` when cancelled."""

    CSS_PATH = "expert_form.tcss"
    BINDINGS = bindings("form-submit", "form-cancel")

    def __init__(
        self,
        original: ExpertFields | None,
        *,
        experts: Sequence[str],
        check: Callable[[ExpertFields], str | None] | None = None,
    ) -> None:
        """Build the form.

        Args:
            original: The expert to edit, or ``None`` to add one.
            experts: Keys of every expert in the file (offered as delegates).
            check: Tries the edit on the file; returns why it would be refused, so the form
                can say so and stay open.
        """
        super().__init__()
        self._original = original
        self._experts = list(experts)
        self._check_edit = check

    def compose(self) -> ComposeResult:
        original = self._original
        key = original.key if original else ""
        local = [expert for expert in self._experts if expert != key]
        chosen = set(original.delegates) if original else set()
        others = [
            delegate
            for delegate in (original.delegates if original else ())
            if delegate not in local
        ]
        title = f"Edit expert {key}" if original else "New expert"
        with Vertical(id="form-dialog"):
            yield Static(title, id="form-title", markup=False)
            with VerticalScroll(id="form-body"):
                with Horizontal(classes="row"):
                    with Vertical(classes="field -wide"):
                        yield Label("Key")
                        yield Input(key, placeholder="my-expert", id="expert-key")
                    with Vertical(classes="field"):
                        yield Label("Version")
                        yield Input(
                            (original.version or "") if original else "",
                            placeholder="1.0.0",
                            id="expert-version",
                        )
                yield Label("Description (shown to experts that delegate to this one)")
                yield Input(
                    (original.description or "") if original else "",
                    placeholder="What this expert does, in a sentence",
                    id="expert-description",
                )
                yield Label("Instruction (the expert's system prompt; several lines are fine)")
                yield TextArea(
                    original.instruction if original else "",
                    id="expert-instruction",
                    soft_wrap=True,
                    tab_behavior="focus",
                    show_line_numbers=False,
                )
                yield Label("Delegates in this file")
                if local:
                    yield SelectionList[str](
                        *[(expert, expert, expert in chosen) for expert in local],
                        id="expert-delegates",
                    )
                else:
                    yield Static(
                        "No other experts yet.", id="no-delegates", classes="hint", markup=False
                    )
                yield Label("Other delegates (registry keys such as @org/expert, comma-separated)")
                yield Input(join_list(others), placeholder="@org/expert", id="expert-other")
                yield Label("Tags (comma-separated)")
                yield Input(
                    join_list(original.tags) if original else "",
                    placeholder="games, writing",
                    id="expert-tags",
                )
            yield Static("", id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Static("Ctrl+S applies · Esc cancels", classes="hint", markup=False)
                yield Button("Cancel", id="cancel")
                yield Button(
                    "Add expert" if original is None else "Apply", id="submit", variant="primary"
                )

    def on_resize(self) -> None:
        fit_form_body(self)

    def on_mount(self) -> None:
        settle_cursors(self)
        fit_form_body(self)
        target = "#expert-instruction" if self._original else "#expert-key"
        self.query_one(target).focus()

    def fields(self) -> ExpertFields:
        """What the form holds now."""
        delegates: list[str] = []
        if self.query("#expert-delegates"):
            delegates += self.query_one("#expert-delegates", SelectionList).selected
        for delegate in split_list(self.query_one("#expert-other", Input).value):
            if delegate not in delegates:
                delegates.append(delegate)
        # Keep the order the file had, new ones at the end: a reordered list is a changed line.
        if self._original:
            before = [item for item in self._original.delegates if item in delegates]
            delegates = before + [item for item in delegates if item not in before]
        description = self.query_one("#expert-description", Input).value.strip()
        version = self.query_one("#expert-version", Input).value.strip()
        # An empty field removes the key, unless the file had it empty already.
        if not description and self._original and self._original.description == "":
            description_value: str | None = ""
        else:
            description_value = description or None
        return ExpertFields(
            key=self.query_one("#expert-key", Input).value.strip(),
            instruction=self.query_one("#expert-instruction", TextArea).text,
            description=description_value,
            version=version or None,
            delegates=tuple(delegates),
            tags=tuple(split_list(self.query_one("#expert-tags", Input).value)),
        )

    @on(Input.Submitted)
    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        """Check the form and close with its fields."""
        fields = self.fields()
        problem = check_expert(
            fields,
            taken=self._experts,
            original_key=self._original.key if self._original else None,
        )
        if problem is None and self._check_edit is not None:
            problem = self._check_edit(fields)
        if problem:
            self.query_one("#form-error", Static).update(problem)
            return
        self.dismiss(fields)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
