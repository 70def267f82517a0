"""``@perstack/create-expert``: the in-process tools of the built-in ``create-expert`` expert.

The skill runs in process next to the base skill and gives it
what a shell alone would not: validating perstack.toml with line-numbered diagnostics, merging an
expert into the file through tomlkit (comments and layout kept, a backup made first), and running
an expert of the file with a step budget, nested in the same job so its runs appear in the event
stream and the studio's tree.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime.config.builtin import TOOLS_SKILL_NAME
from runtime.config.schema import BASE_SKILL_NAME
from runtime.schema.messages import TextPart
from runtime.skills.types import SkillKind, ToolDefinition, ToolOutcome

NestedRunner = Callable[[str, str, int], Awaitable[dict[str, Any]]]
"""``(expert_key, query, max_steps) -> summary``: runs an expert of the workspace's file."""
RunJob = Callable[..., Awaitable[Any]]
"""Runs a job of its own (:func:`runtime.run` with the job's model bound): an eval case."""


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_TOOLS = [
    ToolDefinition(
        skill_name=TOOLS_SKILL_NAME,
        name="validatePerstackToml",
        description="Check perstack.toml and list every problem with its line (syntax, schema, "
        "unknown delegates, unknown keys). Returns {valid, errors, warnings, diagnostics}.",
        input_schema=_schema(
            {"path": {"type": "string", "description": "Defaults to perstack.toml."}}, []
        ),
    ),
    ToolDefinition(
        skill_name=TOOLS_SKILL_NAME,
        name="writeExpertDefinition",
        description="Add an expert to perstack.toml, or replace it if it exists, leaving the "
        "rest of the file (other experts, comments) untouched. A backup of the previous file is "
        "kept as perstack.toml.bak on the first change.",
        input_schema=_schema(
            {
                "key": {"type": "string"},
                "description": {"type": "string"},
                "instruction": {"type": "string"},
                "delegates": {"type": "array", "items": {"type": "string"}},
                "skills": {
                    "type": "object",
                    "description": "Skill tables by name, with Perstack's camelCase keys.",
                },
            },
            ["key", "description", "instruction"],
        ),
    ),
    ToolDefinition(
        skill_name=TOOLS_SKILL_NAME,
        name="removeExpertDefinition",
        description="Remove an expert (and references to it in delegates) from perstack.toml.",
        input_schema=_schema({"key": {"type": "string"}}, ["key"]),
    ),
    ToolDefinition(
        skill_name=TOOLS_SKILL_NAME,
        name="runExpert",
        description="Run an expert of perstack.toml on a query with a step budget and return a "
        "summary: status, result, errors and the delegation tree (expert, status, steps, "
        "tokens of every run).",
        input_schema=_schema(
            {
                "expertKey": {"type": "string"},
                "query": {"type": "string"},
                "maxSteps": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            ["expertKey", "query"],
        ),
    ),
    ToolDefinition(
        skill_name=TOOLS_SKILL_NAME,
        name="writeEvalSet",
        description="Write an eval set (evals.toml by default): cases to test the team on, each "
        "a query run in a scratch workspace, with checks that must hold afterwards. Check types: "
        "fileExists {path}, fileContains {path, text}, fileMatches {path, pattern}, exec "
        "{command} (a shell command that must exit 0), resultContains {text}, resultMatches "
        "{pattern}, judge {expert, rubric}. Replaces the file; returns the diff.",
        input_schema=_schema(
            {
                "path": {"type": "string", "description": "Defaults to evals.toml."},
                "expert": {"type": "string", "description": "The cases' default expert."},
                "cases": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "query": {"type": "string"},
                            "expert": {"type": "string"},
                            "files": {
                                "type": "object",
                                "description": "Files to seed the workspace with (path: text).",
                            },
                            "maxSteps": {"type": "integer", "minimum": 1},
                            "checks": {"type": "array", "items": {"type": "object"}},
                        },
                        "required": ["name", "query", "checks"],
                    },
                },
            },
            ["expert", "cases"],
        ),
    ),
    ToolDefinition(
        skill_name=TOOLS_SKILL_NAME,
        name="runEvalSet",
        description="Run an eval set (perstack eval) on the team in perstack.toml and return the "
        "score: passed and failed cases, and for each failure which check failed and why. The "
        "results are stored, so the user sees them in the studio and in perstack eval --compare.",
        input_schema=_schema(
            {
                "path": {"type": "string", "description": "Defaults to evals.toml."},
                "concurrency": {"type": "integer", "minimum": 1, "maximum": 10, "default": 4},
            },
            [],
        ),
    ),
]


def _ok(data: Any) -> ToolOutcome:
    return ToolOutcome(contents=[TextPart(text=json.dumps(data, ensure_ascii=False))])


class CreateExpertSkill:
    """The in-process tools of ``create-expert``."""

    name = TOOLS_SKILL_NAME
    kind: SkillKind = "mcp"

    def __init__(
        self,
        workspace: Path,
        run_nested: NestedRunner,
        *,
        run_job: RunJob | None = None,
        storage_root: Path | None = None,
    ) -> None:
        self._workspace = workspace
        self._run_nested = run_nested
        self._run_job = run_job
        self._storage_root = storage_root
        self._backup: Path | None = None

    @property
    def _config_path(self) -> Path:
        return self._workspace / "perstack.toml"

    def tools(self) -> list[ToolDefinition]:
        """The authoring and testing tools."""
        return list(_TOOLS)

    async def close(self) -> None:
        """Nothing to release."""

    async def call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Run one tool; problems come back as error outcomes the model can act on."""
        from runtime.errors import PerstackError

        try:
            if tool_name == "validatePerstackToml":
                return self._validate(args)
            if tool_name == "writeExpertDefinition":
                return self._write(args)
            if tool_name == "removeExpertDefinition":
                return self._remove(args)
            if tool_name == "runExpert":
                return await self._run(args)
            if tool_name == "writeEvalSet":
                return self._write_evals(args)
            if tool_name == "runEvalSet":
                return await self._run_evals(args)
        except PerstackError as error:
            return ToolOutcome.error(str(error))
        return ToolOutcome.error(f"Unknown tool {tool_name!r}")

    def _validate(self, args: dict[str, Any]) -> ToolOutcome:
        from runtime.config.diagnostics import diagnose

        path = self._workspace / str(args.get("path") or "perstack.toml")
        if not path.resolve().is_relative_to(self._workspace.resolve()):
            return ToolOutcome.error("path must be inside the workspace")
        if not path.is_file():
            return ToolOutcome.error(f"{path.name} does not exist yet; write an expert first")
        found = diagnose(path.read_text(encoding="utf-8"), label=path.name)
        errors = [d for d in found if d.severity == "error"]
        return _ok(
            {
                "valid": not errors,
                "errors": len(errors),
                "warnings": len(found) - len(errors),
                "diagnostics": [
                    {"line": d.line, "severity": d.severity, "key": d.key, "message": d.message}
                    for d in found
                ],
            }
        )

    def _edit(self, change: Callable[[Any], Any]) -> tuple[str, str, Any]:
        from runtime.config.authoring import ConfigDocument, backup_config, save_config

        path = self._config_path
        before = path.read_text(encoding="utf-8") if path.is_file() else ""
        document = ConfigDocument.parse(before)
        outcome = change(document)
        after = document.dumps()
        if after != before:
            if before and self._backup is None:
                self._backup = backup_config(path)
            save_config(path, after)
        return before, after, (outcome, document.expert_keys())

    def _write(self, args: dict[str, Any]) -> ToolOutcome:
        from runtime.config.authoring import unified_diff

        key = args.get("key")
        if not isinstance(key, str) or not key:
            return ToolOutcome.error('key is required (e.g. "@my-team/writer")')
        table: dict[str, Any] = {
            "description": args.get("description"),
            "instruction": args.get("instruction"),
        }
        if args.get("delegates"):
            table["delegates"] = list(args["delegates"])
        if args.get("skills"):
            skills = dict(args["skills"])
            # A skills table must name the base skill (Perstack's rule); add it for the model.
            skills.setdefault(
                BASE_SKILL_NAME,
                {"type": "mcpStdioSkill", "command": "npx", "packageName": BASE_SKILL_NAME},
            )
            table["skills"] = skills
        before, after, (_, keys) = self._edit(lambda doc: doc.merge_expert(key, table))
        return _ok(
            {
                "path": str(self._config_path),
                "backup": str(self._backup) if self._backup else None,
                "experts": keys,
                "diff": unified_diff(before, after),
            }
        )

    def _remove(self, args: dict[str, Any]) -> ToolOutcome:
        key = str(args.get("key", ""))
        _, _, (changed, keys) = self._edit(lambda doc: doc.delete_expert(key))
        return _ok({"removed": key, "delegatesUpdatedIn": changed, "experts": keys})

    async def _run(self, args: dict[str, Any]) -> ToolOutcome:
        key, query = args.get("expertKey"), args.get("query")
        if not isinstance(key, str) or not isinstance(query, str) or not query.strip():
            return ToolOutcome.error("expertKey and a non-empty query are required")
        budget = args.get("maxSteps", 20)
        if not isinstance(budget, int) or not 1 <= budget <= 100:
            return ToolOutcome.error("maxSteps must be a whole number from 1 to 100")
        return _ok(await self._run_nested(key, query, budget))

    def _inside(self, given: object, default: str) -> Path:
        from runtime.errors import UsageError

        path = (self._workspace / str(given or default)).resolve()
        if not path.is_relative_to(self._workspace.resolve()):
            raise UsageError("path must be inside the workspace")
        return path

    def _write_evals(self, args: dict[str, Any]) -> ToolOutcome:
        from runtime.config.authoring import unified_diff
        from runtime.evals.format import eval_set_toml
        from runtime.files import atomic_write

        path = self._inside(args.get("path"), "evals.toml")
        data = {"eval": {"expert": args.get("expert")}, "cases": args.get("cases") or []}
        text = eval_set_toml(data, label=path.name)
        before = path.read_text(encoding="utf-8") if path.is_file() else ""
        atomic_write(path, text)
        return _ok(
            {"path": str(path), "cases": len(data["cases"]), "diff": unified_diff(before, text)}
        )

    async def _run_evals(self, args: dict[str, Any]) -> ToolOutcome:
        from runtime.config.loader import load_config
        from runtime.evals.format import load_eval_set
        from runtime.evals.results import store_eval_run
        from runtime.evals.runner import EvalOptions, run_eval_set

        if self._run_job is None:
            return ToolOutcome.error("runEvalSet is not available in a nested run")
        path = self._inside(args.get("path"), "evals.toml")
        concurrency = args.get("concurrency", 4)
        if not isinstance(concurrency, int) or not 1 <= concurrency <= 10:
            return ToolOutcome.error("concurrency must be a whole number from 1 to 10")
        eval_set = load_eval_set(path)
        loaded = load_config(str(self._config_path), self._workspace)
        options = EvalOptions(concurrency=concurrency, storage_root=self._storage_root)
        result = await run_eval_set(eval_set, loaded, options, self._run_job)
        if self._storage_root is not None:
            store_eval_run(self._storage_root, result)
        return _ok(
            {
                "evalRunId": result.id,
                "passed": result.passed,
                "failed": result.failed,
                "cases": [
                    {
                        "name": case.name,
                        "passed": case.passed,
                        "status": case.status,
                        "steps": case.steps,
                        "tokens": case.usage.total_tokens,
                        "jobId": case.job_id,
                        "failures": [
                            f"{check.label}: {check.detail}"
                            for check in case.checks
                            if not check.passed
                        ]
                        + ([case.error] if case.error else []),
                    }
                    for case in result.cases
                ],
            }
        )
