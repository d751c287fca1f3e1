package rdb

import _ "embed"

// ScriptPrelude defines refuse(steps) for the scripts that write; put it
// before a script's source (see prelude.lua).
//
//go:embed prelude.lua
var ScriptPrelude string
