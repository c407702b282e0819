package command

import (
	"fmt"
	"strings"
	"testing"
)

// templateCommand is a valid template-mode command as stream fields.
func templateCommand() map[string]string {
	return map[string]string{
		FieldSource: "notification", FieldPayloadMode: ModeTemplate, FieldTemplateID: "lobby.game_starting",
		FieldLocale: "en", FieldTemplateVariables: `{"game_id":"g-1"}`, FieldTo: `["ops@example.com"]`,
		FieldIdempotencyKey: "k-1", FieldRequestedAtMS: "1700000000000",
	}
}

func TestLimitsTakeWhatTheUpstreamServicesAccept(t *testing.T) {
	// The User Service's longest locale (64 bytes).
	locale := "en-GB-x-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee-ffffffff-ab"
	// Notification's route key for the longest address Mail accepts, under
	// the longest stream entry ID.
	address := strings.Repeat("l", 64) + "@" + strings.Repeat("d", MaxAddressLen-65-4) + ".com"
	key := "notification:18446744073709551615-18446744073709551615/email:email:" + address
	// Notification's largest payload with the largest display name it adds.
	filler := strings.Repeat("<&>", 64<<10)[:64<<10-len(`{"game_id":"g","game_name":""}`)]
	vars := fmt.Sprintf(`{"game_id":"g","game_name":"%s","user_display_name":"%s"}`, filler, strings.Repeat(`\u2028`, 200))

	f := templateCommand()
	f[FieldLocale], f[FieldIdempotencyKey], f[FieldTemplateVariables] = locale, key, vars
	f[FieldTo] = fmt.Sprintf("[%q]", address)
	c, err := FromStream(f)
	if err != nil {
		t.Fatalf("FromStream refused what Notification sends: %v", err)
	}
	if c.Locale != locale || c.IdempotencyKey != key || c.To[0] != address {
		t.Errorf("command = %+v", c)
	}
}

func TestLimitsRefuseValuesOverThem(t *testing.T) {
	for name, c := range map[string]struct {
		spoil func(map[string]string)
		field string
	}{
		"a 65-byte locale": {func(f map[string]string) {
			f[FieldLocale] = "en-GB-x-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee-ffffffff-abc"
		}, "locale: longer than 64 bytes"},
		"a key over 512 bytes": {func(f map[string]string) { f[FieldIdempotencyKey] = strings.Repeat("k", 513) }, "idempotency_key"},
		"variables over 66 KiB": {func(f map[string]string) {
			f[FieldTemplateVariables] = `{"v":"` + strings.Repeat("v", 66<<10) + `"}`
		}, "template_variables_json: longer than 67584 bytes"},
	} {
		f := templateCommand()
		c.spoil(f)
		if _, err := FromStream(f); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want %q", name, err, c.field)
		}
	}
}
