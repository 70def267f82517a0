"""Edit perstack.toml the way a person would: change what was asked and nothing else.

:class:`ConfigDocument` is the headless editing engine behind the studio's forms and
create-expert's merge. Every change is made on the tomlkit document of the real text, so
comments, key order, blank lines, quoting and ``\"\"\"`` strings the change does not touch keep
their bytes. Three things tomlkit does not do on its own are handled here:

* Comments above a table header belong, in tomlkit's tree, to the end of the *previous* table.
  Deleting a table would leave its comment behind (and take the next table's comment with it);
  appending a table would put it under the next table's comment. Structural edits therefore work
  on the document in rendering order (:mod:`.layout`, :mod:`.structure`) and move those comments
  where they belong.
* Assigning a plain ``str`` turns a ``\"\"\"`` string into a one-line basic string; strings are
  built here in the style the field already used (:mod:`.strings`).
* New keys go after the table's last key, before the comment block of the next header, and new
  top-level keys before the first table (so ``envPath`` never lands under ``[provider]``):
  :mod:`.fields`.

Every edit is checked before it is kept (:mod:`.core`): the new text is parsed with ``tomllib``
(the parser the runtime uses) and must give exactly the data the edit means, or the edit is
refused and the document left as it was. A tomlkit corner case can therefore never silently
corrupt a file.

:class:`ConfigDocument` (:mod:`.document`) is assembled from the edits of each part of the file:
:mod:`.experts` (with :mod:`.delegates`, which follow renames and deletions), :mod:`.skills` and
:mod:`.settings`. :mod:`.values` and :mod:`.tables` build tomlkit items, :mod:`.checks` says
which edits are allowed, and :mod:`.files` saves, backs up, creates and diffs the file.
"""

from runtime.config.authoring.checks import ConfigEditError
from runtime.config.authoring.document import ConfigDocument
from runtime.config.authoring.experts import EXPERT_FIELDS
from runtime.config.authoring.files import (
    MINIMAL_CONFIG,
    backup_config,
    minimal_config,
    save_config,
    unified_diff,
)
from runtime.config.authoring.merge import MergeOutcome, three_way_merge

__all__ = [
    "EXPERT_FIELDS",
    "MINIMAL_CONFIG",
    "ConfigDocument",
    "ConfigEditError",
    "MergeOutcome",
    "backup_config",
    "minimal_config",
    "save_config",
    "three_way_merge",
    "unified_diff",
]
