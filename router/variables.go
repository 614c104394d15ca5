package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
)

// intInputs records, for the composed schema, the input object types that
// can hold an Int somewhere inside (in a field, a list, a nested input
// object), with the fields that lead to one. The engine checks Int
// literals against 32 bits but takes any JSON number for an Int variable
// and passes it on to the subgraph; the router checks those values itself.
type intInputs map[string][]inputField

type inputField struct {
	name string
	typ  valueType
}

// valueType is an input type without its non-null markers: null and
// missing values are the engine's to judge.
type valueType struct {
	elem *valueType // the element type of a list
	name string     // the named type, when not a list
}

func newIntInputs(schema *ast.Document) intInputs {
	reaches := map[string]bool{"Int": true}
	defs := schema.InputObjectTypeDefinitions
	for changed := true; changed; {
		changed = false
		for i := range defs {
			name := schema.InputObjectTypeDefinitionNameString(i)
			if reaches[name] {
				continue
			}
			for _, ref := range defs[i].InputFieldsDefinition.Refs {
				if reaches[schema.ResolveTypeNameString(schema.InputValueDefinitions[ref].Type)] {
					reaches[name], changed = true, true
					break
				}
			}
		}
	}
	out := intInputs{}
	for i := range defs {
		name := schema.InputObjectTypeDefinitionNameString(i)
		if !reaches[name] {
			continue
		}
		var fields []inputField
		for _, ref := range defs[i].InputFieldsDefinition.Refs {
			t := schema.InputValueDefinitions[ref].Type
			if reaches[schema.ResolveTypeNameString(t)] {
				fields = append(fields, inputField{name: schema.InputValueDefinitionNameString(ref), typ: typeOf(schema, t)})
			}
		}
		out[name] = fields
	}
	return out
}

func typeOf(doc *ast.Document, ref int) valueType {
	for {
		t := doc.Types[ref]
		switch t.TypeKind {
		case ast.TypeKindNonNull:
			ref = t.OfType
		case ast.TypeKindList:
			elem := typeOf(doc, t.OfType)
			return valueType{elem: &elem}
		default:
			return valueType{name: doc.TypeNameString(ref)}
		}
	}
}

func (in intInputs) reaches(name string) bool { return name == "Int" || in[name] != nil }

// check returns a client-facing message for the first value of the
// operation's variables that an Int cannot represent: outside the 32-bit
// signed range, or not integral. Everything else (wrong JSON types,
// missing values, malformed JSON) is left to the engine.
func (in intInputs) check(doc *ast.Document, operationName string, variables []byte) string {
	op, ok := selectedOperation(doc, operationName)
	if !ok || len(variables) == 0 {
		return ""
	}
	vars := map[string]valueType{}
	for _, ref := range doc.OperationDefinitions[op].VariableDefinitions.Refs {
		t := doc.VariableDefinitions[ref].Type
		if in.reaches(doc.ResolveTypeNameString(t)) {
			vars[doc.VariableDefinitionNameString(ref)] = typeOf(doc, t)
		}
	}
	if len(vars) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(variables))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	// Every occurrence of a name counts: with duplicate keys, which one
	// wins depends on the parser.
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		name, _ := key.(string)
		t, ok := vars[name]
		if !ok {
			if skipValue(dec) != nil {
				return ""
			}
			continue
		}
		w := intWalker{in: in, dec: dec, variable: name}
		if msg, err := w.value(t, name); msg != "" || err != nil {
			return msg
		}
	}
	return ""
}

type intWalker struct {
	in       intInputs
	dec      *json.Decoder
	variable string
}

// value walks the next JSON value as a value of type t found at path.
func (w *intWalker) value(t valueType, path string) (string, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return "", err
	}
	// A single value where a list is expected is a list of one.
	for t.elem != nil && tok != json.Delim('[') {
		t = *t.elem
	}
	switch v := tok.(type) {
	case json.Number:
		if t.name == "Int" {
			return w.checkInt(string(v), path), nil
		}
	case json.Delim:
		switch {
		case v == '[':
			for i := 0; w.dec.More(); i++ {
				if msg, err := w.value(*t.elem, fmt.Sprintf("%s[%d]", path, i)); msg != "" || err != nil {
					return msg, err
				}
			}
			_, err := w.dec.Token()
			return "", err
		case v == '{' && w.in[t.name] != nil:
			return w.object(w.in[t.name], path)
		default:
			return "", skipRest(w.dec)
		}
	}
	return "", nil
}

func (w *intWalker) object(fields []inputField, path string) (string, error) {
	for w.dec.More() {
		key, err := w.dec.Token()
		if err != nil {
			return "", err
		}
		name, _ := key.(string)
		found := false
		for _, f := range fields {
			if f.name == name {
				found = true
				if msg, err := w.value(f.typ, path+"."+name); msg != "" || err != nil {
					return msg, err
				}
				break
			}
		}
		if !found {
			if err := skipValue(w.dec); err != nil {
				return "", err
			}
		}
	}
	_, err := w.dec.Token()
	return "", err
}

// checkInt words its refusal like the engine's own variable errors and
// graphql-js (whose numbers are float64s too: 2.0 and 1e3 are Ints).
func (w *intWalker) checkInt(raw, path string) string {
	problem := int32Problem(raw)
	if problem == "" {
		return ""
	}
	at := ""
	if path != w.variable {
		at = fmt.Sprintf(" at %q", path)
	}
	if len(raw) > 40 { // a number may be any number of digits long
		raw = raw[:40] + "…"
	}
	return fmt.Sprintf(`Variable "$%s" got invalid value %s%s; Int cannot represent %s: %s`, w.variable, raw, at, problem, raw)
}

func int32Problem(raw string) string {
	const outOfRange, notIntegral = "non 32-bit signed integer value", "non-integer value"
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		if n < math.MinInt32 || n > math.MaxInt32 {
			return outOfRange
		}
		return ""
	}
	f, err := strconv.ParseFloat(raw, 64)
	switch {
	case math.IsInf(f, 0):
		return outOfRange
	case err != nil || f != math.Trunc(f):
		return notIntegral
	case f < math.MinInt32 || f > math.MaxInt32:
		return outOfRange
	}
	return ""
}

func skipValue(dec *json.Decoder) error {
	var skip json.RawMessage
	return dec.Decode(&skip)
}

// skipRest skips to the end of the array or object just opened.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}
