package routing

import (
	"strings"
	"testing"
)

func TestParseAddressListTakesWhatMailTakes(t *testing.T) {
	long := strings.Repeat("l", 64) + "@" + strings.Repeat("d", MaxAddressBytes-65-4) + ".com"
	got, err := ParseAddressList("ops@example.com, " + long)
	if err != nil || len(got) != 2 || got[1] != long {
		t.Fatalf("ParseAddressList = %v, %v", got, err)
	}
	if _, err := ParseAddressList("x" + long); err == nil || !strings.Contains(err.Error(), "longer than 320 bytes") {
		t.Errorf("a 321-byte address: %v", err)
	}
	if _, err := ParseAddressList("op\u0085s@example.com"); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("a C1 control character: %v", err)
	}
}
