"""The forms and dialogs that edit the team: experts, their skills and delegates, the model.

:class:`TeamForms` opens a form (or a prompt, or a confirmation) over the main screen and applies
what it returns to the editor pane's text as one structured edit. It serves the team tree's keys,
the main screen's bindings and the command palette alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from studio.commands import PaletteCommand
from studio.edits import ExpertFields, SkillFields, apply_expert, apply_skill
from studio.session import BASE_SKILL_NAME
from studio.settings import ask_first

if TYPE_CHECKING:
    from runtime.config import ConfigDocument
    from studio.session import TeamOutline
    from studio.widgets.editor_pane import EditorPane
    from studio.widgets.expert_tree import TreeAction, TreeItem

KNOWN_MODELS = (
    "claude-sonnet-4-5",
    "claude-opus-4-1",
    "claude-haiku-4-5",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "o4-mini",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "deepseek-chat",
)
"""Offered as completions in the model prompt (any litellm model id is accepted)."""


class TeamForms:
    """Edits of the team through forms, applied to ``pane``'s text.

    Args:
        pane: The editor pane whose text the edits change.
        added: Called with the key of an expert a form added (to select it once it is drawn).
    """

    def __init__(self, pane: EditorPane, *, added: Callable[[str], None]) -> None:
        self.pane = pane
        self._added = added

    def for_tree_action(self, action: TreeAction, item: TreeItem | None) -> None:
        """Do what a key of the team tree asks for the selected item."""
        pane = self.pane
        if action == "add-expert" or item is None or item.kind == "empty":
            if action in ("add-expert", "edit"):
                self.new_expert()
            else:
                pane.notify("Add an expert first (a).", title="No expert selected")
            return
        if item.kind == "model":
            if action == "edit":
                self.edit_model()
            elif action == "delete":
                pane.edit(
                    lambda document: document.set_top_level("model", None),
                    done="Model removed (the default applies).",
                )
            return
        expert = item.expert
        if action == "add-skill":
            self.add_skill(expert)
        elif action == "rename":
            self.rename_expert(expert)
        elif action == "edit":
            if item.kind == "skill":
                self.edit_skill(expert, item.name)
            else:
                self.edit_expert(expert)
        elif action == "delete":
            if item.kind == "skill":
                self.remove_skill(expert, item.name)
            elif item.kind == "delegate":
                self.remove_delegate(expert, item.name)
            else:
                self.delete_expert(expert)

    # experts -----------------------------------------------------------------------------------

    def new_expert(self) -> None:
        """Open the expert form to add an expert."""
        pane = self.pane
        if not pane.parses():
            return
        from studio.screens.expert_form import ExpertFormScreen

        def added(fields: ExpertFields | None) -> None:
            if fields is None:
                return

            def change(document: ConfigDocument) -> None:
                apply_expert(document, fields, None)

            if pane.edit(change, done=f"Added expert {fields.key}."):
                self._added(fields.key)

        pane.app.push_screen(
            ExpertFormScreen(
                None,
                experts=pane.expert_keys(),
                check=lambda fields: pane.check(
                    lambda document: apply_expert(document, fields, None)
                ),
            ),
            added,
        )

    def edit_expert(self, key: str) -> None:
        """Open the expert form on ``key``."""
        pane = self.pane
        table = pane.table(key)
        if table is None:
            return
        from studio.screens.expert_form import ExpertFormScreen

        original = ExpertFields.from_table(key, table)

        def edited(fields: ExpertFields | None) -> None:
            if fields is None or fields == original:
                return

            def change(document: ConfigDocument) -> None:
                apply_expert(document, fields, original)

            pane.edit(change, done=f"Updated expert {fields.key}.")

        pane.app.push_screen(
            ExpertFormScreen(
                original,
                experts=pane.expert_keys(),
                check=lambda fields: pane.check(
                    lambda document: apply_expert(document, fields, original)
                ),
            ),
            edited,
        )

    def rename_expert(self, key: str) -> None:
        """Ask for a new key for ``key``; delegates lists that name it follow."""
        pane = self.pane
        if not pane.parses():
            return
        from runtime.config import EXPERT_NAME_RE
        from studio.screens.prompt import PromptModal

        taken = set(pane.expert_keys())

        def check(value: str) -> str | None:
            if not EXPERT_NAME_RE.match(value):
                return (
                    f"{value!r} is not a valid expert key: use lowercase letters, digits, '-' "
                    "and '_', optionally prefixed by @scope/."
                )
            if value != key and value in taken:
                return f"An expert {value!r} already exists."
            return None

        def renamed(value: str | None) -> None:
            if not value or value == key:
                return
            pane.edit(
                lambda document: document.rename_expert(key, value),
                done=f"Renamed {key} to {value}.",
            )

        pane.app.push_screen(
            PromptModal(
                f"Rename expert {key}",
                "New key",
                value=key,
                check=check,
                help="Delegates lists that name this expert are updated too.",
                submit_label="Rename",
            ),
            renamed,
        )

    def delete_expert(self, key: str) -> None:
        """Ask, then delete ``key`` with its skills."""
        pane = self.pane
        if not pane.parses():
            return
        from studio.screens.confirm import ConfirmModal

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            updated: list[str] = []

            def change(document: ConfigDocument) -> None:
                updated.extend(document.delete_expert(key))

            if pane.edit(change, done=f"Deleted expert {key}.") and updated:
                pane.notify(
                    f"Also removed it from the delegates of {', '.join(updated)}.",
                    title="Delegates updated",
                )

        ask_first(
            pane.app,
            "delete_expert",
            ConfirmModal(
                f"Delete expert {key}?",
                f"Its table and skills are removed from {pane.label} (undo with Ctrl+Z in the "
                "editor until you save). Delegates lists that name it are updated.",
                confirm_label="Delete",
                danger=True,
            ),
            confirmed,
        )

    def remove_delegate(self, expert: str, delegate: str) -> None:
        """Take ``delegate`` out of ``expert``'s delegates."""
        table = self.pane.table(expert)
        if table is None:
            return
        original = ExpertFields.from_table(expert, table)
        fields = replace(
            original, delegates=tuple(item for item in original.delegates if item != delegate)
        )
        self.pane.edit(
            lambda document: apply_expert(document, fields, original),
            done=f"{expert} no longer delegates to {delegate}.",
        )

    # the model ---------------------------------------------------------------------------------

    def edit_model(self) -> None:
        """Ask for the model of the whole file (empty: the default)."""
        pane = self.pane
        if not pane.parses():
            return
        from studio.screens.prompt import PromptModal

        current = pane.outline.model if pane.outline else None

        def chosen(value: str | None) -> None:
            if value is None or value == (current or ""):
                return
            pane.edit(
                lambda document: document.set_top_level("model", value or None),
                done=f"Model set to {value}." if value else "Model removed (the default applies).",
            )

        pane.app.push_screen(
            PromptModal(
                "Model",
                "Model id (any model your provider serves)",
                value=current or "",
                placeholder="claude-sonnet-4-5",
                suggestions=KNOWN_MODELS,
                help="Leave empty for the default (claude-sonnet-4-5); --model on the command "
                "line still overrides it.",
            ),
            chosen,
        )

    # skills ------------------------------------------------------------------------------------

    def add_skill(self, expert: str) -> None:
        """Open the skill form to add a skill to ``expert``."""
        pane = self.pane
        table = pane.table(expert)
        if table is None:
            return
        from studio.screens.skill_form import SkillFormScreen

        skills = table.get("skills")
        names = list(skills) if isinstance(skills, dict) else []

        def added(fields: SkillFields | None) -> None:
            if fields is None:
                return
            with_base = not names and fields.name != BASE_SKILL_NAME
            pane.edit(
                lambda document: apply_skill(document, expert, fields, None),
                done=f"Added skill {fields.name} to {expert}"
                + (f" (with {BASE_SKILL_NAME})." if with_base else "."),
            )

        pane.app.push_screen(
            SkillFormScreen(
                expert,
                None,
                taken=names,
                adds_base=not names,
                check=lambda fields: pane.check(
                    lambda document: apply_skill(document, expert, fields, None)
                ),
            ),
            added,
        )

    def edit_skill(self, expert: str, name: str) -> None:
        """Open the skill form on one skill of ``expert`` (its fields, pick and omit)."""
        pane = self.pane
        table = pane.table(expert)
        if table is None:
            return
        skills = table.get("skills")
        skill = skills.get(name) if isinstance(skills, dict) else None
        if not isinstance(skill, dict):
            pane.notify(f"{expert} has no skill {name!r}.", severity="error")
            return
        from studio.screens.skill_form import SkillFormScreen

        original = SkillFields.from_table(name, skill)

        def edited(fields: SkillFields | None) -> None:
            if fields is None:
                return
            pane.edit(
                lambda document: apply_skill(document, expert, fields, original),
                done=f"Updated skill {name} of {expert}.",
            )

        pane.app.push_screen(
            SkillFormScreen(
                expert,
                original,
                taken=list(skills or ()),
                check=lambda fields: pane.check(
                    lambda document: apply_skill(document, expert, fields, original)
                ),
            ),
            edited,
        )

    def remove_skill(self, expert: str, name: str) -> None:
        """Ask, then remove one skill of ``expert``."""
        pane = self.pane
        if not pane.parses():
            return
        from studio.screens.confirm import ConfirmModal

        def confirmed(yes: bool | None) -> None:
            if yes:
                pane.edit(
                    lambda document: document.remove_skill(expert, name),
                    done=f"Removed skill {name} from {expert}.",
                )

        warning = (
            f" {expert} lists skills, so it needs {BASE_SKILL_NAME}."
            if name == BASE_SKILL_NAME
            else ""
        )
        ask_first(
            pane.app,
            "remove_skill",
            ConfirmModal(
                f"Remove skill {name}?",
                f"The skill's table is removed from {expert}.{warning}",
                confirm_label="Remove",
                danger=True,
            ),
            confirmed,
        )

    # the palette -------------------------------------------------------------------------------

    def palette_commands(
        self, outline: TeamOutline, go_to: Callable[[str], None]
    ) -> list[PaletteCommand]:
        """The team's edits, for the command palette (the text parses as ``outline``).

        Args:
            outline: The team in the editor's text now.
            go_to: Shows an expert in the tree and the editor.
        """
        commands = [
            PaletteCommand("expert: add", "Add an expert with a form", self.new_expert),
            PaletteCommand("config: set model", "The model every expert runs on", self.edit_model),
        ]
        for expert in outline.experts:
            key = expert.key
            commands += [
                PaletteCommand(
                    f"expert: edit {key}",
                    "Description, instruction, delegates, version, tags",
                    partial(self.edit_expert, key),
                ),
                PaletteCommand(
                    f"expert: rename {key}",
                    "Delegates lists follow",
                    partial(self.rename_expert, key),
                ),
                PaletteCommand(
                    f"expert: delete {key}", "Asks first", partial(self.delete_expert, key)
                ),
                PaletteCommand(
                    f"skill: add to {key}",
                    "stdio, SSE, streamable HTTP or interactive",
                    partial(self.add_skill, key),
                ),
                PaletteCommand(
                    f"view: go to {key}",
                    "Show the expert in the tree and the editor",
                    partial(go_to, key),
                ),
            ]
            for skill in expert.skills:
                commands += [
                    PaletteCommand(
                        f"skill: edit {skill.name} of {key}",
                        "Fields, pick and omit",
                        partial(self.edit_skill, key, skill.name),
                    ),
                    PaletteCommand(
                        f"skill: remove {skill.name} from {key}",
                        "Asks first",
                        partial(self.remove_skill, key, skill.name),
                    ),
                ]
        return commands
