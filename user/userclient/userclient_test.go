package userclient_test

import (
	"encoding/json"
	"testing"

	"galaxy/user/userclient"
)

// A user decoded without email_notifications has the contract's default
// (true); one that says false or true keeps it, and the other fields decode
// as usual.
func TestUserDecodesWithTheContractsDefault(t *testing.T) {
	for _, tc := range []struct {
		body     string
		want     bool
		optedOut bool
	}{
		{`{"user_id":"u1","email":"a@example.com","locale":"de","later":1}`, true, false},
		{`{"user_id":"u1","email":"a@example.com","locale":"de","email_notifications":false}`, false, true},
		{`{"user_id":"u1","email":"a@example.com","locale":"de","email_notifications":true}`, true, false},
		{`{"user_id":"u1","email":"a@example.com","locale":"de","email_notifications":null}`, true, false},
	} {
		var u userclient.User
		if err := json.Unmarshal([]byte(tc.body), &u); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if u.EmailNotifications != tc.want || u.OptedOut() != tc.optedOut || u.UserID != "u1" || u.Email != "a@example.com" || u.Locale != "de" {
			t.Errorf("%s: decoded %+v, OptedOut %v; want email_notifications %v", tc.body, u, u.OptedOut(), tc.want)
		}
	}
	var res userclient.Resolved
	if err := json.Unmarshal([]byte(`{"users":[{"user_id":"u1"},{"user_id":"u2","email_notifications":false}],"missing":["u3"]}`), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Users) != 2 || res.Users[0].OptedOut() || !res.Users[1].OptedOut() || len(res.Missing) != 1 {
		t.Errorf("resolved %+v", res)
	}
	if err := json.Unmarshal([]byte(`{"user_id":5}`), &userclient.User{}); err == nil {
		t.Error("a user_id that is a number decoded without an error")
	}
}
