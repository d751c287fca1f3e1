module github.com/mcp-redis/mcp-redis/packaging/mcpb/universal

go 1.26.8

require github.com/blacktop/go-macho v1.1.296

require github.com/blacktop/go-dwarf v1.1.0 // indirect
