"""MCP skills: servers started as child processes (stdio) or reached over HTTP (SSE, streamable).

One :class:`McpSkill` per ``mcpStdioSkill`` / ``mcpSseSkill`` / ``mcpStreamableHttpSkill`` table
(reference §1.4, §5.10). What this package guarantees:

* **One task owns each connection** (:mod:`.skill`). The MCP client and its transport are anyio
  context managers whose cancel scopes must be entered and exited by the same task, so each skill
  runs its whole connection inside one dedicated host task. This is what lets skills start
  concurrently and start lazily (on a first tool call made from a tool-call task) without
  breaking anyio's rules.
* **A skill's stderr never reaches the terminal** (:mod:`.stderr`). The child's stderr is a pipe
  we read; every chunk becomes a ``skillStderr`` event, and is echoed to our stderr only in
  verbose mode.
* **A skill's output is bounded** (:class:`OutputLimits`, per skill in perstack.toml;
  :mod:`.results`). A tool result hands the model at most ``maxResultChars`` characters of text
  and ``maxResultBinaryBytes`` of images and files, plus a note saying what was left out. Stored
  stderr is split into events of at most ``maxStderrMessageBytes`` and stops after
  ``maxStderrBytes`` per run with one notice.
* **Failures the model can react to come back as error tool results** (§18.4): MCP ``isError``,
  protocol errors ("Error calling tool X: ..."), a server that crashed or did not answer within
  the per-call timeout. A dead skill emits ``skillDisconnected`` with a reason, and every later
  call to it returns an error result, so the run goes on and the model knows.
* **Exact child environment** (:mod:`.stdio`). A stdio server gets the safe variables plus its
  ``requiredEnv`` (:func:`runtime.config.env.skill_env`), nothing else.

Which command a stdio skill runs, and whether ``@perstack/base`` runs in process instead, is
:mod:`.launch`; SSE and streamable HTTP are :mod:`.remote`.
"""

from runtime.skills.mcp.context import McpSkillConfig, SkillRuntime
from runtime.skills.mcp.launch import is_bundled_base, stdio_launch
from runtime.skills.mcp.results import OutputLimits, convert_result, limit_result
from runtime.skills.mcp.skill import DEFAULT_CALL_TIMEOUT_S, DEFAULT_START_TIMEOUT_S, McpSkill

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_START_TIMEOUT_S",
    "McpSkill",
    "McpSkillConfig",
    "OutputLimits",
    "SkillRuntime",
    "convert_result",
    "is_bundled_base",
    "limit_result",
    "stdio_launch",
]
