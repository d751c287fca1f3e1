package mcpkit

import (
	"fmt"
	"math/big"
	"reflect"
	"testing"
)

type probeIn struct {
	N     int    `json:"n,omitempty" jsonschema:"minimum=1,maximum=1000"`
	V     Value  `json:"v,omitempty"`
	O     Object `json:"o,omitempty"`
	Name  Name   `json:"name,omitempty"`
	S     []Name `json:"s,omitempty"`
	U     uint8  `json:"u,omitempty"`
}

func TestProbe(t *testing.T) {
	d := newDecoder(Reflect(reflectTypeOf[probeIn]()))
	fmt.Println(string(Marshal(d.schema)))
	for _, in := range []string{`{"n": 5}`, `{"v": 1e99999999999999999999}`, `{"v": 1e999999999}`, `{"v":
 [1 , 2] }`, `{"s":["\u0000"]}`, `{"u":300}`, `{"u":-1}`, `{"name":"\u0085"}`, `{"name":"\u3000"}`, `{"n":1e400}`, `{"v":1e-99999999}`} {
		var v probeIn
		err := d.Decode([]byte(in), &v)
		fmt.Printf("%s => %v %+v %q\n", in, err, v, v.V)
	}
	f, ok := new(big.Float).SetPrec(200).SetString("1e999999999")
	fmt.Println(f, ok)
}
func reflectTypeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
