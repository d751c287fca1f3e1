package mcpkit_test

import (
	"fmt"
	"testing"

	"github.com/mcp-redis/mcp-redis/tools"
)

func TestProbe2(t *testing.T) {
	for _, tl := range tools.All(&tools.Deps{}) {
		fmt.Println(tl.Name(), string(tl.Def.RawInputSchema))
	}
}
