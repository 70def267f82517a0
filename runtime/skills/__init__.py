"""Skills: the tools an expert can call (base, MCP servers, interactive tools, delegates)."""
