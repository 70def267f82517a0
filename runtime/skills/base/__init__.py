"""The built-in base skill ``@perstack/base``: files, commands and a todo list (reference §6).

Tool names, parameters and result shapes are Perstack's (§6.3), so an expert written for Perstack
works unchanged. Where we differ (§18.7): failures are flagged ``is_error``, ``writeTextFile``,
``createDirectory`` and ``moveFile`` create missing parent directories, and the todo list belongs
to one :class:`BaseSkill` (one run) instead of the whole process.

Every path a tool receives is walked by :class:`~runtime.skills.confine.Confinement`, one
component at a time from a descriptor of the workspace, so it stays inside the workspace even
while another process swaps directories for symlinks; the storage directory and env files
(``.env``, ``.env.*``, the run's ``envPath`` files) are off limits. Symlinks inside the workspace
that point inside are followed on the way; a symlink as the last component is refused by the
tools that read or write content, removed itself by ``deleteFile``, moved itself by ``moveFile``
and followed by ``getFileInfo`` and ``listDirectory``.

One module per tool family: :mod:`.todo` (``todo``, ``clearTodo``, ``attemptCompletion``),
:mod:`.health`, :mod:`.exec`, :mod:`.files` (file contents) and :mod:`.entries` (moving, deleting,
describing, listing, creating); :mod:`.tool` declares and checks tools, :mod:`.workspace` is the
confined workspace they share, :mod:`.skill` assembles them and :mod:`.inline` inlines image and
PDF results for the agent loop.
"""

from runtime.skills.base.inline import inline_file_results
from runtime.skills.base.skill import BaseSkill

__all__ = ["BaseSkill", "inline_file_results"]
