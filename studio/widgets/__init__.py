"""The studio's widgets, one per module: the panes the screens are composed of.

The author screen's team tree, editor pane (the editor over the problems list) and status line;
the run screen's step tree, detail and streaming panes, error panel and query box.
"""
