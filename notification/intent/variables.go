package intent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DisplayNameField is the template variable a user route adds to the
// payload: the user's display name, from the User Service.
const DisplayNameField = "user_display_name"

// TemplateVariables is the template_variables_json of a user route's mail
// command: payload's members exactly as the producer wrote them, less any
// user_display_name of its own (the User Service is the authority), then
// user_display_name. Nothing is re-encoded: encoding/json would escape <,
// > and & to six bytes each, and a payload within MaxPayloadBytes could
// then exceed Mail's template variables limit, which is this limit plus
// room for the display name only (docs/contracts.md, "Limits").
func TemplateVariables(payload, displayName string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", errors.New("decode payload: not a JSON object")
	}
	var b strings.Builder
	b.Grow(len(payload) + len(displayName) + 32)
	b.WriteByte('{')
	members := 0
	prev := dec.InputOffset()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("decode payload: %w", err)
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", fmt.Errorf("decode payload: %w", err)
		}
		end := dec.InputOffset()
		// The member as written: from the end of the previous value, less
		// the comma and blanks before the key.
		member := strings.TrimLeft(payload[prev:end], " \t\r\n,")
		prev = end
		if key == DisplayNameField {
			continue
		}
		if members > 0 {
			b.WriteByte(',')
		}
		b.WriteString(member)
		members++
	}
	if members > 0 {
		b.WriteByte(',')
	}
	b.WriteString(`"` + DisplayNameField + `":`)
	b.Write(jsonString(displayName))
	b.WriteByte('}')
	return b.String(), nil
}

// jsonString encodes s without HTML escaping: it goes into a template's
// variables, and the template escapes for its own context.
func jsonString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
